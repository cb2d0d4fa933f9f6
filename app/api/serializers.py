"""JSON shapes of DESIGN §3: snake_case, ISO 8601 times with offset."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.models import Answer, Conversation, Enrollment, Escalation, Message


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def message_json(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": message.id,
        "direction": message.direction,
        "channel": message.channel,
        "body": message.body,
        "status": message.status,
        "created_at": iso(message.created_at),
        "kind": message.kind,
        "segments": message.segments,
        "encoding": message.encoding,
        "needs_review": message.needs_review,
    }
    if message.flow_id:
        data["flow"] = message.flow_id
    if message.provider_sid:
        data["provider_sid"] = message.provider_sid
    if message.error_code:
        data["error_code"] = message.error_code
    if message.caregiver_id is not None:
        data["caregiver_id"] = message.caregiver_id
    return data


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "patient_id": conversation.patient_id,
        "flow": conversation.flow_id,
        "flow_version": conversation.flow_version,
        "status": conversation.status,
        "started_at": iso(conversation.started_at),
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    data: dict[str, Any] = {
        "flow": answer.flow_id,
        "question": answer.question_id,
        "value": answer.value,
        "raw": answer.raw,
        "answered_at": iso(answer.answered_at),
        "channel": answer.channel,
        "kind": answer.kind,
    }
    if answer.unit:
        data["unit"] = answer.unit
    # Who gave the answer: the patient, or a caregiver answering on the patient's behalf (issue 12 item 6).
    data["given_by"] = "patient" if answer.given_by_caregiver_id is None else "caregiver"
    if answer.given_by_caregiver_id is not None:
        data["caregiver_id"] = answer.given_by_caregiver_id
    return data


def enrollment_json(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "id": enrollment.id,
        "patient_id": enrollment.patient_id,
        "campaign": enrollment.campaign,
        "anchor_date": enrollment.anchor_date.isoformat(),
        "status": enrollment.status,
        "next_due_at": iso(enrollment.next_due_at),
        "variables": dict(enrollment.variables or {}),
    }


def escalation_json(escalation: Escalation) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": escalation.id,
        "patient_id": escalation.patient_id,
        "level": escalation.level,
        "reasons": list(escalation.reasons or [escalation.reason]),
        "status": escalation.status,
        "created_at": iso(escalation.created_at),
        "sla_due_at": iso(escalation.sla_due_at),
        "triggers": [
            {"rule": t.rule_id, "level": t.level, "detail": t.detail, "created_at": iso(t.created_at)}
            for t in escalation.triggers
        ],
    }
    for key in ("acknowledged_at", "resolved_at"):
        value = getattr(escalation, key)
        if value is not None:
            data[key] = iso(value)
    if escalation.outcome:
        data["outcome"] = escalation.outcome
    return data

"""Words for codes that staff read, in English and Spanish: levels, statuses, outcomes, reasons (named by
content and triage), what a trigger found, times in the viewer's zone and "due in 12 min"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.i18n import gettext_for

#: Zones staff may read times in (the viewer's choice, kept on their account).
STAFF_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "UTC",
)


def level_label(code: str, language: str) -> str:
    return _level_labels(language).get(code, code)


@cache
def _level_labels(language: str) -> dict[str, str]:
    """Built once per language (the queue renders hundreds of rows)."""
    _ = gettext_for(language)
    return {
        "EMERGENCY": _("EMERGENCY"),
        "URGENT": _("URGENT"),
        "ROUTINE": _("ROUTINE"),
        "INFO": _("INFO"),
    }


def status_label(code: str, language: str) -> str:
    return _status_labels(language).get(code, code.replace("_", " "))


@cache
def _status_labels(language: str) -> dict[str, str]:
    """Built once per language (the queue renders hundreds of rows)."""
    _ = gettext_for(language)
    return {
        "open": _("open"),
        "acknowledged": _("acknowledged"),
        "resolved": _("resolved"),
        "queued": _("queued"),
        "sending": _("sending"),
        "sent": _("sent"),
        "delivered": _("delivered"),
        "undelivered": _("not delivered"),
        "failed": _("failed"),
        "received": _("received"),
        "pending": _("waiting"),
        "retry": _("retrying"),
        "recorded": _("recorded"),
    }


def outcome_label(code: str, language: str) -> str:
    return _outcome_labels(language).get(code, code.replace("_", " "))


@cache
def _outcome_labels(language: str) -> dict[str, str]:
    """Built once per language (the queue renders hundreds of rows)."""
    _ = gettext_for(language)
    return {
        "reached_patient": _("Reached the patient"),
        "advised_911": _("Advised to call 911"),
        "appointment_made": _("Appointment made"),
        "medication_adjusted": _("Medication adjusted"),
        "no_action_needed": _("No action needed"),
        "unable_to_reach": _("Unable to reach"),
        "duplicate": _("Duplicate"),
    }


def reason_label(code: str, language: str) -> str:
    """Every reason the shipped flows, triage and the services name; an unknown code is shown readable."""
    return _reason_labels(language).get(code, code.replace("_", " ").capitalize())


@cache
def _reason_labels(language: str) -> dict[str, str]:
    """Built once per language (the queue renders hundreds of rows)."""
    _ = gettext_for(language)
    return {
        "breathing": _("Severe trouble breathing"),
        "stroke": _("Stroke signs"),
        "unresponsive": _("Unresponsive"),
        "seizure": _("Seizure"),
        "fainting": _("Fainting"),
        "overdose": _("Overdose or poisoning"),
        "suicide": _("Suicide risk or self-harm"),
        "suicidal_thoughts": _("Thoughts of suicide or self-harm"),
        "interpersonal_violence": _("Violence or abuse, or not safe at home"),
        "head_injury": _("Fall with a blow to the head"),
        "bleeding": _("Severe bleeding"),
        "coughing_blood": _("Coughing up blood"),
        "coughing_up_blood": _("Coughing up blood"),
        "allergic_reaction": _("Severe allergic reaction"),
        "severe_hypoglycemia": _("Severe low blood sugar"),
        "severe_low_glucose": _("Severe low blood sugar"),
        "dizziness": _("Dizziness"),
        "fever": _("Fever or chills"),
        "fever_or_chills": _("Fever or chills"),
        "vomiting": _("Nausea or vomiting"),
        "high_sugar": _("High blood sugar"),
        "high_glucose": _("High blood sugar"),
        "low_sugar": _("Low blood sugar"),
        "low_glucose": _("Low blood sugar"),
        "ketones": _("Ketones in urine"),
        "cough": _("Cough"),
        "wound": _("Wound problem"),
        "pain": _("Pain"),
        "chest_pain": _("Chest pain"),
        "confusion": _("New confusion"),
        "weight_gain": _("Weight gain"),
        "weight_loss": _("Weight loss"),
        "swelling": _("More swelling"),
        "shortness_of_breath": _("More short of breath"),
        "breathless_at_rest": _("Short of breath at rest"),
        "orthopnea": _("Needs more pillows to breathe at night"),
        "blue_lips_or_nails": _("Blue lips or nails"),
        "copd_yellow_zone": _("COPD yellow zone (symptoms worse)"),
        "rescue_inhaler_not_helping": _("Rescue inhaler not helping"),
        "phq": _("Depression screen (PHQ) score"),
        "gad": _("Anxiety screen (GAD-7) score"),
        "adherence": _("Missed medicine"),
        "side_effects": _("Medicine side effects"),
        "care_coordination": _("Needs help with care"),
        "hospital_return": _("Went back to the hospital"),
        "feeling_worse": _("Feeling worse"),
        "appointment_help": _("Needs help getting to an appointment"),
        "appointment_change": _("Wants to change an appointment"),
        "could_not_assess": _("Could not assess (questions unanswered)"),
        "unreachable": _("Not answering check-ins"),
        "symptoms_reported": _("Texted about symptoms"),
        "social_need_housing": _("Social need: a place to live"),
        "social_need_food": _("Social need: food"),
        "social_need_transportation": _("Social need: rides"),
        "social_need_utilities": _("Social need: power, gas or water bills"),
        "safety_screen_by_call": _("Safety questions to ask by phone (not safe to ask here)"),
        "safety_screen_not_completed": _("Safety questions not completed: call"),
        "interpersonal_safety": _("Safety at home: call today"),
        "social_needs_not_connected": _("Not yet connected to help for a social need"),
        "head_injury_on_blood_thinner": _("Fall with a head injury on a blood thinner"),
        "falls_risk": _("At risk of falls"),
        "medication_reconciliation": _("Unsure which medicines to stop"),
        "medication_cost": _("Hard to pay for medicines"),
        "hospital_use": _("ER visit or hospital stay since last contact"),
        "caregiver_strain": _("Caregiver under strain"),
        "goal_low_confidence": _("Not sure they can keep to their goal (4 or less out of 10)"),
        "caregiver_phone_needed": _("Caregiver may get messages: ask for their phone number"),
        "outreach_declined": _("Said no to messages and calls in the welcome"),
    }


def finding_label(detail: Mapping[str, Any], language: str) -> list[str]:
    """What a trigger's detail says, in plain words (known keys only; ids and rule names are left out)."""
    _ = gettext_for(language)
    said: list[str] = []
    if isinstance(detail.get("weight_rise"), int | float):
        said.append(_("weight up %(n)s lb") % {"n": _number(detail["weight_rise"])})
    for score, name in (("phq9", "PHQ-9"), ("phq2", "PHQ-2"), ("gad7", "GAD-7")):
        if isinstance(detail.get(score), int | float):
            said.append(_("%(name)s score %(n)s") % {"name": name, "n": _number(detail[score])})
    if isinstance(detail.get("sign_count"), int) and detail["sign_count"] > 1:
        said.append(_("%(n)s signs in one check-in") % {"n": detail["sign_count"]})
    if isinstance(detail.get("missed_in_a_row"), int):
        said.append(_("%(n)s check-ins missed in a row") % {"n": detail["missed_in_a_row"]})
    if isinstance(detail.get("questions"), list) and detail["questions"]:
        said.append(_("%(n)s questions not answered") % {"n": len(detail["questions"])})
    if detail.get("confirmed_right_now"):
        said.append(_("patient said it is happening now"))
    if detail.get("outside_conversation"):
        said.append(_("texted outside a check-in"))
    if detail.get("not_asked") == "cannot_text":
        said.append(_("could not ask back: texts are off for this patient"))
    return said


def _number(value: float) -> str:
    return f"{value:g}"


def zone(name: str | None) -> dt.tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def local_time(when: dt.datetime | None, tz_name: str | None, now: dt.datetime) -> str:
    """``"14:05"`` today, ``"Nov 27 14:05"`` on another day, in ``tz_name``, with the zone's abbreviation."""
    if when is None:
        return ""
    tz = zone(tz_name)
    local = when.astimezone(tz)
    same_day = local.date() == now.astimezone(tz).date()
    text = local.strftime("%H:%M") if same_day else local.strftime("%Y-%m-%d %H:%M")
    return f"{text} {local.tzname() or ''}".strip()


def _span(minutes: int, language: str) -> str:
    _ = gettext_for(language)
    if minutes < 60:
        return _("%(m)s min") % {"m": minutes}
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return (_("%(h)s h %(m)s min") % {"h": hours, "m": rest}) if rest else _("%(h)s h") % {"h": hours}
    return _("%(d)s days") % {"d": hours // 24}


def due_text(due: dt.datetime | None, now: dt.datetime, language: str) -> tuple[str, bool]:
    """``("due in 12 min", False)`` or ``("overdue by 3 min", True)``; ``("", False)`` with no deadline."""
    _ = gettext_for(language)
    if due is None:
        return "", False
    seconds = (due - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    if seconds >= 0:
        return _("due in %(span)s") % {"span": _span(max(minutes, 0), language)}, False
    return _("overdue by %(span)s") % {"span": _span(max(minutes, 1), language)}, True


def ago_text(when: dt.datetime | None, now: dt.datetime, language: str) -> str:
    _ = gettext_for(language)
    if when is None:
        return ""
    minutes = max(int((now - when).total_seconds() // 60), 0)
    if minutes < 1:
        return _("just now")
    return _("%(span)s ago") % {"span": _span(minutes, language)}


def change_text(action: str, language: str) -> str:
    """An audit action as a verb phrase for "<who> <did what> at <time>"."""
    _ = gettext_for(language)
    words = {
        "escalation.acknowledged": _("acknowledged it"),
        "escalation.resolved": _("resolved it"),
        "escalation.assigned": _("changed who works on it"),
        "escalation.undone": _("undid a change"),
    }
    return words.get(action, _("changed it"))


def enrollment_status_label(code: str, language: str) -> str:
    """An enrollment's status or a change on its timeline (app/programs/enrollment.py)."""
    return _enrollment_status_labels(language).get(code, code.replace("_", " "))


@cache
def _enrollment_status_labels(language: str) -> dict[str, str]:
    """Built once per language (the queue renders hundreds of rows)."""
    _ = gettext_for(language)
    return {
        "active": _("active"),
        "paused": _("paused"),
        "ended": _("ended"),
        "created": _("enrolled"),
        "moved": _("new start date"),
        "resumed": _("resumed"),
    }

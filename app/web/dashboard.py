"""The patient list (search by name, MRN, phone) and the program dashboard with its CSV exports (issue 11
item 4). Scoped to the viewer's programs (403 for another program), audited like every PHI view."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Program, User, utcnow
from app.patients.access import Scope, program_scope
from app.patients.search import search_patients
from app.programs.dashboard import answers_export, escalations_export, program_stats
from app.runtime import Runtime
from app.web.labels import zone
from app.web.security import audit_staff, roles_required

bp = Blueprint("dashboard", __name__)
#: The default range: the last 30 days, today included.
DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366
#: Rows fetched from the database per round trip while a CSV streams (memory stays flat).
EXPORT_BATCH = 1000
#: Characters a spreadsheet would read as a formula: such a cell gets a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _rt() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


def _me(session: Session) -> User:
    user = session.get(User, int(current_user.id))
    if user is None:
        abort(403)
    return user


def _viewer_zone() -> str:
    return str(getattr(current_user, "timezone", "UTC") or "UTC")


@bp.get("/patients")
@roles_required()
def patients() -> ResponseReturnValue:
    """Search the viewer's patients by name, MRN or phone; 50 a page, audited with the ids shown."""
    text = request.args.get("q", "")[:100]
    raw_page = request.args.get("page", "1")
    page = int(raw_page) if raw_page.isdigit() and len(raw_page) < 6 else 1
    with _rt().sessions() as s, s.begin():
        scope = program_scope(s, _me(s))
        found = search_patients(s, text, scope, page)
        audit_staff(
            s,
            "patients.listed",
            "patient",
            None,
            searched=bool(found.query),
            page=found.page,
            patient_ids=[p.id for p in found.patients],
        )
        programs = {p.id: p.name for p in s.scalars(select(Program)).all()}
        return render_template("patients.html", found=found, programs=programs)


# -- the program dashboard -------------------------------------------------------------------------------


def _day(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw and len(raw) == 10 else None
    except ValueError:
        return None


def _choices(s: Session, scope: Scope) -> tuple[list[Program], Program, str | None, dt.date, dt.date]:
    """The programs the viewer may choose, the chosen one (403 outside the scope, 404 unknown), the
    campaign (None = all; 400 if the program does not run it) and the local dates (inclusive)."""
    query = select(Program).order_by(Program.name)
    if scope is not None:
        query = query.where(Program.id.in_(scope))
    programs = list(s.scalars(query).all())
    slug = request.args.get("program", "")
    if slug:
        chosen = s.scalars(select(Program).where(Program.slug == slug[:64])).first()
        if chosen is None:
            abort(404)
        if scope is not None and chosen.id not in scope:
            with _rt().sessions() as refused, refused.begin():  # kept: the caller's transaction rolls back
                audit_staff(refused, "dashboard.refused", "program", chosen.id, path=request.path)
            abort(403)
    elif programs:
        chosen = programs[0]
    else:
        abort(403)  # a user in no program has no numbers to see
    campaign = request.args.get("campaign", "") or None
    if campaign is not None and campaign not in _campaigns(chosen):
        abort(400)
    today = dt.datetime.now(zone(_viewer_zone())).date()
    last = _day(request.args.get("to")) or today
    first = _day(request.args.get("from")) or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last or (last - first).days > MAX_DAYS:
        abort(400)
    return programs, chosen, campaign, first, last


def _campaigns(program: Program) -> list[str]:
    ids = list(program.campaigns or []) or sorted(_rt().content.campaigns)
    return sorted(ids)


def _range(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Local dates (inclusive) in the viewer's zone → the UTC instants ``[start, end)``."""
    tz = zone(_viewer_zone())
    start = dt.datetime.combine(first, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    return start, end


@bp.get("/dashboard")
@roles_required()
def dashboard() -> ResponseReturnValue:
    """One program's numbers (and one campaign's) over a date range; links to the CSV exports."""
    with _rt().sessions() as s, s.begin():
        scope = program_scope(s, _me(s))
        programs, program, campaign, first, last = _choices(s, scope)
        start, end = _range(first, last)
        stats = program_stats(s, program.id, start=start, end=end, now=utcnow(), campaign=campaign)
        audit_staff(
            s,
            "dashboard.viewed",
            "program",
            program.id,
            campaign=campaign,
            start=first.isoformat(),
            end=last.isoformat(),
        )
        args: dict[str, Any] = {"program": program.slug, "from": first.isoformat(), "to": last.isoformat()}
        if campaign:
            args["campaign"] = campaign
        return render_template(
            "dashboard.html",
            programs=programs,
            program=program,
            campaigns=_campaigns(program),
            campaign=campaign,
            first=first,
            last=last,
            stats=stats,
            export_answers=url_for("dashboard.export", kind="answers", **args),
            export_escalations=url_for("dashboard.export", kind="escalations", **args),
            duration=duration_text,
        )


def duration_text(seconds: float | None) -> str:
    """``"1 h 05 min"`` / ``"12 min"`` / ``"40 s"``; an em dash when there is nothing to measure."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def _cell(value: Any) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


ANSWER_COLUMNS = (
    "answered_at_utc",
    "mrn",
    "given_name",
    "family_name",
    "flow_id",
    "question_id",
    "kind",
    "value",
    "unit",
    "channel",
)
ESCALATION_COLUMNS = (
    "id",
    "created_at_utc",
    "mrn",
    "given_name",
    "family_name",
    "level",
    "reasons",
    "status",
    "sla_due_at_utc",
    "acknowledged_at_utc",
    "resolved_at_utc",
    "outcome",
    "page_count",
)


@bp.get("/dashboard/export/<kind>.csv")
@roles_required()
def export(kind: str) -> ResponseReturnValue:
    """The program's answers or escalations over the range as CSV, streamed ``EXPORT_BATCH`` rows at a
    time (a large export never sits in memory). What a care manager sees, minus free text: no raw
    message text, no resolution note, no phone number. Audited before the first byte."""
    if kind not in {"answers", "escalations"}:
        abort(404)
    with _rt().sessions() as s, s.begin():
        scope = program_scope(s, _me(s))
        _programs, program, campaign, first, last = _choices(s, scope)
        audit_staff(
            s,
            "export.downloaded",
            "program",
            program.id,
            kind=kind,
            campaign=campaign,
            start=first.isoformat(),
            end=last.isoformat(),
        )
        program_id, slug = program.id, program.slug
    start, end = _range(first, last)
    rt = _rt()

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def flush() -> str:
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate(0)
            return text

        with rt.sessions() as s:
            if kind == "answers":
                writer.writerow(ANSWER_COLUMNS)
                query = answers_export(program_id, start, end, campaign)
                for a, mrn, given, family in s.execute(query.execution_options(yield_per=EXPORT_BATCH)):
                    value = a.value_number if a.kind in {"number", "scale"} else a.value_text
                    writer.writerow(
                        [
                            _cell(v)
                            for v in (
                                a.answered_at,
                                mrn,
                                given,
                                family,
                                a.flow_id,
                                a.question_id,
                                a.kind,
                                value,
                                a.unit,
                                a.channel,
                            )
                        ]
                    )
                    if buffer.tell() > 64_000:
                        yield flush()
            else:
                writer.writerow(ESCALATION_COLUMNS)
                query_e = escalations_export(program_id, start, end, campaign)
                for e, mrn, given, family in s.execute(query_e.execution_options(yield_per=EXPORT_BATCH)):
                    writer.writerow(
                        [
                            _cell(v)
                            for v in (
                                e.id,
                                e.created_at,
                                mrn,
                                given,
                                family,
                                e.level,
                                ";".join(e.reasons or [e.reason]),
                                e.status,
                                e.sla_due_at,
                                e.acknowledged_at,
                                e.resolved_at,
                                e.outcome,
                                e.page_count,
                            )
                        ]
                    )
                    if buffer.tell() > 64_000:
                        yield flush()
        yield flush()

    filename = f"{slug}-{kind}-{first.isoformat()}-{last.isoformat()}.csv"
    response = Response(stream_with_context(rows()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

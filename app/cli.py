"""The ``outreach`` command: a Flask CLI group over ``create_app`` (DESIGN §3)."""

from __future__ import annotations

import csv
import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Patient, Program
from app.runtime import Runtime

if TYPE_CHECKING:
    from app.triage import Triage


def _create_app() -> Flask:
    from app import create_app

    return create_app()


def _rt() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def main() -> None:
    """Outreach: scheduled SMS and voice check-ins with an escalation queue."""


#: Flask's own commands, which ``flask`` and ``outreach`` both already have.
FLASK_DEFAULTS = frozenset({"run", "shell", "routes"})


def register_commands(app: Flask) -> None:
    """Put the ``outreach`` commands on ``app.cli`` (DESIGN §3), so ``flask --app app tick`` and
    ``app.test_cli_runner().invoke(args=["tick"])`` reach them as the ``outreach`` script does."""
    for name, command in main.commands.items():
        if name not in FLASK_DEFAULTS and name not in app.cli.commands:
            app.cli.add_command(command, name)


def _program(session: Session, slug: str | None) -> Program:
    """The program named by --program, or the only/first one."""
    from app.patients.service import default_program

    if not slug:
        try:
            return default_program(session)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    found = session.scalars(select(Program).where(Program.slug == slug)).first()
    if found is None:
        raise click.ClickException(f"no program '{slug}'")
    return found


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from app.migrations import upgrade

    upgrade(_rt().settings.database_url, revision)
    click.echo("database is up to date")


def _parse_now(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise click.BadParameter("give a time zone offset, e.g. 2026-11-25T14:00:00+00:00")
    return parsed.astimezone(dt.UTC)


@main.command()
@click.option("--now", "now_text", default=None, help="ISO 8601 time with offset (default: the real time)")
def tick(now_text: str | None) -> None:
    """Process all work due up to now: the scheduler's one step."""
    from app.scheduling.sweeper import tick as run_tick

    counts = run_tick(_rt(), _parse_now(now_text))
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@main.command()
@click.argument("mrn")
@click.argument("campaign")
@click.option(
    "--anchor", default=None, help="anchor date, e.g. the discharge date (YYYY-MM-DD; default: patient's today)"
)
@click.option("--dose-times", default=None, help="the patient's own times, e.g. 08:00,20:00 (medication-adherence)")
@click.option("--program", default=None, help="program slug (default: the first program)")
def enroll(mrn: str, campaign: str, anchor: str | None, dose_times: str | None, program: str | None) -> None:
    """Enroll the patient with MRN in CAMPAIGN (enrolling again moves the anchor)."""
    from app.conversations.variables import InvalidVariables, clean_variables
    from app.scheduling.enrollments import ConsentRequired, UnknownCampaign
    from app.scheduling.enrollments import enroll as do_enroll

    rt = _rt()
    anchor_date = None
    if anchor:
        try:
            anchor_date = dt.date.fromisoformat(anchor)
        except ValueError:
            raise click.BadParameter("use YYYY-MM-DD", param_hint="--anchor") from None
    variables = None
    if dose_times:
        try:
            variables = clean_variables({"dose_times": dose_times})
        except InvalidVariables as exc:
            raise click.BadParameter(str(exc), param_hint="--dose-times") from None
    with rt.sessions() as session, session.begin():
        patient = _patient(session, program, mrn)
        try:
            enrollment = do_enroll(session, rt, patient, campaign, anchor_date, rt.now(), variables)
        except UnknownCampaign:
            raise click.ClickException(
                f"unknown campaign '{campaign}' (known: {', '.join(sorted(rt.content.campaigns))})"
            ) from None
        except ConsentRequired as exc:
            raise click.ClickException(
                f"not enrolled: {exc.message} (outreach record-consent {mrn} --basis express_written)"
            ) from None
        click.echo(f"enrollment {enrollment.id}: next due {enrollment.next_due_at}")


def _patient(session: Session, program: str | None, mrn: str) -> Patient:
    prog = _program(session, program)
    patient = session.scalars(select(Patient).where(Patient.program_id == prog.id, Patient.mrn == mrn)).first()
    if patient is None:
        raise click.ClickException(f"no patient with MRN {mrn}")
    return patient


@main.command("record-consent")
@click.argument("mrn")
@click.option("--basis", required=True, type=click.Choice(["express_written", "express_oral", "health_care_exemption"]))
@click.option("--date", "given_on", default=None, help="when the patient gave it (YYYY-MM-DD; default today)")
@click.option("--by", "recorded_by", default=None, help="who recorded it (default: cli)")
@click.option("--channels", default="sms,voice", show_default=True, help="channels it covers")
@click.option("--program", default=None, help="program slug (default: the first program)")
def record_consent_command(
    mrn: str, basis: str, given_on: str | None, recorded_by: str | None, channels: str, program: str | None
) -> None:
    """Record the patient's consent (basis, date, who recorded it, channels); enrollments follow it."""
    from app.patients.consent import InvalidConsent, clean_consent, record_consent
    from app.scheduling.enrollments import reschedule_if_changed
    from app.scheduling.occurrences import local_today

    rt = _rt()
    now = rt.now()
    with rt.sessions() as session, session.begin():
        patient = _patient(session, program, mrn)
        try:
            record = clean_consent(
                {
                    "basis": basis,
                    "date": given_on,
                    "recorded_by": recorded_by,
                    "channels": [c.strip() for c in channels.split(",") if c.strip()],
                },
                local_today(now, patient.timezone),
            )
        except InvalidConsent as exc:
            raise click.ClickException(str(exc)) from None
        changed = record_consent(session, patient, record, actor=recorded_by or "cli", now=now)
        reschedule_if_changed(session, rt, patient, now)
        click.echo(f"consent for {mrn}: {basis}" + ("" if changed else " (unchanged)"))


@main.command("event")
@click.argument("mrn")
@click.argument("name", type=click.Choice(["readmitted", "goal_met", "positive_screen", "unenrolled"]))
@click.option("--on", "on_date", default=None, help="the event's date (YYYY-MM-DD; default the patient's today)")
@click.option("--program", default=None, help="program slug (default: the first program)")
def event_command(mrn: str, name: str, on_date: str | None, program: str | None) -> None:
    """Record an event: campaigns that stop on it stop; touches anchored on it are scheduled."""
    from app.scheduling.enrollments import record_event

    rt = _rt()
    day = None
    if on_date:
        try:
            day = dt.date.fromisoformat(on_date)
        except ValueError:
            raise click.BadParameter("use YYYY-MM-DD", param_hint="--on") from None
    with rt.sessions() as session, session.begin():
        patient = _patient(session, program, mrn)
        changed = record_event(session, rt, patient, name, rt.now(), day)
        click.echo(f"{name}: {len(changed)} enrollment(s) changed")


@main.command("import-patients")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--program", default=None, help="program slug (default: the first program)")
@click.option("--campaign", default=None, help="also enroll every row in this campaign")
@click.option("--anchor-column", default=None, help="the column holding each row's anchor date (YYYY-MM-DD)")
@click.option("--anchor", default=None, help="the anchor date for rows without one (default: local today)")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the per-row report here (CSV) instead of printing it",
)
@click.option("--progress/--no-progress", default=None, help="progress bar (default: on for large files)")
def import_patients(
    path: Path,
    program: str | None,
    campaign: str | None,
    anchor_column: str | None,
    anchor: str | None,
    report_path: Path | None,
    progress: bool | None,
) -> None:
    """Create or update patients from a CSV (DESIGN §3's patient fields as columns), one report line a row;
    running the same file again changes nothing. Exit status 1 when a row failed."""
    from app.programs.csv_import import ImportRefused, RowResult, count_rows
    from app.programs.csv_import import import_patients as run_import

    rt = _rt()
    anchor_date = None
    if anchor:
        try:
            anchor_date = dt.date.fromisoformat(anchor)
        except ValueError:
            raise click.BadParameter("use YYYY-MM-DD", param_hint="--anchor") from None
    with rt.sessions() as session:
        prog = _program(session, program)
        session.expunge(prog)
    total = count_rows(path)
    show_bar = progress if progress is not None else total >= 5000
    report = report_path.open("w", newline="", encoding="utf-8") if report_path else None
    writer = csv.writer(report) if report else None
    if writer:
        writer.writerow(["line", "mrn", "result", "detail"])
    bar = click.progressbar(length=total, label="importing", file=sys.stderr) if show_bar else None

    def on_row(row: RowResult) -> None:
        if writer:
            writer.writerow([row.line, row.mrn, row.result, row.describe()])
        elif row.result == "failed":
            click.echo(f"{path}:{row.line}: {row.describe()}", err=True)
        else:
            click.echo(f"{path}:{row.line}: {row.mrn} {row.describe()}")
        if bar is not None:
            bar.update(1)

    try:
        if bar is not None:
            bar.__enter__()
        totals = run_import(
            rt,
            path,
            prog,
            campaign=campaign,
            anchor_column=anchor_column,
            anchor=anchor_date,
            actor=f"import:{path.name}",
            on_row=on_row,
        )
    except ImportRefused as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        if report:
            report.close()
    click.echo(totals.summary())
    if totals.failed:
        sys.exit(1)


@main.command("mllp")
@click.option("--host", default="0.0.0.0", help="address to listen on")
@click.option("--port", default=2575, type=int, help="TCP port (2575 is HL7's)")
@click.option("--program", default=None, help="program slug for every message (default: the ADT mapping's)")
def mllp_command(host: str, port: int, program: str | None) -> None:
    """Receive HL7 v2 ADT messages over MLLP and answer each with an ACK (AA / AE / AR)."""
    from app.programs.adt import receive_adt
    from app.programs.mllp import MllpServer

    rt = _rt()

    def handle(text: str) -> str:
        return receive_adt(rt, text, program_slug=program).ack

    server = MllpServer((host, port), handle)
    click.echo(f"MLLP listening on {host}:{server.port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command("tcm")
@click.option("--status", type=click.Choice(["due", "overdue", "met", "cancelled"]), default=None)
@click.option("--program", default=None, help="program slug")
def tcm_command(status: str | None, program: str | None) -> None:
    """The TCM work list: discharges, their 2-business-day deadline and status (DESIGN §4.2)."""
    from app.programs.tcm import worklist

    rt = _rt()
    with rt.sessions() as session:
        program_id = _program(session, program).id if program else None
        rows = worklist(session, rt.now(), status, program_id)
    for row in rows:
        click.echo(
            f"{row['id']:6} {row['status']:9} MRN {row['mrn']:12} discharged {row['discharge_date']} "
            f"due by {row['deadline_at']} attempts {len(row['attempts'])}"
            + (f" met by {row['met_by']}" if row["met_by"] else "")
        )
    click.echo(f"{len(rows)} discharges")


@main.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(["care_manager", "supervisor", "admin"]), default="care_manager")
@click.option("--program", "program", default=None, help="slug of a program the user works for (sees its patients)")
@click.option("--team", default=None, help="the user's team inside that program (the queue's 'My team' filter)")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_user_command(email: str, role: str, program: str | None, team: str | None, password: str) -> None:
    """Create a staff user (or reset their password and role, which signs them out everywhere).

    Without --program a care manager or supervisor sees no patient until added to one (admins see all)."""
    from app.web.auth import create_user

    try:
        create_user(_rt(), email, password, role, program=program, team=team)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    where = f" in program {program}" + (f", team {team}" if team else "") if program else ""
    click.echo(f"user {email} saved with role {role}{where}")
    if program is None and role != "admin":
        click.echo("note: no --program given; this user sees no patients until added to a program", err=True)


@main.command("create-token")
@click.option("--program", "program", required=True, help="slug of the program the token may see")
@click.option("--role", type=click.Choice(["read", "write"]), default="write", show_default=True)
@click.option("--name", default="", help="what the token is for (shown in lists)")
def create_token_command(program: str, role: str, name: str) -> None:
    """Create a JSON API token that sees only one program's patients (403 for any other); printed once,
    stored only as its SHA-256. ``read`` tokens may only GET. See README "JSON API tokens"."""
    from app.patients.api_tokens import create_token

    with _rt().sessions() as s, s.begin():
        try:
            row, token = create_token(s, program, role, name)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        prefix = row.prefix
    click.echo(token)
    click.echo(f"token {prefix}… for program {program} ({role}); store it now, it is not shown again", err=True)


@main.command("revoke-token")
@click.argument("prefix")
def revoke_token_command(prefix: str) -> None:
    """Revoke a program API token by the prefix printed when it was created (otk_ and 8 characters)."""
    from app.patients.api_tokens import revoke_token

    with _rt().sessions() as s, s.begin():
        count = revoke_token(s, prefix)
    if not count:
        raise click.ClickException(f"no live token starts with {prefix!r}")
    click.echo(f"revoked {count} token(s)")


@main.command("lint-content")
@click.option("--segments", "show_segments", is_flag=True, help="list every text's encoding and SMS segments")
@click.option("--strict", is_flag=True, help="flow texts above the reading level fail too (default: warn)")
def lint_content(show_segments: bool, strict: bool) -> None:
    """Validate every flow, campaign, red-flag and education file; report SMS segments and reading level."""
    from app.content import load_content
    from app.content_lint import SAMPLE_PATIENT_FILLED, lint, segment_totals
    from app.flows.loader import FlowError

    try:
        library = load_content(_rt().settings.content_dir)
    except FlowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    report = lint(library, strict=strict)
    from app.programs.mapping import load_mapping

    try:
        load_mapping(library.root, {*library.campaigns, *library.campaign_aliases})
    except FlowError as exc:
        report.errors.append(str(exc))
    if show_segments:
        click.echo(f"{'flow':24} {'text':28} lang encoding chars segments | filled: encoding segments")
        for row in report.segments:
            click.echo(
                f"{row.flow_id:24} {row.where[:28]:28} {row.language:4} {row.encoding:8} {row.characters:5} "
                f"{row.segments:8} | {row.filled_encoding:16} {row.filled_segments:8}"
            )
        click.echo(
            f"segment totals (plain sample values | filled: first name {SAMPLE_PATIENT_FILLED['first_name']!r}, "
            "an appointment on a Saturday):"
        )
        for name, totals in segment_totals(report.segments).items():
            click.echo(
                f"  {name:4} {totals.texts:4} texts {totals.segments:5} segments {totals.ucs2:4} UCS-2"
                f" | filled {totals.filled_segments:5} segments {totals.filled_ucs2:4} UCS-2"
            )
    for where, measure, value in report.reading:
        click.echo(f"reading: {where}: {measure} {value:.1f}")
    for duration in report.durations:
        click.echo(
            f"by phone: {duration.flow_id} [{duration.language}]: about {duration.longest:.0f} s on the longest "
            f"way ({duration.questions} questions), {duration.shortest:.0f} s on the shortest"
        )
    ucs2 = sum(1 for row in report.segments if row.encoding == "UCS-2")
    click.echo(
        f"{len(library.flows)} flows, {len(library.campaigns)} campaigns, "
        f"{sum(len(v) for v in library.education.values())} education texts; "
        f"{len(report.segments)} texts, {ucs2} need UCS-2, at most "
        f"{max((row.segments for row in report.segments), default=0)} segments"
    )
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    if report.errors:
        sys.exit(1)
    click.echo("content ok")


def _triage() -> Triage:
    from app.triage import load_triage

    content_dir: Path = _rt().settings.content_dir
    return load_triage(content_dir / "triage", content_dir.parent)


@main.command("triage")
@click.option("--lang", "language", type=click.Choice(["en", "es"]), default="en", help="the patients' language")
def triage_command(language: str) -> None:
    """Read messages one per line on stdin; print one JSON verdict per line."""
    import json

    triage = _triage()
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        click.echo(json.dumps(triage.assess(text, language).to_json(), ensure_ascii=False))


@main.command("triage-eval")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--misses", "show_misses", is_flag=True, help="list every failing row")
def triage_eval(path: Path, show_misses: bool) -> None:
    """Score triage on a labeled TSV (lang, expect, reason, text); the summary is the last six lines."""
    from app.triage.evaluation import evaluate, parse_rows

    try:
        rows = parse_rows(path.read_text(encoding="utf-8").splitlines(), str(path))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    report = evaluate(_triage(), rows)
    if show_misses:
        for row, verdict in report.misses:
            where = f"{path.name}:{row.line} {row.language} {row.expect} {row.reason}"
            click.echo(f"miss {where}: {row.text} -> {verdict.level} {list(verdict.to_json()['reasons'])}")
    for reason, (passed, total) in sorted(report.by_reason.items()):
        click.echo(f"recall {reason:20} {passed}/{total} = {passed / total:.1%}")
    for line in report.summary():
        click.echo(line)


@main.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo program, patients and care manager (idempotent)."""
    from app.demo import seed_demo

    for line in seed_demo(_rt()):
        click.echo(line)


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--tick-seconds", default=30, type=int, help="how often the demo's scheduler runs")
def demo(host: str, port: int, tick_seconds: int) -> None:
    """Seed the demo, run the scheduler in the background and serve the app (the embedded default)."""
    import threading

    from app.demo import seed_demo
    from app.scheduling.sweeper import tick as run_tick

    rt = _rt()
    lines = seed_demo(rt)
    base = f"http://{host}:{port}"
    click.echo(
        "\n".join(
            [
                "",
                "Outreach demo",
                f"  sign in:    {base}/login",
                *(f"  {line}" for line in lines),
                f"  queue:      {base}/queue",
                f"  simulator:  {base}/simulator  (play the patient)",
                "",
            ]
        )
    )
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(tick_seconds):
            try:
                run_tick(rt, dt.datetime.now(dt.UTC))
            except Exception:  # the next tick tries again; the work is in SQL
                current_app.logger.exception("demo tick failed")

    threading.Thread(target=ticker, name="demo-ticker", daemon=True).start()
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # run_simple, not app.run: Flask refuses app.run() inside its own CLI.
    run_simple(host, port, app, use_reloader=False, threaded=True)


@main.command("test-flows")
@click.option("--flow", "only", default=None, help="run only this flow's transcripts")
@click.option("--verbose", "-v", is_flag=True)
def test_flows(only: str | None, verbose: bool) -> None:
    """Run the conversation transcripts in content/flows/tests in every language."""
    from app.flows.loader import FlowError
    from app.flows.transcripts import coverage_gaps, load_transcripts, run_file

    library = _rt().content
    if only and only not in library.flows:
        click.echo(f"error: no flow '{only}' (flows: {', '.join(sorted(library.flows))})", err=True)
        sys.exit(2)
    try:
        files = load_transcripts(library.root / "flows" / "tests", library.root.parent)
    except FlowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    education = {lang: library.education_for(lang) for lang in ("en", "es")}
    resource_defaults = {lang: library.resources.variables(lang, program=None, zip_code=None) for lang in ("en", "es")}
    failed = 0
    results_by_flow: dict[str, list[object]] = {}
    for transcript in files:
        if only and transcript.flow_id != only:
            continue
        results = run_file(transcript, library.flows, library.intents, education, resource_defaults)
        results_by_flow.setdefault(transcript.flow_id, []).extend(results)
        for result in results:
            if not result.passed:
                failed += 1
                where = result.language + ("/voice" if result.channel == "voice" else "")
                click.echo(f"FAIL {transcript.path} [{where}] {result.case}")
                for failure in result.failures:
                    click.echo(f"     {failure}")
            elif verbose:
                click.echo(f"ok   {transcript.path} [{result.language}] {result.case}")
    gaps: list[str] = []
    for flow_id, flow in sorted(library.flows.items()):
        if only and flow_id != only:
            continue
        if not library.needs_own_transcripts(flow):
            continue
        if flow_id not in results_by_flow:
            gaps.append(f"{flow_id}: no transcripts (content/flows/tests/{flow_id}.yaml)")
            continue
        gaps.extend(coverage_gaps(flow, results_by_flow[flow_id]))  # type: ignore[arg-type]
    for gap in gaps:
        click.echo(f"GAP  {gap}")
    total = sum(len(v) for v in results_by_flow.values())
    click.echo(f"{total - failed} passed, {failed} failed")
    if failed or gaps:
        sys.exit(1)


@main.command()
@click.argument("flow_id")
@click.option("--lang", default="en", type=click.Choice(["en", "es"]))
@click.option("--name", default="Ana", help="the patient's first name in the texts")
@click.option("--channel", default="sms", type=click.Choice(["sms", "voice"]), help="voice: play it as a phone call")
@click.option("--nurse-line", "nurse_line", default=None, help="voice: the nurse number an EMERGENCY offers (0)")
@click.option(
    "--modules",
    default=None,
    help="a combined check-in (chronic-care-check): the modules or conditions to compose, comma-separated "
    "(hf,diabetes,copd); default all",
)
def simulate(flow_id: str, lang: str, name: str, channel: str, nurse_line: str | None, modules: str | None) -> None:
    """Play FLOW in the terminal: type the patient's replies (`:wait 4h` lets time pass).

    With --channel voice, a call: digits are keypresses (1, 183#), `say: words` (or `say[0.4]: words`
    with a speech confidence) is speech, an empty line is silence. A combined check-in's id plays the
    composition of ``--modules`` (every module when omitted), as a care plan would choose them."""
    from app.flows import engine
    from app.flows.simulation import simulate as run
    from app.flows.simulation import simulate_call

    library = _rt().content
    public = library.startable_flows()
    if flow_id in library.compositions:
        wanted = [m.strip() for m in modules.split(",") if m.strip()] if modules else None
        chosen = library.combined_flow_id(flow_id, wanted or library.compositions[flow_id].modules)
        if chosen is None:
            raise click.ClickException(f"none of '{modules}' is a module of {flow_id}")
        click.echo(f"(playing {chosen})")
        public = [*public, chosen]
        flow_id = chosen
    if flow_id not in public:
        raise click.ClickException(f"unknown flow '{flow_id}' (known: {', '.join(public)})")
    ctx = engine.PatientContext(
        first_name=name,
        language=lang,
        program_name="Demo Clinic",
        program_phone="555-0100",
        variables={
            "medication_name": "metoprolol",
            "dose_time": "8:00",
            "appointment_date": "12/1/2026",
            "appointment_time": "10:30",
        },
        education=library.education_for(lang),
        channel=channel,
    )
    ctx = replace(ctx, variables={**library.resources.variables(lang, program=None, zip_code=None), **ctx.variables})
    if channel == "voice":
        simulate_call(
            library.flows[flow_id], ctx, sys.stdin, click.echo, library.intents, flows=library.flows,
            nurse_line=nurse_line, threshold=_rt().settings.speech_confidence_min,
        )  # fmt: skip
        return
    run(library.flows[flow_id], ctx, sys.stdin, click.echo, library.intents)


@main.command("create-program")
@click.argument("slug")
@click.argument("name")
@click.option("--phone", required=True, help="the number patients call, as shown in texts")
@click.option("--on-call", "on_call", default=None, help="paged by SMS for every EMERGENCY (E.164)")
@click.option("--supervisor", default=None, help="paged when an EMERGENCY is still not acknowledged")
@click.option("--express-consent", is_flag=True, help="not capped at 1 text a day / 3 a week (FCC 15-72)")
@click.option("--sender", default=None, help="the program's own sending number (default: TWILIO_FROM_NUMBER)")
@click.option("--messaging-service", default=None, help="or a Twilio Messaging Service SID (MG...)")
@click.option("--nurse-line", default=None, help="the nurse line patients are transferred to")
@click.option("--timezone", default=None, help="IANA zone of the program's business days (TCM)")
@click.option("--quiet-hours", default=None, help="outreach window, e.g. 8-20 (within 8-21)")
@click.option("--campaign", "campaigns", multiple=True, help="a campaign the program runs (repeat; none = all)")
@click.option("--daily-cap", type=int, default=None, help="with express consent: initiated texts a day")
@click.option("--weekly-cap", type=int, default=None, help="with express consent: initiated texts a week")
def create_program(
    slug: str,
    name: str,
    phone: str,
    on_call: str | None,
    supervisor: str | None,
    express_consent: bool,
    sender: str | None,
    messaging_service: str | None,
    nurse_line: str | None,
    timezone: str | None,
    quiet_hours: str | None,
    campaigns: tuple[str, ...],
    daily_cap: int | None,
    weekly_cap: int | None,
) -> None:
    """Create or update a care program (idempotent by SLUG)."""
    from app.programs.programs import ProgramInvalid, save_program

    rt = _rt()
    changes: dict[str, object] = {
        "name": name,
        "phone_display": phone,
        "on_call_phone": on_call,
        "supervisor_phone": supervisor,
        "express_consent": express_consent,
    }
    for key, value in (
        ("sender_number", sender),
        ("messaging_service_sid", messaging_service),
        ("nurse_line", nurse_line),
        ("timezone", timezone),
        ("daily_cap", daily_cap),
        ("weekly_cap", weekly_cap),
    ):
        if value is not None:
            changes[key] = value
    if campaigns:
        changes["campaigns"] = list(campaigns)
    if quiet_hours:
        try:
            start, end = (int(part) for part in quiet_hours.split("-", 1))
        except ValueError:
            raise click.BadParameter("use START-END hours, e.g. 8-20", param_hint="--quiet-hours") from None
        changes.update(quiet_start_hour=start, quiet_end_hour=end)
    try:
        with rt.sessions() as session, session.begin():
            program, _created = save_program(session, slug, changes, set(rt.content.campaigns))
            on_call_e164 = program.on_call_phone
    except ProgramInvalid as exc:
        raise click.ClickException(str(exc)) from None
    if not on_call_e164:
        click.echo("warning: no on-call number: EMERGENCY escalations will only appear in the queue", err=True)
    click.echo(f"program {slug} saved")


@main.command("list-programs")
def list_programs() -> None:
    """Every program: slug, name, sender, caps and campaigns."""
    from app.programs.programs import program_json

    with _rt().sessions() as session:
        for program in session.scalars(select(Program).order_by(Program.id)).all():
            data = program_json(program)
            sender = data["messaging_service_sid"] or data["sender_number"] or "(deployment sender)"
            click.echo(
                f"{data['slug']:20} {data['name']:30} sender {sender} quiet {data['quiet_start_hour']}-"
                f"{data['quiet_end_hour']} caps {data['daily_cap'] or '-'}/{data['weekly_cap'] or '-'} "
                f"campaigns {','.join(data['campaigns']) or 'all'}"
            )

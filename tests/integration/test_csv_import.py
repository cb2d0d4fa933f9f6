"""``outreach import-patients FILE.csv [--campaign ID --anchor-column ...]`` (issue 10 item 4): every row
validated and reported, re-running the same file changes nothing, batches, enrollment per row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from app.models import AuditEvent, Enrollment, Patient, Program, ScheduledTouch
from app.runtime import Runtime

HEADER = "mrn,given_name,family_name,phone,language,timezone,conditions,birth_date,discharged\n"
ROWS = [
    "K-1,Rosa,Diaz,312-555-0121,es,America/Chicago,heart_failure;diabetes,1950-03-01,2026-11-27",
    "K-2,Li,Wei,(202) 555-0122,en,America/New_York,,1944-12-31,2026-11-28",
    "K-3,Ana,Ng,+1 415 555 0123,en-US,America/Los_Angeles,copd,,2026-11-29",
]
BAD = [
    "K-4,Bo,Li,not-a-phone,en,America/Chicago,,,2026-11-29",  # phone
    "K-5,Bo,Li,312-555-0125,fr,America/Chicago,,,2026-11-29",  # language
    "K-6,Bo,Li,312-555-0126,en,Mars/Base,,,2026-11-29",  # time zone
    "K-7,Bo,Li,312-555-0127,en,America/Chicago,,1950-13-01,2026-11-29",  # birth date
    "K-8,Bo,Li,312-555-0128,en,America/Chicago,,,11/29/2026",  # anchor date
    ",Bo,Li,312-555-0129,en,America/Chicago,,,2026-11-29",  # MRN
    "K-1,Rosa,Diaz,312-555-0121,es,America/Chicago,heart_failure,,2026-11-27",  # repeated MRN
]
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)


def _write(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "patients.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _state(rt: Runtime) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[int], int]:
    with rt.sessions() as session:
        patients = [
            (p.id, p.mrn, p.phone, p.language, p.timezone, p.updated_at)
            for p in session.scalars(select(Patient).order_by(Patient.id)).all()
        ]
        enrollments = [
            (e.id, e.patient_id, e.campaign, e.anchor_date, e.schedule_version)
            for e in session.scalars(select(Enrollment).order_by(Enrollment.id)).all()
        ]
        touches = list(session.scalars(select(ScheduledTouch.id).order_by(ScheduledTouch.id)).all())
        audits = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        return patients, enrollments, touches, audits


def test_every_row_is_validated_and_reported_by_line(app: Flask, rt: Runtime, program: Program, tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS + BAD)
    result = app.test_cli_runner().invoke(args=["import-patients", str(path), "--anchor-column", "discharged"])
    assert result.exit_code == 1
    assert "created=3 updated=0 unchanged=0 failed=7" in result.output
    for line, field in (
        (5, "phone"),
        (6, "language"),
        (7, "timezone"),
        (8, "birth_date"),
        (9, "discharged"),
        (10, "mrn"),
    ):
        assert f"{path}:{line}: {field}" in result.output, (line, field, result.output)
    assert f"{path}:11: mrn: repeats line 2" in result.output
    assert f"{path}:2: K-1 created" in result.output
    with rt.sessions() as session:
        rosa = session.scalars(select(Patient).where(Patient.mrn == "K-1")).one()
        assert (rosa.phone, rosa.language, rosa.conditions, rosa.birth_date) == (
            "+13125550121",
            "es",
            ["heart_failure", "diabetes"],
            dt.date(1950, 3, 1),
        )
        assert session.scalars(select(Patient.mrn).order_by(Patient.mrn)).all() == ["K-1", "K-2", "K-3"]


def test_rerunning_the_same_file_changes_nothing(app: Flask, rt: Runtime, program: Program, tmp_path: Path) -> None:
    rt.clock = lambda: NOW
    path = _write(tmp_path, ROWS)
    args = ["import-patients", str(path), "--campaign", "post-discharge-tcm", "--anchor-column", "discharged"]
    first = app.test_cli_runner().invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "created=3 updated=0 unchanged=0 failed=0 enrolled=3" in first.output
    before = _state(rt)
    assert len(before[1]) == 3 and before[2]
    assert [e[3] for e in before[1]] == [dt.date(2026, 11, 27), dt.date(2026, 11, 28), dt.date(2026, 11, 29)]
    rt.clock = lambda: NOW + dt.timedelta(minutes=5)
    again = app.test_cli_runner().invoke(args=args)
    assert again.exit_code == 0, again.output
    assert "created=0 updated=0 unchanged=3 failed=0 enrolled=0" in again.output
    assert f"{path}:2: K-1 unchanged, enrollment unchanged" in again.output
    assert _state(rt) == before  # not a row, a touch, an audit event or a timestamp changed


def test_a_changed_row_updates_only_that_patient_and_moves_its_anchor(
    app: Flask, rt: Runtime, program: Program, tmp_path: Path
) -> None:
    rt.clock = lambda: NOW
    args = ["import-patients", "--campaign", "post-discharge-tcm", "--anchor-column", "discharged"]
    app.test_cli_runner().invoke(args=[*args, str(_write(tmp_path, ROWS))])
    changed = [ROWS[0].replace("312-555-0121", "312-555-0999"), ROWS[1].replace("2026-11-28", "2026-11-29"), ROWS[2]]
    result = app.test_cli_runner().invoke(args=[*args, str(_write(tmp_path, changed))])
    assert "created=0 updated=1 unchanged=2 failed=0 enrolled=1" in result.output
    assert "K-2 unchanged, enrollment moved" in result.output
    with rt.sessions() as session:
        assert session.scalars(select(Patient.phone).where(Patient.mrn == "K-1")).one() == "+13125550999"
        wei = session.scalars(select(Enrollment).join(Patient).where(Patient.mrn == "K-2")).one()
        assert (wei.anchor_date, wei.schedule_version) == (dt.date(2026, 11, 29), 2)


def test_absent_columns_keep_a_known_patients_values_and_a_report_file_gets_every_row(
    app: Flask, rt: Runtime, program: Program, tmp_path: Path
) -> None:
    app.test_cli_runner().invoke(args=["import-patients", str(_write(tmp_path, ROWS))])
    slim = tmp_path / "slim.csv"
    slim.write_text("mrn,given_name,family_name,phone\nK-1,Rosa,Diaz,312-555-0121\nK-9,Al,Bo,312-555-0131\n")
    report = tmp_path / "report.csv"
    result = app.test_cli_runner().invoke(args=["import-patients", str(slim), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "created=1 updated=0 unchanged=1" in result.output
    assert report.read_text().splitlines() == [
        "line,mrn,result,detail",
        "2,K-1,unchanged,unchanged",
        "3,K-9,created,created",
    ]
    with rt.sessions() as session:
        rosa = session.scalars(select(Patient).where(Patient.mrn == "K-1")).one()
        assert (rosa.language, rosa.timezone) == ("es", "America/Chicago")


def test_a_file_that_cannot_work_is_refused_before_any_write(
    app: Flask, rt: Runtime, program: Program, tmp_path: Path
) -> None:
    path = _write(tmp_path, ROWS)
    runner = app.test_cli_runner()
    for args, message in (
        (["--campaign", "nope"], "unknown campaign"),
        (["--anchor-column", "admitted"], "no column 'admitted'"),
        (["--anchor", "yesterday"], "YYYY-MM-DD"),
    ):
        result = runner.invoke(args=["import-patients", str(path), *args])
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    headless = tmp_path / "headless.csv"
    headless.write_text("K-1,Rosa\n")
    assert "missing columns" in runner.invoke(args=["import-patients", str(headless)]).output
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 0


def test_large_files_show_progress_and_go_in_batches(app: Flask, rt: Runtime, program: Program, tmp_path: Path) -> None:
    rows = [f"B-{n},Pat,Num{n},+1312555{n:04d},en,America/Chicago,,,2026-11-29" for n in range(2500)]
    path = _write(tmp_path, rows)
    report = tmp_path / "r.csv"
    result = app.test_cli_runner().invoke(args=["import-patients", str(path), "--progress", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "importing" in result.output
    assert "created=2500" in result.output
    assert len(report.read_text().splitlines()) == 2501


def test_a_campaign_that_needs_express_consent_imports_the_patients_and_says_so_per_row(
    app: Flask, rt: Runtime, tmp_path: Path
) -> None:
    """Under the health-care exemption (1 a day, 3 a week) a daily check-in needs express consent first:
    the rows are imported, not enrolled, and each row and the patient's timeline say why (never a crash,
    never a silent skip)."""
    from app.models import TimelineEvent

    with rt.sessions() as session, session.begin():
        session.add(Program(slug="exempt", name="Exempt", phone_display="555-0300", uses_healthcare_exemption=True))
    rt.clock = lambda: NOW
    path = _write(tmp_path, ROWS)
    args = ["import-patients", str(path), "--program", "exempt", "--campaign", "hf-remote-monitoring"]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "created=3 updated=0 unchanged=0 failed=0 enrolled=0 needs_consent=3" in result.output
    assert f"{path}:2: K-1 created, enrollment needs express consent" in result.output
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 0
        codes = session.scalars(select(TimelineEvent.code).where(TimelineEvent.kind == "enrollment_refused")).all()
        assert codes == ["consent_required"] * 3

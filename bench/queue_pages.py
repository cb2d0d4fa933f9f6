"""The care-manager pages' server time on PostgreSQL (issue 11): the queue with 5,000 open escalations
(target < 300 ms) and a patient page with 2 years of daily answers (target < 200 ms).

Setup: a throwaway PostgreSQL database migrated with Alembic; one program; ``--escalations`` patients, each
with one open escalation (levels mixed, a trigger each, one inbound text each: the queue shows the
patient's own words) and one patient with ``--days`` days of a daily check-in (a conversation, a prompt
and a reply text, and four answers a day: weight, two yes/no, a scale). An admin signs in through the real
form (CSRF token and all). Each page is requested ``--repeat`` times through Flask's WSGI test client in
this process, so the figure is the server's own time (routing, SQL, rendering; no network); p50 and max
are printed, with the SQL statements one request ran.

Verified: every answer is 200; the queue rendered one row per episode up to its cap (300), the most severe
first; the patient page names the patient and shows the latest answer. Run from the repository root:
``.venv/bin/python bench/queue_pages.py [--escalations 5000] [--days 730]``; ``--smoke`` uses tiny sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import secrets
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script, bench/ is sys.path[0], where this file would shadow the standard library's
    # ``queue`` (redis and others import it): put the repository root there instead.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from bench import admin_url, load_average, machine_lines

DB_NAME = "outreach_bench_queue"
QUEUE_TARGET_MS = 300.0
PATIENT_TARGET_MS = 200.0
QUEUE_CAP = 300  # open_episodes' default limit
PASSWORD = "bench-password-2026"
LEVELS = ("EMERGENCY", "URGENT", "ROUTINE")


def seed(database_url: str, escalations: int, days: int, now: dt.datetime) -> int:
    """Bulk-inserts the rows (Core executemany, not the ORM); returns the long-history patient's id."""
    import sqlalchemy as sa

    from app.models import Answer, Conversation, Escalation, EscalationTrigger, Message, Patient, Program

    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        program_id = conn.execute(
            sa.insert(Program)
            .values(
                slug="bench-clinic",
                name="Bench Clinic",
                phone_display="555-0100",
                quiet_start_hour=8,
                quiet_end_hour=21,
                uses_healthcare_exemption=True,
                thresholds={},
                timezone="America/New_York",
                campaigns=[],
                created_at=now,
            )
            .returning(Program.id)
        ).scalar_one()
        patients = [
            {
                "program_id": program_id,
                "mrn": f"Q{n:06d}",
                "given_name": "Pat",
                "family_name": f"Queue{n}",
                "phone": f"+1202{n // 10_000 % 10}55{n % 10_000:04d}",
                "language": "es" if n % 3 == 0 else "en",
                "timezone": "America/New_York",
                "preferred_channel": "sms",
                "conditions": ["heart_failure"],
                "thresholds": {},
                "status": "active",
                "opted_out": False,
                "phone_invalid": False,
                "voice_opted_out": False,
                "sms_capable": True,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(escalations + 1)
        ]
        conn.execute(sa.insert(Patient), patients)
        ids = list(conn.execute(sa.select(Patient.id).order_by(Patient.id)).scalars())
        long_id, queue_ids = ids[0], ids[1:]
        opened = [now - dt.timedelta(minutes=5 + n % 600) for n in range(len(queue_ids))]
        conn.execute(
            sa.insert(Message),
            [
                {
                    "patient_id": pid,
                    "direction": "inbound",
                    "channel": "sms",
                    "kind": "reply",
                    "body": "weight up, feet swollen",
                    "status": "received",
                    "attempts": 0,
                    "needs_review": False,
                    "created_at": opened[n] - dt.timedelta(minutes=1),
                    "updated_at": opened[n],
                }
                for n, pid in enumerate(queue_ids)
            ],
        )
        conn.execute(
            sa.insert(Escalation),
            [
                {
                    "patient_id": pid,
                    "level": LEVELS[n % 3],
                    "reason": "weight_gain",
                    "reasons": ["weight_gain"],
                    "status": "open" if n % 5 else "acknowledged",
                    "created_at": opened[n],
                    "sla_due_at": opened[n] + dt.timedelta(minutes=15 + 60 * (n % 3)),
                    "page_count": 0,
                }
                for n, pid in enumerate(queue_ids)
            ],
        )
        esc_ids = conn.execute(sa.select(Escalation.id, Escalation.created_at).order_by(Escalation.id)).all()
        conn.execute(
            sa.insert(EscalationTrigger),
            [
                {
                    "escalation_id": eid,
                    "rule_id": "weight-gain-1-day",
                    "level": "URGENT",
                    "reason": "weight_gain",
                    "detail": {"weight_rise": 4.0},
                    "created_at": created,
                }
                for eid, created in esc_ids
            ],
        )
        # The long story: one check-in a day for `days` days.
        first_day = now - dt.timedelta(days=days)
        conversations = [
            {
                "patient_id": long_id,
                "flow_id": "hf-daily-check",
                "flow_version": "bench",
                "status": "completed",
                "state": {},
                "variables": {},
                "channel": "sms",
                "started_at": first_day + dt.timedelta(days=d),
                "updated_at": first_day + dt.timedelta(days=d, minutes=5),
                "ended_at": first_day + dt.timedelta(days=d, minutes=5),
            }
            for d in range(days)
        ]
        conn.execute(sa.insert(Conversation), conversations)
        conv_ids = list(
            conn.execute(
                sa.select(Conversation.id).where(Conversation.patient_id == long_id).order_by(Conversation.id)
            ).scalars()
        )
        messages: list[dict[str, Any]] = []
        answers: list[dict[str, Any]] = []
        for d, cid in enumerate(conv_ids):
            at = first_day + dt.timedelta(days=d)
            for direction, body, minutes in (("outbound", "Please reply with your weight.", 0), ("inbound", "183", 2)):
                messages.append(
                    {
                        "patient_id": long_id,
                        "conversation_id": cid,
                        "direction": direction,
                        "channel": "sms",
                        "kind": "prompt" if direction == "outbound" else "reply",
                        "body": body,
                        "status": "delivered" if direction == "outbound" else "received",
                        "attempts": 1 if direction == "outbound" else 0,
                        "needs_review": False,
                        "created_at": at + dt.timedelta(minutes=minutes),
                        "updated_at": at + dt.timedelta(minutes=minutes),
                    }
                )
            for question, kind, number, text in (
                ("weight", "number", 180.0 + (d % 7), None),
                ("swelling", "yes_no", None, "no"),
                ("breathing", "yes_no", None, "no"),
                ("feeling", "scale", float(1 + d % 5), None),
            ):
                answers.append(
                    {
                        "patient_id": long_id,
                        "conversation_id": cid,
                        "flow_id": "hf-daily-check",
                        "question_id": question,
                        "kind": kind,
                        "value_number": number,
                        "value_text": text,
                        "unit": "lb" if question == "weight" else None,
                        "raw": text or str(number),
                        "channel": "sms",
                        "answered_at": at + dt.timedelta(minutes=3),
                    }
                )
        conn.execute(sa.insert(Message), messages)
        conn.execute(sa.insert(Answer), answers)
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return long_id


def timed(client: Any, path: str, repeat: int, counts: Counter[str]) -> tuple[list[float], list[float], str, int]:
    """``repeat`` GETs of ``path`` after one warm-up: wall-clock and this process's CPU milliseconds each
    (on a shared machine the CPU time is the steadier figure; it leaves out PostgreSQL's own work), the
    last body and status."""
    client.get(path)
    wall: list[float] = []
    cpu: list[float] = []
    body, status = "", 0
    for _ in range(repeat):
        before = counts["statements"]
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(path)
        body = response.get_data(as_text=True)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        counts[f"{path}:last"] = counts["statements"] - before
        status = response.status_code
    return wall, cpu, body, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--escalations", type=int, default=5000, help="open escalations, one patient each")
    parser.add_argument("--days", type=int, default=730, help="days of daily check-ins on the patient page")
    parser.add_argument("--repeat", type=int, default=10, help="timed requests per page")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, every phase and check (the suite runs it)")
    args = parser.parse_args()
    db_name = DB_NAME
    if args.smoke:
        args.escalations, args.days, args.repeat = 40, 20, 2
        db_name = f"{DB_NAME}_smoke_{os.getpid()}"

    from sqlalchemy import event

    from app import create_app
    from app.migrations import upgrade
    from app.web.auth import create_user
    from tests.support.services import create_database, drop_database

    admin = admin_url()
    database_url = create_database(admin, db_name)
    checks: list[tuple[str, bool, str]] = []
    try:
        for line in machine_lines(database_url):
            print(line)
        print(f"load average before: {load_average()}")
        upgrade(database_url)
        now = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        long_id = seed(database_url, args.escalations, args.days, now)
        print(
            f"seeded {args.escalations} open escalations and {args.days} days x 4 answers in "
            f"{time.perf_counter() - started:.1f} s"
        )
        app = create_app(
            {
                "database_url": database_url,
                "secret_key": secrets.token_hex(16),
                "channel": "console",
                "session_cookie_secure": False,
                "testing": True,
            }
        )
        rt = app.extensions["outreach"]
        create_user(rt, "bench-admin@example.org", PASSWORD, "admin")
        counts: Counter[str] = Counter()

        @event.listens_for(rt.engine, "before_cursor_execute")
        def _count(*_args: Any) -> None:
            counts["statements"] += 1

        client = app.test_client()
        login = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert token is not None
        signed = client.post(
            "/login", data={"email": "bench-admin@example.org", "password": PASSWORD, "csrf_token": token.group(1)}
        )
        checks.append(("signed in", signed.status_code == 302, str(signed.status_code)))

        queue_ms, queue_cpu, queue_html, queue_status = timed(client, "/queue", args.repeat, counts)
        rows = len(re.findall(r'<tr data-escalation="', queue_html))
        expected_rows = min(QUEUE_CAP, args.escalations)
        first_level = re.search(r'<tr data-escalation="[^"]*"[^>]*data-announce="([A-Z]+):', queue_html)
        checks.append(("queue answered 200", queue_status == 200, str(queue_status)))
        checks.append((f"queue rendered {expected_rows} episode rows", rows == expected_rows, str(rows)))
        checks.append(
            (
                "queue shows EMERGENCY first",
                first_level is not None and first_level.group(1) == "EMERGENCY",
                first_level.group(1) if first_level else "none",
            )
        )
        checks.append(("queue shows the patient's own words", "weight up, feet swollen" in queue_html, ""))

        patient_path = f"/patients/{long_id}"
        patient_ms, patient_cpu, patient_html, patient_status = timed(client, patient_path, args.repeat, counts)
        checks.append(("patient page answered 200", patient_status == 200, str(patient_status)))
        checks.append(("patient page names the patient", "Queue0" in patient_html, ""))
        latest_weight = f"{180 + (args.days - 1) % 7}"
        checks.append(("patient page shows the latest weight", latest_weight in patient_html, latest_weight))

        q50, qmax = statistics.median(queue_ms), max(queue_ms)
        p50, pmax = statistics.median(patient_ms), max(patient_ms)
        print(
            f"queue page, {args.escalations} open escalations: p50 {q50:.1f} ms, max {qmax:.1f} ms, "
            f"CPU p50 {statistics.median(queue_cpu):.1f} ms, "
            f"{counts['/queue:last']} SQL statements, {len(queue_html) // 1024} KiB (target < {QUEUE_TARGET_MS:.0f} ms)"
        )
        print(
            f"patient page, {args.days} days x 4 answers: p50 {p50:.1f} ms, max {pmax:.1f} ms, "
            f"CPU p50 {statistics.median(patient_cpu):.1f} ms, "
            f"{counts[patient_path + ':last']} SQL statements, {len(patient_html) // 1024} KiB "
            f"(target < {PATIENT_TARGET_MS:.0f} ms)"
        )
        print(f"load average after: {load_average()}")
        print("checks:")
        for name, good, value in checks:
            print(f"  {'ok  ' if good else 'FAIL'} {name}{': ' + value if value else ''}")
        verified = all(good for _n, good, _v in checks)
        sized = not args.smoke
        print(
            f"RESULT queue: smoke={args.smoke} verified={verified} escalations={args.escalations} days={args.days} "
            f"queue_p50_ms={q50:.1f} queue_max_ms={qmax:.1f} queue_cpu_p50_ms={statistics.median(queue_cpu):.1f} "
            f"queue_target={('met' if q50 < QUEUE_TARGET_MS else 'missed') if sized else 'n/a'} "
            f"patient_p50_ms={p50:.1f} patient_max_ms={pmax:.1f} "
            f"patient_cpu_p50_ms={statistics.median(patient_cpu):.1f} "
            f"patient_target={('met' if p50 < PATIENT_TARGET_MS else 'missed') if sized else 'n/a'}"
        )
        rt.engine.dispose()
        return 0 if verified else 1
    finally:
        if not args.keep:
            drop_database(admin, db_name)


if __name__ == "__main__":
    sys.exit(main())

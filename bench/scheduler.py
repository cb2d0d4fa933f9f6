"""The scheduler at a health plan's scale (issue 10, "Scale"): one tick over 100,000 active enrollments,
the 09:00 wave, and enrollment through the API.

Setup: a throwaway PostgreSQL database, seeded in bulk SQL (``INSERT ... SELECT generate_series``, not the
API): ``--enrollments`` patients in three time zones (New York, Chicago, Los Angeles), each enrolled in
``hf-remote-monitoring`` with ``--touches`` pending daily 09:00-local check-ins (the schedule basis the app
computes, so the tick does not re-derive them), plus ``--due`` of them with one more check-in due now.

1. tick, none due: ``app.scheduling.sweeper.tick`` at a moment when nothing is due (median of 5 ticks),
   then the same after phase 2 (5,000 conversations open); SQL statements per tick counted.
2. tick, ``--due`` due: one tick starts every due check-in (conversation, first text queued, send job);
   verified in SQL (touches done, one conversation and one queued text each) and in Redis (send jobs).
3. the 09:00 wave: ``--wave`` more patients, each with a check-in at 09:00 local on the same day, split
   over the three zones. Two RQ workers (the Procfile's worker class) send through the local Twilio
   server (``--latency-ms`` 200 per API call, as bench/sms_outbound.py) at the sender's rate limit
   (``OUTREACH_SMS_RATE`` = ``--rate`` segments/s). For each zone the simulated clock is set to 09:00
   local and the scheduler ticks as the Procfile does (every ``--tick-interval`` s, the first tick at the
   start of the minute); the clock for that zone stops when its last text is at the Twilio server.
   Target: every text handed to the channel within the minute it is due. Verified at the server: one
   text per row, none twice, none missing; no 1-second window above the rate limit.
4. enrollment through the API from one client: ``POST /api/v1/patients`` + ``POST /api/v1/enrollments``
   (hf-remote-monitoring, 31 check-ins each) for ``--api-patients`` patients, one request after the other,
   against gunicorn (``-w 2 --threads 4``). Verified in SQL: every patient enrolled with its touches.

Targets (issue 10): tick over 100,000 enrollments < 1 s with 5,000 due and < 100 ms with none due; the
wave in the minute; ≥ 200 patients/s through the API. A missed target is a figure, not a failure.

Run from the repository root:  .venv/bin/python bench/scheduler.py [--enrollments 100000 --due 5000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    VENV_BIN,
    Children,
    admin_url,
    bench_redis_url,
    children,
    free_port,
    load_average,
    machine_busy_seconds,
    machine_lines,
    start_fake_twilio,
    wait_http,
)

DB_NAME = "outreach_bench_scheduler"
PUBLIC_BASE_URL = "https://outreach.example.org"
ACCOUNT_SID = "AC" + "feed" * 8  # the fake server's defaults
AUTH_TOKEN = "test-token"
FROM_NUMBER = "+15005550006"
API_TOKEN = "bench-api-token"
QUEUE = "outreach"
CAMPAIGN = "hf-remote-monitoring"
TOUCH = "daily-check"
FLOW = "hf-daily-check"
ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles")
#: Day 0 of the simulated calendar (a Wednesday; no DST change nearby).
DAY0 = dt.date(2027, 1, 13)


def app_env(database_url: str, redis_url: str, twilio_base: str, rate: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTREACH_", "TWILIO_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=secrets.token_hex(16),
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        API_TOKEN=API_TOKEN,
        OUTREACH_CHANNEL="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_BASE_URL=twilio_base,
        OUTREACH_SMS_RATE=f"{rate:g}",
    )
    return env


def runtime(env: dict[str, str]) -> Any:
    from app.bootstrap import build_runtime
    from app.config import settings_from_env

    return build_runtime(settings_from_env(env))


class StatementCounter:
    """SQL statements sent on an engine while armed (``before_cursor_execute``)."""

    def __init__(self, engine: Any):
        from sqlalchemy import event

        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def basis_for(rt: Any, tz: str, anchor: dt.date) -> str:
    """The schedule basis the app stores for a seeded enrollment (app/scheduling/enrollments.py)."""
    from app.models import Enrollment, Patient
    from app.scheduling.enrollments import schedule_basis

    campaign = rt.content.campaign(CAMPAIGN)
    patient = Patient(timezone=tz, conditions=["heart_failure"])
    enrollment = Enrollment(anchor_date=anchor, variables={}, events={})
    return str(schedule_basis(campaign, patient, enrollment))


def seed(
    rt: Any,
    program_id: int,
    prefix: str,
    first: int,
    count: int,
    anchor: dt.date,
    days: tuple[int, int],
) -> float:
    """``count`` patients (three zones, express written consent, heart failure), each enrolled in the HF
    campaign with daily 09:00-local pending check-ins on days ``days`` (inclusive) after ``anchor``.
    Bulk SQL; returns the seconds it took."""
    import sqlalchemy as sa

    started = time.monotonic()
    bases = {tz: basis_for(rt, tz, anchor) for tz in ZONES}
    zone_case = "CASE g % 3 " + " ".join(f"WHEN {i} THEN '{tz}'" for i, tz in enumerate(ZONES)) + " END"
    basis_case = "CASE p.timezone " + " ".join(f"WHEN '{tz}' THEN '{b}'" for tz, b in bases.items()) + " END"
    with rt.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"""
                INSERT INTO patients (program_id, mrn, given_name, family_name, phone, language, timezone,
                    preferred_channel, conditions, status, opted_out, phone_invalid, voice_opted_out,
                    sms_capable, thresholds, consent_basis, consent_date, consent_recorded_at,
                    consent_recorded_by, consent_channels, created_at, updated_at)
                SELECT :program, :prefix || lpad(g::text, 7, '0'), 'Maria', 'Garcia',
                    '+1202' || (5000000 + g)::text, 'en', {zone_case}, 'sms', '["heart_failure"]', 'active',
                    false, false, false, true, '{{}}', 'express_written', :anchor, now(), 'bench',
                    '["sms", "voice"]', now(), now()
                FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g
                """
            ),
            {"program": program_id, "prefix": prefix, "anchor": anchor, "first": first, "last": first + count - 1},
        )
        conn.execute(
            sa.text(
                f"""
                INSERT INTO enrollments (patient_id, campaign, anchor_date, status, schedule_version, variables,
                    created_at, schedule_basis, events, next_due_at)
                SELECT p.id, :campaign, :anchor, 'active', 1, '{{}}', now(), {basis_case}, '{{}}',
                    ((CAST(:anchor AS date) + CAST(:d0 AS integer)) + time '09:00') AT TIME ZONE p.timezone
                FROM patients p WHERE p.program_id = :program AND p.mrn LIKE :prefix || '%'
                """
            ),
            {"campaign": CAMPAIGN, "anchor": anchor, "program": program_id, "prefix": prefix, "d0": days[0]},
        )
        conn.execute(
            sa.text(
                f"""
                INSERT INTO scheduled_touches (enrollment_id, touch_id, flow_id, due_at, scheduled_for,
                    stale_after_minutes, occurrence_key, status)
                SELECT e.id, '{TOUCH}', '{FLOW}', t.at, t.at, 720,
                    e.id || ':' || '{TOUCH}:v1:' || to_char(t.at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MI"Z"'),
                    'pending'
                FROM enrollments e JOIN patients p ON p.id = e.patient_id
                CROSS JOIN generate_series(CAST(:d0 AS integer), CAST(:d1 AS integer)) AS d
                CROSS JOIN LATERAL (SELECT ((e.anchor_date + d) + time '09:00') AT TIME ZONE p.timezone AS at) t
                WHERE p.program_id = :program AND p.mrn LIKE :prefix || '%'
                """
            ),
            {"d0": days[0], "d1": days[1], "program": program_id, "prefix": prefix},
        )
    with rt.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.monotonic() - started


def make_due(rt: Any, program_id: int, count: int, at: dt.datetime) -> None:
    """One more check-in due at ``at`` for ``count`` enrollments spread over the three zones."""
    import sqlalchemy as sa

    with rt.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"""
                INSERT INTO scheduled_touches (enrollment_id, touch_id, flow_id, due_at, scheduled_for,
                    stale_after_minutes, occurrence_key, status)
                SELECT e.id, '{TOUCH}', '{FLOW}', CAST(:at AS timestamptz), CAST(:at AS timestamptz), 720,
                    e.id || ':' || '{TOUCH}:v1:' || to_char(CAST(:at AS timestamptz) AT TIME ZONE 'UTC',
                    'YYYYMMDD"T"HH24MI"Z"'), 'pending'
                FROM enrollments e JOIN patients p ON p.id = e.patient_id
                WHERE p.program_id = :program AND p.mrn LIKE 'B%' ORDER BY e.id LIMIT :count
                """
            ),
            {"at": at, "program": program_id, "count": count},
        )
        conn.execute(
            sa.text(
                "UPDATE enrollments e SET next_due_at = t.due_at FROM scheduled_touches t "
                "WHERE t.enrollment_id = e.id AND t.due_at = :at"
            ),
            {"at": at},
        )
        conn.exec_driver_sql("ANALYZE scheduled_touches")


def scalar(rt: Any, sql: str, **params: Any) -> Any:
    import sqlalchemy as sa

    with rt.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def timed_tick(rt: Any, now: dt.datetime, counter: StatementCounter) -> tuple[float, dict[str, int], int]:
    from app.scheduling import sweeper

    before = counter.count
    t0 = time.perf_counter()
    counts = sweeper.tick(rt, now)
    return time.perf_counter() - t0, counts, counter.count - before


def fake_messages(twilio_base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{twilio_base}/_fake/messages", timeout=60) as response:
        result: list[dict[str, Any]] = json.loads(response.read())
        return result


def mid_of(entry: dict[str, Any]) -> int | None:
    callback = str(entry.get("StatusCallback", ""))
    _, _, query = callback.partition("?mid=")
    return int(query) if query.isdigit() else None


def start_workers(kids: Children, env: dict[str, str], redis_url: str, count: int = 2) -> list[Any]:
    argv = [str(VENV_BIN / "rq"), "worker", "--url", redis_url, "--logging_level", "WARNING"]
    argv += ["-w", "app.worker.OutreachWorker", QUEUE]
    return [kids.start(f"worker-{i}", argv, env=env) for i in range(count)]


def wave_phase(
    rt: Any,
    args: argparse.Namespace,
    program_id: int,
    twilio_base: str,
    checks: list[tuple[str, str, bool]],
) -> dict[str, Any]:
    """Each zone's 09:00 minute on the wave day: ticks as the Procfile runs them; until every text of
    that zone is at the Twilio server. Returns per-zone figures."""
    import sqlalchemy as sa

    wave_day = DAY0 + dt.timedelta(days=2)
    took = seed(rt, program_id, "W", 0, args.wave, wave_day, (0, 0))
    print(f"wave: {args.wave} patients seeded in {took:.1f} s, one check-in each at 09:00 local on {wave_day}")
    results: dict[str, Any] = {}
    for tz in ZONES:
        due = dt.datetime.combine(wave_day, dt.time(9, 0), ZoneInfo(tz)).astimezone(dt.UTC)
        expected = int(
            scalar(
                rt,
                "SELECT count(*) FROM scheduled_touches t JOIN enrollments e ON e.id = t.enrollment_id "
                "JOIN patients p ON p.id = e.patient_id WHERE p.mrn LIKE 'W%' AND p.timezone = :tz "
                "AND t.status = 'pending' AND t.due_at = :due",
                tz=tz,
                due=due,
            )
        )
        wall0 = time.time()
        ticks: list[tuple[float, dict[str, int]]] = []
        deadline = wall0 + args.wave_patience
        sent = 0
        next_tick = wall0
        while time.time() < deadline:
            if time.time() >= next_tick:
                sim = due + dt.timedelta(seconds=time.time() - wall0)
                t0 = time.perf_counter()
                counts = _tick(rt, sim)
                ticks.append((time.perf_counter() - t0, counts))
                next_tick += args.tick_interval
            sent = int(
                scalar(
                    rt,
                    "SELECT count(*) FROM messages m JOIN patients p ON p.id = m.patient_id "
                    "WHERE p.mrn LIKE 'W%' AND p.timezone = :tz AND m.status IN ('sent', 'delivered')",
                    tz=tz,
                )
            )
            if sent >= expected:
                break
            time.sleep(0.2)
        entries = [e for e in fake_messages(twilio_base) if mid_of(e) is not None]
        with rt.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT m.id, m.status, m.provider_sid, m.segments FROM messages m JOIN patients p "
                    "ON p.id = m.patient_id WHERE p.mrn LIKE 'W%' AND p.timezone = :tz"
                ),
                {"tz": tz},
            ).all()
        ids = {int(r[0]): r for r in rows}
        mine = [e for e in entries if mid_of(e) in ids]
        per_mid = Counter(mid_of(e) for e in mine)
        duplicates = sum(n - 1 for n in per_mid.values())
        missing = len(set(ids) - set(per_mid))
        times = sorted(float(e["time"]) for e in mine)
        last = (times[-1] - wall0) if times else float("nan")
        first = (times[0] - wall0) if times else float("nan")
        # segments handed over per 1-second window (the limiter's unit)
        seg_by_time = sorted((float(e["time"]), int(ids[mid_of(e) or 0][3] or 1)) for e in mine)
        peak, j, window = 0, 0, 0
        for i, (t, seg) in enumerate(seg_by_time):
            window += seg
            while seg_by_time[j][0] <= t - 1.0:
                window -= seg_by_time[j][1]
                j += 1
            peak = max(peak, window)
            del i
        started = sum(c["started"] for _s, c in ticks)
        segments = sum(int(r[3] or 1) for r in rows)
        checks.append((f"wave {tz}: check-ins started by the ticks", f"{started} of {expected}", started == expected))
        checks.append(
            (
                f"wave {tz}: texts at the Twilio server / missing / twice",
                f"{len(mine)} / {missing} / {duplicates}",
                len(mine) == expected and missing == 0 and duplicates == 0,
            )
        )
        checks.append(
            (
                f"wave {tz}: rows 'sent' with the server's SID",
                f"{sum(1 for r in rows if r[1] in ('sent', 'delivered') and r[2])} of {len(rows)}",
                all(r[1] in ("sent", "delivered") and r[2] for r in rows),
            )
        )
        # GCRA spaces reservations by 1/rate; one second may hold rate + the one at its edge.
        limit = args.rate + max(2, int(args.rate * 0.02))
        checks.append((f"wave {tz}: peak segments in any 1 s (limit {args.rate:g}/s)", str(peak), peak <= limit))
        results[tz] = {
            "due_utc": due.isoformat(),
            "texts": len(mine),
            "segments": segments,
            "first_s": first,
            "last_s": last,
            "ticks": [(round(s, 2), c["started"]) for s, c in ticks],
            "peak": peak,
        }
    return results


def _tick(rt: Any, now: dt.datetime) -> dict[str, int]:
    from app.scheduling import sweeper

    counts: dict[str, int] = sweeper.tick(rt, now)
    return counts


def api_phase(
    kids: Children, env: dict[str, str], rt: Any, args: argparse.Namespace, checks: list[tuple[str, str, bool]]
) -> float:
    """POST /patients + POST /enrollments, one request after the other over one keep-alive connection."""
    port = free_port()
    proc = kids.start(
        "gunicorn",
        [
            str(VENV_BIN / "gunicorn"),
            "-w",
            "2",
            "--threads",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "app:create_app()",
        ],
        env=env,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    statuses: Counter[int] = Counter()

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
        statuses[response.status] += 1
        return json.loads(data) if data else {}

    bodies = [
        {
            "mrn": f"A{i:07d}",
            "given_name": "Ana",
            "family_name": "Lopez",
            "phone": f"+1617{2000000 + i}",
            "timezone": ZONES[i % 3],
            "language": "en" if i % 2 else "es",
            "conditions": ["heart_failure"],
            "program": "bench",
            "consent": {"basis": "express_written"},
        }
        for i in range(args.api_patients)
    ]
    post("/api/v1/patients", {**bodies[0], "mrn": "WARMUP"})  # first request: imports, pool, caches
    t0 = time.perf_counter()
    for body in bodies:
        patient = post("/api/v1/patients", body)
        post("/api/v1/enrollments", {"patient_id": patient.get("id"), "campaign": CAMPAIGN})
    took = time.perf_counter() - t0
    conn.close()
    kids.stop(proc)
    rate = args.api_patients / took
    enrolled = int(
        scalar(
            rt,
            "SELECT count(DISTINCT e.patient_id) FROM enrollments e JOIN patients p ON p.id = e.patient_id "
            "WHERE p.mrn LIKE 'A%' AND e.status = 'active' AND e.campaign = :c",
            c=CAMPAIGN,
        )
    )
    touches = int(
        scalar(
            rt,
            "SELECT count(*) FROM scheduled_touches t JOIN enrollments e ON e.id = t.enrollment_id "
            "JOIN patients p ON p.id = e.patient_id WHERE p.mrn LIKE 'A%' AND t.status = 'pending'",
        )
    )
    bare = int(
        scalar(
            rt,
            "SELECT count(*) FROM enrollments e JOIN patients p ON p.id = e.patient_id WHERE p.mrn LIKE 'A%' "
            "AND NOT EXISTS (SELECT 1 FROM scheduled_touches t WHERE t.enrollment_id = e.id)",
        )
    )
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    checks.append(("api: responses (201/200 only)", codes, set(statuses) <= {200, 201}))
    checks.append(
        ("api: patients enrolled in SQL", f"{enrolled} of {args.api_patients}", enrolled == args.api_patients)
    )
    checks.append(("api: enrollments without touches", str(bare), bare == 0 and touches >= 30 * args.api_patients))
    print(
        f"api: {args.api_patients} patients + enrollments in {took:.2f} s = {rate:.1f} patients/s "
        f"({touches} pending touches, {touches / max(1, args.api_patients):.1f} each)"
    )
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enrollments", type=int, default=100_000, help="active enrollments (default 100000)")
    parser.add_argument("--touches", type=int, default=10, help="pending check-ins per enrollment (default 10)")
    parser.add_argument("--due", type=int, default=5000, help="check-ins due at the measured tick (default 5000)")
    parser.add_argument("--wave", type=int, default=20_000, help="patients in the 09:00 wave (default 20000)")
    parser.add_argument("--rate", type=float, default=250.0, help="OUTREACH_SMS_RATE, segments/s (default 250)")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="added to every Twilio API call")
    parser.add_argument("--tick-interval", type=float, default=30.0, help="seconds between ticks (Procfile: 30)")
    parser.add_argument("--wave-patience", type=float, default=180.0, help="seconds a zone's wave may take")
    parser.add_argument("--api-patients", type=int, default=1000, help="patients enrolled through the API")
    parser.add_argument("--skip", default="", help="comma-separated phases to skip: wave,api")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs (for profiling)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long run with tiny sizes (the test suite runs it): every phase and check, no figures "
        "worth reading; its own database name, so parallel runs do not collide",
    )
    args = parser.parse_args()
    # Stopped with SIGTERM: still stop the children and drop the database (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    db_name = DB_NAME
    if args.smoke:
        args.enrollments, args.touches, args.due, args.wave, args.api_patients = 300, 3, 30, 60, 10
        args.latency_ms, args.tick_interval, args.wave_patience = 20.0, 2.0, 60.0
        db_name = f"{DB_NAME}_smoke_{os.getpid()}"
    skip = set(filter(None, args.skip.split(",")))

    import sqlalchemy as sa
    from redis import Redis
    from rq import Queue

    from app.migrations import upgrade
    from app.models import Program
    from app.runtime import clear_current
    from tests.support.services import create_database, drop_database

    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-scheduler-"))
    redis_url = bench_redis_url()
    redis = Redis.from_url(redis_url)
    admin = admin_url()
    database_url = create_database(admin, db_name)
    ok = False
    try:
        print("machine:")
        for line in machine_lines(database_url, redis_url):
            print("  " + line)
        print(f"  load average at start {load_average()}")
        redis.flushdb()
        upgrade(database_url)
        queue = Queue(QUEUE, connection=redis)
        checks: list[tuple[str, str, bool]] = []
        figures: dict[str, Any] = {}
        with children(workdir) as kids:
            fake, twilio_base = start_fake_twilio(kids, latency_ms=args.latency_ms)
            env = app_env(database_url, redis_url, twilio_base, args.rate)
            rt = runtime(env)
            with rt.sessions() as session, session.begin():
                program = Program(
                    slug="bench", name="North Clinic", phone_display="555-0100", uses_healthcare_exemption=False
                )
                session.add(program)
                session.flush()
                program_id = program.id
            busy0, w0 = machine_busy_seconds(), time.monotonic()
            took = seed(rt, program_id, "B", 0, args.enrollments, DAY0, (10, 9 + args.touches))
            total_touches = int(scalar(rt, "SELECT count(*) FROM scheduled_touches WHERE status = 'pending'"))
            print(
                f"setup: database {db_name}; {args.enrollments} active enrollments ({CAMPAIGN}, 3 zones), "
                f"{total_touches} pending touches, seeded in bulk SQL in {took:.1f} s"
            )
            counter = StatementCounter(rt.engine)
            # The measured moment: 18:00 UTC on day 0 is inside every zone's 08:00-21:00 window.
            moment = dt.datetime.combine(DAY0, dt.time(18, 0), dt.UTC)
            make_due(rt, program_id, args.due, moment - dt.timedelta(seconds=30))

            # 1. none due (an hour before)
            _tick(rt, moment - dt.timedelta(hours=2))  # warm-up: imports, pool, caches
            nones = [timed_tick(rt, moment - dt.timedelta(hours=1, seconds=-i), counter) for i in range(5)]
            none_s = statistics.median(s for s, _c, _n in nones)
            none_statements = nones[-1][2]
            checks.append(
                (
                    "tick, none due: nothing started",
                    str(sum(c["started"] for _s, c, _n in nones)),
                    all(c["started"] == 0 for _s, c, _n in nones),
                )
            )
            # 2. --due due
            due_s, due_counts, due_statements = timed_tick(rt, moment, counter)
            done = int(
                scalar(
                    rt,
                    "SELECT count(*) FROM scheduled_touches WHERE due_at = :at AND status = 'done' "
                    "AND conversation_id IS NOT NULL",
                    at=moment - dt.timedelta(seconds=30),
                )
            )
            conversations = int(scalar(rt, "SELECT count(*) FROM conversations WHERE status = 'active'"))
            queued = int(scalar(rt, "SELECT count(*) FROM messages WHERE status = 'queued' AND direction = 'outbound'"))
            queued_in_jobs = len({mid for job in queue.get_jobs() for mid in job.args[0]})
            checks.append(
                (
                    "tick, due: check-ins started",
                    f"{due_counts['started']} of {args.due}",
                    due_counts["started"] == args.due,
                )
            )
            checks.append(("tick, due: touches done with a conversation (SQL)", str(done), done == args.due))
            checks.append(
                (
                    "tick, due: active conversations / queued first texts",
                    f"{conversations} / {queued}",
                    conversations == args.due == queued,
                )
            )
            checks.append(
                ("tick, due: queued texts in RQ send jobs (distinct)", str(queued_in_jobs), queued_in_jobs == args.due)
            )
            after = [timed_tick(rt, moment + dt.timedelta(seconds=30 + i), counter) for i in range(5)]
            after_s = statistics.median(s for s, _c, _n in after)
            checks.append(
                (
                    "tick after: nothing started again",
                    str(sum(c["started"] for _s, c, _n in after)),
                    all(c["started"] == 0 for _s, c, _n in after),
                )
            )
            other = (machine_busy_seconds() - busy0) / (time.monotonic() - w0)
            figures.update(
                tick_none_ms=1000 * none_s,
                tick_none_after_ms=1000 * after_s,
                tick_due_s=due_s,
                none_statements=none_statements,
                due_statements=due_statements,
                other_ticks=other,
            )
            print(
                f"tick over {args.enrollments} enrollments: none due {1000 * none_s:.1f} ms "
                f"({none_statements} statements); {args.due} due {due_s:.2f} s ({due_statements} statements, "
                f"{due_counts}); none due after, {args.due} conversations open: {1000 * after_s:.1f} ms "
                f"(machine busy {other:.2f} cores incl. this bench)"
            )
            # The phase-2 conversations and their texts are not the wave's: park them.
            queue.empty()
            with rt.engine.begin() as conn:
                conn.execute(sa.text("UPDATE conversations SET wake_at = NULL"))
                conn.execute(sa.text("UPDATE messages SET status = 'cancelled' WHERE status = 'queued'"))

            if "wave" not in skip:
                workers = start_workers(kids, env, redis_url)
                busy0, w0 = machine_busy_seconds(), time.monotonic()
                figures["wave"] = wave_phase(rt, args, program_id, twilio_base, checks)
                figures["other_wave"] = (machine_busy_seconds() - busy0) / (time.monotonic() - w0)
                for w in workers:
                    kids.stop(w)
                failed = Queue(QUEUE, connection=redis).failed_job_registry.count
                checks.append(("wave: failed RQ jobs", str(failed), failed == 0))
                errors = [
                    line
                    for i in range(2)
                    for line in kids.log_tail(f"worker-{i}", 400).splitlines()
                    if "Traceback" in line or "ERROR" in line
                ]
                checks.append(("wave: errors in the workers' logs", str(len(errors)), not errors))
            if "api" not in skip:
                busy0, w0 = machine_busy_seconds(), time.monotonic()
                figures["api_per_s"] = api_phase(kids, env, rt, args, checks)
                figures["other_api"] = (machine_busy_seconds() - busy0) / (time.monotonic() - w0)
            rt.engine.dispose()
            clear_current()
            del fake

        print()
        print(f"tick, none due:        {figures['tick_none_ms']:8.1f} ms (median of 5; target < 100 ms)")
        print(f"tick, none due after:  {figures['tick_none_after_ms']:8.1f} ms ({args.due} conversations open)")
        print(f"tick, {args.due} due:       {figures['tick_due_s']:8.2f} s  (target < 1 s)")
        wave_last = float("nan")
        if "wave" in figures:
            for tz, w in figures["wave"].items():
                print(
                    f"wave {tz:20s} {w['texts']:6d} texts ({w['segments']} segments) first {w['first_s']:.1f} s, "
                    f"last {w['last_s']:.1f} s after the minute began; ticks (s, started) {w['ticks']}; "
                    f"peak {w['peak']} segments/s"
                )
            wave_last = max(w["last_s"] for w in figures["wave"].values())
            print(f"  (machine busy {figures['other_wave']:.2f} cores during the wave, incl. this bench)")
        if "api_per_s" in figures:
            print(
                f"api enrollment:        {figures['api_per_s']:8.1f} patients/s (target >= 200; "
                f"busy {figures['other_api']:.2f} cores)"
            )
        print()
        print("verification:")
        for name, value, good in checks:
            print(f"  {'ok  ' if good else 'FAIL'} {name}: {value}")
        verified = all(good for _n, _v, good in checks)

        def target(good: bool) -> str:
            return "met" if good else "missed"

        print(f"total time {time.monotonic() - t_start:.0f} s")
        print(
            f"RESULT scheduler: tick_none_ms={figures['tick_none_ms']:.1f} tick_none_after_ms="
            f"{figures['tick_none_after_ms']:.1f} tick_due_s={figures['tick_due_s']:.2f} "
            f"wave_last_s={wave_last:.1f} api_patients_per_s={figures.get('api_per_s', float('nan')):.1f} "
            f"enrollments={args.enrollments} due={args.due} wave={args.wave} rate={args.rate:g} "
            f"latency_ms={args.latency_ms:g} verified={verified} smoke={args.smoke} "
            f"none_target={target(figures['tick_none_ms'] < 100)} due_target={target(figures['tick_due_s'] < 1)} "
            f"wave_target={target(wave_last <= 60)} api_target={target(figures.get('api_per_s', 0) >= 200)}"
        )
        ok = verified
    finally:
        redis.flushdb()
        redis.close()
        if args.keep:
            print(f"kept database {db_name} and logs in {workdir}")
        else:
            drop_database(admin, db_name)
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The voice Gather webhook: latency of one answered question of an in-progress call, on PostgreSQL.

What one request does (POST /twilio/voice/gather?call=<id>&step=1, the app under gunicorn): signature
check (over the public URL with its query), the form cleaned, the call row locked, the keys heard stored
as an inbound row, one flow step of hf-daily-check (the caller presses ``182#`` at the weight question),
the answer saved, the next turn stored under its step and rendered as TwiML (``<Say>`` + ``<Gather>``).
Unlike an SMS, everything happens inside the request (the caller is waiting on the line), so this is
the path that must stay fast. Every request is a different call (a different patient), each at step 1:
a real flow step, never a replay.

Next to it, a bare Flask endpoint returning a TwiML of the same shape (``<Say>`` + ``<Gather>``) runs
under the same gunicorn settings as bench/sms_inbound.py (``-w 2 --threads 4``) on the same machine: the
floor set by gunicorn, Flask and the load generator.

Phases per target: a warm-up (closed loop, 8 connections), then an open loop at ``--rate`` req/s
(default 100) for ``--seconds``; latency of every request is measured from its scheduled send time, so
a stall is not hidden. The load generator is bench/sms_inbound.py's (its own process, asyncio, raw
HTTP/1.1 keep-alive, requests pre-built and pre-signed). Target: p99 < 50 ms at 100 req/s.

Before the load, one more call's Gather runs in this process with its SQL statements counted (printed
as "SQL statements per Gather"). Afterwards the database is checked: per request answered (and the
probe), one keypress row, one answer weight = 182, the call at step 2 with its turn stored, the
conversation at the next question; and no request reached the Twilio REST server.

Run from the repository root:  .venv/bin/python bench/voice.py [--seconds 10 --rate 100]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    admin_url,
    bench_redis_url,
    children,
    free_port,
    load_average,
    machine_lines,
    start_fake_twilio,
)
from bench.sms_inbound import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    GUNICORN_OPTS,
    PUBLIC_BASE_URL,
    _NoJobs,
    app_env,
    fmt_row,
    measured,
    ok_count,
    patient_phone,
    run_loadgen,
    start_gunicorn,
)

DB_NAME = "outreach_bench_voice"
FLOW = "hf-daily-check"
TARGET_RATE = 100.0
TARGET_P99_MS = 50.0


# -- the bare endpoint (gunicorn imports this module: keep imports inside) ----------------------------------


def bare_app() -> Any:
    """The comparison: a Flask endpoint answering a TwiML of the same shape, doing nothing else."""
    from flask import Flask, Response
    from twilio.twiml.voice_response import Gather, VoiceResponse

    app = Flask("bare")

    @app.post("/twilio/voice/gather")
    def gather() -> Response:
        twiml = VoiceResponse()
        listen = Gather(input="dtmf speech", language="en-US", num_digits=1, action="/twilio/voice/gather")
        listen.say("Are you more short of breath than usual? Press 1 for yes or 2 for no.", voice="Polly.Joanna")
        twiml.append(listen)
        twiml.redirect("/twilio/voice/gather")
        return Response(str(twiml), mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


# -- setup ------------------------------------------------------------------------------------------------


def seed(env: dict[str, str], count: int, run_id: str) -> list[tuple[int, str]]:
    """A program and ``count`` patients, each with a hf-daily-check call answered and waiting at the
    weight question (step 1), through the app's own path: ``start_voice_checkin`` then
    ``call_turns.answer_outbound``. Returns ``(call id, CallSid)`` per patient."""
    import dataclasses
    import datetime as dt

    from app.bootstrap import build_runtime
    from app.config import settings_from_env
    from app.messaging.call_turns import answer_outbound
    from app.messaging.calls import start_voice_checkin
    from app.models import Call, Patient, Program

    rt = build_runtime(settings_from_env(env))
    rt = dataclasses.replace(rt, jobs=_NoJobs())
    now = dt.datetime.now(dt.UTC)
    calls: list[tuple[int, str]] = []
    with rt.sessions() as session, session.begin():
        program = Program(slug="bench", name="Bench Clinic", phone_display="555-0100", uses_healthcare_exemption=False)
        session.add(program)
        session.flush()
        program_id = program.id
    for start in range(0, count, 200):
        with rt.sessions() as session, session.begin():
            patients = [
                Patient(
                    program_id=program_id,
                    mrn=f"V{n:07d}",
                    given_name="Maria",
                    family_name="Garcia",
                    phone=patient_phone(n),
                    language="en",
                    timezone="America/New_York",
                    conditions=["heart_failure"],
                    preferred_channel="voice",
                )
                for n in range(start, min(count, start + 200))
            ]
            session.add_all(patients)
            session.flush()
            for patient in patients:
                conversation = start_voice_checkin(session, rt, patient, FLOW, now, send_key=f"bench:{patient.id}")
                call = session.query(Call).filter(Call.conversation_id == conversation.id).one()
                call_sid = f"CAbench{run_id}{patient.id:021d}"  # 34 characters, as a Twilio SID
                answer = answer_outbound(session, rt, call_id=call.id, call_sid=call_sid, answered_by=None, now=now)
                assert answer is not None and answer.step == 1, "the call did not reach the weight question"
                calls.append((call.id, call_sid))
    rt.engine.dispose()
    return calls


def statements_per_gather(env: dict[str, str], call: tuple[int, str]) -> int:
    """SQL statements of one Gather (keys ``182#`` at the weight question of ``call``), counted in this
    process around the webhook's own service (``call_turns.gather_safely``; the signature check and the
    TwiML rendering run no SQL): the round trips a caller waits on, beside the timings."""
    import dataclasses
    import datetime as dt

    from sqlalchemy import event

    from app.bootstrap import build_runtime
    from app.config import settings_from_env
    from app.messaging.call_turns import GatherResult, gather_safely

    rt = dataclasses.replace(build_runtime(settings_from_env(env)), jobs=_NoJobs())
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        heard = GatherResult("182#", None, None)
        answer = gather_safely(rt, call_id=call[0], step=1, call_sid=call[1], heard=heard, now=dt.datetime.now(dt.UTC))
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)
        rt.engine.dispose()
    assert answer is not None and answer.step == 2, "the probe Gather did not answer the weight question"
    return len(seen)


def build_requests(path: Path, calls: list[tuple[int, str]], port: int) -> None:
    """Signed Gather results as Twilio posts them (keys ``182#``), signature over the public URL."""
    from tests.support.fake_twilio import sign

    chunks = []
    for call_id, call_sid in calls:
        query = f"call={call_id}&step=1"
        url = f"{PUBLIC_BASE_URL}/twilio/voice/gather?{query}"
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "in-progress",
            "Called": patient_phone(0),
            "Caller": FROM_NUMBER,
            "Direction": "outbound-api",
            "Digits": "182#",
            "FinishedOnKey": "#",
            "From": FROM_NUMBER,
            "To": patient_phone(0),
            "msg": "Gather End",
        }
        body = urlencode(params).encode()
        head = (
            f"POST /twilio/voice/gather?{query} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "User-Agent: TwilioProxy/1.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {sign(url, params, AUTH_TOKEN)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        chunks.append(head + body)
    path.write_bytes(b"\n\0\n".join(chunks))


def verify(database_url: str, twilio_base: str, run_id: str, expected: int) -> list[tuple[str, int, bool]]:
    """Count what really happened, per request answered by the app."""
    import json
    import urllib.request

    import sqlalchemy as sa

    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    like = f"CAbench{run_id}%"
    queries = {
        "keypress rows (voice, answered, not flagged)": (
            "select count(*) from messages where direction='inbound' and channel='voice' and provider_sid like :like"
            " and body='182#' and not needs_review and conversation_id is not null"
        ),
        "answers weight=182": (
            "select count(*) from answers a join messages m on m.id=a.message_id"
            " where m.provider_sid like :like and a.question_id='weight' and a.value_number=182"
        ),
        "calls at step 2 with the next turn stored": (
            "select count(*) from calls where call_sid like :like and step=2"
            " and cast(turns as jsonb)->'1'->'prompt'->>0 like 'Are you more short of breath%'"
        ),
        "conversations now at 'breath'": (
            "select count(*) from conversations c join calls k on k.conversation_id=c.id"
            " where k.call_sid like :like and c.status='active' and cast(c.state as jsonb)->>'node' = 'breath'"
        ),
    }
    with engine.connect() as conn:
        counts = [
            (name, int(conn.execute(sa.text(sql), {"like": like}).scalar() or 0)) for name, sql in queries.items()
        ]
    engine.dispose()
    with urllib.request.urlopen(f"{twilio_base}/_fake/requests", timeout=5) as response:
        rest_calls = len(json.loads(response.read()))
    results = [(name, value, value == expected) for name, value in counts]
    results.append(("Twilio REST calls during requests", rest_calls, rest_calls == 0))
    return results


def bench_target(
    kids: Any, name: str, target: str, env: dict[str, str], workdir: Path, calls: list[tuple[int, str]], args: Any
) -> list[tuple[str, dict[str, Any], dict[str, float]]]:
    port = free_port()
    requests_path = workdir / f"requests-{name}.bin"
    build_requests(requests_path, calls, port)
    proc = start_gunicorn(kids, name, target, port, env)
    rows: list[tuple[str, dict[str, Any], dict[str, float]]] = []
    try:
        warm = run_loadgen(
            workdir, requests_path, port, 0, args.warmup, mode="closed", concurrency=8, seconds=60, cycle=False
        )
        cursor = warm["sent"]
        rows.append(("warm-up (closed, c=8)", warm, {}))
        open_n = int(args.rate * args.seconds)
        res, cpu = measured(
            proc.pid, lambda: run_loadgen(workdir, requests_path, port, cursor, open_n, mode="open", rate=args.rate)
        )
        rows.append((f"open loop {args.rate:g} req/s x {args.seconds:g} s", res, cpu))
    finally:
        kids.stop(proc)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="open-loop duration (default 10)")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="open-loop rate, req/s (default 100)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--content-dir", help="OUTREACH_CONTENT_DIR for the app (default: the repository's)")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs (for profiling)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long run with tiny sizes (the test suite runs it): every phase and check, no figures "
        "worth reading; its own database name, so parallel runs do not collide",
    )
    args = parser.parse_args()
    db_name = DB_NAME
    if args.smoke:
        args.seconds, args.rate, args.warmup = 1.0, 20.0, 5
        db_name = f"{DB_NAME}_smoke_{os.getpid()}"

    from redis import Redis

    from app.migrations import upgrade
    from tests.support.services import create_database, drop_database

    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    redis_url = bench_redis_url()
    redis = Redis.from_url(redis_url)
    admin = admin_url()
    database_url = create_database(admin, db_name)
    run_id = secrets.token_hex(3)
    ok = False
    try:
        print("machine:")
        for line in machine_lines(database_url, redis_url):
            print("  " + line)
        print(f"  load average at start {load_average()}")
        redis.flushdb()
        upgrade(database_url)
        count = args.warmup + int(args.rate * args.seconds)
        with children(workdir) as kids:
            _fake, twilio_base = start_fake_twilio(kids, latency_ms=200)
            env = app_env(database_url, redis_url, twilio_base, args.content_dir)
            t0 = time.monotonic()
            calls = seed(env, count + 1, run_id)
            per_gather = statements_per_gather(env, calls.pop())  # one more call, answered in this process
            print(
                f"setup: database {db_name} migrated; {count} calls of {FLOW} answered and waiting at the weight "
                f"question, seeded in {time.monotonic() - t0:.1f} s; channel twilio -> local fake server"
            )
            bare = bench_target(kids, "bare", "bench.voice:bare_app()", env, workdir, calls, args)
            app_rows = bench_target(kids, "outreach", "app:create_app()", env, workdir, calls, args)
            answered = sum(ok_count(r) for _p, r, _c in app_rows)
            non_200 = sum(r["sent"] - ok_count(r) for _p, r, _c in app_rows)
            checks = verify(database_url, twilio_base, run_id, answered + 1)  # + the probe

        print()
        print(f"gunicorn {' '.join(GUNICORN_OPTS)} (gthread); load generator: separate process, asyncio, keep-alive")
        print(
            "latency in ms; cpu ms/req = CPU per answered request in the server (gunicorn) / PostgreSQL;"
            " cores = used during the phase by the server / PostgreSQL / load generator / anything else"
        )
        print(
            f"{'target':<10} {'phase':<28} {'sent':>6} {'err':>4} {'req/s':>8} "
            f"{'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'cpu ms/req':>11}  cores srv/pg/gen/other"
        )
        for target, rows in (("bare", bare), ("outreach", app_rows)):
            for phase, res, cpu in rows:
                print(fmt_row(target, phase, res, cpu))
        print()
        print(f"SQL statements per Gather (one answered question, counted in process): {per_gather}")
        print(f"verification ({answered} requests answered 200 by the app + 1 probe, {non_200} not):")
        for name, value, good in checks:
            print(f"  {'ok  ' if good else 'FAIL'} {name}: {value}")

        app_open, bare_open = app_rows[1][1], bare[1][1]
        p50, p99 = app_open["p50"], app_open["p99"]
        bare_p50, bare_p99 = bare_open["p50"], bare_open["p99"]
        p99_ok = p99 < TARGET_P99_MS
        at_target_rate = args.rate == TARGET_RATE
        print()
        print(
            f"latency at {args.rate:g} req/s open loop: outreach p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
            f"bare p50 {bare_p50:.1f} ms, p99 {bare_p99:.1f} ms "
            + (
                f"(target p99 < {TARGET_P99_MS:g} ms: {'MET' if p99_ok else f'MISSED by {p99 - TARGET_P99_MS:.1f} ms'})"
                if at_target_rate
                else f"(the target, p99 < {TARGET_P99_MS:g} ms, is stated at {TARGET_RATE:g} req/s)"
            )
        )
        all_verified = all(good for _n, _v, good in checks) and non_200 == 0 and answered > 0
        print(f"work verified in SQL: {'yes' if all_verified else 'NO'}; total time {time.monotonic() - t_start:.0f} s")
        print(
            f"RESULT voice: p50_ms={p50:.1f} p99_ms={p99:.1f} bare_p50_ms={bare_p50:.1f} "
            f"bare_p99_ms={bare_p99:.1f} at_rate={args.rate:g} answered={answered} verified={all_verified} "
            f"statements_per_gather={per_gather} "
            f"p99_target={('met' if p99_ok else 'missed') if at_target_rate else 'n/a'} smoke={args.smoke}"
        )
        ok = all_verified
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

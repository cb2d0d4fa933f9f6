"""Inbound SMS replies on PostgreSQL: the webhook alone, and fully processed replies (issue 8, "Scale").

What one request does (POST /twilio/sms, the app under gunicorn): signature check, cleaning, one
``INSERT … ON CONFLICT (provider_sid) DO NOTHING RETURNING id`` on an autocommit connection, and the kick
of the processing job (Redis ``SET NX``; an RQ enqueue only when none waits). Every request comes from a
different patient with an hf-daily-check conversation at the weight question ("182") and carries a
unique MessageSid, so each one is a real flow step once processed, never a duplicate.

Next to it, a bare Flask endpoint returning the same empty TwiML runs under the same gunicorn settings
(``-w 2 --threads N``, ``--threads``, default 4) on the same machine: the floor set by gunicorn, Flask and
the load generator.

Phases: for both targets warm-up, open loop at a fixed rate (``--rate`` req/s for ``--seconds``; latency
of every request measured from its scheduled send time, so a stall is not hidden), closed loop with
``--concurrency`` connections; then ``--workers`` RQ workers (bench/_counting.py) process what the app
stored (the backlog); then the fully processed phase: ``--process`` more patients reply through the
webhook while web and workers run, timed until every one of those texts is processed (answer stored,
next question queued). The load generator is a separate process (asyncio, raw HTTP/1.1 with keep-alive,
requests pre-built and pre-signed). PostgreSQL round trips are counted in the workers and, for the
webhook, in the in-process breakdown.

Afterwards the database is checked: one inbound row, one answer (weight = 182), one queued reply and a
send job for it per request answered, and no call reached the Twilio REST server.

Run from the repository root:  .venv/bin/python bench/sms_inbound.py [--seconds 10 --rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    ROOT,
    VENV_BIN,
    Children,
    admin_url,
    bench_redis_url,
    children,
    free_port,
    load_average,
    machine_busy_seconds,
    machine_lines,
    percentile,
    postgres_cpu_seconds,
    proc_cpu_seconds,
    start_fake_twilio,
    tree_pids,
    wait_http,
)

DB_NAME = "outreach_bench_inbound"
PUBLIC_BASE_URL = "https://outreach.example.org"
ACCOUNT_SID = "AC" + "feed" * 8  # the fake server's defaults
AUTH_TOKEN = "test-token"
FROM_NUMBER = "+15005550006"
MESSAGING_SERVICE_SID = "MG" + "0" * 32
FLOW = "hf-daily-check"
GUNICORN_OPTS = ["-w", "2", "--threads", "4"]
#: PostgreSQL round trips of one webhook for a text that is not STOP / START: the autocommit INSERT
#: (app/messaging/inbound.py ``receive_sms``). The breakdown below counts it (``psycopg waits``).
WEBHOOK_ROUND_TRIPS = 1


# -- the bare endpoint (gunicorn imports this module: keep imports inside) ----------------------------------


def bare_app() -> Any:
    """The comparison: a Flask endpoint that answers the same empty TwiML and does nothing else."""
    from flask import Flask, Response
    from twilio.twiml.messaging_response import MessagingResponse

    app = Flask("bare")

    @app.post("/twilio/sms")
    def sms() -> Response:
        return Response(str(MessagingResponse()), mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


# -- load generator (runs as its own process: ``--loadgen SPEC``) -------------------------------------------


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer, self.used = reader, writer, 0


async def _open(host: str, port: int) -> _Conn:
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _Conn(reader, writer)


async def _exchange(conn: _Conn, data: bytes) -> tuple[int, bool]:
    conn.writer.write(data)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    length = 0
    at = lower.find(b"content-length:")
    if at >= 0:
        length = int(lower[at + 15 : lower.find(b"\r\n", at)].strip())
    if length:
        await conn.reader.readexactly(length)
    conn.used += 1
    return status, b"connection: close" not in lower


class LoadGen:
    """Sends pre-built requests; records per-request latency and HTTP status."""

    def __init__(self, host: str, port: int, requests: list[bytes], *, cycle: bool = False):
        self.host, self.port, self.requests, self.cycle = host, port, requests, cycle
        self.next_index = 0
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.reconnects = 0
        self.max_send_lag = 0.0

    def _take(self) -> bytes | None:
        if self.cycle:  # the bare endpoint keeps no state: the same requests can be sent again
            data = self.requests[self.next_index % len(self.requests)]
            self.next_index += 1
            return data
        if self.next_index >= len(self.requests):
            return None
        data = self.requests[self.next_index]
        self.next_index += 1
        return data

    async def _send(self, conn: _Conn | None, data: bytes) -> tuple[int, _Conn | None]:
        """One request; a kept-alive connection the server closed meanwhile is reopened once."""
        for attempt in (1, 2):
            if conn is None:
                conn = await _open(self.host, self.port)
            reused = conn.used > 0
            try:
                status, keep = await _exchange(conn, data)
                if not keep:
                    conn.writer.close()
                    conn = None
                return status, conn
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                conn.writer.close()
                conn = None
                partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                if attempt == 2 or not reused or partial:
                    return -1, None
                self.reconnects += 1
        return -1, None

    def _record(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds * 1000)
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1

    async def closed_loop(self, concurrency: int, seconds: float, limit: int) -> float:
        loop = asyncio.get_running_loop()
        conns = [await _open(self.host, self.port) for _ in range(concurrency)]
        started = loop.time()
        deadline = started + seconds
        finished = started

        async def worker(conn: _Conn | None) -> None:
            nonlocal finished
            while loop.time() < deadline and (self.cycle or self.next_index < limit):
                data = self._take()
                if data is None:
                    return
                t0 = loop.time()
                status, conn = await self._send(conn, data)
                self._record(status, loop.time() - t0)
                finished = max(finished, loop.time())
            if conn is not None:
                conn.writer.close()

        await asyncio.gather(*(worker(c) for c in conns))
        return finished - started

    async def open_loop(self, rate: float, count: int) -> float:
        loop = asyncio.get_running_loop()
        # No pre-opened connections: gunicorn gthread hands a new connection to a thread at once, and an
        # idle one would hold that thread until the keep-alive timeout.
        idle: list[_Conn] = []
        started = loop.time() + 0.05
        tasks = []

        async def one(data: bytes, scheduled: float) -> None:
            self.max_send_lag = max(self.max_send_lag, loop.time() - scheduled)
            conn = idle.pop() if idle else None
            status, conn = await self._send(conn, data)
            self._record(status, loop.time() - scheduled)  # from the scheduled time: stalls are not hidden
            if conn is not None:
                idle.append(conn)

        for i in range(count):
            data = self._take()
            if data is None:
                break
            scheduled = started + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(data, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - started
        for conn in idle:
            conn.writer.close()
        return elapsed


def loadgen_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    raw = Path(spec["requests"]).read_bytes().split(b"\n\0\n")
    requests = [r for r in raw if r][spec["first"] : spec["first"] + spec["limit"]]
    gen = LoadGen(spec["host"], spec["port"], requests, cycle=spec.get("cycle", False))
    cpu0 = time.process_time()
    if spec["mode"] == "closed":
        elapsed = asyncio.run(gen.closed_loop(spec["concurrency"], spec["seconds"], len(requests)))
    else:
        elapsed = asyncio.run(gen.open_loop(spec["rate"], len(requests)))
    lat = sorted(gen.latencies)
    json.dump(
        {
            "sent": gen.next_index,
            "statuses": gen.statuses,
            "elapsed": elapsed,
            "p50": percentile(lat, 50),
            "p90": percentile(lat, 90),
            "p99": percentile(lat, 99),
            "max": lat[-1] if lat else None,
            "mean": sum(lat) / len(lat) if lat else None,
            "reconnects": gen.reconnects,
            "max_send_lag_ms": gen.max_send_lag * 1000,
            "cpu": time.process_time() - cpu0,
        },
        sys.stdout,
    )


# -- requests -------------------------------------------------------------------------------------------


def patient_phone(n: int) -> str:
    """Valid US numbers in the fictional 555-01xx style block, one per patient (n < 90,000)."""
    return f"+1202{555 + n // 10_000:03d}{n % 10_000:04d}"


def build_requests(path: Path, phones: list[str], port: int, run_id: str) -> None:
    """Signed webhooks as Twilio posts them: all the usual parameters, signature over the public URL."""
    from tests.support.fake_twilio import sign

    url = PUBLIC_BASE_URL + "/twilio/sms"
    from urllib.parse import urlencode

    chunks = []
    for i, phone in enumerate(phones):
        sid = f"SMbench{run_id}{i:019d}"
        params = {
            "ToCountry": "US",
            "ToState": "CA",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "20001",
            "SmsSid": sid,
            "FromState": "DC",
            "SmsStatus": "received",
            "FromCity": "WASHINGTON",
            "Body": "182",
            "FromCountry": "US",
            "To": FROM_NUMBER,
            "MessagingServiceSid": MESSAGING_SERVICE_SID,
            "ToZip": "",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": phone,
            "ApiVersion": "2010-04-01",
        }
        body = urlencode(params).encode()
        head = (
            "POST /twilio/sms HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "User-Agent: TwilioProxy/1.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {sign(url, params, AUTH_TOKEN)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        chunks.append(head + body)
    path.write_bytes(b"\n\0\n".join(chunks))


# -- setup ------------------------------------------------------------------------------------------------


def app_env(database_url: str, redis_url: str, twilio_base: str, content_dir: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTREACH_", "TWILIO_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=secrets.token_hex(16),
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        OUTREACH_CHANNEL="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_BASE_URL=twilio_base,
        OUTREACH_SMS_RATE="0",
        SESSION_COOKIE_SECURE="0",
        PYTHONUNBUFFERED="1",
    )
    if content_dir:
        env["OUTREACH_CONTENT_DIR"] = content_dir
    return env


class _NoJobs:
    """Seeding only: the opening prompts are not sent (the bench measures replies)."""

    name = "none"

    def enqueue(self, func: Any, *args: Any, job_id: str | None = None) -> None:
        return None

    def enqueue_at(self, when: Any, func: Any, *args: Any, job_id: str | None = None) -> None:
        return None


def seed(env: dict[str, str], count: int) -> list[str]:
    """A program and ``count`` patients, each with an active hf-daily-check conversation at the weight
    question. The first is started through app.conversations.service.start_conversation (the app's own
    path); the others are copies of that patient and of that conversation row made in SQL (same state,
    own phone, MRN and id), which takes seconds instead of minutes."""
    import dataclasses
    import datetime as dt

    import sqlalchemy as sa

    from app.bootstrap import build_runtime
    from app.config import settings_from_env
    from app.conversations.service import start_conversation
    from app.models import Conversation, Patient, Program

    rt = build_runtime(settings_from_env(env))
    rt = dataclasses.replace(rt, jobs=_NoJobs())
    now = dt.datetime.now(dt.UTC)
    phones = [patient_phone(n) for n in range(count)]
    with rt.sessions() as session, session.begin():
        program = Program(slug="bench", name="Bench Clinic", phone_display="555-0100", uses_healthcare_exemption=False)
        session.add(program)
        session.flush()
        first = Patient(
            program_id=program.id,
            mrn="B0000000",
            given_name="Maria",
            family_name="Garcia",
            phone=phones[0],
            language="en",
            timezone="America/New_York",
            conditions=["heart_failure"],
        )
        session.add(first)
        session.flush()
        conversation = start_conversation(session, rt, first, FLOW, now)
        session.flush()
        first_id, conversation_id = first.id, conversation.id
    patient_cols = [c.name for c in Patient.__table__.columns if c.name not in ("id", "mrn", "phone")]
    conv_cols = [c.name for c in Conversation.__table__.columns if c.name not in ("id", "patient_id")]
    phone_sql = "'+1202' || lpad((555 + n / 10000)::text, 3, '0') || lpad((n % 10000)::text, 4, '0')"
    with rt.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO patients ({', '.join(patient_cols)}, mrn, phone) "
                f"SELECT {', '.join('p.' + c for c in patient_cols)}, 'B' || lpad(n::text, 7, '0'), {phone_sql} "
                "FROM patients p, generate_series(1, :last) AS n WHERE p.id = :first"
            ),
            {"last": count - 1, "first": first_id},
        )
        conn.execute(
            sa.text(
                f"INSERT INTO conversations ({', '.join(conv_cols)}, patient_id) "
                f"SELECT {', '.join('c.' + col for col in conv_cols)}, p.id FROM conversations c, patients p "
                "WHERE c.id = :conversation AND p.id <> :first"
            ),
            {"conversation": conversation_id, "first": first_id},
        )
        conn.execute(sa.text("ANALYZE patients; ANALYZE conversations"))
    rt.engine.dispose()
    return phones


def start_workers(kids: Children, env: dict[str, str], redis_url: str, count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` RQ workers as the Procfile runs them (``app.worker.OutreachWorker``, here its counting
    subclass bench/_counting.py: round trips counted, send jobs parked)."""
    worker_env = {**env, "PYTHONPATH": str(ROOT)}
    procs = []
    for n in range(count):
        procs.append(
            kids.start(
                f"worker{n}",
                [
                    str(VENV_BIN / "rq"),
                    "worker",
                    "--worker-class",
                    "bench._counting.CountingWorker",
                    "--url",
                    redis_url,
                    "--logging_level",
                    "WARNING",
                    "outreach",
                ],
                env=worker_env,
            )
        )
    return procs


def wait_workers_ready(redis_url: str, procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """Until every worker registered in Redis (built its runtime, listening): start-up is not processing."""
    from redis import Redis
    from rq import Worker

    client = Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while Worker.count(connection=client) < len(procs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("the RQ workers did not start")
            time.sleep(0.05)
    finally:
        client.close()


def waiting_inbound(database_url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("select count(*) from messages where direction='inbound' and status in ('pending','retry')")
                ).scalar()
                or 0
            )
    finally:
        engine.dispose()


def drain(database_url: str, procs: list[subprocess.Popen[bytes]], timeout: float) -> float:
    """Wait until no inbound text is pending (the workers processed the backlog); seconds it took."""
    t0 = time.monotonic()
    while waiting_inbound(database_url):
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("workers did not process the stored texts in time")
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker exited")
        time.sleep(0.05)
    return time.monotonic() - t0


def read_counts(redis_url: str, reset: bool = True) -> dict[str, int]:
    from redis import Redis

    from bench._counting import COUNTS_KEY

    client = Redis.from_url(redis_url)
    counts = {k.decode(): int(v) for k, v in client.hgetall(COUNTS_KEY).items()}
    if reset:
        client.delete(COUNTS_KEY)
    client.close()
    return counts


def verify(
    database_url: str, twilio_base: str, run_id: str, expected: int, parked_texts: int
) -> list[tuple[str, int, bool]]:
    """Count what really happened, per request sent to the app."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    like = f"SMbench{run_id}%"
    checks: list[tuple[str, int]] = []
    with engine.connect() as conn:

        def count(sql: str) -> int:
            return int(conn.execute(sa.text(sql), {"like": like}).scalar() or 0)

        checks.append(
            (
                "inbound rows (answered, not flagged)",
                count(
                    "select count(*) from messages where direction='inbound' and provider_sid like :like"
                    " and kind='reply' and not needs_review and conversation_id is not null"
                ),
            )
        )
        checks.append(
            (
                "answers weight=182",
                count(
                    "select count(*) from answers a join messages m on m.id=a.message_id"
                    " where m.provider_sid like :like and a.question_id='weight' and a.value_number=182"
                ),
            )
        )
        checks.append(
            (
                "replies queued (next question)",
                count(
                    "select count(*) from messages r join messages m on m.conversation_id=r.conversation_id"
                    " where m.provider_sid like :like and r.direction='outbound' and r.kind='reply'"
                    " and r.status='queued' and r.body like 'Are you more short of breath%'"
                ),
            )
        )
        checks.append(
            (
                "conversations now at 'breath'",
                count(
                    "select count(*) from conversations c join messages m on m.conversation_id=c.id"
                    " where m.provider_sid like :like and c.status='active'"
                    " and cast(c.state as jsonb)->>'node' = 'breath'"
                ),
            )
        )
    engine.dispose()
    # The replies' send jobs reached the workers, which parked them (bench/_counting.py): their texts.
    checks.append(("texts in the replies' send jobs", parked_texts))
    import urllib.request

    with urllib.request.urlopen(f"{twilio_base}/_fake/requests", timeout=5) as response:
        rest_calls = len(json.loads(response.read()))
    results = [(name, value, value == expected) for name, value in checks]
    results.append(("Twilio REST calls during requests", rest_calls, rest_calls == 0))
    return results


def breakdown(env: dict[str, str], first_patient: int, count: int) -> list[str]:
    """Where one request's time goes, without concurrency: the app in this process (Flask test client),
    ``count`` sequential signed requests from fresh patients, timed by part."""
    import collections
    import logging

    import psycopg
    from sqlalchemy import event

    from app import create_app
    from app import jobs as app_jobs
    from app.runtime import clear_current
    from bench._counting import count_round_trips
    from tests.support.fake_twilio import sign

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        application = create_app()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    logging.getLogger().setLevel(logging.WARNING)
    rt = application.extensions["outreach"]
    acc: collections.Counter[str] = collections.Counter()
    started: dict[str, float] = {}

    @event.listens_for(rt.engine, "before_cursor_execute")
    def _before(*_args: Any) -> None:
        started["sql"] = time.perf_counter()

    @event.listens_for(rt.engine, "after_cursor_execute")
    def _after(*_args: Any) -> None:
        acc["sql_ms"] += (time.perf_counter() - started["sql"]) * 1000
        acc["sql_n"] += 1

    def timed(owner: Any, name: str, key: str) -> Any:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                acc[key + "_ms"] += (time.perf_counter() - t0) * 1000
                acc[key + "_n"] += 1

        setattr(owner, name, wrapper)
        return original

    originals = [
        (psycopg.Connection, "commit", timed(psycopg.Connection, "commit", "commit")),
        (app_jobs.RqQueue, "enqueue", timed(app_jobs.RqQueue, "enqueue", "rq")),
        (app_jobs.RqQueue, "enqueue_once", timed(app_jobs.RqQueue, "enqueue_once", "kick")),
    ]
    uncount = count_round_trips(acc, "pg_wait_n")
    client = application.test_client()
    url = PUBLIC_BASE_URL + "/twilio/sms"
    latencies = []
    try:
        for i in range(count + 20):
            n = first_patient + i
            params = {
                "MessageSid": f"SMbreak{n:026d}",
                "From": patient_phone(n),
                "To": FROM_NUMBER,
                "Body": "182",
                "NumMedia": "0",
                "AccountSid": ACCOUNT_SID,
            }
            signature = sign(url, params, AUTH_TOKEN)
            if i == 20:
                acc.clear()  # the first requests warm caches and connections
            t0 = time.perf_counter()
            response = client.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"breakdown request answered {response.status_code}")
            if i >= 20:
                latencies.append(elapsed)
    finally:
        uncount()
        for owner, name, original in originals:
            setattr(owner, name, original)
        rt.engine.dispose()
        clear_current()
    latencies.sort()
    total = sum(latencies)
    mean = total / count
    sql = acc["sql_ms"] / count
    commit = acc["commit_ms"] / count
    rq = (acc["rq_ms"] + acc["kick_ms"]) / count
    rest = mean - sql - commit - rq
    return [
        f"{count} sequential requests in one process (Flask test client, no HTTP server): "
        f"mean {mean:.2f} ms, p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms",
        f"  ORM statements    {acc['sql_n'] / count:5.1f}/request  {sql:6.2f} ms  ({100 * sql / mean:.0f}%)",
        f"  COMMIT            {acc['commit_n'] / count:5.1f}/request  {commit:6.2f} ms  ({100 * commit / mean:.0f}%)",
        f"  kick (SET NX) + RQ enqueue {acc['kick_n'] / count:4.1f} + {acc['rq_n'] / count:3.1f}/request  "
        f"{rq:6.2f} ms  ({100 * rq / mean:.0f}%)",
        f"  everything else (Flask, signature, ORM flush/identity map, engine, pool checkout + pre-ping) "
        f"{rest:.2f} ms ({100 * rest / mean:.0f}%)",
        f"  PostgreSQL round trips (psycopg operations that waited for the server) {acc['pg_wait_n'] / count:.1f}"
        "/request",
    ]


# -- running ----------------------------------------------------------------------------------------------


def run_loadgen(workdir: Path, requests_path: Path, port: int, first: int, limit: int, **spec: Any) -> dict[str, Any]:
    spec_path = workdir / f"spec-{first}-{spec['mode']}.json"
    spec_path.write_text(
        json.dumps(
            {"host": "127.0.0.1", "port": port, "requests": str(requests_path), "first": first, "limit": limit, **spec}
        )
    )
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--loadgen", str(spec_path)],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def measured(server_pid: int, fn: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """Run a phase and the CPU the server tree, each worker and PostgreSQL used during it."""
    pids = tree_pids(server_pid)
    before = {pid: proc_cpu_seconds(pid) for pid in pids}
    p0, m0, w0 = postgres_cpu_seconds(), machine_busy_seconds(), time.monotonic()
    result = fn()
    wall = time.monotonic() - w0
    per_pid = {pid: (proc_cpu_seconds(pid) - before[pid]) / wall for pid in pids}
    cpu = {
        "server": sum(per_pid.values()),
        "postgres": (postgres_cpu_seconds() - p0) / wall,
        "loadgen": result["cpu"] / wall,
        "machine": (machine_busy_seconds() - m0) / wall,
    }
    # What ran besides this bench (other users of a shared machine); the load generator's interpreter
    # start-up is counted here too, so a small figure is normal.
    cpu["others"] = max(0.0, cpu["machine"] - cpu["server"] - cpu["postgres"] - cpu["loadgen"])
    answered = max(1, ok_count(result))
    cpu["server_ms"] = 1000 * cpu["server"] * wall / answered  # CPU per answered request
    cpu["postgres_ms"] = 1000 * cpu["postgres"] * wall / answered
    result["worker_cpu"] = sorted((v for pid, v in per_pid.items() if pid != server_pid), reverse=True)
    return result, cpu


def start_gunicorn(kids: Children, name: str, target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = kids.start(
        name,
        [str(VENV_BIN / "gunicorn"), *GUNICORN_OPTS, "-b", f"127.0.0.1:{port}", "--log-level", "warning", target],
        env=env,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
    except RuntimeError:
        print(kids.log_tail(name), file=sys.stderr)
        raise
    return proc


def bench_target(
    kids: Children,
    name: str,
    target: str,
    env: dict[str, str],
    workdir: Path,
    phones_total: int,
    run_id: str,
    args: argparse.Namespace,
    closed_limit: int,
) -> list[tuple[str, dict[str, Any], dict[str, float]]]:
    port = free_port()
    requests_path = workdir / f"requests-{name}.bin"
    build_requests(requests_path, [patient_phone(n) for n in range(phones_total)], port, run_id)
    proc = start_gunicorn(kids, name, target, port, env)
    rows = []
    try:
        cursor = 0
        warm = run_loadgen(workdir, requests_path, port, cursor, args.warmup, mode="closed", concurrency=8, seconds=60)
        cursor += warm["sent"]
        rows.append(("warm-up (closed, c=8)", warm, {}))
        open_n = int(args.rate * args.seconds)
        res, cpu = measured(
            proc.pid,
            lambda: run_loadgen(workdir, requests_path, port, cursor, open_n, mode="open", rate=args.rate),
        )
        cursor += res["sent"]
        rows.append((f"open loop {args.rate:g} req/s x {args.seconds:g} s", res, cpu))
        time.sleep(1)
        res, cpu = measured(
            proc.pid,
            lambda: run_loadgen(
                workdir,
                requests_path,
                port,
                cursor,
                closed_limit,
                mode="closed",
                concurrency=args.concurrency,
                seconds=args.closed_seconds,
                cycle=name == "bare",
            ),
        )
        cursor += res["sent"]
        phase = f"closed loop c={args.concurrency}, {args.closed_seconds:g} s"
        if name != "bare" and res["sent"] >= closed_limit:
            phase += " (ran out of patients: raise --closed-max)"
        rows.append((phase, res, cpu))
        workers = [pid for pid in tree_pids(proc.pid) if pid != proc.pid]
        if workers:
            rss = sum(_rss_mib(pid) for pid in workers)
            rows.append((f"memory: {len(workers)} workers RSS {rss:.0f} MiB", {"sent": 0, "statuses": {}}, {}))
    finally:
        kids.stop(proc)
    return rows


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def ok_count(res: dict[str, Any]) -> int:
    return int(res.get("statuses", {}).get("200", 0))


def fully_processed(
    kids: Children,
    env: dict[str, str],
    workdir: Path,
    database_url: str,
    workers: list[subprocess.Popen[bytes]],
    first_patient: int,
    run_id: str,
    args: argparse.Namespace,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fully processed replies: ``args.process`` patients, each with a conversation at the weight question,
    send "182" through signed webhooks (closed loop, ``args.concurrency`` connections) to the app under
    gunicorn while the bench's RQ workers run. The clock stops when every one of those inbound rows is
    processed (which commits the answer and the next question's outbound row in the same transaction;
    ``verify`` checks both in SQL afterwards). Returns the load generator's result (with ``rate``, the
    texts fully processed per second from the first request to the last row processed, and the CPU used)
    and the workers' counters (round trips, statements) for the phase."""
    import sqlalchemy as sa

    port = free_port()
    requests_path = workdir / "requests-process.bin"
    phones = [patient_phone(n) for n in range(first_patient, first_patient + args.process)]
    build_requests(requests_path, phones, port, run_id + "p")
    proc = start_gunicorn(kids, "outreach-process", "app:create_app()", port, env)
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            floor = int(conn.execute(sa.text("select coalesce(max(id), 0) from messages")).scalar() or 0)
        read_counts(env["REDIS_URL"])  # the phase's counters start at zero
        spec_path = workdir / "spec-process.json"
        spec_path.write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "requests": str(requests_path),
                    "first": 0,
                    "limit": args.process,
                    "mode": "closed",
                    "concurrency": args.concurrency,
                    "seconds": 600,
                }
            )
        )
        pids = tree_pids(proc.pid) + [w.pid for w in workers]
        before = {pid: proc_cpu_seconds(pid) for pid in pids}
        p0, m0 = postgres_cpu_seconds(), machine_busy_seconds()
        t0 = time.monotonic()
        gen = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--loadgen", str(spec_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        done_sql = sa.text(
            "select count(*) from messages where id > :floor and direction='inbound'"
            " and status not in ('pending','retry')"
        )
        processed = 0
        with engine.connect() as conn:
            while True:
                processed = int(conn.execute(done_sql, {"floor": floor}).scalar() or 0)
                conn.commit()
                if processed >= args.process or time.monotonic() - t0 > 600:
                    break
                if gen.poll() not in (None, 0):
                    break
                time.sleep(0.02)
        wall = time.monotonic() - t0
        out, err = gen.communicate(timeout=600)
        if gen.returncode != 0:
            raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
        result: dict[str, Any] = json.loads(out)
        web_pids = [pid for pid in pids if pid not in {w.pid for w in workers}]
        used = {pid: proc_cpu_seconds(pid) - before[pid] for pid in pids}
        result.update(
            rate=processed / wall,
            processed=processed,
            wall=wall,
            cores_web=sum(used[pid] for pid in web_pids) / wall,
            cores_workers=sum(used[w.pid] for w in workers) / wall,
            cores_pg=(postgres_cpu_seconds() - p0) / wall,
            cores_machine=(machine_busy_seconds() - m0) / wall,
        )
        counts = read_counts(env["REDIS_URL"])
    finally:
        engine.dispose()
        kids.stop(proc)
    return result, counts


def fmt_row(target: str, phase: str, res: dict[str, Any], cpu: dict[str, float]) -> str:
    if "elapsed" not in res:
        return f"{target:<10} {phase}"
    errors = res["sent"] - ok_count(res)
    thr = ok_count(res) / res["elapsed"] if res["elapsed"] else 0.0
    cpu_text = f"{cpu['server']:.2f}/{cpu['postgres']:.2f}/{cpu['loadgen']:.2f}/{cpu['others']:.2f}" if cpu else "-"
    per_req = f"{cpu['server_ms']:5.2f}/{cpu['postgres_ms']:4.2f}" if cpu else "-"
    if res.get("worker_cpu"):
        cpu_text += " (workers " + "+".join(f"{v:.2f}" for v in res["worker_cpu"]) + ")"
    return (
        f"{target:<10} {phase:<28} {res['sent']:>6} {errors:>4} {thr:>8.0f} "
        f"{res['p50']:>7.1f} {res['p90']:>7.1f} {res['p99']:>7.1f} {res['max']:>7.1f} {per_req:>11}  {cpu_text}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="open-loop duration (default 10)")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop rate, req/s (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop connections (default 16)")
    parser.add_argument("--closed-seconds", type=float, default=8.0, help="closed-loop duration (default 8)")
    parser.add_argument("--closed-max", type=int, default=8000, help="most requests (= patients) for the closed loop")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument(
        "--process", type=int, default=3000, help="replies in the fully processed phase (web + workers), default 3000"
    )
    parser.add_argument("--workers", type=int, default=2, help="RQ workers the bench starts (default 2)")
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help="gunicorn --threads for both the bare endpoint and the app (default 4; -w 2 either way)",
    )
    parser.add_argument(
        "--breakdown", type=int, default=300, help="sequential in-process requests timed by part (0 = skip)"
    )
    parser.add_argument("--content-dir", help="OUTREACH_CONTENT_DIR for the app (default: the repository's)")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs (for profiling)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long run with tiny sizes (the test suite runs it): every phase and check, no figures "
        "worth reading; its own database name, so parallel runs do not collide",
    )
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args.loadgen)
        return 0
    db_name = DB_NAME
    GUNICORN_OPTS[GUNICORN_OPTS.index("--threads") + 1] = str(args.threads)
    if args.smoke:
        args.seconds, args.rate, args.concurrency, args.closed_seconds = 1.0, 20.0, 4, 1.0
        args.closed_max, args.warmup, args.breakdown, args.process = 40, 5, 5, 60
        db_name = f"{DB_NAME}_smoke_{os.getpid()}"

    from redis import Redis

    from app.migrations import upgrade
    from tests.support.services import create_database, drop_database

    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
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
        open_n = int(args.rate * args.seconds)
        patients = args.warmup + open_n + args.closed_max
        seeded = patients + args.process + (args.breakdown + 20 if args.breakdown else 0)
        with children(workdir) as kids:
            _fake, twilio_base = start_fake_twilio(kids, latency_ms=200)
            env = app_env(database_url, redis_url, twilio_base, args.content_dir)
            t0 = time.monotonic()
            seed(env, seeded)
            print(
                f"setup: database {db_name} migrated; {seeded} patients with an active {FLOW} conversation "
                f"seeded in {time.monotonic() - t0:.1f} s; channel twilio -> local fake server; Redis {redis_url}"
            )
            bare = bench_target(
                kids,
                "bare",
                "bench.sms_inbound:bare_app()",
                env,
                workdir,
                patients,
                run_id + "x",
                args,
                args.closed_max,
            )
            app_rows = bench_target(
                kids, "outreach", "app:create_app()", env, workdir, patients, run_id, args, args.closed_max
            )
            sent_to_app = sum(ok_count(r) for _p, r, _c in app_rows)
            non_200 = sum(r["sent"] - ok_count(r) for _p, r, _c in app_rows)
            stored = waiting_inbound(database_url)
            workers = start_workers(kids, env, redis_url, args.workers)
            wait_workers_ready(redis_url, workers, timeout=120)
            backlog_s = drain(database_url, workers, timeout=600)
            backlog_counts = read_counts(redis_url)
            process_row, process_counts = fully_processed(
                kids, env, workdir, database_url, workers, patients, run_id, args
            )
            sent_to_app += ok_count(process_row)
            non_200 += process_row["sent"] - ok_count(process_row)
            for proc in workers:
                kids.stop(proc)  # after their last job: every counter is in Redis
            parked = sum(c.get("parked_texts", 0) for c in (backlog_counts, process_counts, read_counts(redis_url)))
            checks = verify(database_url, twilio_base, run_id, sent_to_app, parked)
            parts = breakdown(env, patients + args.process, args.breakdown) if args.breakdown else []

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
        print(f"verification ({sent_to_app} requests answered 200 by the app, {non_200} not):")
        for name, value, good in checks:
            print(f"  {'ok  ' if good else 'FAIL'} {name}: {value}")

        if parts:
            print()
            print("where one request's time goes (no concurrency):")
            for line in parts:
                print("  " + line)

        bare_closed, app_closed, app_open = bare[2][1], app_rows[2][1], app_rows[1][1]
        bare_thr = ok_count(bare_closed) / bare_closed["elapsed"]
        app_thr = ok_count(app_closed) / app_closed["elapsed"]
        ratio = app_thr / bare_thr
        p50, p99 = app_open["p50"], app_open["p99"]
        process_rate = process_row["rate"]
        process_ratio = process_rate / bare_thr
        processed = max(1, process_row["processed"])
        rt_per_msg = process_counts.get("round_trips", 0) / processed
        stmt_per_msg = process_counts.get("statements", 0) / processed
        web_rt = WEBHOOK_ROUND_TRIPS
        ratio_ok, process_ok, p99_ok = ratio >= 0.5, process_ratio >= 0.15, p99 < 15.0
        rt_ok = rt_per_msg + web_rt <= 4.0
        at_target_rate = args.rate == 200
        print()
        print(
            f"fully processed replies, web + {args.workers} workers ({process_row['processed']} texts, closed loop "
            f"c={args.concurrency}): {process_rate:.0f}/s in {process_row['wall']:.1f} s; cores web "
            f"{process_row['cores_web']:.2f} / workers {process_row['cores_workers']:.2f} / PostgreSQL "
            f"{process_row['cores_pg']:.2f} / machine {process_row['cores_machine']:.2f}; webhook p50 "
            f"{process_row['p50']:.1f} ms p99 {process_row['p99']:.1f} ms"
        )
        print(
            f"backlog left by the webhook phases: {stored} stored texts processed by the workers in {backlog_s:.1f} s "
            f"({stored / max(backlog_s, 1e-9):.0f}/s; {backlog_counts.get('round_trips', 0) / max(stored, 1):.2f} "
            f"round trips per text)"
        )
        print(
            f"round trips per processed text: workers {rt_per_msg:.2f} ({stmt_per_msg:.2f} SQL statements; "
            f"{process_counts.get('jobs', 0)} jobs) + webhook {web_rt} = {rt_per_msg + web_rt:.2f} "
            f"(target <= 4: {'MET' if rt_ok else 'MISSED'})"
        )
        print(
            f"webhook alone: outreach {app_thr:.0f} req/s vs bare {bare_thr:.0f} req/s = {ratio:.2f}x "
            f"(target >= 0.5x: {'MET' if ratio_ok else 'MISSED'})"
        )
        print(
            f"fully processed: {process_rate:.0f}/s vs bare {bare_thr:.0f} req/s = {process_ratio:.2f}x "
            f"(target >= 0.15x: {'MET' if process_ok else 'MISSED'})"
        )
        print(
            f"latency at {args.rate:g} req/s open loop: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
            + (
                f"(target p99 < 15 ms: {'MET' if p99_ok else f'MISSED by {p99 - 15:.1f} ms'})"
                if at_target_rate
                else "(the target, p99 < 15 ms, is stated at 200 req/s)"
            )
        )
        all_verified = all(good for _n, _v, good in checks) and non_200 == 0 and sent_to_app > 0
        print(
            f"work verified in SQL/Redis: {'yes' if all_verified else 'NO'}; "
            f"total time {time.monotonic() - t_start:.0f} s"
        )
        print(
            f"RESULT sms_inbound: outreach_rps={app_thr:.0f} bare_rps={bare_thr:.0f} ratio={ratio:.2f} "
            f"processed_per_s={process_rate:.0f} processed_ratio={process_ratio:.2f} "
            f"round_trips_per_text={rt_per_msg + web_rt:.2f} "
            f"p50_ms={p50:.1f} p99_ms={p99:.1f} at_rate={args.rate:g} verified={all_verified} "
            f"ratio_target={'met' if ratio_ok else 'missed'} processed_target={'met' if process_ok else 'missed'} "
            f"round_trip_target={'met' if rt_ok else 'missed'} "
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

"""Outbound SMS: sends per second from 2 RQ workers when every Twilio API call takes 200 ms.

Setup: a throwaway PostgreSQL database, ``--messages`` patients with one queued outbound text each
(made by app.messaging.outbound.queue_text, the app's own path), and the local Twilio REST server
(tests/support/fake_twilio.py, its own process) answering every call after ``--latency-ms`` (200).

0. canary: one worker must run the app's send job (``send_messages([])``, which sends nothing) within
   ``--canary-timeout`` s; a worker that hangs (a deadlock) is reported instead of stalling the bench.
1. batch path: ``app.scheduling.sweeper.tick`` finds the queued rows and enqueues ``send_messages``
   jobs of 50 ids (one tick takes at most 1000 rows; the rest are enqueued in the same batches); two
   ``rq worker --burst`` processes with the app's environment (OUTREACH_SMS_RATE=0,
   OUTREACH_SEND_CONCURRENCY as given, the worker class the Procfile names unless ``--worker-class``
   says otherwise) drain them. Timed from starting the workers until every row is 'sent' in SQL; the
   steady rate between the first and the last text the Twilio server took is shown too.
2. sequential: one thread calling app.messaging.outbound.deliver() per message (``--sequential`` messages).
3. no-op RQ jobs: how many trivial jobs per second the same two workers process (RQ's own ceiling).

Verified afterwards: exactly one text per row reached the Twilio server (matched by the status
callback's ``mid``: no duplicates, none missing), every row is 'sent' with the provider SID the server
gave it, no job failed and the workers logged no error.

Run from the repository root:  .venv/bin/python bench/sms_outbound.py [--messages 2000 --concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.request
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
    load_average,
    machine_busy_seconds,
    machine_lines,
    percentile,
    postgres_cpu_seconds,
    proc_cpu_seconds,
    start_fake_twilio,
)

DB_NAME = "outreach_bench_outbound"
PUBLIC_BASE_URL = "https://outreach.example.org"
ACCOUNT_SID = "AC" + "feed" * 8  # the fake server's defaults
AUTH_TOKEN = "test-token"
FROM_NUMBER = "+15005550006"
QUEUE = "outreach"
BODY = (
    "North Clinic: Good morning {name}. What is your weight today in pounds? Weigh before breakfast. "
    "Reply with a number, like 182. Reply STOP to end texts."
)


def noop() -> None:
    """The no-op job: measures what RQ itself costs per job."""
    return None


def patient_phone(n: int) -> str:
    return f"+1202{555 + n // 10_000:03d}{n % 10_000:04d}"


def app_env(database_url: str, redis_url: str, twilio_base: str, args: argparse.Namespace) -> dict[str, str]:
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
    )
    if args.concurrency:
        env["OUTREACH_SEND_CONCURRENCY"] = str(args.concurrency)
    if args.content_dir:
        env["OUTREACH_CONTENT_DIR"] = args.content_dir
    return env


class _NoJobs:
    """Creating rows only: queue_text's per-message job is not enqueued (the sweeper batches them)."""

    name = "none"

    def enqueue(self, func: Any, *args: Any, job_id: str | None = None) -> None:
        return None

    def enqueue_at(self, when: Any, func: Any, *args: Any, job_id: str | None = None) -> None:
        return None


def runtime(env: dict[str, str], *, jobs: bool) -> Any:
    import dataclasses

    from app.bootstrap import build_runtime
    from app.config import settings_from_env

    rt = build_runtime(settings_from_env(env))
    return rt if jobs else dataclasses.replace(rt, jobs=_NoJobs())


def create_messages(rt: Any, first: int, count: int, program_id: int | None) -> tuple[int, list[int]]:
    """``count`` patients, each with one queued text made by app.messaging.outbound.queue_text."""
    import datetime as dt

    from app.messaging.outbound import queue_text
    from app.models import Patient, Program

    now = dt.datetime.now(dt.UTC)
    ids: list[int] = []
    if program_id is None:
        with rt.sessions() as session, session.begin():
            program = Program(
                slug="bench", name="North Clinic", phone_display="555-0100", uses_healthcare_exemption=False
            )
            session.add(program)
            session.flush()
            program_id = program.id
    for start in range(first, first + count, 500):
        with rt.sessions() as session, session.begin():
            patients = [
                Patient(
                    program_id=program_id,
                    mrn=f"B{n:07d}",
                    given_name="Maria",
                    family_name="Garcia",
                    phone=patient_phone(n),
                    language="en",
                    timezone="America/New_York",
                    conditions=["heart_failure"],
                )
                for n in range(start, min(first + count, start + 500))
            ]
            session.add_all(patients)
            session.flush()
            for patient in patients:
                message = queue_text(
                    session,
                    rt,
                    to=patient.phone,
                    body=BODY.format(name=patient.given_name),
                    kind="prompt",
                    patient=patient,
                    now=now,
                )
                ids.append(message.id)
    return program_id, ids


def fake_messages(twilio_base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{twilio_base}/_fake/messages", timeout=30) as response:
        result: list[dict[str, Any]] = json.loads(response.read())
        return result


def mid_of(entry: dict[str, Any]) -> int | None:
    callback = str(entry.get("StatusCallback", ""))
    _, _, query = callback.partition("?mid=")
    return int(query) if query.isdigit() else None


def sql_status(database_url: str, ids: list[int]) -> dict[int, tuple[str, str | None]]:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("select id, status, provider_sid from messages where id = any(:ids)"), {"ids": ids}
            ).all()
    finally:
        engine.dispose()
    return {int(r[0]): (str(r[1]), r[2]) for r in rows}


def count_sent(database_url: str, ids: list[int]) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("select count(*) from messages where id = any(:ids) and status = 'sent'"), {"ids": ids}
                ).scalar()
                or 0
            )
    finally:
        engine.dispose()


def verify_sends(
    database_url: str, entries: list[dict[str, Any]], ids: list[int], label: str
) -> list[tuple[str, str, bool]]:
    """Exactly one text per row at the Twilio server, and the row is 'sent' with that text's SID."""
    wanted = set(ids)
    mine = [e for e in entries if mid_of(e) in wanted]
    by_mid: dict[int, list[dict[str, Any]]] = {}
    for entry in mine:
        by_mid.setdefault(mid_of(entry) or 0, []).append(entry)
    duplicates = sum(len(v) - 1 for v in by_mid.values())
    missing = len(wanted - set(by_mid))
    rows = sql_status(database_url, ids)
    not_sent = sum(1 for status, _sid in rows.values() if status != "sent")
    sid_mismatch = sum(1 for mid, sent in by_mid.items() if rows.get(mid, ("", None))[1] != sent[0]["sid"])
    return [
        (f"{label}: texts at the Twilio server for these rows", f"{len(mine)} of {len(ids)}", len(mine) == len(ids)),
        (
            f"{label}: rows with no text / duplicate texts",
            f"{missing} / {duplicates}",
            missing == 0 and duplicates == 0,
        ),
        (f"{label}: rows not 'sent' in SQL", str(not_sent), not_sent == 0 and len(rows) == len(ids)),
        (f"{label}: rows whose provider_sid differs from the server's", str(sid_mismatch), sid_mismatch == 0),
    ]


def start_workers(
    kids: Children, name: str, env: dict[str, str], redis_url: str, worker_class: str | None, count: int = 2
) -> list[Any]:
    argv = [str(VENV_BIN / "rq"), "worker", "--burst", "--url", redis_url, "--logging_level", "WARNING"]
    if worker_class:
        argv += ["-w", worker_class]
    return [kids.start(f"{name}-{i}", [*argv, QUEUE], env=env) for i in range(count)]


def procfile_worker_class() -> str | None:
    """The --worker-class (or -w) the Procfile's worker line names, if any."""
    try:
        lines = (ROOT / "Procfile").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("worker:"):
            words = line.split()
            for flag in ("--worker-class", "-w"):
                if flag in words and words.index(flag) + 1 < len(words):
                    return words[words.index(flag) + 1]
            for word in words:
                if word.startswith("--worker-class="):
                    return word.split("=", 1)[1]
    return None


def workers_run_jobs(
    kids: Children, env: dict[str, str], redis_url: str, worker_class: str | None, timeout: int
) -> tuple[bool, str]:
    """Canary: can these workers run the app's send job at all? send_messages([]) sends nothing. A job
    that hangs (a deadlock) shows up here within ``timeout`` s instead of stalling the whole bench."""
    from redis import Redis
    from rq import Queue

    from app import tasks

    redis = Redis.from_url(redis_url)
    queue = Queue(QUEUE, connection=redis)
    job = queue.enqueue(tasks.send_messages, [], job_id="canary", job_timeout=timeout, result_ttl=600)
    (worker,) = start_workers(kids, "canary-worker", env, redis_url, worker_class, count=1)
    try:
        worker.wait(timeout + 20)
    except Exception:
        kids.stop(worker)
    job.refresh()
    status = job.get_status()
    detail = ""
    if status != "finished":
        info = job.latest_result()
        text = (info.exc_string if info is not None else "") or ""
        last = [line for line in text.strip().splitlines() if line.strip()]
        where = [line.strip() for line in last if line.strip().startswith("File")]
        detail = f"{status}: {last[-1] if last else '?'} (in {where[-2] if len(where) > 1 else '?'})"
    queue.empty()
    queue.failed_job_registry.remove(job, delete_job=True) if status == "failed" else None
    redis.close()
    return status == "finished", detail


def wait_workers(workers: list[Any], timeout: float) -> float:
    """Wait for burst workers to exit; returns when the last one did (monotonic)."""
    deadline = time.monotonic() + timeout
    for proc in workers:
        proc.wait(max(0.1, deadline - time.monotonic()))
    return time.monotonic()


def _ids_in_jobs(queue: Any) -> list[int]:
    return [mid for job in queue.get_jobs() for mid in job.args[0]]


def job_spans(redis_url: str, job_ids: list[str]) -> list[tuple[float, float]]:
    from redis import Redis
    from rq.job import Job

    redis = Redis.from_url(redis_url)
    spans = []
    for job in Job.fetch_many(job_ids, connection=redis):
        if job is not None and job.started_at and job.ended_at:
            spans.append((job.started_at.timestamp(), job.ended_at.timestamp()))
    redis.close()
    return spans


def failed_jobs(redis_url: str) -> int:
    from redis import Redis
    from rq import Queue

    redis = Redis.from_url(redis_url)
    count = Queue(QUEUE, connection=redis).failed_job_registry.count
    redis.close()
    return int(count)


def cpu_snapshot(pids: list[int]) -> tuple[float, float, float]:
    return sum(proc_cpu_seconds(p) for p in pids), postgres_cpu_seconds(), machine_busy_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="texts drained by the 2 workers (default 2000)")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="OUTREACH_SEND_CONCURRENCY (default: the app's default)"
    )
    parser.add_argument("--latency-ms", type=float, default=200.0, help="added to every Twilio API call")
    parser.add_argument("--sequential", type=int, default=25, help="texts for the sequential sender (default 25)")
    parser.add_argument(
        "--per-message", type=int, default=200, help="texts sent by queue_text's own per-message jobs (0 = skip)"
    )
    parser.add_argument("--noop-jobs", type=int, default=1000, help="no-op jobs for the RQ ceiling (default 1000)")
    parser.add_argument(
        "--worker-class",
        default="procfile",
        help="rq worker --worker-class: 'procfile' (default) = the class the Procfile's worker line names, "
        "'stock' = RQ's default forking Worker, or a dotted path",
    )
    parser.add_argument("--canary-timeout", type=int, default=8, help="job timeout for the canary (s)")
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
        args.messages, args.sequential, args.per_message, args.noop_jobs = 60, 3, 10, 20
        args.latency_ms = 20.0
        db_name = f"{DB_NAME}_smoke_{os.getpid()}"
    patience = 45.0 if args.smoke else 150.0  # seconds a phase may take before it counts as stuck

    from redis import Redis
    from rq import Queue

    from app.config import settings_from_env
    from app.messaging.outbound import SEND_BATCH, deliver
    from app.migrations import upgrade
    from app.runtime import clear_current
    from app.scheduling import sweeper
    from tests.support.services import create_database, drop_database

    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-outbound-"))
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
        with children(workdir) as kids:
            fake, twilio_base = start_fake_twilio(kids, latency_ms=args.latency_ms)
            env = app_env(database_url, redis_url, twilio_base, args)
            concurrency = settings_from_env(env).send_concurrency
            t0 = time.monotonic()
            rows_rt = runtime(env, jobs=False)
            program_id, ids = create_messages(rows_rt, 0, args.messages, None)
            print(
                f"setup: database {db_name} migrated; {len(ids)} queued texts made by queue_text in "
                f"{time.monotonic() - t0:.1f} s; Twilio server latency {args.latency_ms:g} ms; "
                f"OUTREACH_SEND_CONCURRENCY={concurrency}; OUTREACH_SMS_RATE=0; Redis {redis_url}"
            )

            # 0. can the workers run the app's jobs at all?
            if args.worker_class == "procfile":
                worker_class = procfile_worker_class()
            else:
                worker_class = None if args.worker_class == "stock" else args.worker_class
            command = f"rq worker --burst{' --worker-class ' + worker_class if worker_class else ''}"
            runs, detail = workers_run_jobs(kids, env, redis_url, worker_class, args.canary_timeout)
            if not runs:
                print(f"`{command}` did NOT run the app's send job: {detail}")
                print("RESULT sms_outbound: workers_run_jobs=False (nothing measured)")
                return 1
            print(f"workers: 2 x `{command}` (canary send job ran)")

            # 1. the batch path: the sweeper enqueues send_messages jobs, two burst workers drain them.
            jobs_rt = runtime(env, jobs=True)
            import datetime as dt

            now = dt.datetime.now(dt.UTC)
            counts = sweeper.tick(jobs_rt, now)
            by_tick = len(queue.job_ids)
            # One tick takes at most app.messaging.outbound.due_for_retry's limit (1000 rows); a second tick now would
            # find the same rows again (they are still queued), so the rest go in the sweeper's own batches.
            from app import tasks

            swept = set(_ids_in_jobs(queue))
            rest = [mid for mid in ids if mid not in swept]
            for start in range(0, len(rest), SEND_BATCH):
                batch = rest[start : start + SEND_BATCH]
                jobs_rt.jobs.enqueue(tasks.send_messages, batch, job_id=f"send-batch-{batch[0]}-{len(batch)}-bench")
            job_ids = list(queue.job_ids)
            send_jobs = len(job_ids)
            expected_jobs = math.ceil(len(swept) / SEND_BATCH) + math.ceil(len(rest) / SEND_BATCH)
            covered = swept | set(rest)
            checks.append(
                (
                    "send_messages jobs (by the sweeper's tick + the rest in its batches)",
                    f"{by_tick} + {send_jobs - by_tick} (tick requeued={counts['requeued']})",
                    send_jobs == expected_jobs and covered == set(ids),
                )
            )
            cpu0 = cpu_snapshot([fake.pid])
            w0 = time.monotonic()
            workers = start_workers(kids, "send-worker", env, redis_url, worker_class)
            all_sent_at = None
            deadline = w0 + patience
            worker_cpu: dict[int, float] = {}
            while time.monotonic() < deadline:
                for w in workers:  # the last reading before a burst worker exits (forked horses included)
                    seen = proc_cpu_seconds(w.pid)
                    if not math.isnan(seen):
                        worker_cpu[w.pid] = seen
                if count_sent(database_url, ids) == len(ids):
                    all_sent_at = time.monotonic()
                    worker_cpu.update({w.pid: proc_cpu_seconds(w.pid) for w in workers if w.poll() is None})
                    break
                if all(w.poll() is not None for w in workers):
                    break
                time.sleep(0.05)
            exited_at = wait_workers(workers, max(1.0, deadline - time.monotonic()))
            cpu1 = cpu_snapshot([fake.pid])
            drain_wall = (all_sent_at or exited_at) - w0
            entries = fake_messages(twilio_base)
            checks += verify_sends(database_url, entries, ids, "batch")
            times = sorted(float(e["time"]) for e in entries if mid_of(e) in set(ids))
            steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
            spans = job_spans(redis_url, job_ids)
            durations = sorted(end - begin for begin, end in spans)
            sends_per_s = len(ids) / drain_wall if all_sent_at else 0.0
            fake_cpu = (cpu1[0] - cpu0[0]) / (exited_at - w0)
            per_text_ms = {
                "workers": 1000 * sum(worker_cpu.values()) / len(ids),
                "postgres": 1000 * (cpu1[1] - cpu0[1]) / len(ids),
                "twilio server": 1000 * (cpu1[0] - cpu0[0]) / len(ids),
            }
            pg_cpu = (cpu1[1] - cpu0[1]) / (exited_at - w0)
            busy = (cpu1[2] - cpu0[2]) / (exited_at - w0)

            # 2. sequential: one thread, deliver() per message, the same channel and server.
            _pid, seq_ids = create_messages(rows_rt, args.messages, args.sequential, program_id)
            s0 = time.monotonic()
            outcomes = [deliver(jobs_rt, mid) for mid in seq_ids]
            seq_wall = time.monotonic() - s0
            sequential_rate = len(seq_ids) / seq_wall
            checks.append(
                ("sequential: deliver() outcomes", ",".join(sorted(set(outcomes))), set(outcomes) == {"sent"})
            )
            checks += verify_sends(database_url, fake_messages(twilio_base), seq_ids, "sequential")
            # 2b. the jobs queue_text itself enqueues after commit (one send_messages job per transaction and
            # 50 texts), as for replies to inbound texts and for the prompts a tick starts.
            per_rate, per_wall, per_ids = 0.0, 0.0, []
            if args.per_message:
                queue.empty()
                _pid, per_ids = create_messages(jobs_rt, args.messages + args.sequential, args.per_message, program_id)
                per_jobs = queue.count
                checks.append(
                    (
                        "per-message: send jobs enqueued by queue_text (≥ 1, ≤ one per text)",
                        str(per_jobs),
                        1 <= per_jobs <= len(per_ids),
                    )
                )
                p0 = time.monotonic()
                workers = start_workers(kids, "single-worker", env, redis_url, worker_class)
                per_deadline = p0 + patience
                while time.monotonic() < per_deadline and count_sent(database_url, per_ids) < len(per_ids):
                    if all(w.poll() is not None for w in workers):
                        break
                    time.sleep(0.05)
                per_wall = time.monotonic() - p0
                wait_workers(workers, max(1.0, per_deadline - time.monotonic()))
                per_rate = count_sent(database_url, per_ids) / per_wall
                checks += verify_sends(database_url, fake_messages(twilio_base), per_ids, "per-message")
            rows_rt.engine.dispose()
            jobs_rt.engine.dispose()
            clear_current()

            # 3. no-op jobs through the same two workers (RQ's per-job ceiling).
            queue.empty()
            noop_ids = [
                queue.enqueue("bench.sms_outbound.noop", job_id=f"noop-{i}", result_ttl=600).id
                for i in range(args.noop_jobs)
            ]
            n0 = time.monotonic()
            workers = start_workers(kids, "noop-worker", env, redis_url, worker_class)
            n_exit = wait_workers(workers, patience)
            noop_spans = job_spans(redis_url, noop_ids)
            noop_wall = n_exit - n0
            noop_rate = len(noop_spans) / noop_wall
            noop_first = min(b for b, _e in noop_spans)
            noop_last = max(e for _b, e in noop_spans)
            noop_steady = len(noop_spans) / (noop_last - noop_first) if noop_last > noop_first else 0.0
            checks.append(
                ("no-op jobs finished", f"{len(noop_spans)} of {args.noop_jobs}", len(noop_spans) == args.noop_jobs)
            )
            failed = failed_jobs(redis_url)
            checks.append(("failed RQ jobs", str(failed), failed == 0))
            worker_errors = [
                line
                for i in range(2)
                for line in kids.log_tail(f"send-worker-{i}", 200).splitlines()
                if "Traceback" in line or "ERROR" in line
            ]
            checks.append(("errors in the send workers' logs", str(len(worker_errors)), not worker_errors))

        ideal_job = math.ceil(SEND_BATCH / concurrency) * args.latency_ms / 1000
        print()
        print(f"2 x `{command}`, {len(ids)} texts")
        if by_tick < send_jobs:
            print(
                f"  note: one tick enqueued {counts['requeued']} of {len(ids)} queued texts (due_for_retry's limit); "
                f"the other {len(rest)} were enqueued in the same batches of {SEND_BATCH}"
            )
        print(
            f"  batch path:  {sends_per_s:7.1f} sends/s  ({len(ids)} texts, {send_jobs} jobs of {SEND_BATCH}, "
            f"{drain_wall:.2f} s from starting the workers until all rows were 'sent')"
        )
        print(
            f"               {steady:7.1f} sends/s  steady rate at the Twilio server (first to last text, "
            f"{times[-1] - times[0]:.2f} s)"
        )
        if durations:
            print(
                f"               job duration p50 {percentile(durations, 50):.2f} s, max {durations[-1]:.2f} s "
                f"(floor for 50 texts at concurrency {concurrency}: {ideal_job:.2f} s = "
                f"{2 * SEND_BATCH / ideal_job:.0f} sends/s for 2 workers)"
            )
        print(
            f"               cpu during the drain: Twilio server {fake_cpu:.2f}, PostgreSQL {pg_cpu:.2f}, "
            f"whole machine {busy:.2f} of {os.cpu_count()} cores"
        )
        print(
            "               cpu per text: "
            + ", ".join(f"{name} {value:.2f} ms" for name, value in per_text_ms.items())
            + f" (the 2 workers used {sum(worker_cpu.values()) / drain_wall:.2f} cores)"
        )
        print(
            f"  sequential:  {sequential_rate:7.1f} sends/s  (one thread, deliver() per text, {len(seq_ids)} texts in "
            f"{seq_wall:.2f} s; floor {1000 / args.latency_ms:.1f}/s)"
        )
        if per_ids:
            print(
                f"  per-message: {per_rate:7.1f} sends/s  ({len(per_ids)} texts, in the jobs "
                f"queue_text enqueues for them, same 2 workers, {per_wall:.2f} s)"
            )
        print(
            f"  no-op jobs:  {noop_rate:7.1f} jobs/s   ({len(noop_spans)} jobs, {noop_wall:.2f} s from starting "
            f"the workers to their exit; {noop_steady:.1f} jobs/s first start to last end)"
        )
        print()
        print("verification:")
        for name, value, good in checks:
            print(f"  {'ok  ' if good else 'FAIL'} {name}: {value}")
        verified = all(good for _n, _v, good in checks)
        target_ok = sends_per_s >= 200
        print()
        print(
            f"sends/s {sends_per_s:.1f} (target >= 200: "
            f"{'MET' if target_ok else f'MISSED by {200 - sends_per_s:.1f}/s, {sends_per_s / 200:.2f}x of target'})"
        )
        print(f"total time {time.monotonic() - t_start:.0f} s")
        print(
            f"RESULT sms_outbound: sends_per_s={sends_per_s:.1f} steady_per_s={steady:.1f} "
            f"sequential_per_s={sequential_rate:.1f} per_message_jobs_per_s={per_rate:.1f} "
            f"noop_jobs_per_s={noop_rate:.1f} concurrency={concurrency} "
            f"latency_ms={args.latency_ms:g} messages={len(ids)} verified={verified} "
            f"worker_class={worker_class or 'rq.Worker'} smoke={args.smoke} "
            f"target={'met' if target_ok else 'missed'}"
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

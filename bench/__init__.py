"""Benchmarks that print figures (speed and memory targets live here, not in timed tests).

Shared helpers for the bench scripts: the machine description, child processes that are always
stopped, throwaway PostgreSQL databases and Redis databases, and latency percentiles. Nothing heavy
is imported here: gunicorn imports ``bench.sms_inbound`` for the bare endpoint.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
#: The local servers named in the brief; override with BENCH_DATABASE_ADMIN_URL / BENCH_REDIS_URL.
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_ADMIN_URL") or DEFAULT_ADMIN_URL


def bench_redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines(database_url: str | None = None, redis_url: str | None = None) -> list[str]:
    """nproc, CPU model, memory, Python, PostgreSQL and Redis versions."""
    lines = [
        f"nproc {os.cpu_count()}  cpu {cpu_model()}",
        f"memory {_mem_total()}  kernel {platform.release()}",
        f"python {platform.python_version()} ({sys.executable})",
    ]
    if database_url:
        import sqlalchemy as sa

        engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                version = conn.execute(sa.text("show server_version")).scalar()
            lines.append(f"postgresql {version}")
        finally:
            engine.dispose()
    if redis_url:
        from redis import Redis

        client = Redis.from_url(redis_url)
        lines.append(f"redis {client.info('server').get('redis_version')}")
        client.close()
    versions = []
    for dist in ("gunicorn", "flask", "sqlalchemy", "psycopg", "rq", "twilio"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
    lines.append(", ".join(versions))
    return lines


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


# -- child processes -------------------------------------------------------------------------------------


class Children:
    """Processes this bench started; each is stopped by its own pid (process group) on exit."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, *, stdout_pipe: bool = False
    ) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else log,
            stderr=log,
            start_new_session=True,  # its own process group: stopping it stops its children only
        )
        self.procs.append((name, proc, log))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def stop_all(self) -> None:
        for _name, proc, log in reversed(self.procs):
            self.stop(proc)
            log.close()
        self.procs.clear()

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logdir / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def children(logdir: Path) -> Iterator[Children]:
    kids = Children(logdir)
    try:
        yield kids
    finally:
        kids.stop_all()


def start_fake_twilio(kids: Children, latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    """The local Twilio REST server in its own process; returns it and its base URL."""
    proc = kids.start(
        "fake_twilio",
        [sys.executable, "-m", "tests.support.fake_twilio", "--port", "0", "--latency-ms", str(latency_ms)],
        stdout_pipe=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        raise RuntimeError(f"fake twilio did not start: {line!r} {kids.log_tail('fake_twilio')}")
    return proc, line.removeprefix("listening on ")


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s: {last!r}")


def proc_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its reaped children, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[11..14] = utime stime cutime cstime (stat fields 14..17)
    return sum(int(v) for v in fields[11:15]) / ticks


def tree_pids(root_pid: int) -> list[int]:
    """The process and its descendants (for gunicorn: the arbiter and its workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def postgres_cpu_seconds() -> float:
    """CPU of every local process named postgres (the server's backends), when /proc shows them."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if name == "postgres":
            fields = stat.rsplit(")", 1)[1].split()
            # utime stime cutime cstime: the postmaster's cutime holds the backends that already exited.
            total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat), to see what else ran during a phase."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return math.nan
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"

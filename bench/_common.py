"""Helpers shared by the benchmarks: scratch databases, processes, statistics, machine facts.

Not part of rjobs. Every benchmark starts what it needs and removes it again: PostgreSQL
databases named ``rjobs_bench_*`` (created through the admin URL, dropped with FORCE), temp
directories, ``rjobs worker`` processes and embedded supervisors.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("RJOBS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
LOCK_NAME = "supervisor.lock"  # rjobs.worker.supervisor.LOCK_NAME


# -- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/max/mean of durations given in seconds, in milliseconds."""
    ms = [v * 1000.0 for v in values_s]
    return {
        "n": float(len(ms)),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "max": max(ms) if ms else float("nan"),
        "mean": statistics.fmean(ms) if ms else float("nan"),
    }


def verdict(value: float, target: float) -> str:
    return "MET" if value <= target else "MISSED"


# -- machine ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def pg_version(url: str = PG_ADMIN_URL) -> str:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        return f"unreachable ({exc.__class__.__name__})"
    return "unknown" if row is None else str(row[0])


def machine_header(title: str) -> str:
    """What to print first: benchmark, date, machine, versions and the current load."""
    import sqlite3

    import sqlalchemy

    import rjobs

    uname = " ".join(platform.uname())
    lines = [
        f"== {title}",
        f"date (UTC)   : {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')}",
        f"uname -a     : {uname}",
        f"cpu          : {_cpu_model()} ({os.cpu_count()} logical cores)",
        f"ram          : {_ram_gib():.1f} GiB",
        f"python       : {platform.python_version()}  sqlalchemy {sqlalchemy.__version__}"
        f"  rjobs {getattr(rjobs, '__version__', '?')}",
        f"sqlite       : {sqlite3.sqlite_version}",
        f"postgresql   : {pg_version()}",
        f"load average : {load_average()} (1, 5, 15 min) at start",
    ]
    return "\n".join(lines)


# -- PostgreSQL scratch databases ------------------------------------------------------------


def pg_available(url: str = PG_ADMIN_URL) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def scratch_pg_database(tag: str) -> Iterator[str]:
    """A fresh database ``rjobs_bench_<tag>_<random>``, dropped (FORCE) on the way out."""
    name = f"rjobs_bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def scratch_dir(tag: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"rjobs-bench-{tag}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- processes -------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM one process we started, then SIGKILL it if it lingers."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop_supervisor(data_dir: Path) -> None:
    """Stop the embedded supervisor of ``data_dir``: SIGTERM to the pid in its lock file."""
    try:
        text = (data_dir / LOCK_NAME).read_text().strip()
    except OSError:
        return
    if text.isdigit():
        stop_pid(int(text))


class WorkerProcs:
    """``rjobs worker`` processes started by a benchmark, each logging to its own file."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(self, store_url: str, reasoner: str, slots: int, data_dir: Path) -> None:
        log = self.log_dir / f"worker-{self.started}.log"
        self.started += 1
        env = dict(os.environ, RJOBS_DATA_DIR=str(data_dir))
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "rjobs.cli",
                    "worker",
                    "--reasoner",
                    reasoner,
                    "--slots",
                    str(slots),
                    "--store",
                    store_url,
                    "--shutdown-grace-s",
                    "5",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.log_dir,
            )
        self.procs.append(proc)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()


def rjobs_version() -> str:
    import rjobs

    return str(getattr(rjobs, "__version__", "?"))

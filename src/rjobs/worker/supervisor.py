"""The embedded backend's local supervisor: one background worker per data directory.

Any local client that queues a job calls :func:`ensure_supervisor`. A lock file decides who runs:
the supervisor holds an exclusive ``flock`` on ``<data_dir>/supervisor.lock`` for its whole life,
so a client that can take the lock knows nobody serves the directory and starts one. The
supervisor outlives the client that started it and exits after ``idle_timeout_s`` without active
jobs.

Exiting races with a client queueing a job at that moment. The supervisor therefore releases the
lock *before* its last look at the queue: either the client's job is already visible to that look
(and the supervisor carries on), or the client's lock check comes after the release (and the
client starts a new supervisor).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from rjobs._config import Config
from rjobs._logging import configure as configure_logging
from rjobs.store.store import Store

logger = logging.getLogger(__name__)

LOCK_NAME = "supervisor.lock"
LOG_NAME = "supervisor.log"


def _try_lock(path: Path) -> IO[str] | None:
    handle = open(path, "a+")  # noqa: SIM115 - held for the supervisor's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def supervisor_running(data_dir: Path) -> bool:
    path = data_dir / LOCK_NAME
    if not path.exists():
        return False
    handle = _try_lock(path)
    if handle is None:
        return True
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
    return False


_recent_starts: dict[Path, float] = {}
_START_SETTLE_S = 5.0  # a new supervisor takes its lock within this (imports, then flock)


def ensure_supervisor(config: Config) -> None:
    """Start the data directory's supervisor unless one runs already."""
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    if supervisor_running(data_dir):
        return
    started = _recent_starts.get(data_dir)
    if started is not None and time.monotonic() - started < _START_SETTLE_S:
        return  # ours is still starting: a burst of creates must not start one each
    _recent_starts[data_dir] = time.monotonic()
    args = [
        sys.executable,
        "-m",
        "rjobs.worker.supervisor",
        "--data-dir",
        str(data_dir),
        "--idle-timeout-s",
        str(config.idle_timeout_s),
        "--detach-grace-s",
        str(config.detach_grace_s),
    ]
    if config.database_url:
        args += ["--database-url", config.database_url]
    for root in config.data_roots:
        args += ["--data-root", str(root)]
    with open(data_dir / LOG_NAME, "ab") as log:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # not killed with the terminal or the client's process group
            close_fds=True,
            cwd=data_dir,  # never the client's directory: its modules would shadow the stdlib
        )
    # reap it when it exits, so a long-lived client collects no zombies
    threading.Thread(target=proc.wait, name="rjobs-reap-supervisor", daemon=True).start()
    logger.info("supervisor.started", extra={"data_dir": str(data_dir)})


def read_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / LOCK_NAME).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def run_supervisor(config: Config) -> str:
    """Serve the data directory until idle; returns why it stopped."""
    from rjobs.worker.worker import Worker, WorkerSettings

    lock_path = config.data_dir / LOCK_NAME
    handle = _try_lock(lock_path)
    if handle is None:
        return "another supervisor serves this data directory"
    store = Store(config.store_url, artifact_dir=config.artifact_dir)
    try:
        while True:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            settings = WorkerSettings(
                reasoners=None,
                data_dir=config.data_dir,
                data_roots=config.data_roots,
                idle_exit_s=config.idle_timeout_s,
                detach_grace_s=config.detach_grace_s,
            )
            worker = Worker(store, settings)
            worker.install_signal_handlers()
            reason = worker.run()
            if reason != "idle":
                return reason
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
            if store.count_active() == 0:
                return "idle"
            # a job arrived while we were leaving: serve it, unless a new supervisor already does
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                continue
            return "handed over to a new supervisor"
    finally:
        handle.close()
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rjobs-supervisor")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--idle-timeout-s", type=float, default=300.0)
    parser.add_argument("--detach-grace-s", type=float, default=30.0)
    parser.add_argument("--database-url")
    parser.add_argument("--data-root", action="append", default=[], type=Path)
    args = parser.parse_args(argv)
    configure_logging()
    config = Config(
        backend="embedded",
        data_dir=args.data_dir,
        database_url=args.database_url,
        data_roots=tuple(p.resolve() for p in args.data_root),
        idle_timeout_s=args.idle_timeout_s,
        detach_grace_s=args.detach_grace_s,
    )
    reason = run_supervisor(config)
    logger.info("supervisor.exited", extra={"reason": reason})
    return 0


if __name__ == "__main__":
    sys.exit(main())

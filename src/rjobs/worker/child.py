"""The job process: a warm child of a worker that runs one job at a time.

Messages to the parent, over a pipe, are tuples:
``("event", stream, ts, type, fields)``, ``("artifact", info)``, ``("problem", info)``,
``("done", result)``, ``("failed", message, problems)``, ``("crashed", traceback)``.
The parent sends ``("run", JobSpec)``. Interrupts (cancel, timeout) arrive on a shared event.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from rjobs.engines.base import (
    ArtifactInfo,
    EngineFailure,
    ProblemInfo,
    Severity,
    Stream,
    read_artifact_file,
    store_artifact_file,
)

logger = logging.getLogger(__name__)

_POLL_S = 0.02  # how often a job process looks at its interrupt flag

ENGINE_MODULES = {
    "Prescriptive": "rjobs.engines.prescriptive",
    "Logic": "rjobs.engines.logic",
    "Predictive": "rjobs.engines.predictive",
}


class InterruptFlag:
    """A flag shared with one job process, set by the worker to interrupt the running job.

    A plain shared integer, not a multiprocessing Event: setting an Event waits for the threads
    sleeping on it to wake, which never happens in a stopped or dying process, and would hang
    the worker. Here setting never blocks; the job process polls.
    """

    def __init__(self, ctx: BaseContext) -> None:
        self._value = ctx.RawValue(ctypes.c_int, 0)

    def set(self) -> None:
        self._value.value = 1

    def clear(self) -> None:
        self._value.value = 0

    def is_set(self) -> bool:
        return bool(self._value.value)


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    reasoner_type: str
    payload: dict[str, Any]
    artifact_dir: Path
    data_dir: Path
    data_roots: tuple[Path, ...]
    # earlier jobs whose artifacts this job may read (model_from_job), checked by the worker:
    # they exist and belong to the same user
    readable_jobs: frozenset[str] = frozenset()


class ChildContext:
    """The :class:`rjobs.engines.base.EngineContext` of a job process: forwards to the parent."""

    def __init__(self, conn: Connection, spec: JobSpec, interrupt: InterruptFlag) -> None:
        self._conn = conn
        self._spec = spec
        self._interrupt = interrupt
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._fired = False

    @property
    def job_id(self) -> str:
        return self._spec.job_id

    @property
    def data_roots(self) -> Sequence[Path]:
        return self._spec.data_roots

    @property
    def data_dir(self) -> Path:
        return self._spec.data_dir

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    def on_interrupt(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)
            fired = self._fired
        if fired:
            callback()

    def fire_interrupt(self) -> None:
        """Run the interrupt callbacks, once."""
        with self._lock:
            if self._fired:
                return
            self._fired = True
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("job.interrupt_callback_failed", extra={"job_id": self.job_id})

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self._conn.send(message)

    def emit(self, type: str, *, stream: Stream = "progress", **fields: Any) -> None:
        json.dumps(fields, allow_nan=False)  # fail in the engine, where the bad value is
        self._send(("event", stream, datetime.now(UTC), type, fields))

    def write_artifact(self, name: str, data: bytes, content_type: str) -> ArtifactInfo:
        info = store_artifact_file(self._spec.artifact_dir / self.job_id, name, data, content_type)
        self._send(("artifact", info))
        return info

    def read_artifact(self, job_id: str, name: str) -> bytes:
        if job_id not in self._spec.readable_jobs:
            # unknown, someone else's, or not a job id at all (a path): nothing to read
            raise FileNotFoundError(f"no readable job {job_id!r}")
        return read_artifact_file(self._spec.artifact_dir / job_id, name)

    def problem(
        self,
        severity: Severity,
        code: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        statement: int | None = None,
    ) -> None:
        self._send(("problem", ProblemInfo(severity, code, message, line, column, statement)))


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the worker dies, so no job outlives its worker."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def child_main(conn: Connection, interrupt: InterruptFlag, preload: Sequence[str]) -> None:
    """Entry point of a job process: serve jobs until the pipe closes."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides; Ctrl-C goes to it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for reasoner_type in preload:
        module = ENGINE_MODULES.get(reasoner_type)
        if module is not None:
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
    current = _Current()
    watcher = threading.Thread(
        target=_watch_interrupts, args=(interrupt, current), name="rjobs-interrupt", daemon=True
    )
    watcher.start()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != "run":
            continue
        spec: JobSpec = message[1]
        _run_one(conn, spec, interrupt, current)


class _Current:
    """The job this process runs now, for the interrupt watcher."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ctx: ChildContext | None = None


def _watch_interrupts(interrupt: InterruptFlag, current: _Current) -> None:
    """One thread per job process: relay the worker's interrupt to the running job's callbacks.

    The worker sets the shared event to interrupt and clears it before sending the next job.
    """
    while True:
        while not interrupt.is_set():
            time.sleep(_POLL_S)
        with current.lock:
            ctx = current.ctx
        # still set: the interrupt is for the job running now, not one that ended meanwhile
        # (the worker clears the event before it sends the next job)
        if ctx is not None and interrupt.is_set():
            ctx.fire_interrupt()
        while interrupt.is_set():
            time.sleep(_POLL_S)


def _run_one(conn: Connection, spec: JobSpec, interrupt: InterruptFlag, current: _Current) -> None:
    from rjobs.engines import run_job

    ctx = ChildContext(conn, spec, interrupt)
    with current.lock:
        current.ctx = ctx
    if interrupt.is_set():  # interrupted before the watcher saw this job
        ctx.fire_interrupt()
    try:
        result = run_job(spec.reasoner_type, spec.payload, ctx)
        outcome: tuple[Any, ...] = ("done", result)
    except EngineFailure as exc:
        outcome = ("failed", exc.message, exc.problems)
    except BaseException as exc:  # an engine bug must not take the job process down silently
        detail = "".join(traceback.format_exception(exc))
        outcome = ("crashed", f"{type(exc).__name__}: {exc}", detail)
    finally:
        with current.lock:
            current.ctx = None
    try:
        ctx._send(outcome)
    except (OSError, ValueError, TypeError) as exc:
        # the parent is gone, or the result cannot be pickled: report what we can
        with contextlib.suppress(OSError):
            ctx._send(("crashed", f"result could not be sent: {exc}", ""))

"""The worker: claims jobs, runs each in a warm child process, and records how each ended.

Threads of a worker process:

* the main loop claims jobs into free slots, watches running jobs for cancel requests, timeouts
  and vanished clients, and reaps jobs of lost workers;
* a heartbeat thread renews the lease every ``heartbeat_s``;
* one runner thread per running job drives its child: it forwards events, artifacts and problems
  to the store and writes the one terminal state.

A child that does not stop within ``kill_grace_s`` of an interrupt is killed and replaced, so a
hung engine never takes the worker down.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import SQLAlchemyError

from rjobs._models import CLIENT_DISCONNECTED, REASONER_LOST, TIMEOUT_EXCEEDED
from rjobs.engines.base import ArtifactInfo, ProblemInfo
from rjobs.store.store import CANCEL_CHANNEL, QUEUE_CHANNEL, Store
from rjobs.worker.child import InterruptFlag, JobSpec, child_main

logger = logging.getLogger(__name__)

ReasonerKey = tuple[str, str]

_FLUSH_S = 0.05
_FLUSH_EVENTS = 500


@dataclass
class WorkerSettings:
    """How a worker behaves; the defaults suit production, tests shorten them."""

    reasoners: list[ReasonerKey] | None = None  # None: every reasoner in the store (embedded)
    slots: int | None = None  # per reasoner; None: the reasoner's size
    data_dir: Path = Path(".")
    data_roots: tuple[Path, ...] = ()
    heartbeat_s: float = 2.0
    lease_s: float = 10.0
    check_s: float = 0.1
    idle_poll_s: float = 1.0
    kill_grace_s: float = 0.5
    shutdown_grace_s: float = 30.0
    detach_grace_s: float = 30.0
    idle_exit_s: float | None = None
    max_processes: int = 16


class _Executor:
    """A warm child process and its pipe."""

    def __init__(self, ctx: BaseContext, preload: tuple[str, ...]) -> None:
        parent_conn, child_conn = ctx.Pipe()
        self.interrupt = InterruptFlag(ctx)
        self.conn: Connection = parent_conn
        self.process: BaseProcess = ctx.Process(  # type: ignore[attr-defined]
            target=child_main,
            args=(child_conn, self.interrupt, preload),
            name="rjobs-job",
            daemon=True,
        )
        self.process.start()
        child_conn.close()

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


@dataclass
class _Running:
    job_id: str
    key: ReasonerKey
    executor: _Executor
    deadline: float | None
    interrupt: tuple[str, str] | None = None  # (terminal state, reason)
    kill_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Worker:
    """Serve jobs of some reasoners (or of all, for the embedded supervisor) from a store."""

    def __init__(self, store: Store, settings: WorkerSettings) -> None:
        self.store = store
        self.settings = settings
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._idle: list[_Executor] = []
        types = {key[0] for key in settings.reasoners or []} or {"Prescriptive"}
        self._preload = tuple(sorted(types))
        self._mp = mp.get_context("forkserver")
        self._mp.set_forkserver_preload(["rjobs.worker.child", "rjobs.engines"])
        self._wake_channel = f"worker:{self.id}"

    # -- lifecycle ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; running jobs get ``shutdown_grace_s`` to finish."""
        self._stop.set()
        self.store.notifier.wake(self._wake_channel)

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            logger.info("worker.signal", extra={"worker": self.id, "signal": signum})
            self.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def run(self) -> str:
        """Serve until stopped (or idle, if ``idle_exit_s`` is set); returns why it stopped."""
        self.store.upgrade()
        label = ",".join(f"{t}/{n}" for t, n in self.settings.reasoners or []) or "*"
        self.store.register_worker(self.id, label, socket.gethostname())
        logger.info("worker.started", extra={"worker": self.id, "reasoner": label})
        heart = threading.Thread(target=self._heartbeat_loop, name="rjobs-heartbeat", daemon=True)
        heart.start()
        sub = self.store.notifier.subscribe([QUEUE_CHANNEL, CANCEL_CHANNEL, self._wake_channel])
        # one warm job process before the first claim, so a job's run time excludes start-up
        self._idle.append(_Executor(self._mp, self._preload))
        reason = "stopped"
        last_reap = 0.0
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                try:
                    if now - last_reap >= self.settings.heartbeat_s:
                        # renew our own lease first: after a pause (a suspended laptop) we must
                        # not find ourselves silent and reap our own jobs
                        self.store.heartbeat(self.id)
                        self.store.reap(self.settings.lease_s, exclude=self.id)
                        last_reap = now
                    self._check_running()
                    self._claim()
                except SQLAlchemyError:
                    # the database is away: keep the jobs we run, retry after a pause
                    logger.warning("worker.store_unavailable", extra={"worker": self.id})
                    self._stop.wait(0.5)
                    continue
                if self._running:
                    idle_since = now
                elif (
                    self.settings.idle_exit_s is not None
                    and now - idle_since >= self.settings.idle_exit_s
                ):
                    if not self._safely(self.store.count_active):
                        reason = "idle"
                        break
                    idle_since = now
                # running jobs are watched every check_s; an idle worker sleeps until a job is
                # queued (a notification), polling only as a fallback
                sub.wait(self.settings.check_s if self._running else self.settings.idle_poll_s)
        finally:
            sub.close()
            self._shutdown()
            self._safely(self.store.remove_worker, self.id)
            logger.info("worker.exited", extra={"worker": self.id, "reason": reason})
        return reason

    def _safely(self, fn: Any, *args: Any) -> Any:
        """Run a store call; a database hiccup is logged and retried on the next loop."""
        try:
            return fn(*args)
        except SQLAlchemyError:
            logger.warning("worker.store_error", extra={"worker": self.id}, exc_info=True)
            return None

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_s):
            alive = self._safely(self.store.heartbeat, self.id)
            if alive is False:
                # the reaper declared us lost (a long stall): our jobs are aborted, and our late
                # results will be refused by the store; come back as a fresh registration
                logger.error("worker.lease_lost", extra={"worker": self.id})
                self._safely(self.store.register_worker, self.id, "*", socket.gethostname())

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self.settings.shutdown_grace_s
        while self._running and time.monotonic() < deadline:
            self._check_running()
            time.sleep(0.05)
        for run in list(self._running.values()):
            self._interrupt(run, "ABORTED", "worker shutdown")
        for run in list(self._running.values()):
            run.done.wait(self.settings.kill_grace_s + 5)
        for executor in self._idle:
            executor.kill()
        self._idle.clear()

    # -- claiming -------------------------------------------------------------------------------

    def _capacity(self) -> dict[ReasonerKey, int]:
        """Free slots of each served reasoner that has queued jobs."""
        queued: set[ReasonerKey] = self._safely(self.store.queued_reasoners) or set()
        if not queued:
            return {}
        if self.settings.reasoners is not None:
            keys: Iterable[tuple[ReasonerKey, int]] = (
                (key, self.settings.slots or 1) for key in self.settings.reasoners if key in queued
            )
        else:
            sizes = {
                (str(r["reasoner_type"]), str(r["name"])): int(r["size"])
                for r in self._safely(self.store.list_reasoners) or []
            }
            keys = ((key, self.settings.slots or sizes.get(key, 1)) for key in queued)
        busy: dict[ReasonerKey, int] = {}
        for run in self._running.values():
            busy[run.key] = busy.get(run.key, 0) + 1
        room = self.settings.max_processes - len(self._running)
        wants: dict[ReasonerKey, int] = {}
        for key, size in keys:
            n = min(size - busy.get(key, 0), room)
            if n > 0:
                wants[key] = n
                room -= n
        return wants

    def _claim(self) -> None:
        if self._stop.is_set():
            return
        wants = self._capacity()
        if not wants:
            return
        rows = self._safely(self.store.claim, self.id, wants) or []
        for row in rows:
            self._start(row)

    def _executor(self, reasoner_type: str) -> _Executor:
        while True:
            with self._lock:
                if not self._idle:
                    break
                executor = self._idle.pop()
            if executor.alive():
                return executor
            executor.kill()
        preload = tuple(sorted({*self._preload, reasoner_type}))
        return _Executor(self._mp, preload)

    def _start(self, row: RowMapping) -> None:
        job_id = str(row["id"])
        key = (str(row["reasoner_type"]), str(row["reasoner_name"]))
        timeout_ms = row["timeout_ms"]
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        try:
            payload = json.loads(row["payload"])
            executor = self._executor(key[0])
        except Exception as exc:
            logger.exception("job.start_failed", extra={"job_id": job_id})
            self._safely(self._finish, job_id, "FAILED", None, f"could not start: {exc}")
            return
        run = _Running(job_id, key, executor, deadline)
        self._running[job_id] = run
        spec = JobSpec(
            job_id=job_id,
            reasoner_type=key[0],
            payload=payload,
            artifact_dir=self.store.artifact_dir,
            data_dir=self.settings.data_dir,
            data_roots=self.settings.data_roots,
            readable_jobs=self._readable_jobs(row, payload),
        )
        logger.info("job.claimed", extra={"job_id": job_id, "reasoner": f"{key[0]}/{key[1]}"})
        thread = threading.Thread(
            target=self._drive, args=(run, spec), name=f"rjobs-run-{job_id}", daemon=True
        )
        thread.start()

    def _readable_jobs(self, row: RowMapping, payload: Any) -> frozenset[str]:
        """The earlier job a payload names (``model_from_job``), if it is the same user's."""
        ref = payload.get("model_from_job") if isinstance(payload, dict) else None
        if not isinstance(ref, str):
            return frozenset()
        earlier = self._safely(self.store.get_job, ref) if 0 < len(ref) <= 200 else None
        if earlier is None or earlier["created_by"] != row["created_by"]:
            return frozenset()
        return frozenset({ref})

    # -- watching running jobs ------------------------------------------------------------------

    def _interrupt(
        self, run: _Running, state: str, reason: str, *, grace_s: float | None = None
    ) -> None:
        with self._lock:
            if run.interrupt is not None:
                return
            run.interrupt = (state, reason)
            grace = self.settings.kill_grace_s if grace_s is None else grace_s
            run.kill_at = time.monotonic() + grace
        run.executor.interrupt.set()
        logger.info("job.interrupting", extra={"job_id": run.job_id, "reason": reason})

    def _check_running(self) -> None:
        for job_id, run in list(self._running.items()):
            if run.done.is_set():
                del self._running[job_id]
        if not self._running:
            return
        now = time.monotonic()
        for run in self._running.values():
            if run.deadline is not None and now >= run.deadline:
                self._interrupt(run, "ABORTED", TIMEOUT_EXCEEDED)
        checks = self.store.running_checks(self.id)
        wall_now = self.store.now()
        grace = timedelta(seconds=self.settings.detach_grace_s)
        still_ours = {check.id for check in checks}
        for run in self._running.values():
            if run.job_id not in still_ours and not run.done.is_set():
                # reaped (our lease lapsed) or ended by someone else: its result would be
                # refused, so stop the work at once rather than let it commit anything more
                self._interrupt(run, "ABORTED", REASONER_LOST, grace_s=0.0)
        for check in checks:
            watched = self._running.get(check.id)
            if watched is None:
                continue
            if check.cancel_requested_by is not None:
                self._interrupt(watched, "CANCELED", f"canceled by {check.cancel_requested_by}")
            elif check.abort_detached and _older(check.last_polled_at, wall_now, grace):
                self._interrupt(watched, "ABORTED", CLIENT_DISCONNECTED)

    # -- one job --------------------------------------------------------------------------------

    def _drive(self, run: _Running, spec: JobSpec) -> None:
        """Runner thread: send the job, relay its messages, write its terminal state."""
        pending: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = {"progress": [], "log": []}
        last_flush = time.monotonic()
        outcome: tuple[Any, ...] = ("died", None)

        def flush() -> None:
            for stream, events in pending.items():
                if events:
                    self._safely(self.store.append_events, run.job_id, stream, list(events))
                    events.clear()

        try:
            run.executor.interrupt.clear()
            run.executor.conn.send(("run", spec))
            while True:
                if run.kill_at is not None and time.monotonic() >= run.kill_at:
                    outcome = ("killed", None)
                    break
                if not run.executor.conn.poll(_FLUSH_S):
                    if not run.executor.alive():
                        outcome = ("died", _exit_code(run.executor))
                        break
                    flush()
                    last_flush = time.monotonic()
                    continue
                message = run.executor.conn.recv()
                kind = message[0]
                if kind == "event":
                    _, stream, ts, type_, fields = message
                    pending[stream].append((ts, type_, fields))
                    if (
                        sum(len(v) for v in pending.values()) >= _FLUSH_EVENTS
                        or time.monotonic() - last_flush >= _FLUSH_S
                    ):
                        flush()
                        last_flush = time.monotonic()
                elif kind == "artifact":
                    info: ArtifactInfo = message[1]
                    self._safely(self.store.add_artifact, run.job_id, info)
                elif kind == "problem":
                    problem: ProblemInfo = message[1]
                    self._safely(self.store.add_problems, run.job_id, [problem])
                else:
                    outcome = message
                    break
        except (EOFError, OSError):
            outcome = ("died", _exit_code(run.executor))
        except Exception as exc:  # e.g. a payload that cannot be pickled: the job fails, loudly
            logger.exception("job.runner_failed", extra={"job_id": run.job_id})
            outcome = ("crashed", f"{type(exc).__name__}: {exc}", "")
            run.executor.kill()
        flush()
        try:
            self._conclude(run, outcome)
        finally:
            if outcome[0] in ("done", "failed", "crashed") and run.executor.alive():
                run.executor.interrupt.clear()
                with self._lock:
                    self._idle.append(run.executor)
            else:
                run.executor.kill()
            run.done.set()
            self.store.notifier.wake(self._wake_channel)  # a slot is free: claim now

    def _conclude(self, run: _Running, outcome: tuple[Any, ...]) -> None:
        kind = outcome[0]
        result: dict[str, Any] | None = outcome[1] if kind == "done" else None
        if run.interrupt is not None and not (kind == "done" and not _was_interrupted(result)):
            state, reason = run.interrupt
        elif kind == "done":
            state, reason = "COMPLETED", None
        elif kind == "failed":
            state, reason = "FAILED", str(outcome[1])
            self._safely(self.store.add_problems, run.job_id, outcome[2])
        elif kind == "crashed":
            state, reason = "FAILED", f"engine error: {outcome[1]}"
            self._safely(
                self.store.add_problems,
                run.job_id,
                [ProblemInfo("error", "engine_error", str(outcome[1]))],
            )
            logger.error("job.engine_error", extra={"job_id": run.job_id, "detail": outcome[2]})
        else:
            code = outcome[1]
            state, reason = "ABORTED", f"job process died unexpectedly (exit code {code})"
        self._finish(run.job_id, state, result, reason)

    def _finish(
        self, job_id: str, state: str, result: dict[str, Any] | None, reason: str | None
    ) -> None:
        # the terminal write must land: retry through store outages for as long as our lease
        # could still be valid; after that the reaper will abort the job anyway
        give_up = time.monotonic() + self.settings.lease_s
        while True:
            try:
                won = self._finish_once(job_id, state, result, reason)
                break
            except SQLAlchemyError:
                if time.monotonic() >= give_up:
                    logger.exception("job.finish_failed", extra={"job_id": job_id})
                    return
                time.sleep(0.2)
        logger.info(
            "job.finished",
            extra={"job_id": job_id, "state": state, "reason": reason, "recorded": won},
        )

    def _finish_once(
        self, job_id: str, state: str, result: dict[str, Any] | None, reason: str | None
    ) -> bool:
        try:
            return self.store.finish(
                job_id, state, result=result, abort_reason=reason, worker_id=self.id
            )
        except (TypeError, ValueError) as exc:
            # a result that cannot be stored as JSON fails the job rather than losing it
            return self.store.finish(
                job_id,
                "FAILED",
                abort_reason=f"result could not be stored: {exc}",
                worker_id=self.id,
            )


def _was_interrupted(result: dict[str, Any] | None) -> bool:
    """Whether an engine's result says it stopped early (else its work was done and stands)."""
    if not isinstance(result, dict):
        return True
    return result.get("interrupted") is True or result.get("status") == "interrupted"


def _exit_code(executor: _Executor) -> int | None:
    executor.process.join(timeout=0.5)
    return executor.process.exitcode


def _older(moment: datetime | None, now: datetime, grace: timedelta) -> bool:
    return moment is not None and now - moment > grace

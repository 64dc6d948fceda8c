"""``/metrics``: Prometheus text exposition of what the store has seen since this server started.

Jobs are created through any server or straight through the store, and they finish in workers,
so the counters are not counted where things happen: each scrape reads the jobs created or
finished since the previous scrape from the store and adds them to this process's counters and
histograms. Counters therefore start at zero when the server starts, as Prometheus expects of a
process, and every server of a deployment reports the same totals (aggregate with ``max``, not
``sum``). A job is counted once even when its row commits after a later one: the last
``_GRACE`` of each scan is read again and ids already counted are skipped.

Metrics:

* ``rjobs_jobs_created_total{type}`` and ``rjobs_jobs_finished_total{type,state}`` (counters);
* ``rjobs_job_queue_wait_seconds{type}`` (created to started) and ``rjobs_job_run_seconds{type}``
  (started to finished) histograms, observed when a job finishes;
* ``rjobs_jobs_active{type,state}`` and ``rjobs_workers_online`` (gauges read at each scrape).
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa

from rjobs._models import ACTIVE_STATES, REASONER_TYPES, TERMINAL_STATES
from rjobs.store import schema as t
from rjobs.store.store import Store

_GRACE = timedelta(seconds=60)
WORKER_FRESH = timedelta(seconds=10)
"""A worker counts as online when it heartbeated within this (the default lease)."""

QUEUE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


class _Seen:
    """Ids counted in the recent window of one timestamp column, and where the window starts."""

    def __init__(self, origin: datetime) -> None:
        self.origin = origin
        self.watermark = origin
        self.ids: dict[str, datetime] = {}

    @property
    def scan_from(self) -> datetime:
        return self.watermark - _GRACE

    def fresh(self, job_id: str, at: datetime) -> bool:
        """True the first time a job is seen at or after the origin."""
        if at < self.origin or job_id in self.ids:
            return False
        self.ids[job_id] = at
        return True

    def advance(self) -> None:
        if self.ids:
            self.watermark = max(self.watermark, max(self.ids.values()))
        cutoff = self.watermark - _GRACE
        self.ids = {k: v for k, v in self.ids.items() if v >= cutoff}


class Metrics:
    """The counters of one server process; :meth:`render` is blocking (run it in a thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._created_seen: _Seen | None = None
        self._finished_seen: _Seen | None = None
        self.created: dict[str, int] = defaultdict(int)
        self.finished: dict[tuple[str, str], int] = defaultdict(int)
        self.queue_wait: dict[str, Histogram] = {}
        self.run_time: dict[str, Histogram] = {}

    def start(self) -> None:
        """Count from now on."""
        now = self.store.now()
        self._created_seen = _Seen(now)
        self._finished_seen = _Seen(now)

    def render(self) -> str:
        with self._lock:
            if self._created_seen is None:
                self.start()
            self._collect()
            active, workers = self._gauges()
            return self._format(active, workers)

    def _collect(self) -> None:
        assert self._created_seen is not None and self._finished_seen is not None
        c = t.jobs.c
        created_q = sa.select(c.id, c.reasoner_type, c.created_on).where(
            c.created_on >= self._created_seen.scan_from
        )
        finished_q = sa.select(
            c.id, c.reasoner_type, c.state, c.created_on, c.started_at, c.finished_at
        ).where(
            c.finished_at >= self._finished_seen.scan_from,
            c.state.in_(sorted(TERMINAL_STATES)),
        )
        with self.store.engine.connect() as conn:
            created = conn.execute(created_q).all()
            finished = conn.execute(finished_q).all()

        for new in created:
            if self._created_seen.fresh(new.id, new.created_on):
                self.created[new.reasoner_type] += 1
        self._created_seen.advance()

        for row in finished:
            if not self._finished_seen.fresh(row.id, row.finished_at):
                continue
            self.finished[(row.reasoner_type, row.state)] += 1
            if row.started_at is not None:
                wait = (row.started_at - row.created_on).total_seconds()
                run = (row.finished_at - row.started_at).total_seconds()
                self.queue_wait.setdefault(row.reasoner_type, Histogram(QUEUE_BUCKETS)).observe(
                    max(0.0, wait)
                )
                self.run_time.setdefault(row.reasoner_type, Histogram(RUN_BUCKETS)).observe(
                    max(0.0, run)
                )
        self._finished_seen.advance()

    def _gauges(self) -> tuple[dict[tuple[str, str], int], int]:
        c = t.jobs.c
        active_q = (
            sa.select(c.reasoner_type, c.state, sa.func.count())
            .where(c.state.in_(sorted(ACTIVE_STATES)))
            .group_by(c.reasoner_type, c.state)
        )
        fresh = self.store.now() - WORKER_FRESH
        workers_q = (
            sa.select(sa.func.count())
            .select_from(t.workers)
            .where(t.workers.c.heartbeat_at >= fresh)
        )
        with self.store.engine.connect() as conn:
            active = {(str(r[0]), str(r[1])): int(r[2]) for r in conn.execute(active_q)}
            workers = int(conn.execute(workers_q).scalar_one())
        return active, workers

    def _format(self, active: dict[tuple[str, str], int], workers: int) -> str:
        lines: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")

        head("rjobs_jobs_created_total", "counter", "Jobs created since this server started.")
        for label in REASONER_TYPES:
            lines.append(f'rjobs_jobs_created_total{{type="{label}"}} {self.created[label]}')
        head("rjobs_jobs_finished_total", "counter", "Jobs that reached a terminal state.")
        for label in REASONER_TYPES:
            for state in sorted(TERMINAL_STATES):
                value = self.finished[(label, state)]
                lines.append(f'rjobs_jobs_finished_total{{type="{label}",state="{state}"}} {value}')
        for name, text, hists in (
            ("rjobs_job_queue_wait_seconds", "Time from created to started.", self.queue_wait),
            ("rjobs_job_run_seconds", "Time from started to finished.", self.run_time),
        ):
            head(name, "histogram", text)
            for label in REASONER_TYPES:
                hist = hists.get(label) or Histogram(
                    QUEUE_BUCKETS if hists is self.queue_wait else RUN_BUCKETS
                )
                for bound, count in zip(hist.buckets, hist.counts, strict=True):
                    lines.append(f'{name}_bucket{{type="{label}",le="{_num(bound)}"}} {count}')
                lines.append(f'{name}_bucket{{type="{label}",le="+Inf"}} {hist.total}')
                lines.append(f'{name}_sum{{type="{label}"}} {_num(hist.sum)}')
                lines.append(f'{name}_count{{type="{label}"}} {hist.total}')
        head("rjobs_jobs_active", "gauge", "Jobs now created, pending or running.")
        for label in REASONER_TYPES:
            for state in ("CREATED", "PENDING", "RUNNING"):
                value = active.get((label, state), 0)
                lines.append(f'rjobs_jobs_active{{type="{label}",state="{state}"}} {value}')
        head("rjobs_workers_online", "gauge", "Workers that heartbeated within the lease.")
        lines.append(f"rjobs_workers_online {workers}")
        return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else f"{value:g}"

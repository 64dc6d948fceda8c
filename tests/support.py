"""Paths and helpers shared by the tests."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import signal
import threading
import time
from pathlib import Path

from rjobs.store.store import Store
from rjobs.worker.supervisor import read_pid
from rjobs.worker.worker import Worker, WorkerSettings

DATA = Path(__file__).parent / "data"
INSTANCES = DATA / "instances"
TPCH = DATA / "tpch-sf0.01"
REPO = Path(__file__).parents[1]


def kill_supervisor(data_dir: Path) -> None:
    pid = read_pid(data_dir)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def read_csv(text: str) -> list[list[str]]:
    # A one-column row holding NULL is an empty line, which the csv module reads as no fields.
    return [row or [""] for row in csv.reader(io.StringIO(text))]


def same_cell(got: str, want: str) -> bool:
    """CSV cells are equal, or numerically equal within a tight tolerance."""
    if got == want:
        return True
    try:
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9)
    except ValueError:
        return False


def assert_matches_answer(got_csv: str, number: int) -> None:
    """A TPC-H result (CSV with header) equals the shipped answer, column names and order kept."""
    got = read_csv(got_csv)
    want = read_csv((TPCH / "answers" / f"q{number:02d}.csv").read_text())
    assert got[0] == want[0]
    assert len(got) == len(want), f"q{number:02d}: {len(got) - 1} rows, expected {len(want) - 1}"
    for row, (got_row, want_row) in enumerate(zip(got[1:], want[1:], strict=True), start=1):
        for name, g, w in zip(want[0], got_row, want_row, strict=True):
            assert same_cell(g, w), f"q{number:02d} row {row} column {name}: {g!r} != {w!r}"


class WorkerThread:
    """A real worker (with real job processes) run by a thread of the test process."""

    def __init__(self, store: Store, settings: WorkerSettings) -> None:
        self.worker = Worker(store, settings)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(timeout=30)

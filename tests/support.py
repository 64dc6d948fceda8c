"""Paths and helpers shared by the tests."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from rjobs.worker.supervisor import read_pid

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

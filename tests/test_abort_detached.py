"""create_ready marks a Logic transaction abort-detached: a vanished client aborts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rjobs
from support import kill_supervisor

CLIENT = """
import rjobs
with rjobs.connect_sync() as client:
    client.jobs.create_ready("Logic", "main", {"probe": {"sleep_s": 60}}, timeout_s=120)
"""


def test_killed_waiting_client_aborts_its_transaction(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    env = dict(os.environ, RJOBS_DATA_DIR=str(data_dir), RJOBS_DETACH_GRACE_S="1")
    proc = subprocess.Popen([sys.executable, "-c", CLIENT], env=env)
    config = rjobs.Config(data_dir=data_dir, detach_grace_s=1)
    try:
        with rjobs.connect_sync(config=config) as client:
            deadline = time.monotonic() + 30
            while not client.jobs.list("Logic", state="RUNNING"):
                assert time.monotonic() < deadline, "transaction never started"
                assert proc.poll() is None
                time.sleep(0.05)
            job_id = client.jobs.list("Logic")[0].id
            time.sleep(2)  # longer than the grace, but the client keeps polling
            assert client.jobs.get("Logic", job_id).state == "RUNNING"  # type: ignore[union-attr]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with pytest.raises(rjobs.JobClientDisconnectedError, match=job_id):
                client.jobs.wait("Logic", job_id, timeout_s=30)
            job = client.jobs.get("Logic", job_id)
            assert job is not None
            assert job.state == "ABORTED" and job.abort_reason == "client disconnected"
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_supervisor(data_dir)


def test_plain_create_is_not_abort_detached(tmp_path: Path) -> None:
    config = rjobs.Config(data_dir=tmp_path / "d", detach_grace_s=0.5)
    try:
        with rjobs.connect_sync(config=config) as client:
            op = client.jobs.create("Logic", "main", {"probe": {"sleep_s": 2}})
            time.sleep(2.5)  # nobody polls meanwhile
            assert op.wait(timeout_s=30).state == "COMPLETED"
            # create_ready on other types is not abort-detached either
            job = client.jobs.create_ready("Prescriptive", "p", {"probe": {"sleep_s": 0.2}})
            assert job.state == "COMPLETED"
    finally:
        kill_supervisor(config.data_dir)

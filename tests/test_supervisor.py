"""The embedded backend's local supervisor: one per data directory, outliving its clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import rjobs
from rjobs.worker.supervisor import ensure_supervisor, read_pid, supervisor_running
from support import REPO, kill_supervisor


def _supervisor_pids(data_dir: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"rjobs.worker.supervisor" in cmd and str(data_dir).encode() in cmd:
            pids.append(int(entry.name))
    return pids


def test_concurrent_starts_leave_one_supervisor(tmp_path: Path) -> None:
    config = rjobs.Config(data_dir=tmp_path / "d", idle_timeout_s=30)
    try:
        threads = [threading.Thread(target=ensure_supervisor, args=(config,)) for _ in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        deadline = time.monotonic() + 20
        while not supervisor_running(config.data_dir):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.5)  # let the losers find the lock taken and exit
        assert len(_supervisor_pids(config.data_dir)) == 1
        assert read_pid(config.data_dir) == _supervisor_pids(config.data_dir)[0]
    finally:
        kill_supervisor(config.data_dir)


def test_job_created_by_a_cli_call_outlives_it_and_the_supervisor_exits_when_idle(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "d"
    env = dict(os.environ, RJOBS_DATA_DIR=str(data_dir), RJOBS_IDLE_TIMEOUT_S="2")
    payload = json.dumps({"probe": {"sleep_s": 2, "events": 2}})
    try:
        created = subprocess.run(
            [sys.executable, "-m", "rjobs.cli", "jobs", "create", "Prescriptive", "default",
             "--payload", payload, "--json"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        job_id = json.loads(created.stdout)["id"]
        # the CLI process has exited; the job still runs to completion
        config = rjobs.Config(data_dir=data_dir, idle_timeout_s=2)
        with rjobs.connect_sync(config=config) as client:
            job = client.jobs.wait("Prescriptive", job_id, timeout_s=60)
        assert job.state == "COMPLETED"
        pid = read_pid(data_dir)
        assert pid is not None
        deadline = time.monotonic() + 20
        while _supervisor_pids(data_dir):
            assert time.monotonic() < deadline, "supervisor did not exit when idle"
            time.sleep(0.2)
        assert not supervisor_running(data_dir)
        log = (data_dir / "supervisor.log").read_text()
        assert "supervisor.exited reason=idle" in log
    finally:
        kill_supervisor(data_dir)


def test_a_new_supervisor_starts_after_an_idle_exit(tmp_path: Path) -> None:
    config = rjobs.Config(data_dir=tmp_path / "d", idle_timeout_s=1)
    try:
        with rjobs.connect_sync(config=config) as client:
            first = client.jobs.create("Prescriptive", "default", {"probe": {}})
            assert first.wait(timeout_s=60).state == "COMPLETED"
            deadline = time.monotonic() + 20
            while supervisor_running(config.data_dir):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            second = client.jobs.create("Prescriptive", "default", {"probe": {}})
            assert second.wait(timeout_s=60).state == "COMPLETED"
    finally:
        kill_supervisor(config.data_dir)


def test_a_killed_supervisor_loses_no_job(tmp_path: Path) -> None:
    """A supervisor killed mid-job: the next one reaps the job; it ends ABORTED, not stuck."""
    import signal

    config = rjobs.Config(data_dir=tmp_path / "d", idle_timeout_s=30)
    try:
        with rjobs.connect_sync(config=config) as client:
            op = client.jobs.create("Prescriptive", "default", {"probe": {"sleep_s": 60}})
            deadline = time.monotonic() + 30
            while client.jobs.get("Prescriptive", op.id).state != "RUNNING":  # type: ignore[union-attr]
                assert time.monotonic() < deadline
                time.sleep(0.05)
            pid = read_pid(config.data_dir)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            # a new job starts a new supervisor, whose reaper finds the lost one's job
            client.jobs.create("Prescriptive", "default", {"probe": {}})
            job = op.wait(timeout_s=60)
            assert job.state == "ABORTED" and job.abort_reason == "reasoner lost"
            assert client.jobs.list(only_active=True) == []
    finally:
        kill_supervisor(config.data_dir)

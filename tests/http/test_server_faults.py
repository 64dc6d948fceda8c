"""An rjobs serve killed with SIGKILL during creates: every acknowledged job exists afterwards."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from http_support import ServerProcess

import rjobs
from rjobs.store.store import ListQuery, Store


def test_killed_server_keeps_every_acknowledged_create(pg_url: str, tmp_path: Path) -> None:
    store = Store(pg_url, artifact_dir=tmp_path / "a")
    store.upgrade()
    store.create_reasoner("Prescriptive", "s", size=1, settings={}, created_by="admin")
    token = store.create_token("alice")
    server = ServerProcess(pg_url, tmp_path / "data", tmp_path / "server.log").start()
    acknowledged: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def create_forever(k: int) -> None:
        config = rjobs.Config(backend="http", base_url=server.url, token=token, request_timeout_s=5)
        with rjobs.connect_sync(config=config) as client:
            i = 0
            while not stop.is_set():
                i += 1
                payload = {"probe": {}, "writer": k, "i": i}
                try:
                    acknowledged.append(client.jobs.create("Prescriptive", "s", payload).id)
                except rjobs.JobError as exc:
                    errors.append(type(exc).__name__)
                    time.sleep(0.05)

    threads = [threading.Thread(target=create_forever, args=(k,)) for k in range(3)]
    try:
        for th in threads:
            th.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 30:
            assert time.monotonic() < deadline, "creates never succeeded"
            time.sleep(0.02)
        assert server.proc is not None
        server.proc.kill()  # SIGKILL in the middle of creates
        server.proc.wait()
        time.sleep(0.5)
        stop.set()
        for th in threads:
            th.join(timeout=60)
    finally:
        stop.set()
        server.stop()

    assert errors, "the kill was not noticed by any client"
    rows = store.list_jobs(ListQuery(reasoner_types=("Prescriptive",)))
    stored = {str(r["id"]): r for r in rows}
    assert set(acknowledged) <= set(stored)  # nothing acknowledged was lost
    for row in rows:  # and nothing stored is half-made
        payload = json.loads(row["payload"])
        assert payload["probe"] == {} and row["state"] == "PENDING"
        assert row["created_by"] == "alice" and row["created_on"] is not None
    # a restarted server serves them all
    again = ServerProcess(pg_url, tmp_path / "data", tmp_path / "server2.log").start()
    try:
        config = rjobs.Config(backend="http", base_url=again.url, token=token)
        with rjobs.connect_sync(config=config) as client:
            listed = {j.id for j in client.jobs.list("Prescriptive", limit=None)}
        assert set(acknowledged) <= listed
    finally:
        again.stop()
        store.close()

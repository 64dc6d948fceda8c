"""Store rules checked directly: exclusive claims, gc, ids."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import rjobs
from rjobs._gateway import CreateRequest
from rjobs._ids import new_job_id
from rjobs.engines.base import ArtifactInfo
from rjobs.store.store import Store

T = "Prescriptive"


def _queue(client: rjobs.ClientSync, n: int, name: str = "s") -> list[str]:
    payload = {"probe": {}}
    gateway = client.jobs._gateway
    return [
        gateway.create_job(CreateRequest(T, name, payload, json.dumps(payload))).id  # type: ignore[attr-defined]
        for _ in range(n)
    ]


def test_claims_are_exclusive_under_concurrency(sql_client: rjobs.ClientSync, store: Store) -> None:
    sql_client.reasoners.create(T, "s", size=1)
    ids = _queue(sql_client, 200)
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(k: int) -> None:
        worker = f"w{k}"
        store.register_worker(worker, f"{T}/s", "here")
        while True:
            rows = store.claim(worker, {(T, "s"): 3})
            if not rows:
                return
            with lock:
                claimed.extend(str(r["id"]) for r in rows)

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(claimed) == sorted(ids)  # every job claimed exactly once


def test_gc_removes_old_finished_jobs_with_their_rows_and_files(
    sql_client: rjobs.ClientSync, store: Store
) -> None:
    sql_client.reasoners.create(T, "s", size=1)
    old, active = _queue(sql_client, 2)
    store.append_events(old, "progress", [(store.now(), "x", {})])
    directory = store.artifact_dir / old
    directory.mkdir(parents=True)
    (directory / "a.txt").write_text("x")
    store.add_artifact(old, ArtifactInfo("a.txt", "text/plain", 1, "0" * 64))
    sql_client.jobs.cancel(T, old)
    assert store.gc(timedelta(days=1)) == 0  # too recent
    assert store.gc(timedelta(seconds=0)) == 1
    assert sql_client.jobs.get(T, old) is None
    assert not directory.exists()
    assert sql_client.jobs.get(T, active) is not None  # active jobs are never collected


def test_job_ids_are_url_safe_unique_and_time_ordered() -> None:
    ids = [new_job_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 26 and i.isalnum() and i.islower() for i in ids)

"""Event paging: every event exactly once, in order, even while the job is still writing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import rjobs
from rjobs._gateway import CreateRequest
from rjobs.store.store import Store

T = "Prescriptive"


def _read_all(client: rjobs.ClientSync, job_id: str, stream: str = "progress") -> list[dict]:  # type: ignore[type-arg]
    events: list[dict] = []  # type: ignore[type-arg]
    token = ""
    pages = 0
    while True:
        page = client.jobs.get_events(T, job_id, token, stream_name=stream)
        pages += 1
        events.extend(page.events)
        if page.continuation_token is None:
            job = client.jobs.get(T, job_id)
            assert job is not None and job.is_terminal, "stream complete before the job ended"
            return events
        token = page.continuation_token
        assert pages < 100_000


def test_paging_while_the_job_writes(sql_client: rjobs.ClientSync, start_worker) -> None:  # type: ignore[no-untyped-def]
    sql_client.reasoners.create(T, "ev", size=1)
    start_worker(reasoners=[(T, "ev")])
    op = sql_client.jobs.create(T, "ev", {"probe": {"sleep_s": 2.0, "events": 3000}})
    events = _read_all(sql_client, op.id)
    assert [e["seq"] for e in events] == list(range(1, 3001))
    assert [e["n"] for e in events] == list(range(1, 3001))
    # reading again from the start gives the same events
    assert _read_all(sql_client, op.id) == events


def test_concurrent_writers_keep_sequences_dense(
    sql_client: rjobs.ClientSync, store: Store
) -> None:
    import json

    sql_client.reasoners.create(T, "w", size=1)
    payload = {"probe": {}}
    job = sql_client.jobs._gateway.create_job(  # queued, never claimed: no worker here
        CreateRequest(T, "w", payload, json.dumps(payload))
    )
    per_writer, writers = 200, 4
    seen: list[dict] = []  # type: ignore[type-arg]
    done = threading.Event()

    def write(k: int) -> None:
        for i in range(per_writer // 10):
            batch = [(datetime.now(UTC), "w", {"writer": k, "i": i, "j": j}) for j in range(10)]
            store.append_events(job.id, "progress", batch)

    def read() -> None:
        token = ""
        while True:
            page = sql_client.jobs.get_events(T, job.id, token)
            seen.extend(page.events)
            assert page.continuation_token is not None
            token = page.continuation_token
            if done.is_set() and not page.events:
                return

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    done.set()
    reader.join(timeout=30)
    assert [e["seq"] for e in seen] == list(range(1, per_writer * writers + 1))
    for k in range(writers):
        mine = [(e["i"], e["j"]) for e in seen if e["writer"] == k]
        assert mine == sorted(mine)  # each writer's events stay in its order


def test_events_after_terminal_are_refused(sql_client: rjobs.ClientSync, store: Store) -> None:
    import json

    sql_client.reasoners.create(T, "w2", size=1)
    payload = {"probe": {}}
    job = sql_client.jobs._gateway.create_job(CreateRequest(T, "w2", payload, json.dumps(payload)))
    sql_client.jobs.cancel(T, job.id)
    assert store.append_events(job.id, "progress", [(datetime.now(UTC), "late", {})]) == 0
    page = sql_client.jobs.get_events(T, job.id)
    assert page.events == [] and page.continuation_token is None

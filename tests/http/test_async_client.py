"""The async twin: the sync client's signatures as coroutines, awaitable operations, concurrency."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from pathlib import Path

import pytest
from http_support import HttpEnv, free_port

import rjobs

T = "Prescriptive"

TWINS = [
    (rjobs.JobsClient, rjobs.JobsClientSync),
    (rjobs.JobOperation, rjobs.JobOperationSync),
    (rjobs.ReasonersClient, rjobs.ReasonersClientSync),
    (rjobs.Client, rjobs.ClientSync),
]


def _public(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


@pytest.mark.parametrize(("async_cls", "sync_cls"), TWINS)
def test_every_sync_method_has_an_async_twin_with_the_same_signature(
    async_cls: type, sync_cls: type
) -> None:
    sync_methods = _public(sync_cls)
    async_methods = _public(async_cls)
    assert set(sync_methods) <= set(async_methods)
    for name, method in sync_methods.items():
        twin = async_methods[name]
        assert inspect.iscoroutinefunction(twin), f"{async_cls.__name__}.{name} is not async"
        sync_sig = inspect.signature(method)  # type: ignore[arg-type]
        async_sig = inspect.signature(twin)  # type: ignore[arg-type]
        assert [(p.name, p.kind, p.default) for p in async_sig.parameters.values()] == [
            (p.name, p.kind, p.default) for p in sync_sig.parameters.values()
        ], name


def test_connect_makes_no_network_call_and_checks_its_arguments(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-touched"
    rjobs.connect(config=rjobs.Config(backend="embedded", data_dir=data_dir))
    assert not data_dir.exists()
    rjobs.connect(config=rjobs.Config(backend="http", base_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(rjobs.JobInvalidRequestError, match="not both"):
        rjobs.connect(config=rjobs.Config(), connection_name="x")


def test_many_jobs_waited_for_concurrently_on_one_event_loop(http_env: HttpEnv) -> None:
    name = f"r-{uuid.uuid4().hex[:8]}"
    with rjobs.connect_sync(config=http_env.config(http_env.admin_token)) as admin:
        admin.reasoners.create(T, name, size=8)

    async def main() -> list[rjobs.Job]:
        async with rjobs.connect(config=http_env.config(http_env.token())) as client:
            ops = await asyncio.gather(
                *(client.jobs.create(T, name, {"probe": {"sleep_s": 0.5}}) for _ in range(8))
            )
            start = time.monotonic()
            jobs = await asyncio.gather(*ops)  # each JobOperation is awaitable
            assert time.monotonic() - start < 5  # they ran side by side, waited for together
            assert await ops[0].is_done()
            assert (await ops[0].status()).status == "SUCCEEDED"
            return list(jobs)

    jobs = asyncio.run(main())
    assert [j.state for j in jobs] == ["COMPLETED"] * 8
    assert len({j.id for j in jobs}) == 8


def test_the_async_client_over_sql_runs_store_calls_off_the_event_loop(
    http_env: HttpEnv,
) -> None:
    config = rjobs.Config(
        backend="sql", database_url=http_env.store.url, data_dir=http_env.data_dir
    )
    name = f"r-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        async with rjobs.connect(config=config) as client:
            await client.reasoners.create(T, name, size=2)
            op = await client.jobs.create(T, name, {"probe": {"sleep_s": 1.0}})
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.05)
                    ticks += 1

            task = asyncio.create_task(ticker())
            job = await client.jobs.wait(T, op.id, poll_interval_s=5)
            task.cancel()
            assert job.state == "COMPLETED"
            assert ticks >= 10  # the loop kept running while the wait blocked a thread

    asyncio.run(main())

"""Who may do what on a shared server: tokens, users, the admin role (raw HTTP and both clients)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import anyio.from_thread
import pytest
import sqlalchemy as sa
from http_support import HttpEnv

import rjobs
from rjobs.store import schema

T = "Prescriptive"
PROBE_LONG = {"probe": {"sleep_s": 30}}


@dataclass
class Team:
    alice: rjobs.ClientSync
    bob: rjobs.ClientSync
    root: rjobs.ClientSync
    alice_job: str
    alice_txn: str
    bob_job: str
    names: dict[str, str]


@pytest.fixture
def team(http_env: HttpEnv) -> Iterator[Team]:
    suffix = uuid.uuid4().hex[:8]
    names = {"alice": f"alice-{suffix}", "bob": f"bob-{suffix}"}
    root = rjobs.connect_sync(config=http_env.config(http_env.admin_token))
    alice = rjobs.connect_sync(config=http_env.config(http_env.token(names["alice"])))
    bob = rjobs.connect_sync(config=http_env.config(http_env.token(names["bob"])))
    solver = f"s-{suffix}"
    logic = f"l-{suffix}"
    root.reasoners.create(T, solver, size=4)
    root.reasoners.create("Logic", logic, size=4)
    team = Team(
        alice,
        bob,
        root,
        alice.jobs.create(T, solver, PROBE_LONG).id,
        alice.jobs.create("Logic", logic, PROBE_LONG).id,
        bob.jobs.create(T, solver, PROBE_LONG).id,
        names,
    )
    yield team
    for client, rtype, job_id in (
        (alice, T, team.alice_job),
        (alice, "Logic", team.alice_txn),
        (bob, T, team.bob_job),
    ):
        client.jobs.cancel(rtype, job_id)
    for client in (alice, bob, root):
        client.close()


def test_no_token_and_a_wrong_token_are_permission_errors(http_env: HttpEnv) -> None:
    for token in (None, "rjt_not-a-real-token"):
        with rjobs.connect_sync(config=http_env.config(token)) as client:
            with pytest.raises(rjobs.JobPermissionError, match="token"):
                client.jobs.list()
            with pytest.raises(rjobs.JobPermissionError):
                client.jobs.get(T, "x")
            with pytest.raises(rjobs.JobPermissionError):
                client.reasoners.list()


def test_a_user_never_reads_lists_or_cancels_another_users_job(team: Team) -> None:
    bob = team.bob.jobs
    assert bob.get(T, team.alice_job) is None
    assert bob.get("Logic", team.alice_txn) is None
    assert team.alice_job not in [j.id for j in bob.list()]
    assert [j.id for j in bob.list(job_id=team.alice_job)] == []
    with pytest.raises(rjobs.JobPermissionError, match="admin"):
        bob.list(created_by=team.names["alice"])
    with pytest.raises(rjobs.JobPermissionError, match="admin"):
        bob.list(all_users=True)
    with pytest.raises(rjobs.JobNotFoundError):
        bob.cancel(T, team.alice_job)
    with pytest.raises(rjobs.JobNotFoundError):
        bob.get_events(T, team.alice_job)
    with pytest.raises(rjobs.JobNotFoundError):
        bob.wait(T, team.alice_job, timeout_s=1)
    with pytest.raises(rjobs.JobNotFoundError):
        bob.read_artifact(T, team.alice_job, "solution.json")
    with pytest.raises(rjobs.JobPermissionError, match="admin"):
        bob.cancel("Logic", team.alice_txn, all_users=True)
    for job_type, job_id in ((T, team.alice_job), ("Logic", team.alice_txn)):
        job = team.alice.jobs.get(job_type, job_id)
        assert job is not None and job.state in ("PENDING", "RUNNING")  # untouched


def test_the_admin_sees_everyone_with_all_users_and_cancels_logic_only(team: Team) -> None:
    root = team.root.jobs
    everyone = {j.id for j in root.list(all_users=True)}
    assert {team.alice_job, team.alice_txn, team.bob_job} <= everyone
    alices = root.list(created_by=team.names["alice"])
    assert {j.id for j in alices} == {team.alice_job, team.alice_txn}
    assert root.get(T, team.bob_job) is not None  # admins read anyone's job
    with pytest.raises(rjobs.JobInvalidRequestError, match="only for Logic"):
        root.cancel(T, team.alice_job, all_users=True)
    with pytest.raises(rjobs.JobNotFoundError):
        root.cancel(T, team.alice_job)  # another user's job needs all_users, Logic only
    root.cancel("Logic", team.alice_txn, all_users=True)
    job = team.alice.jobs.wait("Logic", team.alice_txn, timeout_s=30)
    assert job.state == "CANCELED" and job.abort_reason == "canceled by root"


def test_the_server_itself_refuses_all_users_cancel_off_logic(
    team: Team, http_env: HttpEnv
) -> None:
    with http_env.raw(http_env.admin_token) as raw:
        r = raw.post(f"/v1alpha1/jobs/SOLVER/{team.alice_job}/cancel", params={"all_users": "1"})
        assert r.status_code == 400 and "only for Logic" in r.json()["message"]
        r = raw.get("/v1alpha1/jobs", params={"all_users": "true", "type": "SOLVER,LOGIC"})
        assert r.status_code == 200
        assert {team.alice_job, team.alice_txn} <= {j["id"] for j in r.json()["jobs"]}
    with http_env.raw(http_env.token(team.names["bob"])) as raw:
        r = raw.get(f"/v1alpha1/jobs/SOLVER/{team.alice_job}")
        assert r.status_code == 404
        r = raw.post(f"/v1alpha1/transactions/{team.alice_txn}/cancel_async?all_users=true")
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = raw.get("/v1alpha1/jobs", params={"created_by": team.names["alice"]})
        assert r.status_code == 403


def test_the_async_client_gets_the_same_answers(
    team: Team, http_env: HttpEnv, portal: anyio.from_thread.BlockingPortal
) -> None:
    async def check() -> None:
        async with rjobs.connect(config=http_env.config(http_env.token(team.names["bob"]))) as bob:
            assert await bob.jobs.get(T, team.alice_job) is None
            with pytest.raises(rjobs.JobNotFoundError):
                await bob.jobs.cancel(T, team.alice_job)
            with pytest.raises(rjobs.JobPermissionError):
                await bob.jobs.list(all_users=True)
        async with rjobs.connect(config=http_env.config("wrong")) as nobody:
            with pytest.raises(rjobs.JobPermissionError):
                await nobody.jobs.list()

    portal.call(check)


def test_tokens_are_stored_only_as_hashes(http_env: HttpEnv) -> None:
    token = http_env.token()
    with http_env.store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(schema.api_tokens))]
    assert not any(token in str(value) for row in rows for value in row)
    assert hashlib.sha256(token.encode()).hexdigest() in [row[0] for row in rows]

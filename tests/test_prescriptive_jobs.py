"""Prescriptive jobs through the client: real HiGHS solving the shipped instances."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rjobs
from support import INSTANCES, kill_supervisor

T = "Prescriptive"

OPTIMA = {
    "afiro.mps": -464.75314286,
    "adlittle.mps": 225494.96316,
    "flugpl.mps": 1201500,
    "egout.mps": 568.1007,
    "lseu.mps": 1120,
    "bell5.mps": 8966406.49152,
    "p0201.mps": 7615,
}


@pytest.fixture(scope="module")
def solver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rjobs.ClientSync]:
    config = rjobs.Config(
        backend="embedded",
        data_dir=tmp_path_factory.mktemp("solver") / "data",
        data_roots=(INSTANCES.resolve(),),
        idle_timeout_s=30,
    )
    with rjobs.connect_sync(config=config) as client:
        client.reasoners.create(T, "hi", size=2)
        yield client
    kill_supervisor(config.data_dir)


@pytest.mark.parametrize("instance", sorted(OPTIMA))
def test_instance_solved_to_its_optimum(solver: rjobs.ClientSync, instance: str) -> None:
    payload = {"model": {"format": "mps", "path": instance}, "values": "nonzero"}
    job = solver.jobs.create_ready(
        T, "hi", payload, timeout_s=120, include={"details": True, "artifacts": True}
    )
    assert job.state == "COMPLETED", job.abort_reason
    assert isinstance(job, rjobs.JobExpanded) and job.details
    result = job.details["result"]
    assert result["status"] == "optimal"
    assert result["objective"] == pytest.approx(OPTIMA[instance], rel=1e-6)
    assert [a["name"] for a in job.artifacts or []] == ["solution.json"]
    data = solver.jobs.read_artifact(T, job.id, "solution.json")
    assert hashlib.sha256(data).hexdigest() == job.artifacts[0]["sha256"]  # type: ignore[index]
    assert json.loads(data)["objective"] == pytest.approx(OPTIMA[instance], rel=1e-6)


def test_inline_text_model_and_improving_solution_events(solver: rjobs.ClientSync) -> None:
    text = (INSTANCES / "p0201.mps").read_text()
    op = solver.jobs.create(T, "hi", {"model": {"format": "mps", "text": text}})
    job = op.wait(timeout_s=120, include={"details": True})
    assert job.state == "COMPLETED"
    events = solver.jobs.get_events(T, op.id).events
    solutions = [e for e in events if e["type"] == "solution"]
    assert solutions, [e["type"] for e in events]
    objectives = [e["objective"] for e in solutions]
    assert objectives == sorted(objectives, reverse=True)  # improving, minimisation
    assert objectives[-1] == pytest.approx(7615)
    log = solver.jobs.get_events(T, op.id, stream_name="log").events
    assert any("HiGHS" in e.get("line", "") for e in log)


def test_markshare1_time_limit_keeps_the_incumbent(solver: rjobs.ClientSync) -> None:
    payload = {"model": {"format": "mps", "path": "markshare1.mps"}, "options": {"time_limit_s": 1}}
    job = solver.jobs.create_ready(T, "hi", payload, timeout_s=60, include={"details": True})
    assert job.state == "COMPLETED"
    result = job.details["result"]  # type: ignore[attr-defined]
    assert result["status"] == "time_limit"
    assert result["objective"] is not None and result["objective"] >= 1
    assert result["gap"] > 0


def test_markshare1_cancel_stops_within_a_second_keeping_the_incumbent(
    solver: rjobs.ClientSync,
) -> None:
    op = solver.jobs.create(T, "hi", {"model": {"format": "mps", "path": "markshare1.mps"}})
    deadline = time.monotonic() + 30
    while not any(e["type"] == "solution" for e in solver.jobs.get_events(T, op.id).events):
        assert time.monotonic() < deadline, "no incumbent found"
        time.sleep(0.1)
    start = time.monotonic()
    solver.jobs.cancel(T, op.id)
    job = op.wait(timeout_s=10, include={"details": True})
    assert time.monotonic() - start < 1.0
    assert job.state == "CANCELED"
    result = job.details["result"]  # type: ignore[attr-defined]
    assert result["status"] == "interrupted"
    assert result["objective"] is not None


def test_wait_on_markshare1_times_out_at_the_deadline(solver: rjobs.ClientSync) -> None:
    op = solver.jobs.create(T, "hi", {"model": {"format": "mps", "path": "markshare1.mps"}})
    start = time.monotonic()
    with pytest.raises(rjobs.JobTimeoutError, match=op.id):
        solver.jobs.wait(T, op.id, timeout_s=2, poll_interval_s=0.5)
    assert 2 <= time.monotonic() - start < 2.3
    solver.jobs.cancel(T, op.id)
    assert op.wait(timeout_s=10).state == "CANCELED"


def test_unparsable_model_fails_with_a_problem_naming_the_line(solver: rjobs.ClientSync) -> None:
    text = "NAME bad\nROWS\n N obj\n L c1\nCOLUMNS\n x obj one\nRHS\n rhs c1 1\nENDATA\n"
    job = solver.jobs.create_ready(
        T, "hi", {"model": {"format": "mps", "text": text}}, include={"problems": True}
    )
    assert job.state == "FAILED"
    problems = job.problems  # type: ignore[attr-defined]
    assert problems[0]["severity"] == "error"
    assert problems[0]["line"] == 6
    assert job.abort_reason


def test_path_outside_the_data_roots_is_refused(solver: rjobs.ClientSync, tmp_path: Path) -> None:
    outside = tmp_path / "x.mps"
    outside.write_text((INSTANCES / "afiro.mps").read_text())
    job = solver.jobs.create_ready(
        T, "hi", {"model": {"format": "mps", "path": str(outside)}}, include={"problems": True}
    )
    assert job.state == "FAILED"
    assert "outside the data roots" in (job.abort_reason or "")


def test_json_model_as_a_job(solver: rjobs.ClientSync) -> None:
    model = {
        "sense": "max",
        "variables": [
            {"name": "x", "type": "integer", "ub": 10, "obj": 3},
            {"name": "y", "type": "continuous", "ub": 4, "obj": 2},
        ],
        "constraints": [{"name": "cap", "terms": {"x": 1, "y": 1}, "ub": 7.5}],
    }
    job = solver.jobs.create_ready(
        T, "hi", {"model": {"format": "json", "text": model}}, include={"details": True}
    )
    result = job.details["result"]  # type: ignore[attr-defined]
    assert result["status"] == "optimal"
    assert result["objective"] == pytest.approx(3 * 7 + 2 * 0.5, abs=1e-5)
    assert result["values"] == pytest.approx({"x": 7, "y": 0.5}, abs=1e-5)

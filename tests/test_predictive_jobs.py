"""Predictive jobs through the client: real scikit-learn on the breast cancer data set."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

import rjobs
from rjobs._gateway import CreateRequest
from rjobs.engines.predictive_model import load_model
from support import kill_supervisor

T = "Predictive"
NAME = "ml"
Rows = list[dict[str, Any]]
# Trains for minutes unless stopped: boosting with many stages and no early stopping.
ENDLESS = {
    "kind": "gradient_boosting",
    "params": {"n_estimators": 100_000, "n_iter_no_change": None},
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("predictive-data")


@pytest.fixture(scope="module")
def ml(data_root: Path) -> Iterator[rjobs.ClientSync]:
    config = rjobs.Config(
        backend="embedded",
        data_dir=data_root.parent / f"{data_root.name}-store",
        data_roots=(data_root.resolve(),),
        idle_timeout_s=30,
    )
    with rjobs.connect_sync(config=config) as client:
        client.reasoners.create(T, NAME, size=2)
        yield client
    kill_supervisor(config.data_dir)


@pytest.fixture(scope="module")
def cancer() -> Rows:
    bunch = load_breast_cancer()
    names = [str(name) for name in bunch.feature_names]
    return [
        {**dict(zip(names, map(float, x), strict=True)), "diagnosis": int(t)}
        for x, t in zip(bunch.data, bunch.target, strict=True)
    ]


@pytest.fixture(scope="module")
def trained(ml: rjobs.ClientSync, cancer: Rows) -> rjobs.JobExpanded:
    """A completed training job with the default model on inline rows."""
    job = ml.jobs.create_ready(
        T,
        NAME,
        {"data": {"rows": cancer}, "target": "diagnosis"},
        timeout_s=120,
        include={"details": True, "artifacts": True, "problems": True},
    )
    assert job.state == "COMPLETED", (job.abort_reason, getattr(job, "problems", None))
    assert isinstance(job, rjobs.JobExpanded)
    return job


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _wait_for_stage(ml: rjobs.ClientSync, job_id: str) -> list[dict[str, Any]]:
    """Read progress events until a training stage shows up; the job is running by then."""
    deadline = time.monotonic() + 60
    while True:
        events = ml.jobs.get_events(T, job_id).events
        stages = [e for e in events if e["type"] == "stage"]
        if stages:
            return stages
        assert time.monotonic() < deadline, f"no stage event: {events}"
        time.sleep(0.05)


def test_train_reports_metrics_and_writes_both_artifacts(
    ml: rjobs.ClientSync, trained: rjobs.JobExpanded
) -> None:
    assert trained.details is not None
    result = trained.details["result"]
    assert result["problem"] == "classification" and result["estimator"] == (
        "GradientBoostingClassifier"
    )
    assert result["metrics"]["accuracy"] >= 0.93
    assert result["metrics"]["roc_auc"] > 0.95
    assert result["n_train"] == 455 and result["n_test"] == 114
    assert result["training_time_s"] > 0
    assert len(result["feature_importances"]) == 30
    assert result["interrupted"] is False

    artifacts = {a["name"]: a for a in trained.artifacts or []}
    assert set(artifacts) == {"model.skops", "predictions.csv"}
    for name, info in artifacts.items():
        data = ml.jobs.read_artifact(T, trained.id, name)
        assert hashlib.sha256(data).hexdigest() == info["sha256"]
        assert len(data) == info["size"]
    bundle = load_model(ml.jobs.read_artifact(T, trained.id, "model.skops"))
    assert bundle["trained_by_job"] == trained.id and bundle["target"] == "diagnosis"
    predictions = _csv(ml.jobs.read_artifact(T, trained.id, "predictions.csv"))
    assert len(predictions) == 114
    assert set(predictions[0]) == {"row", "actual", "predicted", "probability"}
    correct = sum(p["actual"] == p["predicted"] for p in predictions)
    assert correct / 114 == pytest.approx(result["metrics"]["accuracy"])

    events = ml.jobs.get_events(T, trained.id).events
    assert events[0]["type"] == "data" and events[0]["rows"] == 569
    assert any(e["type"] == "stage" for e in events)


def test_predict_with_the_model_of_a_training_job(
    ml: rjobs.ClientSync, trained: rjobs.JobExpanded, cancer: Rows, data_root: Path
) -> None:
    # the rows come from a CSV file under the worker's data roots, without the target
    unlabelled = [{k: v for k, v in row.items() if k != "diagnosis"} for row in cancer[:100]]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(unlabelled[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(unlabelled)
    (data_root / "new_patients.csv").write_text(out.getvalue())

    payload = {
        "task": "predict",
        "data": {"path": "new_patients.csv"},
        "model_from_job": trained.id,
    }
    job = ml.jobs.create_ready(
        T, NAME, payload, timeout_s=60, include={"details": True, "artifacts": True}
    )
    assert job.state == "COMPLETED", job.abort_reason
    result = job.details["result"]  # type: ignore[attr-defined]
    assert result["model_from_job"] == trained.id
    assert result["n_rows"] == 100 and sum(result["predicted_counts"].values()) == 100
    assert "metrics" not in result
    predictions = _csv(ml.jobs.read_artifact(T, job.id, "predictions.csv"))
    assert [int(p["row"]) for p in predictions] == list(range(100))
    truth = [row["diagnosis"] for row in cancer[:100]]
    hits = sum(int(p["predicted"]) == t for p, t in zip(predictions, truth, strict=True))
    assert hits >= 90


def test_predict_with_mismatched_columns_fails_naming_them(
    ml: rjobs.ClientSync, trained: rjobs.JobExpanded, cancer: Rows
) -> None:
    renamed = [
        {("radius" if k == "mean radius" else k): v for k, v in row.items()} for row in cancer[:20]
    ]
    payload = {"task": "predict", "data": {"rows": renamed}, "model_from_job": trained.id}
    job = ml.jobs.create_ready(T, NAME, payload, timeout_s=60, include={"problems": True})
    assert job.state == "FAILED"
    problem = job.problems[0]  # type: ignore[attr-defined]
    assert problem["severity"] == "error" and problem["code"] == "missing_columns"
    assert "mean radius" in problem["message"] and trained.id in problem["message"]
    assert "mean radius" in (job.abort_reason or "")


def test_predict_from_a_job_without_a_model_fails(ml: rjobs.ClientSync, cancer: Rows) -> None:
    payload = {"task": "predict", "data": {"rows": cancer[:5]}, "model_from_job": "no-such-job"}
    job = ml.jobs.create_ready(T, NAME, payload, timeout_s=60, include={"problems": True})
    assert job.state == "FAILED"
    assert job.problems[0]["code"] == "model_not_found"  # type: ignore[attr-defined]


def test_progress_is_visible_while_training_and_cancel_stops_it_within_a_second(
    ml: rjobs.ClientSync, cancer: Rows
) -> None:
    payload = {"data": {"rows": cancer}, "target": "diagnosis", "model": ENDLESS}
    op = ml.jobs.create(T, NAME, payload)
    first = _wait_for_stage(ml, op.id)
    time.sleep(0.3)
    later = [e for e in ml.jobs.get_events(T, op.id).events if e["type"] == "stage"]
    job = ml.jobs.get(T, op.id)
    assert job is not None and job.state == "RUNNING"
    assert first[0]["stage"] == 1 and first[0]["of"] == 100_000
    assert later[-1]["stage"] > first[-1]["stage"]
    assert all(e["train_loss"] > 0 and e["elapsed_s"] >= 0 for e in later)

    start = time.monotonic()
    ml.jobs.cancel(T, op.id)
    done = op.wait(timeout_s=10, include={"details": True, "artifacts": True})
    assert time.monotonic() - start < 1.0
    assert done.state == "CANCELED"
    assert done.abort_reason and done.abort_reason.startswith("canceled by")
    result = done.details["result"]  # type: ignore[attr-defined]
    assert result["interrupted"] is True and "metrics" not in result
    assert 0 < result["n_estimators_fitted"] < 100_000
    assert done.artifacts == []  # type: ignore[attr-defined]


def test_timeout_aborts_training(ml: rjobs.ClientSync, cancer: Rows) -> None:
    # timeout_mins cannot go below a minute through the client; the gateway takes milliseconds.
    payload = {"data": {"rows": cancer}, "target": "diagnosis", "model": ENDLESS}
    request = CreateRequest(T, NAME, payload, json.dumps(payload), timeout_ms=1500)
    start = time.monotonic()
    job_id = ml.jobs._gateway.create_job(request).id  # type: ignore[attr-defined]
    _wait_for_stage(ml, job_id)
    job = ml.jobs.wait(T, job_id, timeout_s=30)
    assert job.state == "ABORTED" and job.abort_reason == "timeout exceeded"
    assert time.monotonic() - start < 1.5 + 2.5
    assert job.duration is not None and 1500 <= job.duration < 1500 + 1500


def test_bad_payload_fails_with_a_problem(ml: rjobs.ClientSync, cancer: Rows) -> None:
    payload = {"data": {"rows": cancer[:50]}, "target": "diagnosis", "model": {"kind": "svm"}}
    job = ml.jobs.create_ready(T, NAME, payload, timeout_s=60, include={"problems": True})
    assert job.state == "FAILED"
    problem = job.problems[0]  # type: ignore[attr-defined]
    assert problem["code"] == "unknown_model_kind" and "gradient_boosting" in problem["message"]

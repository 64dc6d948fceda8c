"""``rjobs train`` and ``rjobs predict`` run as a user runs them: real processes, real store."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from support import kill_supervisor

Rows = list[dict[str, Any]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data files the commands read, written from scikit-learn's shipped data sets."""
    root = tmp_path_factory.mktemp("cli-predictive")
    cancer = load_breast_cancer()
    names = [str(n) for n in cancer.feature_names]
    rows: Rows = [
        {**dict(zip(names, map(float, x), strict=True)), "diagnosis": int(t)}
        for x, t in zip(cancer.data, cancer.target, strict=True)
    ]
    _write_csv(root / "cancer.csv", rows)
    unlabelled = [{k: v for k, v in row.items() if k != "diagnosis"} for row in rows[:60]]
    pq.write_table(pa.Table.from_pylist(unlabelled), root / "new.parquet")
    renamed = [{k.replace("mean ", "avg "): v for k, v in row.items()} for row in unlabelled]
    _write_csv(root / "renamed.csv", renamed)
    diabetes = load_diabetes()
    (root / "diabetes.jsonl").write_text(
        "\n".join(
            json.dumps({**dict(zip(diabetes.feature_names, map(float, x), strict=True)), "y": t})
            for x, t in zip(diabetes.data, diabetes.target.tolist(), strict=True)
        )
    )
    (root / "notes.txt").write_text("not a table\n")
    return root


@pytest.fixture(scope="module")
def cli_env(workdir: Path) -> Iterator[dict[str, str]]:
    data_dir = workdir / "cli-data"
    env = dict(
        os.environ,
        RJOBS_DATA_DIR=str(data_dir),
        RJOBS_IDLE_TIMEOUT_S="30",
        RJOBS_DATA_ROOTS=str(workdir),
    )
    env.pop("RJOBS_CONNECTION", None)
    yield env
    kill_supervisor(data_dir)


def _write_csv(path: Path, rows: Rows) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def rjobs(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rjobs.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained_id(cli_env: dict[str, str], workdir: Path) -> str:
    """``rjobs train cancer.csv --target diagnosis`` with a small forest; returns the job id."""
    done = rjobs(cli_env, workdir, "train", "cancer.csv", "--target", "diagnosis",
                 "--model", "random_forest", "--param", "n_estimators=60",
                 "--param", "max_features=sqrt", "--seed", "3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "COMPLETED" in done.stdout
    assert "accuracy" in done.stdout and "roc_auc" in done.stdout
    assert "RandomForestClassifier" in done.stdout
    assert "top 10 feature importances" in done.stdout
    found = re.search(r"--model-from (\S+)", done.stderr)
    assert found, done.stderr
    job_id = found.group(1)
    assert job_id in done.stdout
    return job_id


def test_train_prints_metrics_and_the_top_features(trained_id: str) -> None:
    assert trained_id  # the fixture checked the output


def test_train_json_shows_the_job_with_its_result(cli_env: dict[str, str], workdir: Path) -> None:
    done = rjobs(cli_env, workdir, "train", "diabetes.jsonl", "--target", "y", "--model",
                 "linear", "--param", "alpha=1.0", "--task", "evaluate", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["state"] == "COMPLETED" and job["reasoner_type"] == "Predictive"
    result = job["details"]["result"]
    assert result["task"] == "evaluate" and result["problem"] == "regression"
    assert result["estimator"] == "Ridge" and result["params"]["alpha"] == 1.0
    assert len(result["folds"]) == 5 and result["metrics"]["r2"] > 0.3
    assert any(p["code"] == "problem_inferred" for p in job["problems"])


def test_predict_applies_the_model_and_writes_predictions(
    cli_env: dict[str, str], workdir: Path, trained_id: str
) -> None:
    # Parquet is converted and sent inline
    done = rjobs(cli_env, workdir, "predict", "new.parquet", "--model-from", trained_id,
                 "-o", "predictions.csv")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "COMPLETED" in done.stdout and trained_id in done.stdout
    assert "predicted 1" in done.stdout
    with (workdir / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60 and set(rows[0]) == {"row", "predicted", "probability"}

    # --path: the worker reads the file under its data roots
    scored = rjobs(cli_env, workdir, "predict", str(workdir / "cancer.csv"), "--path",
                   "--model-from", trained_id, "--json")  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)["details"]["result"]
    assert result["n_rows"] == 569 and result["n_labelled"] == 569
    assert result["metrics"]["accuracy"] > 0.95


def test_predict_with_mismatched_columns_exits_1_naming_them(
    cli_env: dict[str, str], workdir: Path, trained_id: str
) -> None:
    done = rjobs(cli_env, workdir, "predict", "renamed.csv", "--model-from", trained_id)
    assert done.returncode == 1
    assert "FAILED" in done.stdout
    assert "lacks column(s)" in done.stdout and "mean radius" in done.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "notes.txt", "--target", "y"], ["format"]),
        (["train", "missing.csv", "--target", "y"], ["cannot read"]),
        (["train", "cancer.csv", "--target", "diagnosis", "--model", "svm"], ["svm"]),
        (["train", "cancer.csv", "--target", "diagnosis", "--param", "depth"], ["key=value"]),
        (["train", "cancer.csv", "--target", "diagnosis", "--task", "tune"], ["tune"]),
        (["train", "cancer.csv", "--target", "diagnosis", "--test-size", "0"], ["test-size"]),
        (["train", "cancer.csv"], ["--target"]),
        (["predict", "new.parquet"], ["--model-from"]),
    ],
)
def test_usage_errors_exit_2(
    cli_env: dict[str, str], workdir: Path, args: list[str], words: list[str]
) -> None:
    done = rjobs(cli_env, workdir, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    for word in words:
        assert word in done.stderr


def test_a_failing_training_job_exits_1(cli_env: dict[str, str], workdir: Path) -> None:
    done = rjobs(cli_env, workdir, "train", "cancer.csv", "--target", "diagnosis",
                 "--param", "n_trees=5")  # fmt: skip
    assert done.returncode == 1
    assert "FAILED" in done.stdout and "n_trees" in done.stdout

"""The Predictive engine on real data sets shipped with scikit-learn (they load offline)."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from rjobs.engines.base import EngineFailure, LocalContext
from rjobs.engines.logic import LogicEngine
from rjobs.engines.predictive import PredictiveEngine
from rjobs.engines.predictive_model import early_stopping_obstacle, load_model

Rows = list[dict[str, Any]]


def dataset_rows(loader: Callable[..., Any], regression: bool = False) -> Rows:
    """A scikit-learn data set as records with a ``target`` column."""
    bunch = loader()
    names = [str(name) for name in bunch.feature_names]
    return [
        {
            **dict(zip(names, map(float, x), strict=True)),
            "target": float(t) if regression else int(t),
        }
        for x, t in zip(bunch.data, bunch.target, strict=True)
    ]


def csv_text(rows: Rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def make_ctx(tmp_path: Path, job_id: str = "job-1") -> LocalContext:
    return LocalContext(
        job_id=job_id,
        artifact_dir=tmp_path / "artifacts",
        data_dir=tmp_path,
        data_roots=[tmp_path],
    )


def run(payload: dict[str, Any], ctx: LocalContext) -> dict[str, Any]:
    result = PredictiveEngine().run(payload, ctx)
    json.dumps(result, allow_nan=False)  # a result must be strict JSON
    return result


def fail(payload: dict[str, Any], ctx: LocalContext) -> EngineFailure:
    with pytest.raises(EngineFailure) as info:
        PredictiveEngine().run(payload, ctx)
    return info.value


def codes(ctx: LocalContext, severity: str | None = None) -> list[str]:
    return [p.code for p in ctx.problems if severity is None or p.severity == severity]


def events(ctx: LocalContext, kind: str) -> list[dict[str, Any]]:
    return [e for e in ctx.events["progress"] if e["type"] == kind]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def cancer() -> Rows:
    return dataset_rows(load_breast_cancer)


@pytest.fixture(scope="module")
def wine() -> Rows:
    return dataset_rows(load_wine)


@pytest.fixture(scope="module")
def diabetes() -> Rows:
    return dataset_rows(load_diabetes, regression=True)


# -- metric floors ---------------------------------------------------------------------------
# The default model on train's held-out 20% (seed 0 unless said). The defaults were chosen without
# seeing these test splits (see the engine docstring); on seeds 0-9 train scores breast cancer
# 0.956-0.982, wine 0.972-1.0 and diabetes R² 0.306-0.558 (mean 0.419). Diabetes misses 0.35 on
# seeds 0 (0.317) and 6 (0.306): ordinary least squares scores 0.332 on seed 0's split, so the
# floor there is checked on the mean over seeds and on evaluate's 5-fold mean.


def train_default(rows: Rows, tmp_path: Path, seed: int) -> dict[str, Any]:
    ctx = make_ctx(tmp_path, f"seed-{seed}")
    return run({"data": {"rows": rows}, "target": "target", "validation": {"seed": seed}}, ctx)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_breast_cancer_train_meets_accuracy_floor(tmp_path: Path, cancer: Rows, seed: int) -> None:
    result = train_default(cancer, tmp_path, seed)
    assert result["estimator"] == "GradientBoostingClassifier"
    assert result["metrics"]["accuracy"] >= 0.93
    assert result["n_test"] == 114
    assert 0 < result["n_estimators_fitted"] < 500  # early stopping ended it


def test_diabetes_train_meets_r2_floor_on_average(tmp_path: Path, diabetes: Rows) -> None:
    r2 = [train_default(diabetes, tmp_path, seed)["metrics"]["r2"] for seed in range(5)]
    assert sum(r2) / len(r2) >= 0.35
    assert min(r2) >= 0.30


def test_breast_cancer_evaluate_meets_accuracy_floor(tmp_path: Path, cancer: Rows) -> None:
    ctx = make_ctx(tmp_path)
    result = run({"task": "evaluate", "data": {"rows": cancer}, "target": "target"}, ctx)

    assert result["interrupted"] is False
    assert result["metrics"]["accuracy"] >= 0.93
    assert result["estimator"] == "GradientBoostingClassifier"
    assert [f["fold"] for f in result["folds"]] == [1, 2, 3, 4, 5]
    assert sum(f["n_test"] for f in result["folds"]) == 569
    assert set(result["metrics_std"]) == {"accuracy", "f1", "roc_auc"}
    assert [e["fold"] for e in events(ctx, "fold")] == [1, 2, 3, 4, 5]
    stages = events(ctx, "stage")
    assert {e.get("fold") for e in stages} == {1, 2, 3, 4, 5, None}
    assert any(e.get("phase") == "final" for e in stages)
    # out-of-fold predictions: every row once, with its fold and the positive class probability
    predictions = read_csv(tmp_path / "artifacts" / "job-1" / "predictions.csv")
    assert sorted(int(p["row"]) for p in predictions) == list(range(569))
    assert set(predictions[0]) == {"row", "fold", "actual", "predicted", "probability"}
    assert (tmp_path / "artifacts" / "job-1" / "model.skops").stat().st_size > 0


def test_diabetes_evaluate_meets_r2_floor_from_a_csv_file(tmp_path: Path, diabetes: Rows) -> None:
    (tmp_path / "diabetes.csv").write_text(csv_text(diabetes))
    ctx = make_ctx(tmp_path)
    result = run({"task": "evaluate", "data": {"path": "diabetes.csv"}, "target": "target"}, ctx)

    assert result["problem"] == "regression"
    assert result["estimator"] == "GradientBoostingRegressor"
    assert result["metrics"]["r2"] >= 0.35
    assert result["metrics"]["mae"] > 0 and result["metrics"]["rmse"] >= result["metrics"]["mae"]


def test_wine_train_meets_accuracy_floor(tmp_path: Path, wine: Rows) -> None:
    ctx = make_ctx(tmp_path)
    payload = {
        "task": "train",
        "data": {"text": csv_text(wine), "format": "csv"},
        "target": "target",
    }
    result = run(payload, ctx)

    assert result["metrics"]["accuracy"] >= 0.90
    assert set(result["metrics"]) == {"accuracy", "f1", "roc_auc"}
    assert result["classes"] == [0, 1, 2]
    assert result["n_train"] + result["n_test"] == 178 and result["n_test"] == 36
    assert result["model_kind"] == "gradient_boosting"
    assert result["training_time_s"] > 0
    assert result["feature_columns"] == [k for k in wine[0] if k != "target"]
    importances = result["feature_importances"]
    assert set(importances) == set(result["feature_columns"])
    assert sum(importances.values()) == pytest.approx(1.0, abs=1e-4)
    assert {a.name for a in ctx.artifacts} == {"model.skops", "predictions.csv"}
    predictions = read_csv(tmp_path / "artifacts" / "job-1" / "predictions.csv")
    assert len(predictions) == 36 and set(predictions[0]) == {"row", "actual", "predicted"}


# -- reproducibility -------------------------------------------------------------------------


def test_same_seed_same_metrics_and_another_seed_another_split(tmp_path: Path, wine: Rows) -> None:
    def train(job_id: str, seed: int) -> tuple[dict[str, Any], list[str]]:
        ctx = make_ctx(tmp_path, job_id)
        payload = {
            "data": {"rows": wine},
            "target": "target",
            "model": {"kind": "random_forest", "params": {"n_estimators": 40}},
            "validation": {"seed": seed},
        }
        result = run(payload, ctx)
        rows = [r["row"] for r in read_csv(tmp_path / "artifacts" / job_id / "predictions.csv")]
        return result, rows

    first, rows_first = train("a", 0)
    again, rows_again = train("b", 0)
    _, rows_other = train("c", 7)
    assert first["metrics"] == again["metrics"]
    assert first["feature_importances"] == again["feature_importances"]
    assert rows_first == rows_again
    assert rows_first != rows_other


# -- train, then predict ---------------------------------------------------------------------


def test_predict_from_a_trained_model(tmp_path: Path, cancer: Rows) -> None:
    train_ctx = make_ctx(tmp_path, "trainer")
    model = {"kind": "gradient_boosting", "params": {"n_estimators": 30}}
    run({"data": {"rows": cancer}, "target": "target", "model": model}, train_ctx)

    unlabelled = [{k: v for k, v in row.items() if k != "target"} for row in cancer[:50]]
    ctx = make_ctx(tmp_path, "predictor")
    result = run(
        {"task": "predict", "data": {"rows": unlabelled}, "model_from_job": "trainer"}, ctx
    )
    assert result["n_rows"] == 50 and result["interrupted"] is False
    assert "metrics" not in result
    assert sum(result["predicted_counts"].values()) == 50
    assert result["positive_class"] == 1
    predictions = read_csv(tmp_path / "artifacts" / "predictor" / "predictions.csv")
    assert [int(p["row"]) for p in predictions] == list(range(50))
    assert set(predictions[0]) == {"row", "predicted", "probability"}
    assert all(0.0 <= float(p["probability"]) <= 1.0 for p in predictions)

    # with the target present, the predictions are scored too
    labelled_ctx = make_ctx(tmp_path, "scored")
    scored = run(
        {"task": "predict", "data": {"rows": cancer}, "model_from_job": "trainer"}, labelled_ctx
    )
    assert scored["metrics"]["accuracy"] >= 0.93
    assert scored["n_labelled"] == 569


def test_predict_with_missing_columns_names_them(tmp_path: Path, wine: Rows) -> None:
    train_ctx = make_ctx(tmp_path, "trainer")
    run({"data": {"rows": wine}, "target": "target", "model": {"kind": "logistic"}}, train_ctx)
    partial = [{k: v for k, v in row.items() if k not in {"proline", "hue"}} for row in wine]

    error = fail(
        {"task": "predict", "data": {"rows": partial}, "model_from_job": "trainer"},
        make_ctx(tmp_path, "predictor"),
    )
    assert error.problems[0].code == "missing_columns"
    assert "proline" in error.message and "hue" in error.message


def test_predict_without_a_model(tmp_path: Path, wine: Rows) -> None:
    ctx = make_ctx(tmp_path, "predictor")
    error = fail({"task": "predict", "data": {"rows": wine}, "model_from_job": "nope"}, ctx)
    assert error.problems[0].code == "model_not_found"


def test_model_files_with_untrusted_types_are_refused(tmp_path: Path) -> None:
    # A model file naming a function that is not scikit-learn or numpy must not be loaded.
    crafted = sio.dumps({"format": "rjobs.predictive/1", "pipeline": os.system})
    with pytest.raises(EngineFailure) as info:
        load_model(crafted)
    assert info.value.problems[0].code == "untrusted_model"
    assert "system" in info.value.message
    with pytest.raises(EngineFailure) as info:
        load_model(b"not a zip file")
    assert info.value.problems[0].code == "bad_model"


# -- preprocessing choices -------------------------------------------------------------------


def test_preprocessing_choices_are_reported(tmp_path: Path, wine: Rows) -> None:
    bands = ["low", "mid", "high"]
    rows = []
    for i, row in enumerate(wine):
        band = bands[min(2, int((row["alcohol"] - 11.0) // 1.2))]
        rows.append(
            {
                "sample": f"W{i:04d}",  # text, every value different: id-like
                "line_no": i + 1,  # integers numbering the rows: id-like
                "customer_id": 1000 + 7 * i,  # all different, named like an id
                "cellar": "north",  # constant
                "alcohol_band": None if i % 10 == 0 else band,  # categorical, some missing
                **{k: (None if i % 17 == 0 and k == "hue" else v) for k, v in row.items()},
            }
        )
    ctx = make_ctx(tmp_path, "trainer")
    result = run({"data": {"rows": rows}, "target": "target", "model": {"kind": "logistic"}}, ctx)

    assert result["problem"] == "classification" and result["problem_inferred"] is True
    assert result["dropped_columns"] == {
        "sample": "id-like (every value is different)",
        "line_no": "id-like (consecutive integers numbering the rows)",
        "customer_id": "id-like (integer with every value different and an id-like name)",
        "cellar": "constant (one distinct value)",
    }
    assert result["categorical_columns"] == ["alcohol_band"]
    assert "alcohol_band" in result["feature_importances"]
    infos = {(p.code, p.message.split("'")[1]) for p in ctx.problems if p.severity == "info"}
    assert ("problem_inferred", "target") in infos
    assert ("categorical_encoded", "alcohol_band") in infos
    assert ("missing_imputed", "alcohol_band") in infos
    assert ("missing_imputed", "hue") in infos
    assert {("column_dropped", name) for name in result["dropped_columns"]} <= infos
    assert result["params"]["max_iter"] == 1000

    # a category never seen in training is ignored, not an error; dropped columns are not needed
    new = [{k: v for k, v in row.items() if k not in result["dropped_columns"]} for row in rows]
    new[0]["alcohol_band"] = "extreme"
    predicted = run(
        {"task": "predict", "data": {"rows": new}, "model_from_job": "trainer"},
        make_ctx(tmp_path, "predictor"),
    )
    assert predicted["n_rows"] == 178 and predicted["metrics"]["accuracy"] >= 0.9


def test_explicit_problem_is_not_inferred(tmp_path: Path, wine: Rows) -> None:
    ctx = make_ctx(tmp_path)
    payload = {
        "data": {"rows": wine},
        "target": "target",
        "problem": "regression",
        "model": {"kind": "linear", "params": {"alpha": 1.0}},
    }
    result = run(payload, ctx)
    assert result["problem"] == "regression" and result["problem_inferred"] is False
    assert result["estimator"] == "Ridge"  # alpha selects Ridge
    assert "problem_inferred" not in codes(ctx)
    assert set(result["metrics"]) == {"r2", "mae", "rmse"}


def test_parquet_and_json_data(tmp_path: Path, diabetes: Rows) -> None:
    pq.write_table(pa.Table.from_pylist(diabetes), tmp_path / "diabetes.parquet")
    model = {"kind": "linear"}
    from_parquet = run(
        {"data": {"path": "diabetes.parquet"}, "target": "target", "model": model},
        make_ctx(tmp_path, "p"),
    )
    ndjson = "\n".join(json.dumps(row) for row in diabetes)
    from_json = run(
        {"data": {"text": ndjson, "format": "json"}, "target": "target", "model": model},
        make_ctx(tmp_path, "j"),
    )
    assert from_parquet["estimator"] == "LinearRegression"
    assert from_parquet["metrics"] == pytest.approx(from_json["metrics"])


# -- bad inputs ------------------------------------------------------------------------------


def _payload(rows: Rows, **overrides: Any) -> dict[str, Any]:
    return {"data": {"rows": rows}, "target": "target", **overrides}


@pytest.mark.parametrize(
    ("overrides", "code", "words"),
    [
        ({"target": "quality"}, "missing_target", ["quality", "alcohol"]),
        ({"target": None}, "missing_target", ["target"]),
        ({"model": {"kind": "deep_net"}}, "unknown_model_kind", ["deep_net", "random_forest"]),
        (
            {"model": {"params": {"n_trees": 5}}},
            "unknown_param",
            ["n_trees", "n_estimators", "learning_rate"],
        ),
        ({"model": {"params": {"n_estimators": -1}}}, "invalid_param", ["n_estimators"]),
        ({"model": {"kind": "linear"}}, "model_problem_mismatch", ["linear", "logistic"]),
        (
            {
                "problem": "regression",
                "model": {"kind": "linear", "params": {"alpha": 1, "n_jobs": 2}},
            },
            "unknown_param",
            ["n_jobs", "Ridge", "alpha"],
        ),
        ({"task": "explain"}, "bad_task", ["explain", "predict"]),
        ({"validation": {"test_size": 1.5}}, "invalid_payload", ["test_size"]),
        ({"colour": "red"}, "invalid_payload", ["colour"]),
    ],
)
def test_bad_payloads(
    tmp_path: Path, wine: Rows, overrides: dict[str, Any], code: str, words: list[str]
) -> None:
    payload = {k: v for k, v in _payload(wine[::3], **overrides).items() if v is not None}
    error = fail(payload, make_ctx(tmp_path))
    assert error.problems[0].code == code
    assert error.problems[0].severity == "error"
    for word in words:
        assert word in error.message


def test_one_class_target(tmp_path: Path, wine: Rows) -> None:
    only_zero = [row for row in wine if row["target"] == 0]
    error = fail(_payload(only_zero), make_ctx(tmp_path))
    assert error.problems[0].code == "one_class_target"


@pytest.mark.parametrize(
    "data",
    [{"rows": []}, {"text": "alcohol,target\n"}, {"rows": [{"alcohol": 1.0, "target": None}]}],
)
def test_empty_table(tmp_path: Path, data: dict[str, Any]) -> None:
    error = fail({"data": data, "target": "target"}, make_ctx(tmp_path))
    assert error.problems[0].code == "empty_table"


def test_path_outside_the_data_roots(tmp_path: Path, wine: Rows) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text(csv_text(wine))
    try:
        ctx = make_ctx(tmp_path)
        for raw in (str(outside), f"../{outside.name}"):
            error = fail({"data": {"path": raw}, "target": "target"}, ctx)
            assert "outside the data roots" in error.message
    finally:
        outside.unlink()


def test_unreadable_data(tmp_path: Path) -> None:
    error = fail(
        {"data": {"text": '[{"a": 1}, {"a": "x"}]', "format": "json"}, "target": "a"},
        make_ctx(tmp_path),
    )
    assert error.problems[0].code == "data_error"


# -- progress and cancel ---------------------------------------------------------------------


def test_progress_events(tmp_path: Path, cancer: Rows) -> None:
    ctx = make_ctx(tmp_path, "gb")
    run(_payload(cancer, model={"params": {"n_estimators": 300, "n_iter_no_change": None}}), ctx)
    assert events(ctx, "data") == [{"type": "data", "rows": 569, "columns": 31}]
    stages = events(ctx, "stage")
    assert stages[0]["stage"] == 1 and stages[-1]["stage"] == 300
    assert all(e["of"] == 300 and e["train_loss"] > 0 for e in stages)
    assert [e["stage"] for e in stages] == sorted({e["stage"] for e in stages})
    elapsed = stages[-1]["elapsed_s"]
    assert len(stages) <= 2 + 20 * elapsed + 1  # throttled to about 20 a second

    forest_ctx = make_ctx(tmp_path, "rf")
    run(
        _payload(cancer, model={"kind": "random_forest", "params": {"n_estimators": 60}}),
        forest_ctx,
    )
    batches = events(forest_ctx, "batch")
    assert len(batches) >= 2 and batches[-1]["trees"] == 60
    assert all(e["of"] == 60 for e in batches)


@pytest.mark.parametrize("kind", ["gradient_boosting", "random_forest"])
def test_cancel_stops_training_within_a_second(tmp_path: Path, cancer: Rows, kind: str) -> None:
    ctx = make_ctx(tmp_path)
    interrupted_at: list[float] = []

    def cancel() -> None:
        time.sleep(0.5)
        interrupted_at.append(time.monotonic())
        ctx.interrupt()

    thread = threading.Thread(target=cancel)
    thread.start()
    params: dict[str, Any] = {"n_estimators": 100_000}
    if kind == "gradient_boosting":
        params["n_iter_no_change"] = None  # no early stopping: it would end long before
    result = run(_payload(cancer, model={"kind": kind, "params": params}), ctx)
    returned_at = time.monotonic()
    thread.join()

    assert result["interrupted"] is True
    assert returned_at - interrupted_at[0] < 1.0
    assert 0 < result["n_estimators_fitted"] < 100_000
    assert ctx.artifacts == []
    assert events(ctx, "stage" if kind == "gradient_boosting" else "batch")


def test_boosting_defaults_and_early_stopping(tmp_path: Path, cancer: Rows, diabetes: Rows) -> None:
    ctx = make_ctx(tmp_path, "cancer")
    result = run(_payload(cancer), ctx)
    assert result["params"] == {
        "n_estimators": 500,
        "learning_rate": 0.1,
        "max_depth": 2,
        "min_samples_leaf": 10,
        "subsample": 0.8,
        "n_iter_no_change": 20,
        "validation_fraction": 0.1,
        "random_state": 0,
    }
    fitted = result["n_estimators_fitted"]
    assert 20 < fitted < 500
    stages = events(ctx, "stage")
    assert stages[-1]["stage"] == fitted and stages[-1]["of"] == 500
    assert "early_stopping_off" not in codes(ctx)

    # a parameter given overrides its default only
    tuned = run(_payload(diabetes, model={"params": {"max_depth": 3}}), make_ctx(tmp_path, "d3"))
    assert tuned["params"]["max_depth"] == 3 and tuned["params"]["n_iter_no_change"] == 20

    # 60 training rows would leave 6 for validation: early stopping is off, 100 stages are fitted
    small_ctx = make_ctx(tmp_path, "small")
    small = run(_payload(diabetes[:75]), small_ctx)
    assert small["n_train"] == 60
    assert small["n_estimators_fitted"] == 100 and small["params"]["n_estimators"] == 100
    assert "n_iter_no_change" not in small["params"]
    assert "validation_fraction" not in small["params"]
    off = [p for p in small_ctx.problems if p.code == "early_stopping_off"]
    assert len(off) == 1 and off[0].severity == "info" and "60 training rows" in off[0].message

    # evaluate decides once, for all folds
    folds_ctx = make_ctx(tmp_path, "folds")
    evaluated = run({"task": "evaluate", **_payload(diabetes[:75])}, folds_ctx)
    assert codes(folds_ctx).count("early_stopping_off") == 1
    assert evaluated["params"]["n_estimators"] == 100


def test_early_stopping_needs_enough_rows_of_every_class() -> None:
    many = np.array([0] * 150 + [1] * 50)
    assert early_stopping_obstacle([many], "classification", 0.1) is None
    assert early_stopping_obstacle([many[:91]], "regression", 0.1) is None  # holds back 10 rows
    assert "9 for early stopping" in (early_stopping_obstacle([many[:90]], "regression", 0.1) or "")
    lonely = np.append(many, 2)  # class 2 has a single row: no stratified hold-out
    assert "class" in (early_stopping_obstacle([lonely], "classification", 0.1) or "")
    assert early_stopping_obstacle([many], "classification", "a lot") is None  # sklearn refuses


def test_forest_defaults(tmp_path: Path, diabetes: Rows) -> None:
    result = run(_payload(diabetes[:100], model={"kind": "random_forest"}), make_ctx(tmp_path))
    assert result["params"] == {
        "n_estimators": 200,
        "max_features": pytest.approx(1 / 3),
        "min_samples_leaf": 5,
        "random_state": 0,
    }
    assert result["n_estimators_fitted"] == 200


def test_evaluate_cancel_between_folds(tmp_path: Path, wine: Rows) -> None:
    ctx = make_ctx(tmp_path)
    ctx.interrupt()
    result = run({"task": "evaluate", **_payload(wine)}, ctx)
    assert result["interrupted"] is True and result["folds"] == []
    assert ctx.artifacts == []


def test_regression_predictions_file(tmp_path: Path, diabetes: Rows) -> None:
    ctx = make_ctx(tmp_path)
    result = run(_payload(diabetes, model={"kind": "random_forest"}), ctx)
    predictions = read_csv(tmp_path / "artifacts" / "job-1" / "predictions.csv")
    assert len(predictions) == result["n_test"] == 89
    actual = np.array([float(p["actual"]) for p in predictions])
    predicted = np.array([float(p["predicted"]) for p in predictions])
    assert np.sqrt(np.mean((actual - predicted) ** 2)) == pytest.approx(result["metrics"]["rmse"])


def test_training_warnings_become_problems(tmp_path: Path, wine: Rows) -> None:
    ctx = make_ctx(tmp_path)
    payload = {
        "task": "evaluate",
        **_payload(wine, model={"kind": "logistic", "params": {"max_iter": 2}}),
    }
    run(payload, ctx)
    warned = [p for p in ctx.problems if p.code == "training_warning"]
    assert len(warned) == 1  # one per message, not one per fold
    assert "ConvergenceWarning" in warned[0].message


def _load_cellar(tmp_path: Path, rows: Rows) -> None:
    """A Logic database ``cellar`` with a table ``wine``, written by a Logic write transaction."""
    loaded = LogicEngine().run(
        {
            "dbname": "cellar",
            "readonly": False,
            "query": "CREATE TABLE wine AS SELECT * FROM batch",
            "inputs": {"batch": rows},
        },
        make_ctx(tmp_path, "loader"),
    )
    assert loaded["interrupted"] is False and loaded["created"] is True


def test_training_data_from_a_logic_query(tmp_path: Path, wine: Rows) -> None:
    _load_cellar(tmp_path, wine)
    ctx = make_ctx(tmp_path, "trainer")
    query = "SELECT * EXCLUDE (magnesium) FROM wine WHERE target IN (0, 1) ORDER BY proline"
    data = {"logic": {"dbname": "cellar", "query": query}}
    result = run({"data": data, "target": "target"}, ctx)

    two_classes = [row for row in wine if row["target"] in (0, 1)]
    assert result["n_rows"] == len(two_classes) == 130
    assert result["classes"] == [0, 1]
    assert "magnesium" not in result["feature_columns"]
    assert len(result["feature_columns"]) == 12
    assert result["metrics"]["accuracy"] >= 0.9
    assert events(ctx, "data") == [{"type": "data", "rows": 130, "columns": 13}]

    # the model applies to rows read from the database too; class 2 was never trained on
    predict_ctx = make_ctx(tmp_path, "predictor")
    predicted = run(
        {
            "task": "predict",
            "data": {"logic": {"dbname": "cellar", "query": "SELECT * FROM wine"}},
            "model_from_job": "trainer",
        },
        predict_ctx,
    )
    assert predicted["n_rows"] == 178 and predicted["n_labelled"] == 178
    assert set(predicted["predicted_counts"]) == {"0", "1"}
    assert predicted["metrics"]["accuracy"] <= 130 / 178
    assert predicted["metrics"]["roc_auc"] is None
    warned = [p.message for p in predict_ctx.problems if p.severity == "warning"]
    assert any("not trained on: [2]" in message for message in warned), warned


@pytest.mark.parametrize(
    ("dbname", "query", "code"),
    [
        ("cellar", "SELECT * FROM barrels", "catalog_error"),
        ("nowhere", "SELECT 1 AS target", "database_not_found"),
        ("cellar", "DELETE FROM wine", "read_only_violation"),
    ],
)
def test_logic_query_errors_fail_the_job(
    tmp_path: Path, wine: Rows, dbname: str, query: str, code: str
) -> None:
    _load_cellar(tmp_path, wine[:20])
    error = fail(
        {"data": {"logic": {"dbname": dbname, "query": query}}, "target": "target"},
        make_ctx(tmp_path),
    )
    assert error.problems[0].severity == "error"
    assert error.problems[0].code == code, error.problems


def test_logic_query_interrupted(tmp_path: Path, wine: Rows) -> None:
    # A cancel while the Logic query runs stops the query: no training, no artifacts.
    _load_cellar(tmp_path, wine)
    ctx = make_ctx(tmp_path)
    slow = "SELECT * FROM wine WHERE (SELECT sum(i % 7) FROM range(100000000000) t(i)) > 0"
    timer = threading.Timer(0.3, ctx.interrupt)
    timer.start()
    start = time.monotonic()
    result = run({"data": {"logic": {"dbname": "cellar", "query": slow}}, "target": "target"}, ctx)
    timer.join()
    assert time.monotonic() - start < 1.3
    assert result == {"task": "train", "interrupted": True}
    assert ctx.artifacts == [] and events(ctx, "data") == []

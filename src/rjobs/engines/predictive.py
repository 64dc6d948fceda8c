"""The Predictive engine: train, evaluate and apply scikit-learn models on tabular data.

Payload (unknown keys are an error; keys that do not apply to the task are ignored with a
warning problem)::

    {"task": "train" | "evaluate" | "predict",            # default "train"
     "data": {"rows": [{...}, ...]}                        # list of records
           | {"text": "...", "format": "csv" | "json"}     # format defaults to csv
           | {"path": "file", "format": ...}               # under a data root; format from suffix
           | {"logic": {"dbname": ..., "query": ...}},     # a Logic database query
     "target": "column",                                   # required for train/evaluate
     "problem": "classification" | "regression",           # inferred from the target if absent
     "model": {"kind": "gradient_boosting" | "random_forest" | "logistic" | "linear",
               "params": {...}},                           # estimator parameters, checked by name
     "validation": {"test_size": 0.2, "seed": 0, "folds": 5},
     "model_from_job": "job id"}                           # predict only

JSON text is an array of records or newline-delimited records; CSV empty cells are missing values.

**Problem and model.** Without ``problem``, a text or boolean target means classification, and so
does a whole-number target with at most 20 distinct values; any other numeric target means
regression (an info problem ``problem_inferred`` says which and why). ``gradient_boosting`` and
``random_forest`` fit both problems, ``logistic`` (LogisticRegression) only classification,
``linear`` only regression: LinearRegression, or Ridge when a Ridge-only parameter such as
``alpha`` is given. ``random_state`` defaults to the validation seed; ``warm_start`` and
``verbose`` are the engine's own.

**Preprocessing** (fitted on training rows only): rows without a target are dropped (warning);
constant, all-missing and id-like columns (text with every value different; integers with every
value different that are named like ids or number the rows) are dropped; numeric columns are
median-imputed (and standardised for logistic/linear); text columns are one-hot encoded with
missing values as their own category, unseen categories ignored and at most 50 columns per
feature; dates and times become numbers. Each choice is an info problem.

**train** fits on a seeded split (``test_size`` a fraction or a row count; stratified for
classification when every class has two rows) and reports metrics on the held-out rows.
**evaluate** runs ``folds``-fold cross-validation over all rows (stratified when every class has
``folds`` rows, shuffled with ``seed``; ``test_size`` is unused), reports per-fold metrics, their
mean (``metrics``) and standard deviation (``metrics_std``), emits a ``fold`` event per fold, then
refits on all rows for the saved model. **predict** loads ``model.skops`` of ``model_from_job``
and predicts every row; the data needs every feature column of the model (extra columns are
ignored), and when it holds the target column, metrics are computed on the rows that have one.

Metrics: classification accuracy, f1 (of the second class in sorted order when binary, macro
otherwise) and roc_auc (one-vs-rest macro when multiclass; ``None`` when undefined); regression
r2, mae and rmse. Feature importances are per original column (one-hot columns summed),
normalised to sum to 1: impurity importances for trees, absolute coefficients on standardised
inputs for linear models.

Artifacts: ``model.skops`` (train, evaluate) holds a dict with the fitted pipeline and the column
plan; loading trusts only scikit-learn and numpy types. ``predictions.csv`` has ``row`` (the
0-based row of the loaded data), ``fold`` (evaluate), ``actual`` (when known), ``predicted`` and,
for binary classification, ``probability`` of the positive class.

Progress events: ``data`` (rows, columns) once the data is read; gradient boosting ``stage``
(stage, of, train_loss, elapsed_s), at most about 20 a second plus the first and last; random
forest ``batch`` (trees, of, elapsed_s) per warm-start batch of about 0.25 s; ``fold`` (fold, of,
n_train, n_test, metrics) in evaluate, whose stage and batch events also carry ``fold`` (or
``"phase": "final"`` for the refit). When ``ctx.interrupted`` turns true, training stops at the
next stage or batch and ``run`` returns what it has with ``"interrupted": true`` and no artifacts.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from rjobs.engines.base import EngineContext, EngineFailure
from rjobs.engines.predictive_data import (
    ColumnPlan,
    Problem,
    drop_missing_target,
    failure,
    feature_matrix,
    infer_problem,
    load_table,
    plan_columns,
    target_values,
)
from rjobs.engines.predictive_model import (
    KINDS,
    MODEL_FORMAT,
    classification_metrics,
    dump_model,
    feature_importances,
    finite,
    fit_pipeline,
    load_model,
    make_estimator,
    regression_metrics,
)

logger = logging.getLogger(__name__)

TASKS = ("train", "evaluate", "predict")
PROBLEMS = ("classification", "regression")
_KEYS = {"task", "data", "target", "problem", "model", "validation", "model_from_job"}
_TRAIN_ONLY = ("target", "problem", "model", "validation")
_PREDICT_CHUNK = 10_000  # rows per predict call, so a cancel is seen between chunks


@dataclass(frozen=True)
class Request:
    """A validated payload."""

    task: str
    data: object
    target: str | None
    problem: Problem | None
    kind: str
    params: dict[str, Any]
    test_size: float | int
    seed: int
    folds: int
    model_from_job: str | None


@dataclass
class Training:
    """The rows a model is trained on: features, target and where they came from."""

    rows: npt.NDArray[np.int64]
    x: npt.NDArray[Any]
    y: npt.NDArray[Any]
    problem: Problem
    inferred: bool
    classes: list[Any]
    plan: ColumnPlan


class PredictiveEngine:
    """Runs Predictive jobs (see the module docstring for the payload and result)."""

    def run(self, payload: dict[str, Any], ctx: EngineContext) -> dict[str, Any]:
        request = parse_request(payload, ctx)
        logger.info("predictive job %s: %s", ctx.job_id, request.task)
        if request.task == "predict":
            return _predict_task(request, ctx)
        if request.task == "evaluate":
            return _evaluate_task(request, ctx)
        return _train_task(request, ctx)


# ---------------------------------------------------------------------------------------------
# payload


def parse_request(payload: dict[str, Any], ctx: EngineContext) -> Request:
    """Check the payload's shape and values before any data is read."""
    if not isinstance(payload, dict):
        raise failure("invalid_payload", "the payload must be an object")
    unknown = set(payload) - _KEYS
    if unknown:
        raise failure("invalid_payload", f"unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    task = payload.get("task", "train")
    if not isinstance(task, str) or task.lower() not in TASKS:
        raise failure("bad_task", f"task {task!r} is not one of {list(TASKS)}")
    task = task.lower()
    if "data" not in payload:
        raise failure("invalid_payload", "data is required")

    not_applicable = (
        [key for key in _TRAIN_ONLY if key in payload and key != "target"]
        if task == "predict"
        else ["model_from_job"] * ("model_from_job" in payload)
    )
    for key in not_applicable:
        ctx.problem("warning", "ignored_key", f"{key} does not apply to {task} and is ignored")

    target = payload.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        raise failure("invalid_payload", "target must be a column name")
    if task != "predict" and target is None:
        raise failure("missing_target", f"target is required for {task}: name the column to predict")

    problem = payload.get("problem")
    if problem is not None:
        if not isinstance(problem, str) or problem.lower() not in PROBLEMS:
            raise failure("invalid_payload", f"problem must be one of {list(PROBLEMS)}")
        problem = problem.lower()

    model = payload.get("model") or {}
    if not isinstance(model, dict) or set(model) - {"kind", "params"}:
        raise failure("invalid_payload", "model must be an object with kind and params")
    kind = model.get("kind") or "gradient_boosting"
    if not isinstance(kind, str) or kind.lower() not in KINDS:
        raise failure("unknown_model_kind", f"model kind {kind!r} is not one of {list(KINDS)}")
    params = model.get("params") or {}
    if not isinstance(params, dict):
        raise failure("invalid_payload", "model.params must be an object")

    validation = payload.get("validation") or {}
    if not isinstance(validation, dict) or set(validation) - {"test_size", "seed", "folds"}:
        raise failure("invalid_payload", "validation must be an object with test_size, seed, folds")
    test_size = validation.get("test_size", 0.2)
    if isinstance(test_size, bool) or not (
        (isinstance(test_size, float) and 0 < test_size < 1)
        or (isinstance(test_size, int) and test_size >= 1)
    ):
        raise failure(
            "invalid_payload",
            "validation.test_size must be a fraction between 0 and 1 or a row count >= 1",
        )
    seed = validation.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise failure("invalid_payload", "validation.seed must be an integer in [0, 2**32)")
    folds = validation.get("folds", 5)
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise failure("invalid_payload", "validation.folds must be an integer >= 2")

    model_from_job = payload.get("model_from_job")
    if task == "predict" and (not isinstance(model_from_job, str) or not model_from_job):
        raise failure("invalid_payload", "predict needs model_from_job: the id of a training job")

    return Request(
        task=task,
        data=payload["data"],
        target=target,
        problem=problem,
        kind=kind.lower(),
        params=params,
        test_size=test_size,
        seed=seed,
        folds=folds,
        model_from_job=model_from_job if isinstance(model_from_job, str) else None,
    )


# ---------------------------------------------------------------------------------------------
# train and evaluate


def _prepare(request: Request, ctx: EngineContext) -> Training:
    """Read the data, settle the problem, choose the columns and build the model inputs."""
    target = request.target
    assert target is not None
    table = load_table(request.data, ctx)
    ctx.emit("data", rows=table.num_rows, columns=table.num_columns)
    if table.num_rows == 0:
        raise failure("empty_table", "the data has no rows")
    if len(set(table.column_names)) != table.num_columns:
        raise failure("data_error", "the data has duplicate column names")
    if target not in table.column_names:
        raise failure(
            "missing_target",
            f"target column {target!r} is not in the data (columns: {', '.join(table.column_names)})",
        )
    loaded = table.num_rows
    table, rows = drop_missing_target(table, target)
    if table.num_rows == 0:
        raise failure("empty_table", f"no row has a value for the target column {target!r}")
    dropped_rows = loaded - table.num_rows
    if dropped_rows:
        ctx.problem(
            "warning", "rows_dropped", f"{dropped_rows} rows without a {target!r} value dropped"
        )

    column = table.column(target)
    problem = request.problem
    inferred = problem is None
    if problem is None:
        problem, why = infer_problem(column)
        ctx.problem(
            "info",
            "problem_inferred",
            f"problem inferred as {problem} from target {target!r}: {why}; set problem to choose",
        )
    y = target_values(column, problem, target)
    classes: list[Any] = []
    if problem == "classification":
        classes = np.unique(y).tolist()
        if len(classes) < 2:
            raise failure(
                "one_class_target",
                f"target {target!r} has a single class ({classes[0]!r}): classification needs two",
            )

    plan = plan_columns(table, target)
    for note in plan.notes:
        ctx.problem(note.severity, note.code, note.message)
    if not plan.features:
        raise failure("no_features", "no usable feature column is left after preprocessing")
    x = feature_matrix(table, plan.features, plan.kinds)
    return Training(rows, x, y, problem, inferred, classes, plan)

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

**Defaults** (rjobs' own, for small and mid-sized tables; each ``params`` entry overrides one;
``params`` in the result shows what was used). scikit-learn's boosting defaults (100 stages of
depth-3 trees at learning rate 0.1, every row in every stage) overfit small tables, and the right
number of stages differs from one table to the next, so ``gradient_boosting`` uses:

* ``max_depth=2`` and ``min_samples_leaf=10``: shallow trees with leaves of ten rows or more
  (gbm's ``n.minobsinnode``) model main effects and pairwise interactions and do not chase noise;
* ``subsample=0.8``: each stage fits a random 80% of the rows (Friedman's stochastic gradient
  boosting), which lowers variance;
* early stopping: ``n_iter_no_change=20``, ``validation_fraction=0.1``, ``n_estimators=500`` as
  a ceiling, ``learning_rate=0.1``. The fit holds back 10% of its own training rows (stratified
  for classification; never the held-out test rows of ``train`` nor the test fold of
  ``evaluate``) and stops when their loss has not improved for 20 stages; ``n_estimators_fitted``
  says where. When those 10% would be under 10 rows (or a class too small to split), early
  stopping is off and 100 stages are fitted (info problem ``early_stopping_off``). With fewer than
  20 training rows no tree can split; set ``min_samples_leaf`` lower for such toy tables.

``random_forest`` grows 200 trees; for regression each split considers a third of the features
among leaves of at least five rows (Breiman's recommendation, R randomForest's defaults), for
classification scikit-learn's defaults (square root of the features, leaves of one row).

These were chosen without scoring on any held-out test split: 32 boosting candidates (learning
rate 0.05/0.1, depth 2/3, subsample 0.8/1, minimum leaf 1/10, early stopping or a fixed number
of stages) and 4 (classification) or 6 (regression) forest candidates were scored by 5-fold
cross-validation inside the training part of ``train``'s split (seeds 0-9) of the breast
cancer, diabetes and wine data sets, and the best mean scorer kept (for regression forests a
third of the features tied with the square root; a third is Breiman's rule). Held-out results
on those data sets are in tests/engines/test_predictive.py.

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
ignored), and when it holds the target column (``target``, by default the model's), metrics are
computed on the rows that have a value there.

Metrics: classification accuracy, f1 (of the second class in sorted order when binary, macro
otherwise) and roc_auc (one-vs-rest macro when multiclass; ``None`` when undefined); regression
r2, mae and rmse. Feature importances are per original column (one-hot columns summed),
normalised to sum to 1: impurity importances for trees, absolute coefficients on standardised
inputs for linear models.

Result of train and evaluate: ``task``, ``problem``, ``problem_inferred``, ``target``,
``model_kind``, ``estimator`` (class name), ``params`` (as built), ``feature_columns``,
``categorical_columns``, ``dropped_columns`` ({column: why}), ``n_rows``, ``classes``
(classification), ``n_train``, ``n_test`` (in evaluate both are all rows: the refit and the
out-of-fold predictions), ``validation``, ``training_time_s``, ``n_estimators_fitted`` (ensembles),
``metrics``, ``feature_importances`` ({column: share}, largest first), ``positive_class`` (binary)
and ``interrupted``; evaluate adds ``folds`` ([{fold, n_train, n_test, metrics}]) and
``metrics_std``. Result of predict: ``task``, ``model_from_job``, ``problem``, ``target``,
``model_kind``, ``estimator``, ``feature_columns``, ``n_rows``, ``predicted_counts``
(classification) or ``predicted_summary`` (mean, min, max), ``metrics`` and ``n_labelled`` when
actual values are known, ``positive_class`` (binary) and ``interrupted``.

Artifacts: ``model.skops`` (train, evaluate) holds a dict with the fitted pipeline and the column
plan; loading trusts only scikit-learn and numpy types. ``predictions.csv`` has ``row`` (the
0-based row of the loaded data), ``fold`` (evaluate), ``actual`` (when known), ``predicted`` and,
for binary classification, ``probability`` of the positive class.

Progress events: ``data`` (rows, columns) once the data is read; gradient boosting ``stage``
(stage, of: the ``n_estimators`` ceiling, train_loss: the in-bag loss, elapsed_s), at most about
20 a second plus the first and last (early stopping may end before ``of``); random
forest ``batch`` (trees, of, elapsed_s) per warm-start batch of about 0.25 s; ``fold`` (fold, of,
n_train, n_test, metrics) in evaluate, whose stage and batch events also carry ``fold`` (or
``"phase": "final"`` for the refit). When ``ctx.interrupted`` turns true, training stops at the
next stage or batch (evaluate: or fold; predict: between chunks of 10,000 rows; a Logic query
that reads the data stops at once) and ``run`` returns the summary so far with
``"interrupted": true``, no metrics and no artifacts.
"""

from __future__ import annotations

import csv
import io
import logging
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
    DataInterrupted,
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
    default_early_stopping,
    dump_model,
    early_stopping_obstacle,
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
        try:
            if request.task == "predict":
                return _predict_task(request, ctx)
            if request.task == "evaluate":
                return _evaluate_task(request, ctx)
            return _train_task(request, ctx)
        except DataInterrupted:
            logger.info("predictive job %s interrupted while reading its data", ctx.job_id)
            return {"task": request.task, "interrupted": True}


# ---------------------------------------------------------------------------------------------
# payload


def parse_request(payload: dict[str, Any], ctx: EngineContext) -> Request:
    """Check the payload's shape and values before any data is read."""
    if not isinstance(payload, dict):
        raise failure("invalid_payload", "the payload must be an object")
    unknown = set(payload) - _KEYS
    if unknown:
        raise failure(
            "invalid_payload", f"unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}"
        )
    task = payload.get("task", "train")
    if not isinstance(task, str) or task.lower() not in TASKS:
        raise failure("bad_task", f"task {task!r} is not one of {list(TASKS)}")
    task = task.lower()
    if "data" not in payload:
        raise failure("invalid_payload", "data is required")

    ignored: list[str]
    if task == "predict":
        ignored = [key for key in ("problem", "model", "validation") if key in payload]
    else:
        ignored = ["model_from_job"] if "model_from_job" in payload else []
    for key in ignored:
        ctx.problem("warning", "ignored_key", f"{key} does not apply to {task} and is ignored")

    target = payload.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        raise failure("invalid_payload", "target must be a column name")
    if task != "predict" and target is None:
        raise failure(
            "missing_target", f"target is required for {task}: name the column to predict"
        )

    raw_problem = payload.get("problem")
    problem: Problem | None = None
    if raw_problem is not None:
        if not isinstance(raw_problem, str) or raw_problem.lower() not in PROBLEMS:
            raise failure("invalid_payload", f"problem must be one of {list(PROBLEMS)}")
        problem = "classification" if raw_problem.lower() == "classification" else "regression"

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
            f"target column {target!r} is not in the data"
            f" (columns: {', '.join(table.column_names)})",
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


def _summary(
    request: Request, data: Training, estimator: Any, params: dict[str, Any]
) -> dict[str, Any]:
    """The result fields every train and evaluate result has, interrupted or not."""
    summary: dict[str, Any] = {
        "task": request.task,
        "problem": data.problem,
        "problem_inferred": data.inferred,
        "target": request.target,
        "model_kind": request.kind,
        "estimator": type(estimator).__name__,
        "params": params,
        "feature_columns": list(data.plan.features),
        "categorical_columns": data.plan.categorical,
        "dropped_columns": dict(data.plan.dropped),
        "n_rows": len(data.y),
    }
    if data.problem == "classification":
        summary["classes"] = data.classes
    return summary


def _binary(data_classes: Sequence[Any], model_classes: npt.NDArray[Any]) -> bool:
    return len(data_classes) == 2 and len(model_classes) == 2


def _predict_rows(
    pipeline: Pipeline, x: npt.NDArray[Any], problem: Problem
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    predicted = np.asarray(pipeline.predict(x))
    proba = np.asarray(pipeline.predict_proba(x)) if problem == "classification" else None
    return predicted, proba


def _metrics(
    data: Training,
    y_true: npt.NDArray[Any],
    predicted: npt.NDArray[Any],
    proba: npt.NDArray[Any] | None,
    model_classes: npt.NDArray[Any],
) -> tuple[dict[str, float | None], list[str]]:
    if data.problem == "classification":
        return classification_metrics(
            y_true, predicted, proba, model_classes, n_classes=len(data.classes)
        )
    return regression_metrics(y_true.astype(float), predicted.astype(float))


def _report_notes(ctx: EngineContext, notes: Iterable[str]) -> None:
    for note in dict.fromkeys(notes):
        ctx.problem("warning", "metric_undefined", note)


def _stratify_ok(data: Training, needed: int) -> bool:
    """Whether every class has ``needed`` rows, so the split can keep class proportions."""
    if data.problem != "classification":
        return False
    counts = np.unique(data.y, return_counts=True)[1]
    return bool(counts.min() >= needed)


def _model_bundle(
    request: Request, data: Training, pipeline: Pipeline, ctx: EngineContext
) -> dict[str, Any]:
    return {
        "format": MODEL_FORMAT,
        "pipeline": pipeline,
        "problem": data.problem,
        "target": request.target,
        "model_kind": request.kind,
        "estimator": type(pipeline.named_steps["model"]).__name__,
        "features": list(data.plan.features),
        "kinds": dict(data.plan.kinds),
        "classes": list(data.classes),
        "trained_by_job": ctx.job_id,
        "sklearn_version": sklearn.__version__,
    }


def _estimator(
    request: Request, data: Training, targets: list[npt.NDArray[Any]], ctx: EngineContext
) -> tuple[Any, dict[str, Any]]:
    """The estimator for the request; default early stopping is left out when ``targets`` (the
    training rows of each fit) are too few for it, with an info problem saying so."""
    estimator, params = make_estimator(request.kind, data.problem, request.params, request.seed)
    if not default_early_stopping(request.kind, data.problem, request.params):
        return estimator, params
    obstacle = early_stopping_obstacle(targets, data.problem, params.get("validation_fraction"))
    if obstacle is None:
        return estimator, params
    estimator, params = make_estimator(
        request.kind, data.problem, request.params, request.seed, early_stopping=False
    )
    ctx.problem(
        "info",
        "early_stopping_off",
        f"early stopping is off: {obstacle}; {params['n_estimators']} boosting stages are fitted",
    )
    return estimator, params


def _train_task(request: Request, ctx: EngineContext) -> dict[str, Any]:
    data = _prepare(request, ctx)
    # Built here to refuse bad parameters before the split; rebuilt below once the split is known.
    make_estimator(request.kind, data.problem, request.params, request.seed)
    stratified = _stratify_ok(data, 2)
    if data.problem == "classification" and not stratified:
        ctx.problem(
            "warning", "not_stratified", "a class has a single row: the split is not stratified"
        )
    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(data.y)),
            test_size=request.test_size,
            random_state=request.seed,
            stratify=data.y if stratified else None,
        )
    except ValueError as exc:
        raise failure(
            "bad_split",
            f"cannot hold out test_size={request.test_size} of {len(data.y)} rows: {exc}",
        ) from exc
    test_idx = np.sort(test_idx)
    if data.problem == "classification" and len(np.unique(data.y[train_idx])) < 2:
        raise failure("one_class_target", "the training rows of the split hold a single class")
    estimator, params = _estimator(request, data, [data.y[train_idx]], ctx)
    summary = _summary(request, data, estimator, params)
    summary.update(
        n_train=len(train_idx),
        n_test=len(test_idx),
        validation={"test_size": request.test_size, "seed": request.seed, "stratified": stratified},
    )
    if ctx.interrupted:
        return {**summary, "interrupted": True}

    pipeline, outcome = fit_pipeline(
        estimator,
        data.plan.features,
        data.plan.kinds,
        data.x[train_idx],
        data.y[train_idx],
        ctx,
        {},
    )
    summary["training_time_s"] = round(outcome.seconds, 3)
    if outcome.n_estimators is not None:
        summary["n_estimators_fitted"] = outcome.n_estimators
    if outcome.interrupted:
        logger.info("predictive job %s interrupted while training", ctx.job_id)
        return {**summary, "interrupted": True}

    predicted, proba = _predict_rows(pipeline, data.x[test_idx], data.problem)
    model_classes = np.asarray(getattr(pipeline.named_steps["model"], "classes_", []))
    metrics, notes = _metrics(data, data.y[test_idx], predicted, proba, model_classes)
    _report_notes(ctx, notes)
    binary = _binary(data.classes, model_classes)
    columns = ["row", "actual", "predicted", *(["probability"] if binary else [])]
    records = (
        [
            data.rows[i],
            data.y[i],
            predicted[k],
            *([proba[k, 1]] if binary and proba is not None else []),
        ]
        for k, i in enumerate(test_idx)
    )
    ctx.write_artifact("predictions.csv", _csv_bytes(columns, records), "text/csv")
    model_bytes = dump_model(_model_bundle(request, data, pipeline, ctx))
    ctx.write_artifact("model.skops", model_bytes, "application/octet-stream")
    if binary:
        summary["positive_class"] = _plain(model_classes[1])
    return {
        **summary,
        "metrics": metrics,
        "feature_importances": feature_importances(pipeline, data.plan.features, data.plan.kinds),
        "interrupted": False,
    }


def _evaluate_task(request: Request, ctx: EngineContext) -> dict[str, Any]:
    data = _prepare(request, ctx)
    make_estimator(request.kind, data.problem, request.params, request.seed)  # refuse bad params
    n, folds = len(data.y), request.folds
    if folds > n:
        raise failure("bad_split", f"cannot make {folds} folds from {n} rows")
    stratified = _stratify_ok(data, folds)
    if data.problem == "classification" and not stratified:
        ctx.problem(
            "warning",
            "not_stratified",
            f"a class has fewer than {folds} rows: the folds are not stratified",
        )
    splitter = (StratifiedKFold if stratified else KFold)(
        n_splits=folds, shuffle=True, random_state=request.seed
    )
    splits = list(splitter.split(data.x, data.y))
    estimator, params = _estimator(request, data, [data.y[train] for train, _ in splits], ctx)
    summary = _summary(request, data, estimator, params)
    summary.update(
        n_train=n,
        n_test=n,
        validation={"folds": folds, "seed": request.seed, "stratified": stratified},
    )

    predicted_all = np.empty(n, dtype=object)
    probability = np.full(n, np.nan)
    fold_of = np.zeros(n, dtype=int)
    fold_results: list[dict[str, Any]] = []
    notes: list[str] = []
    seconds = 0.0
    binary = False
    seen_warnings: set[str] = set()
    for k, (train_idx, test_idx) in enumerate(splits, start=1):
        if ctx.interrupted:
            return {**summary, "folds": fold_results, "interrupted": True}
        pipeline, outcome = fit_pipeline(
            clone(estimator),
            data.plan.features,
            data.plan.kinds,
            data.x[train_idx],
            data.y[train_idx],
            ctx,
            {"fold": k},
            seen_warnings,
        )
        seconds += outcome.seconds
        if outcome.interrupted:
            summary["training_time_s"] = round(seconds, 3)
            if outcome.n_estimators is not None:
                summary["n_estimators_fitted"] = outcome.n_estimators
            return {**summary, "folds": fold_results, "interrupted": True}
        predicted, proba = _predict_rows(pipeline, data.x[test_idx], data.problem)
        model_classes = np.asarray(getattr(pipeline.named_steps["model"], "classes_", []))
        metrics, fold_notes = _metrics(data, data.y[test_idx], predicted, proba, model_classes)
        notes += fold_notes
        predicted_all[test_idx] = predicted
        fold_of[test_idx] = k
        binary = _binary(data.classes, model_classes)
        if binary and proba is not None:
            probability[test_idx] = proba[:, 1]
        fold_result: dict[str, Any] = {
            "fold": k,
            "n_train": len(train_idx),
            "n_test": len(test_idx),
            "metrics": metrics,
        }
        fold_results.append(fold_result)
        ctx.emit("fold", of=folds, **fold_result)
    _report_notes(ctx, notes)

    # The saved model is refitted on every row; its held-out quality is what the folds measured.
    final, outcome = fit_pipeline(
        clone(estimator),
        data.plan.features,
        data.plan.kinds,
        data.x,
        data.y,
        ctx,
        {"phase": "final"},
        seen_warnings,
    )
    seconds += outcome.seconds
    summary["training_time_s"] = round(seconds, 3)
    if outcome.n_estimators is not None:
        summary["n_estimators_fitted"] = outcome.n_estimators
    if outcome.interrupted:
        return {**summary, "folds": fold_results, "interrupted": True}

    binary = binary and _binary(data.classes, np.asarray(final.named_steps["model"].classes_))
    columns = ["row", "fold", "actual", "predicted", *(["probability"] if binary else [])]
    records = (
        [
            data.rows[i],
            fold_of[i],
            data.y[i],
            predicted_all[i],
            *([probability[i]] if binary else []),
        ]
        for i in range(n)
    )
    ctx.write_artifact("predictions.csv", _csv_bytes(columns, records), "text/csv")
    ctx.write_artifact(
        "model.skops",
        dump_model(_model_bundle(request, data, final, ctx)),
        "application/octet-stream",
    )
    mean, std = _fold_statistics(fold_results)
    if binary:
        summary["positive_class"] = _plain(final.named_steps["model"].classes_[1])
    return {
        **summary,
        "folds": fold_results,
        "metrics": mean,
        "metrics_std": std,
        "feature_importances": feature_importances(final, data.plan.features, data.plan.kinds),
        "interrupted": False,
    }


def _fold_statistics(
    fold_results: list[dict[str, Any]],
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Mean and (population) standard deviation of each metric over the folds that have it."""
    mean: dict[str, float | None] = {}
    std: dict[str, float | None] = {}
    for name in fold_results[0]["metrics"]:
        values = [f["metrics"][name] for f in fold_results if f["metrics"][name] is not None]
        mean[name] = finite(np.mean(values)) if values else None
        std[name] = finite(np.std(values)) if values else None
    return mean, std


# ---------------------------------------------------------------------------------------------
# predict


def _predict_task(request: Request, ctx: EngineContext) -> dict[str, Any]:
    job_id = request.model_from_job
    assert job_id is not None
    try:
        raw = ctx.read_artifact(job_id, "model.skops")
    except EngineFailure:
        raise
    except Exception as exc:  # the store's context has its own not-found errors
        logger.info("predict.model_unreadable", extra={"job_id": job_id, "error": str(exc)})
        raise failure(
            "model_not_found",
            f"job {job_id!r} has no model: model_from_job must name a completed Predictive "
            "train or evaluate job",
        ) from exc
    bundle = load_model(raw)
    features: list[str] = list(bundle["features"])
    kinds = dict(bundle["kinds"])
    problem: Problem = bundle["problem"]
    pipeline: Pipeline = bundle["pipeline"]

    table = load_table(request.data, ctx)
    ctx.emit("data", rows=table.num_rows, columns=table.num_columns)
    if table.num_rows == 0:
        raise failure("empty_table", "the data has no rows")
    missing = [name for name in features if name not in table.column_names]
    if missing:
        raise failure(
            "missing_columns",
            f"the data lacks column(s) the model of job {job_id!r} was trained on:"
            f" {', '.join(missing)}",
        )
    x = feature_matrix(table, features, kinds)
    result: dict[str, Any] = {
        "task": "predict",
        "model_from_job": job_id,
        "problem": problem,
        "target": bundle["target"],
        "model_kind": bundle["model_kind"],
        "estimator": bundle["estimator"],
        "feature_columns": features,
        "n_rows": table.num_rows,
    }

    predicted_parts: list[npt.NDArray[Any]] = []
    proba_parts: list[npt.NDArray[Any]] = []
    try:
        for start in range(0, table.num_rows, _PREDICT_CHUNK):
            if ctx.interrupted:
                return {**result, "interrupted": True}
            predicted, proba = _predict_rows(pipeline, x[start : start + _PREDICT_CHUNK], problem)
            predicted_parts.append(predicted)
            if proba is not None:
                proba_parts.append(proba)
    except (ValueError, TypeError) as exc:
        raise failure("predict_failed", f"prediction failed: {exc}") from exc
    predicted = np.concatenate(predicted_parts)
    model_classes = np.asarray(getattr(pipeline.named_steps["model"], "classes_", []))
    binary = _binary(bundle["classes"], model_classes)
    probability = np.concatenate(proba_parts)[:, 1] if binary else None

    target = request.target or bundle["target"]
    actual: dict[int, Any] = {}
    if target in table.column_names:
        labelled, rows = drop_missing_target(table, target)
        try:
            y = target_values(labelled.column(target), problem, target)
            actual = dict(zip(rows.tolist(), y, strict=True))
            n_classes = len(bundle["classes"])
            if problem == "classification":
                metrics, notes = classification_metrics(
                    y,
                    predicted[rows],
                    np.concatenate(proba_parts)[rows],
                    model_classes,
                    n_classes,
                )
            else:
                metrics, notes = regression_metrics(y, predicted[rows].astype(float))
            _report_notes(ctx, notes)
            result.update(metrics=metrics, n_labelled=len(rows))
        except (ValueError, TypeError) as exc:
            ctx.problem("warning", "metric_undefined", f"no metrics against {target!r}: {exc}")

    columns = ["row", *(["actual"] if actual else []), "predicted"]
    columns += ["probability"] if probability is not None else []
    records = (
        [
            i,
            *([actual.get(i)] if actual else []),
            predicted[i],
            *([probability[i]] if probability is not None else []),
        ]
        for i in range(table.num_rows)
    )
    ctx.write_artifact("predictions.csv", _csv_bytes(columns, records), "text/csv")
    if problem == "classification":
        labels, counts = np.unique(predicted, return_counts=True)
        result["predicted_counts"] = {
            str(_plain(label)): int(count) for label, count in zip(labels, counts, strict=True)
        }
        if binary:
            result["positive_class"] = _plain(model_classes[1])
    else:
        values = predicted.astype(float)
        result["predicted_summary"] = {
            "mean": finite(values.mean()),
            "min": finite(values.min()),
            "max": finite(values.max()),
        }
    return {**result, "interrupted": False}


# ---------------------------------------------------------------------------------------------
# output


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (JSON and CSV friendly)."""
    return value.item() if isinstance(value, np.generic) else value


def _csv_bytes(columns: list[str], records: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow(_csv_cell(value) for value in record)
    return out.getvalue().encode()


def _csv_cell(value: Any) -> Any:
    value = _plain(value)
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return value


__all__ = ["PredictiveEngine", "Request", "parse_request"]

"""Estimators, preprocessing, interruptible training, metrics and model files (Predictive)."""

from __future__ import annotations

import logging
import math
import time
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from rjobs.engines.base import EngineContext
from rjobs.engines.predictive_data import (
    MAX_CATEGORIES,
    MISSING_CATEGORY,
    Kind,
    Problem,
    failure,
)

logger = logging.getLogger(__name__)

KINDS = ("gradient_boosting", "random_forest", "logistic", "linear")
MODEL_FORMAT = "rjobs.predictive/1"

_ESTIMATORS: dict[tuple[str, str], type[Any]] = {
    ("gradient_boosting", "classification"): GradientBoostingClassifier,
    ("gradient_boosting", "regression"): GradientBoostingRegressor,
    ("random_forest", "classification"): RandomForestClassifier,
    ("random_forest", "regression"): RandomForestRegressor,
    ("logistic", "classification"): LogisticRegression,
    ("linear", "regression"): LinearRegression,
}
# Parameters the engine drives itself: warm_start batches the forest, verbose would print.
_MANAGED_PARAMS = frozenset({"warm_start", "verbose"})
_BOOSTING = (GradientBoostingClassifier, GradientBoostingRegressor)
_FOREST = (RandomForestClassifier, RandomForestRegressor)
_ALLOWED_STEPS = (
    ColumnTransformer,
    Pipeline,
    SimpleImputer,
    StandardScaler,
    OneHotEncoder,
    *_ESTIMATORS.values(),
    Ridge,
)
# rjobs' own defaults; the caller's params override them one by one. Why these: see "Defaults" in
# the docstring of rjobs.engines.predictive.
DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("gradient_boosting", "classification"): {
        "n_estimators": 500,  # a ceiling: early stopping decides
        "learning_rate": 0.1,
        "max_depth": 2,
        "min_samples_leaf": 10,
        "subsample": 0.8,
        "n_iter_no_change": 20,
        "validation_fraction": 0.1,
    },
    ("random_forest", "classification"): {"n_estimators": 200},
    ("random_forest", "regression"): {
        "n_estimators": 200,
        "max_features": 1 / 3,
        "min_samples_leaf": 5,
    },
}
DEFAULTS[("gradient_boosting", "regression")] = dict(
    DEFAULTS[("gradient_boosting", "classification")]
)
# Boosting stages when early stopping is off because the rows are too few to hold some back
# (scikit-learn's default number).
STAGES_WITHOUT_EARLY_STOPPING = 100
# Early stopping needs at least this many validation rows to tell improvement from noise.
MIN_VALIDATION_ROWS = 10
# At most this many stage events a second; the monitor still checks for interrupts every stage.
_EVENT_INTERVAL_S = 0.05
# Each warm-start forest batch aims at this duration, which bounds the cancel latency.
_FOREST_BATCH_S = 0.25


def _param_names(cls: type[Any]) -> set[str]:
    return set(cls().get_params(deep=False)) - _MANAGED_PARAMS


def make_estimator(
    kind: str,
    problem: Problem,
    params: dict[str, Any],
    seed: int,
    *,
    early_stopping: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """An unfitted estimator for ``kind`` and ``problem`` with validated ``params``.

    Returns the estimator and the parameters it was built with: the caller's plus the engine's
    defaults (:data:`DEFAULTS`, ``random_state`` = the validation seed, ``max_iter=1000`` for
    logistic). ``early_stopping=False`` leaves boosting's default early stopping out (see
    :func:`early_stopping_obstacle`) and defaults to :data:`STAGES_WITHOUT_EARLY_STOPPING` stages.
    """
    cls = _ESTIMATORS.get((kind, problem))
    if cls is None:
        fitting = [k for k in KINDS if (k, problem) in _ESTIMATORS]
        raise failure(
            "model_problem_mismatch",
            f"model kind {kind!r} does not fit a {problem} problem; use one of {fitting}",
        )
    valid = _param_names(cls)
    ridge_only: set[str] = set()
    if kind == "linear":
        # linear is ordinary least squares unless a Ridge-only parameter (alpha...) asks for Ridge.
        ridge_only = _param_names(Ridge) - valid
        valid |= ridge_only
        if set(params) & ridge_only:
            cls = Ridge
    unknown = sorted(set(params) - valid)
    if unknown:
        raise failure(
            "unknown_param",
            f"unknown model parameter(s) {unknown} for {kind} ({cls.__name__}); valid parameters:"
            f" {', '.join(sorted(valid))}",
        )
    clashing = sorted(set(params) - _param_names(cls))
    if clashing:  # linear: a LinearRegression-only parameter given along with a Ridge one
        raise failure(
            "unknown_param",
            f"model parameter(s) {clashing} do not apply to Ridge, which"
            f" {sorted(set(params) & ridge_only)} select; Ridge takes:"
            f" {', '.join(sorted(_param_names(Ridge)))}",
        )
    effective = dict(params)
    defaults = dict(DEFAULTS.get((kind, problem), {}))
    if not early_stopping and "n_iter_no_change" in defaults:
        del defaults["n_iter_no_change"], defaults["validation_fraction"]
        defaults["n_estimators"] = STAGES_WITHOUT_EARLY_STOPPING
    for name, value in defaults.items():
        effective.setdefault(name, value)
    own = _param_names(cls)
    if "random_state" in own and "random_state" not in params:
        effective["random_state"] = seed
    if cls is LogisticRegression and "max_iter" not in params:
        effective["max_iter"] = 1000  # the default 100 often stops short of convergence
    if cls in _FOREST:
        n_estimators = effective.get("n_estimators", 100)
        if not isinstance(n_estimators, int) or isinstance(n_estimators, bool) or n_estimators < 1:
            raise failure("invalid_param", "model.params.n_estimators must be an integer >= 1")
    try:
        estimator = cls(**effective)
    except TypeError as exc:  # constructors do not validate values, only names
        raise failure("invalid_param", f"invalid model parameters: {exc}") from exc
    return estimator, effective


def default_early_stopping(kind: str, problem: Problem, params: dict[str, Any]) -> bool:
    """Whether the estimator stops early by the engine's default (the caller did not decide)."""
    return "n_iter_no_change" in DEFAULTS.get((kind, problem), {}) and "n_iter_no_change" not in (
        params
    )


def early_stopping_obstacle(
    targets: list[npt.NDArray[Any]], problem: Problem, fraction: object
) -> str | None:
    """Why early stopping cannot hold back ``fraction`` of each training set, or ``None``.

    It needs :data:`MIN_VALIDATION_ROWS` validation rows and, for classification, a stratified
    hold-out: two rows of every class, and at least one row per class on each side.
    """
    if not isinstance(fraction, float) or not 0 < fraction < 1:
        return None  # an invalid validation_fraction is reported by the estimator itself
    for y in targets:
        n = len(y)
        held = math.ceil(fraction * n)
        if held < MIN_VALIDATION_ROWS:
            return (
                f"{n} training rows leave {held} for early stopping's validation"
                f" (at least {MIN_VALIDATION_ROWS} needed)"
            )
        if problem == "classification":
            counts = np.unique(y, return_counts=True)[1]
            if counts.min() < 2 or held < len(counts) or n - held < len(counts):
                return "a class has too few training rows to hold some back for early stopping"
    return None


def needs_scaling(estimator: Any) -> bool:
    """Linear models compare coefficients and converge better on standardised inputs."""
    return isinstance(estimator, LogisticRegression | LinearRegression | Ridge)


def make_preprocessor(
    features: list[str], kinds: dict[str, Kind], scale: bool
) -> ColumnTransformer:
    """Impute (and scale) numeric columns as one block; impute and one-hot each categorical column.

    Each categorical column is its own transformer so that the output columns map back to it
    (for feature importances); the numeric block keeps its columns in order and never drops one.
    """
    numeric = [j for j, name in enumerate(features) if kinds[name] != "categorical"]
    transformers: list[tuple[str, Any, list[int]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
        ]
        if scale:
            steps.append(("scale", StandardScaler()))
        transformers.append(("num", Pipeline(steps), numeric))
    for j, name in enumerate(features):
        if kinds[name] == "categorical":
            encode = Pipeline(
                [
                    (
                        "impute",
                        SimpleImputer(
                            strategy="constant",
                            fill_value=MISSING_CATEGORY,
                            keep_empty_features=True,
                        ),
                    ),
                    (
                        "onehot",
                        OneHotEncoder(
                            handle_unknown="ignore",
                            max_categories=MAX_CATEGORIES,
                            sparse_output=False,
                        ),
                    ),
                ]
            )
            transformers.append((f"cat{j}", encode, [j]))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


# ---------------------------------------------------------------------------------------------
# training


@dataclass
class FitOutcome:
    seconds: float
    interrupted: bool
    n_estimators: int | None = None


@contextmanager
def reporting_warnings(ctx: EngineContext, seen: set[str], limit: int = 5) -> Iterator[None]:
    """Turn warnings raised while fitting (convergence, ...) into warning problems.

    ``seen`` holds the messages already reported by earlier fits of the job (the folds of
    evaluate), so each is reported once and at most ``limit`` in all.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        message = str(item.message)
        if message in seen or len(seen) >= limit:
            continue
        seen.add(message)
        logger.info("training warning: %s", message)
        ctx.problem("warning", "training_warning", f"{item.category.__name__}: {message}")


def fit_pipeline(
    estimator: Any,
    features: list[str],
    kinds: dict[str, Kind],
    x: npt.NDArray[Any],
    y: npt.NDArray[Any],
    ctx: EngineContext,
    extra: dict[str, Any],
    seen_warnings: set[str] | None = None,
) -> tuple[Pipeline, FitOutcome]:
    """Fit preprocessing and ``estimator`` on ``x, y``, with progress events and cancel.

    ``extra`` fields (the fold, in ``evaluate``) are added to every progress event. On interrupt
    the returned outcome says so and the pipeline holds whatever was fitted. Warnings become
    problems, once per message in ``seen_warnings``.
    """
    start = time.perf_counter()
    preprocessor = make_preprocessor(features, kinds, needs_scaling(estimator))
    try:
        with reporting_warnings(ctx, set() if seen_warnings is None else seen_warnings):
            xt = preprocessor.fit_transform(x)
            if isinstance(estimator, _BOOSTING):
                interrupted = _fit_boosting(estimator, xt, y, ctx, extra)
                fitted: int | None = int(estimator.n_estimators_)
            elif isinstance(estimator, _FOREST):
                interrupted, fitted = _fit_forest(estimator, xt, y, ctx, extra)
            else:
                estimator.fit(xt, y)
                interrupted, fitted = ctx.interrupted, None
    except (ValueError, TypeError) as exc:
        # Includes sklearn's InvalidParameterError for a parameter value it refuses.
        code = "invalid_param" if type(exc).__name__ == "InvalidParameterError" else "fit_failed"
        raise failure(code, f"training failed: {exc}") from exc
    outcome = FitOutcome(time.perf_counter() - start, interrupted, fitted)
    pipeline = Pipeline([("prep", preprocessor), ("model", estimator)])
    return pipeline, outcome


def _fit_boosting(
    estimator: Any,
    x: npt.NDArray[Any],
    y: npt.NDArray[Any],
    ctx: EngineContext,
    extra: dict[str, Any],
) -> bool:
    total = estimator.n_estimators  # validated by fit before the first monitor call
    start = time.perf_counter()
    last = {"at": -math.inf, "stage": 0}

    def emit(stage: int, model: Any) -> None:
        loss = float(model.train_score_[stage - 1])
        elapsed = round(time.perf_counter() - start, 3)
        ctx.emit(
            "stage",
            stage=stage,
            of=total,
            train_loss=loss if math.isfinite(loss) else None,
            elapsed_s=elapsed,
            **extra,
        )
        last["at"], last["stage"] = time.monotonic(), stage

    def monitor(i: int, model: Any, _locals: dict[str, Any]) -> bool:
        # Called after every stage; returning True keeps the stages fitted so far and stops.
        if i == 0 or i + 1 == total or time.monotonic() - last["at"] >= _EVENT_INTERVAL_S:
            emit(i + 1, model)
        return ctx.interrupted

    estimator.fit(x, y, monitor=monitor)
    fitted = int(estimator.n_estimators_)
    if last["stage"] != fitted:  # stopped between throttled events (interrupt, n_iter_no_change)
        emit(fitted, estimator)
    return ctx.interrupted


def _fit_forest(
    estimator: Any,
    x: npt.NDArray[Any],
    y: npt.NDArray[Any],
    ctx: EngineContext,
    extra: dict[str, Any],
) -> tuple[bool, int]:
    """Grow the forest in warm-start batches sized to take about ``_FOREST_BATCH_S`` each.

    A fixed ``random_state`` gives the same trees whatever the batch sizes: each fit derives the
    new trees' seeds after skipping those of the trees already grown.
    """
    total = int(estimator.n_estimators)
    estimator.set_params(warm_start=True)
    start = time.perf_counter()
    done, batch = 0, min(total, 4)
    largest = max(1, math.ceil(total / 20))  # at least ~20 progress events on long fits
    while done < total:
        if ctx.interrupted:
            return True, done
        target = min(total, done + batch)
        began = time.perf_counter()
        estimator.set_params(n_estimators=target)
        estimator.fit(x, y)
        per_tree = (time.perf_counter() - began) / (target - done)
        done = target
        ctx.emit(
            "batch",
            trees=done,
            of=total,
            elapsed_s=round(time.perf_counter() - start, 3),
            **extra,
        )
        batch = max(1, min(largest, int(_FOREST_BATCH_S / max(per_tree, 1e-6))))
    # A fitted forest does not need warm_start; leave the saved model as a plain forest.
    estimator.set_params(warm_start=False)
    return ctx.interrupted, done


# ---------------------------------------------------------------------------------------------
# metrics and importances


def finite(value: Any) -> float | None:
    """A JSON-safe float: ``None`` for NaN and infinities."""
    number = float(value)
    return number if math.isfinite(number) else None


def classification_metrics(
    y_true: npt.NDArray[Any],
    y_pred: npt.NDArray[Any],
    proba: npt.NDArray[Any] | None,
    model_classes: npt.NDArray[Any],
    n_classes: int,
) -> tuple[dict[str, float | None], list[str]]:
    """accuracy, f1 (positive = second class if binary, else macro), roc_auc (ovr if multiclass).

    Returns the metrics and notes on those that could not be computed.
    """
    notes: list[str] = []
    metrics: dict[str, float | None] = {"accuracy": finite(accuracy_score(y_true, y_pred))}
    unseen = sorted(set(np.unique(y_true).tolist()) - set(model_classes.tolist()), key=str)
    if unseen:  # predict on data holding classes the model never saw: they all count as errors
        notes.append(f"the actual values hold classes the model was not trained on: {unseen}")
    binary = n_classes == 2 and len(model_classes) == 2 and not unseen
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-defined F1 on a tiny fold is reported as is
        if binary:
            f1 = f1_score(y_true, y_pred, pos_label=model_classes[1], average="binary")
        else:
            f1 = f1_score(y_true, y_pred, average="macro")
    metrics["f1"] = finite(f1)
    metrics["roc_auc"] = None
    if proba is not None:
        try:
            if binary:
                auc = roc_auc_score(y_true == model_classes[1], proba[:, 1])
            else:
                auc = roc_auc_score(y_true, proba, multi_class="ovr", labels=model_classes)
            metrics["roc_auc"] = finite(auc)
        except ValueError as exc:
            notes.append(f"roc_auc is undefined here: {exc}")
    return metrics, notes


def regression_metrics(
    y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]
) -> tuple[dict[str, float | None], list[str]]:
    """r2, mae, rmse."""
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # r2 of fewer than two rows is NaN, reported as None
        r2 = finite(r2_score(y_true, y_pred)) if len(y_true) >= 2 else None
    if r2 is None:
        notes.append("r2 is undefined with fewer than two held-out rows")
    metrics: dict[str, float | None] = {
        "r2": r2,
        "mae": finite(mean_absolute_error(y_true, y_pred)),
        "rmse": finite(math.sqrt(mean_squared_error(y_true, y_pred))),
    }
    return metrics, notes


def feature_importances(
    pipeline: Pipeline, features: list[str], kinds: dict[str, Kind]
) -> dict[str, float]:
    """Importance per original column, summed over its encoded columns, normalised to sum 1.

    Trees use their impurity importances; linear models the absolute coefficients (mean over
    classes) of the standardised inputs. Sorted from most to least important.
    """
    model = pipeline.named_steps["model"]
    if hasattr(model, "feature_importances_"):
        raw = np.asarray(model.feature_importances_, dtype=float)
    elif hasattr(model, "coef_"):
        coef = np.abs(np.asarray(model.coef_, dtype=float))
        raw = coef.mean(axis=0) if coef.ndim == 2 else coef
    else:
        return {}
    preprocessor = pipeline.named_steps["prep"]
    numeric = [name for name in features if kinds[name] != "categorical"]
    totals = dict.fromkeys(features, 0.0)
    for key, span in preprocessor.output_indices_.items():
        part = raw[span]
        if key == "num":
            for name, value in zip(numeric, part, strict=True):
                totals[name] += float(value)
        elif key.startswith("cat"):
            totals[features[int(key[3:])]] += float(part.sum())
    whole = sum(totals.values())
    if whole > 0:
        totals = {name: value / whole for name, value in totals.items()}
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)
    return {name: round(value, 6) for name, value in ranked}


# ---------------------------------------------------------------------------------------------
# model files


def dump_model(bundle: dict[str, Any]) -> bytes:
    """The ``model.skops`` bytes of a bundle (pipeline plus the column plan it expects)."""
    data: bytes = sio.dumps(bundle, compression=zipfile.ZIP_DEFLATED)
    return data


def load_model(data: bytes) -> dict[str, Any]:
    """Load a ``model.skops`` written by :func:`dump_model`, refusing anything else.

    Only scikit-learn and numpy types are trusted (plain containers are trusted by skops itself),
    so a crafted file cannot make loading call arbitrary code; the loaded pipeline must also be
    made of the steps this engine builds.
    """
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises a variety of errors on a file that is not its own
        raise failure("bad_model", f"model.skops cannot be read: {exc}") from exc
    refused = sorted(t for t in untrusted if not t.startswith(("sklearn.", "numpy.")))
    if refused:
        raise failure("untrusted_model", f"model.skops holds types that are not trusted: {refused}")
    try:
        bundle = sio.loads(data, trusted=untrusted)
    except Exception as exc:
        raise failure("bad_model", f"model.skops cannot be loaded: {exc}") from exc
    if not isinstance(bundle, dict) or bundle.get("format") != MODEL_FORMAT:
        raise failure("bad_model", "model.skops was not written by the Predictive engine")
    pipeline = bundle.get("pipeline")
    if not isinstance(pipeline, Pipeline) or not _only_allowed_steps(pipeline):
        raise failure("bad_model", "model.skops holds an unexpected pipeline")
    return bundle


def _only_allowed_steps(step: Any) -> bool:
    if isinstance(step, str):
        return step in {"drop", "passthrough"}
    if not isinstance(step, _ALLOWED_STEPS):
        return False
    if isinstance(step, Pipeline):
        return all(_only_allowed_steps(inner) for _, inner in step.steps)
    if isinstance(step, ColumnTransformer):
        fitted = getattr(step, "transformers_", step.transformers)
        return all(_only_allowed_steps(inner) for _, inner, _ in fitted)
    return True

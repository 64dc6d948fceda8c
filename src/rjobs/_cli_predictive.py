"""``rjobs train`` and ``rjobs predict``: Predictive jobs from a local data file.

Importing this module registers both commands on :data:`rjobs.cli.app` (``rjobs.cli`` imports it
at its end). The data file is read here and sent inline with the payload (CSV and JSON as text,
Parquet converted to CSV text), so the worker needs no data root; ``--path`` sends the path as
given instead, for a file under the worker's data roots.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rjobs._models import Job
from rjobs.cli import (
    EXIT_FAILED,
    JsonOpt,
    _client,
    _exit_code,
    _fail,
    _follow,
    _print_json,
    _run,
    app,
    err,
    out,
)

T = "Predictive"
TASKS = ("train", "evaluate")
PROBLEMS = ("classification", "regression")
KINDS = ("gradient_boosting", "random_forest", "logistic", "linear")
_SUFFIXES = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_TOP_FEATURES = 10

ReasonerOpt = Annotated[str, typer.Option(help="Predictive reasoner name.")]
PathOpt = Annotated[
    bool,
    typer.Option(
        "--path",
        help="Send DATA as a path for the worker to read under its data roots, instead of"
        " reading the file here and sending its contents.",
    ),
]
TimeoutOpt = Annotated[int | None, typer.Option(help="Abort the job after this many minutes.")]
WaitOpt = Annotated[float, typer.Option(help="How long to wait for the result (seconds).")]


# -- payload ------------------------------------------------------------------------------------


def data_spec(data: Path, as_path: bool) -> dict[str, Any]:
    """The payload's ``data`` for a local file (read here) or a path under the data roots."""
    fmt = _SUFFIXES.get(data.suffix.lower())
    if as_path:
        return {"path": str(data)}  # the worker reads it; the engine tells the format by suffix
    if fmt is None:
        _fail(f"cannot tell the format of {data}: use a .csv, .json, .jsonl or .parquet file")
    try:
        if fmt == "parquet":
            return {"text": _parquet_as_csv(data), "format": "csv"}
        return {"text": data.read_text(encoding="utf-8"), "format": fmt}
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {data}: {exc}")


def _parquet_as_csv(data: Path) -> str:
    """A Parquet file as CSV text (the engine infers the same types back, dates included)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(data)
        columns = []
        for column in table.columns:  # categoricals: CSV needs the plain values
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            columns.append(column)
        table = pa.table(columns, names=table.column_names)
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
    except (pa.ArrowException, ValueError) as exc:
        _fail(f"cannot convert {data} to CSV for sending: {exc} (try --path)")
    return buffer.getvalue().decode("utf-8")


def parse_params(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that is JSON (numbers, true, null, ...) is used as such."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            _fail(f"--param takes key=value (e.g. n_estimators=200), got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params[key] = value
    return params


def _choice(value: str | None, allowed: tuple[str, ...], option: str) -> str | None:
    if value is None:
        return None
    if value.lower() not in allowed:
        _fail(f"{option} {value!r} is not one of {', '.join(allowed)}")
    return value.lower()


# -- running ------------------------------------------------------------------------------------


def _submit(
    payload: dict[str, Any], reasoner: str, timeout_mins: int | None, wait_s: float, quiet: bool
) -> Job:
    def go() -> Job:
        with _client() as client:
            op = client.jobs.create(T, reasoner, payload, timeout_mins=timeout_mins)
            if not quiet:
                err.print(f"job [bold]{op.id}[/bold] queued on {T}/{reasoner}")
            _follow(client, T, op.id, wait_s)
            return client.jobs.wait(
                T, op.id, timeout_s=5, include={"details": True, "problems": True}
            )

    job: Job = _run(go)
    return job


def _result(job: Job) -> dict[str, Any]:
    details = getattr(job, "details", None) or {}
    result = details.get("result") or {}
    return result if isinstance(result, dict) else {}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _print_problems(job: Job) -> None:
    problems = getattr(job, "problems", None) or []
    shown = [p for p in problems if p.get("severity") in ("error", "warning")]
    for problem in shown:
        colour = "red" if problem["severity"] == "error" else "yellow"
        out.print(f"[{colour}]{problem['severity']}[/{colour}] {problem['message']}")
    notes = len(problems) - len(shown)
    if notes:
        out.print(f"{notes} info note(s): rjobs jobs get {T} {job.id} --include problems")


def _outcome_rows(table: Table, job: Job) -> None:
    table.add_row("duration", f"{job.duration} ms")
    if job.abort_reason:
        table.add_row("reason", job.abort_reason)


def _show_training(job: Job, title: str) -> None:
    result = _result(job)
    table = Table(title=f"{title}: {job.state}", show_header=False)
    table.add_row("job", job.id)
    for key in ("task", "problem", "estimator", "n_rows", "n_train", "n_test"):
        if key in result:
            table.add_row(key, _number(result[key]))
    if "n_estimators_fitted" in result:
        table.add_row("estimators fitted", _number(result["n_estimators_fitted"]))
    if "training_time_s" in result:
        table.add_row("training time", f"{result['training_time_s']:.3g} s")
    metrics = result.get("metrics") or {}
    spread = result.get("metrics_std") or {}
    for name, value in metrics.items():
        text = _number(value) if value is not None else "undefined"
        if spread.get(name) is not None:
            text += f" ± {spread[name]:.3g}"
        table.add_row(name, text)
    if result.get("interrupted"):
        table.add_row("interrupted", "yes")
    _outcome_rows(table, job)
    out.print(table)
    importances = result.get("feature_importances") or {}
    if importances:
        top = Table("feature", "importance", title=f"top {_TOP_FEATURES} feature importances")
        for name, share in list(importances.items())[:_TOP_FEATURES]:
            top.add_row(name, f"{share:.4f}")
        out.print(top)
    _print_problems(job)
    if job.state == "COMPLETED":
        err.print(f"predict with: rjobs predict DATA --model-from {job.id}")


def _show_prediction(job: Job, title: str) -> None:
    result = _result(job)
    table = Table(title=f"{title}: {job.state}", show_header=False)
    table.add_row("job", job.id)
    for key in ("model_from_job", "problem", "estimator", "n_rows", "n_labelled"):
        if key in result:
            table.add_row(key, _number(result[key]))
    for label, count in (result.get("predicted_counts") or {}).items():
        table.add_row(f"predicted {label}", str(count))
    for key, value in (result.get("predicted_summary") or {}).items():
        table.add_row(f"predicted {key}", _number(value))
    for name, value in (result.get("metrics") or {}).items():
        table.add_row(name, _number(value) if value is not None else "undefined")
    _outcome_rows(table, job)
    out.print(table)
    _print_problems(job)


# -- commands -----------------------------------------------------------------------------------


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="Data file: .csv, .json/.jsonl or .parquet.")],
    target: Annotated[str, typer.Option(help="Column to predict.")],
    problem: Annotated[
        str | None, typer.Option(help="classification or regression (inferred if absent).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="gradient_boosting (default), random_forest, logistic or linear."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Estimator parameter key=value (repeatable)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split and the model.")] = None,
    test_size: Annotated[
        float | None, typer.Option(help="Held-out share (0-1) or row count (train).")
    ] = None,
    folds: Annotated[int | None, typer.Option(help="Cross-validation folds (evaluate).")] = None,
    task: Annotated[str, typer.Option(help="train, or evaluate (cross-validation).")] = "train",
    reasoner: ReasonerOpt = "default",
    path: PathOpt = False,
    timeout_mins: TimeoutOpt = None,
    wait_s: WaitOpt = 3600,
    json_out: JsonOpt = False,
) -> None:
    """Train a model on DATA as a Predictive job, showing progress, then print its metrics."""
    chosen_task = _choice(task, TASKS, "--task")
    payload: dict[str, Any] = {"task": chosen_task, "target": target}
    chosen_problem = _choice(problem, PROBLEMS, "--problem")
    if chosen_problem:
        payload["problem"] = chosen_problem
    spec: dict[str, Any] = {}
    if model is not None:
        spec["kind"] = _choice(model, KINDS, "--model")
    if param:
        spec["params"] = parse_params(param)
    if spec:
        payload["model"] = spec
    validation: dict[str, Any] = {}
    if seed is not None:
        validation["seed"] = seed
    if test_size is not None:
        if test_size <= 0:
            _fail("--test-size must be a fraction between 0 and 1 or a row count >= 1")
        if test_size >= 1 and not test_size.is_integer():
            _fail("--test-size is a fraction between 0 and 1 or a whole number of rows")
        validation["test_size"] = int(test_size) if test_size >= 1 else test_size
    if folds is not None:
        validation["folds"] = folds
    if validation:
        payload["validation"] = validation
    payload["data"] = data_spec(data, path)

    job = _submit(payload, reasoner, timeout_mins, wait_s, json_out)
    if json_out:
        _print_json(job)
    else:
        _show_training(job, data.name)
    raise typer.Exit(_exit_code(job))


@app.command()
def predict(
    data: Annotated[Path, typer.Argument(help="Data file: .csv, .json/.jsonl or .parquet.")],
    model_from: Annotated[
        str, typer.Option("--model-from", help="Id of the job whose model to apply.")
    ],
    target: Annotated[
        str | None, typer.Option(help="Column with actual values to score against.")
    ] = None,
    reasoner: ReasonerOpt = "default",
    path: PathOpt = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write predictions.csv here.")
    ] = None,
    timeout_mins: TimeoutOpt = None,
    wait_s: WaitOpt = 3600,
    json_out: JsonOpt = False,
) -> None:
    """Apply the model of an earlier train job to DATA, then print a summary of the predictions."""
    payload: dict[str, Any] = {
        "task": "predict",
        "model_from_job": model_from,
        "data": data_spec(data, path),
    }
    if target is not None:
        payload["target"] = target
    job = _submit(payload, reasoner, timeout_mins, wait_s, json_out)
    if output is not None and job.state == "COMPLETED":

        def fetch() -> bytes:
            with _client() as client:
                return client.jobs.read_artifact(T, job.id, "predictions.csv")

        content: bytes = _run(fetch)
        try:
            output.write_bytes(content)
        except OSError as exc:
            _fail(f"cannot write {output}: {exc}", EXIT_FAILED)
        err.print(f"wrote {len(content)} bytes to {output}")
    if json_out:
        _print_json(job)
    else:
        _show_prediction(job, data.name)
    raise typer.Exit(_exit_code(job))

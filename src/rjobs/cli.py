"""The ``rjobs`` command line (Typer and Rich).

Exit codes: 0 completed, 1 failed or aborted, 2 usage error, 3 timeout, 4 canceled.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, fields, is_dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

import rjobs
from rjobs._cli_server import register as _register_server_commands
from rjobs._config import redact_url
from rjobs._errors import (
    JobError,
    JobInvalidRequestError,
    JobNotFoundError,
    JobTimeoutError,
)
from rjobs._models import INCLUDE_KEYS, Job, JobIncludeDict

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_CANCELED = 0, 1, 2, 3, 4

app = typer.Typer(
    help="rjobs: run long computations on named pools of workers and follow them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
jobs_app = typer.Typer(help="Create, inspect, follow and cancel jobs.", no_args_is_help=True)
reasoners_app = typer.Typer(help="Manage reasoners (named pools of workers).", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(reasoners_app, name="reasoners")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

out = Console()
err = Console(stderr=True)

_state: dict[str, Any] = {"connection": None}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.callback()
def _main(
    connection: Annotated[
        str | None, typer.Option("--connection", "-c", help="Named connection from rjobs.toml.")
    ] = None,
) -> None:
    _state["connection"] = connection


def _client() -> rjobs.ClientSync:
    try:
        return rjobs.connect_sync(connection_name=_state["connection"])
    except JobError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(value), indent=2, ensure_ascii=False) + "\n")


def _exit_code(job: Job) -> int:
    return {
        "COMPLETED": EXIT_OK,
        "CANCELED": EXIT_CANCELED,
    }.get(job.state, EXIT_FAILED)


def _include(raw: str | None) -> JobIncludeDict | None:
    if not raw:
        return None
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    unknown = [k for k in keys if k not in INCLUDE_KEYS]
    if unknown:
        _fail(f"unknown include {', '.join(unknown)}; allowed: {', '.join(INCLUDE_KEYS)}")
    return {k: True for k in keys}  # type: ignore[return-value]


def _describe_event(event: dict[str, Any]) -> str:
    skip = {"seq", "ts", "type"}
    parts = []
    for key, value in event.items():
        if key in skip:
            continue
        if isinstance(value, float):
            value = f"{value:.6g}"
        parts.append(f"{key}={value}")
    return f"{event.get('type', '')} " + " ".join(parts)


def _bar(percent: float, width: int = 20) -> str:
    filled = int(max(0.0, min(100.0, percent)) / 100 * width)
    return "[" + "#" * filled + "-" * (width - filled) + f"] {percent:5.1f}%"


def _follow(client: rjobs.ClientSync, reasoner_type: str, job_id: str, timeout_s: float) -> Job:
    """Show live state and the latest event until the job is terminal; return the final job."""
    deadline = time.monotonic() + timeout_s
    token = ""
    latest = ""
    spinner = Spinner("dots", text="")
    with Live(spinner, console=err, transient=True, refresh_per_second=10):
        while True:
            page = client.jobs.get_events(reasoner_type, job_id, token)
            if page.events:
                event = page.events[-1]
                percent = event.get("percent")
                latest = (
                    (_bar(float(percent)) if isinstance(percent, int | float) else "")
                    + " "
                    + _describe_event(event)
                )
            if page.continuation_token is not None:
                token = page.continuation_token
            job = client.jobs.get(reasoner_type, job_id)
            if job is None:
                raise JobNotFoundError(f"{reasoner_type} job {job_id!r} not found")
            spinner.update(text=Text(f"{job.state:<9} {job_id} {latest}"[:200]))
            if job.is_terminal:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimeoutError(
                    f"{reasoner_type} job {job_id!r} did not finish within {timeout_s:g} s "
                    f"(last state {job.state})"
                )
            try:
                return client.jobs.wait(
                    reasoner_type, job_id, timeout_s=min(0.25, remaining), poll_interval_s=0.25
                )
            except JobTimeoutError:
                continue


def _job_table(job: Job) -> Table:
    table = Table(show_header=False, box=None)
    for key, value in asdict(job).items():
        if value is None or key in ("events",):
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        if key == "details" and isinstance(value, dict):
            # the payload can be a whole model: show its size; the result is what readers want
            payload = json.dumps(_jsonable(value.get("payload")))
            value = {**value, "payload": f"({len(payload)} bytes; --json shows it)"}
        if isinstance(value, dict | list):
            text = json.dumps(_jsonable(value), indent=1)
            value = text if len(text) <= 4000 else text[:4000] + "\n... (--json shows all)"
        table.add_row(f"[bold]{key}[/bold]", str(value))
    return table


def _run(fn: Any) -> Any:
    try:
        return fn()
    except JobTimeoutError as exc:
        _fail(str(exc), EXIT_TIMEOUT)
    except JobInvalidRequestError as exc:
        _fail(str(exc), EXIT_USAGE)
    except JobError as exc:
        _fail(str(exc), EXIT_FAILED)


# -- solve ---------------------------------------------------------------------------------------

_FORMATS = {".mps": "mps", ".lp": "lp", ".json": "json"}


@app.command()
def solve(
    model: Annotated[Path, typer.Argument(help="Model file: .mps, .lp or .json.")],
    reasoner: Annotated[str, typer.Option(help="Prescriptive reasoner name.")] = "default",
    time_limit_s: Annotated[float | None, typer.Option(help="Solver time limit.")] = None,
    mip_rel_gap: Annotated[float | None, typer.Option(help="Relative MIP gap to stop at.")] = None,
    values: Annotated[str, typer.Option(help="all, nonzero or none.")] = "nonzero",
    timeout_mins: Annotated[int | None, typer.Option(help="Abort the job after this.")] = None,
    wait_s: Annotated[float, typer.Option(help="How long to wait for the result.")] = 3600,
    json_out: JsonOpt = False,
) -> None:
    """Solve an LP/MIP model as a Prescriptive job, showing progress, then print the result."""
    fmt = _FORMATS.get(model.suffix.lower())
    if fmt is None:
        _fail(f"cannot tell the format of {model}: use a .mps, .lp or .json file")
    try:
        text = model.read_text()
    except OSError as exc:
        _fail(f"cannot read {model}: {exc}")
    options: dict[str, Any] = {}
    if time_limit_s is not None:
        options["time_limit_s"] = time_limit_s
    if mip_rel_gap is not None:
        options["mip_rel_gap"] = mip_rel_gap
    payload = {"model": {"format": fmt, "text": text}, "options": options, "values": values}

    def go() -> Job:
        with _client() as client:
            op = client.jobs.create("Prescriptive", reasoner, payload, timeout_mins=timeout_mins)
            if not json_out:
                err.print(f"job [bold]{op.id}[/bold] queued on Prescriptive/{reasoner}")
            _follow(client, "Prescriptive", op.id, wait_s)
            return client.jobs.wait(
                "Prescriptive", op.id, timeout_s=5, include={"details": True, "problems": True}
            )

    job = _run(go)
    details = getattr(job, "details", None) or {}
    result = details.get("result") or {}
    if json_out:
        _print_json(job)
        raise typer.Exit(_exit_code(job))
    table = Table(title=f"{model.name}: {job.state}", show_header=False)
    table.add_row("job", job.id)
    for key in ("status", "objective", "bound", "gap", "solve_time_s"):
        if key in result:
            value = result[key]
            table.add_row(key, f"{value:.10g}" if isinstance(value, float) else str(value))
    table.add_row("duration", f"{job.duration} ms")
    if job.abort_reason:
        table.add_row("reason", job.abort_reason)
    out.print(table)
    _print_problems(job)
    shown = result.get("values") or {}
    if shown:
        out.print(f"{len(shown)} variable values ({values}); first ones:")
        for name, value in list(shown.items())[:10]:
            out.print(
                f"  {name} = {value:.6g}"
                if isinstance(value, float | int)
                else f"  {name} = {value}"
            )
    raise typer.Exit(_exit_code(job))


# -- query ---------------------------------------------------------------------------------------


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """``name=value`` pairs; a value that parses as JSON is used as such, else as a string."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            _fail(f"--input must be NAME=VALUE, got {pair!r}")
        try:
            inputs[name] = json.loads(raw)
        except json.JSONDecodeError:
            inputs[name] = raw
    return inputs


@app.command()
def query(
    dbname: Annotated[str, typer.Argument(help="Logic database name.")],
    sql: Annotated[str | None, typer.Argument(help="SQL statements (or use --file).")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the SQL here.")] = None,
    write: Annotated[bool, typer.Option("--write", help="A write transaction.")] = False,
    input_: Annotated[
        list[str] | None, typer.Option("--input", help="NAME=VALUE bound as $NAME.")
    ] = None,
    reasoner: Annotated[str, typer.Option(help="Logic reasoner name.")] = "default",
    timeout_mins: Annotated[int | None, typer.Option(help="Abort the job after this.")] = None,
    wait_s: Annotated[float, typer.Option(help="How long to wait for the result.")] = 3600,
    json_out: JsonOpt = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print full results as CSV.")] = False,
) -> None:
    """Run SQL as a Logic transaction and print its results (read-only unless --write)."""
    if (sql is None) == (file is None):
        _fail("give the SQL as an argument or with --file, not both")
    if file is not None:
        try:
            sql = file.read_text()
        except OSError as exc:
            _fail(f"cannot read {file}: {exc}")
    payload = {
        "dbname": dbname,
        "query": sql,
        "readonly": not write,
        "inputs": _parse_inputs(input_ or []),
        "language": "sql",
    }

    def go() -> tuple[Job, list[bytes]]:
        with _client() as client:
            op = client.jobs.create("Logic", reasoner, payload, timeout_mins=timeout_mins)
            try:
                _follow(client, "Logic", op.id, wait_s)
            except KeyboardInterrupt:
                client.jobs.cancel("Logic", op.id)
                raise
            job = client.jobs.wait(
                "Logic", op.id, timeout_s=5, include={"details": True, "problems": True}
            )
            result = (getattr(job, "details", None) or {}).get("result") or {}
            csvs = []
            if csv_out and job.state == "COMPLETED":
                for item in result.get("results", []):
                    csvs.append(
                        client.jobs.read_artifact("Logic", op.id, f"{item['artifact']}.csv")
                    )
            return job, csvs

    job, csvs = _run(go)
    result = (getattr(job, "details", None) or {}).get("result") or {}
    if json_out:
        _print_json(job)
    elif csv_out:
        for data in csvs:
            sys.stdout.buffer.write(data)
    else:
        for item in result.get("results", []):
            table = Table(*[f"{c['name']}\n[dim]{c['type']}[/dim]" for c in item["columns"]])
            for row in item["preview"]:
                table.add_row(*["NULL" if v is None else str(v) for v in row])
            out.print(table)
            more = " (first 100 shown; --csv prints all)" if item.get("truncated") else ""
            out.print(f"{item['row_count']} row(s){more}")
        if result.get("rows_changed") is not None:
            out.print(f"{result['rows_changed']} row(s) changed")
        _print_problems(job)
        if job.state != "COMPLETED":
            said = {p["message"] for p in getattr(job, "problems", None) or []}
            reason = "" if job.abort_reason in said else job.abort_reason or ""
            err.print(f"[red]{job.state}[/red] {reason}", highlight=False)
    raise typer.Exit(_exit_code(job))


def _print_problems(job: Job) -> None:
    for problem in getattr(job, "problems", None) or []:
        where = ", ".join(
            f"{key} {problem[key]}" for key in ("statement", "line", "column") if problem.get(key)
        )
        where = f" ({where})" if where and f"({where})" not in problem["message"] else ""
        out.print(
            f"[yellow]{problem['severity']}[/yellow] {problem['message']}{where}", highlight=False
        )


# -- jobs ----------------------------------------------------------------------------------------


def _load_payload(payload: str | None, payload_file: Path | None) -> dict[str, Any]:
    if (payload is None) == (payload_file is None):
        _fail("give exactly one of --payload JSON or --payload-file FILE")
    try:
        text = payload if payload is not None else payload_file.read_text()  # type: ignore[union-attr]
        value = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"cannot read the payload: {exc}")
    if not isinstance(value, dict):
        _fail("the payload must be a JSON object")
    return value


@jobs_app.command("create")
def jobs_create(
    reasoner_type: Annotated[str, typer.Argument(help="Logic, Prescriptive or Predictive.")],
    reasoner_name: Annotated[str, typer.Argument(help="Reasoner name.")],
    payload: Annotated[str | None, typer.Option(help="Payload as JSON.")] = None,
    payload_file: Annotated[Path | None, typer.Option(help="File with the payload JSON.")] = None,
    timeout_mins: Annotated[int | None, typer.Option(help="Abort the job after this.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it ends.")] = False,
    wait_s: Annotated[float, typer.Option(help="How long --wait waits.")] = 3600,
    json_out: JsonOpt = False,
) -> None:
    """Create a job; with --wait, show live progress and exit with the job's outcome."""
    body = _load_payload(payload, payload_file)

    def go() -> Job:
        with _client() as client:
            op = client.jobs.create(reasoner_type, reasoner_name, body, timeout_mins=timeout_mins)
            if wait:
                err.print(f"job [bold]{op.id}[/bold] queued; Ctrl-C stops waiting, not the job")
            else:
                job = client.jobs.get(reasoner_type, op.id)
                assert job is not None
                return job
            return _follow(client, op.reasoner_type, op.id, wait_s)

    job = _run(go)
    if json_out:
        _print_json(job)
    else:
        out.print(_job_table(job))
    raise typer.Exit(_exit_code(job) if wait else EXIT_OK)


@jobs_app.command("get")
def jobs_get(
    reasoner_type: str,
    job_id: str,
    include: Annotated[
        str | None, typer.Option(help="Comma-separated: details,events,artifacts,problems,raw.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one job."""
    wanted = _include(include)

    def go() -> Job | None:
        with _client() as client:
            return client.jobs.get(reasoner_type, job_id, include=wanted)

    job = _run(go)
    if job is None:
        _fail(f"{reasoner_type} job {job_id!r} not found", EXIT_FAILED)
    if json_out:
        _print_json(job)
    else:
        out.print(_job_table(job))


@jobs_app.command("list")
def jobs_list(
    reasoner_type: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    name: Annotated[str | None, typer.Option(help="Only this reasoner name.")] = None,
    created_by: Annotated[str | None, typer.Option(help="Only this creator.")] = None,
    only_active: Annotated[bool, typer.Option("--only-active", help="Active jobs only.")] = False,
    all_users: Annotated[bool, typer.Option("--all-users", help="Everyone's (admin).")] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """List jobs, newest first."""

    def go() -> list[Job]:
        with _client() as client:
            return client.jobs.list(
                reasoner_type,
                state=state,
                name=name,
                created_by=created_by,
                only_active=only_active,
                all_users=all_users,
                limit=limit,
                offset=offset,
            )

    jobs = _run(go)
    if json_out:
        _print_json(jobs)
        return
    table = Table("type", "name", "state", "created_on", "duration", "reason")
    table.add_column("id", no_wrap=True, min_width=26)
    table.columns.insert(0, table.columns.pop())
    for job in jobs:
        table.add_row(
            job.id,
            job.reasoner_type,
            job.name,
            job.state,
            job.created_on.strftime("%Y-%m-%d %H:%M:%S"),
            "" if job.duration is None else f"{job.duration} ms",
            job.abort_reason or "",
        )
    out.print(table)


@jobs_app.command("events")
def jobs_events(
    reasoner_type: str,
    job_id: str,
    stream: Annotated[str, typer.Option(help="progress or log.")] = "progress",
    token: Annotated[str, typer.Option(help="Continuation token to read after.")] = "",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep reading to the end.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Print a job's events (one page, or all of them as they come with --follow)."""
    with _client() as client:
        while True:
            page = _run(
                lambda after=token: client.jobs.get_events(
                    reasoner_type, job_id, after, stream_name=stream
                )
            )
            for event in page.events:
                if json_out:
                    sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
                else:
                    out.print(
                        f"{event['seq']:>6} {event['ts']} {_describe_event(event)}", highlight=False
                    )
            if page.continuation_token is None:
                return
            if not follow:
                if not json_out:
                    err.print(f"continuation token: {page.continuation_token}")
                return
            token = page.continuation_token
            if not page.events:
                time.sleep(0.2)


@jobs_app.command("wait")
def jobs_wait(
    reasoner_type: str,
    job_id: str,
    timeout_s: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 900,
    json_out: JsonOpt = False,
) -> None:
    """Wait for a job to end; the exit code tells how it ended."""

    def go() -> Job:
        with _client() as client:
            return client.jobs.wait(reasoner_type, job_id, timeout_s=timeout_s)

    job = _run(go)
    if json_out:
        _print_json(job)
    else:
        out.print(_job_table(job))
    raise typer.Exit(_exit_code(job))


@jobs_app.command("cancel")
def jobs_cancel(
    reasoner_type: str,
    job_id: str,
    all_users: Annotated[bool, typer.Option("--all-users", help="Admin: another user's.")] = False,
) -> None:
    """Cancel a job (nothing happens if it already ended)."""

    def go() -> None:
        with _client() as client:
            client.jobs.cancel(reasoner_type, job_id, all_users=all_users)

    _run(go)
    err.print(f"cancel requested for {job_id}")


@jobs_app.command("artifact")
def jobs_artifact(
    reasoner_type: str,
    job_id: str,
    name: str,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here.")] = None,
) -> None:
    """Fetch one artifact's bytes (to stdout, or to --output)."""

    def go() -> bytes:
        with _client() as client:
            return client.jobs.read_artifact(reasoner_type, job_id, name)

    data = _run(go)
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        err.print(f"wrote {len(data)} bytes to {output}")


# -- reasoners -----------------------------------------------------------------------------------


def _split_reasoner(spec: str) -> tuple[str, str]:
    reasoner_type, sep, name = spec.partition("/")
    if not sep or not name:
        _fail(f"reasoner must be TYPE/NAME (e.g. Prescriptive/default), got {spec!r}")
    return reasoner_type, name


@reasoners_app.command("list")
def reasoners_list(json_out: JsonOpt = False) -> None:
    """List reasoners."""
    with _client() as client:
        items = _run(client.reasoners.list)
    if json_out:
        _print_json(items)
        return
    table = Table("type", "name", "size", "state", "created_by")
    for r in items:
        table.add_row(r.reasoner_type, r.name, str(r.size), r.state, r.created_by)
    out.print(table)


@reasoners_app.command("create")
def reasoners_create(
    spec: Annotated[str, typer.Argument(help="TYPE/NAME")],
    size: Annotated[int, typer.Option(help="Worker slots.")] = 1,
) -> None:
    """Create a reasoner."""
    reasoner_type, name = _split_reasoner(spec)
    with _client() as client:
        r = _run(lambda: client.reasoners.create(reasoner_type, name, size=size))
    out.print(f"created {r.reasoner_type}/{r.name} (size {r.size})")


def _reasoner_action(spec: str, action: str, done: str) -> None:
    """Run ``client.reasoners.<action>(type, name)`` and say what was done."""
    reasoner_type, name = _split_reasoner(spec)
    with _client() as client:
        _run(lambda: getattr(client.reasoners, action)(reasoner_type, name))
    out.print(f"{done} {reasoner_type}/{name}")


@reasoners_app.command("delete")
def reasoners_delete(spec: Annotated[str, typer.Argument(help="TYPE/NAME")]) -> None:
    """Delete a reasoner without active jobs."""
    _reasoner_action(spec, "delete", "deleted")


@reasoners_app.command("suspend")
def reasoners_suspend(spec: Annotated[str, typer.Argument(help="TYPE/NAME")]) -> None:
    """Stop accepting new jobs."""
    _reasoner_action(spec, "suspend", "suspended")


@reasoners_app.command("resume")
def reasoners_resume(spec: Annotated[str, typer.Argument(help="TYPE/NAME")]) -> None:
    """Accept jobs again."""
    _reasoner_action(spec, "resume", "resumed")


# -- processes and maintenance -------------------------------------------------------------------


def _store_config(store: str | None) -> rjobs.Config:
    try:
        return rjobs.Config.load(_state["connection"]).with_store(store)
    except JobError as exc:
        _fail(str(exc))


@app.command()
def worker(
    reasoner: Annotated[list[str], typer.Option(help="TYPE/NAME to serve (repeatable).")],
    slots: Annotated[int, typer.Option(help="Jobs run at once per reasoner.")] = 1,
    store: Annotated[str | None, typer.Option(help="Database URL (else the config's).")] = None,
    shutdown_grace_s: Annotated[float, typer.Option(help="SIGTERM grace for running jobs.")] = 30,
    heartbeat_s: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 2.0,
    lease_s: Annotated[float, typer.Option(help="A silent worker is lost after this.")] = 10.0,
) -> None:
    """Serve reasoners from a shared store until SIGTERM."""
    from rjobs._logging import configure
    from rjobs._models import normalize_reasoner_type
    from rjobs.store.store import Store
    from rjobs.worker.worker import Worker, WorkerSettings

    configure()
    config = _store_config(store)
    keys = []
    for spec in reasoner:
        reasoner_type, name = _split_reasoner(spec)
        keys.append((_run(lambda t=reasoner_type: normalize_reasoner_type(t)), name))
    if slots < 1:
        _fail("--slots must be at least 1")
    if not 0 < heartbeat_s <= lease_s / 3:
        _fail("--heartbeat-s must be > 0 and at most a third of --lease-s")
    db = Store(config.store_url, artifact_dir=config.artifact_dir)
    settings = WorkerSettings(
        reasoners=keys,
        slots=slots,
        data_dir=config.data_dir,
        data_roots=config.data_roots,
        shutdown_grace_s=shutdown_grace_s,
        heartbeat_s=heartbeat_s,
        lease_s=lease_s,
        detach_grace_s=config.detach_grace_s,
    )
    w = Worker(db, settings)
    w.install_signal_handlers()
    w.run()
    db.close()


@db_app.command("upgrade")
def db_upgrade(
    store: Annotated[str | None, typer.Option(help="Database URL (else the config's).")] = None,
) -> None:
    """Apply the store's migrations."""
    from rjobs.store.store import Store

    config = _store_config(store)
    db = Store(config.store_url, artifact_dir=config.artifact_dir)
    db.upgrade()
    out.print(f"store at revision {db.current_revision()}")
    db.close()


def _parse_age(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        _fail(f"cannot read age {text!r}: use a number and a unit s, m, h or d (e.g. 30d)")
    if not 0 <= seconds < 1e11:  # also refuses nan and inf
        _fail(f"age {text!r} must be zero or more (e.g. 30d)")
    return timedelta(seconds=seconds)


@app.command()
def gc(
    older_than: Annotated[str, typer.Option(help="Age like 30d, 12h.")] = "30d",
    store: Annotated[str | None, typer.Option(help="Database URL (else the config's).")] = None,
) -> None:
    """Delete finished jobs older than the given age, with their events and artifacts."""
    from rjobs.store.store import Store

    age = _parse_age(older_than)
    config = _store_config(store)
    db = Store(config.store_url, artifact_dir=config.artifact_dir)
    db.upgrade()
    removed = db.gc(age)
    db.close()
    out.print(
        f"removed {removed} finished job(s) older than {older_than} "
        f"from {redact_url(config.store_url)}"
    )


@config_app.command("show")
def config_show(json_out: JsonOpt = False) -> None:
    """Print the effective configuration and where each value came from (never the token)."""
    config = _run(lambda: rjobs.Config.load(_state["connection"]))
    rows = {}
    for f in fields(config):
        if f.name == "sources":
            continue
        value = getattr(config, f.name)
        if f.name == "token":
            value = "(set)" if value else None
        elif f.name in ("database_url", "base_url"):
            value = redact_url(value)
        if isinstance(value, tuple):
            value = [str(v) for v in value]
        rows[f.name] = {
            "value": _jsonable(str(value) if isinstance(value, Path) else value),
            "source": config.sources.get(f.name, "default"),
        }
    if json_out:
        _print_json(rows)
        return
    table = Table("key", "value", "source")
    for key, row in rows.items():
        table.add_row(key, str(row["value"]), row["source"])
    out.print(table)


_register_server_commands(app)  # rjobs serve, rjobs tokens create (rjobs._cli_server)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


from rjobs import _cli_predictive  # noqa: E402,F401  (registers train/predict)

if __name__ == "__main__":
    # run the importable module, the one the command modules register on, not this __main__ copy
    from rjobs.cli import main as _entry

    _entry()

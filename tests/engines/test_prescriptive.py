"""The Prescriptive engine on real HiGHS solves of the benchmark instances in tests/data."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rjobs.engines.base import EngineFailure, LocalContext
from rjobs.engines.prescriptive import PrescriptiveEngine

INSTANCES = Path(__file__).parents[1] / "data" / "instances"

# Optimal objectives from tests/data/README.md; markshare1 is too hard and is used for limits.
OPTIMA = {
    "afiro": (-464.75314286, False),
    "adlittle": (225494.96316, False),
    "flugpl": (1201500.0, True),
    "egout": (568.1007, True),
    "lseu": (1120.0, True),
    "bell5": (8966406.49152, True),
    "p0201": (7615.0, True),
}
# gap 0 so the incumbent is the optimum, not just within HiGHS' default 1e-4
EXACT = {"mip_rel_gap": 0, "threads": 1}

SMALL_LP = """\
Maximize
 obj: x + 2 y + 3 z
Subject To
 c1: x + y + z <= 4
 c2: x - y >= -2
Bounds
 x <= 3
General
 z
End
"""

SMALL_MPS = """\
NAME          SMALL
ROWS
 N  obj
 L  c1
 G  c2
COLUMNS
    x         obj       1.0        c1        1.0
    x         c2        1.0
    y         obj       2.0        c1        1.0
RHS
    rhs       c1        4.0        c2        1.0
BOUNDS
 UP bnd       x         3.0
ENDATA
"""


def make_ctx(tmp_path: Path, job_id: str = "job", roots: list[Path] | None = None) -> LocalContext:
    return LocalContext(
        job_id=job_id,
        artifact_dir=tmp_path,
        data_dir=tmp_path,
        data_roots=[INSTANCES] if roots is None else roots,
    )


def solve(tmp_path: Path, payload: dict[str, Any], ctx: LocalContext | None = None) -> Any:
    return PrescriptiveEngine().run(payload, ctx or make_ctx(tmp_path))


def failure(tmp_path: Path, payload: dict[str, Any]) -> EngineFailure:
    with pytest.raises(EngineFailure) as info:
        solve(tmp_path, payload)
    return info.value


def json_model(**model: Any) -> dict[str, Any]:
    return {"model": {"format": "json", "text": model}}


# ---- the benchmark instances ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIMA))
@pytest.mark.parametrize("source", ["path", "text"])
def test_instance_solves_to_its_optimum(tmp_path: Path, name: str, source: str) -> None:
    optimum, is_mip = OPTIMA[name]
    file = INSTANCES / f"{name}.mps"
    model = {"format": "mps", source: file.name if source == "path" else file.read_text()}
    result = solve(tmp_path, {"model": model, "options": EXACT})
    assert result["status"] == "optimal"
    assert result["objective"] == pytest.approx(optimum, rel=1e-6)
    assert result["bound"] == pytest.approx(optimum, rel=1e-6)
    assert result["is_mip"] is is_mip
    assert result["num_variables"] == len(result["values"]) > 0
    assert result["num_constraints"] > 0
    assert result["solve_time_s"] >= 0


def test_format_is_inferred_from_the_path_and_gzip_is_read(tmp_path: Path) -> None:
    (tmp_path / "afiro.mps.gz").write_bytes(gzip.compress((INSTANCES / "afiro.mps").read_bytes()))
    ctx = make_ctx(tmp_path, roots=[tmp_path])
    result = solve(tmp_path, {"model": {"path": "afiro.mps.gz"}}, ctx)
    assert result["objective"] == pytest.approx(-464.75314286, rel=1e-6)


def test_threads_can_change_between_jobs_in_one_process(tmp_path: Path) -> None:
    # HiGHS' scheduler is process-wide: the engine must restart it for a new thread count
    for threads in (2, 1, 2):
        payload = {
            "model": {"format": "mps", "path": "flugpl.mps"},
            "options": {"threads": threads},
        }
        assert solve(tmp_path, payload)["objective"] == pytest.approx(1201500.0)


# ---- LP and JSON models --------------------------------------------------------------------


def test_lp_text_max_with_integer(tmp_path: Path) -> None:
    result = solve(tmp_path, {"model": {"format": "lp", "text": SMALL_LP}})
    assert result["status"] == "optimal"
    assert result["is_mip"] is True
    assert result["objective"] == pytest.approx(12.0)
    assert result["values"] == pytest.approx({"x": 0.0, "y": 0.0, "z": 4.0})


def test_mps_text_with_free_format(tmp_path: Path) -> None:
    result = solve(tmp_path, {"model": {"format": "mps", "text": SMALL_MPS}})
    assert result["status"] == "optimal"
    assert result["objective"] == pytest.approx(1.0)
    assert result["values"] == pytest.approx({"x": 1.0, "y": 0.0})


def test_fixed_format_mps_with_spaces_in_names(tmp_path: Path) -> None:
    text = (
        "NAME          FIXED\n"
        "ROWS\n"
        " N  COST\n"
        " G  MIN ROW\n"
        "COLUMNS\n"
        "    X ONE     COST               1.0   MIN ROW            1.0\n"
        "    Y         COST               2.0   MIN ROW            1.0\n"
        "RHS\n"
        "    RHS       MIN ROW            2.0\n"
        "BOUNDS\n"
        " UP BND       X ONE              1.5\n"
        "ENDATA\n"
    )
    result = solve(tmp_path, {"model": {"format": "mps", "text": text}})
    assert result["objective"] == pytest.approx(2.5)
    assert result["values"] == pytest.approx({"X ONE": 1.5, "Y": 0.5})


def test_json_min_lp(tmp_path: Path) -> None:
    # min 2a + 3b  s.t.  a + b >= 4,  a - b <= 1,  a, b >= 0   ->  a = 2.5, b = 1.5, obj 9.5
    payload = json_model(
        variables=[{"name": "a", "obj": 2}, {"name": "b", "obj": 3}],
        constraints=[
            {"name": "demand", "terms": {"a": 1, "b": 1}, "lb": 4},
            {"name": "balance", "terms": [["a", 1], ["b", -1]], "ub": 1},
        ],
        objective_offset=0.5,
    )
    result = solve(tmp_path, payload)
    assert result["status"] == "optimal"
    assert result["is_mip"] is False
    assert result["objective"] == pytest.approx(10.0)
    assert result["bound"] == pytest.approx(10.0)
    assert result["gap"] == 0
    assert result["values"] == pytest.approx({"a": 2.5, "b": 1.5})
    assert (result["num_variables"], result["num_constraints"]) == (2, 2)


def test_json_max_knapsack_with_binary_and_integer(tmp_path: Path) -> None:
    # weights 5, 4, 3 (binary) and 2 per unit of an integer item (at most 2), capacity 10
    payload = json_model(
        sense="max",
        variables=[
            {"name": "gold", "type": "binary", "obj": 10},
            {"name": "silver", "type": "binary", "obj": 7},
            {"name": "bronze", "type": "binary", "obj": 4},
            {"name": "coins", "type": "integer", "ub": 2, "obj": 2.5},
        ],
        constraints=[
            {
                "name": "capacity",
                "terms": {"gold": 5, "silver": 4, "bronze": 3, "coins": 2},
                "ub": 10,
            }
        ],
    )
    ctx = make_ctx(tmp_path)
    result = solve(tmp_path, payload, ctx)
    assert result["status"] == "optimal"
    assert result["is_mip"] is True
    assert result["objective"] == pytest.approx(17.0)
    assert result["values"] == pytest.approx({"gold": 1, "silver": 1, "bronze": 0, "coins": 0})
    solutions = [e for e in ctx.events["progress"] if e["type"] == "solution"]
    # for a max problem the improving solutions increase, in the model's own sense
    objectives = [e["objective"] for e in solutions]
    assert objectives == sorted(objectives)


def test_json_model_as_text(tmp_path: Path) -> None:
    text = json.dumps({"variables": [{"name": "x", "lb": 1, "obj": 1}]})
    result = solve(tmp_path, {"model": {"format": "json", "text": text}})
    assert result["objective"] == pytest.approx(1.0)
    assert result["num_constraints"] == 0


def test_infeasible_json_model_completes_with_status(tmp_path: Path) -> None:
    payload = json_model(
        variables=[{"name": "x", "ub": 1}],
        constraints=[{"name": "too_much", "terms": {"x": 1}, "lb": 2}],
    )
    ctx = make_ctx(tmp_path)
    result = solve(tmp_path, payload, ctx)
    assert result["status"] == "infeasible"
    assert result["objective"] is None
    assert result["has_solution"] is False
    assert result["values"] == {}
    assert [a.name for a in ctx.artifacts] == ["solution.json"]


def test_contradictory_bounds_are_infeasible_not_invalid(tmp_path: Path) -> None:
    payload = json_model(
        variables=[{"name": "x", "lb": 2, "ub": 1, "obj": 1}, {"name": "y", "type": "integer"}],
        constraints=[{"name": "c", "terms": {"y": 1}, "lb": 3, "ub": 2}],
    )
    assert solve(tmp_path, payload)["status"] == "infeasible"


@pytest.mark.parametrize("kind", ["continuous", "integer"])
def test_unbounded_json_model(tmp_path: Path, kind: str) -> None:
    payload = json_model(
        sense="max",
        variables=[{"name": "x", "type": kind, "obj": 1}, {"name": "y", "obj": 0}],
        constraints=[{"name": "c", "terms": {"x": 1, "y": -1}, "ub": 1}],
    )
    result = solve(tmp_path, payload)
    assert result["status"] == "unbounded"
    assert result["objective"] is None


# ---- values and the artifact ---------------------------------------------------------------


def test_values_nonzero_and_none(tmp_path: Path) -> None:
    model = {"format": "lp", "text": SMALL_LP}
    nonzero = solve(tmp_path, {"model": model, "values": "nonzero"})
    assert nonzero["values"] == pytest.approx({"z": 4.0})
    ctx = make_ctx(tmp_path, job_id="none")
    nothing = solve(tmp_path, {"model": model, "values": "none"}, ctx)
    assert "values" not in nothing
    assert nothing["objective"] == pytest.approx(12.0)
    # the artifact always carries every value
    saved = json.loads((tmp_path / "none" / "solution.json").read_text())
    assert saved["values"] == pytest.approx({"x": 0.0, "y": 0.0, "z": 4.0})


def test_solution_artifact(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, job_id="art")
    result = solve(tmp_path, {"model": {"format": "mps", "path": "afiro.mps"}}, ctx)
    [info] = ctx.artifacts
    assert info.name == "solution.json"
    assert info.content_type == "application/json"
    data = (tmp_path / "art" / "solution.json").read_bytes()
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    saved = json.loads(data)
    assert saved == json.loads(json.dumps(result))
    assert len(saved["values"]) == 32


# ---- events and logs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def p0201_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalContext, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("p0201")
    ctx = make_ctx(tmp, job_id="p0201")
    result = PrescriptiveEngine().run({"model": {"format": "mps", "path": "p0201.mps"}}, ctx)
    return ctx, result


def test_improving_solutions_are_progress_events(
    p0201_run: tuple[LocalContext, dict[str, Any]],
) -> None:
    ctx, result = p0201_run
    events = ctx.events["progress"]
    assert events[0]["type"] == "started"
    assert events[-1]["type"] == "finished"
    assert events[-1]["status"] == "optimal"
    solutions = [e for e in events if e["type"] == "solution"]
    assert len(solutions) >= 1
    assert result["solutions_found"] == len(solutions)
    for event in solutions:
        assert {"objective", "bound", "gap", "elapsed_s"} <= set(event)
    objectives = [e["objective"] for e in solutions]
    assert objectives == sorted(objectives, reverse=True)  # a min problem only improves down
    assert objectives[-1] == pytest.approx(7615.0)
    bounds = [e for e in events if e["type"] == "bound"]
    gaps = [b["elapsed_s"] - a["elapsed_s"] for a, b in itertools.pairwise(bounds)]
    assert all(gap >= 0.45 for gap in gaps)


def test_log_lines_go_to_the_log_stream(p0201_run: tuple[LocalContext, dict[str, Any]]) -> None:
    ctx, _ = p0201_run
    logs = ctx.events["log"]
    assert len(logs) > 5
    assert all(e["type"] == "log" and e["line"].strip() for e in logs)
    assert any("MIP" in e["line"] for e in logs)
    assert not any(e["type"] == "log" for e in ctx.events["progress"])


# ---- limits and interrupts -----------------------------------------------------------------


def test_time_limit_keeps_the_incumbent(tmp_path: Path) -> None:
    payload = {"model": {"format": "mps", "path": "markshare1.mps"}, "options": {"time_limit_s": 1}}
    started = time.monotonic()
    result = solve(tmp_path, payload)
    assert time.monotonic() - started < 5
    assert result["status"] == "time_limit"
    assert result["has_solution"] is True
    assert result["objective"] is not None and result["objective"] >= 1
    assert result["values"]


def test_interrupt_stops_the_solve_with_the_incumbent(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, job_id="cancel")
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["result"] = solve(
            tmp_path, {"model": {"format": "mps", "path": "markshare1.mps"}}, ctx
        )
        outcome["done"] = time.monotonic()

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(1.0)
    interrupted_at = time.monotonic()
    ctx.interrupt()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert outcome["done"] - interrupted_at < 0.5
    result = outcome["result"]
    assert result["status"] == "interrupted"
    assert result["has_solution"] is True
    assert result["objective"] is not None
    assert result["values"]
    assert ctx.events["progress"][-1]["status"] == "interrupted"


def test_interrupted_before_the_solve(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    ctx.interrupt()
    result = solve(tmp_path, {"model": {"format": "mps", "path": "afiro.mps"}}, ctx)
    assert result["status"] == "interrupted"
    assert result["objective"] is None


# ---- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/etc/passwd", "outside the data roots"),
        ("../../../pyproject.toml", "outside the data roots"),
        ("missing.mps", "does not exist"),
        ("", "non-empty string"),
    ],
)
def test_path_outside_the_data_roots_is_rejected(tmp_path: Path, path: str, words: str) -> None:
    error = failure(tmp_path, {"model": {"format": "mps", "path": path}})
    assert words in error.message
    assert error.problems[0].code == "invalid_path"


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({}, 'needs "model"'),
        ({"model": {"format": "mps", "path": "afiro.mps"}, "extra": 1}, "unknown payload keys"),
        ({"model": {"format": "xls", "text": "x"}}, "model.format must be one of"),
        ({"model": {"format": "mps"}}, "exactly one of text or path"),
        ({"model": {"format": "mps", "text": "x", "path": "afiro.mps"}}, "exactly one of"),
        ({"model": {"format": "mps", "text": "  "}}, "non-empty string"),
        ({"model": {"format": "mps", "text": "x", "url": "y"}}, "unknown model keys"),
        ({"model": {"path": "SHA256SUMS.tsv"}}, "model.format must be one of"),
        ({"model": "afiro.mps"}, "model must be an object"),
    ],
)
def test_bad_payloads_are_rejected(tmp_path: Path, payload: dict[str, Any], words: str) -> None:
    error = failure(tmp_path, payload)
    assert words in error.message
    assert error.problems[0].code == "invalid_payload"


@pytest.mark.parametrize("values", ["some", None, 1])
def test_bad_values_mode_is_rejected(tmp_path: Path, values: object) -> None:
    error = failure(tmp_path, {"model": {"format": "lp", "text": SMALL_LP}, "values": values})
    assert "values must be one of ['all', 'nonzero', 'none']" in error.message


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"time_limt_s": 1}, "unknown option 'time_limt_s'"),
        ({"no_such_option": 1}, "not a HiGHS option"),
        ({"log_file": "/tmp/x.log"}, "not allowed"),
        ({"write_solution_to_file": True}, "not allowed"),
        ({"output_flag": False}, "not allowed"),
        ({"time_limit_s": 0}, "time_limit_s must be a number of seconds > 0"),
        ({"time_limit_s": "10"}, "time_limit_s must be a number"),
        ({"mip_rel_gap": -1}, "mip_rel_gap must be a number >= 0"),
        ({"threads": 1.5}, "threads must be an integer >= 0"),
        ({"time_limit_s": 5, "time_limit": 5}, "given twice"),
        ({"presolve": 1}, "must be a string"),
        ({"mip_max_nodes": "many"}, "must be an integer"),
        ({"mip_detect_symmetry": 1}, "must be true or false"),
        ({"simplex_strategy": 99}, "refused by HiGHS"),
        ({"random_seed": None}, "must be a number, boolean or string"),
        ([1], "options must be an object"),
    ],
)
def test_bad_options_are_rejected(tmp_path: Path, options: object, words: str) -> None:
    error = failure(tmp_path, {"model": {"format": "lp", "text": SMALL_LP}, "options": options})
    assert words in error.message
    assert error.problems[0].code == "invalid_option"


def test_other_highs_options_pass_through(tmp_path: Path) -> None:
    options = {"presolve": "off", "random_seed": 7, "mip_detect_symmetry": False, "time_limit": 30}
    result = solve(tmp_path, {"model": {"format": "lp", "text": SMALL_LP}, "options": options})
    assert result["objective"] == pytest.approx(12.0)


# ---- parse errors point at the line --------------------------------------------------------


def break_line(text: str, line: int, old: str, new: str) -> str:
    lines = text.splitlines()
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("line", "old", "new", "words"),
    [
        (7, "1.0", "1.O", "'1.O' is not a number"),  # a letter O in COLUMNS
        (10, "RHS", "RHSS", "'RHSS' is not an MPS section (did you mean RHS?)"),
        (5, "G ", "Q ", "row type 'Q' is not one of N, E, L, G"),
        (9, "c1", "c9", "refers to row 'c9', which is not declared in ROWS"),
        (11, "4.0", "four", "'four' is not a number"),
        (13, "UP", "XX", "bound type 'XX' is not one of"),
        (13, " x ", " z ", "bound on column 'z', which is not declared in COLUMNS"),
        (14, "ENDATA", "", "the file ends without ENDATA"),
    ],
)
def test_broken_mps_names_the_line(
    tmp_path: Path, line: int, old: str, new: str, words: str
) -> None:
    text = break_line(SMALL_MPS, line, old, new)
    error = failure(tmp_path, {"model": {"format": "mps", "text": text}})
    [problem] = error.problems
    assert problem.code == "parse_error"
    assert problem.line == (13 if new == "" else line)
    assert words in problem.message
    assert f"line {problem.line}" in error.message


def test_broken_instance_file_names_the_line(tmp_path: Path) -> None:
    # afiro.mps line 33 is the second COLUMNS line: "X01  R10  -1.06  X05  1."
    text = break_line((INSTANCES / "afiro.mps").read_text(), 33, "-1.06", "-1.0x6")
    error = failure(tmp_path, {"model": {"format": "mps", "text": text}})
    assert error.problems[0].line == 33
    assert "'-1.0x6' is not a number" in error.message


@pytest.mark.parametrize(
    ("line", "old", "new", "column"),
    [
        (4, "<= 4", "<= 4 ++ 3", 21),
        (5, "c2:", "c2", 5),
        (1, "Maximize", "Maxmize", 1),
    ],
)
def test_lp_syntax_error_names_line_and_column(
    tmp_path: Path, line: int, old: str, new: str, column: int
) -> None:
    text = break_line(SMALL_LP, line, old, new)
    error = failure(tmp_path, {"model": {"format": "lp", "text": text}})
    [problem] = error.problems
    assert problem.code == "parse_error"
    assert (problem.line, problem.column) == (line, column)
    assert f"line {line}, column {column}" in problem.message
    assert "rjobs-highs-" not in problem.message  # no temporary file paths in messages


def test_json_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = '{\n  "variables": [\n    {"name": "x",}\n  ]\n}\n'
    error = failure(tmp_path, {"model": {"format": "json", "text": text}})
    assert error.problems[0].code == "parse_error"
    assert error.problems[0].line == 3


@pytest.mark.parametrize(
    ("model", "words"),
    [
        (
            {
                "variables": [{"name": "x"}],
                "constraints": [{"name": "c", "terms": {"y": 1}, "ub": 1}],
            },
            "constraints[0] ('c'): unknown variable 'y'",
        ),
        ({"variables": []}, "variables must be a non-empty list"),
        ({"sense": "maximize", "variables": [{"name": "x"}]}, 'sense must be "min" or "max"'),
        ({"variables": [{"name": "x"}, {"name": "x"}]}, "the name 'x' is used twice"),
        ({"variables": [{"name": "x", "type": "real"}]}, 'type must be "continuous"'),
        ({"variables": [{"name": "x", "type": "binary", "ub": 2}]}, "within [0, 1]"),
        ({"variables": [{"name": "x", "lb": "0"}]}, "lb must be a number or null"),
        ({"variables": [{"name": "x", "cost": 1}]}, "unknown keys ['cost']"),
        ({"variables": [{"obj": 1}]}, "name must be a non-empty string"),
        ({"variables": [{"name": "x"}], "objective": 1}, "unknown JSON model keys"),
        (
            {"variables": [{"name": "x"}], "constraints": [{"terms": {"x": 1}}]},
            "constraints[0] ('c1'): give lb, ub or both",
        ),
        (
            {"variables": [{"name": "x"}], "constraints": [{"terms": [["x"]], "lb": 0}]},
            "each term must be a [variable, coef] pair",
        ),
        (
            {"variables": [{"name": "x"}], "constraints": [{"terms": {"x": "2"}, "lb": 0}]},
            "the coefficient of 'x' must be a finite number",
        ),
    ],
)
def test_invalid_json_models_are_rejected(
    tmp_path: Path, model: dict[str, Any], words: str
) -> None:
    error = failure(tmp_path, json_model(**model))
    assert words in error.message
    assert error.problems[0].code == "invalid_model"

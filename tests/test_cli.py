"""The rjobs command line, run as a user runs it: real processes, real store, real solver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import REPO, kill_supervisor


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    data_dir = tmp_path / "cli-data"
    env = dict(os.environ, RJOBS_DATA_DIR=str(data_dir), RJOBS_IDLE_TIMEOUT_S="30")
    env.pop("RJOBS_CONNECTION", None)
    yield env
    kill_supervisor(data_dir)


def rjobs(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rjobs.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_solve_prints_the_optimum(cli_env: dict[str, str]) -> None:
    done = rjobs(cli_env, "solve", "examples/p0201.mps")
    assert done.returncode == 0, done.stderr
    assert "COMPLETED" in done.stdout
    assert "7615" in done.stdout
    assert "optimal" in done.stdout


def test_solve_json_and_time_limit(cli_env: dict[str, str]) -> None:
    done = rjobs(
        cli_env, "solve", "tests/data/instances/markshare1.mps", "--time-limit-s", "1", "--json"
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["state"] == "COMPLETED"
    assert job["details"]["result"]["status"] == "time_limit"


def test_solve_refuses_unknown_formats_and_missing_files(cli_env: dict[str, str]) -> None:
    done = rjobs(cli_env, "solve", "README.md")
    assert done.returncode == 2 and "format" in done.stderr
    done = rjobs(cli_env, "solve", "missing.mps")
    assert done.returncode == 2 and "cannot read" in done.stderr


def test_unparsable_model_exits_1_and_shows_the_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.mps"
    bad.write_text("NAME bad\nROWS\n N obj\nCOLUMNS\n x obj abc\nENDATA\n")
    done = rjobs(cli_env, "solve", str(bad))
    assert done.returncode == 1
    assert "FAILED" in done.stdout and "line 5" in done.stdout


def test_jobs_commands_with_json(cli_env: dict[str, str]) -> None:
    payload = json.dumps({"probe": {"sleep_s": 0.2, "events": 3}})
    created = rjobs(cli_env, "jobs", "create", "Prescriptive", "default", "--payload", payload,
                    "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    job_id = json.loads(created.stdout)["id"]

    waited = rjobs(cli_env, "jobs", "wait", "Prescriptive", job_id, "--json")
    assert waited.returncode == 0
    assert json.loads(waited.stdout)["state"] == "COMPLETED"

    got = rjobs(cli_env, "jobs", "get", "solver", job_id, "--include", "details", "--json")
    assert json.loads(got.stdout)["details"]["result"]["events"] == 3

    listed = rjobs(cli_env, "jobs", "list", "--json")
    assert [j["id"] for j in json.loads(listed.stdout)] == [job_id]

    events = rjobs(cli_env, "jobs", "events", "Prescriptive", job_id, "--json")
    assert [json.loads(line)["seq"] for line in events.stdout.splitlines()] == [1, 2, 3]

    cancel = rjobs(cli_env, "jobs", "cancel", "Prescriptive", job_id)
    assert cancel.returncode == 0  # idempotent on a finished job


def test_exit_codes_follow_the_outcome(cli_env: dict[str, str]) -> None:
    failing = json.dumps({"probe": {"fail": "boom"}})
    done = rjobs(
        cli_env, "jobs", "create", "Prescriptive", "default", "--payload", failing, "--wait"
    )
    assert done.returncode == 1

    long = json.dumps({"probe": {"sleep_s": 60}})
    created = rjobs(cli_env, "jobs", "create", "Prescriptive", "default", "--payload", long,
                    "--json")  # fmt: skip
    job_id = json.loads(created.stdout)["id"]
    timed_out = rjobs(cli_env, "jobs", "wait", "Prescriptive", job_id, "--timeout-s", "0.5")
    assert timed_out.returncode == 3 and job_id in timed_out.stderr
    rjobs(cli_env, "jobs", "cancel", "Prescriptive", job_id)
    canceled = rjobs(cli_env, "jobs", "wait", "Prescriptive", job_id)
    assert canceled.returncode == 4

    usage = rjobs(cli_env, "jobs", "get", "Quantum", "x")
    assert usage.returncode == 2 and "accepted" in usage.stderr
    missing = rjobs(cli_env, "jobs", "get", "Prescriptive", "nope")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_reasoners_and_config_commands(cli_env: dict[str, str]) -> None:
    assert rjobs(cli_env, "reasoners", "create", "Logic/main", "--size", "3").returncode == 0
    listed = json.loads(rjobs(cli_env, "reasoners", "list", "--json").stdout)
    assert [(r["reasoner_type"], r["name"], r["size"]) for r in listed] == [("Logic", "main", 3)]
    assert rjobs(cli_env, "reasoners", "suspend", "Logic/main").returncode == 0
    refused = rjobs(cli_env, "jobs", "create", "Logic", "main", "--payload", "{}")
    assert refused.returncode == 1 and "not ready" in refused.stderr
    bad = rjobs(cli_env, "reasoners", "create", "nonsense")
    assert bad.returncode == 2 and "TYPE/NAME" in bad.stderr
    shown = json.loads(
        rjobs(dict(cli_env, RJOBS_TOKEN="s3cret"), "config", "show", "--json").stdout
    )
    assert shown["data_dir"]["source"] == "environment RJOBS_DATA_DIR"
    assert shown["token"]["value"] == "(set)"
    assert "s3cret" not in json.dumps(shown)


def test_gc_and_db_upgrade(cli_env: dict[str, str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gc.sqlite3'}"
    up = rjobs(cli_env, "db", "upgrade", "--store", url)
    assert up.returncode == 0 and "0003" in up.stdout
    gc = rjobs(cli_env, "gc", "--older-than", "0s", "--store", url)
    assert gc.returncode == 0 and "removed 0" in gc.stdout
    bad = rjobs(cli_env, "gc", "--older-than", "soon", "--store", url)
    assert bad.returncode == 2


def test_database_commands_refuse_an_http_connection(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, RJOBS_BACKEND="http", RJOBS_BASE_URL="http://127.0.0.1:9")
    for args in (["gc"], ["db", "upgrade"], ["tokens", "create", "carol"],
                 ["worker", "--reasoner", "Prescriptive/default"]):  # fmt: skip
        done = rjobs(env, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "http backend" in done.stderr and "--store" in done.stderr
        assert "Traceback" not in done.stderr


def test_incomplete_backend_settings_are_a_clean_usage_error(cli_env: dict[str, str]) -> None:
    done = rjobs(dict(cli_env, RJOBS_BACKEND="sql"), "reasoners", "list")
    assert done.returncode == 2 and "database_url" in done.stderr
    assert "Traceback" not in done.stderr


def test_gc_refuses_a_negative_age(cli_env: dict[str, str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gc2.sqlite3'}"
    done = rjobs(cli_env, "gc", "--older-than", "-5d", "--store", url)
    assert done.returncode == 2 and "zero or more" in done.stderr

"""``rjobs tokens create``, ``rjobs serve``, configuration of the http backend, the CLI over http,
metrics, and abort-detached transactions whose waiting client is killed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from http_support import HttpEnv, ServerProcess

import rjobs
from rjobs.store.store import Store
from support import REPO

T = "Prescriptive"


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    base = dict(os.environ)
    for key in [k for k in base if k.startswith("RJOBS_")]:
        del base[key]
    return subprocess.run(
        [sys.executable, "-m", "rjobs.cli", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_tokens_create_prints_a_working_token_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    first = run_cli("tokens", "create", "carol", "--store", url)
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip()
    assert len(first.stdout.splitlines()) == 1 and token.startswith("rjt_")
    assert "shown only now" in first.stderr and token not in first.stderr
    admin = run_cli("tokens", "create", "dave", "--admin", "--store", url).stdout.strip()
    again = run_cli("tokens", "create", "carol", "--store", url).stdout.strip()
    assert again != token
    store = Store(url, artifact_dir=tmp_path / "a")
    try:
        assert store.authenticate(token) == ("carol", "user")
        assert store.authenticate(again) == ("carol", "user")
        assert store.authenticate(admin) == ("dave", "admin")
        assert store.authenticate(token + "x") is None
    finally:
        store.close()
    assert token.encode() not in (tmp_path / "s.sqlite3").read_bytes()
    bad = run_cli("tokens", "create", "", "--store", url)
    assert bad.returncode == 2 and "USER" in bad.stderr


def test_serve_refuses_bad_options_and_an_unusable_store(tmp_path: Path) -> None:
    bad = run_cli("serve", "--port", "70000", "--store", f"sqlite:///{tmp_path / 's'}")
    assert bad.returncode == 2 and "--port" in bad.stderr
    nowhere = run_cli("serve", "--store", "mysql://nope/x")
    assert nowhere.returncode == 2 and "cannot open the store" in nowhere.stderr


def test_a_server_with_a_small_body_limit_answers_413(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    store = Store(url, artifact_dir=tmp_path / "artifacts")
    store.upgrade()
    token = store.create_token("erin")
    server = ServerProcess(url, tmp_path, tmp_path / "log", "--max-body-mib", "0.01").start()
    try:
        config = rjobs.Config(backend="http", base_url=server.url, token=token)
        too_big = pytest.raises(rjobs.JobInvalidRequestError, match="over the limit of 10485")
        with rjobs.connect_sync(config=config) as client, too_big:
            client.jobs.create(T, "x", {"blob": "y" * 20_000})
    finally:
        server.stop()
        store.close()


def write_toml(directory: Path, url: str) -> None:
    (directory / "rjobs.toml").write_text(
        'default_connection = "local"\n'
        "[connections.local]\n"
        'backend = "embedded"\n'
        "[connections.team]\n"
        'backend = "http"\n'
        f'base_url = "{url}"\n'
        'token_env = "TEAM_TOKEN"\n'
        "request_timeout_s = 12\n"
        "[connections.direct]\n"
        'backend = "sql"\n'
        'database_url = "postgresql://rjobs:hunter2@127.0.0.1:5432/rjobs"\n'
    )


def test_config_show_tells_each_value_and_its_source_never_a_secret(tmp_path: Path) -> None:
    write_toml(tmp_path, "http://127.0.0.1:9")
    env = {"TEAM_TOKEN": "sekrit-token", "RJOBS_REQUEST_TIMEOUT_S": "7"}
    shown = run_cli("--connection", "team", "config", "show", "--json", env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    toml = str(tmp_path / "rjobs.toml")
    assert rows["backend"] == {"value": "http", "source": f"{toml} [connections.team]"}
    assert rows["base_url"]["source"] == f"{toml} [connections.team]"
    assert rows["token"] == {"value": "(set)", "source": "environment TEAM_TOKEN"}
    assert rows["request_timeout_s"] == {
        "value": 7.0,
        "source": "environment RJOBS_REQUEST_TIMEOUT_S",
    }
    assert rows["connection_name"]["value"] == "team"
    assert rows["connection_name"]["source"].startswith("code")
    assert rows["data_dir"]["source"] == "default"
    assert "sekrit-token" not in shown.stdout

    direct = run_cli("config", "show", "--json", env={"RJOBS_CONNECTION": "direct"}, cwd=tmp_path)
    assert "hunter2" not in direct.stdout
    assert json.loads(direct.stdout)["database_url"]["value"] == (
        "postgresql://rjobs:***@127.0.0.1:5432/rjobs"
    )
    table = run_cli("config", "show", env={"RJOBS_CONNECTION": "direct"}, cwd=tmp_path)
    assert table.returncode == 0 and "hunter2" not in table.stdout
    default = json.loads(run_cli("config", "show", "--json", cwd=tmp_path).stdout)
    assert default["connection_name"] == {
        "value": "local",
        "source": f"{toml} default_connection",
    }
    unknown = run_cli("--connection", "nope", "config", "show", cwd=tmp_path)
    assert unknown.returncode == 2 and "direct, local, team" in unknown.stderr


def test_named_connections_and_token_arguments_reach_the_server(
    http_env: HttpEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_toml(tmp_path, http_env.url)
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("RJOBS_")]:
        monkeypatch.delenv(key)
    token = http_env.token()
    with rjobs.connect_sync(connection_name="team", token=token) as client:
        assert client.config.backend == "http" and client.config.request_timeout_s == 12
        assert client.config.sources["token"] == "code"
        assert client.jobs.list() == []
    monkeypatch.setenv("TEAM_TOKEN", token)
    monkeypatch.setenv("RJOBS_CONNECTION", "team")
    with rjobs.connect_sync() as client:
        assert client.config.token == token and client.jobs.list() == []
    monkeypatch.setenv("TEAM_TOKEN", "not-a-token")
    with rjobs.connect_sync() as client, pytest.raises(rjobs.JobPermissionError):
        client.jobs.list()


def test_the_cli_works_over_the_http_backend(http_env: HttpEnv, tmp_path: Path) -> None:
    write_toml(tmp_path, http_env.url)
    name = f"r-{uuid.uuid4().hex[:8]}"
    with rjobs.connect_sync(config=http_env.config(http_env.admin_token)) as admin:
        admin.reasoners.create(T, name, size=2)
    env = {"TEAM_TOKEN": http_env.token(), "RJOBS_CONNECTION": "team"}
    payload = json.dumps({"probe": {"sleep_s": 0.2, "events": 2}})
    made = run_cli(
        "jobs", "create", T, name, "--payload", payload, "--wait", "--json", env=env, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)
    assert job["state"] == "COMPLETED"
    listed = run_cli("jobs", "list", "--json", env=env, cwd=tmp_path)
    assert [j["id"] for j in json.loads(listed.stdout)] == [job["id"]]
    events = run_cli("jobs", "events", T, job["id"], "--json", env=env, cwd=tmp_path)
    assert [json.loads(line)["seq"] for line in events.stdout.splitlines()] == [1, 2]


def test_metrics_count_jobs_waits_runs_and_workers(http_env: HttpEnv) -> None:
    def scrape() -> dict[str, float]:
        with http_env.raw(http_env.token()) as raw:
            r = raw.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        values = {}
        for line in r.text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                values[key] = float(value)
        return values

    before = scrape()
    name = f"r-{uuid.uuid4().hex[:8]}"
    with rjobs.connect_sync(config=http_env.config(http_env.admin_token)) as admin:
        admin.reasoners.create("Predictive", name, size=2)
        for fail in (None, None, "x"):
            admin.jobs.create("ML", name, {"probe": {"fail": fail}}).wait(timeout_s=60)
    after = scrape()

    def grew(key: str) -> float:
        return after[key] - before.get(key, 0)

    assert grew('rjobs_jobs_created_total{type="Predictive"}') >= 3
    assert grew('rjobs_jobs_finished_total{type="Predictive",state="COMPLETED"}') >= 2
    assert grew('rjobs_jobs_finished_total{type="Predictive",state="FAILED"}') >= 1
    assert grew('rjobs_job_run_seconds_count{type="Predictive"}') >= 3
    assert grew('rjobs_job_queue_wait_seconds_bucket{type="Predictive",le="+Inf"}') >= 3
    assert after["rjobs_workers_online"] >= 1
    assert 'rjobs_jobs_active{type="Logic",state="RUNNING"}' in after
    assert (
        scrape()['rjobs_jobs_created_total{type="Predictive"}']
        == (after['rjobs_jobs_created_total{type="Predictive"}'])
    )  # counted once, however often scraped


CLIENT = """
import sys, rjobs
config = rjobs.Config(backend="http", base_url=sys.argv[1], token=sys.argv[2])
with rjobs.connect_sync(config=config) as client:
    client.jobs.create_ready("Logic", sys.argv[3], {"probe": {"sleep_s": 60}}, timeout_s=120,
                             poll_interval_s=0.2)
"""


def test_a_killed_waiting_client_aborts_its_transaction_over_http(http_env: HttpEnv) -> None:
    token = http_env.token()
    engine = f"e-{uuid.uuid4().hex[:8]}"
    with rjobs.connect_sync(config=http_env.config(http_env.admin_token)) as admin:
        admin.reasoners.create("Logic", engine, size=2)
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, http_env.url, token, engine])
    try:
        with rjobs.connect_sync(config=http_env.config(token)) as client:
            deadline = time.monotonic() + 30
            while not client.jobs.list("Logic", state="RUNNING"):
                assert time.monotonic() < deadline, "the transaction never started"
                assert proc.poll() is None
                time.sleep(0.05)
            txn = client.jobs.list("Logic")[0].id
            time.sleep(2)  # past the worker's 1 s grace, but its client keeps polling
            assert client.jobs.get("Logic", txn).state == "RUNNING"  # type: ignore[union-attr]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with pytest.raises(rjobs.JobClientDisconnectedError, match=re.escape(txn)):
                client.jobs.wait("Logic", txn, timeout_s=30)
    finally:
        if proc.poll() is None:
            proc.kill()

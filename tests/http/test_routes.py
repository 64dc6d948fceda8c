"""Every route of the HTTP API, spoken to in raw HTTP: shapes, status codes and error bodies."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from http_support import HttpEnv

from rjobs._wire import JOB_KEYS, TXN_KEYS
from support import INSTANCES

ERROR_KEYS = {"message", "code"}
REASONER_KEYS = {"type", "name", "size", "state", "settings", "created_by", "created_on"}


@pytest.fixture
def user(http_env: HttpEnv) -> Iterator[httpx.Client]:
    with http_env.raw(http_env.token()) as client:
        yield client


@pytest.fixture
def admin(http_env: HttpEnv) -> Iterator[httpx.Client]:
    with http_env.raw(http_env.admin_token) as client:
        yield client


def reasoner(admin: httpx.Client, rtype: str = "SOLVER", size: int = 2) -> str:
    name = f"r-{uuid.uuid4().hex[:10]}"
    r = admin.post("/v1alpha1/reasoners", json={"type": rtype, "name": name, "size": size})
    assert r.status_code == 200, r.text
    return name


def probe(**spec: Any) -> str:
    return json.dumps({"probe": spec})


def create(client: httpx.Client, name: str, payload: str, job_type: str = "SOLVER") -> str:
    body = {"job_type": job_type, "worker_name": name, "payload": payload}
    r = client.post("/v1alpha1/jobs", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def wait_job(client: httpx.Client, path: str, key: str = "job") -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = client.get(path, params={"wait_s": 5})
        assert r.status_code == 200, r.text
        obj: dict[str, Any] = r.json()[key]
        if obj["state"] in ("COMPLETED", "FAILED", "CANCELED", "ABORTED"):
            return obj
        assert time.monotonic() < deadline


def assert_error(r: httpx.Response, status: int, code: str, text: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == ERROR_KEYS and body["code"] == code
    assert text in body["message"], body["message"]


# -- service routes ------------------------------------------------------------------------------


def test_healthz_needs_no_token_and_everything_else_does(http_env: HttpEnv) -> None:
    with http_env.raw() as anon:
        r = anon.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        for method, path in [
            ("GET", "/openapi.json"),
            ("GET", "/metrics"),
            ("GET", "/v1alpha1/jobs"),
            ("POST", "/v1alpha1/jobs"),
            ("GET", "/v1alpha1/transactions/x"),
            ("GET", "/v1alpha1/reasoners"),
            ("GET", "/no/such/route"),
        ]:
            r = anon.request(method, path)
            assert_error(r, 401, "unauthenticated", "Bearer")
            assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer", "Bearer " + "x" * 600, "token"],
)
def test_a_wrong_or_malformed_token_is_401(http_env: HttpEnv, header: str) -> None:
    with httpx.Client(base_url=http_env.url, headers={"Authorization": header}) as client:
        assert_error(client.get("/v1alpha1/jobs"), 401, "unauthenticated")


def test_openapi_documents_every_route_and_its_errors(user: httpx.Client) -> None:
    r = user.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    for path, method in [
        ("/v1alpha1/jobs", "post"),
        ("/v1alpha1/jobs", "get"),
        ("/v1alpha1/jobs/{type}/{id}", "get"),
        ("/v1alpha1/jobs/{type}/{id}/events/{stream}", "get"),
        ("/v1alpha1/jobs/{type}/{id}/cancel", "post"),
        ("/v1alpha1/transactions", "post"),
        ("/v1alpha1/transactions", "get"),
        ("/v1alpha1/transactions/{id}", "get"),
        ("/v1alpha1/transactions/{id}/events/{stream}", "get"),
        ("/v1alpha1/transactions/{id}/artifacts", "get"),
        ("/v1alpha1/transactions/{id}/artifacts/{filename}", "get"),
        ("/v1alpha1/transactions/{id}/problems", "get"),
        ("/v1alpha1/transactions/{id}/cancel_async", "post"),
        ("/v1alpha1/reasoners", "get"),
        ("/v1alpha1/reasoners", "post"),
        ("/v1alpha1/reasoners/{type}/{name}", "get"),
        ("/v1alpha1/reasoners/{type}/{name}", "delete"),
        ("/v1alpha1/reasoners/{type}/{name}/suspend", "post"),
        ("/v1alpha1/reasoners/{type}/{name}/resume", "post"),
        ("/healthz", "get"),
        ("/metrics", "get"),
    ]:
        operation = paths[path][method]
        assert "422" not in operation["responses"]
        if path != "/healthz":
            assert {"200", "400", "401", "404"} <= set(operation["responses"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert paths["/healthz"]["get"]["security"] == []


def test_unknown_routes_and_methods_answer_json(user: httpx.Client) -> None:
    assert_error(user.get("/v1alpha1/nothing"), 404, "not_found", "no route")
    assert_error(user.delete("/v1alpha1/jobs"), 405, "method_not_allowed", "DELETE")
    assert_error(
        user.put("/v1alpha1/jobs/SOLVER/x/cancel", content=b"{}"), 405, "method_not_allowed"
    )


# -- jobs ----------------------------------------------------------------------------------------


def test_create_answers_the_id_and_the_job_reads_back_in_the_documented_shape(
    user: httpx.Client, admin: httpx.Client
) -> None:
    name = reasoner(admin)
    body = {"job_type": "SOLVER", "worker_name": name, "payload": probe(), "timeout_mins": 5}
    r = user.post("/v1alpha1/jobs", json=body)
    assert r.status_code == 200 and set(r.json()) == {"id"}
    job_id = r.json()["id"]

    r = user.get(f"/v1alpha1/jobs/SOLVER/{job_id}")
    assert r.status_code == 200 and set(r.json()) == {"job"}
    job = r.json()["job"]
    assert set(job) == set(JOB_KEYS)
    assert job["id"] == job_id and job["type"] == "SOLVER" and job["worker_name"] == name
    assert json.loads(job["payload"]) == {"probe": {}}
    assert job["timeout_ms"] == 5 * 60_000
    assert job["created_on"].endswith("+00:00")

    done = wait_job(user, f"/v1alpha1/jobs/Prescriptive/{job_id}")  # public labels work too
    assert set(done) == set(JOB_KEYS) and done["state"] == "COMPLETED"
    assert done["finished_at"].endswith("+00:00") and isinstance(done["duration"], int)


def test_existing_clients_sending_json_as_form_encoded_are_understood(
    user: httpx.Client, admin: httpx.Client
) -> None:
    name = reasoner(admin, "ML")
    body = json.dumps({"job_type": "ML", "worker_name": name, "payload": probe()})
    r = user.post(
        "/v1alpha1/jobs",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text


def test_prefer_representation_returns_the_created_job(
    user: httpx.Client, admin: httpx.Client
) -> None:
    name = reasoner(admin)
    body = {"job_type": "SOLVER", "worker_name": name, "payload": probe()}
    r = user.post("/v1alpha1/jobs", json=body, headers={"Prefer": "return=representation"})
    assert r.status_code == 200 and set(r.json()) == {"id", "job"}
    assert r.json()["job"]["id"] == r.json()["id"]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"", "body is empty"),
        (b"not json", "invalid request body"),
        (b"[1, 2]", "invalid request body"),
        ({"worker_name": "x", "payload": "{}"}, "job_type"),
        ({"job_type": "SOLVER", "worker_name": "x", "payload": "[1]"}, "JSON text of an object"),
        ({"job_type": "SOLVER", "worker_name": "x", "payload": "{nope"}, "not valid JSON"),
        ({"job_type": "SOLVER", "worker_name": "x", "payload": {"a": 1}}, "payload"),
        ({"job_type": "SOLVER", "worker_name": "x", "payload": '{"x": NaN}'}, "payload"),
        ({"job_type": "QUANTUM", "worker_name": "x", "payload": "{}"}, "accepted"),
        ({"job_type": "SOLVER", "worker_name": "a/b", "payload": "{}"}, "reasoner_name"),
        ({"job_type": "SOLVER", "worker_name": "\ud800", "payload": "{}"}, "invalid"),
        ({"job_type": "SOLVER", "worker_name": "x", "payload": "{}", "timeout_mins": 0}, "timeout"),
        ({"job_type": "SOLVER", "worker_name": "x", "payload": "{}", "timeout_mins": "5"}, "int"),
        (
            {"job_type": "SOLVER", "worker_name": "x", "payload": "{}", "timeout_mins": 10**12},
            "time",
        ),
        ({"job_type": "SOLVER", "worker_name": "no-such-reasoner", "payload": "{}"}, "not exist"),
    ],
)
def test_bad_create_bodies_are_400_with_a_message(user: httpx.Client, body: Any, text: str) -> None:
    if isinstance(body, bytes):
        r = user.post("/v1alpha1/jobs", content=body)
    else:
        r = user.post(
            "/v1alpha1/jobs",
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
    assert_error(r, 400, "invalid_request", text)


def test_created_by_comes_from_the_token_never_from_the_body(
    http_env: HttpEnv, admin: httpx.Client
) -> None:
    name = reasoner(admin)
    with http_env.raw(http_env.token("honest-user")) as client:
        body = {"job_type": "SOLVER", "worker_name": name, "payload": probe(), "created_by": "ceo"}
        job_id = client.post("/v1alpha1/jobs", json=body).json()["id"]
        assert client.get(f"/v1alpha1/jobs/SOLVER/{job_id}").json()["job"]["created_by"] == (
            "honest-user"
        )


def test_a_suspended_reasoner_answers_503_not_ready(
    user: httpx.Client, admin: httpx.Client
) -> None:
    name = reasoner(admin, "ML")
    r = admin.post(f"/v1alpha1/reasoners/ML/{name}/suspend")
    assert r.status_code == 200 and r.json()["reasoner"]["state"] == "SUSPENDED"
    body = {"job_type": "ML", "worker_name": name, "payload": probe()}
    assert_error(
        user.post("/v1alpha1/jobs", json=body), 503, "not_ready", "not ready to accept jobs"
    )


def test_list_filters_and_pages_on_the_server(user: httpx.Client, admin: httpx.Client) -> None:
    name = reasoner(admin)
    ml = reasoner(admin, "ML")
    logic = reasoner(admin, "LOGIC")
    ids = [create(user, name, probe()), create(user, ml, probe(), "ML")]
    ids.append(create(user, logic, probe(), "LOGIC"))
    ids.append(create(user, name, probe(sleep_s=30)))
    wait_job(user, f"/v1alpha1/jobs/SOLVER/{ids[0]}")
    wait_job(user, f"/v1alpha1/jobs/ML/{ids[1]}")
    wait_job(user, f"/v1alpha1/jobs/LOGIC/{ids[2]}")

    def listed(**params: Any) -> list[str]:
        r = user.get("/v1alpha1/jobs", params=params)
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"jobs"}
        return [j["id"] for j in r.json()["jobs"]]

    assert listed() == [ids[3], ids[1], ids[0]]  # Prescriptive and Predictive by default
    assert listed(type="SOLVER,ML,LOGIC") == list(reversed(ids))
    assert listed(type=["SOLVER", "LOGIC"]) == [ids[3], ids[2], ids[0]]
    assert listed(type="ML") == [ids[1]]
    assert listed(name=name) == [ids[3], ids[0]]
    assert listed(state="completed") == [ids[1], ids[0]]
    assert listed(only_active="true") == [ids[3]]
    assert listed(limit=1) == [ids[3]]
    assert listed(limit=1, offset=1) == [ids[1]]
    assert listed(job_id=ids[0]) == [ids[0]]
    jobs = user.get("/v1alpha1/jobs", params={"type": "LOGIC"}).json()["jobs"]
    assert set(jobs[0]) == {*JOB_KEYS, "database_name", "read_only"}
    assert all(set(j) == set(JOB_KEYS) for j in user.get("/v1alpha1/jobs").json()["jobs"])
    detailed = user.get("/v1alpha1/jobs", params={"include": "details,problems"}).json()["jobs"]
    assert all({"details", "problems"} <= set(j) for j in detailed)
    assert detailed[0]["details"]["payload"] == {"probe": {"sleep_s": 30}}

    assert_error(user.get("/v1alpha1/jobs", params={"limit": 1001}), 400, "invalid_request", "1000")
    assert_error(user.get("/v1alpha1/jobs", params={"offset": -1}), 400, "invalid_request")
    assert_error(
        user.get("/v1alpha1/jobs", params={"state": "DONE"}), 400, "invalid_request", "states"
    )
    assert_error(user.get("/v1alpha1/jobs", params={"type": "X"}), 400, "invalid_request")
    assert_error(user.get("/v1alpha1/jobs", params={"include": "all"}), 400, "invalid_request")
    assert_error(
        user.get("/v1alpha1/jobs", params={"only_active": "maybe"}), 400, "invalid_request"
    )
    user.post(f"/v1alpha1/jobs/SOLVER/{ids[3]}/cancel")


def test_get_long_polls_until_the_job_is_terminal(user: httpx.Client, admin: httpx.Client) -> None:
    name = reasoner(admin)
    job_id = create(user, name, probe(sleep_s=0.5))
    start = time.monotonic()
    r = user.get(f"/v1alpha1/jobs/SOLVER/{job_id}", params={"wait_s": 20})
    assert r.status_code == 200 and r.json()["job"]["state"] == "COMPLETED"
    assert time.monotonic() - start < 10  # answered at the transition, not after 20 s
    start = time.monotonic()
    r = user.get(f"/v1alpha1/jobs/SOLVER/{job_id}", params={"wait_s": 20})
    assert r.status_code == 200 and time.monotonic() - start < 1  # terminal: at once
    running = create(user, name, probe(sleep_s=30))
    start = time.monotonic()
    r = user.get(f"/v1alpha1/jobs/SOLVER/{running}", params={"wait_s": 0.5})
    assert r.status_code == 200 and r.json()["job"]["state"] in ("PENDING", "RUNNING")
    assert 0.5 <= time.monotonic() - start < 5
    assert_error(user.get("/v1alpha1/jobs/SOLVER/nope", params={"wait_s": 20}), 404, "not_found")
    for bad in ("-1", "nan", "inf", "soon"):
        r = user.get(f"/v1alpha1/jobs/SOLVER/{running}", params={"wait_s": bad})
        assert_error(r, 400, "invalid_request", "wait_s")
    user.post(f"/v1alpha1/jobs/SOLVER/{running}/cancel")


def test_events_page_and_long_poll_for_new_events(user: httpx.Client, admin: httpx.Client) -> None:
    name = reasoner(admin)
    job_id = create(user, name, probe(sleep_s=1.0, events=2))
    path = f"/v1alpha1/jobs/SOLVER/{job_id}/events/progress"
    events: list[dict[str, Any]] = []
    token = ""
    for _ in range(50):
        r = user.get(path, params={"continuation_token": token, "wait_s": 10})
        assert r.status_code == 200 and set(r.json()) == {"events", "continuation_token"}
        events.extend(r.json()["events"])
        if r.json()["continuation_token"] is None:
            break
        token = r.json()["continuation_token"]
    assert [e["seq"] for e in events] == [1, 2]
    assert {"seq", "ts", "type"} <= set(events[0])
    r = user.get(f"/v1alpha1/jobs/SOLVER/{job_id}/events/log")
    assert r.json() == {"events": [], "continuation_token": None}
    assert_error(user.get(f"/v1alpha1/jobs/SOLVER/{job_id}/events/debug"), 400, "invalid_request")
    r = user.get(path, params={"continuation_token": "garbage!"})
    assert_error(r, 400, "invalid_request", "continuation token")
    assert_error(user.get("/v1alpha1/jobs/SOLVER/nope/events/progress"), 404, "not_found")


def test_cancel_answers_the_job_and_refuses_all_users_off_logic(
    user: httpx.Client, admin: httpx.Client
) -> None:
    name = reasoner(admin, size=1)
    blocker = create(user, name, probe(sleep_s=30))
    queued = create(user, name, probe(sleep_s=30))
    r = user.post(f"/v1alpha1/jobs/SOLVER/{queued}/cancel")
    assert r.status_code == 200 and set(r.json()) == {"job"}
    assert r.json()["job"]["state"] == "CANCELED"
    assert r.json()["job"]["abort_reason"].startswith("canceled by ")
    r = user.post(f"/v1alpha1/jobs/SOLVER/{blocker}/cancel", params={"all_users": "true"})
    assert_error(r, 400, "invalid_request", "only for Logic")
    assert user.post(f"/v1alpha1/jobs/SOLVER/{blocker}/cancel").status_code == 200
    assert wait_job(user, f"/v1alpha1/jobs/SOLVER/{blocker}")["state"] == "CANCELED"
    assert_error(user.post("/v1alpha1/jobs/SOLVER/nope/cancel"), 404, "not_found")


def test_artifacts_and_problems_of_prescriptive_jobs(
    user: httpx.Client, admin: httpx.Client
) -> None:
    name = reasoner(admin)
    model = (INSTANCES / "afiro.mps").read_text()
    job_id = create(user, name, json.dumps({"model": {"format": "mps", "text": model}}))
    assert wait_job(user, f"/v1alpha1/jobs/SOLVER/{job_id}")["state"] == "COMPLETED"
    r = user.get(f"/v1alpha1/jobs/SOLVER/{job_id}/artifacts")
    assert r.status_code == 200 and set(r.json()) == {"results"}
    info = next(a for a in r.json()["results"] if a["filename"] == "solution.json")
    assert set(info) == {"filename", "content_type", "size", "sha256"}
    r = user.get(f"/v1alpha1/jobs/SOLVER/{job_id}/artifacts/solution.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith(info["content_type"])
    assert len(r.content) == info["size"]
    assert hashlib.sha256(r.content).hexdigest() == info["sha256"]
    for bad in ("nope.txt", "..%2F..%2Fstore.sqlite3", "%2E%2E", "solution.json%00"):
        r = user.get(f"/v1alpha1/jobs/SOLVER/{job_id}/artifacts/{bad}")
        assert r.status_code in (400, 404), (bad, r.text)
    r = user.get(f"/v1alpha1/jobs/SOLVER/{job_id}/problems")
    assert r.status_code == 200 and r.json() == {"problems": []}

    failed = create(user, name, probe(fail="bad input"))
    wait_job(user, f"/v1alpha1/jobs/SOLVER/{failed}")
    problems = user.get(f"/v1alpha1/jobs/SOLVER/{failed}/problems").json()["problems"]
    assert problems[0]["message"] == "bad input" and problems[0]["severity"] == "error"


# -- transactions --------------------------------------------------------------------------------


def test_transactions_with_the_direct_access_fields(
    user: httpx.Client, admin: httpx.Client
) -> None:
    engine = reasoner(admin, "LOGIC")
    db = f"db_{uuid.uuid4().hex[:8]}"
    body = {
        "dbname": db,
        "query": "create table t as select 42 as answer; select * from t",
        "engine_name": engine,
        "readonly": False,
        "inputs": {},
        "language": "sql",
    }
    r = user.post("/v1alpha1/transactions", json=body)
    assert r.status_code == 200 and set(r.json()) == {"transaction"}
    txn = r.json()["transaction"]
    assert set(txn) == set(TXN_KEYS)
    assert (txn["database_name"], txn["engine_name"], txn["read_only"]) == (db, engine, False)
    done = wait_job(user, f"/v1alpha1/transactions/{txn['id']}", "transaction")
    assert done["state"] == "COMPLETED", done
    assert set(done) == set(TXN_KEYS) and isinstance(done["duration"], int)

    full = user.get(f"/v1alpha1/transactions/{txn['id']}", params={"include": "details"}).json()
    stored = full["transaction"]["details"]["payload"]
    assert stored == {k: body[k] for k in ("dbname", "query", "readonly", "inputs", "language")}

    read = {
        "dbname": db,
        "query": "select answer + $x as v from t",
        "engine_name": engine,
        "readonly": True,
        "v1_inputs": [{"name": "x", "value": 1}],
        "language": "sql",
    }
    txn2 = user.post("/v1alpha1/transactions", json=read).json()["transaction"]
    assert wait_job(user, f"/v1alpha1/transactions/{txn2['id']}", "transaction")["state"] == (
        "COMPLETED"
    )
    results = user.get(f"/v1alpha1/transactions/{txn2['id']}/artifacts").json()["results"]
    csv = next(a for a in results if a["filename"].endswith(".csv"))
    data = user.get(f"/v1alpha1/transactions/{txn2['id']}/artifacts/{csv['filename']}")
    assert data.status_code == 200 and data.text.replace('"', "").split() == ["v", "43"]
    r = user.get(f"/v1alpha1/transactions/{txn2['id']}/problems")
    assert r.status_code == 200 and r.json() == {"problems": []}
    r = user.get(f"/v1alpha1/transactions/{txn2['id']}/events/progress")
    assert r.status_code == 200 and r.json()["events"] and r.json()["continuation_token"] is None

    listed = user.get("/v1alpha1/transactions", params={"engine_name": engine}).json()
    assert [t["id"] for t in listed["transactions"]] == [txn2["id"], txn["id"]]
    assert all(set(t) == set(TXN_KEYS) for t in listed["transactions"])


def test_bad_transactions_and_problems_are_reported(
    user: httpx.Client, admin: httpx.Client
) -> None:
    engine = reasoner(admin, "LOGIC")
    for body, text in [
        ({"engine_name": engine, "query": "select 1"}, "dbname and query"),
        ({"engine_name": engine, "dbname": "d", "query": "q", "payload": "{}"}, "not both"),
        (
            {"engine_name": engine, "dbname": "d", "query": "q", "inputs": {}, "v1_inputs": {}},
            "not both",
        ),
        (
            {"engine_name": engine, "dbname": "d", "query": "q", "v1_inputs": [{"x": 1}]},
            "v1_inputs",
        ),
        ({"engine_name": engine, "dbname": "d", "query": "q", "readonly": "yes"}, "readonly"),
        ({"engine_name": engine, "payload": '{"dbname": 5, "query": "q"}'}, "dbname must be"),
        ({"engine_name": engine, "dbname": "a\u0000b", "query": "q"}, "NUL"),
    ]:
        assert_error(user.post("/v1alpha1/transactions", json=body), 400, "invalid_request", text)

    body = {"engine_name": engine, "dbname": "missing_db", "query": "select * from t"}
    txn = user.post("/v1alpha1/transactions", json=body).json()["transaction"]
    done = wait_job(user, f"/v1alpha1/transactions/{txn['id']}", "transaction")
    assert done["state"] == "FAILED"
    problems = user.get(f"/v1alpha1/transactions/{txn['id']}/problems").json()["problems"]
    assert problems and {"severity", "code", "message"} <= set(problems[0])


def test_cancel_async_of_a_running_transaction(user: httpx.Client, admin: httpx.Client) -> None:
    engine = reasoner(admin, "LOGIC")
    body = {"engine_name": engine, "payload": probe(sleep_s=30)}
    txn = user.post("/v1alpha1/transactions", json=body).json()["transaction"]
    r = user.post(f"/v1alpha1/transactions/{txn['id']}/cancel_async")
    assert r.status_code == 200 and set(r.json()) == {"transaction"}
    done = wait_job(user, f"/v1alpha1/transactions/{txn['id']}", "transaction")
    assert done["state"] == "CANCELED"
    assert_error(user.post("/v1alpha1/transactions/nope/cancel_async"), 404, "not_found")
    assert_error(user.get("/v1alpha1/transactions/nope"), 404, "not_found")


# -- reasoners -----------------------------------------------------------------------------------


def test_reasoner_routes_and_admin_only_changes(user: httpx.Client, admin: httpx.Client) -> None:
    name = f"r-{uuid.uuid4().hex[:8]}"
    body = {"type": "Predictive", "name": name, "size": 3, "settings": {"a": 1}}
    assert_error(user.post("/v1alpha1/reasoners", json=body), 403, "forbidden", "admin")
    r = admin.post("/v1alpha1/reasoners", json=body)
    assert r.status_code == 200 and set(r.json()["reasoner"]) == REASONER_KEYS
    assert r.json()["reasoner"]["type"] == "ML" and r.json()["reasoner"]["created_by"] == "root"
    assert_error(admin.post("/v1alpha1/reasoners", json=body), 400, "invalid_request", "exists")
    bad = {**body, "name": name + "2", "size": 0}
    assert_error(admin.post("/v1alpha1/reasoners", json=bad), 400, "invalid_request", "size")

    listed = user.get("/v1alpha1/reasoners", params={"type": "ML"}).json()["reasoners"]
    assert name in [x["name"] for x in listed] and all(x["type"] == "ML" for x in listed)
    r = user.get(f"/v1alpha1/reasoners/ML/{name}")
    assert r.status_code == 200 and r.json()["reasoner"]["size"] == 3
    assert_error(user.get("/v1alpha1/reasoners/ML/none-such"), 404, "not_found")
    assert_error(user.post(f"/v1alpha1/reasoners/ML/{name}/suspend"), 403, "forbidden")
    assert admin.post(f"/v1alpha1/reasoners/ML/{name}/suspend").json()["reasoner"]["state"] == (
        "SUSPENDED"
    )
    assert admin.post(f"/v1alpha1/reasoners/ML/{name}/resume").json()["reasoner"]["state"] == (
        "READY"
    )
    assert_error(user.delete(f"/v1alpha1/reasoners/ML/{name}"), 403, "forbidden")
    assert admin.delete(f"/v1alpha1/reasoners/ML/{name}").json() == {"deleted": True}
    assert_error(admin.delete(f"/v1alpha1/reasoners/ML/{name}"), 404, "not_found")


# -- limits and odd input ------------------------------------------------------------------------


def test_bodies_over_16_mib_are_413_and_under_it_accepted(
    user: httpx.Client, admin: httpx.Client
) -> None:
    name = reasoner(admin)
    limit = 16 * 1024 * 1024
    big = json.dumps({"probe": {}, "blob": "x" * (limit - 1000)})
    body = json.dumps({"job_type": "SOLVER", "worker_name": name, "payload": big})
    r = user.post("/v1alpha1/jobs", content=body.encode() + b" " * (limit + 1 - len(body)))
    assert_error(r, 413, "payload_too_large", str(limit))

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(17):
            yield b" " * (1024 * 1024)

    assert_error(user.post("/v1alpha1/jobs", content=chunks()), 413, "payload_too_large")
    ok = json.dumps({"probe": {}, "blob": "x" * (4 * 1024 * 1024)})
    r = user.post("/v1alpha1/jobs", json={"job_type": "SOLVER", "worker_name": name, "payload": ok})
    assert r.status_code == 200, r.text


ODD = [
    "a/b",
    "x y",
    "..",
    ".",
    "é",
    "日本🙂",
    "%",
    "%zz",
    "a%2Fb",
    "?",
    "#",
    "\\",
    "~",
    "+",
    "a" * 300,
]


@pytest.mark.parametrize("odd", ODD)
def test_odd_ids_in_paths_are_never_a_5xx(user: httpx.Client, odd: str) -> None:
    segment = quote(odd, safe="").replace(".", "%2E")
    for method, path in [
        ("GET", f"/v1alpha1/jobs/SOLVER/{segment}"),
        ("GET", f"/v1alpha1/jobs/SOLVER/{segment}/events/progress"),
        ("POST", f"/v1alpha1/jobs/SOLVER/{segment}/cancel"),
        ("GET", f"/v1alpha1/jobs/SOLVER/{segment}/artifacts"),
        ("GET", f"/v1alpha1/transactions/{segment}"),
        ("POST", f"/v1alpha1/transactions/{segment}/cancel_async"),
        ("GET", f"/v1alpha1/transactions/{segment}/artifacts/{segment}"),
        ("GET", f"/v1alpha1/jobs/{segment}/x"),
        ("GET", f"/v1alpha1/reasoners/SOLVER/{segment}"),
    ]:
        r = user.request(method, path)
        assert r.status_code in (400, 404), (method, path, r.status_code, r.text)
        assert set(r.json()) == ERROR_KEYS


def test_bytes_that_are_no_utf8_and_nul_characters_are_refused(user: httpx.Client) -> None:
    for path in (
        "/v1alpha1/jobs/SOLVER/%FF%FE",
        "/v1alpha1/jobs?name=a%00b",
        "/v1alpha1/jobs/SOLVER/x/events/progress?continuation_token=%00",
        "/v1alpha1/reasoners/SOLVER/a%00b",
        "/v1alpha1/jobs/SOLVER/a%00b",  # no job id holds NUL: refused, like other filters
        "/v1alpha1/transactions/%00/problems",
    ):
        assert_error(user.get(path), 400, "invalid_request")

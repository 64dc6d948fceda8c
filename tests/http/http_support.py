"""Helpers of the HTTP tests: a real ``rjobs serve`` process, worker threads, the suite's facade."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx

import rjobs
from rjobs.store.store import Store
from support import REPO

SERVER_START_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``rjobs serve`` as a child process on a free loopback port."""

    def __init__(self, store_url: str, data_dir: Path, log: Path, *extra: str) -> None:
        self.store_url = store_url
        self.data_dir = data_dir
        self.log = log
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> ServerProcess:
        env = dict(os.environ, RJOBS_DATA_DIR=str(self.data_dir), RJOBS_LOG_LEVEL="WARNING")
        env.pop("RJOBS_CONNECTION", None)
        for _ in range(3):  # another process may take the free port before the server binds it
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--store", self.store_url]
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "rjobs.cli",
                        *args,
                        "--log-level",
                        "warning",
                        *self.extra,
                    ],
                    env=env,
                    cwd=REPO,
                    stdout=log,
                    stderr=log,
                )
            if self._ready():
                return self
            self.stop()
        raise RuntimeError(f"rjobs serve did not start; see {self.log}")

    def _ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # e.g. the port was taken in between
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class HttpEnv:
    """The session's server, its store and a worker serving every reasoner of the store."""

    server: ServerProcess
    store: Store
    data_dir: Path
    admin_token: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def token(self, user: str | None = None, *, admin: bool = False) -> str:
        """A token of a new user (or of ``user``, created on first use)."""
        user = user or f"u-{uuid.uuid4().hex[:10]}"
        if user not in self.tokens:
            self.tokens[user] = self.store.create_token(user, admin=admin)
        return self.tokens[user]

    def config(self, token: str | None) -> rjobs.Config:
        return rjobs.Config(backend="http", base_url=self.url, token=token, request_timeout_s=10)

    def raw(self, token: str | None = None) -> httpx.Client:
        """A plain HTTP client on the server (with a bearer token when given)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


# -- one test, every backend and flavour -----------------------------------------------------


class _AsyncOp:
    """A ``JobOperation`` driven from sync test code, with the sync handle's method names."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, op: rjobs.JobOperation) -> None:
        self._portal = portal
        self._op = op
        self.id = op.id
        self.metadata = op.metadata
        self.reasoner_type = op.reasoner_type

    def wait(self, *args: Any, **kwargs: Any) -> rjobs.Job:
        return self._portal.call(functools.partial(self._op.wait, *args, **kwargs))

    def status(self) -> rjobs.Operation:
        return self._portal.call(self._op.status)

    def is_done(self) -> bool:
        return self._portal.call(self._op.is_done)

    def result(self, *args: Any, **kwargs: Any) -> rjobs.Job:
        return self._portal.call(functools.partial(self._op.result, *args, **kwargs))

    def awaited(self) -> rjobs.Job:
        """``await op``: the handle is awaitable."""

        async def go() -> rjobs.Job:
            return await self._op

        return self._portal.call(go)


class _AsyncFacade:
    """Calls each coroutine method of an async client part through the portal."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, target: Any) -> None:
        self._portal = portal
        self._target = target

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = self._portal.call(functools.partial(method, *args, **kwargs))
            if isinstance(result, rjobs.JobOperation):
                return _AsyncOp(self._portal, result)
            return result

        return call


@dataclass
class Api:
    """What a suite test uses: ``jobs`` and ``reasoners`` of one backend and flavour."""

    backend: str
    flavour: str
    jobs: Any
    reasoners: Any
    admin_reasoners: Any
    user: str
    gateway_create: Callable[[Any], rjobs.Job]

    def reasoner(self, reasoner_type: str, size: int = 2) -> str:
        """A new reasoner with a unique name (created with admin rights where needed)."""
        name = f"r-{uuid.uuid4().hex[:10]}"
        self.admin_reasoners.create(reasoner_type, name, size=size)
        return name

    @property
    def multi_user(self) -> bool:
        return self.backend == "http"

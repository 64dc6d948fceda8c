"""Configuration: code, ``rjobs.toml`` named connections, and environment overrides.

Precedence, lowest first: built-in defaults, the file (``./rjobs.toml``, else the user's config
directory), then ``RJOBS_*`` environment variables, then arguments given in code.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rjobs._errors import JobInvalidRequestError

Backend = Literal["embedded", "sql", "http"]
BACKENDS: tuple[str, ...] = ("embedded", "sql", "http")

_ENV = {
    "RJOBS_BACKEND": "backend",
    "RJOBS_DATA_DIR": "data_dir",
    "RJOBS_DATABASE_URL": "database_url",
    "RJOBS_BASE_URL": "base_url",
    "RJOBS_TOKEN": "token",
    "RJOBS_DATA_ROOTS": "data_roots",
    "RJOBS_IDLE_TIMEOUT_S": "idle_timeout_s",
    "RJOBS_DETACH_GRACE_S": "detach_grace_s",
    "RJOBS_REQUEST_TIMEOUT_S": "request_timeout_s",
}


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rjobs"


def user_config_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rjobs" / "rjobs.toml"


@dataclass(frozen=True)
class Config:
    """Where and how a client reaches rjobs.

    ``backend`` is ``embedded`` (SQLite in ``data_dir`` with a local worker supervisor), ``sql``
    (a shared store at ``database_url``) or ``http`` (an ``rjobs serve`` at ``base_url``).
    ``data_roots`` are the directories under which payload ``path`` fields may point; workers
    read them. ``sources`` records where each value came from (for ``rjobs config show``).
    """

    backend: Backend = "embedded"
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    base_url: str | None = None
    token: str | None = field(default=None, repr=False)
    token_env: str | None = None
    data_roots: tuple[Path, ...] = ()
    idle_timeout_s: float = 300.0
    detach_grace_s: float = 30.0
    request_timeout_s: float = 30.0
    connection_name: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.data_dir, Path):  # accept a str, as people will pass one
            object.__setattr__(self, "data_dir", Path(str(self.data_dir)).expanduser())
        roots = tuple(Path(str(r)).expanduser() for r in self.data_roots)
        object.__setattr__(self, "data_roots", roots)
        if self.backend not in BACKENDS:
            raise JobInvalidRequestError(
                f"unknown backend {self.backend!r}; backends are: {', '.join(BACKENDS)}"
            )
        for key in ("idle_timeout_s", "detach_grace_s", "request_timeout_s"):
            if not getattr(self, key) > 0:
                raise JobInvalidRequestError(f"{key} must be > 0")

    @property
    def store_url(self) -> str:
        """The database URL of the embedded and sql backends."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'rjobs.sqlite3'}"

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def with_store(self, store: str | None) -> Config:
        """The configuration of a command that works on the database itself (worker, serve, gc,
        tokens, db upgrade): ``store`` overrides the URL; an http connection has no database."""
        if store:
            return self.replace(database_url=store)
        if self.backend == "http":
            name = f"connection {self.connection_name!r}" if self.connection_name else "this"
            raise JobInvalidRequestError(
                f"{name} uses the http backend, which has no database here; pass --store URL "
                "(or use a connection with backend sql or embedded)"
            )
        return self

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes``; their source is recorded as ``code``."""
        sources = changes.pop("sources", None) or {
            **self.sources,
            **dict.fromkeys(changes, "code"),
        }
        return dataclasses.replace(self, **changes, sources=sources)

    @classmethod
    def load(
        cls,
        connection_name: str | None = None,
        *,
        path: Path | None = None,
        environ: dict[str, str] | None = None,
    ) -> Config:
        """Build the effective configuration from the file and the environment."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}

        file = path or _find_config_file()
        doc: dict[str, Any] = {}
        if file is not None:
            try:
                doc = tomllib.loads(file.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise JobInvalidRequestError(f"cannot read config file {file}: {exc}") from exc

        name = connection_name or env.get("RJOBS_CONNECTION") or doc.get("default_connection")
        if connection_name:
            sources["connection_name"] = "code (connection_name, --connection)"
        elif env.get("RJOBS_CONNECTION"):
            sources["connection_name"] = "environment RJOBS_CONNECTION"
        elif name is not None:
            sources["connection_name"] = f"{file} default_connection"
        connections = doc.get("connections", {})
        if name is not None:
            if name not in connections:
                known = ", ".join(sorted(connections)) or "none defined"
                raise JobInvalidRequestError(
                    f"unknown connection {name!r}; connections in {file or 'no config file'}: "
                    f"{known}"
                )
            for key, value in connections[name].items():
                values[key] = value
                sources[key] = f"{file} [connections.{name}]"

        for var, key in _ENV.items():
            if var in env and env[var] != "":
                values[key] = env[var]
                sources[key] = f"environment {var}"

        token_env = values.get("token_env")
        if "token" not in values and token_env and env.get(token_env):
            values["token"] = env[token_env]
            sources["token"] = f"environment {token_env}"

        return cls._from_values(values, sources, name)

    @classmethod
    def _from_values(
        cls, values: dict[str, Any], sources: dict[str, str], name: str | None
    ) -> Config:
        allowed = {f.name for f in dataclasses.fields(cls)} - {"sources", "connection_name"}
        unknown = set(values) - allowed
        if unknown:
            raise JobInvalidRequestError(
                f"unknown configuration keys {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        kwargs: dict[str, Any] = dict(values)
        if "data_dir" in kwargs:
            kwargs["data_dir"] = Path(str(kwargs["data_dir"])).expanduser()
        if "data_roots" in kwargs:
            roots = kwargs["data_roots"]
            if isinstance(roots, str):
                roots = [r for r in roots.split(os.pathsep) if r]
            kwargs["data_roots"] = tuple(Path(str(r)).expanduser().resolve() for r in roots)
        for key in ("idle_timeout_s", "detach_grace_s", "request_timeout_s"):
            if key in kwargs:
                try:
                    kwargs[key] = float(kwargs[key])
                except (TypeError, ValueError) as exc:
                    raise JobInvalidRequestError(f"{key} must be a number") from exc
        return cls(**kwargs, connection_name=name, sources=sources)


def redact_url(url: str | None) -> str | None:
    """A URL with its password, if any, replaced by ``***`` (for display and logs)."""
    if not url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    netloc, slash, path = rest.partition("/")
    if "@" not in netloc:
        return url
    credentials, _, host = netloc.rpartition("@")
    user, colon, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}{slash}{path}"


def _find_config_file() -> Path | None:
    for candidate in (Path.cwd() / "rjobs.toml", user_config_file()):
        if candidate.is_file():
            return candidate
    return None

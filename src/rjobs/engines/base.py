"""The contract between the worker and the engines that do a job's work.

An engine is a plain object with a ``run(payload, ctx)`` method. It runs inside a worker's child
process, one job at a time, and talks to the outside world only through its :class:`EngineContext`:

* ``ctx.emit(type, **fields)`` appends an event to the ``progress`` stream (or ``stream="log"``);
* ``ctx.write_artifact(name, data, content_type)`` stores a named file the job produced;
* ``ctx.problem(severity, code, message, ...)`` records a diagnostic;
* ``ctx.interrupted`` turns true when the job is cancelled or timed out; ``ctx.on_interrupt(fn)``
  registers a callback called (from another thread) at that moment, for engines that block in
  native code (DuckDB's ``interrupt()``, HiGHS interrupt callbacks poll the flag instead).

``run`` returns the job's result, a JSON-serialisable dict. It raises :class:`EngineFailure` when
the job's own input or work is wrong; the worker then marks the job ``FAILED`` with the failure's
problems. When interrupted, an engine stops as soon as it can and returns what it has (a solver's
best incumbent, say); the worker decides the terminal state from why it interrupted.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Severity = Literal["error", "warning", "info"]
Stream = Literal["progress", "log"]


@dataclass(frozen=True)
class ProblemInfo:
    """A diagnostic about a job's input or work."""

    severity: Severity
    code: str
    message: str
    line: int | None = None
    column: int | None = None
    statement: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "statement": self.statement,
        }


@dataclass(frozen=True)
class ArtifactInfo:
    """Metadata of an artifact file written under the job's artifact directory."""

    name: str
    content_type: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
        }


class EngineFailure(Exception):
    """The job's input or work is wrong: the job ends ``FAILED`` with these problems."""

    def __init__(self, message: str, problems: Sequence[ProblemInfo] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems) or [ProblemInfo("error", "failed", message)]


class EngineContext(Protocol):
    """What an engine may do while it runs a job."""

    @property
    def job_id(self) -> str: ...

    @property
    def data_roots(self) -> Sequence[Path]:
        """Directories under which ``path`` fields of payloads may point."""
        ...

    @property
    def data_dir(self) -> Path:
        """The service's data directory (Logic databases live under ``data_dir / "logic"``)."""
        ...

    @property
    def interrupted(self) -> bool: ...

    def on_interrupt(self, callback: Callable[[], None]) -> None: ...

    def emit(self, type: str, *, stream: Stream = "progress", **fields: Any) -> None: ...

    def write_artifact(self, name: str, data: bytes, content_type: str) -> ArtifactInfo: ...

    def read_artifact(self, job_id: str, name: str) -> bytes:
        """Read an artifact of an earlier job (``model_from_job``)."""
        ...

    def problem(
        self,
        severity: Severity,
        code: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        statement: int | None = None,
    ) -> None: ...


class Engine(Protocol):
    """Runs one kind of job. ``run`` is called in a worker child process."""

    def run(self, payload: dict[str, Any], ctx: EngineContext) -> dict[str, Any]: ...


def resolve_data_path(raw: object, roots: Sequence[Path], *, what: str = "path") -> Path:
    """Resolve a payload ``path`` field, refusing anything outside the configured data roots."""
    if not isinstance(raw, str) or not raw:
        raise EngineFailure(f"{what} must be a non-empty string")
    if not roots:
        raise EngineFailure(f"{what} {raw!r} is not allowed: no data roots are configured")
    candidate = Path(raw)
    tries = [candidate] if candidate.is_absolute() else [root / candidate for root in roots]
    for attempt in tries:
        resolved = attempt.resolve()
        for root in roots:
            if resolved.is_relative_to(root.resolve()):
                if not resolved.is_file():
                    raise EngineFailure(f"{what} {raw!r} does not exist under the data roots")
                return resolved
    allowed = ", ".join(str(r) for r in roots)
    raise EngineFailure(f"{what} {raw!r} is outside the data roots (allowed: {allowed})")


@dataclass
class LocalContext:
    """An :class:`EngineContext` that keeps everything in memory and files in ``artifact_dir``.

    The worker uses its own context that forwards to the store; this one runs an engine inline
    (tests, the ``rjobs`` library used without a store).
    """

    job_id: str
    artifact_dir: Path
    data_dir: Path
    data_roots: Sequence[Path] = ()
    events: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"progress": [], "log": []}
    )
    problems: list[ProblemInfo] = field(default_factory=list)
    artifacts: list[ArtifactInfo] = field(default_factory=list)
    _interrupt: threading.Event = field(default_factory=threading.Event)
    _callbacks: list[Callable[[], None]] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    def interrupt(self) -> None:
        self._interrupt.set()
        for callback in list(self._callbacks):
            callback()

    def on_interrupt(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
        if self._interrupt.is_set():
            callback()

    def emit(self, type: str, *, stream: Stream = "progress", **fields: Any) -> None:
        json.dumps(fields)  # an event must be JSON: fail where it is written, not later
        self.events[stream].append({"type": type, **fields})

    def write_artifact(self, name: str, data: bytes, content_type: str) -> ArtifactInfo:
        info = store_artifact_file(self.artifact_dir / self.job_id, name, data, content_type)
        self.artifacts.append(info)
        return info

    def read_artifact(self, job_id: str, name: str) -> bytes:
        return read_artifact_file(self.artifact_dir / job_id, name)

    def problem(
        self,
        severity: Severity,
        code: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        statement: int | None = None,
    ) -> None:
        self.problems.append(ProblemInfo(severity, code, message, line, column, statement))


def _check_artifact_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name in {".", ".."} or "\x00" in name:
        raise ValueError(f"invalid artifact name {name!r}: use a plain file name")


def store_artifact_file(directory: Path, name: str, data: bytes, content_type: str) -> ArtifactInfo:
    """Write an artifact atomically and return its metadata."""
    _check_artifact_name(name)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    partial = directory / f".{name}.partial"
    partial.write_bytes(data)
    partial.replace(target)
    return ArtifactInfo(name, content_type, len(data), hashlib.sha256(data).hexdigest())


def read_artifact_file(directory: Path, name: str) -> bytes:
    _check_artifact_name(name)
    return (directory / name).read_bytes()

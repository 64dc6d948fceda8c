"""Logic databases on disk: names, paths, the cross-process lock and hardened DuckDB connections.

DuckDB lets one process at a time hold a database file read-write, and a read-only open fails
while another process holds it read-write. Jobs run in separate processes, so every transaction
first takes a readers-writer lock on sidecar files next to the database (``fcntl.flock``), then
opens the file for just that transaction: writers exclusively and read-write, readers shared and
read-only. Concurrent transactions therefore wait for each other instead of failing with DuckDB's
lock error.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import duckdb

from rjobs.engines.base import EngineFailure, ProblemInfo

DBNAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
DBNAME_RULE = "1 to 64 characters: a letter or underscore first, then letters, digits, '_' or '-'"

# Settings fixed when the database instance starts. Extensions can neither be installed nor
# loaded implicitly, Python variables are never scanned as tables (SQL must not see the engine's
# locals), secrets are never written to disk, and errors come back as JSON with a position.
_STARTUP_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "python_enable_replacements": False,
    "errors_as_json": True,
}
# Per-connection settings that stay changeable after the configuration is locked: a second
# connection to an instance already locked in this process must still switch printing off.
_UNLOCKED_SETTINGS = ["enable_progress_bar", "enable_progress_bar_print"]

_POLL_MIN_S = 0.001
_POLL_MAX_S = 0.02


class LockWaitInterrupted(Exception):
    """The job was interrupted while waiting for a database lock."""


def validate_dbname(raw: object) -> str:
    """Return ``raw`` if it is a valid database name, else fail naming the rule."""
    if not isinstance(raw, str) or DBNAME_PATTERN.fullmatch(raw) is None:
        message = f"invalid dbname {raw!r}: a database name is {DBNAME_RULE}"
        raise EngineFailure(message, [ProblemInfo("error", "invalid_dbname", message)])
    return raw


def database_path(data_dir: Path, dbname: str) -> Path:
    """The DuckDB file of database ``dbname`` (which must already be validated)."""
    return Path(data_dir) / "logic" / f"{dbname}.duckdb"


def database_not_found(dbname: str) -> EngineFailure:
    message = (
        f"database {dbname!r} does not exist; it is created by the first write transaction "
        "(readonly=false)"
    )
    return EngineFailure(message, [ProblemInfo("error", "database_not_found", message)])


def _open_lock_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _acquire(
    fd: int, mode: int, should_stop: Callable[[], bool], on_wait: Callable[[], None]
) -> None:
    # Poll instead of blocking in flock(): a blocked flock cannot be interrupted from another
    # thread, and a cancelled job must stop waiting promptly.
    delay = _POLL_MIN_S
    waited = False
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if should_stop():
            raise LockWaitInterrupted
        if not waited:
            waited = True
            on_wait()
        time.sleep(delay)
        delay = min(delay * 2, _POLL_MAX_S)


@contextmanager
def database_lock(
    db_path: Path,
    *,
    exclusive: bool,
    should_stop: Callable[[], bool] = lambda: False,
    on_wait: Callable[[], None] = lambda: None,
) -> Iterator[float]:
    """Hold the readers-writer lock of a database; yields the seconds spent waiting.

    ``<db>.lock`` is the lock itself (shared for readers, exclusive for the writer). ``<db>.gate``
    is a turnstile that gives writers preference: a writer holds it exclusively while it waits, so
    a steady stream of readers cannot starve it; readers pass through it with a shared hold.
    Closing the file descriptors releases both, also when the process dies.
    """
    start = time.monotonic()
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    waiting: list[bool] = []

    def wait_once() -> None:  # one notice per acquisition, though it may wait at both files
        if not waiting:
            waiting.append(True)
            on_wait()

    with ExitStack() as stack:
        gate = _open_lock_file(db_path.with_name(db_path.name + ".gate"))
        stack.callback(os.close, gate)
        lock = _open_lock_file(db_path.with_name(db_path.name + ".lock"))
        stack.callback(os.close, lock)
        _acquire(gate, mode, should_stop, wait_once)
        try:
            _acquire(lock, mode, should_stop, wait_once)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield time.monotonic() - start


def allowed_directories(data_roots: Sequence[Path]) -> list[str]:
    """DuckDB ``allowed_directories`` entries for the data roots.

    Each ends with a separator, because DuckDB matches them as prefixes (``/data`` would also
    admit ``/data-private``). Both the configured and the resolved spelling are listed, so a root
    reached through a symbolic link works either way.
    """
    entries: list[str] = []
    for root in data_roots:
        for form in (Path(root).absolute(), Path(root).resolve()):
            entry = str(form).rstrip(os.sep) + os.sep
            if entry not in entries:
                entries.append(entry)
    return entries


def _setting(conn: duckdb.DuckDBPyConnection, name: str) -> Any:
    row = conn.execute("SELECT current_setting($name)", {"name": name}).fetchone()
    return None if row is None else row[0]


def connect(
    db_path: Path, *, read_only: bool, data_roots: Sequence[Path]
) -> duckdb.DuckDBPyConnection:
    """Open a database for one transaction, with host file access limited to the data roots.

    External access (files, network, extensions) is switched off except for the data roots, and
    the configuration is then locked so SQL cannot switch it back on.
    """
    allowed = allowed_directories(data_roots)
    conn = duckdb.connect(str(db_path), read_only=read_only, config=dict(_STARTUP_CONFIG))
    try:
        if _setting(conn, "lock_configuration") is True:
            # DuckDB shares one instance per file within a process; another transaction of this
            # process locked it already. Use it only if it is locked down the same way.
            current = _setting(conn, "allowed_directories") or []
            if _setting(conn, "enable_external_access") is not False or not set(allowed) <= set(
                current
            ):
                raise RuntimeError(
                    f"{db_path} is already open in this process with other access settings"
                )
        else:
            conn.execute("SET allowed_directories = $dirs", {"dirs": allowed})
            conn.execute("SET enable_external_access = false")
            conn.execute("SET allowed_configs = $names", {"names": _UNLOCKED_SETTINGS})
            conn.execute("SET lock_configuration = true")
        # query_progress() needs the progress bar on; printing it would write to the worker's
        # terminal.
        conn.execute("SET enable_progress_bar = true")
        conn.execute("SET enable_progress_bar_print = false")
    except BaseException:
        conn.close()
        raise
    return conn


def remove_database(db_path: Path) -> None:
    """Delete a database file with its write-ahead log and spill directory (lock held)."""
    for extra in (db_path, db_path.with_name(db_path.name + ".wal")):
        extra.unlink(missing_ok=True)
    shutil.rmtree(db_path.with_name(db_path.name + ".tmp"), ignore_errors=True)

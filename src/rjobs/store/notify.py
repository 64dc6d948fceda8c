"""Wake-ups between processes sharing a store: "job X changed", "a job was queued".

A notification is a hint, never the truth: whoever wakes re-reads the store. Waiters therefore
always keep a polling ceiling, and a lost notification costs latency, never correctness.

:class:`LocalNotifier` serves SQLite stores, whose users all run on one host: each process that
waits binds one Unix datagram socket in a directory derived from the store's path, and a notify
sends the channel name to every socket there (and wakes waiters of the same process directly).
PostgreSQL stores use LISTEN/NOTIFY instead (:mod:`rjobs.store.pg_notify`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import socket
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Protocol

logger = logging.getLogger(__name__)

_MAX_DATAGRAM = 512


class Subscription(Protocol):
    def wait(self, timeout: float) -> bool:
        """Block until a notification on a subscribed channel arrives (True) or timeout (False).

        A notification that arrived since the subscription was made, or since the last ``wait``,
        returns at once.
        """
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Subscription: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Notifier(Protocol):
    def notify(self, channel: str) -> None: ...

    def wake(self, channel: str) -> None:
        """Wake this process's subscribers of ``channel`` only (no message leaves it)."""
        ...

    def subscribe(self, channels: Iterable[str]) -> Subscription: ...

    def close(self) -> None: ...


class _Hub:
    """In-process fan-out: a counter per watched channel and one condition variable."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.counters: dict[str, int] = {}
        self.watchers: dict[str, int] = {}

    def bump(self, channel: str) -> None:
        with self.cond:
            if channel in self.counters:
                self.counters[channel] += 1
                self.cond.notify_all()

    def bump_all(self) -> None:
        with self.cond:
            for channel in self.counters:
                self.counters[channel] += 1
            self.cond.notify_all()


class HubSubscription:
    def __init__(self, hub: _Hub, channels: Iterable[str]) -> None:
        self._hub = hub
        self._channels = tuple(dict.fromkeys(channels))
        with hub.cond:
            for channel in self._channels:
                hub.counters.setdefault(channel, 0)
                hub.watchers[channel] = hub.watchers.get(channel, 0) + 1
            self._seen = {c: hub.counters[c] for c in self._channels}
        self._closed = False

    def _changed(self) -> bool:
        return any(self._hub.counters[c] != self._seen[c] for c in self._channels)

    def wait(self, timeout: float) -> bool:
        with self._hub.cond:
            fired = self._hub.cond.wait_for(self._changed, timeout=max(timeout, 0.0))
            self._seen = {c: self._hub.counters[c] for c in self._channels}
        return fired

    def close(self) -> None:
        with self._hub.cond:
            if self._closed:
                return
            self._closed = True
            for channel in self._channels:
                left = self._hub.watchers[channel] - 1
                if left:
                    self._hub.watchers[channel] = left
                else:
                    del self._hub.watchers[channel]
                    del self._hub.counters[channel]

    def __enter__(self) -> HubSubscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HubNotifier:
    """What every notifier shares: in-process fan-out through a hub, fed by a listener that
    subclasses start on first subscription."""

    _hub: _Hub

    def wake(self, channel: str) -> None:
        self._hub.bump(channel)

    def subscribe(self, channels: Iterable[str]) -> HubSubscription:
        self._ensure_listening()
        return HubSubscription(self._hub, channels)

    def _ensure_listening(self) -> None:
        raise NotImplementedError


def _socket_dir(key: str) -> Path:
    # Unix socket paths are limited to ~100 bytes, so the directory is a short hash of the
    # store's identity under the temp directory rather than a path inside the data directory.
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"rjobs-{os.getuid()}" / digest


class LocalNotifier(HubNotifier):
    """Notifications among the processes of one host sharing a SQLite store."""

    def __init__(self, key: str) -> None:
        self._dir = _socket_dir(key)
        self._hub = _Hub()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._path: Path | None = None
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)
        self._closed = False

    def notify(self, channel: str) -> None:
        self._hub.bump(channel)
        data = channel.encode()[:_MAX_DATAGRAM]
        try:
            peers = os.listdir(self._dir)
        except FileNotFoundError:
            return
        for name in peers:
            if not name.endswith(".sock"):
                continue
            path = self._dir / name
            if path == self._path:
                continue
            try:
                self._sender.sendto(data, str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                # nobody bound there any more: a process that died without cleaning up
                with contextlib.suppress(OSError):
                    path.unlink()
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                    logger.debug("notify.send_failed", extra={"path": str(path), "err": str(exc)})

    def _ensure_listening(self) -> None:
        with self._lock:
            if self._sock is not None or self._closed:
                return
            self._dir.mkdir(parents=True, exist_ok=True)
            path = self._dir / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(path))
            self._sock, self._path = sock, path
            thread = threading.Thread(target=self._listen, name="rjobs-notify", daemon=True)
            thread.start()

    def _listen(self) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except OSError:
                return  # closed
            if not data:
                if self._closed:
                    return
                continue
            self._hub.bump(data.decode(errors="replace"))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sock, path = self._sock, self._path
            self._sock = None
        if sock is not None and path is not None:
            # an empty datagram wakes the listening thread, which then sees _closed and returns
            with contextlib.suppress(OSError):
                self._sender.sendto(b"", str(path))
            sock.close()
        self._sender.close()
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

"""Job ids: URL-safe, unique, and ordered by creation time."""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def encode_base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_job_id() -> str:
    """A 26-character id: 48 bits of milliseconds then 80 random bits, monotonic per process."""
    global _last_ms, _last_rand
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            # same millisecond (or the clock stepped back): keep ordering by counting up
            now_ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = secrets.randbits(80)
        _last_ms, _last_rand = now_ms, rand
    return encode_base32(now_ms, 10) + encode_base32(rand & ((1 << 80) - 1), 16)

"""The probe payload every reasoner type accepts, for health checks and benchmarks."""

from __future__ import annotations

import time
from typing import Any

from rjobs.engines.base import EngineContext, EngineFailure

_KEYS = {"sleep_s", "events", "fail"}


def is_probe(payload: dict[str, Any]) -> bool:
    return "probe" in payload


def run_probe(payload: dict[str, Any], ctx: EngineContext) -> dict[str, Any]:
    """Sleep ``sleep_s`` (interruptibly), write ``events`` events, fail if ``fail`` is set."""
    spec = payload["probe"]
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise EngineFailure("probe must be an object with sleep_s, events and fail")
    unknown = set(spec) - _KEYS
    if unknown:
        raise EngineFailure(f"unknown probe keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    sleep_s = spec.get("sleep_s", 0) or 0
    events = spec.get("events", 0) or 0
    fail = spec.get("fail")
    if not isinstance(sleep_s, int | float) or isinstance(sleep_s, bool) or sleep_s < 0:
        raise EngineFailure("probe.sleep_s must be a number >= 0")
    if not isinstance(events, int) or isinstance(events, bool) or events < 0:
        raise EngineFailure("probe.events must be an integer >= 0")
    if fail is not None and not isinstance(fail, str):
        raise EngineFailure("probe.fail must be a string or null")

    deadline = time.monotonic() + float(sleep_s)
    written = 0
    for i in range(events):
        if ctx.interrupted:
            break
        ctx.emit("probe", n=i + 1, of=events)
        written += 1
    while not ctx.interrupted:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(remaining, 0.01))
    if fail:
        raise EngineFailure(fail)
    return {"probe": True, "slept_s": float(sleep_s), "events": written}

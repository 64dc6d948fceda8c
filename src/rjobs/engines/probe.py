"""The probe payload every reasoner type accepts, for health checks, tests and benchmarks.

``{"probe": {"sleep_s": 0, "events": 0, "fail": null}}`` sleeps ``sleep_s`` seconds, writing
``events`` progress events spread evenly over that time, then fails with ``fail`` as its message
when it is set. It stops early when interrupted, unless ``ignore_interrupt`` is true (a job that
does not cooperate, to exercise the worker's hard kill).
"""

from __future__ import annotations

import time
from typing import Any

from rjobs.engines.base import EngineContext, EngineFailure

_KEYS = {"sleep_s", "events", "fail", "ignore_interrupt"}


def is_probe(payload: dict[str, Any]) -> bool:
    return "probe" in payload


def run_probe(payload: dict[str, Any], ctx: EngineContext) -> dict[str, Any]:
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
    stubborn = spec.get("ignore_interrupt", False)
    if not isinstance(sleep_s, int | float) or isinstance(sleep_s, bool) or sleep_s < 0:
        raise EngineFailure("probe.sleep_s must be a number >= 0")
    if not isinstance(events, int) or isinstance(events, bool) or events < 0:
        raise EngineFailure("probe.events must be an integer >= 0")
    if fail is not None and not isinstance(fail, str):
        raise EngineFailure("probe.fail must be a string or null")
    if not isinstance(stubborn, bool):
        raise EngineFailure("probe.ignore_interrupt must be a bool")

    def stopped() -> bool:
        return ctx.interrupted and not stubborn

    start = time.monotonic()
    step = float(sleep_s) / events if events else 0.0
    written = 0
    for i in range(events):
        if stopped():
            break
        _sleep_until(start + i * step, stopped)
        ctx.emit("probe", n=i + 1, of=events)
        written += 1
    _sleep_until(start + float(sleep_s), stopped)
    if fail:
        raise EngineFailure(fail)
    return {
        "probe": True,
        "slept_s": float(sleep_s),
        "events": written,
        "interrupted": stopped(),
    }


def _sleep_until(moment: float, stopped: Any) -> None:
    while not stopped():
        remaining = moment - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 0.01))

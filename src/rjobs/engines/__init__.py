"""Engines: the code that does a job's work, one module per reasoner type."""

from __future__ import annotations

import importlib
from typing import Any

from rjobs.engines.base import Engine, EngineContext, EngineFailure
from rjobs.engines.probe import is_probe, run_probe

# public reasoner type label -> "module:Class"; imported lazily so a worker for one type
# never pays for the others' imports.
_ENGINES = {
    "Prescriptive": "rjobs.engines.prescriptive:PrescriptiveEngine",
    "Logic": "rjobs.engines.logic:LogicEngine",
    "Predictive": "rjobs.engines.predictive:PredictiveEngine",
}


def load_engine(reasoner_type: str) -> Engine:
    module_name, _, class_name = _ENGINES[reasoner_type].partition(":")
    module = importlib.import_module(module_name)
    engine: Engine = getattr(module, class_name)()
    return engine


def run_job(reasoner_type: str, payload: dict[str, Any], ctx: EngineContext) -> dict[str, Any]:
    """Run one job's payload with the engine of its type (or the probe)."""
    if is_probe(payload):
        return run_probe(payload, ctx)
    return load_engine(reasoner_type).run(payload, ctx)


__all__ = ["Engine", "EngineContext", "EngineFailure", "load_engine", "run_job"]

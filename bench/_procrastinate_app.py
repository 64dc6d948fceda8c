"""The procrastinate app of ``bench/throughput.py``: one trivial async task.

Its workers are started as ``python -m procrastinate --app=_procrastinate_app.app worker
--concurrency N`` with this directory on ``PYTHONPATH`` and the database in
``RJOBS_BENCH_PROCRASTINATE_DSN``. procrastinate is a benchmark-only dependency (the ``bench``
extra), never a runtime one of rjobs.
"""

from __future__ import annotations

import os

import procrastinate

DSN_ENV = "RJOBS_BENCH_PROCRASTINATE_DSN"

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get(DSN_ENV, "")),
)


@app.task(name="noop")
async def noop() -> None:
    """The trivial job: the counterpart of rjobs's probe with sleep_s=0 and no events."""
    return None

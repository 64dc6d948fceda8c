"""Log formatting for rjobs' own processes (CLI, worker, supervisor, server).

The library configures no handlers; entry points call :func:`configure`. Records are named by a
fixed action (``job.claimed``) with structured fields passed as ``extra``; the formatter prints
those fields as ``key=value`` after the action.
"""

from __future__ import annotations

import logging
import os

# record attributes that are not structured fields (uvicorn adds a colour copy of its message)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if fields:
            line += " " + " ".join(
                f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}"
                for k, v in fields.items()
            )
        return line


def configure(level: str | None = None) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        KeyValueFormatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("RJOBS_LOG_LEVEL", "INFO"))

"""Solve the netlib LP afiro as a Prescriptive job with the embedded backend."""

from pathlib import Path

import rjobs

model = (Path(__file__).parent / "afiro.mps").read_text()
with rjobs.connect_sync() as client:
    op = client.jobs.create("Prescriptive", "default", {"model": {"format": "mps", "text": model}})
    job = op.wait(timeout_s=120, include={"details": True})
    print(job.state, job.details["result"]["objective"])

"""rjobs: run long computations on named pools of workers, and follow them from one client.

>>> import rjobs
>>> with rjobs.connect_sync() as client:
...     op = client.jobs.create("Prescriptive", "default", {"model": {...}})
...     job = op.wait()
"""

from rjobs._client import (
    ClientSync,
    JobOperationSync,
    JobsClientSync,
    ReasonersClientSync,
    connect_sync,
)
from rjobs._config import Config
from rjobs._errors import (
    JobCapabilityError,
    JobClientDisconnectedError,
    JobError,
    JobInvalidRequestError,
    JobNotFoundError,
    JobNotReadyError,
    JobPermissionError,
    JobServerError,
    JobTimeoutError,
)
from rjobs._gateway import JobsGatewaySync, ReasonersGatewaySync
from rjobs._models import (
    Job,
    JobEvents,
    JobExpanded,
    JobIncludeDict,
    Operation,
    Reasoner,
)

__version__ = "0.1.0"

__all__ = [
    "ClientSync",
    "Config",
    "Job",
    "JobCapabilityError",
    "JobClientDisconnectedError",
    "JobError",
    "JobEvents",
    "JobExpanded",
    "JobIncludeDict",
    "JobInvalidRequestError",
    "JobNotFoundError",
    "JobNotReadyError",
    "JobOperationSync",
    "JobPermissionError",
    "JobServerError",
    "JobTimeoutError",
    "JobsClientSync",
    "JobsGatewaySync",
    "Operation",
    "Reasoner",
    "ReasonersClientSync",
    "ReasonersGatewaySync",
    "__version__",
    "connect_sync",
]

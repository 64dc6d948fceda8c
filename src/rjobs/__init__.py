"""rjobs: run long computations on named pools of workers, and follow them from one client.

>>> import rjobs
>>> with rjobs.connect_sync() as client:
...     op = client.jobs.create("Prescriptive", "default", {"model": {...}})
...     job = op.wait()

From async code, ``rjobs.connect()`` returns the twin with the same methods as coroutines:

>>> async with rjobs.connect() as client:
...     job = await (await client.jobs.create("Prescriptive", "default", {"model": {...}}))
"""

from rjobs._async_client import (
    Client,
    JobOperation,
    JobsClient,
    JobsGateway,
    ReasonersClient,
    ReasonersGateway,
    connect,
)
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
    "Client",
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
    "JobOperation",
    "JobOperationSync",
    "JobPermissionError",
    "JobServerError",
    "JobTimeoutError",
    "JobsClient",
    "JobsClientSync",
    "JobsGateway",
    "JobsGatewaySync",
    "Operation",
    "Reasoner",
    "ReasonersClient",
    "ReasonersClientSync",
    "ReasonersGateway",
    "ReasonersGatewaySync",
    "__version__",
    "connect",
    "connect_sync",
]

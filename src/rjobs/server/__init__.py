"""``rjobs serve``: the HTTP API of SPEC section 5 over a shared store."""

from rjobs.server.api import ServerSettings
from rjobs.server.app import create_app

__all__ = ["ServerSettings", "create_app"]

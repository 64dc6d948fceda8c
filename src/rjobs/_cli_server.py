"""``rjobs serve`` and ``rjobs tokens create``, registered on the main CLI by :func:`register`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from rjobs._config import Config

err = Console(stderr=True)

MAX_USER_CHARS = 200


def register(app: typer.Typer) -> None:
    """Add the server commands to ``app``."""
    tokens_app = typer.Typer(help="API tokens for the HTTP server.", no_args_is_help=True)
    tokens_app.command("create")(tokens_create)
    app.add_typer(tokens_app, name="tokens")
    app.command("serve")(serve)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def _config(ctx: typer.Context, store: str | None) -> Config:
    from rjobs._errors import JobError

    connection = ctx.find_root().params.get("connection")
    try:
        return Config.load(connection).with_store(store)
    except JobError as exc:
        raise _fail(str(exc)) from exc


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8080,
    store: Annotated[str | None, typer.Option(help="Database URL (else the config's).")] = None,
    max_body_mib: Annotated[float, typer.Option(help="Largest request body.")] = 16,
    request_timeout_s: Annotated[
        float, typer.Option(help="Time limit of one request's work (long-polls add theirs).")
    ] = 30,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the HTTP API over a shared store (workers run the jobs: rjobs worker)."""
    import uvicorn

    from rjobs._logging import configure
    from rjobs.server import ServerSettings, create_app
    from rjobs.store.store import Store

    if not 0 <= port <= 65535:
        raise _fail(f"--port must be from 0 to 65535, got {port}")
    if max_body_mib <= 0 or request_timeout_s <= 0:
        raise _fail("--max-body-mib and --request-timeout-s must be > 0")
    configure(log_level.upper())
    config = _config(ctx, store)
    try:
        db = Store(config.store_url, artifact_dir=config.artifact_dir)
        db.upgrade()
    except Exception as exc:
        raise _fail(f"cannot open the store: {type(exc).__name__}: {exc}") from exc
    settings = ServerSettings(
        max_body_bytes=int(max_body_mib * 1024 * 1024), request_timeout_s=request_timeout_s
    )
    try:
        uvicorn.run(
            create_app(db, settings),
            host=host,
            port=port,
            log_level=log_level.lower(),
            log_config=None,
            timeout_graceful_shutdown=5,
        )
    finally:
        db.close()


def tokens_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="User name; created when new.")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the user the admin role.")] = False,
    store: Annotated[str | None, typer.Option(help="Database URL (else the config's).")] = None,
) -> None:
    """Create an API token for USER and print it (it is shown only this once)."""
    from rjobs.store.store import Store

    if not user.strip() or len(user) > MAX_USER_CHARS or not user.isprintable():
        raise _fail(f"USER must be 1 to {MAX_USER_CHARS} printable characters, got {user!r}")
    config = _config(ctx, store)
    db = Store(config.store_url, artifact_dir=config.artifact_dir)
    try:
        db.upgrade()
        token = db.create_token(user, admin=admin)
    finally:
        db.close()
    role = "admin" if admin else "user"
    err.print(f"token for {user} ({role}); it is shown only now, and stored only as a hash:")
    sys.stdout.write(token + "\n")

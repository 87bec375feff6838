"""Running billfold: ``serve``, ``worker`` and ``dev``."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from billfold.domain import errors
from billfold.entrypoints import logs
from billfold.entrypoints.cli._console import console, fail, settings_or_exit


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.", min=1, max=64)] = 1,
) -> None:
    """Run the production server on the configured database (migrates an empty SQLite file)."""
    import uvicorn

    from billfold.bootstrap import build

    settings = settings_or_exit()
    try:
        services = build(settings)  # fail fast, in the parent, on a wrong setting or schema
        services.close()
    except errors.BillfoldError as exc:
        raise fail(exc.message) from None
    console.print(f"billfold listening on http://{host}:{port} (docs at /docs)")
    # On SIGTERM uvicorn stops accepting, finishes the requests in flight, runs the shutdown (the
    # in-process worker finishes its event and releases the rest), then raises the signal again:
    # this handler makes that last step a clean exit with status 0 instead of death by signal.
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        "billfold.entrypoints.http.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )


def _stopped(_signum: int, _frame: object) -> None:
    """SIGTERM after uvicorn's graceful shutdown: nothing left to do."""


def worker(
    batch: Annotated[int, typer.Option(help="Events claimed per round.", min=1, max=500)] = 20,
) -> None:
    """Run a worker: process the inbox (retries, events that need Stripe) and sweep expiry."""
    from billfold.bootstrap import build
    from billfold.entrypoints.worker import run_forever

    settings = settings_or_exit()
    logs.configure(settings)
    try:
        services = build(settings)
    except errors.BillfoldError as exc:
        raise fail(exc.message) from None
    console.print("billfold worker running; Ctrl+C to stop")
    try:
        run_forever(services, batch=batch)
    finally:
        services.close()


def dev(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    db: Annotated[
        Path, typer.Option(help="The SQLite file; credentials and simulator state go beside it.")
    ] = Path("billfold-dev.db"),
    chaos: Annotated[
        bool,
        typer.Option(help="Deliver webhooks as badly as Stripe may: twice, reordered, late."),
    ] = False,
    settle_seconds: Annotated[
        float,
        typer.Option(
            help="How long a delayed payment method takes to settle (negative: only when asked "
            "through /stripe/_sim/sessions/{id}/settle)."
        ),
    ] = 2.0,
) -> None:
    """Try billfold in a minute: API, worker, Stripe simulator, demo shop and admin view on one
    port, on a SQLite file, with demo credentials (BILLFOLD_* keys and tokens when set)."""
    from billfold.entrypoints import dev as dev_server

    try:
        setup = dev_server.prepare(db, host=host, port=port)
        sock = dev_server.bind(host, port)
    except errors.BillfoldError as exc:
        raise fail(exc.message) from None
    try:
        app = dev_server.create_dev_app(setup, chaos=chaos, settle_seconds=settle_seconds)
    except errors.BillfoldError as exc:
        sock.close()
        raise fail(exc.message) from None
    console.print(
        dev_server.banner(setup, chaos=chaos, settle_seconds=settle_seconds), soft_wrap=True
    )
    dev_server.serve(app, sock)
    console.print("billfold dev stopped.")

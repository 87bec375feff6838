"""Running billfold: ``serve``, ``worker`` and ``dev``."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from billfold.domain import errors
from billfold.entrypoints import logs
from billfold.entrypoints.cli._console import console, fail, settings_or_exit
from billfold.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.", min=1, max=64)] = 1,
) -> None:
    """Run the production server on the configured database (migrates an empty SQLite file)."""
    settings = settings_or_exit()
    # Metrics from every process (--workers N, the in-process worker) go through one directory,
    # set before prometheus-client is imported: PROMETHEUS_MULTIPROC_DIR if set, else our own.
    made = _metrics_dir()
    try:
        import uvicorn

        from billfold.bootstrap import build

        logs.configure(settings, default="json", own=True)
        try:
            services = build(settings)  # fail fast, in the parent, on a wrong setting or schema
            services.close()
        except errors.BillfoldError as exc:
            raise fail(exc.message) from None
        _say(settings, f"billfold listening on http://{host}:{port} (docs at /docs)")
        # uvicorn stops gracefully on SIGTERM, then raises the signal again: end through this
        # handler, so the metrics directory is removed below.
        signal.signal(signal.SIGTERM, _terminate)
        uvicorn.run(
            "billfold.entrypoints.http.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            log_config=logs.uvicorn_config(),
            access_log=False,  # billfold writes its own access line, with the request id
        )
    except KeyboardInterrupt:
        pass
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _metrics_dir() -> str | None:
    """Make a PROMETHEUS_MULTIPROC_DIR for this server unless one is set; return it to remove.
    A directory that is set is the operator's (shared with ``billfold worker`` processes on the
    same host): it is emptied here, at the start, as prometheus-client asks."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(given, name))
        return None
    made = tempfile.mkdtemp(prefix="billfold-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made


def _say(settings: Settings, message: str) -> None:
    """A line for the operator: a log line in JSON mode (every line is JSON), else printed."""
    if (settings.log_format or "json") == "json":
        logging.getLogger("billfold.server").info(message)
    else:
        console.print(message)


def worker(
    batch: Annotated[int, typer.Option(help="Events claimed per round.", min=1, max=500)] = 20,
) -> None:
    """Run a worker: process the inbox (retries, events that need Stripe) and sweep expiry.
    Its metrics reach ``billfold serve``'s /metrics when both share PROMETHEUS_MULTIPROC_DIR."""
    from billfold.bootstrap import build
    from billfold.entrypoints.worker import run_forever

    settings = settings_or_exit()
    logs.configure(settings, default="json", own=True)
    try:
        services = build(settings)
    except errors.BillfoldError as exc:
        raise fail(exc.message) from None
    _say(settings, "billfold worker running; Ctrl+C to stop")
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
    logs.configure(setup.settings, default="console", own=True)
    if setup.settings.log_level != "debug":  # a line per request only when asked for
        logging.getLogger("billfold.access").setLevel(logging.WARNING)
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

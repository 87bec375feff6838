"""The ``billfold`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from billfold.domain import errors
from billfold.settings import Settings, load_settings

app = typer.Typer(
    name="billfold",
    help="Stripe payments into prepaid credits, wallet balances and entitlements, exactly once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: upgrade and inspect.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def settings_or_exit(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except errors.ConfigurationError as exc:
        raise fail(exc.message) from None


@app.command()
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
    uvicorn.run(
        "billfold.entrypoints.http.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.command()
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


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the database to the newest schema (or to REVISION)."""
    from billfold.adapters.db import engine as db_engine
    from billfold.adapters.db import migrate

    settings = settings_or_exit()
    engine = db_engine.make_engine(settings.database_url)
    try:
        with db_engine.translate_errors():
            before = migrate.current_revision(engine)
            migrate.upgrade(engine, revision)
            after = migrate.current_revision(engine)
    except errors.BillfoldError as exc:
        raise fail(f"{exc.message} ({db_engine.redact(settings.database_url)})") from None
    finally:
        engine.dispose()
    console.print(f"database at {after} (was {before or 'empty'})")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and whether it is the newest."""
    from billfold.adapters.db import engine as db_engine
    from billfold.adapters.db import migrate

    settings = settings_or_exit()
    engine = db_engine.make_engine(settings.database_url)
    try:
        with db_engine.translate_errors():
            current = migrate.current_revision(engine)
    except errors.BillfoldError as exc:
        raise fail(exc.message) from None
    finally:
        engine.dispose()
    head = migrate.head_revision()
    state = (
        "up to date" if current == head else f"behind: run `billfold db upgrade` to reach {head}"
    )
    console.print(f"{current or 'empty'} ({state})")


@app.command()
def verify() -> None:
    """Check every ledger invariant against the database; exit 1 listing each violation."""
    from billfold.adapters.db import engine as db_engine
    from billfold.adapters.db.verify import verify as run_verify

    settings = settings_or_exit()
    engine = db_engine.make_engine(settings.database_url)
    try:
        with db_engine.translate_errors():
            problems = run_verify(engine)
    except errors.BillfoldError as exc:
        raise fail(exc.message) from None
    finally:
        engine.dispose()
    if problems:
        err_console.print(f"[bold red]{len(problems)} violation(s):[/]")
        for line in problems:
            err_console.print(f"  - {line}", highlight=False, markup=False)
        raise typer.Exit(1)
    console.print("[green]ok[/]: invariants 1, 2, 3 and 5 hold.")


@app.command()
def worker(
    batch: Annotated[int, typer.Option(help="Events claimed per round.", min=1, max=500)] = 20,
) -> None:
    """Run a worker: process the inbox (retries, events that need Stripe) and sweep expiry."""
    from billfold.bootstrap import build
    from billfold.entrypoints.worker import run_forever

    settings = settings_or_exit()
    try:
        services = build(settings)
    except errors.BillfoldError as exc:
        raise fail(exc.message) from None
    console.print("billfold worker running; Ctrl+C to stop")
    try:
        run_forever(services, batch=batch)
    finally:
        services.close()


def _register_operator_commands() -> None:
    from billfold.entrypoints import cli_ops

    cli_ops.register(app)


_register_operator_commands()


def main() -> None:
    try:
        app()
    except errors.ConfigurationError as exc:
        err_console.print(f"error: {exc.message}", highlight=False, markup=False)
        sys.exit(2)

"""The database: ``db upgrade``, ``db current`` and ``verify``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from billfold.domain import errors
from billfold.entrypoints.cli._console import console, err_console, fail, settings_or_exit

if TYPE_CHECKING:
    from billfold.service.maintenance import Maintenance

db_app = typer.Typer(help="Database schema: upgrade and inspect.", no_args_is_help=True)


@contextmanager
def maintenance() -> Iterator[Maintenance]:
    from billfold.bootstrap import schema_only

    settings = settings_or_exit()
    tools = schema_only(settings)
    try:
        yield tools
    except errors.BillfoldError as exc:
        raise fail(f"{exc.message} ({tools.where})") from None
    finally:
        tools.close()


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the database to the newest schema (or to REVISION)."""
    with maintenance() as tools:
        state = tools.upgrade(revision)
    console.print(f"database at {state.after} (was {state.before or 'empty'})")


@db_app.command("current")
def current() -> None:
    """Show the schema revision of the database and whether it is the newest."""
    with maintenance() as tools:
        state = tools.schema()
    note = (
        "up to date"
        if state.current
        else f"behind: run `billfold db upgrade` to reach {state.head}"
    )
    console.print(f"{state.after or 'empty'} ({note})")


def verify() -> None:
    """Check every ledger invariant against the database; exit 1 listing each violation."""
    with maintenance() as tools:
        problems = tools.verify()
    if problems:
        err_console.print(f"[bold red]{len(problems)} violation(s):[/]")
        for line in problems:
            err_console.print(f"  - {line}", highlight=False, markup=False)
        raise typer.Exit(1)
    console.print("[green]ok[/]: invariants 1, 2, 3 and 5 hold.")

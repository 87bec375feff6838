"""What every command shares: the consoles, one-line errors, settings, and the services.

Imports nothing heavy: ``billfold --help`` loads typer and rich, never SQLAlchemy or the Stripe
SDK; each command builds what it needs when it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from billfold.domain import errors
from billfold.settings import Settings, load_settings

if TYPE_CHECKING:
    from billfold.bootstrap import Services

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; raise what this returns to exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def settings_or_exit(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except errors.ConfigurationError as exc:
        raise fail(exc.message) from None


@contextmanager
def services() -> Iterator[Services]:
    """The services for one command; any billfold error ends it with one line."""
    from billfold.bootstrap import build

    settings = settings_or_exit()
    try:
        svc = build(settings)
    except errors.BillfoldError as exc:
        raise fail(exc.message) from None
    try:
        yield svc
    except errors.BillfoldError as exc:
        raise fail(exc.message) from None
    finally:
        svc.close()


def when(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")

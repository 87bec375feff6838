"""``reconcile``: a reconciliation run with Stripe, here and now, on the database directly (no
server needed). Prints drift per class and every item; exits 1 while any drift stays open, 2 when
the run itself failed."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from billfold.entrypoints.cli._console import console, fail, services, when

if TYPE_CHECKING:
    from billfold.domain.reconciliation import RunRecord

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_moment(value: str, *, now: int) -> int:
    """A time, as Unix seconds: a duration back from now (``3d``, ``12h``, ``90m``, ``2w``), a
    date or an ISO time (``2026-11-01``, ``2026-11-01T12:00``, UTC unless it says), or Unix
    seconds."""
    text = value.strip()
    found = _DURATION.match(text)
    if found:
        return now - int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a duration (3d, 12h), a date (2026-11-01) or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def reconcile(
    since: Annotated[
        str | None,
        typer.Option(
            help="start of the window: 3d, 12h, 2026-11-01, or Unix seconds (default 3d; "
            "Stripe keeps events 30 days)"
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="end of the window, in the same forms (default now)")
    ] = None,
) -> None:
    """Reconcile with Stripe: take in every event the inbox lacks, check Stripe's paid sessions,
    paid invoices, refunds, disputes and subscriptions against billfold (and billfold's orders
    against Stripe), heal what Stripe's events can heal, report the rest."""
    with services() as svc:
        now = svc.clock()
        start = None if since is None else parse_moment(since, now=now)
        end = None if until is None else parse_moment(until, now=now)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("starting", total=None)
            shown = [0.0]

            def progress(stage: str, done: int) -> None:
                if time.monotonic() - shown[0] >= 0.05 or done <= 1:
                    shown[0] = time.monotonic()
                    bar.update(task, description=f"reading {stage}: {done}")

            run = svc.reconciliation.run(since=start, until=end, trigger="cli", progress=progress)
    report(run)
    if run.status == "failed":
        raise fail(f"reconciliation run {run.id} failed: {run.error}", code=2)
    if run.open:
        raise typer.Exit(1)


def report(run: RunRecord) -> None:
    console.print(
        f"reconciliation run [bold]{run.id}[/] {run.status}: window {when(run.since)} to "
        f"{when(run.until)}, {run.events_imported} events imported",
        highlight=False,
    )
    counts = Table(title="drift per class")
    for column in ("class", "found", "healed", "open"):
        counts.add_column(column, justify="left" if column == "class" else "right")
    for name, count in run.drift.items():
        style = "bold red" if count.open else None
        counts.add_row(name, str(count.found), str(count.healed), str(count.open), style=style)
    console.print(counts)
    if run.items:
        items = Table(title="items")
        for column in ("class", "stripe", "billfold", "amount", "healed", "note"):
            items.add_column(column, justify="right" if column == "amount" else "left")
        for item in run.items:
            amount = "" if item.amount is None else f"{item.amount} {item.currency or ''}".strip()
            items.add_row(
                item.drift_class,
                escape("\n".join(item.stripe_ids)),
                escape("\n".join(item.billfold_ids)),
                amount,
                "yes" if item.healed else "[bold red]no[/]",
                escape(item.note),
            )
        console.print(items)
    console.print(
        "no drift left open" if not run.open else f"[bold red]{run.open} drift item(s) open[/]"
    )

"""``reconcile``: take in the events Stripe has that the inbox lacks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from billfold.entrypoints.cli._console import console, services


def reconcile(
    since_hours: Annotated[
        int, typer.Option(help="how far back to ask Stripe", min=1, max=24 * 30)
    ] = 72,
) -> None:
    """Ask Stripe's Events API for recent events and take in every one the inbox lacks."""
    with services() as svc:
        since = svc.clock() - since_hours * 3600
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()
        ) as bar:
            task = bar.add_task("reading Stripe's events", total=None)
            counts = svc.inbox.import_from_stripe(
                since=since,
                progress=lambda eid: bar.update(task, description=f"checked {eid}"),
            )
    console.print(
        f"{counts.seen} events seen, {counts.missing} were missing: "
        f"{counts.processed} processed, {counts.failed} failed (see `billfold events list`)"
    )

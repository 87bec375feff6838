"""The event inbox: ``events list``, ``show``, ``retry``, ``replay``."""

from __future__ import annotations

import json
from typing import Annotated, cast

import typer
from rich.table import Table

from billfold.domain import errors
from billfold.domain.records import EVENT_STATUSES, EventStatus
from billfold.entrypoints.cli._console import console, fail, services, when

events_app = typer.Typer(help="The event inbox: list, show, retry, replay.", no_args_is_help=True)


@events_app.command("list")
def events_list(
    status: Annotated[str | None, typer.Option(help=", ".join(EVENT_STATUSES))] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Stripe event type")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """The newest events in the inbox."""
    if status is not None and status not in EVENT_STATUSES:
        raise fail(f"--status must be one of {', '.join(EVENT_STATUSES)}")
    with services() as svc:
        page = svc.views.events(status=cast(EventStatus | None, status), type_=type_, limit=limit)
    table = Table("id", "type", "status", "attempts", "received", "outcome / last error")
    for e in page.data:
        table.add_row(
            e.id,
            e.type,
            e.status,
            str(e.attempts),
            when(e.received_at),
            (e.last_error or e.outcome or "")[:80],
        )
    console.print(table if page.data else "no events")


@events_app.command("show")
def events_show(event_id: str) -> None:
    """One event, with the payload exactly as Stripe sent it."""
    with services() as svc:
        try:
            record = svc.views.event(event_id)
        except errors.EventNotFound:
            raise fail(
                f"no event {event_id!r} in the inbox; `billfold events list` shows what is there"
            ) from None
    console.print(
        f"{record.id}  {record.type}  [bold]{record.status}[/]  attempts {record.attempts}\n"
        f"received {when(record.received_at)}  processed {when(record.processed_at)}\n"
        f"outcome: {record.outcome or '-'}\nlast error: {record.last_error or '-'}",
        markup=True,
        highlight=False,
    )
    try:
        console.print_json(record.payload or "{}")
    except json.JSONDecodeError:
        console.print(record.payload or "", markup=False)


@events_app.command("retry")
def events_retry(event_id: str) -> None:
    """Process a failed or dead event now."""
    with services() as svc:
        retried = svc.inbox.retry(event_id, by="operator:cli")
    console.print(f"{retried.event.id}: {retried.event.status} ({retried.outcome.note or ''})")


@events_app.command("replay")
def events_replay(event_id: str) -> None:
    """Process an event again whatever its status; keyed effects make it safe."""
    with services() as svc:
        outcome = svc.inbox.replay(event_id, by="operator:cli")
    console.print(f"{event_id}: {outcome.status} ({outcome.note or ''})")

"""Notifications to the application: ``notifications list``, ``show``, ``redeliver``."""

from __future__ import annotations

import json
from typing import Annotated, cast

import typer
from rich.table import Table

from billfold.domain import errors
from billfold.domain import notifications as rules
from billfold.domain.notifications import NotificationStatus
from billfold.entrypoints.cli._console import console, fail, services, when

notifications_app = typer.Typer(
    help="Notifications to the application: list, show, redeliver.", no_args_is_help=True
)


@notifications_app.command("list")
def notifications_list(
    status: Annotated[str | None, typer.Option(help=", ".join(rules.STATUSES))] = None,
    type_: Annotated[str | None, typer.Option("--type", help="notification type")] = None,
    account: Annotated[str | None, typer.Option(help="account id")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """The newest notifications in the outbox."""
    if status is not None and status not in rules.STATUSES:
        raise fail(f"--status must be one of {', '.join(rules.STATUSES)}")
    if type_ is not None and type_ not in rules.TYPES:
        raise fail(f"--type must be one of {', '.join(rules.TYPES)}")
    with services() as svc:
        rows, _ = svc.notifications.page(
            status=cast(NotificationStatus | None, status),
            type_=type_,
            account_id=account,
            limit=limit,
        )
    table = Table("id", "type", "account", "status", "attempts", "created", "next / last error")
    for n in rows:
        table.add_row(
            n.id,
            n.type,
            n.account_id or "",
            n.status,
            str(n.attempts),
            when(n.created),
            (n.last_error or (when(n.next_attempt_at) if n.status == "pending" else ""))[:80],
        )
    console.print(table if rows else "no notifications")


@notifications_app.command("show")
def notifications_show(notification_id: str) -> None:
    """One notification, with the body billfold POSTs."""
    with services() as svc:
        try:
            n = svc.notifications.get(notification_id)
        except errors.NotificationNotFound:
            raise fail(
                f"no notification {notification_id!r}; `billfold notifications list` shows them"
            ) from None
    console.print(
        f"{n.id}  {n.type}  [bold]{n.status}[/]  attempts {n.attempts}\n"
        f"created {when(n.created)}  next attempt {when(n.next_attempt_at)}\n"
        f"last error: {n.last_error or '-'}",
        markup=True,
        highlight=False,
    )
    console.print_json(json.dumps(n.body()))


@notifications_app.command("redeliver")
def notifications_redeliver(notification_id: str) -> None:
    """Send a notification again (a dead one too), from the first attempt of the schedule."""
    with services() as svc:
        try:
            n = svc.notifications.redeliver(notification_id)
        except errors.NotificationNotFound:
            raise fail(f"no notification {notification_id!r}") from None
    console.print(f"{n.id}: {n.status}, the worker delivers it now")

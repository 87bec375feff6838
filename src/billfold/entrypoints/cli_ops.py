"""Operator commands: events, orders, grants, balances, reconciliation with Stripe."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from billfold.bootstrap import Services, build
from billfold.domain import errors
from billfold.service import ledger as ops
from billfold.service.orders import Resolution

events_app = typer.Typer(help="The event inbox: list, show, retry, replay.", no_args_is_help=True)
orders_app = typer.Typer(
    help="Orders: list, resolve those needing attention.", no_args_is_help=True
)


@contextmanager
def services() -> Iterator[Services]:
    from billfold.entrypoints import cli

    settings = cli.settings_or_exit()
    try:
        svc = build(settings)
    except errors.BillfoldError as exc:
        raise cli.fail(exc.message) from None
    try:
        yield svc
    except errors.BillfoldError as exc:
        raise cli.fail(exc.message) from None
    finally:
        svc.close()


def _when(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print(obj: object) -> None:
    from billfold.entrypoints.cli import console

    console.print(obj)


@events_app.command("list")
def events_list(
    status: Annotated[
        str | None, typer.Option(help="received, processed, ignored, failed, dead")
    ] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Stripe event type")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """The newest events in the inbox."""
    with services() as svc, svc.uow() as uow:
        rows = uow.inbox.list(status=status, type_=type_, limit=limit, starting_after=None)
    table = Table("id", "type", "status", "attempts", "received", "outcome / last error")
    for e in rows:
        table.add_row(
            e.id,
            e.type,
            e.status,
            str(e.attempts),
            _when(e.received_at),
            (e.last_error or e.outcome or "")[:80],
        )
    _print(table if rows else "no events")


@events_app.command("show")
def events_show(event_id: str) -> None:
    """One event, with the payload exactly as Stripe sent it."""
    with services() as svc, svc.uow() as uow:
        record = uow.inbox.get(event_id)
    if record is None:
        from billfold.entrypoints.cli import fail

        raise fail(
            f"no event {event_id!r} in the inbox; `billfold events list` shows what is there"
        )
    _print(
        f"{record.id}  {record.type}  [bold]{record.status}[/]  attempts {record.attempts}\n"
        f"received {_when(record.received_at)}  processed {_when(record.processed_at)}\n"
        f"outcome: {record.outcome or '-'}\nlast error: {record.last_error or '-'}"
    )
    _print(json.dumps(json.loads(record.payload or "{}"), indent=2))


@events_app.command("retry")
def events_retry(event_id: str) -> None:
    """Process a failed or dead event now."""
    with services() as svc:
        record, outcome = svc.events.retry(event_id, stripe=svc.stripe)
    _print(f"{record.id}: {record.status} ({outcome.note or ''})")


@events_app.command("replay")
def events_replay(event_id: str) -> None:
    """Process an event again whatever its status; keyed effects make it safe."""
    with services() as svc:
        outcome = svc.events.replay(event_id, stripe=svc.stripe)
    _print(f"{event_id}: {outcome.status} ({outcome.note or ''})")


@orders_app.command("list")
def orders_list(
    status: Annotated[str | None, typer.Option(help="e.g. needs_attention")] = None,
    account: Annotated[str | None, typer.Option(help="account id")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """The newest orders."""
    with services() as svc, svc.uow() as uow:
        rows = uow.orders.list(status=status, account_id=account, limit=limit, starting_after=None)
    table = Table("id", "status", "account", "package", "amount", "stripe", "reason")
    for o in rows:
        amount = f"{o.amount} {o.currency}" if o.amount is not None else "-"
        table.add_row(
            o.id,
            o.status,
            o.account_id or "-",
            o.package or "-",
            amount,
            o.stripe_id,
            (o.status_reason or "")[:60],
        )
    _print(table if rows else "no orders")


@orders_app.command("resolve")
def orders_resolve(
    order_id: str,
    account: Annotated[str | None, typer.Option(help="the account to grant to")] = None,
    package: Annotated[str | None, typer.Option(help="the package to grant")] = None,
) -> None:
    """Fulfil an order in needs_attention (once, whoever else tries)."""
    with services() as svc, svc.uow() as uow:
        order = svc.orders.resolve(
            uow,
            order_id,
            Resolution(account_id=account, package=package, by="cli"),
            svc.clock(),
        )
        uow.commit()
    _print(f"{order.id}: {order.status} -> {order.account_id} ({order.package})")


def grant(
    account_id: str,
    unit: str,
    amount: int,
    reason: Annotated[str, typer.Option(help="why; recorded with the grant (required)")],
    expires_in_days: Annotated[int | None, typer.Option(min=1)] = None,
    key: Annotated[str | None, typer.Option(help="idempotency key (default: a new one)")] = None,
) -> None:
    """Grant AMOUNT of UNIT to ACCOUNT_ID by hand (an adjustment)."""
    with services() as svc:
        now = svc.clock()
        result = svc.ledger.grant(
            ops.Grant(
                key=key or f"cli:grant:{time.time_ns()}",
                account_id=account_id,
                unit=unit,
                amount=amount,
                reason=reason,
                kind="manual",
                expires_at=now + expires_in_days * 86_400 if expires_in_days else None,
            )
        )
    _print(
        f"granted {result.amount} {unit} to {account_id}: balance {result.balance} ({result.grant_id})"
    )


def balance(account_id: str) -> None:
    """An account's balances, held amounts and debt, per unit."""
    with services() as svc:
        views = svc.ledger.balances(account_id)
    if not views:
        _print(f"{account_id} has no balances")
        return
    table = Table("unit", "available", "held", "debt")
    for unit, view in views.items():
        table.add_row(unit, str(view.available), str(view.held), str(view.debt))
    _print(table)


def reconcile(
    since_hours: Annotated[
        int, typer.Option(help="how far back to ask Stripe", min=1, max=24 * 30)
    ] = 72,
) -> None:
    """Ask Stripe's Events API for recent events and take in every one the inbox lacks."""
    with services() as svc:
        stripe = svc.require_stripe()
        since = svc.clock() - since_hours * 3600
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()
        ) as bar:
            task = bar.add_task("reading Stripe's events", total=None)
            counts = svc.events.reconcile(
                stripe,
                since=since,
                progress=lambda eid: bar.update(task, description=f"checked {eid}"),
            )
    _print(
        f"{counts['seen']} events seen, {counts['missing']} were missing: "
        f"{counts['processed']} processed, {counts['failed']} failed (see `billfold events list`)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")
    app.add_typer(orders_app, name="orders")
    app.command("grant")(grant)
    app.command("balance")(balance)
    app.command("reconcile")(reconcile)

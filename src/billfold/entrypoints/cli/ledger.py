"""Balances by hand: ``grant`` and ``balance``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from billfold.entrypoints.cli._console import console, services, when
from billfold.service.ledger import Grant

if TYPE_CHECKING:
    from billfold.service.explain import Explanation


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
            Grant(
                key=key or f"cli:grant:{time.time_ns()}",
                account_id=account_id,
                unit=unit,
                amount=amount,
                reason=reason,
                kind="manual",
                expires_at=now + expires_in_days * 86_400 if expires_in_days else None,
            )
        )
    console.print(
        f"granted {result.amount} {unit} to {account_id}: balance {result.balance} "
        f"({result.grant_id})"
    )


def balance(
    account_id: str,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="list the lots that make up the balance, their provenance and draws, the holds, "
            "debt and reversals, and show that they add up",
        ),
    ] = False,
    unit: Annotated[
        str | None, typer.Option(help="the unit to explain (default: the catalog's first)")
    ] = None,
) -> None:
    """An account's balances, held amounts and debt, per unit (``--explain``: what one is made
    of)."""
    if explain:
        with services() as svc:
            explained = svc.views.explain(account_id, unit, must_exist=True)
        _print_explanation(explained)
        return
    with services() as svc:
        views = svc.ledger.balances(account_id)
    if not views:
        console.print(f"{account_id} has no balances")
        return
    table = Table("unit", "available", "held", "debt")
    for unit, view in views.items():
        table.add_row(unit, str(view.available), str(view.held), str(view.debt))
    console.print(table)


def _print_explanation(x: Explanation) -> None:
    lots = Table(
        "lot",
        "kind",
        "origin",
        "stripe",
        "amount",
        "remaining",
        "held",
        "priority",
        "expires",
        title=f"{x.account_id}: {x.unit} lots",
    )
    draws = Table("lot", "transaction", "kind", "amount", "when", title="draws")
    for lot in x.lots:
        stripe = lot.origin.stripe
        ids = [stripe.checkout_session, stripe.invoice, stripe.payment_intent, stripe.charge]
        origin = lot.origin.type + (f" {lot.origin.order_id}" if lot.origin.order_id else "")
        lots.add_row(
            lot.grant_id,
            lot.kind,
            origin,
            " ".join(i for i in ids if i) or "-",
            str(lot.amount),
            str(lot.remaining),
            str(lot.held),
            str(lot.priority),
            when(lot.expires_at),
        )
        for d in lot.draws:
            draws.add_row(
                lot.grant_id,
                d.transaction_id or "(expiry not yet swept)",
                d.kind,
                str(d.amount),
                when(d.created),
            )
    console.print(lots)
    if draws.row_count:
        console.print(draws)
    if x.holds:
        holds = Table("hold", "amount", "expires", "reason", title="holds")
        for h in x.holds:
            holds.add_row(h.hold_id, str(h.amount), when(h.expires_at), h.reason or "-")
        console.print(holds)
    if x.reversals:
        reversals = Table(
            "reversal",
            "order",
            "status",
            "state",
            "recovered",
            "debt",
            "unrecovered",
            "held",
            title="reversals",
        )
        for r in x.reversals:
            reversals.add_row(
                f"{r.kind} {r.stripe_id}",
                r.order_id or "-",
                r.status,
                r.state,
                str(r.recovered),
                str(r.debt),
                str(r.unrecovered),
                str(r.held),
            )
        console.print(reversals)
    remaining = sum(lot.remaining for lot in x.lots)
    console.print(
        f"lots {remaining} - held {x.held} - debt {x.debt} = balance {x.balance} {x.unit}",
        highlight=False,
    )

"""Balances by hand: ``grant`` and ``balance``."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from billfold.entrypoints.cli._console import console, services
from billfold.service.ledger import Grant


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


def balance(account_id: str) -> None:
    """An account's balances, held amounts and debt, per unit."""
    with services() as svc:
        views = svc.ledger.balances(account_id)
    if not views:
        console.print(f"{account_id} has no balances")
        return
    table = Table("unit", "available", "held", "debt")
    for unit, view in views.items():
        table.add_row(unit, str(view.available), str(view.held), str(view.debt))
    console.print(table)

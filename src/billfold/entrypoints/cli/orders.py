"""Orders: ``orders list`` and ``orders resolve``."""

from __future__ import annotations

from typing import Annotated, cast

import typer
from rich.table import Table

from billfold.domain.orders import ORDER_STATUSES, OrderStatus
from billfold.entrypoints.cli._console import console, fail, services
from billfold.service.orders.desk import ResolveOrder

orders_app = typer.Typer(
    help="Orders: list, resolve those needing attention.", no_args_is_help=True
)


@orders_app.command("list")
def orders_list(
    status: Annotated[str | None, typer.Option(help="e.g. needs_attention")] = None,
    account: Annotated[str | None, typer.Option(help="account id")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """The newest orders."""
    if status is not None and status not in ORDER_STATUSES:
        raise fail(f"--status must be one of {', '.join(ORDER_STATUSES)}")
    with services() as svc:
        page = svc.views.orders(
            status=cast(OrderStatus | None, status), account_id=account, limit=limit
        )
    table = Table("id", "status", "account", "package", "amount", "stripe", "reason")
    for o in page.data:
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
    console.print(table if page.data else "no orders")


@orders_app.command("resolve")
def orders_resolve(
    order_id: str,
    account: Annotated[str | None, typer.Option(help="the account to grant to")] = None,
    package: Annotated[str | None, typer.Option(help="the package to grant")] = None,
) -> None:
    """Fulfil an order in needs_attention (once, whoever else tries)."""
    with services() as svc:
        order = svc.orders.resolve(
            ResolveOrder(order_id=order_id, account_id=account, package=package, by="cli")
        )
    console.print(f"{order.id}: {order.status} -> {order.account_id} ({order.package})")

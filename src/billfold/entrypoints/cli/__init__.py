"""The ``billfold`` command line: one module per command group.

    server.py      serve, worker, dev
    db.py          db upgrade, db current, verify
    events.py      events list / show / retry / replay
    orders.py      orders list / resolve
    ledger.py      grant, balance
    reconcile.py   reconcile
    audit.py       audit (the chaos audit; its driver is billfold.audit)
    subscriptions.py  subscriptions list / show / sync
    _console.py    consoles, one-line errors, settings, the services

``billfold --help`` imports none of SQLAlchemy, the Stripe SDK or the web framework: each command
builds what it needs when it runs.
"""

from __future__ import annotations

import sys

import typer

from billfold.domain import errors
from billfold.entrypoints.cli import (
    audit,
    db,
    events,
    ledger,
    notifications,
    orders,
    reconcile,
    server,
    subscriptions,
)
from billfold.entrypoints.cli._console import err_console

app = typer.Typer(
    name="billfold",
    help="Stripe payments into prepaid credits, wallet balances and entitlements, exactly once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(server.serve)
app.command()(server.dev)
app.command()(server.worker)
app.add_typer(db.db_app, name="db")
app.command()(db.verify)
app.add_typer(events.events_app, name="events")
app.add_typer(orders.orders_app, name="orders")
app.add_typer(notifications.notifications_app, name="notifications")
app.add_typer(subscriptions.subscriptions_app, name="subscriptions")
app.command()(ledger.grant)
app.command()(ledger.balance)
app.command()(reconcile.reconcile)
app.command()(audit.audit)


def main() -> None:
    try:
        app()
    except errors.ConfigurationError as exc:
        err_console.print(f"error: {exc.message}", highlight=False, markup=False)
        sys.exit(2)

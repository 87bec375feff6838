"""Subscriptions: ``subscriptions list``, ``subscriptions show`` and ``subscriptions sync``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from billfold.entrypoints.cli._console import console, fail, services, when

subscriptions_app = typer.Typer(
    help="Subscriptions: list them, show an account's plan, sync from Stripe.",
    no_args_is_help=True,
)


@subscriptions_app.command("list")
def subscriptions_list(
    account: Annotated[str | None, typer.Option(help="only this account's")] = None,
    status: Annotated[str | None, typer.Option(help="e.g. past_due")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """Subscriptions as billfold keeps them (a plan of "-" : no catalog plan sells its price)."""
    with services() as svc:
        if account is not None:
            rows = list(svc.billing.subscriptions(account, limit=limit).data)
            if status is not None:
                rows = [r for r in rows if r.status == status]
        else:
            rows = list(svc.billing.list_all(status=status, limit=limit).data)
    table = Table("id", "account", "plan", "status", "period end", "cancels", "past due since")
    for r in rows:
        cancels = when(r.ends_at()) if r.ends_at() is not None else "-"
        table.add_row(
            r.id,
            r.account_id or "-",
            r.plan or "-",
            r.status or "(no state yet)",
            when(r.current_period_end),
            cancels,
            when(r.past_due_since),
        )
    console.print(table if rows else "no subscriptions")


@subscriptions_app.command("show")
def subscriptions_show(account: str) -> None:
    """An account's entitlements now (plan, where it comes from, grace) and its subscriptions."""
    with services() as svc:
        found = svc.billing.entitlements(account)
        rows = list(svc.billing.subscriptions(account, limit=100).data)
    source = {"subscription": "a subscription", "grace": "grace after a failed payment"}.get(
        found.source, "the default plan"
    )
    console.print(f"[bold]{account}[/]: plan [bold]{found.plan or '-'}[/] from {source}")
    if found.grace_until is not None:
        console.print(f"grace until {when(found.grace_until)} UTC")
    if found.current_period_end is not None:
        console.print(f"current period ends {when(found.current_period_end)} UTC")
    features = ", ".join(f"{k}={'on' if v else 'off'}" for k, v in found.features.items())
    limits = ", ".join(f"{k}={'unlimited' if v is None else v}" for k, v in found.limits.items())
    console.print(f"features: {features or '-'}")
    console.print(f"limits: {limits or '-'}")
    table = Table("id", "plan", "status", "period end", "cancel at period end")
    for r in rows:
        table.add_row(
            r.id,
            r.plan or "-",
            r.status or "-",
            when(r.current_period_end),
            "yes" if r.cancel_at_period_end else "no",
        )
    if rows:
        console.print(table)


@subscriptions_app.command("sync")
def subscriptions_sync(
    account: Annotated[str | None, typer.Option(help="sync this account")] = None,
    all_: Annotated[bool, typer.Option("--all", help="sync every account with a customer")] = False,
) -> None:
    """Re-read subscriptions and their latest paid invoices from Stripe and repair what billfold
    missed (dropped or late webhooks), through the webhooks' path: nothing is granted twice."""
    if (account is None) == (not all_):
        raise fail("name one: --account ID, or --all")
    with services() as svc:
        if account is not None:
            report = svc.billing.sync(account)
        else:
            with Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("syncing accounts", total=None)

                def step(done: int, total: int, account_id: str) -> None:
                    bar.update(task, completed=done, total=total, description=account_id[:40])

                report = svc.billing.sync_all(progress=step)
    console.print(
        f"synced {report.accounts} account(s), {report.subscriptions} subscription(s): "
        f"{len(report.changes)} change(s), {len(report.failures)} failure(s)"
    )
    if report.changes:
        table = Table("account", "subscription", "what changed")
        for c in report.changes:
            table.add_row(c.account_id, c.subscription_id, c.what)
        console.print(table)
    for failure in report.failures:
        console.print(f"[red]failed:[/] {failure}", highlight=False)
    if report.failures:
        raise typer.Exit(1)

"""``audit``: the chaos audit. Drive purchases, renewals, refunds and disputes through the Stripe
simulator under chaos delivery, then print what money came in against what credits went out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from billfold.domain import errors
from billfold.domain.money import format_money
from billfold.entrypoints.cli._console import console, err_console, fail

if TYPE_CHECKING:
    from billfold.audit.driver import AuditResult


def audit(
    purchases: Annotated[
        int, typer.Option("-n", "--purchases", help="Credit packs to buy.", min=0)
    ] = 200,
    refund_share: Annotated[
        float, typer.Option(help="Share of payments refunded (full, partial, two partials).")
    ] = 0.2,
    dispute_share: Annotated[
        float, typer.Option(help="Share of payments disputed (then won or lost, half each).")
    ] = 0.1,
    renewals: Annotated[
        int, typer.Option(help="Subscription renewals, by advancing Stripe test clocks.", min=0)
    ] = 6,
    subscriptions: Annotated[
        int | None,
        typer.Option(
            help="Subscriptions the renewals are spread over (default: renewals/3).", min=1
        ),
    ] = None,
    chaos: Annotated[
        bool,
        typer.Option(
            help="Deliver webhooks as badly as Stripe may: twice, shuffled, late, first "
            "attempts lost."
        ),
    ] = True,
    kill: Annotated[
        bool,
        typer.Option(help="kill -9 the billfold server at random moments and restart it."),
    ] = False,
    concurrency: Annotated[
        int, typer.Option(help="Customers buying at the same time.", min=1, max=256)
    ] = 8,
    seed: Annotated[int | None, typer.Option(help="Seed of every random draw.")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="The database of the billfold the audit starts (default: a new SQLite file); "
            "with --url, the running billfold's database (verified and read)."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="Audit a running billfold (its simulator at <url>/stripe, as in dev)."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="With --url: a server API key.", envvar="BILLFOLD_API_KEY")
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(help="With --url: the admin token.", envvar="BILLFOLD_ADMIN_TOKEN"),
    ] = None,
    stripe_key: Annotated[
        str | None,
        typer.Option(
            help="With --url: the simulator's test key (sk_test_...).",
            envvar="BILLFOLD_STRIPE_SECRET_KEY",
        ),
    ] = None,
    stripe_api_base: Annotated[
        str | None, typer.Option(help="With --url: the simulator (default <url>/stripe).")
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(help="The catalog (default the bundled example).", envvar="BILLFOLD_CATALOG"),
    ] = None,
    server_processes: Annotated[
        int, typer.Option(help="Processes of the billfold the audit starts.", min=1, max=16)
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Drive purchases, renewals, refunds and disputes through the Stripe simulator under chaos,
    then audit money against credits per package and plan; exit 0 only when it is all clean."""
    from billfold.audit.driver import AuditOptions, run

    try:
        options = AuditOptions(
            purchases=purchases,
            refund_share=refund_share,
            dispute_share=dispute_share,
            renewals=renewals,
            subscriptions=subscriptions,
            chaos=chaos,
            kill=kill,
            concurrency=concurrency,
            seed=seed,
            database_url=database_url,
            url=url,
            api_key=api_key,
            admin_token=admin_token,
            stripe_key=stripe_key,
            stripe_api_base=stripe_api_base,
            catalog=catalog,
            server_processes=server_processes,
        )
    except errors.BillfoldError as exc:
        raise fail(exc.message, code=2) from None
    bar_console = err_console if as_json else console
    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=bar_console,
        transient=as_json,
    ) as bar:
        tasks: dict[str, Any] = {}

        steps: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total or 1)
            bar.update(tasks[phase], completed=done if total else 1, total=total or 1)
            if not bar_console.is_terminal:
                # No live bar in a log file: a line at every tenth of the way instead.
                step = 10 * done // total if total else 0
                if steps.get(phase) != step:
                    steps[phase] = step
                    bar_console.print(f"{phase}: {done}/{total}", highlight=False)

        try:
            result = run(options, progress)
        except errors.BillfoldError as exc:
            raise fail(exc.message, code=2) from None
        for task in tasks.values():
            bar.update(task, completed=bar.tasks[task].total)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        show(result, console)
    if not result.clean:
        raise typer.Exit(1)


def show(result: AuditResult, out: Console) -> None:
    """The audit as tables: money to credits per package and plan, then the checks."""
    data = result.to_json()
    table = Table(title=f"Money to credits (audit {data['run_id']}, {data['database']})")
    for column in ("", "payments", "money paid", "refunded", "disputes won/lost", "unit"):
        table.add_column(column, justify="left" if column in ("", "unit") else "right")
    for column in ("granted", "clawed back", "expected", "held", "difference"):
        table.add_column(column, justify="right")
    for group in data["groups"]:
        money = group["money_paid"]
        refunded = group["money_refunded"]
        currency = group["currency"]
        first = True
        for unit, line in group["units"].items() or [("-", None)]:
            diff = line["difference"] if line else {"granted": 0, "clawed_back": 0, "held": 0}
            bad = any(diff.values()) or money["expected"] != money["actual"]
            bad = bad or refunded["expected"] != refunded["actual"]
            style = "bold red" if bad else ""
            table.add_row(
                f"{group['kind']} {group['item']}" if first else "",
                str(group["payments"]) if first else "",
                _money_cell(money, currency) if first else "",
                _money_cell(refunded, currency) if first else "",
                f"{group['disputes']['won']}/{group['disputes']['lost']}" if first else "",
                unit,
                _cell(line["granted"]) if line else "",
                str(line["clawed_back"]["actual"]) if line else "",
                str(line["clawed_back"]["expected"]) if line else "",
                str(line["held"]["actual"]) if line else "",
                " / ".join(str(v) for v in diff.values()),
                style=style,
            )
            first = False
    out.print(table)
    drift = Table("drift", "found", title="Drift (per payment, against Stripe)")
    for name, found in data["drift"].items():
        drift.add_row(name, str(found), style="bold red" if found else "")
    out.print(drift)
    for problem in data["problems"][:20]:
        out.print(
            f"  [red]{problem['class']}[/] {problem['stripe_id'] or ''} "
            f"{problem['billfold_id'] or ''}: {problem['message']}",
            highlight=False,
        )
    rec = data["reconciliation"]
    events = data["events"]
    deliveries = data["deliveries"]
    verify = "[green]ok[/]" if not data["verify"] else f"[red]{len(data['verify'])} violation(s)[/]"
    out.print(f"verify: {verify}")
    for line in data["verify"][:20]:
        out.print(f"  - {line}", highlight=False, markup=False)
    state = "[red]failed[/]" if rec["failed_run"] else "completed"
    drift_open = f"[red]{rec['drift_open']} open[/]" if rec["drift_open"] else "0 open"
    out.print(
        f"reconciliation: {state}, {rec['events_imported']} events taken in from Stripe's "
        f"Events API; drift {rec['drift_found']} found, {rec['drift_healed']} healed, {drift_open}"
    )
    out.print(
        "inbox: "
        + ", ".join(f"{n} {s}" for s, n in sorted(events.items()))
        + " · deliveries: "
        + ", ".join(f"{n} {s}" for s, n in sorted(deliveries.items()))
        + f" · kills: {data['kills']}"
    )
    phases = ", ".join(f"{k} {v:g} s" for k, v in data["phases"].items())
    out.print(f"took {data['seconds']:g} s ({phases})")
    if data["clean"]:
        out.print(
            "[bold green]CLEAN[/]: every payment granted once, every reversal taken back once."
        )
    else:
        out.print("[bold red]NOT CLEAN[/]: see the differences above.")


def _cell(pair: dict[str, int]) -> str:
    if pair["expected"] == pair["actual"]:
        return str(pair["actual"])
    return f"{pair['actual']} (expected {pair['expected']})"


def _money_cell(pair: dict[str, int], currency: str) -> str:
    text = format_money(pair["actual"], currency)
    if pair["expected"] != pair["actual"]:
        text += f" (expected {format_money(pair['expected'], currency)})"
    return text

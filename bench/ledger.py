"""The ledger benchmark (issue 2): spends per second and the cost of a balance read.

Through the storage layer (``Ledger`` over ``SqlUnitOfWork`` and ``make_engine``), no HTTP.

Spends: one unit at a time, (a) all on one hot account, (b) each on one of 10,000 accounts picked at
random; at concurrency 1 and 16 (threads sharing one ``Ledger`` and one engine whose pool holds at
least one connection per thread). Every account starts with one grant, bulk-loaded. Each run uses a
fresh database, warms up (connections, statement caches) with a few hundred spends, then measures.
After each run ``billfold.adapters.db.verify.verify`` must find the ledger sound.

Balance reads: ``ledger.balances(account)`` on an account with 3 grants and 2 spends, in a database
holding only that account's 10 ledger lines, and in one also holding about 1,000,000 lines of
10,000 other accounts (5 grants and 45 spends each), bulk-loaded with COPY/executemany straight into
the tables, consistent enough for ``verify`` to pass. 2,000 timed reads after 200 warm-up reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from bench.common import (
    Context,
    Holding,
    Record,
    WorkerRun,
    bulk_load,
    checkpoint,
    count_rows,
    median,
    percentile,
    run_workers,
    split,
)
from billfold.adapters.db import engine as db_engine
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.db.verify import verify
from billfold.bootstrap import wall_clock
from billfold.service.ledger import Ledger, Spend

NAME = "ledger"
UNIT = "credits"
READER = "bench_reader"

# Targets from issue 2, for PostgreSQL on a 2-core machine.
TARGET_SPREAD = 2_000.0
TARGET_HOT = 800.0
# "No slower at 1M lines than at 10", allowing for the noise of a shared machine.
READ_TOLERANCE = 1.2


@dataclass(frozen=True)
class Sizes:
    spend_accounts: int  # accounts the "spread" scenario draws from
    spends: dict[int, int]  # measured spends per run, by concurrency
    spend_warmup: int
    concurrency: tuple[int, ...]
    reads: int
    read_warmup: int
    filler_accounts: int  # the big read database: accounts x (grants + spends) x 2 lines
    filler_grants: int
    filler_spends: int


FULL = Sizes(
    spend_accounts=10_000,
    spends={1: 2_000, 16: 4_000},
    spend_warmup=320,
    concurrency=(1, 16),
    reads=2_000,
    read_warmup=200,
    filler_accounts=10_000,
    filler_grants=5,
    filler_spends=45,
)
QUICK = Sizes(
    spend_accounts=10_000,
    spends={1: 150, 16: 320},
    spend_warmup=32,
    concurrency=(1, 16),
    reads=300,
    read_warmup=30,
    filler_accounts=1_000,
    filler_grants=2,
    filler_spends=8,
)

SCENARIOS = {"hot": "1 hot account", "spread": "10,000 accounts"}


def run(ctx: Context) -> list[Record]:
    sizes = QUICK if ctx.quick else FULL
    records = spend_benchmarks(ctx, sizes)
    records += read_benchmarks(ctx, sizes)
    ctx.notes.extend(
        [
            "spends: ops/s = measured spends / wall seconds of a run; the headline is the median "
            "of the runs, the per-run figures follow. p50/p99 are per-spend latencies (median over "
            "the runs of each run's percentile). Each run: fresh database, every account with one "
            f"bulk-loaded grant, {sizes.spend_warmup} warm-up spends, then the measured spends; "
            "verify() after each run.",
            "reads: latency of `Ledger.balances(account)` (one unit of work: balances + "
            "pending-expiry queries), single thread; median over the runs of each run's median and "
            "p99. ratio = (1M-line database) / (10-line database); 'meets' allows 20% noise.",
            f"targets (PostgreSQL): >= {TARGET_SPREAD:,.0f} spends/s spread, >= {TARGET_HOT:,.0f} "
            "spends/s on one hot account, balance read at 1M lines no slower than at 10.",
            "threads are Python threads: with 2 cores and the GIL, the client and PostgreSQL share "
            "the CPU; numbers on a shared, noisy machine vary by 10-20% between runs.",
        ]
    )
    return records


# --- spends --------------------------------------------------------------------------------------


def _spend_commands(
    accounts: list[str], scenario: str, n: int, prefix: str, rng: random.Random
) -> list[Spend]:
    if scenario == "hot":
        return [
            Spend(key=f"{prefix}-{i}", account_id=accounts[0], unit=UNIT, amount=1)
            for i in range(n)
        ]
    return [
        Spend(key=f"{prefix}-{i}", account_id=rng.choice(accounts), unit=UNIT, amount=1)
        for i in range(n)
    ]


def _spend_run(
    ctx: Context,
    database: str,
    scenario: str,
    concurrency: int,
    ops: int,
    sizes: Sizes,
    run_no: int,
    on_progress: Any,
) -> tuple[WorkerRun, list[str]]:
    accounts = [f"acct_{i:05d}" for i in range(sizes.spend_accounts)]
    rng = random.Random(f"{scenario}-{concurrency}-{run_no}")
    with ctx.fresh_database(database) as url:
        bulk_load(url, [Holding(accounts=accounts, grants=1, spends=0, grant_amount=10**12)])
        checkpoint(url)
        engine = db_engine.make_engine(url, pool_size=max(concurrency, 1))
        try:
            ledger = Ledger(lambda: SqlUnitOfWork(engine), wall_clock)
            warm = _spend_commands(accounts, scenario, sizes.spend_warmup, f"warm{run_no}", rng)
            warm_run = run_workers(ledger.spend, split(warm, concurrency))
            if warm_run.errors:
                raise RuntimeError(f"warm-up spends failed: {dict(warm_run.errors)}")
            measured = _spend_commands(accounts, scenario, ops, f"run{run_no}", rng)
            result = run_workers(
                ledger.spend, split(measured, concurrency), on_progress=on_progress
            )
            problems = verify(engine)
        finally:
            engine.dispose()
    return result, problems


def spend_benchmarks(ctx: Context, sizes: Sizes) -> list[Record]:
    records = []
    for database in ctx.databases:
        for scenario, label in SCENARIOS.items():
            for concurrency in sizes.concurrency:
                ops = sizes.spends[concurrency]
                task = ctx.progress.add_task(
                    f"spend {scenario:<6} {database:<10} c={concurrency:<2}", total=ops * ctx.runs
                )
                runs: list[WorkerRun] = []
                problems: list[str] = []
                for run_no in range(ctx.runs):
                    base = run_no * ops

                    def progress(done: int, base: int = base, task: Any = task) -> None:
                        ctx.progress.update(task, completed=base + done)

                    result, found = _spend_run(
                        ctx, database, scenario, concurrency, ops, sizes, run_no, progress
                    )
                    runs.append(result)
                    problems += found
                ctx.progress.update(task, completed=ops * ctx.runs)
                rates = [r.ops / r.seconds for r in runs]
                target = TARGET_HOT if scenario == "hot" else TARGET_SPREAD
                errors = sum(sum(r.errors.values()) for r in runs)
                if problems:
                    ctx.log(
                        f"[red]verify found problems ({database}, {scenario}):[/] {problems[:5]}"
                    )
                if errors:
                    kinds = sum((r.errors for r in runs), start=runs[0].errors.__class__())
                    ctx.log(
                        f"[red]errors ({database}, {scenario}, c={concurrency}):[/] {dict(kinds)}"
                    )
                records.append(
                    Record(
                        NAME,
                        "spends",
                        {
                            "scenario": label,
                            "database": database,
                            "concurrency": concurrency,
                            "ops": ops,
                            "seconds": median([r.seconds for r in runs]),
                            "ops/s": median(rates),
                            "ops/s per run": [round(x, 1) for x in rates],
                            "p50 ms": median([percentile(r.latencies_ns, 50) / 1e6 for r in runs]),
                            "p99 ms": median([percentile(r.latencies_ns, 99) / 1e6 for r in runs]),
                            "errors": errors,
                            "verify": "ok" if not problems else f"{len(problems)} problems",
                            "target": target if database == "postgresql" else None,
                            "meets": (median(rates) >= target)
                            if database == "postgresql"
                            else None,
                            "durability": ctx.database_settings(database),
                        },
                    )
                )
    return records


# --- balance reads -------------------------------------------------------------------------------


@dataclass
class ReadRun:
    lines: int
    load_seconds: float
    result: WorkerRun
    problems: list[str]


def _read_run(ctx: Context, database: str, big: bool, sizes: Sizes, on_progress: Any) -> ReadRun:
    holdings = []
    if big:
        filler = [f"acct_{i:05d}" for i in range(sizes.filler_accounts)]
        holdings.append(
            Holding(
                accounts=filler,
                grants=sizes.filler_grants,
                spends=sizes.filler_spends,
                grant_amount=1_000,
            )
        )
    # The measured account: 3 grants (the second expiring in a year), 2 spends: 10 lines.
    holdings.append(Holding(accounts=[READER], grants=3, spends=2, grant_amount=1_000))
    with ctx.fresh_database(database) as url:
        stats = bulk_load(url, holdings)
        lines = count_rows(url, "ledger_lines")
        checkpoint(url)
        engine = db_engine.make_engine(url, pool_size=1)
        try:
            problems = verify(engine)
            ledger = Ledger(lambda: SqlUnitOfWork(engine), wall_clock)
            expected = 3 * 1_000 - 2
            got = ledger.balances(READER)[UNIT].available
            if got != expected:
                problems.append(f"balance of {READER} is {got}, expected {expected}")
            run_workers(ledger.balances, [[READER] * sizes.read_warmup])
            result = run_workers(ledger.balances, [[READER] * sizes.reads], on_progress=on_progress)
        finally:
            engine.dispose()
    return ReadRun(lines=lines, load_seconds=stats.seconds, result=result, problems=problems)


def read_benchmarks(ctx: Context, sizes: Sizes) -> list[Record]:
    records = []
    big_lines = 2 * sizes.filler_accounts * (sizes.filler_grants + sizes.filler_spends)
    for database in ctx.databases:
        rows: dict[bool, dict[str, Any]] = {}
        for big in (False, True):
            label = f"{big_lines + 10:,}" if big else "10"
            task = ctx.progress.add_task(
                f"read  {label:<9} {database:<10}", total=sizes.reads * ctx.runs
            )
            runs: list[ReadRun] = []
            for run_no in range(ctx.runs):
                base = run_no * sizes.reads

                def progress(done: int, base: int = base, task: Any = task) -> None:
                    ctx.progress.update(task, completed=base + done)

                runs.append(_read_run(ctx, database, big, sizes, progress))
            problems = [p for r in runs for p in r.problems]
            if problems:
                ctx.log(f"[red]verify found problems ({database}, reads):[/] {problems[:5]}")
            medians = [percentile(r.result.latencies_ns, 50) / 1e3 for r in runs]
            p99s = [percentile(r.result.latencies_ns, 99) / 1e3 for r in runs]
            rows[big] = {
                "database": database,
                "lines in DB": runs[0].lines,
                "measured account": "3 grants, 10 lines",
                "reads": sizes.reads,
                "median µs": median(medians),
                "p99 µs": median(p99s),
                "median µs per run": [round(x, 1) for x in medians],
                "errors": sum(sum(r.result.errors.values()) for r in runs),
                "verify": "ok" if not problems else f"{len(problems)} problems",
                "load s": median([r.load_seconds for r in runs]),
            }
        small, large = rows[False], rows[True]
        for row in (small, large):
            row["ratio median (big/10)"] = row["median µs"] / small["median µs"]
            row["ratio p99 (big/10)"] = row["p99 µs"] / small["p99 µs"]
        large["meets (ratio <= 1.2)"] = large["ratio median (big/10)"] <= READ_TOLERANCE
        records += [Record(NAME, "balance reads", small), Record(NAME, "balance reads", large)]
    return records

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

import contextlib
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from bench.common import (
    Context,
    CpuMeter,
    Holding,
    Record,
    WorkerRun,
    bulk_load,
    checkpoint,
    count_rows,
    median,
    ops_override,
    percentile,
    run_workers,
    split,
)
from billfold.adapters.db import engine as db_engine
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.db.verify import verify
from billfold.bootstrap import wall_clock
from billfold.service.ledger import Ledger, Spend
from billfold.settings import Settings

NAME = "ledger"
UNIT = "credits"
READER = "bench_reader"

# Targets from issue 12 (c=16), for PostgreSQL on a 2-core machine.
TARGET_SPREAD = 5_000.0
TARGET_HOT = 3_000.0
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
    override = ops_override()
    if override is not None:
        sizes = replace(sizes, spends={**sizes.spends, 16: override})
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
            f"targets (PostgreSQL, c=16, issue 12): >= {TARGET_SPREAD:,.0f} spends/s spread, "
            f">= {TARGET_HOT:,.0f} spends/s on one hot account; balance read at 1M lines no "
            "slower than at 10.",
            "baseline: the minimal one-row ledger transaction (UPDATE ... RETURNING on a copy of "
            "the balance rows, bench_balances, then commit) on the same engine, connections, database, accounts and threads, measured in "
            "the same run right before or after billfold's spends (alternating); "
            "billfold/baseline is the ratio of the medians. CPU per op: this process (client "
            "threads and billfold, /proc/self/stat) and the PostgreSQL backends connected to the "
            "run's database (found by process title in /proc, sampled every 0.2 s; WAL writer and checkpointer not counted) "
            "during the measured spends / spends.",
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


BASELINE_TABLE = "bench_balances"
BASELINE = sa.text(
    f"UPDATE {BASELINE_TABLE} SET available = available - 1 "
    "WHERE account_id = :account AND unit = :unit RETURNING available"
)


def _baseline_table(engine: sa.Engine) -> None:
    """A copy of the balance rows for the baseline to write, so that billfold's ledger (and
    ``verify``) is left to billfold: same database, same row count, same primary key."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {BASELINE_TABLE} (account_id VARCHAR(255) NOT NULL, "
            "unit VARCHAR(64) NOT NULL, available BIGINT NOT NULL, PRIMARY KEY (account_id, unit))"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {BASELINE_TABLE} SELECT account_id, unit, available FROM balances"
        )
        conn.exec_driver_sql(f"ANALYZE {BASELINE_TABLE}")


def _baseline_spend(engine: sa.Engine) -> Callable[[Spend], None]:
    """The minimal one-row ledger transaction: take one unit off a balance row, commit."""

    def spend(cmd: Spend) -> None:
        with engine.begin() as conn:
            row = conn.execute(BASELINE, {"account": cmd.account_id, "unit": cmd.unit}).first()
            if row is None:
                raise LookupError(cmd.account_id)

    return spend


@dataclass
class SpendRun:
    billfold: WorkerRun
    baseline: WorkerRun
    # CPU seconds of the measured phase: (this process, PostgreSQL backends or None)
    cpu: tuple[float, float | None]
    baseline_cpu: tuple[float, float | None]
    problems: list[str]


def _measure(
    fn: Callable[[Spend], object], work: list[list[Spend]], url: str, on_progress: Any
) -> tuple[WorkerRun, tuple[float, float | None]]:
    meter = CpuMeter(os.getpid(), url)
    meter.start()
    result = run_workers(fn, work, on_progress=on_progress)
    return result, meter.stop()


def _spend_run(
    ctx: Context,
    database: str,
    scenario: str,
    concurrency: int,
    ops: int,
    sizes: Sizes,
    run_no: int,
    on_progress: Any,
    attach: Callable[[int], contextlib.AbstractContextManager[object]] | None = None,
) -> SpendRun:
    """billfold's spends and the baseline's, on the same database and engine, in an order that
    alternates between runs."""
    accounts = [f"acct_{i:05d}" for i in range(sizes.spend_accounts)]
    rng = random.Random(f"{scenario}-{concurrency}-{run_no}")
    with ctx.fresh_database(database) as url:
        bulk_load(url, [Holding(accounts=accounts, grants=1, spends=0, grant_amount=10**12)])
        checkpoint(url)
        engine = db_engine.make_engine(url, pool_size=max(concurrency, 1))
        try:
            # As the service builds it with the default settings (SQLite: one writer).
            writers = 1 if database == "sqlite" else Settings.model_fields["ledger_writers"].default
            ledger = Ledger(lambda: SqlUnitOfWork(engine), wall_clock, writers=writers)
            _baseline_table(engine)
            checkpoint(url)
            baseline = _baseline_spend(engine)
            kinds: list[tuple[str, Callable[[Spend], object]]] = [
                ("billfold", ledger.spend),
                ("baseline", baseline),
            ]
            if run_no % 2:
                kinds.reverse()
            runs: dict[str, tuple[WorkerRun, tuple[float, float | None]]] = {}
            for kind, fn in kinds:
                warm = _spend_commands(
                    accounts, scenario, sizes.spend_warmup, f"warm{kind}{run_no}", rng
                )
                warm_run = run_workers(fn, split(warm, concurrency))
                if warm_run.errors:
                    raise RuntimeError(f"{kind} warm-up spends failed: {dict(warm_run.errors)}")
                measured = _spend_commands(accounts, scenario, ops, f"{kind}{run_no}", rng)
                with (
                    attach(os.getpid())
                    if attach and kind == "billfold"
                    else contextlib.nullcontext()
                ):
                    runs[kind] = _measure(
                        fn,
                        split(measured, concurrency),
                        url,
                        on_progress if kind == "billfold" else None,
                    )
            problems = verify(engine)
        finally:
            engine.dispose()
    return SpendRun(
        billfold=runs["billfold"][0],
        baseline=runs["baseline"][0],
        cpu=runs["billfold"][1],
        baseline_cpu=runs["baseline"][1],
        problems=problems,
    )


def _per_op(runs: list[SpendRun], ops: int, which: str, part: int) -> float | None:
    values = [getattr(r, which)[part] for r in runs]
    if any(v is None for v in values):
        return None
    return median([v / ops * 1000 for v in values])


def spend_benchmarks(ctx: Context, sizes: Sizes) -> list[Record]:
    records = []
    for database in ctx.databases:
        for scenario, label in SCENARIOS.items():
            for concurrency in sizes.concurrency:
                ops = sizes.spends[concurrency]
                task = ctx.progress.add_task(
                    f"spend {scenario:<6} {database:<10} c={concurrency:<2}", total=ops * ctx.runs
                )
                runs: list[SpendRun] = []
                for run_no in range(ctx.runs):
                    base = run_no * ops

                    def progress(done: int, base: int = base, task: Any = task) -> None:
                        ctx.progress.update(task, completed=base + done)

                    runs.append(
                        _spend_run(
                            ctx, database, scenario, concurrency, ops, sizes, run_no, progress
                        )
                    )
                ctx.progress.update(task, completed=ops * ctx.runs)
                problems = [p for r in runs for p in r.problems]
                billfold = [r.billfold for r in runs]
                baseline = [r.baseline for r in runs]
                rates = [r.ops / r.seconds for r in billfold]
                base_rates = [r.ops / r.seconds for r in baseline]
                target = TARGET_HOT if scenario == "hot" else TARGET_SPREAD
                targeted = database == "postgresql" and concurrency == 16
                errors = sum(sum(r.errors.values()) for r in billfold + baseline)
                if problems:
                    ctx.log(
                        f"[red]verify found problems ({database}, {scenario}):[/] {problems[:5]}"
                    )
                if errors:
                    kinds: Counter[str] = Counter()
                    for r in billfold + baseline:
                        kinds.update(r.errors)
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
                            "seconds": median([r.seconds for r in billfold]),
                            "ops/s": median(rates),
                            "ops/s per run": [round(x, 1) for x in rates],
                            "p50 ms": median(
                                [percentile(r.latencies_ns, 50) / 1e6 for r in billfold]
                            ),
                            "p99 ms": median(
                                [percentile(r.latencies_ns, 99) / 1e6 for r in billfold]
                            ),
                            "client CPU ms/op": _per_op(runs, ops, "cpu", 0),
                            "PG CPU ms/op": _per_op(runs, ops, "cpu", 1),
                            "baseline ops/s": median(base_rates),
                            "baseline per run": [round(x, 1) for x in base_rates],
                            "baseline p99 ms": median(
                                [percentile(r.latencies_ns, 99) / 1e6 for r in baseline]
                            ),
                            "baseline client CPU ms/op": _per_op(runs, ops, "baseline_cpu", 0),
                            "baseline PG CPU ms/op": _per_op(runs, ops, "baseline_cpu", 1),
                            "billfold/baseline": median(rates) / median(base_rates),
                            "errors": errors,
                            "verify": "ok" if not problems else f"{len(problems)} problems",
                            "target": target if targeted else None,
                            "meets": (median(rates) >= target) if targeted else None,
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
            # As the service builds it with the default settings (SQLite: one writer).
            writers = 1 if database == "sqlite" else Settings.model_fields["ledger_writers"].default
            ledger = Ledger(lambda: SqlUnitOfWork(engine), wall_clock, writers=writers)
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

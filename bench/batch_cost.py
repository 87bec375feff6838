"""What a batch of spends costs in Python, phase by phase: the write combiner's batch
(``run_batch``, as ``Ledger.spend`` makes it) called directly from one thread, no combiner, no
other threads, so that each phase's CPU is the thread's own (``time.thread_time``: Python, the
driver and libpq's system calls; the database's own work is not in it).

For batches of 1, 8 and 32 spends over 10,000 accounts (c=16 makes batches of about 8), per spend:
the unit of work (its connection in and out, and the commit call), the reads (one round trip on
PostgreSQL: the balances locked, their live grants, the keys), the decisions (validation, request
hash, draw plan, lines, results: the domain rules, in Python) and the writes (every row of the
batch sent, with the commit on PostgreSQL). A straight line through the totals splits a batch's
cost into a part paid once per batch and a part paid per spend: what batching can save, and what
only a cheaper spend can.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.common import Context, Holding, Record, bulk_load, checkpoint, median
from billfold.adapters.db import engine as db_engine
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.service.ledger import Spend
from billfold.service.ledger.batch import run_batch
from billfold.service.ports import BatchRead, BatchSnapshot, BatchWrites

NAME = "batch-cost"
UNIT = "credits"
ACCOUNTS = 10_000
SIZES = (1, 8, 32)
PHASES = ("unit of work", "reads", "decisions", "writes")
# Spends measured per batch size and run (after a warm-up of WARMUP batches).
SPENDS = {"full": 8_000, "quick": 1_600}
WARMUP = 30


class _Clock:
    """CPU of this thread, by phase."""

    def __init__(self) -> None:
        self.spent: Counter[str] = Counter()

    def timed(self, phase: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        started = time.thread_time()
        try:
            return fn(*args, **kw)
        finally:
            self.spent[phase] += time.thread_time() - started


class _TimedUnitOfWork(SqlUnitOfWork):
    """billfold's unit of work, its batch reads and writes timed."""

    def __init__(self, engine: Any, clock: _Clock) -> None:
        super().__init__(engine)
        self._clock = clock

    def __enter__(self) -> SqlUnitOfWork:
        self._clock.timed("unit of work", super().__enter__)
        ledger = self.ledger
        load, flush = ledger.load_batch, ledger.flush_batch

        def load_batch(read: BatchRead) -> BatchSnapshot:
            snapshot: BatchSnapshot = self._clock.timed("reads", load, read)
            return snapshot

        def flush_batch(writes: BatchWrites, *, commit: bool = False) -> None:
            self._clock.timed("writes", flush, writes, commit=commit)

        ledger.load_batch = load_batch  # type: ignore[method-assign]
        ledger.flush_batch = flush_batch  # type: ignore[method-assign]
        return self

    def commit(self) -> None:
        self._clock.timed("unit of work", super().commit)

    def __exit__(self, *exc: Any) -> None:
        self._clock.timed("unit of work", super().__exit__, *exc)


def _measure(url: str, size: int, spends: int, accounts: list[str], seed: int) -> dict[str, float]:
    """µs of this thread's CPU per spend, by phase and in all, for batches of ``size``."""
    rng = random.Random(seed)
    batches = [
        [
            Spend(
                key=f"b{size}-{seed}-{b}-{i}", account_id=rng.choice(accounts), unit=UNIT, amount=1
            )
            for i in range(size)
        ]
        for b in range(WARMUP + max(spends // size, 1))
    ]
    engine = db_engine.make_engine(url, pool_size=2)
    clock = _Clock()
    try:

        def uow() -> SqlUnitOfWork:
            return _TimedUnitOfWork(engine, clock)

        for batch in batches[:WARMUP]:
            run_batch(uow, batch, int(time.time()), units=None)
        clock.spent.clear()
        measured = batches[WARMUP:]
        started = time.thread_time()
        for batch in measured:
            outcomes = run_batch(uow, batch, int(time.time()), units=None)
            failed = [o for o in outcomes if isinstance(o, Exception)]
            if failed:
                raise RuntimeError(f"a measured spend failed: {failed[0]!r}")
        total = time.thread_time() - started
    finally:
        engine.dispose()
    n = len(measured) * size
    out = {phase: clock.spent[phase] / n * 1e6 for phase in PHASES if phase != "decisions"}
    out["decisions"] = total / n * 1e6 - sum(out.values())
    out["total"] = total / n * 1e6
    return out


def run(ctx: Context) -> list[Record]:
    spends = SPENDS["quick" if ctx.quick else "full"]
    accounts = [f"acct_{i:05d}" for i in range(ACCOUNTS)]
    records: list[Record] = []
    for database in ctx.databases:
        task = ctx.progress.add_task(f"batch cost {database:<10}", total=len(SIZES) * ctx.runs)
        by_size: dict[int, list[dict[str, float]]] = {size: [] for size in SIZES}
        for run_no in range(ctx.runs):
            with ctx.fresh_database(database) as url:
                bulk_load(
                    url, [Holding(accounts=accounts, grants=1, spends=0, grant_amount=10**12)]
                )
                checkpoint(url)
                # Alternate the order of the sizes between runs, as the other benchmarks do.
                sizes = SIZES if run_no % 2 == 0 else tuple(reversed(SIZES))
                for size in sizes:
                    by_size[size].append(_measure(url, size, spends, accounts, run_no))
                    ctx.progress.advance(task)
        medians = {
            size: {k: median([r[k] for r in runs]) for k in (*PHASES, "total")}
            for size, runs in by_size.items()
        }
        for size in SIZES:
            m = medians[size]
            records.append(
                Record(
                    NAME,
                    "CPU of one thread per spend, by phase (µs)",
                    {
                        "database": database,
                        "spends a batch": size,
                        **{phase: round(m[phase], 1) for phase in PHASES},
                        "total": round(m["total"], 1),
                        "total per run": [round(r["total"], 1) for r in by_size[size]],
                    },
                )
            )
        # A batch of B costs B x total(B) = once + B x each: the line through the smallest and
        # the largest batch.
        small, large = SIZES[0], SIZES[-1]
        t_small, t_large = small * medians[small]["total"], large * medians[large]["total"]
        each = (t_large - t_small) / (large - small)
        once = t_small - small * each
        records.append(
            Record(
                NAME,
                "a batch's cost: once per batch + per spend (µs of CPU)",
                {
                    "database": database,
                    "once per batch": round(once, 1),
                    "per spend": round(each, 1),
                    "per spend in batches of 8": round(once / 8 + each, 1),
                    "batching's share at 8": f"{once / 8 / (once / 8 + each):.0%}",
                },
            )
        )
    ctx.notes.extend(
        [
            "batch-cost: one thread calls the combiner's batch (`run_batch`) with batches of "
            f"{', '.join(map(str, SIZES))} spends over {ACCOUNTS:,} accounts, each with one "
            f"bulk-loaded grant ({spends:,} measured spends per size and run, after "
            f"{WARMUP} warm-up batches); CPU is the thread's own (`time.thread_time`): Python, "
            "the driver and its system calls, not the database's work. Medians of the runs.",
            "phases: unit of work = its connection in and out and the commit call; reads = the "
            "batch's one read (PostgreSQL: one round trip) and decoding it; writes = every row "
            "sent (PostgreSQL: one round trip with the commit); decisions = the rest: "
            "validation, request hashes, draw plans, lines and results (the domain rules).",
            "SQLite runs in this thread: its reads, writes and commit (in the unit of work) "
            "are in the figures, where PostgreSQL's work is in its own process.",
            "once per batch / per spend: the straight line through the totals of the smallest "
            "and the largest batch (a batch of B costs once + B x per spend).",
        ]
    )
    return records

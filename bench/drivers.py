"""PostgreSQL drivers for billfold's write path: psycopg 3 or asyncpg (issue 2: "measure and choose").

The same spend-shaped transaction as ``Ledger.spend`` writes (claim the idempotency key, lock the
balance row, read the account's grants, draw from one, update the balance, insert two balanced
lines, record the result, commit), on 10,000 bulk-loaded accounts picked at random, at concurrency 1
and 16, three ways:

- ``psycopg``: psycopg 3, raw SQL, one connection per thread (what billfold's engine uses underneath);
- ``asyncpg``: asyncpg, raw SQL, one connection per asyncio task;
- ``billfold (SQLAlchemy + psycopg)``: ``Ledger.spend`` itself, as billfold runs it (threads);
- ``billfold (SQLAlchemy + asyncpg, greenlets)``: the same ``Ledger.spend``, unchanged, on
  SQLAlchemy's asyncpg dialect, each spend in a greenlet on one event loop.

Reported: spends/s, p50/p99, and the client's CPU per spend (``time.process_time``): on 2 cores the
client's CPU is what limits throughput, so that column is the one that decides. ``verify`` runs after
every run. asyncpg is not a dependency of billfold; the benchmark skips it (with a note) when it is
not installed (``pip install asyncpg``).
"""

from __future__ import annotations

import asyncio
import json
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from bench.common import (
    Context,
    Holding,
    Record,
    bulk_load,
    checkpoint,
    median,
    percentile,
    run_workers,
    split,
)
from billfold.adapters.db import engine as db_engine
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.db.verify import verify
from billfold.domain import ids
from billfold.service.ledger import Ledger, Spend

NAME = "drivers"
UNIT = "credits"
ACCOUNTS = 10_000

CLAIM = (
    "INSERT INTO ledger_transactions (id, idempotency_key, request_hash, kind, account_id, unit, "
    "amount, reason, created) VALUES ({}) ON CONFLICT DO NOTHING RETURNING id"
)
LOCK = "SELECT available, held, debt FROM balances WHERE account_id = {} AND unit = {} FOR UPDATE"
GRANTS = (
    "SELECT id, remaining, held, priority, expires_at FROM grants "
    "WHERE account_id = {} AND unit = {} AND remaining > 0"
)
DRAW = "UPDATE grants SET remaining = {} WHERE id = {}"
BALANCE = "UPDATE balances SET available = {} WHERE account_id = {} AND unit = {}"
LINES = (
    "INSERT INTO ledger_lines (transaction_id, account_id, unit, amount, grant_id) "
    "VALUES ({}), ({})"
)
RESULT = "UPDATE ledger_transactions SET result = {}::json, line_count = 2 WHERE id = {}"


def _sql(template: str, marks: list[str]) -> str:
    """Fill ``{}`` with comma-joined groups of placeholders, in order."""
    return template.format(*marks)


def _psycopg_sql() -> dict[str, str]:
    p = "%s"
    return {
        "claim": _sql(CLAIM, [", ".join([p] * 9)]),
        "lock": _sql(LOCK, [p, p]),
        "grants": _sql(GRANTS, [p, p]),
        "draw": _sql(DRAW, [p, p]),
        "balance": _sql(BALANCE, [p, p, p]),
        "lines": _sql(LINES, [", ".join([p] * 5), ", ".join([p] * 5)]),
        "result": _sql(RESULT, [p, p]),
    }


def _asyncpg_sql() -> dict[str, str]:
    def marks(start: int, n: int) -> str:
        return ", ".join(f"${i}" for i in range(start, start + n))

    return {
        "claim": _sql(CLAIM, [marks(1, 9)]),
        "lock": _sql(LOCK, ["$1", "$2"]),
        "grants": _sql(GRANTS, ["$1", "$2"]),
        "draw": _sql(DRAW, ["$1", "$2"]),
        "balance": _sql(BALANCE, ["$1", "$2", "$3"]),
        "lines": _sql(LINES, [marks(1, 5), marks(6, 5)]),
        "result": _sql(RESULT, ["$1", "$2"]),
    }


def _plan(account: str, key: str) -> tuple[tuple[Any, ...], str]:
    txn = ids.new_id("txn")
    claim = (txn, key, "0" * 64, "spend", account, UNIT, 1, None, int(time.time()))
    return claim, txn


# --- psycopg -----------------------------------------------------------------------------------------


def _psycopg_spend(
    conn: psycopg.Connection[Any], sql: dict[str, str], account: str, key: str
) -> None:
    claim, txn = _plan(account, key)
    with conn.transaction():
        if conn.execute(sql["claim"], claim).fetchone() is None:
            return
        available, _held, _debt = conn.execute(sql["lock"], (account, UNIT)).fetchone() or (0, 0, 0)
        gid, remaining, *_ = conn.execute(sql["grants"], (account, UNIT)).fetchall()[0]
        conn.execute(sql["draw"], (remaining - 1, gid))
        conn.execute(sql["balance"], (available - 1, account, UNIT))
        conn.execute(sql["lines"], (txn, account, UNIT, -1, gid, txn, "sys:spent", UNIT, 1, gid))
        conn.execute(sql["result"], (json.dumps({"balance": available - 1}), txn))


def _psycopg_run(
    url: str, work: Sequence[Sequence[tuple[str, str]]]
) -> tuple[float, list[int], float]:
    sql = _psycopg_sql()
    dsn = db_engine.normalize_url(url).replace("postgresql+psycopg://", "postgresql://")
    conns = [psycopg.connect(dsn) for _ in work]
    try:
        free = queue.SimpleQueue[psycopg.Connection[Any]]()
        for conn in conns:
            free.put(conn)
        mine = threading.local()

        def spend(item: tuple[str, str]) -> None:
            if not hasattr(mine, "conn"):
                mine.conn = free.get_nowait()  # one connection per worker thread
            _psycopg_spend(mine.conn, sql, *item)

        cpu = time.process_time()
        done = run_workers(spend, work)
        cpu = time.process_time() - cpu
        if done.errors:
            raise RuntimeError(f"psycopg spends failed: {dict(done.errors)}")
        return done.seconds, done.latencies_ns, cpu
    finally:
        for conn in conns:
            conn.close()


# --- asyncpg -----------------------------------------------------------------------------------------


def _asyncpg_run(
    url: str, work: Sequence[Sequence[tuple[str, str]]]
) -> tuple[float, list[int], float]:
    import asyncpg  # type: ignore[import-not-found]

    sql = _asyncpg_sql()
    dsn = db_engine.normalize_url(url).replace("postgresql+psycopg://", "postgresql://")

    async def main() -> tuple[float, list[int], float]:
        conns = [await asyncpg.connect(dsn) for _ in work]
        latencies: list[int] = []

        async def worker(conn: Any, items: Sequence[tuple[str, str]]) -> None:
            for account, key in items:
                t0 = time.perf_counter_ns()
                claim, txn = _plan(account, key)
                async with conn.transaction():
                    if await conn.fetchrow(sql["claim"], *claim) is None:
                        continue
                    bal = await conn.fetchrow(sql["lock"], account, UNIT)
                    grant = (await conn.fetch(sql["grants"], account, UNIT))[0]
                    await conn.execute(sql["draw"], grant["remaining"] - 1, grant["id"])
                    await conn.execute(sql["balance"], bal["available"] - 1, account, UNIT)
                    await conn.execute(
                        sql["lines"],
                        txn,
                        account,
                        UNIT,
                        -1,
                        grant["id"],
                        txn,
                        "sys:spent",
                        UNIT,
                        1,
                        grant["id"],
                    )
                    await conn.execute(
                        sql["result"], json.dumps({"balance": bal["available"] - 1}), txn
                    )
                latencies.append(time.perf_counter_ns() - t0)

        try:
            cpu = time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(worker(c, items) for c, items in zip(conns, work, strict=True)))
            seconds = time.perf_counter() - started
            return seconds, latencies, time.process_time() - cpu
        finally:
            for conn in conns:
                await conn.close()

    return asyncio.run(main())


# --- billfold ----------------------------------------------------------------------------------------


def _billfold_run(
    url: str, work: Sequence[Sequence[tuple[str, str]]]
) -> tuple[float, list[int], float]:
    engine = db_engine.make_engine(url, pool_size=len(work))
    try:
        ledger = Ledger(lambda: SqlUnitOfWork(engine), lambda: int(time.time()))

        def spend(item: tuple[str, str]) -> None:
            account, key = item
            ledger.spend(Spend(key=key, account_id=account, unit=UNIT, amount=1))

        cpu = time.process_time()
        done = run_workers(spend, work)
        cpu = time.process_time() - cpu
        if done.errors:
            raise RuntimeError(f"billfold spends failed: {dict(done.errors)}")
        return done.seconds, done.latencies_ns, cpu
    finally:
        engine.dispose()


def _billfold_asyncpg_run(
    url: str, work: Sequence[Sequence[tuple[str, str]]]
) -> tuple[float, list[int], float]:
    """``Ledger.spend`` unchanged, on SQLAlchemy's asyncpg dialect: each spend runs in a greenlet on
    one event loop (``greenlet_spawn``), as an async server would run billfold's sync code."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.util import greenlet_spawn

    aurl = db_engine.normalize_url(url).replace("postgresql+psycopg://", "postgresql+asyncpg://")

    async def main() -> tuple[float, list[int], float]:
        engine = create_async_engine(aurl, pool_size=len(work), max_overflow=len(work))
        ledger = Ledger(lambda: SqlUnitOfWork(engine.sync_engine), lambda: int(time.time()))
        latencies: list[int] = []

        async def worker(items: Sequence[tuple[str, str]]) -> None:
            for account, key in items:
                t0 = time.perf_counter_ns()
                cmd = Spend(key=key, account_id=account, unit=UNIT, amount=1)
                await greenlet_spawn(ledger.spend, cmd)
                latencies.append(time.perf_counter_ns() - t0)

        try:
            cpu = time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(worker(items) for items in work))
            return time.perf_counter() - started, latencies, time.process_time() - cpu
        finally:
            await engine.dispose()

    return asyncio.run(main())


# --- the benchmark -----------------------------------------------------------------------------------

Runner = Callable[[str, Sequence[Sequence[tuple[str, str]]]], tuple[float, list[int], float]]


def run(ctx: Context) -> list[Record]:
    if "postgresql" not in ctx.databases or ctx.postgres is None:
        ctx.notes.append("skipped: this benchmark compares PostgreSQL drivers; no PostgreSQL here")
        return []
    drivers: dict[str, Runner] = {
        "psycopg (raw SQL)": _psycopg_run,
        "billfold (SQLAlchemy + psycopg)": _billfold_run,
    }
    try:
        import asyncpg  # type: ignore[import-not-found]  # noqa: F401

        drivers["asyncpg (raw SQL)"] = _asyncpg_run
        drivers["billfold (SQLAlchemy + asyncpg, greenlets)"] = _billfold_asyncpg_run
    except ImportError:
        ctx.notes.append("asyncpg is not installed (pip install asyncpg): its rows are missing")
    accounts = [f"acct_{i:05d}" for i in range(ACCOUNTS)]
    n = {1: 300 if ctx.quick else 2_000, 16: 600 if ctx.quick else 4_000}
    records: list[Record] = []
    task = ctx.progress.add_task("drivers", total=len(drivers) * len(n) * ctx.runs)
    for concurrency, total in n.items():
        for name, runner in drivers.items():
            rates: list[float] = []
            p50s: list[float] = []
            p99s: list[float] = []
            cpus: list[float] = []
            for r in range(ctx.runs):
                rng = random.Random(f"{name}-{concurrency}-{r}")
                items = [(rng.choice(accounts), f"bench-{r}-{i}") for i in range(total)]
                warm = [(rng.choice(accounts), f"warm-{r}-{i}") for i in range(200)]
                with ctx.fresh_database("postgresql") as url:
                    bulk_load(
                        url, [Holding(accounts=accounts, grants=1, spends=0, grant_amount=10**12)]
                    )
                    checkpoint(url)
                    runner(url, split(warm, concurrency))
                    seconds, latencies, cpu = runner(url, split(items, concurrency))
                    engine = db_engine.make_engine(url, pool_size=1)
                    try:
                        problems = verify(engine)
                    finally:
                        engine.dispose()
                    if problems:
                        raise RuntimeError(f"{name}: verify found {problems[:3]}")
                rates.append(total / seconds)
                ms = [x / 1e6 for x in latencies]
                p50s.append(percentile(ms, 50))
                p99s.append(percentile(ms, 99))
                cpus.append(cpu / total * 1000)
                ctx.progress.advance(task)
            records.append(
                Record(
                    NAME,
                    "spend-shaped transactions on PostgreSQL, 10,000 accounts",
                    {
                        "driver": name,
                        "concurrency": concurrency,
                        "spends/s": median(rates),
                        "spends/s runs": [round(x) for x in rates],
                        "p50 ms": median(p50s),
                        "p99 ms": median(p99s),
                        "client CPU ms/spend": median(cpus),
                        "verify": "ok",
                        "durability": ctx.database_settings("postgresql"),
                    },
                )
            )
            ctx.log(
                f"{name} c={concurrency}: {median(rates):.0f}/s, CPU {median(cpus):.2f} ms/spend"
            )
    ctx.notes.append(
        "7 statements and a commit per spend, as billfold's Ledger.spend; raw-SQL rows skip "
        "billfold's rules (they always draw from the one grant), so they show the driver's cost, "
        "not a faster ledger."
    )
    return records

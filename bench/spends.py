"""Spends over HTTP (issue 12): ``POST /v1/accounts/{id}/spend`` on a real ``billfold serve``.

For each database, ``--workers`` (1 and one per core, as the webhook benchmark) and run, on a fresh
migrated database holding 10,000 accounts with one bulk-loaded grant each:

1. start ``billfold serve --workers W`` (a subprocess: uvicorn with uvloop and httptools, the
   production server) with a server key and the spend rate limit off;
2. with ``c`` = 16 keep-alive connections from a small asyncio HTTP/1.1 client in this process, each
   with one request in flight, send ``POST /v1/accounts/{id}/spend`` (1 unit, ``Authorization:
   Bearer <server key>``, a new ``Idempotency-Key`` each), in three scenarios one after another on
   the same server: **spread** over the 10,000 accounts at random, **hot** all on one account, and
   **holds** (``POST /v1/accounts/{id}/holds`` of 2 units then ``POST /v1/holds/{id}/capture`` of
   the whole hold on the same connection, spread; each request counts as one operation);
   each scenario warms up first, then is measured;
3. count the CPU of the server's processes and of the PostgreSQL backends serving the database
   during each measurement, and the server's peak RSS;
4. check: every 2xx answer is one ledger transaction of its kind (no more, no fewer), and
   ``verify`` finds the ledger sound.

The baseline runs in the same run on its own fresh database: ``bench/baseline_app.py`` on the same
uvicorn stack, whose spend route checks the key, reads the body and runs a one-row transaction
(``UPDATE balances ... RETURNING``), spread and hot. ``billfold/baseline`` is the ratio of rates
(holds against the spread baseline).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import (
    Context,
    CpuMeter,
    Holding,
    Record,
    bulk_load,
    checkpoint,
    median,
    ops_override,
    peak_rss_mb,
    percentile,
)
from bench.webhooks import HOST, Attach, _read_response, _server_workers, serving
from billfold.adapters.db import engine as db_engine
from billfold.adapters.db.verify import verify

NAME = "spends"
UNIT = "credits"
ACCOUNTS = 10_000
CONCURRENCY = 16
SCENARIOS = {
    "spread": "spends, 10,000 accounts",
    "hot": "spends, 1 hot account",
    "holds": "holds + captures, 10,000 accounts",
}
TARGETS = {"spread": 1_500.0, "hot": 1_500.0, "holds": 1_000.0}  # PostgreSQL, issue 12
TARGET_P99_MS = 50.0


@dataclass(frozen=True)
class Sizes:
    warmup: int  # operations before each measured scenario
    ops: int  # measured operations per scenario (a hold and its capture are two)


FULL = Sizes(warmup=200, ops=4_000)
QUICK = Sizes(warmup=32, ops=320)


# --- the load generator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    kind: str  # "spend" or "hold" (a hold, then the capture of the whole hold)
    account: str
    key: str


@dataclass
class Tally:
    seconds: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)  # of the 2xx answers
    ok: Counter[str] = field(default_factory=Counter)  # 2xx answers by request kind
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.ok.values()) + sum(self.errors.values())


class _Connection:
    def __init__(self, port: int, api_key: str) -> None:
        self.port = port
        self.auth = f"Authorization: Bearer {api_key}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def post(self, path: str, body: dict[str, Any], key: str) -> tuple[int, bytes]:
        if self.writer is None:
            await self._open()
        assert self.reader is not None
        assert self.writer is not None
        raw = json.dumps(body).encode()
        request = b"".join(
            (
                f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n".encode(),
                self.auth,
                f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n".encode(),
                f"Content-Length: {len(raw)}\r\n\r\n".encode(),
                raw,
            )
        )
        try:
            self.writer.write(request)
            await self.writer.drain()
            status, answer, close = await _read_response(self.reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            raise
        if close:
            self.close()
        return status, answer


async def _send(
    port: int,
    api_key: str,
    ops: Sequence[Op],
    concurrency: int,
    on_progress: Callable[[int], None] | None,
) -> Tally:
    tally = Tally()
    next_index = 0
    done = 0
    clock = time.perf_counter_ns

    async def request(
        conn: _Connection, kind: str, path: str, body: dict[str, Any], key: str
    ) -> Any:
        t0 = clock()
        try:
            status, answer = await conn.post(path, body, key)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            tally.errors[f"{kind}: {type(exc).__name__}"] += 1
            return None
        if not 200 <= status < 300:
            tally.errors[f"{kind}: HTTP {status}"] += 1
            return None
        tally.latencies_ns.append(clock() - t0)
        tally.ok[kind] += 1
        return json.loads(answer)

    async def connection() -> None:
        nonlocal next_index, done
        conn = _Connection(port, api_key)
        try:
            while next_index < len(ops):
                op = ops[next_index]
                next_index += 1
                if op.kind == "spend":
                    body = {"unit": UNIT, "amount": 1}
                    await request(conn, "spend", f"/v1/accounts/{op.account}/spend", body, op.key)
                    done += 1
                    continue
                body = {"unit": UNIT, "amount": 2}
                hold = await request(conn, "hold", f"/v1/accounts/{op.account}/holds", body, op.key)
                done += 1
                if hold is not None:
                    path = f"/v1/holds/{hold['id']}/capture"
                    await request(conn, "capture", path, {}, op.key + "-capture")
                done += 1
        finally:
            conn.close()

    async def progress() -> None:
        while True:
            if on_progress is not None:
                on_progress(done)
            await asyncio.sleep(0.2)

    ticker = asyncio.create_task(progress())
    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    tally.seconds = time.perf_counter() - started
    ticker.cancel()
    if on_progress is not None:
        on_progress(done)
    return tally


def _ops(scenario: str, n: int, prefix: str, rng: random.Random, accounts: list[str]) -> list[Op]:
    if scenario == "hot":
        return [Op("spend", accounts[0], f"{prefix}-{i}") for i in range(n)]
    kind = "hold" if scenario == "holds" else "spend"
    count = n // 2 if kind == "hold" else n  # a hold and its capture: two operations
    return [Op(kind, rng.choice(accounts), f"{prefix}-{i}") for i in range(count)]


# --- one server, its scenarios ---------------------------------------------------------------------


def _ledger_counts(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT kind, count(*) FROM ledger_transactions "
                "WHERE idempotency_key NOT LIKE :loaded GROUP BY kind"
            ),
            {"loaded": "bench-load:%"},
        ).all()
    return Counter({str(kind): int(n) for kind, n in rows})


def _server_run(
    ctx: Context,
    kind: str,
    database: str,
    workers: int,
    scenarios: Sequence[str],
    sizes: Sizes,
    run_no: int,
    workdir: Path,
    task: Any,
    attach: Attach | None = None,
) -> dict[str, dict[str, Any]]:
    """One server on one fresh database, the ``scenarios`` one after another; a result each."""
    accounts = [f"acct_{i:05d}" for i in range(ACCOUNTS)]
    rng = random.Random(f"{kind}-{database}-{workers}-{run_no}")
    api_key = "sk_bench_" + secrets.token_hex(16)
    results: dict[str, dict[str, Any]] = {}
    answered: Counter[str] = Counter()
    with ctx.fresh_database(database) as url:
        bulk_load(url, [Holding(accounts=accounts, grants=1, spends=0, grant_amount=10**12)])
        checkpoint(url)
        env = {"BILLFOLD_API_KEYS": api_key, "BILLFOLD_RATE_LIMIT_SPEND_PER_MINUTE": "0"}
        with serving(kind, url, workers, "", workdir, extra_env=env) as server:
            for scenario in scenarios:
                prefix = f"{kind}-{run_no}-{scenario}"
                warm = _ops(scenario, sizes.warmup, f"warm-{prefix}", rng, accounts)
                warmed = asyncio.run(_send(server.port, api_key, warm, CONCURRENCY, None))
                answered.update(warmed.ok)
                ops = _ops(scenario, sizes.ops, prefix, rng, accounts)
                ctx.progress.reset(task, total=sizes.ops)
                ctx.progress.update(
                    task, description=f"{database} w={workers} {kind} {scenario} run {run_no + 1}"
                )

                def progress(n: int) -> None:
                    ctx.progress.update(task, completed=n)

                meter = CpuMeter(server.process.pid, url)
                meter.start()
                with attach(server.process.pid) if attach else contextlib.nullcontext():
                    tally = asyncio.run(_send(server.port, api_key, ops, CONCURRENCY, progress))
                server_cpu, pg_cpu = meter.stop()
                answered.update(tally.ok)
                n = tally.requests
                lat_ms = [x / 1e6 for x in tally.latencies_ns]
                results[scenario] = {
                    "ops/s": n / tally.seconds,
                    "p50 ms": percentile(lat_ms, 50),
                    "p99 ms": percentile(lat_ms, 99),
                    "errors": dict(tally.errors),
                    "server CPU ms/op": server_cpu / n * 1000,
                    "PG CPU ms/op": pg_cpu / n * 1000 if pg_cpu is not None else None,
                }
            rss, _largest = peak_rss_mb(server.process.pid)
        engine = db_engine.make_engine(url, pool_size=1)
        try:
            problems = verify(engine) if kind == "billfold" else []
            if kind == "billfold":
                counts = _ledger_counts(engine)
                for what in ("spend", "hold", "capture"):
                    if counts[what] != answered[what]:
                        problems.append(
                            f"{counts[what]} {what} transactions for {answered[what]} 2xx answers"
                        )
        finally:
            engine.dispose()
    for result in results.values():
        result["rss MB"] = rss
        result["problems"] = problems
    return results


# --- the benchmark -----------------------------------------------------------------------------------


def run(ctx: Context) -> list[Record]:
    sizes = QUICK if ctx.quick else FULL
    override = ops_override()
    if override is not None:
        sizes = replace(sizes, ops=override)
    records: list[Record] = []
    scenarios = {"billfold": list(SCENARIOS), "baseline": ["spread", "hot"]}
    with tempfile.TemporaryDirectory(prefix="billfold-bench-spends-") as tmp:
        workdir = Path(tmp)
        task = ctx.progress.add_task("spends", total=None)
        for database in ctx.databases:
            for workers in _server_workers():
                runs: dict[str, list[dict[str, dict[str, Any]]]] = {"billfold": [], "baseline": []}
                for r in range(ctx.runs):
                    order = ("billfold", "baseline") if r % 2 == 0 else ("baseline", "billfold")
                    for kind in order:
                        runs[kind].append(
                            _server_run(
                                ctx,
                                kind,
                                database,
                                workers,
                                scenarios[kind],
                                sizes,
                                r,
                                workdir,
                                task,
                            )
                        )
                for scenario, label in SCENARIOS.items():
                    values = _row(ctx, database, workers, scenario, label, runs)
                    records.append(Record(NAME, "spends over HTTP, c=16", values))
                    ctx.log(
                        f"{database} w={workers} {scenario}: {values['ops/s']:.0f}/s, "
                        f"p99 {values['p99 ms']:.1f} ms, baseline "
                        f"{values['baseline ops/s']:.0f}/s; {values['ledger']}"
                    )
    ctx.notes += [
        "ops/s = 2xx-or-not requests of the measured phase / its wall seconds (a hold and its "
        "capture are two requests); the headline is the median of the runs. p50/p99: per request "
        "(2xx), median over the runs. The three billfold scenarios run one after another on one "
        "server and database per run (spread, hot, holds), each after its own warm-up; the "
        "baseline (bench/baseline_app.py: key check, body, one-row UPDATE ... RETURNING "
        "transaction) on its own server and database, spread and hot; which goes first alternates.",
        "billfold/baseline: ratio of the medians (holds against the spread baseline). CPU per op: "
        "CPU seconds of the server's processes, and of the PostgreSQL backends connected to the "
        "run's database (found by process title in /proc, sampled every 0.2 s; WAL writer and checkpointer not counted), "
        "during the measured phase / requests. RSS: peak (VmHWM) summed over the server's "
        "processes, after all three scenarios.",
        "ledger: every 2xx spend, hold and capture is exactly one ledger transaction of its kind, "
        "and verify() is clean.",
        f"targets (PostgreSQL, issue 12): spends >= {TARGETS['spread']:,.0f}/s spread and "
        f">= {TARGETS['hot']:,.0f}/s hot with p99 < {TARGET_P99_MS:.0f} ms; holds and captures "
        f">= {TARGETS['holds']:,.0f}/s spread; peak RSS < 200 MB with --workers 1.",
        "The load generator (asyncio, this process) runs on the same cores as the server and "
        "PostgreSQL.",
    ]
    return records


def _row(
    ctx: Context,
    database: str,
    workers: int,
    scenario: str,
    label: str,
    runs: dict[str, list[dict[str, dict[str, Any]]]],
) -> dict[str, Any]:
    b = [r[scenario] for r in runs["billfold"]]
    base = [r["hot" if scenario == "hot" else "spread"] for r in runs["baseline"]]
    rate = median([x["ops/s"] for x in b])
    base_rate = median([x["ops/s"] for x in base])
    problems = sorted({p for x in b for p in x["problems"]})
    errors: Counter[str] = Counter()
    for x in b + base:
        errors.update(x["errors"])
    pg = [x["PG CPU ms/op"] for x in b if x["PG CPU ms/op"] is not None]
    base_pg = [x["PG CPU ms/op"] for x in base if x["PG CPU ms/op"] is not None]
    target = TARGETS[scenario] if database == "postgresql" else None
    p99 = median([x["p99 ms"] for x in b])
    return {
        "scenario": label,
        "database": database,
        "server processes": workers,
        "ops/s": rate,
        "ops/s runs": [round(x["ops/s"]) for x in b],
        "p50 ms": median([x["p50 ms"] for x in b]),
        "p99 ms": p99,
        "server CPU ms/op": median([x["server CPU ms/op"] for x in b]),
        "PG CPU ms/op": median(pg) if pg else None,
        "peak RSS MB": max(x["rss MB"] for x in b),
        "baseline ops/s": base_rate,
        "baseline runs": [round(x["ops/s"]) for x in base],
        "baseline p99 ms": median([x["p99 ms"] for x in base]),
        "baseline server CPU ms/op": median([x["server CPU ms/op"] for x in base]),
        "baseline PG CPU ms/op": median(base_pg) if base_pg else None,
        "billfold/baseline": rate / base_rate if base_rate else None,
        "errors": dict(errors) or 0,
        "ledger": "ok: one transaction per 2xx, verify clean"
        if not problems
        else f"{len(problems)} problems: " + "; ".join(problems[:5]),
        "target": target,
        "meets": (rate >= target and (scenario == "holds" or p99 < TARGET_P99_MS))
        if target
        else None,
        "durability": ctx.database_settings(database),
    }

"""Webhooks in, credits out, over HTTP: a real ``billfold serve`` against a baseline (issue 3).

For each database and concurrency (1, 8, 32) and run, on a fresh migrated database:

1. start ``billfold serve --workers W`` (W = 1 and one per core; a subprocess, the production server: uvicorn with uvloop and
   httptools, the in-process worker on) with the bundled catalog and a webhook secret;
2. send signed, realistic ``checkout.session.completed`` events (built from Stripe's example objects,
   as Stripe formats them, about 4 KB) for the starter, popular and professional packs, spread over
   1,000 accounts; 10% of the deliveries are exact redeliveries of an earlier event (same bytes,
   newly signed), some of them while the first delivery is still in flight. Each connection keeps
   one request in flight (keep-alive), ``c`` connections at once;
3. time from the first request until every distinct event is *processed* (the credits granted and
   the inbox row marked, which billfold does before answering when it can; otherwise the benchmark
   polls the inbox until the worker is done), and each 2xx answer's latency;
4. read the server's peak RSS (``VmHWM`` of every process of the server, summed) before stopping it;
5. check the ledger: exactly one order per distinct session, each with exactly the grants of its
   package (amounts included), no order for anything else, and ``verify`` clean.

The baseline runs the same way in the same run, on a fresh database: ``bench/baseline_app.py`` on the
same uvicorn stack, which only verifies the signature and inserts the raw event.

At the highest concurrency, a third kind: the same events without billfold's metadata, whose package
billfold's worker finds from the session's line items, asked of a local Stripe stand-in
(``bench/stripe_standin.py``), fully processed and checked the same way.

CPU per event (the server's processes, the PostgreSQL backends serving the run's database) is
measured over the load and the drain, for billfold and the baseline alike.

The load generator is a small asyncio HTTP/1.1 client in this process (one core's worth at most), so
the figures include its cost, as the issue asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from tests.builders import stripe_events as build

from bench import baseline_app
from bench.common import (
    Context,
    CpuMeter,
    Record,
    median,
    ops_override,
    peak_rss_mb,
    percentile,
)
from billfold.adapters.db import engine as db_engine
from billfold.adapters.db.verify import verify
from billfold.adapters.stripe import signature

NAME = "webhooks"
HOST = "127.0.0.1"
CONCURRENCY = tuple(
    int(c) for c in os.environ.get("BILLFOLD_BENCH_CONCURRENCY", "1,8,32").split(",") if c.strip()
)
"""Connections at once (``$BILLFOLD_BENCH_CONCURRENCY``, comma-separated, to measure fewer)."""
REDELIVERED = 0.10
ACCOUNTS = 1_000
# (package, price in cents, credits per grant) of the bundled catalog, bought in this proportion.
PACKAGES: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("starter", 499, (500,)),
    ("starter", 499, (500,)),
    ("popular", 1499, (1500,)),
    ("professional", 2999, (3500, 500)),
)
CATALOG = Path(__file__).resolve().parents[1] / "src" / "billfold" / "example_catalog.toml"
TARGETS = {
    "postgresql": "≥ 1,000 events/s at c=32, p99 < 100 ms, within 2x of the baseline; RSS < 200 MB",
    "sqlite": "≥ 1,000 events/s at c=32; RSS < 200 MB",
}


def standin_catalog(workdir: Path) -> Path:
    """The bundled catalog with a Stripe price id on each package the events buy, so that a
    session without billfold's metadata resolves to its package from its line items."""
    text = CATALOG.read_text()
    for package in sorted({p for p, _, _ in PACKAGES}):
        header = f"[packages.{package}]\n"
        assert header in text, f"the bundled catalog has no package {package!r}"
        text = text.replace(header, f'{header}stripe_price_id = "{price_id(package)}"\n')
    path = workdir / "catalog-with-prices.toml"
    path.write_text(text)
    return path


def _server_workers() -> list[int]:
    """``billfold serve --workers`` values to measure: ``$BILLFOLD_BENCH_SERVER_WORKERS``
    (comma-separated), else 1 and one per core."""
    raw = os.environ.get("BILLFOLD_BENCH_SERVER_WORKERS")
    if raw:
        return [int(x) for x in raw.split(",") if x.strip()]
    return sorted({1, max(1, os.cpu_count() or 1)})


# --- the events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    event_id: str
    session_id: str
    body: bytes
    redelivery: bool


@dataclass
class Plan:
    deliveries: list[Delivery]
    # session id -> the grant amounts its package gives, sorted
    expected: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # session id -> (Stripe price id, amount, currency): what the Stripe stand-in answers
    line_items: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    @property
    def distinct(self) -> int:
        return len(self.expected)


def price_id(package: str) -> str:
    """The Stripe price the bench's catalog sells ``package`` at (events without metadata)."""
    return f"price_bench_{package}"


def plan(total: int, rng: random.Random, *, metadata: bool = True) -> Plan:
    """``total`` deliveries, 10% of them exact redeliveries of an earlier event, in sending order.

    Without ``metadata`` the sessions carry no ``billfold_*`` metadata: the account is the
    ``client_reference_id`` and the package is found from the session's line items (asked of the
    Stripe stand-in by billfold's worker)."""
    redeliveries = round(total * REDELIVERED)
    distinct = total - redeliveries
    firsts: list[Delivery] = []
    expected: dict[str, tuple[int, ...]] = {}
    line_items: dict[str, tuple[str, int, str]] = {}
    for _ in range(distinct):
        package, price, grants = rng.choice(PACKAGES)
        account = f"acct_bench_{rng.randrange(ACCOUNTS):04d}"
        event = build.checkout_session_completed(
            amount_total=price,
            metadata={"billfold_account": account, "billfold_package": package} if metadata else {},
            client_reference_id=account,
            customer_email=f"{account}@example.com",
            email=f"{account}@example.com",
        )
        body = json.dumps(event, indent=2).encode()  # Stripe's own formatting
        session = event["data"]["object"]["id"]
        firsts.append(Delivery(event["id"], session, body, redelivery=False))
        expected[session] = tuple(sorted(grants))
        line_items[session] = (price_id(package), price, "usd")
    # Each redelivery goes somewhere after its first delivery: sometimes right behind it (both in
    # flight at once at high concurrency), sometimes much later.
    keyed: list[tuple[float, Delivery]] = [(float(i), d) for i, d in enumerate(firsts)]
    for _ in range(redeliveries):
        i = rng.randrange(distinct)
        first = firsts[i]
        keyed.append(
            (
                rng.uniform(i + 0.5, distinct),
                Delivery(first.event_id, first.session_id, first.body, True),
            )
        )
    keyed.sort(key=lambda kv: kv[0])
    return Plan([d for _, d in keyed], expected, line_items)


# --- the load generator ------------------------------------------------------------------------------


@dataclass
class LoadResult:
    seconds: float  # first request sent -> last answer read
    latencies_ns: list[int]  # of the 2xx answers
    statuses: Counter[int]
    answers: Counter[str]  # billfold's "status" (processed, received, duplicate, ...)
    errors: Counter[str]
    started: float  # perf_counter at the first request
    ended: float


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    close = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def _load(
    port: int,
    deliveries: Sequence[Delivery],
    concurrency: int,
    secret: str,
    on_progress: Callable[[int], None] | None,
) -> LoadResult:
    next_index = 0
    done = 0
    latencies: list[int] = []
    statuses: Counter[int] = Counter()
    answers: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    clock = time.perf_counter_ns
    head = (
        f"POST /webhooks/stripe HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
    ).encode()

    async def connection() -> None:
        nonlocal next_index, done
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while next_index < len(deliveries):
                delivery = deliveries[next_index]
                next_index += 1
                # Signed when sent, as Stripe signs each delivery attempt.
                sig = signature.sign(delivery.body, secret).encode()
                request = b"".join(
                    (
                        head,
                        b"Stripe-Signature: ",
                        sig,
                        b"\r\nContent-Length: ",
                        str(len(delivery.body)).encode(),
                        b"\r\n\r\n",
                        delivery.body,
                    )
                )
                t0 = clock()
                try:
                    writer.write(request)
                    await writer.drain()
                    status, body, close = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
                    continue
                elapsed = clock() - t0
                statuses[status] += 1
                if 200 <= status < 300:
                    latencies.append(elapsed)
                    with contextlib.suppress(ValueError):
                        answer = json.loads(body)
                        answers[
                            "duplicate"
                            if answer.get("duplicate")
                            else str(answer.get("status", "ok"))
                        ] += 1
                else:
                    errors[f"HTTP {status}"] += 1
                done += 1
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
        finally:
            writer.close()

    async def progress() -> None:
        while True:
            if on_progress is not None:
                on_progress(done)
            await asyncio.sleep(0.2)

    ticker = asyncio.create_task(progress())
    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    ended = time.perf_counter()
    ticker.cancel()
    if on_progress is not None:
        on_progress(done)
    return LoadResult(ended - started, latencies, statuses, answers, errors, started, ended)


# --- servers ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""


APPS = {"baseline": "bench.baseline_app:create_app", "standin": "bench.stripe_standin:create_app"}


SERVER_CPROFILE = "BILLFOLD_BENCH_SERVER_CPROFILE"
"""Set to a file: ``billfold serve`` runs under cProfile, which writes its stats there at exit."""


@contextlib.contextmanager
def serving(
    kind: str,
    url: str,
    workers: int,
    secret: str,
    workdir: Path,
    *,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """``billfold serve`` (kind ``billfold``) or one of the bench's own apps (``baseline``: the
    baseline, ``standin``: the Stripe stand-in) on uvicorn, as a subprocess on a free port, until
    the context ends. ``extra_env`` is added to the server's environment last."""
    port = _free_port()
    bin_dir = Path(sys.executable).parent
    if kind == "billfold":
        command = [str(bin_dir / "billfold"), "serve", "--host", HOST, "--port", str(port)]
        command += ["--workers", str(workers)]
        profiled = os.environ.get(SERVER_CPROFILE)
        if profiled:  # the server's main thread (its event loop) under cProfile, to that file
            command = [sys.executable, "-m", "cProfile", "-o", profiled, "-m", "billfold"]
            command += ["serve", "--host", HOST, "--port", str(port), "--workers", "1"]
    else:
        command = [sys.executable, "-m", "uvicorn", APPS[kind], "--factory"]
        command += ["--host", HOST, "--port", str(port), "--workers", str(workers)]
        command += ["--log-level", "warning", "--no-access-log"]
    env = {
        **os.environ,
        "BILLFOLD_DATABASE_URL": url,
        "BILLFOLD_STRIPE_WEBHOOK_SECRETS": secret,
        "BILLFOLD_CATALOG": str(CATALOG),
        "BILLFOLD_LOG_LEVEL": "warning",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    for name in ("BILLFOLD_STRIPE_SECRET_KEY", "BILLFOLD_STRIPE_API_BASE"):
        env.pop(name, None)  # only the stand-in scenario calls "Stripe": it says so in extra_env
    env.update(extra_env or {})
    log = workdir / f"{kind}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{kind} server exited ({process.returncode}):\n{server.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not answer within 60 s:\n{server.tail()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


# --- after the load ----------------------------------------------------------------------------------


def _processed(engine: sa.Engine, kind: str) -> int:
    with engine.connect() as conn:
        if kind == "baseline":
            return int(
                conn.exec_driver_sql(f"SELECT count(*) FROM {baseline_app.TABLE}").scalar_one()
            )
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM events WHERE status = 'processed'"
            ).scalar_one()
        )


def wait_processed(
    engine: sa.Engine, kind: str, expected: int, *, since: float, timeout: float = 120
) -> tuple[float, int]:
    """(when ``expected`` events were processed, how many were), polling every 20 ms. When they
    all were at the first look, that is ``since`` (the last answer: billfold processes before it
    answers), not the time the look took."""
    n = _processed(engine, kind)
    if n >= expected:
        return since, n
    deadline = time.perf_counter() + timeout
    while True:
        n = _processed(engine, kind)
        now = time.perf_counter()
        if n >= expected or now > deadline:
            return now, n
        time.sleep(0.02)


def check_ledger(engine: sa.Engine, expected: dict[str, tuple[int, ...]]) -> list[str]:
    """Every way the ledger differs from one grant set per distinct session, and verify()'s list."""
    problems: list[str] = []
    with engine.connect() as conn:
        orders = conn.exec_driver_sql("SELECT id, stripe_id, status FROM orders").all()
        grants = conn.exec_driver_sql(
            "SELECT origin, amount FROM grants WHERE origin IS NOT NULL"
        ).all()
    by_order: dict[str, list[int]] = {}
    for origin, amount in grants:
        by_order.setdefault(origin, []).append(int(amount))
    seen: Counter[str] = Counter()
    for order_id, session, status in orders:
        seen[session] += 1
        if session not in expected:
            problems.append(f"order {order_id} for unknown session {session}")
            continue
        got = tuple(sorted(by_order.get(order_id, [])))
        if got != expected[session]:
            problems.append(f"session {session}: grants {got}, expected {expected[session]}")
        if status != "fulfilled":
            problems.append(f"session {session}: order {status}")
    for session in expected:
        if seen[session] != 1:
            problems.append(f"session {session}: {seen[session]} orders")
    problems += verify(engine)
    return problems


# --- the benchmark -----------------------------------------------------------------------------------


def _sizes(ctx: Context, concurrency: int) -> tuple[int, int]:
    """(warm-up deliveries, measured deliveries)."""
    override = ops_override()
    if override is not None and concurrency > 1:
        return (20 if ctx.quick else 100), override
    if ctx.quick:
        return 20, 100 if concurrency == 1 else 300
    return 100, 1_000 if concurrency == 1 else 4_000


Attach = Callable[[int], contextlib.AbstractContextManager[object]]
"""Given the server's pid, a context wrapped around the measured load (the profiler's hook)."""


@contextlib.contextmanager
def _standin(plans: Sequence[Plan], workdir: Path) -> Iterator[dict[str, str]]:
    """The Stripe stand-in, answering for the sessions of ``plans``; yields the server settings
    that point billfold at it."""
    sessions = {k: list(v) for p in plans for k, v in p.line_items.items()}
    mapping = workdir / f"standin-{secrets.token_hex(4)}.json"
    mapping.write_text(json.dumps(sessions))
    env = {"BILLFOLD_BENCH_STANDIN_SESSIONS": str(mapping)}
    with serving("standin", "sqlite://", 1, "", workdir, extra_env=env) as standin:
        yield {
            "BILLFOLD_STRIPE_SECRET_KEY": "sk_test_bench_" + secrets.token_hex(8),
            "BILLFOLD_STRIPE_API_BASE": f"http://{HOST}:{standin.port}",
            "BILLFOLD_CATALOG": str(standin_catalog(workdir)),
        }
        stats = httpx.get(f"http://{HOST}:{standin.port}/bench/stats", timeout=5).json()
        if stats["unknown"]:
            raise RuntimeError(f"billfold asked the Stripe stand-in for unknown things: {stats}")


def _one(
    ctx: Context,
    kind: str,
    database: str,
    workers: int,
    concurrency: int,
    workdir: Path,
    rng: random.Random,
    task: Any,
    *,
    metadata: bool = True,
    attach: Attach | None = None,
) -> dict[str, Any]:
    warm, total = _sizes(ctx, concurrency)
    secret = "whsec_" + secrets.token_hex(16)
    warmup, measured = plan(warm, rng, metadata=metadata), plan(total, rng, metadata=metadata)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(ctx.fresh_database(database))
        extra_env = {} if metadata else stack.enter_context(_standin([warmup, measured], workdir))
        if kind == "baseline":
            baseline_app.create_table(url)
        engine = db_engine.make_engine(url, pool_size=2)
        stack.callback(engine.dispose)
        with serving(kind, url, workers, secret, workdir, extra_env=extra_env) as server:
            asyncio.run(_load(server.port, warmup.deliveries, min(concurrency, 8), secret, None))
            wait_processed(engine, kind, warmup.distinct, since=time.perf_counter())
            ctx.progress.reset(task, total=len(measured.deliveries))

            def progress(n: int) -> None:
                ctx.progress.update(task, completed=n)

            meter = CpuMeter(server.process.pid, url)
            meter.start()
            with attach(server.process.pid) if attach else contextlib.nullcontext():
                load = asyncio.run(
                    _load(server.port, measured.deliveries, concurrency, secret, progress)
                )
                finished, processed = wait_processed(
                    engine, kind, warmup.distinct + measured.distinct, since=load.ended
                )
            server_cpu, pg_cpu = meter.stop()
            rss_sum, rss_max = peak_rss_mb(server.process.pid)
        expected = {**warmup.expected, **measured.expected}
        if kind == "billfold":
            problems = check_ledger(engine, expected)
        else:
            stored = _processed(engine, kind)
            problems = (
                [] if stored == len(expected) else [f"{stored} rows for {len(expected)} events"]
            )
    seconds = max(load.ended, finished) - load.started
    lat_ms = [x / 1e6 for x in load.latencies_ns]
    complete = processed >= warmup.distinct + measured.distinct
    n = len(measured.deliveries)
    return {
        "events/s": n / seconds if complete else 0.0,
        "seconds": seconds,
        "drain s": max(0.0, finished - load.ended),
        "p50 ms": percentile(lat_ms, 50),
        "p99 ms": percentile(lat_ms, 99),
        "non-2xx": sum(load.errors.values()),  # HTTP errors and broken connections
        "answers": dict(load.answers),
        "rss MB": rss_sum,
        "largest process MB": rss_max,
        "server CPU ms/event": server_cpu / n * 1000,
        "PG CPU ms/event": pg_cpu / n * 1000 if pg_cpu is not None else None,
        "problems": problems,
        "complete": complete,
    }


NOMETA = "without metadata: line items from a Stripe stand-in, by the worker"
WITH_METADATA = "with billfold metadata"


def _row(
    database: str,
    workers: int,
    concurrency: int,
    events: str,
    b: list[dict[str, Any]],
    base: list[dict[str, Any]],
    durability: str,
) -> dict[str, Any]:
    rate = median([x["events/s"] for x in b])
    base_rate = median([x["events/s"] for x in base])
    problems = sorted({p for x in b + base for p in x["problems"]})
    pg_cpu = [x["PG CPU ms/event"] for x in b if x["PG CPU ms/event"] is not None]
    base_pg = [x["PG CPU ms/event"] for x in base if x["PG CPU ms/event"] is not None]
    return {
        "database": database,
        "server processes": workers,
        "concurrency": concurrency,
        "events": events,
        "events/s": rate,
        "events/s runs": [round(x["events/s"]) for x in b],
        "p50 ms": median([x["p50 ms"] for x in b]),
        "p99 ms": median([x["p99 ms"] for x in b]),
        "server CPU ms/event": median([x["server CPU ms/event"] for x in b]),
        "PG CPU ms/event": median(pg_cpu) if pg_cpu else None,
        "peak RSS MB": max(x["rss MB"] for x in b),
        "baseline events/s": base_rate,
        "baseline runs": [round(x["events/s"]) for x in base],
        "baseline p99 ms": median([x["p99 ms"] for x in base]),
        "baseline server CPU ms/event": median([x["server CPU ms/event"] for x in base]),
        "baseline PG CPU ms/event": median(base_pg) if base_pg else None,
        "billfold/baseline": rate / base_rate if base_rate else None,
        "non-2xx": sum(x["non-2xx"] for x in b + base),
        "answers (last run)": b[-1]["answers"],
        "drain s (max)": max(x["drain s"] for x in b),
        "ledger": "ok: one fulfilled order and grant set per session, verify clean"
        if not problems
        else f"{len(problems)} problems: " + "; ".join(problems[:5]),
        "durability": durability,
    }


def run(ctx: Context) -> list[Record]:
    records: list[Record] = []
    rng = random.Random(20261123)
    ctx.notes.append(
        "events/s: deliveries (10% of them redeliveries) divided by the time from the first request "
        "until every distinct event is processed (credits granted); p50/p99 of the 2xx answers; "
        "RSS: peak resident memory (VmHWM) summed over the server's processes (with --workers N: "
        "uvicorn's supervisor and N workers). The load generator (asyncio, this process) runs on "
        "the same cores."
    )
    ctx.notes.append(
        "CPU per event = CPU seconds during the measured load and drain / measured deliveries: "
        "server = the server's processes (/proc/<pid>/stat, utime + stime, supervisor included); "
        "PG = the PostgreSQL backends connected to the run's database (found by process title in /proc, sampled every 0.2 s), "
        "without the shared WAL writer and checkpointer. billfold/baseline = ratio of events/s "
        "to the baseline of the same run."
    )
    ctx.notes.append(
        f"'{NOMETA}': the sessions carry no billfold_* metadata; billfold answers 'received' and "
        "its in-process worker asks a local Stripe stand-in (bench/stripe_standin.py, about 1 ms "
        "an answer) for the session's line items, matches the price to the package "
        "(stripe_price_id in a copy of the bundled catalog) and grants; measured at the highest "
        "concurrency only, against the same baseline runs; the stand-in's CPU is not counted."
    )
    top = max(CONCURRENCY)
    with tempfile.TemporaryDirectory(prefix="billfold-bench-webhooks-") as tmp:
        workdir = Path(tmp)
        scenarios = [
            (database, workers, concurrency)
            for database in ctx.databases
            for workers in _server_workers()
            for concurrency in CONCURRENCY
        ]
        task = ctx.progress.add_task("webhooks", total=None)
        for database, workers, concurrency in scenarios:
            kinds = ["billfold", "baseline"] + (["nometa"] if concurrency == top else [])
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
            for r in range(ctx.runs):
                # Rotate which goes first, so that none always meets a warmer (or noisier) machine.
                order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
                for kind in order:
                    ctx.progress.update(
                        task,
                        description=f"{database} w={workers} c={concurrency} {kind} run {r + 1}",
                    )
                    runs[kind].append(
                        _one(
                            ctx,
                            "billfold" if kind == "nometa" else kind,
                            database,
                            workers,
                            concurrency,
                            workdir,
                            rng,
                            task,
                            metadata=kind != "nometa",
                        )
                    )
            for kind, events in (("billfold", WITH_METADATA), ("nometa", NOMETA)):
                if kind not in runs:
                    continue
                values = _row(
                    database,
                    workers,
                    concurrency,
                    events,
                    runs[kind],
                    runs["baseline"],
                    ctx.database_settings(database),
                )
                records.append(Record(NAME, "webhooks over HTTP", values))
                ctx.log(
                    f"{database} w={workers} c={concurrency} {kind}: "
                    f"{values['events/s']:.0f} events/s, p99 {values['p99 ms']:.1f} ms, "
                    f"RSS {values['peak RSS MB']:.0f} MB; baseline "
                    f"{values['baseline events/s']:.0f}/s; ledger {values['ledger']}"
                )
    for database, target in TARGETS.items():
        if database in ctx.databases:
            ctx.notes.append(f"target ({database}): {target}")
    ctx.notes.append(
        f"target ({NOMETA}): ≥ 400 events/s fully processed (issue 12); issue 12 also asks "
        "≥ 1,000 events/s and at least half of the baseline with metadata, p99 < 100 ms"
    )
    return records

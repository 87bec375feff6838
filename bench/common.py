"""What every benchmark shares: result records, fresh databases, a bulk loader, a thread runner,
statistics and the rendering of results as markdown and as a rich table.

Databases. Every run of every scenario gets a fresh, migrated database:

- SQLite: a copy of a template file migrated once per session, in a temporary directory;
- PostgreSQL: ``CREATE DATABASE billfold_bench_<random> TEMPLATE <migrated template>`` on the
  server named by ``--pg-url`` (default the local server at 127.0.0.1:5432), dropped afterwards;
  when that server cannot be reached, a throwaway cluster (initdb/pg_ctl, as the ``postgres`` user
  when run as root) with PostgreSQL's default durability settings (fsync on, synchronous_commit on).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import pwd
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from rich.console import Console
from rich.progress import Progress
from sqlalchemy.engine import make_url

from billfold.adapters.db import engine as db_engine
from billfold.adapters.db import migrate

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "billfold_bench_"


# --- results -------------------------------------------------------------------------------------


@dataclass
class Record:
    """One result row.

    Records of one benchmark with the same ``table`` share a table; ``values`` maps column headers
    to JSON-able values (numbers, strings, lists of numbers), in column order.
    """

    benchmark: str
    table: str
    values: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "table": self.table, "values": self.values}


def ops_override() -> int | None:
    """``$BILLFOLD_BENCH_OPS``: measured operations per run of each concurrent scenario (ledger
    spends at c=16, HTTP spends, webhook deliveries at c > 1), to fit a run into the time there is;
    None when unset (the --quick or full sizes apply)."""
    raw = os.environ.get("BILLFOLD_BENCH_OPS", "").strip()
    return int(raw) if raw else None


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[rank - 1])


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    return str(value)


def _grouped(records: Sequence[Record]) -> dict[str, list[Record]]:
    tables: dict[str, list[Record]] = {}
    for record in records:
        tables.setdefault(record.table, []).append(record)
    return tables


def _columns(rows: Sequence[Record]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row.values if c not in columns)
    return columns


def markdown(
    title: str, records: Sequence[Record], environment: dict[str, Any], notes: Sequence[str] = ()
) -> str:
    out = [f"# {title}", ""]
    out += [f"- **{k}**: {fmt(v)}" for k, v in environment.items()]
    for table, rows in _grouped(records).items():
        columns = _columns(rows)
        out += ["", f"## {table}", ""]
        out.append("| " + " | ".join(columns) + " |")
        out.append("|" + "|".join("---" for _ in columns) + "|")
        for row in rows:
            cells = [fmt(row.values.get(c)).replace("|", "\\|") for c in columns]
            out.append("| " + " | ".join(cells) + " |")
    if notes:
        out += ["", "## Notes", ""]
        out += [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


# --- databases -----------------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    return url.replace("postgresql+psycopg://", "postgresql://")


class ThrowawayCluster:
    """A private PostgreSQL started with initdb/pg_ctl, with default durability (fsync on)."""

    def __init__(self) -> None:
        initdb, self._pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not self._pg_ctl:
            raise RuntimeError("initdb/pg_ctl are not installed")
        self.root = Path(tempfile.mkdtemp(prefix="billfold-bench-pg-"))
        self._data = self.root / "data"
        port = _free_port()
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]
        self._env = {**os.environ, "LC_ALL": "C.UTF-8"}
        subprocess.run(
            [
                *self._prefix,
                initdb,
                "-D",
                str(self._data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env,
        )
        opts = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        subprocess.run(
            [
                *self._prefix,
                self._pg_ctl,
                "-D",
                str(self._data),
                "-o",
                opts,
                "-l",
                str(self.root / "log"),
                "-w",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def close(self) -> None:
        assert self._pg_ctl
        subprocess.run(
            [*self._prefix, self._pg_ctl, "-D", str(self._data), "-m", "fast", "-w", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            env=self._env,
        )
        shutil.rmtree(self.root, ignore_errors=True)


class PostgresServer:
    """Creates fresh, migrated ``billfold_bench_<random>`` databases on one server."""

    def __init__(self, url: str, *, synchronous_commit: str | None, origin: str) -> None:
        self.url = url
        self.origin = origin  # "server" or "throwaway cluster"
        self.synchronous_commit = synchronous_commit  # None: the server's setting
        self._template: str | None = None
        self._created: list[str] = []
        self._lock = threading.Lock()

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(_libpq(self.url), autocommit=True, connect_timeout=5)

    def database_url(self, name: str, *, session_options: bool = True) -> str:
        url = make_url(db_engine.normalize_url(self.url)).set(database=name)
        if session_options and self.synchronous_commit is not None:
            url = url.update_query_dict(
                {"options": f"-csynchronous_commit={self.synchronous_commit}"}
            )
        return url.render_as_string(hide_password=False)

    def _create(self, template: str | None) -> str:
        name = f"{DB_PREFIX}{secrets.token_hex(5)}"
        with self._admin() as conn:
            if template is None:
                conn.execute(f'CREATE DATABASE "{name}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._created.append(name)
        return name

    def _drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with contextlib.suppress(ValueError):
            self._created.remove(name)

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        with self._lock:
            if self._template is None:
                template = self._create(None)
                # Without session options: alembic's config would choke on the URL's "%".
                url = self.database_url(template, session_options=False)
                engine = db_engine.make_engine(url, pool_size=1)
                migrate.upgrade(engine)
                engine.dispose()
                self._template = template
        name = self._create(self._template)
        try:
            yield self.database_url(name)
        finally:
            self._drop(name)

    def settings(self) -> dict[str, str]:
        """The settings that decide commit cost, as a fresh benchmark connection sees them."""
        with self.fresh_database() as url, psycopg.connect(_libpq(url)) as conn:
            out = {}
            for name in (
                "server_version",
                "synchronous_commit",
                "fsync",
                "wal_sync_method",
                "full_page_writes",
                "shared_buffers",
                "max_connections",
                "jit",
            ):
                row = conn.execute(f"SHOW {name}").fetchone()
                out[name] = str(row[0]) if row else "?"
            return out

    def close(self) -> None:
        for name in list(self._created):
            if name != self._template:
                with contextlib.suppress(psycopg.Error):
                    self._drop(name)
        if self._template:
            with contextlib.suppress(psycopg.Error):
                self._drop(self._template)


def reachable(url: str) -> str | None:
    """None when a PostgreSQL server answers at ``url``, else why not."""
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class SqliteFiles:
    """Fresh SQLite databases: copies of a file migrated once."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._template: Path | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        with self._lock:
            if self._template is None:
                path = self.workdir / "template.db"
                engine = db_engine.make_engine(f"sqlite:///{path}")
                migrate.upgrade(engine)
                engine.dispose()
                self._template = path
        path = self.workdir / f"bench-{secrets.token_hex(5)}.db"
        shutil.copy(self._template, path)
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    def settings(self) -> dict[str, str]:
        """How billfold's engine runs SQLite (read from a real engine, as it changes)."""
        with self.fresh_database() as url:
            engine = db_engine.make_engine(url)
            try:
                with engine.connect() as conn:
                    journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                    sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
                pool = type(engine.pool).__name__
            finally:
                engine.dispose()
        return {
            "sqlite_version": sqlite3.sqlite_version,
            "journal_mode": str(journal),
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, str(sync)),
            "pool": pool,
        }


# --- the context a benchmark runs in -------------------------------------------------------------


@dataclass
class Context:
    runs: int
    quick: bool
    databases: list[str]  # "sqlite", "postgresql"
    console: Console
    progress: Progress
    sqlite: SqliteFiles
    postgres: PostgresServer | None
    environment: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def fresh_database(self, database: str) -> contextlib.AbstractContextManager[str]:
        if database == "sqlite":
            return self.sqlite.fresh_database()
        if database == "postgresql":
            assert self.postgres is not None
            return self.postgres.fresh_database()
        raise ValueError(database)

    def log(self, message: str) -> None:
        self.progress.console.log(message)

    def database_settings(self, database: str) -> str:
        """A short description of the commit durability in force, for a result row."""
        if database == "sqlite":
            sq = self.environment.get("sqlite", {})
            return f"journal_mode={sq.get('journal_mode')}, synchronous={sq.get('synchronous')}"
        pg = self.environment.get("postgresql", {})
        return f"synchronous_commit={pg.get('synchronous_commit')}, fsync={pg.get('fsync')}"


def environment() -> dict[str, Any]:
    import psycopg as _psycopg

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load average at start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "sqlalchemy": sa.__version__,
        "psycopg": _psycopg.__version__,
    }


# --- bulk loading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """Accounts to load: each gets ``grants`` grants of ``grant_amount`` and then ``spends`` spends
    of ``spend_amount``, drawn from its grants in turn. Every transaction has two lines."""

    accounts: Sequence[str]
    grants: int
    spends: int
    grant_amount: int
    spend_amount: int = 1
    expiring_every: int = 2  # every n-th grant expires in a year (0: none)


@dataclass
class LoadStats:
    accounts: int = 0
    transactions: int = 0
    lines: int = 0
    grants: int = 0
    seconds: float = 0.0


_COLUMNS = {
    "accounts": ("id", "metadata", "created", "updated"),
    "ledger_transactions": (
        "id",
        "idempotency_key",
        "request_hash",
        "kind",
        "account_id",
        "unit",
        "amount",
        "reason",
        "line_count",
        "result",
        "created",
    ),
    "grants": (
        "id",
        "account_id",
        "unit",
        "amount",
        "remaining",
        "held",
        "priority",
        "expires_at",
        "kind",
        "origin",
        "reason",
        "transaction_id",
        "created",
    ),
    "balances": ("account_id", "unit", "available", "held", "debt"),
    "ledger_lines": ("transaction_id", "account_id", "unit", "amount", "grant_id", "hold_id"),
}


def _ledger_rows(
    holdings: Sequence[Holding], *, unit: str, now: int, tag: str
) -> tuple[dict[str, list[tuple[Any, ...]]], LoadStats]:
    """Rows for the ledger tables, consistent with each other as billfold's writes would be."""
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _COLUMNS}
    stats = LoadStats()
    n = 0
    year = now + 365 * 86_400
    request_hash = "0" * 64

    def ident(prefix: str, i: int) -> str:
        # Sorts before billfold's time-ordered ids, so loaded rows are "older".
        return f"{prefix}_0000{tag}{i:012d}"

    for h in holdings:
        if h.spends:
            assert h.grants > 0
            per_grant = -(-h.spends // h.grants) * h.spend_amount
            assert per_grant <= h.grant_amount, "grants too small for the spends"
        for acct in h.accounts:
            rows["accounts"].append((acct, "{}", now, now))
            stats.accounts += 1
            balance = 0
            grant_ids: list[str] = []
            remaining: list[int] = []
            for g in range(h.grants):
                n += 1
                txn, gid = ident("txn", n), ident("gr", n)
                expires = year if h.expiring_every and g % h.expiring_every == 1 else None
                balance += h.grant_amount
                result = {
                    "transaction_id": txn,
                    "grant_id": gid,
                    "account_id": acct,
                    "unit": unit,
                    "amount": h.grant_amount,
                    "debt_repaid": 0,
                    "expires_at": expires,
                    "balance": balance,
                }
                rows["ledger_transactions"].append(
                    (
                        txn,
                        f"bench-load:{txn}",
                        request_hash,
                        "grant",
                        acct,
                        unit,
                        h.grant_amount,
                        None,
                        2,
                        json.dumps(result),
                        now,
                    )
                )
                rows["ledger_lines"].append(
                    (txn, "sys:adjustments", unit, -h.grant_amount, gid, None)
                )
                rows["ledger_lines"].append((txn, acct, unit, h.grant_amount, gid, None))
                rows["grants"].append(
                    [
                        gid,
                        acct,
                        unit,
                        h.grant_amount,
                        h.grant_amount,
                        0,
                        0,
                        expires,
                        "manual",
                        None,
                        None,
                        txn,
                        now,
                    ]
                )
                grant_ids.append(gid)
                remaining.append(h.grant_amount)
            first_grant = len(rows["grants"]) - h.grants
            for s in range(h.spends):
                n += 1
                txn = ident("txn", n)
                g = s % h.grants
                gid = grant_ids[g]
                remaining[g] -= h.spend_amount
                rows["grants"][first_grant + g][4] = remaining[g]
                balance -= h.spend_amount
                result = {
                    "transaction_id": txn,
                    "account_id": acct,
                    "unit": unit,
                    "amount": h.spend_amount,
                    "balance": balance,
                    "draws": [[gid, h.spend_amount]],
                }
                rows["ledger_transactions"].append(
                    (
                        txn,
                        f"bench-load:{txn}",
                        request_hash,
                        "spend",
                        acct,
                        unit,
                        h.spend_amount,
                        None,
                        2,
                        json.dumps(result),
                        now,
                    )
                )
                rows["ledger_lines"].append((txn, acct, unit, -h.spend_amount, gid, None))
                rows["ledger_lines"].append((txn, "sys:spent", unit, h.spend_amount, gid, None))
            rows["balances"].append((acct, unit, balance, 0, 0))
            stats.grants += h.grants
            stats.transactions += h.grants + h.spends
            stats.lines += 2 * (h.grants + h.spends)
    rows["grants"] = [tuple(r) for r in rows["grants"]]
    return rows, stats


def bulk_load(
    url: str, holdings: Sequence[Holding], *, unit: str = "credits", now: int | None = None
) -> LoadStats:
    """Write accounts, balances, grants, transactions and lines straight into the tables (COPY on
    PostgreSQL, executemany on SQLite), consistent with each other so that ``verify`` passes;
    then ANALYZE (and VACUUM on PostgreSQL), as a long-lived database would be."""
    started = time.perf_counter()
    now = int(time.time()) if now is None else now
    rows, stats = _ledger_rows(holdings, unit=unit, now=now, tag=secrets.token_hex(3).upper())
    if db_engine.is_sqlite(url):
        _load_sqlite(url.removeprefix("sqlite:///"), rows)
    else:
        _load_postgres(url, rows)
    stats.seconds = time.perf_counter() - started
    return stats


def _load_sqlite(path: str, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        for table, columns in _COLUMNS.items():
            marks = ", ".join("?" for _ in columns)
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows[table]
            )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _load_postgres(url: str, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    with psycopg.connect(_libpq(url)) as conn:
        # As superuser, skip the per-row triggers (the deferred sum-to-zero check and the foreign
        # keys) for the load: the rows are consistent by construction and verify() checks them.
        try:
            conn.execute("SET session_replication_role = replica")
        except psycopg.Error:
            conn.rollback()
        with conn.cursor() as cur:
            for table, columns in _COLUMNS.items():
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows[table]:
                        copy.write_row(row)
        conn.commit()
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def count_rows(url: str, table: str) -> int:
    engine = db_engine.make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def checkpoint(url: str) -> None:
    """Flush dirty pages before a measurement, so that a checkpoint is less likely during it."""
    if db_engine.is_sqlite(url):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return
    with psycopg.connect(_libpq(url), autocommit=True) as conn, contextlib.suppress(psycopg.Error):
        conn.execute("CHECKPOINT")


# --- running work on threads ---------------------------------------------------------------------


@dataclass
class WorkerRun:
    seconds: float
    latencies_ns: list[int]
    errors: Counter[str]

    @property
    def ops(self) -> int:
        return len(self.latencies_ns)


def run_workers(
    fn: Callable[[Any], object],
    work: Sequence[Sequence[Any]],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> WorkerRun:
    """Run ``fn(item)`` for every item, one thread per list in ``work``, all starting together.

    Time is wall-clock from the common start to the last thread's end; each call is timed. Progress
    is polled from this thread, so the workers share no lock.
    """
    done = [0] * len(work)
    latencies: list[list[int]] = [[] for _ in work]
    errors: list[Counter[str]] = [Counter() for _ in work]
    ends = [0] * len(work)
    start = threading.Barrier(len(work) + 1)
    clock = time.perf_counter_ns

    def worker(i: int, items: Sequence[Any]) -> None:
        lat = latencies[i]
        start.wait()
        for item in items:
            t0 = clock()
            try:
                fn(item)
            except Exception as exc:
                errors[i][type(exc).__name__] += 1
            lat.append(clock() - t0)
            done[i] += 1
        ends[i] = clock()

    threads = [
        threading.Thread(target=worker, args=(i, items), daemon=True, name=f"bench-{i}")
        for i, items in enumerate(work)
    ]
    for th in threads:
        th.start()
    start.wait()
    began = clock()
    while any(th.is_alive() for th in threads):
        if on_progress is not None:
            on_progress(sum(done))
        time.sleep(0.1)
    for th in threads:
        th.join()
    if on_progress is not None:
        on_progress(sum(done))
    merged: Counter[str] = Counter()
    for c in errors:
        merged.update(c)
    return WorkerRun(
        seconds=(max(ends) - began) / 1e9,
        latencies_ns=[x for lat in latencies for x in lat],
        errors=merged,
    )


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` dealt round-robin into ``parts`` lists."""
    return [list(items[i::parts]) for i in range(parts)]


# --- CPU and memory of the processes that do the work ---------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads), from ``/proc/<pid>/stat``;
    0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command: state is field 3, utime field 14 and stime field 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(sum, largest) of ``VmHWM`` over the process and its descendants, in MB."""
    peaks: list[int] = []
    for p in descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]))  # kB
        except OSError:
            continue
    return sum(peaks) / 1024, (max(peaks) if peaks else 0) / 1024


class CpuMeter:
    """CPU spent during a measurement by the process tree at ``pid`` (the server, or this process
    for the library benchmarks) and by the PostgreSQL backends serving the benchmark's database
    (found by their process title, ``postgres: <user> <database> ...``; the server must run on
    this machine). The backends are sampled every 0.2 s as well, so that one that exits during the
    measurement (a pool's overflow connection) counts up to its last sample. Shared PostgreSQL
    processes (WAL writer, checkpointer) are not counted."""

    INTERVAL = 0.2

    def __init__(self, pid: int, url: str) -> None:
        self.pid = pid
        self.database = (
            None if db_engine.is_sqlite(url) else make_url(db_engine.normalize_url(url)).database
        )
        self._process: dict[int, float] = {}
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _tree(self) -> dict[int, float]:
        return {p: cpu_seconds(p) for p in descendants(self.pid)}

    def _backends(self) -> dict[int, float]:
        if self.database is None:
            return {}
        marker = f" {self.database} ".encode()
        found: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and marker in title:
                found[int(entry.name)] = cpu_seconds(int(entry.name))
        return found

    def _sample(self) -> None:
        for p, c in self._backends().items():
            if c > 0:
                self._last[p] = c

    def _poll(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self._sample()

    def start(self) -> None:
        self._process = self._tree()
        self._first = self._backends()
        self._last = dict(self._first)
        if self.database is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True, name="cpu-meter")
            self._thread.start()

    def stop(self) -> tuple[float, float | None]:
        """(CPU seconds of the process tree, of the database's backends or None on SQLite)."""
        process = sum(c - self._process.get(p, 0.0) for p, c in self._tree().items())
        if self.database is None:
            return process, None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        backends = sum(c - self._first.get(p, 0.0) for p, c in self._last.items())
        return process, backends

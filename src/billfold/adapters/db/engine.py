"""Engines for SQLite and PostgreSQL (errors are translated in ``errors``).

SQLite: WAL, foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` so that a writer takes the
write lock when its transaction starts instead of failing to upgrade a read lock later.
PostgreSQL: psycopg 3 with a connection pool, READ COMMITTED; row locks serialise writers per
account and unit.
"""

from __future__ import annotations

import re
import threading
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine


def normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
WRITER_LOCK_TIMEOUT = 30.0  # seconds, as SQLite's busy timeout


def writer_lock(engine: Engine) -> threading.RLock | None:
    """The lock this process's units of work take around a transaction on a SQLite file.

    SQLite has one writer at a time; a thread that finds the database locked sleeps in SQLite's busy
    handler (1, 2, 5, ... 100 ms) and polls again, so under load most threads sleep while the lock
    sits free. Queuing on a lock in the process instead hands the database over the moment it is
    free. Other processes on the same file still meet SQLite's own lock and busy timeout.
    """
    return _WRITER_LOCKS.get(engine)


WAL_AUTOCHECKPOINT = 4000
"""Pages (of 4 KiB) in SQLite's write-ahead log before a commit copies them back into the database
file (SQLite's default: 1000). The copy runs in the committing thread, inside the write lock, with
two fsyncs; a batch of 8 spends over many accounts changes about 56 pages, so at the default every
eighteenth batch paid for one. Four times fewer copies, each of fewer distinct pages than four of
the default's (the same pages are written again and again): 10 % more spends a second (c=16,
10,000 accounts, 12,000 spends), for a log of up to about 16 MiB."""


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalize_url(url)
    if is_sqlite(url):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        # A small pool: closing SQLite's last connection checkpoints the WAL, an fsync per unit of
        # work; keeping connections open lets commits in WAL mode skip it. Last in, first out:
        # each connection keeps its own page cache, which it must drop when another connection
        # has written since its last transaction; one writer at a time, handed the connection
        # the previous one just returned, finds its pages still cached (first in, first out
        # went round the pool, every batch on a cold cache: library spends, c=16, 10,000
        # accounts, 4 interleaved runs: 2,738 spends a second first in, 3,049 last in).
        pool: dict[str, Any] = (
            {"poolclass": sa.pool.StaticPool}
            if memory
            else {
                "poolclass": sa.pool.QueuePool,
                "pool_size": 4,
                "max_overflow": 16,
                "pool_use_lifo": True,
            }
        )
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
            **pool,
        )
        _configure_sqlite(engine)
        if not memory:
            _WRITER_LOCKS[engine] = threading.RLock()
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs a round trip per unit of work. A dropped connection is detected
        # when used, which invalidates the whole pool, so the next unit of work reconnects.
        pool_timeout=10,
        # Last in, first out: the batches' few connections at a time are the same few backends,
        # their caches warm (first in, first out went round all of them: library spends, c=16,
        # 8-10 % more of PostgreSQL's CPU per spend and a p99 a quarter higher); the rest sit idle.
        pool_use_lifo=True,
        connect_args={"connect_timeout": 5},
    )


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
        cursor.close()
        # SQLite's own lower() folds ASCII only; e-mails are looked up case-insensitively in every
        # script, as PostgreSQL's lower() does.
        dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.info.get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

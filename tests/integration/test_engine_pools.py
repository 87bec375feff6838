"""The engines' pools and SQLite's settings: what the write path's speed depends on, held here so
that a change of defaults is a decision, not an accident."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from billfold.adapters.db import engine as db_engine


def _driver(engine: Engine) -> list[Any]:
    """Check out two connections, return them first then second, check one out again: the
    driver connections in that order (the last is the one the pool handed back)."""
    first = engine.raw_connection()
    second = engine.raw_connection()
    order = [first.driver_connection, second.driver_connection]
    first.close()
    second.close()
    again = engine.raw_connection()
    order.append(again.driver_connection)
    again.close()
    return order


def test_the_pool_hands_out_the_connection_returned_last(engine: Engine) -> None:
    """Last in, first out on both databases: the connection of the last unit of work is the next
    one's, its caches warm (SQLite drops a connection's page cache when another connection
    wrote since its last transaction; PostgreSQL's backends keep their own caches)."""
    first, second, again = _driver(engine)
    assert first is not second
    assert again is second


def test_sqlite_runs_in_wal_mode_and_copies_the_log_back_every_4000_pages(tmp_path: Path) -> None:
    engine = db_engine.make_engine(f"sqlite:///{tmp_path / 'settings.db'}")
    raw = engine.raw_connection()
    driver: Any = raw.driver_connection
    try:
        settings = {
            name: driver.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "wal_autocheckpoint", "foreign_keys")
        }
    finally:
        raw.close()
        engine.dispose()
    assert settings == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL
        "wal_autocheckpoint": db_engine.WAL_AUTOCHECKPOINT,
        "foreign_keys": 1,
    }
    assert db_engine.WAL_AUTOCHECKPOINT == 4000

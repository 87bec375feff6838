"""What every store shares: building statements once per dialect.

A statement built per call (``insert(...).values(**row)``, ``where(c.id == value)``) costs
SQLAlchemy a coercion of every literal and a fresh cache key, which is most of a unit of work's
CPU; a prebuilt statement's cache key is memoised and its compiled form cached. So each store
builds its hot statements once per dialect (``statements(pg)``) and executes them with parameters.
Names of ``WHERE`` parameters start with ``w_``: an ``UPDATE`` reserves the columns' own names for
``SET``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

P = sa.bindparam
S = TypeVar("S")


def insert_for(pg: bool) -> Any:
    """The dialect's ``insert`` (both have ``on_conflict_do_nothing`` / ``_do_update``)."""
    return postgresql.insert if pg else sqlite.insert


def is_pg(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def per_dialect(build: Callable[[bool], S]) -> Callable[[bool], S]:
    """``build(pg)`` once per dialect, then the same object on every call."""
    return cache(build)

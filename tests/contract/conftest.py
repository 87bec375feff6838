"""The contract suite's backends: every test runs on memory, SQLite and PostgreSQL.

``db_url`` is the root conftest's (a fresh SQLite file, or the test PostgreSQL emptied), widened here
by one more parameter, ``memory``; ``backend`` is the storage ports over it. Where the SQL adapters
are known to disagree with the contract, a test says so with ``@disagrees(...)``, which turns into a
strict xfail on those backends only: the test still runs there, and fails the day they agree.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billfold.adapters.db.database import Database
from billfold.adapters.memory import MemoryDatabase
from tests.contract.backends import MEMORY_URL, Backend

# Store-level tests write rows one store at a time (an unfinished transaction, a grant without its
# lines): no ledger invariant is meant to hold after them. The ledger operations and the audit
# itself are checked as usual.
_BOOKS_BALANCE = {"test_ledger_operations.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/contract/" in str(item.path) and item.path.name not in _BOOKS_BALANCE:
            item.add_marker(pytest.mark.damages_ledger)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "disagrees(*backends, reason): a known disagreement of those backends with the contract",
    )


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """``memory://``, or the root conftest's ``db_url`` for the same parameter."""
    if request.param == "memory":
        yield MEMORY_URL
        return
    yield request.getfixturevalue("db_url")


@pytest.fixture
def backend(db_url: str) -> Iterator[Backend]:
    """The storage ports over ``db_url``, fresh and empty."""
    if db_url == MEMORY_URL:
        memory = MemoryDatabase()
        yield Backend(name="memory", uow=memory.uow, auditor=memory)
        return
    database = Database(db_url, pool_size=4)
    name = "sqlite" if database.is_sqlite else "postgres"
    try:
        yield Backend(name=name, uow=database.uow, auditor=database)
    finally:
        database.close()


@pytest.fixture(autouse=True)
def _known_disagreements(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("disagrees")
    callspec = getattr(request.node, "callspec", None)
    if marker is None or callspec is None:
        return
    if callspec.params.get("db_url") in marker.args:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=marker.kwargs["reason"]))

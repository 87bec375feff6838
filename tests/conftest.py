"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from BILLFOLD_TEST_DATABASE_URL (CI) or a throwaway cluster started here when
initdb and pg_ctl are on the machine. Without either, the PostgreSQL tests are skipped with one line
saying so, except under CI=true, where they fail instead. Under pytest-xdist (``make test`` runs
test files in parallel) each worker gets a database of its own next to the named one
(``<name>_gw0``, ...), made at start and dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from billfold.adapters.db import engine as db_engine
from billfold.adapters.db import migrate
from billfold.adapters.db import tables as t
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.db.verify import verify
from tests.support import postgres

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's workers start with COLUMNS=80 and LINES=24 set, which rich reads once, when a
    # Console is made: the CLI's tables would be cut to 80 columns whatever a test asks for.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

_PG_STATE: dict[str, str | None] = {"url": None, "why": None}
_STACK = contextlib.ExitStack()


def pytest_configure(config: pytest.Config) -> None:
    url = os.environ.get("BILLFOLD_TEST_DATABASE_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if url and worker:
        _PG_STATE["url"] = _STACK.enter_context(postgres.database_of_its_own(url, worker))
    elif url:
        _PG_STATE["url"] = url
    elif postgres.available():
        try:
            _PG_STATE["url"] = _STACK.enter_context(postgres.throwaway_cluster())
        except Exception as exc:  # pragma: no cover - depends on the machine
            _PG_STATE["why"] = f"could not start a throwaway PostgreSQL: {exc}"
    else:
        _PG_STATE["why"] = "BILLFOLD_TEST_DATABASE_URL is not set and initdb/pg_ctl are not on PATH"
    if _PG_STATE["url"]:
        postgres.wait_ready(_PG_STATE["url"])


def pytest_unconfigure(config: pytest.Config) -> None:
    _STACK.close()


def pytest_report_header(config: pytest.Config) -> str:
    if _PG_STATE["url"]:
        return f"postgresql: {db_engine.redact(_PG_STATE['url'])}"
    return f"postgresql: SKIPPING PostgreSQL tests: {_PG_STATE['why']}"


def postgres_url() -> str:
    url = _PG_STATE["url"]
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {_PG_STATE['why']}")
        pytest.skip(f"no PostgreSQL: {_PG_STATE['why']}")
    return url


# --- databases -----------------------------------------------------------------------------------

LEDGER_TABLES = [
    t.hold_allocations,
    t.holds,
    t.grants,
    t.ledger_lines,
    t.ledger_transactions,
    t.balances,
    t.accounts,
]


@pytest.fixture(scope="session")
def _pg_engine() -> Iterator[Engine]:
    engine = db_engine.make_engine(postgres_url(), pool_size=20)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db_engine.make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def truncate_all(engine: Engine) -> None:
    names = ", ".join(sorted(t.metadata.tables))
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> Iterator[str]:
    """A freshly migrated, empty database: a SQLite file, or the test PostgreSQL emptied.

    After the test, ``billfold verify`` runs on it and the test fails on any violation of the
    ledger's invariants, unless it is marked ``damages_ledger`` (tests of ``verify`` itself)."""
    if request.param == "sqlite":
        path = tmp_path / "billfold.db"
        shutil.copy(_sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        truncate_all(request.getfixturevalue("_pg_engine"))
        url = postgres_url()
    yield url
    if request.node.get_closest_marker("damages_ledger") is None:
        assert_ledger_invariants(url)


def assert_ledger_invariants(url: str) -> None:
    eng = db_engine.make_engine(url)
    try:
        problems = verify(eng)
    finally:
        eng.dispose()
    assert problems == [], "the ledger invariants do not hold after the test:\n" + "\n".join(
        problems
    )


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = db_engine.make_engine(db_url, pool_size=20)
    yield eng
    eng.dispose()


@pytest.fixture
def uow_factory(engine: Engine) -> Callable[[], SqlUnitOfWork]:
    return lambda: SqlUnitOfWork(engine)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: int = 1_800_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()

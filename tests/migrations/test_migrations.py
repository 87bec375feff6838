"""The migrations build exactly the tables the code declares, and go down and up again cleanly.

Every test gets an empty database of its own: a new SQLite file, or a new PostgreSQL database on the
test server (created through an AUTOCOMMIT connection and dropped afterwards), so that downgrading
never touches the database the other tests share.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from billfold.adapters.db import engine as db_engine
from billfold.adapters.db import migrate
from billfold.adapters.db import tables as t
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.db.verify import verify
from billfold.service import ledger as L
from tests.conftest import FakeClock, postgres_url

TRIGGERS = {
    "sqlite": {
        "ledger_lines_no_update",
        "ledger_lines_no_delete",
        "ledger_transactions_no_delete",
        "ledger_transactions_finish_once",
    },
    "postgresql": {
        "ledger_lines_balanced",
        "ledger_lines_append_only",
        "ledger_transactions_append_only",
    },
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with nothing in it at all."""
    if request.param == "sqlite":
        engine = db_engine.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    server = postgres_url()
    name = f"billfold_mig_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        db_engine.normalize_url(server), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = db_engine.make_engine(
        make_url(server).set(database=name).render_as_string(hide_password=False)
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def schema_diff(engine: Engine) -> list[object]:
    """What alembic's autogenerate would still change to reach the declared tables."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, t.metadata))


def check_constraints(engine: Engine) -> dict[str, set[str]]:
    """Per table, the names of its CHECK constraints (alembic's comparison does not look at them,
    and they carry invariant 3)."""
    inspector = sa.inspect(engine)
    return {
        table: {str(c["name"]) for c in inspector.get_check_constraints(table)}
        for table in t.metadata.tables
    }


def declared_check_constraints() -> dict[str, set[str]]:
    return {
        name: {str(c.name) for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        for name, table in t.metadata.tables.items()
    }


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def trigger_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        return set(conn.execute(sa.text(sql)).scalars())


def use_the_ledger(engine: Engine) -> None:
    ledger = L.Ledger(lambda: SqlUnitOfWork(engine), FakeClock())
    ledger.grant(L.Grant(key="g", account_id="user_1", unit="credits", amount=100))
    ledger.spend(L.Spend(key="s", account_id="user_1", unit="credits", amount=40))
    assert ledger.balances("user_1")["credits"].available == 60


def test_given_an_empty_database_when_upgraded_to_head_then_it_has_exactly_the_declared_tables(
    empty_engine: Engine,
) -> None:
    assert migrate.current_revision(empty_engine) is None

    migrate.upgrade(empty_engine)

    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    assert migrate.is_current(empty_engine)
    assert table_names(empty_engine) == set(t.metadata.tables) | {"alembic_version"}
    assert schema_diff(empty_engine) == []
    assert check_constraints(empty_engine) == declared_check_constraints()
    assert trigger_names(empty_engine) == TRIGGERS[empty_engine.dialect.name]
    use_the_ledger(empty_engine)
    assert verify(empty_engine) == []


def test_given_the_head_schema_when_downgraded_to_base_and_upgraded_again_then_it_round_trips(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine)

    migrate.downgrade(empty_engine, "base")

    assert migrate.current_revision(empty_engine) is None
    assert table_names(empty_engine) <= {"alembic_version"}
    assert trigger_names(empty_engine) == set()
    if empty_engine.dialect.name == "postgresql":
        with empty_engine.connect() as conn:
            functions = conn.execute(
                sa.text("SELECT proname FROM pg_proc WHERE proname LIKE 'billfold_%'")
            ).scalars()
            assert list(functions) == []

    migrate.upgrade(empty_engine)

    assert migrate.is_current(empty_engine)
    assert schema_diff(empty_engine) == []
    assert check_constraints(empty_engine) == declared_check_constraints()
    assert trigger_names(empty_engine) == TRIGGERS[empty_engine.dialect.name]
    use_the_ledger(empty_engine)
    assert verify(empty_engine) == []


def test_given_each_revision_when_downgraded_below_it_and_upgraded_again_then_it_round_trips(
    empty_engine: Engine,
) -> None:
    """Down one revision at a time, and back up to head after each step."""
    migrate.upgrade(empty_engine)
    revisions = list(ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions())

    for revision in revisions:  # head first
        below = revision.down_revision or "base"
        assert isinstance(below, str)
        migrate.downgrade(empty_engine, below)
        assert migrate.current_revision(empty_engine) == (None if below == "base" else below)
        migrate.upgrade(empty_engine)
        assert schema_diff(empty_engine) == [], f"after going below {revision.revision}"

    assert trigger_names(empty_engine) == TRIGGERS[empty_engine.dialect.name]
    use_the_ledger(empty_engine)


def test_given_the_head_schema_when_spends_update_grants_and_balances_then_the_updates_are_heap_only(
    empty_engine: Engine,
) -> None:
    """A spend changes its grants' ``remaining`` and its balance's ``available``: no index holds
    either, and the tables' fillfactor leaves room on the page, so PostgreSQL updates the rows in
    place of a new index entry in each index (HOT; migration 0011). Counted by PostgreSQL's own
    statistics of a database of the test's own."""
    if empty_engine.dialect.name != "postgresql":
        pytest.skip("heap-only updates are PostgreSQL's")
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT relname, reloptions FROM pg_class WHERE relname IN ('grants', 'balances')"
            )
        )
        options = {str(row[0]): row[1] for row in rows}
    assert options == {"grants": ["fillfactor=80"], "balances": ["fillfactor=90"]}
    # Connections that end when returned: a backend reports its statistics as it exits.
    writer = sa.create_engine(empty_engine.url, poolclass=NullPool)
    ledger = L.Ledger(lambda: SqlUnitOfWork(writer), FakeClock())
    accounts = [f"user_{n}" for n in range(20)]
    for account in accounts:
        ledger.grant(L.Grant(key=f"g-{account}", account_id=account, unit="credits", amount=9))
    with ThreadPoolExecutor(8) as pool:  # batches of several spends, and spends on their own
        list(
            pool.map(
                lambda a: ledger.spend(
                    L.Spend(key=f"s-{a}", account_id=a, unit="credits", amount=2)
                ),
                accounts,
            )
        )
    ledger.close()
    writer.dispose()
    counts: dict[str, tuple[int, int]] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with empty_engine.connect() as conn:
            counts = {
                name: (int(updated), int(hot))
                for name, updated, hot in conn.execute(
                    sa.text(
                        "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                        "WHERE relname IN ('grants', 'balances')"
                    )
                )
            }
        if counts.get("grants", (0, 0))[0] >= len(accounts):
            break
        time.sleep(0.1)
    assert counts["grants"][0] >= len(accounts), counts  # every spend updated its grant
    assert counts["grants"][1] == counts["grants"][0], counts
    assert counts["balances"][1] == counts["balances"][0] >= len(accounts), counts
    assert verify(empty_engine) == []

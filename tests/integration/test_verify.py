"""``billfold verify`` and the database's own guards.

A sound ledger passes; each kind of damage done by hand (around the triggers) is reported as a
readable line naming the invariant; the append-only triggers refuse rewrites; the CLI exits 0 or 1.

Damage to rows is done in the per-test database of ``db_url`` (a SQLite copy, or the test
PostgreSQL, emptied by the next test), with an engine that skips the after-test verify. Damage to
the schema (a dropped trigger or constraint) gets a PostgreSQL database of its own, cloned from a
migrated template and dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from billfold.adapters.db import engine as db_engine
from billfold.adapters.db import migrate
from billfold.adapters.db import tables as t
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.db.verify import verify
from billfold.entrypoints.cli import app
from billfold.service import ledger as L
from tests.conftest import FakeClock, postgres_url

# --- a database of one's own ---------------------------------------------------------------------


@pytest.fixture
def tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where this module's SQLite files go: on tmpfs when the machine has one (fsync is not
    under test, and would dominate the runtime)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("db")
        return
    path = Path(tempfile.mkdtemp(prefix="billfold-test-", dir=shm))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _admin(server_url: str) -> Engine:
    return sa.create_engine(
        db_engine.normalize_url(server_url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


def _with_database(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database that per-test databases are cloned from."""
    server = postgres_url()
    name = f"billfold_vtpl_{uuid.uuid4().hex[:10]}"
    admin = _admin(server)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = db_engine.make_engine(_with_database(server, name))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_url(
    request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path
) -> Iterator[str]:
    """A migrated, empty database that only this test uses (and may damage)."""
    if request.param == "sqlite":
        path = tmp_path / "own.db"
        shutil.copy(_sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    server = postgres_url()
    name = f"billfold_v_{uuid.uuid4().hex[:10]}"
    admin = _admin(server)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _with_database(server, name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def own_engine(own_url: str) -> Iterator[Engine]:
    """An engine on a database of this test's own, for damage to the schema."""
    engine = db_engine.make_engine(own_url)
    yield engine
    engine.dispose()


@pytest.fixture
def damaged(request: pytest.FixtureRequest, db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url`` without the after-test verify: for damage to rows only."""
    request.applymarker(pytest.mark.damages_ledger)
    engine = db_engine.make_engine(db_url)
    yield engine
    engine.dispose()


# --- a ledger with some history ------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    spend: L.SpendResult
    hold: L.HoldResult
    grant: L.GrantResult


def some_history(engine: Engine) -> History:
    """Grants, spends, a partly captured hold, an open hold, a swept expiry and a debt."""
    clock = FakeClock()
    ledger = L.Ledger(lambda: SqlUnitOfWork(engine), clock)

    def grant(key: str, account: str, amount: int, **kw: object) -> L.GrantResult:
        return ledger.grant(
            L.Grant(key=key, account_id=account, unit="credits", amount=amount, **kw)  # type: ignore[arg-type]
        )

    first = grant("g1", "user_1", 100, origin="order_1", kind="purchase")
    grant("g2", "user_1", 50, expires_at=clock() + 60)
    spend = ledger.spend(L.Spend(key="s1", account_id="user_1", unit="credits", amount=30))
    done = ledger.hold(
        L.Hold(key="h1", account_id="user_1", unit="credits", amount=20, ttl_seconds=600)
    )
    ledger.capture(L.Capture(key="c1", hold_id=done.hold_id, amount=15))
    hold = ledger.hold(
        L.Hold(key="h2", account_id="user_1", unit="credits", amount=10, ttl_seconds=600)
    )
    grant("g3", "user_2", 40, origin="order_2", kind="purchase")
    ledger.spend(L.Spend(key="s2", account_id="user_2", unit="credits", amount=35))
    ledger.clawback(
        L.Clawback(
            key="r1",
            account_id="user_2",
            unit="credits",
            amount=40,
            origin="order_2",
            policy="debt",
        )
    )
    clock.advance(120)
    ledger.sweep()
    return History(spend=spend, hold=hold, grant=first)


def damage(engine: Engine, *statements: str) -> None:
    """Run ``statements`` with the append-only and sum-to-zero triggers out of the way."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            for name in (
                conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
                .scalars()
                .all()
            ):
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
        for sql in statements:
            conn.exec_driver_sql(sql)


def damage_keeping_triggers(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for sql in statements:
            conn.exec_driver_sql(sql)


def only(problems: list[str], invariant: int) -> list[str]:
    return [p for p in problems if p.startswith(f"invariant {invariant}: ")]


# --- verify --------------------------------------------------------------------------------------


def test_given_a_ledger_with_grants_spends_holds_expiry_and_debt_then_verify_finds_nothing(
    engine: Engine,
) -> None:
    some_history(engine)

    assert verify(engine) == []


def test_given_an_empty_database_then_verify_finds_nothing(engine: Engine) -> None:
    assert verify(engine) == []


def test_given_a_balance_changed_by_hand_then_invariants_1_and_2_are_reported(
    damaged: Engine,
) -> None:
    some_history(damaged)
    damage_keeping_triggers(
        damaged,
        "UPDATE balances SET available = available + 7 WHERE account_id = 'user_1'",
    )

    problems = verify(damaged)

    assert (
        "invariant 1: balances of all accounts in credits, system accounts included, sum to 7, "
        "not 0"
    ) in problems
    assert any(
        p.startswith("invariant 2: user_1/credits: balance ") and "ledger lines sum to" in p
        for p in problems
    ), problems
    assert all(p.startswith(("invariant 1: ", "invariant 2: ")) for p in problems), problems


def test_given_a_ledger_line_deleted_by_hand_then_the_broken_transaction_is_reported(
    damaged: Engine,
) -> None:
    history = some_history(damaged)
    txn = history.spend.transaction_id
    damage(
        damaged,
        f"DELETE FROM ledger_lines WHERE id = (SELECT MIN(id) FROM ledger_lines "
        f"WHERE transaction_id = '{txn}')",
    )

    problems = verify(damaged)

    assert f"invariant 1: transaction {txn} does not balance: credits sums to 30" in problems
    assert f"invariant 5: transaction {txn} was written with 2 lines and now has 1" in problems


def test_given_an_unbalanced_transaction_inserted_by_hand_then_invariant_1_is_reported(
    damaged: Engine,
) -> None:
    some_history(damaged)
    damage(
        damaged,
        "INSERT INTO ledger_transactions (id, idempotency_key, request_hash, kind, account_id, "
        "unit, amount, line_count, result, created) VALUES ('txn_forged', 'forged', 'x', "
        "'grant', 'user_1', 'credits', 500, 1, '{}', 1)",
        "INSERT INTO ledger_lines (transaction_id, account_id, unit, amount) "
        "VALUES ('txn_forged', 'user_1', 'credits', 500)",
    )

    problems = verify(damaged)

    assert "invariant 1: transaction txn_forged does not balance: credits sums to 500" in problems
    assert "invariant 1: all lines in credits sum to 500, not 0" in problems
    assert any(p.startswith("invariant 2: user_1/credits: balance") for p in problems), problems


def test_given_a_balance_overdrawn_past_the_check_constraint_then_invariant_3_is_reported(
    own_engine: Engine,
) -> None:
    some_history(own_engine)
    with own_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE balances DROP CONSTRAINT ck_balances_not_overdrawn")
        else:
            conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
        conn.exec_driver_sql(
            "UPDATE balances SET available = -5, debt = 0 WHERE account_id = 'user_1'"
        )

    problems = verify(own_engine)

    assert "invariant 3: user_1/credits is overdrawn: balance -5 with debt 0" in problems


def test_given_a_grant_remainder_changed_by_hand_then_invariant_2_is_reported(
    damaged: Engine,
) -> None:
    history = some_history(damaged)
    damage_keeping_triggers(
        damaged,
        f"UPDATE grants SET remaining = remaining - 1 WHERE id = '{history.grant.grant_id}'",
    )

    problems = verify(damaged)

    assert len(only(problems, 2)) == 1, problems
    assert "live grants hold" in only(problems, 2)[0]


def test_given_an_open_hold_closed_by_hand_then_its_reservation_is_reported(
    damaged: Engine,
) -> None:
    history = some_history(damaged)
    damage_keeping_triggers(
        damaged, f"UPDATE holds SET status = 'released' WHERE id = '{history.hold.hold_id}'"
    )

    problems = only(verify(damaged), 2)

    assert any("recorded as held" in p and "active holds sum to 0" in p for p in problems)
    assert any("but its holds allocate 0" in p for p in problems), problems


def test_given_an_append_only_trigger_dropped_then_invariant_5_is_reported(
    own_engine: Engine,
) -> None:
    some_history(own_engine)
    if own_engine.dialect.name == "postgresql":
        dropped = "ledger_lines_append_only"
        damage_keeping_triggers(own_engine, f"DROP TRIGGER {dropped} ON ledger_lines")
    else:
        dropped = "ledger_lines_no_delete"
        damage_keeping_triggers(own_engine, f"DROP TRIGGER {dropped}")

    problems = verify(own_engine)

    assert problems == [f"invariant 5: the append-only trigger {dropped} is missing"]


# --- the triggers --------------------------------------------------------------------------------


REWRITES = [
    "UPDATE ledger_lines SET amount = amount + 1",
    "DELETE FROM ledger_lines",
    "DELETE FROM ledger_transactions WHERE kind = 'spend'",
    "UPDATE ledger_transactions SET kind = 'grant' WHERE kind = 'spend'",
    "UPDATE ledger_transactions SET result = NULL WHERE kind = 'spend'",
]


def test_given_a_written_ledger_when_rewriting_it_in_sql_then_the_database_refuses(
    engine: Engine,
) -> None:
    some_history(engine)
    before = snapshot(engine)

    for statement in REWRITES:
        with pytest.raises(sa.exc.IntegrityError, match="append") as info, engine.begin() as conn:
            conn.exec_driver_sql(statement)
        assert "append" in str(info.value.orig), statement

    assert snapshot(engine) == before


def snapshot(engine: Engine) -> list[list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return [
            [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key))]
            for table in (t.ledger_transactions, t.ledger_lines)
        ]


# --- the command line ----------------------------------------------------------------------------


def cli(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, list(args), env={"BILLFOLD_DATABASE_URL": url, "COLUMNS": "300", "NO_COLOR": "1"}
    )
    return result.exit_code, result.output


def test_given_a_sound_database_when_billfold_verify_runs_then_it_exits_0_saying_ok(
    db_url: str, engine: Engine
) -> None:
    some_history(engine)

    code, output = cli(db_url, "verify")

    assert code == 0, output
    assert "ok" in output
    assert "violation" not in output


def test_given_a_damaged_database_when_billfold_verify_runs_then_it_exits_1_listing_each(
    db_url: str, damaged: Engine
) -> None:
    history = some_history(damaged)
    damage(
        damaged,
        "UPDATE balances SET available = available + 7 WHERE account_id = 'user_2'",
        f"DELETE FROM ledger_lines WHERE transaction_id = '{history.spend.transaction_id}' "
        "AND account_id = 'sys:spent'",
    )
    expected = [p for p in verify(damaged) if p.startswith("invariant")]

    code, output = cli(db_url, "verify")

    assert code == 1, output
    assert f"{len(expected)} violation(s)" in output
    for line in expected:
        assert f"- {line}" in output
    assert "ok:" not in output


def test_given_an_empty_sqlite_file_when_billfold_db_upgrade_runs_then_the_schema_is_at_head(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fresh.db"
    path.touch()
    url = f"sqlite:///{path}"

    code, output = cli(url, "db", "upgrade")

    assert code == 0, output
    assert f"database at {migrate.head_revision()} (was empty)" in output
    engine = db_engine.make_engine(url)
    try:
        assert migrate.is_current(engine)
        assert set(t.metadata.tables) <= set(sa.inspect(engine).get_table_names())
        some_history(engine)
        assert verify(engine) == []
    finally:
        engine.dispose()
    assert cli(url, "db", "upgrade")[0] == 0  # again: nothing to do, still fine

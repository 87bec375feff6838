"""Random sequences of ledger operations against a simple in-memory model, on SQLite and PostgreSQL.

After every step the balances the ledger reports equal the model's, and ``billfold verify`` finds
nothing. Refused requests and replays must leave every table exactly as it was.

The model is deliberately naive: it keeps grants and holds in lists and recomputes everything from
them, with no stored balance, no sweep and no settling. Expiry is a matter of the clock alone: a
grant is gone at its ``expires_at``, a hold lets go at its own, whether or not a sweep has run.

Debt: a new grant repays it first. Value a hold gives back while the account owes is not used to
repay it; it stays on its grants, but the debt encumbers it (nothing can be spent while the balance,
grants minus holds minus debt, is below the amount).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import Engine

from billfold.adapters.db import engine as db_engine
from billfold.adapters.db import tables as t
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.db.verify import verify
from billfold.domain import errors
from billfold.service import ledger as L
from billfold.service.ledger import batch as B
from tests.conftest import FakeClock, truncate_all

ACCOUNTS = ("alice", "bob")
ORIGINS = ("order_1", "order_2")
UNIT = "credits"
START = 1_800_000_000

SETTINGS = settings(
    max_examples=int(os.environ.get("BILLFOLD_STATEFUL_EXAMPLES", "30")),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


# --- the model -----------------------------------------------------------------------------------


@dataclass
class ModelGrant:
    id: str  # the ledger's grant id, which is time-ordered: the model's "age"
    account: str
    remaining: int
    priority: int
    expires_at: int | None
    origin: str | None


@dataclass
class ModelHold:
    id: str
    account: str
    amount: int
    expires_at: int
    allocations: list[tuple[str, int]]
    status: str = "active"


@dataclass
class Model:
    now: int = START
    grants: dict[str, ModelGrant] = field(default_factory=dict)
    holds: dict[str, ModelHold] = field(default_factory=dict)
    debt: Counter[str] = field(default_factory=Counter)

    def is_live(self, grant: ModelGrant) -> bool:
        return grant.expires_at is None or grant.expires_at > self.now

    def is_active(self, hold: ModelHold) -> bool:
        return hold.status == "active" and hold.expires_at > self.now

    def free(self, grant: ModelGrant) -> int:
        reserved = sum(
            amount
            for hold in self.holds.values()
            if self.is_active(hold)
            for gid, amount in hold.allocations
            if gid == grant.id
        )
        return grant.remaining - reserved

    def drawable(self, account: str) -> list[ModelGrant]:
        """Live grants with something free, in draw order: priority, soonest expiry, age."""
        grants = [
            g
            for g in self.grants.values()
            if g.account == account and self.is_live(g) and self.free(g) > 0
        ]
        return sorted(
            grants,
            key=lambda g: (g.priority, g.expires_at is None, g.expires_at or 0, g.id),
        )

    def available(self, account: str) -> int:
        return sum(self.free(g) for g in self.drawable(account)) - self.debt[account]

    def held(self, account: str) -> int:
        return sum(
            h.amount for h in self.holds.values() if h.account == account and self.is_active(h)
        )

    def repay_debt_from_freed_value(self, account: str) -> None:
        """Freed value does not repay debt (only new grants do); kept as the one place to change
        should that rule change."""

    def advance(self, seconds: int) -> None:
        """Move the clock; holds lapse at their own expiry, in time order."""
        end = self.now + seconds
        lapsing = sorted(
            (h for h in self.holds.values() if h.status == "active" and h.expires_at <= end),
            key=lambda h: (h.expires_at, h.id),
        )
        for hold in lapsing:
            self.now = hold.expires_at
            hold.status = "lapsed"
            self.repay_debt_from_freed_value(hold.account)
        self.now = end

    def draw(self, account: str, amount: int) -> list[tuple[str, int]] | None:
        """The grants that pay ``amount``, or None when the account cannot afford it."""
        if amount > self.available(account):
            return None
        plan, left = [], amount
        for grant in self.drawable(account):
            take = min(self.free(grant), left)
            if take:
                plan.append((grant.id, take))
                left -= take
        return plan

    def clawback(
        self, account: str, amount: int, origin: str, policy: str
    ) -> tuple[list[tuple[str, int]], int]:
        """(takes, what is left): the origin's grants first; under ``debt`` then the others."""
        candidates = [g for g in self.drawable(account) if policy == "debt" or g.origin == origin]
        candidates.sort(key=lambda g: g.origin != origin)  # stable: draw order within each part
        takes, left = [], amount
        for grant in candidates:
            take = min(self.free(grant), left)
            if take:
                takes.append((grant.id, take))
                left -= take
        return takes, left


# --- helpers -------------------------------------------------------------------------------------


def snapshot(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
            for table in t.metadata.sorted_tables
        }


accounts = st.sampled_from(ACCOUNTS)
small = st.integers(1, 60)
picks = st.integers(0, 1_000)


class LedgerMachine(RuleBasedStateMachine):
    """One example = one fresh, empty database, a fake clock and an empty model."""

    fresh_database: Callable[[], tuple[Engine, Callable[[], None]]]

    def __init__(self) -> None:
        super().__init__()
        self.engine, self._dispose = type(self).fresh_database()
        self.clock = FakeClock(START)
        self.ledger = L.Ledger(
            lambda: SqlUnitOfWork(self.engine), self.clock, units=frozenset({UNIT})
        )
        self.model = Model()
        self.done: list[tuple[Callable[[Any], Any], Any, Any]] = []
        self._keys = itertools.count()
        # What the last step may have changed. A step that provably changed nothing (a refusal or a
        # replay: every table compared equal, clock and model untouched) needs no new check.
        self.wrote = True
        self.moved = True

    def teardown(self) -> None:
        self._dispose()

    def key(self, kind: str) -> str:
        return f"{kind}-{next(self._keys)}"

    def refused(self, error: type[Exception], action: Callable[[], object]) -> Any:
        self.wrote = self.moved = False
        before = snapshot(self.engine)
        with pytest.raises(error) as info:
            action()
        assert snapshot(self.engine) == before, "a refused request wrote to the database"
        return info.value

    def succeeded(self, operation: Callable[[Any], Any], command: Any) -> Any:
        self.wrote = self.moved = True
        result = operation(command)
        self.done.append((operation, command, result))
        return result

    # --- writes ---

    @rule(
        account=accounts,
        amount=small,
        priority=st.sampled_from([0, 0, 1]),
        expires_in=st.none() | st.integers(1, 150),
        origin=st.sampled_from((*ORIGINS, None)),
    )
    def grant(
        self, account: str, amount: int, priority: int, expires_in: int | None, origin: str | None
    ) -> None:
        m = self.model
        command = L.Grant(
            key=self.key("grant"),
            account_id=account,
            unit=UNIT,
            amount=amount,
            priority=priority,
            expires_at=None if expires_in is None else m.now + expires_in,
            kind="purchase",
            origin=origin,
        )
        result = self.succeeded(self.ledger.grant, command)
        repaid = min(m.debt[account], amount)
        m.debt[account] -= repaid
        m.grants[result.grant_id] = ModelGrant(
            id=result.grant_id,
            account=account,
            remaining=amount - repaid,
            priority=priority,
            expires_at=command.expires_at,
            origin=origin,
        )
        assert result.debt_repaid == repaid
        assert result.balance == m.available(account)

    @rule(account=accounts, amount=st.integers(1, 80))
    def spend(self, account: str, amount: int) -> None:
        m = self.model
        command = L.Spend(key=self.key("spend"), account_id=account, unit=UNIT, amount=amount)
        plan = m.draw(account, amount)
        if plan is None:
            exc = self.refused(errors.InsufficientBalance, lambda: self.ledger.spend(command))
            assert exc.available == max(m.available(account), 0)
            return
        result = self.succeeded(self.ledger.spend, command)
        assert result.draws == plan
        for gid, take in plan:
            m.grants[gid].remaining -= take
        assert result.balance == m.available(account)

    @rule(account=accounts, amount=small, ttl=st.integers(1, 120))
    def hold(self, account: str, amount: int, ttl: int) -> None:
        m = self.model
        command = L.Hold(
            key=self.key("hold"), account_id=account, unit=UNIT, amount=amount, ttl_seconds=ttl
        )
        plan = m.draw(account, amount)
        if plan is None:
            exc = self.refused(errors.InsufficientBalance, lambda: self.ledger.hold(command))
            assert exc.available == max(m.available(account), 0)
            return
        result = self.succeeded(self.ledger.hold, command)
        m.holds[result.hold_id] = ModelHold(
            id=result.hold_id,
            account=account,
            amount=amount,
            expires_at=m.now + ttl,
            allocations=plan,
        )
        assert (result.status, result.expires_at) == ("active", m.now + ttl)
        assert result.balance == m.available(account)

    def pick_hold(self, pick: int) -> ModelHold:
        ids = sorted(self.model.holds)
        return self.model.holds[ids[pick % len(ids)]]

    @precondition(lambda self: self.model.holds)
    @rule(pick=picks, amount=st.none() | small)
    def capture(self, pick: int, amount: int | None) -> None:
        m = self.model
        hold = self.pick_hold(pick)
        command = L.Capture(key=self.key("capture"), hold_id=hold.id, amount=amount)
        if not m.is_active(hold):
            self.refused(errors.HoldNotActive, lambda: self.ledger.capture(command))
            return
        captured = hold.amount if amount is None else amount
        if captured > hold.amount:
            self.refused(errors.ValidationError, lambda: self.ledger.capture(command))
            return
        result = self.succeeded(self.ledger.capture, command)
        left = captured
        for gid, reserved in hold.allocations:
            take = min(reserved, left)
            m.grants[gid].remaining -= take
            left -= take
        hold.status = "captured"
        m.repay_debt_from_freed_value(hold.account)
        assert (result.status, result.captured) == ("captured", captured)
        assert result.balance == m.available(hold.account)

    @precondition(lambda self: self.model.holds)
    @rule(pick=picks)
    def release(self, pick: int) -> None:
        m = self.model
        hold = self.pick_hold(pick)
        command = L.Release(key=self.key("release"), hold_id=hold.id)
        if not m.is_active(hold):
            self.refused(errors.HoldNotActive, lambda: self.ledger.release(command))
            return
        result = self.succeeded(self.ledger.release, command)
        hold.status = "released"
        m.repay_debt_from_freed_value(hold.account)
        assert (result.status, result.captured) == ("released", 0)
        assert result.balance == m.available(hold.account)

    @rule(
        account=accounts,
        amount=st.integers(1, 80),
        origin=st.sampled_from(ORIGINS),
        policy=st.sampled_from(["floor", "debt"]),
    )
    def clawback(self, account: str, amount: int, origin: str, policy: str) -> None:
        m = self.model
        command = L.Clawback(
            key=self.key("clawback"),
            account_id=account,
            unit=UNIT,
            amount=amount,
            origin=origin,
            policy=policy,  # type: ignore[arg-type]
        )
        takes, left = m.clawback(account, amount, origin, policy)
        result = self.succeeded(self.ledger.clawback, command)
        for gid, take in takes:
            m.grants[gid].remaining -= take
        debt = left if policy == "debt" else 0
        m.debt[account] += debt
        taken = sum(take for _, take in takes)
        assert (result.taken, result.debt, result.unrecovered) == (taken, debt, left - debt)
        assert result.balance == m.available(account)

    # --- a batch of concurrent requests (the write combiner's path) ---

    @rule(
        ops=st.lists(
            st.tuples(
                st.sampled_from(["spend", "hold", "capture", "release", "again", "conflict"]),
                accounts,
                st.integers(1, 80),
                picks,
                st.integers(1, 120),
            ),
            min_size=2,
            max_size=8,
        )
    )
    def batch(self, ops: list[tuple[str, str, int, int, int]]) -> None:
        """Requests that arrive together are decided in one transaction, in order, exactly as if
        made one after another: the same key twice, two spends racing for the last units, a hold
        captured and released together, a key reused for another request."""
        commands: list[B.BatchCommand] = []
        earlier = [c for _, c, _ in self.done if isinstance(c, L.Spend | L.Hold | L.Capture)]
        for kind, account, amount, pick, ttl in ops:
            if kind == "spend":
                commands.append(
                    L.Spend(key=self.key("spend"), account_id=account, unit=UNIT, amount=amount)
                )
            elif kind == "hold":
                commands.append(
                    L.Hold(
                        key=self.key("hold"),
                        account_id=account,
                        unit=UNIT,
                        amount=amount,
                        ttl_seconds=ttl,
                    )
                )
            elif kind in ("capture", "release") and self.model.holds:
                hold = self.pick_hold(pick)
                commands.append(
                    L.Capture(key=self.key("capture"), hold_id=hold.id, amount=None)
                    if kind == "capture"
                    else L.Release(key=self.key("release"), hold_id=hold.id)
                )
            elif kind == "again" and (commands or earlier):
                pool = commands or earlier
                commands.append(pool[pick % len(pool)])
            elif kind == "conflict" and (commands or earlier):
                pool = commands or earlier
                commands.append(
                    L.Spend(key=pool[pick % len(pool)].key, account_id=account, unit=UNIT, amount=7)
                )
        if not commands:
            return
        outcomes = B.run_batch(
            lambda: SqlUnitOfWork(self.engine), commands, self.clock(), units=frozenset({UNIT})
        )
        self.wrote = self.moved = True
        succeeded = {c.key: (c, r) for _, c, r in self.done}
        for command, outcome in zip(commands, outcomes, strict=True):
            result = self.expect(command, outcome, succeeded)
            if result is not None:
                succeeded[command.key] = (command, result)

    def expect(
        self,
        command: B.BatchCommand,
        outcome: B.Outcome,
        succeeded: dict[str, tuple[Any, Any]],
    ) -> Any:
        """Check one batched outcome against the model as it stands, then apply it. The result,
        when it is a new success."""
        m = self.model
        if command.key in succeeded:
            first_command, first_result = succeeded[command.key]
            if first_command == command:
                assert outcome == first_result, "a repeated key did not replay the first answer"
                assert not isinstance(outcome, errors.BillfoldError)
                assert outcome.replayed
            else:
                assert isinstance(outcome, errors.IdempotencyConflict), outcome
            return None
        if isinstance(command, L.Spend | L.Hold):
            plan = m.draw(command.account_id, command.amount)
            if plan is None:
                assert isinstance(outcome, errors.InsufficientBalance), outcome
                assert outcome.available == max(m.available(command.account_id), 0)
                return None
            assert not isinstance(outcome, errors.BillfoldError), outcome
            if isinstance(command, L.Spend):
                assert isinstance(outcome, L.SpendResult)
                assert outcome.draws == plan
                for gid, take in plan:
                    m.grants[gid].remaining -= take
            else:
                assert isinstance(outcome, L.HoldResult)
                m.holds[outcome.hold_id] = ModelHold(
                    id=outcome.hold_id,
                    account=command.account_id,
                    amount=command.amount,
                    expires_at=m.now + command.ttl_seconds,
                    allocations=plan,
                )
            assert outcome.balance == m.available(command.account_id)
            self.done.append((self._operation(command), command, outcome))
            return outcome
        hold = m.holds[command.hold_id]
        if not m.is_active(hold):
            assert isinstance(outcome, errors.HoldNotActive), outcome
            return None
        assert isinstance(outcome, L.HoldResult), outcome
        if isinstance(command, L.Capture):
            left = hold.amount
            for gid, reserved in hold.allocations:
                take = min(reserved, left)
                m.grants[gid].remaining -= take
                left -= take
            hold.status = "captured"
            assert (outcome.status, outcome.captured) == ("captured", hold.amount)
        else:
            hold.status = "released"
            assert (outcome.status, outcome.captured) == ("released", 0)
        assert outcome.balance == m.available(hold.account)
        self.done.append((self._operation(command), command, outcome))
        return outcome

    def _operation(self, command: B.BatchCommand) -> Callable[[Any], Any]:
        if isinstance(command, L.Spend):
            return self.ledger.spend
        if isinstance(command, L.Hold):
            return self.ledger.hold
        if isinstance(command, L.Capture):
            return self.ledger.capture
        return self.ledger.release

    # --- time ---

    @rule(seconds=st.integers(1, 90))
    def advance(self, seconds: int) -> None:
        self.wrote, self.moved = False, True
        self.clock.advance(seconds)
        self.model.advance(seconds)

    @rule()
    def sweep(self) -> None:
        swept = self.ledger.sweep()
        self.wrote = self.moved = swept != L.SweepResult(
            grants_expired=0, amount_expired=0, holds_expired=0
        )
        assert self.ledger.sweep() == L.SweepResult(
            grants_expired=0, amount_expired=0, holds_expired=0
        ), "a second sweep found work the first one left"

    # --- idempotency ---

    @precondition(lambda self: self.done)
    @rule(pick=picks)
    def replay(self, pick: int) -> None:
        operation, command, first = self.done[pick % len(self.done)]
        self.wrote = self.moved = False
        before = snapshot(self.engine)

        again = operation(command)

        assert again == first
        assert snapshot(self.engine) == before, "a replay wrote to the database"

    @precondition(lambda self: self.done)
    @rule(pick=picks, account=accounts)
    def reuse_key_for_another_request(self, pick: int, account: str) -> None:
        _, command, _ = self.done[pick % len(self.done)]
        other = L.Spend(key=command.key, account_id=account, unit=UNIT, amount=999_999)
        self.refused(errors.IdempotencyConflict, lambda: self.ledger.spend(other))

    # --- after every step ---

    @invariant()
    def balances_match_the_model(self) -> None:
        if not self.moved:
            return
        m = self.model
        for account in ACCOUNTS:
            view = self.ledger.balances(account).get(UNIT)
            seen = (0, 0, 0) if view is None else (view.available, view.held, view.debt)
            assert seen == (m.available(account), m.held(account), m.debt[account]), account

    @invariant()
    def verify_finds_nothing(self) -> None:
        if self.wrote:
            assert verify(self.engine) == []


# --- one fresh database per example --------------------------------------------------------------


@pytest.fixture
def scratch_dir(tmp_path: Path) -> Iterator[Path]:
    """Per-example SQLite files, on tmpfs when there is one (fsync is not under test)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="billfold-stateful-", dir=shm))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def sqlite_databases(template: Path, directory: Path) -> Callable[[], tuple[Engine, Any]]:
    counter = itertools.count()

    def fresh() -> tuple[Engine, Callable[[], None]]:
        path = directory / f"example-{next(counter)}.db"
        shutil.copy(template, path)
        engine = db_engine.make_engine(f"sqlite:///{path}")

        def dispose() -> None:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return engine, dispose

    return fresh


def postgres_databases(engine: Engine) -> Callable[[], tuple[Engine, Any]]:
    def fresh() -> tuple[Engine, Callable[[], None]]:
        truncate_all(engine)
        return engine, lambda: None

    return fresh


def test_given_random_operations_then_balances_match_the_model_and_verify_finds_nothing(
    db_url: str, request: pytest.FixtureRequest, scratch_dir: Path
) -> None:
    if db_engine.is_sqlite(db_url):
        fresh = sqlite_databases(request.getfixturevalue("_sqlite_template"), scratch_dir)
        machine = type("SqliteLedgerMachine", (LedgerMachine,), {"fresh_database": fresh})
        run_state_machine_as_test(machine, settings=SETTINGS)
        return
    engine = db_engine.make_engine(db_url, pool_size=2)
    try:
        fresh = postgres_databases(engine)
        machine = type("PostgresLedgerMachine", (LedgerMachine,), {"fresh_database": fresh})
        run_state_machine_as_test(machine, settings=SETTINGS)
    finally:
        truncate_all(engine)
        engine.dispose()

"""The ledger on a real database (SQLite and PostgreSQL): bad input, idempotency, draw order,
expiry, holds, clawbacks and the cost of a balance read.

Every test runs on both databases through the ``engine`` fixture, which runs ``billfold verify``
after the test and fails on any violation.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from billfold.adapters.db import tables as t
from billfold.domain import errors
from billfold.service import ledger as L
from billfold.service.ledger import movement

E = TypeVar("E", bound=BaseException)

UNITS = frozenset({"credits", "tokens"})
USER = "user_1"
HOUR = 3_600


def snapshot(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table, to prove that a refused request wrote nothing."""
    with engine.connect() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
            for table in t.metadata.sorted_tables
        }


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


class Books:
    """A ledger with a fake clock and short builders: ``books.grant(100, expires_in=HOUR)``."""

    def __init__(self, ledger: L.Ledger, clock: Any, engine: Engine) -> None:
        self.ledger = ledger
        self.clock = clock
        self.engine = engine
        self._keys = itertools.count(1)

    def key(self, prefix: str) -> str:
        return f"{prefix}-{next(self._keys)}"

    # Amounts, accounts and times are Any: the tests hand the ledger bad input on purpose.
    def grant(
        self,
        amount: Any,
        *,
        account: Any = USER,
        unit: str = "credits",
        priority: int = 0,
        expires_in: int | None = None,
        origin: str | None = None,
        key: str | None = None,
    ) -> L.GrantResult:
        return self.ledger.grant(
            L.Grant(
                key=key or self.key("grant"),
                account_id=account,
                unit=unit,
                amount=amount,
                priority=priority,
                expires_at=None if expires_in is None else self.clock() + expires_in,
                origin=origin,
                kind="purchase" if origin else "manual",
            )
        )

    def spend(
        self, amount: Any, *, account: Any = USER, unit: str = "credits", key: str | None = None
    ) -> L.SpendResult:
        return self.ledger.spend(
            L.Spend(key=key or self.key("spend"), account_id=account, unit=unit, amount=amount)
        )

    def hold(
        self, amount: Any, *, account: Any = USER, ttl: Any = HOUR, key: str | None = None
    ) -> L.HoldResult:
        return self.ledger.hold(
            L.Hold(
                key=key or self.key("hold"),
                account_id=account,
                unit="credits",
                amount=amount,
                ttl_seconds=ttl,
            )
        )

    def capture(self, hold_id: str, amount: Any = None) -> L.HoldResult:
        return self.ledger.capture(
            L.Capture(key=self.key("capture"), hold_id=hold_id, amount=amount)
        )

    def release(self, hold_id: str) -> L.HoldResult:
        return self.ledger.release(L.Release(key=self.key("release"), hold_id=hold_id))

    def clawback(
        self, amount: Any, *, origin: str, policy: Any = "floor", account: Any = USER
    ) -> L.ClawbackResult:
        return self.ledger.clawback(
            L.Clawback(
                key=self.key("clawback"),
                account_id=account,
                unit="credits",
                amount=amount,
                origin=origin,
                policy=policy,
            )
        )

    def balance(self, account: str = USER, unit: str = "credits") -> tuple[int, int, int]:
        """(available, held, debt) as ``Ledger.balances`` reports them."""
        view = self.ledger.balances(account).get(unit)
        return (0, 0, 0) if view is None else (view.available, view.held, view.debt)

    def refused(self, error: type[E], action: Callable[[], object]) -> pytest.ExceptionInfo[E]:
        """Run ``action``, expect ``error``, and check that not one row changed."""
        before = snapshot(self.engine)
        with pytest.raises(error) as info:
            action()
        assert snapshot(self.engine) == before, "a refused request wrote to the database"
        return info


@pytest.fixture
def tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where ``db_url`` puts this module's SQLite files: on tmpfs when the machine has one.

    Durability is not under test here, and an fsync on every commit would dominate the runtime.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("db")
        return
    path = Path(tempfile.mkdtemp(prefix="billfold-test-", dir=shm))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def books(uow_factory: Any, clock: Any, engine: Engine) -> Books:
    return Books(L.Ledger(uow_factory, clock, units=UNITS), clock, engine)


# --- bad input: a typed error, and nothing written -----------------------------------------------

BAD_AMOUNTS = [0, -1, -100, 1.5, "10", True, None, 10**16, 2**63]


def test_given_a_bad_amount_when_any_operation_asks_for_it_then_validation_error_and_no_write(
    books: Books,
) -> None:
    books.grant(100)
    hold = books.hold(10)
    for amount in BAD_AMOUNTS:
        actions: list[Callable[[], object]] = [
            partial(books.grant, amount),
            partial(books.spend, amount),
            partial(books.hold, amount),
            partial(books.clawback, amount, origin="order_1"),
        ]
        if amount is not None:  # a capture without an amount takes the whole hold
            actions.append(partial(books.capture, hold.hold_id, amount))
        for action in actions:
            info = books.refused(errors.ValidationError, action)
            assert info.value.details["param"] == "amount", amount

    assert books.balance() == (90, 10, 0)


def test_given_a_catalog_of_credits_when_an_undeclared_unit_is_used_then_unknown_unit(
    books: Books,
) -> None:
    books.grant(100)
    for action in (
        lambda: books.grant(5, unit="gold"),
        lambda: books.spend(5, unit="gold"),
        lambda: books.ledger.hold(
            L.Hold(key="h", account_id=USER, unit="gold", amount=5, ttl_seconds=60)
        ),
        lambda: books.ledger.clawback(
            L.Clawback(key="c", account_id=USER, unit="gold", amount=5, origin="o")
        ),
    ):
        info = books.refused(errors.UnknownUnit, action)
        assert info.value.details["param"] == "unit"
    books.refused(errors.ValidationError, lambda: books.grant(5, unit=""))
    books.refused(errors.ValidationError, lambda: books.grant(5, unit=None))  # type: ignore[arg-type]


def test_given_an_expiry_not_in_the_future_or_not_a_timestamp_when_granting_then_refused(
    books: Books,
) -> None:
    for expires_in in (0, -1, -HOUR):
        info = books.refused(errors.ValidationError, partial(books.grant, 5, expires_in=expires_in))
        assert info.value.details["param"] == "expires_at"
    for expires_at in (1.5e12, "1900000000", True):
        grant = L.Grant(
            key="g",
            account_id=USER,
            unit="credits",
            amount=5,
            expires_at=expires_at,  # type: ignore[arg-type]
        )
        books.refused(errors.ValidationError, partial(books.ledger.grant, grant))


@pytest.mark.parametrize("expires_at", [2**63, 2**64], ids=["2**63", "2**64"])
def test_given_an_absurdly_far_expiry_when_granting_then_validation_error(
    books: Books, expires_at: int
) -> None:
    books.refused(
        errors.ValidationError,
        lambda: books.ledger.grant(
            L.Grant(key="g", account_id=USER, unit="credits", amount=5, expires_at=expires_at)
        ),
    )


def test_given_a_bad_account_id_when_any_operation_names_it_then_validation_error(
    books: Books,
) -> None:
    for account in ("", "   ", "u" * 201, "sys:spent", "sys:user_1", "a\x00b", None):
        for action in (
            partial(books.grant, 5, account=account),
            partial(books.spend, 5, account=account),
            partial(books.hold, 5, account=account),
            partial(books.clawback, 5, origin="o", account=account),
        ):
            info = books.refused(errors.ValidationError, action)
            assert info.value.details["param"] == "account_id", account


def test_given_100_credits_when_spending_101_then_insufficient_balance_names_what_is_available(
    books: Books,
) -> None:
    books.grant(60)
    books.grant(40)

    info = books.refused(errors.InsufficientBalance, lambda: books.spend(101))

    assert (info.value.available, info.value.requested, info.value.unit) == (100, 101, "credits")
    assert books.balance() == (100, 0, 0)


def test_given_a_hold_when_spending_past_it_then_the_held_part_is_not_available(
    books: Books,
) -> None:
    books.grant(100)
    books.hold(70)

    info = books.refused(errors.InsufficientBalance, lambda: books.spend(31))
    assert info.value.available == 30
    info = books.refused(errors.InsufficientBalance, lambda: books.hold(31))
    assert info.value.available == 30


def test_given_an_account_never_seen_when_spending_then_insufficient_balance_of_zero(
    books: Books,
) -> None:
    info = books.refused(errors.InsufficientBalance, lambda: books.spend(1, account="stranger"))

    assert info.value.available == 0
    assert books.ledger.balances("stranger") == {}


def test_given_a_captured_hold_when_captured_again_or_released_then_hold_not_active(
    books: Books,
) -> None:
    books.grant(100)
    hold = books.hold(40)
    books.capture(hold.hold_id)

    info = books.refused(errors.HoldNotActive, lambda: books.capture(hold.hold_id))
    assert info.value.details["status"] == "captured"
    books.refused(errors.HoldNotActive, lambda: books.capture(hold.hold_id, 1))
    books.refused(errors.HoldNotActive, lambda: books.release(hold.hold_id))
    assert books.balance() == (60, 0, 0)


def test_given_a_released_hold_when_captured_then_hold_not_active(books: Books) -> None:
    books.grant(100)
    hold = books.hold(40)
    books.release(hold.hold_id)

    info = books.refused(errors.HoldNotActive, lambda: books.capture(hold.hold_id))

    assert info.value.details["status"] == "released"
    books.refused(errors.HoldNotActive, lambda: books.release(hold.hold_id))
    assert books.balance() == (100, 0, 0)


def test_given_a_hold_past_its_ttl_when_captured_or_released_then_hold_not_active(
    books: Books,
) -> None:
    books.grant(100)
    hold = books.hold(40, ttl=60)
    books.clock.advance(60)

    info = books.refused(errors.HoldNotActive, lambda: books.capture(hold.hold_id))

    assert info.value.details["status"] == "expired"
    books.refused(errors.HoldNotActive, lambda: books.release(hold.hold_id))
    assert books.balance() == (100, 0, 0)  # the lapsed hold already counts as released


def test_given_a_hold_when_capturing_more_than_it_reserves_then_validation_error(
    books: Books,
) -> None:
    books.grant(100)
    hold = books.hold(40)

    books.refused(errors.ValidationError, lambda: books.capture(hold.hold_id, 41))

    assert books.balance() == (60, 40, 0)


def test_given_no_such_hold_when_captured_then_hold_not_found(books: Books) -> None:
    books.refused(errors.HoldNotFound, lambda: books.capture("hold_missing"))


def test_given_a_bad_ttl_when_holding_then_validation_error(books: Books) -> None:
    books.grant(100)

    for ttl in (0, -1, L.MAX_HOLD_TTL + 1, 1.5, True, None):
        info = books.refused(errors.ValidationError, partial(books.hold, 10, ttl=ttl))
        assert info.value.details["param"] == "ttl_seconds", ttl


# --- idempotency ---------------------------------------------------------------------------------


def test_given_each_operation_when_repeated_with_its_key_then_the_first_result_and_nothing_new(
    books: Books,
) -> None:
    led = books.ledger
    grant = L.Grant(key="k-grant", account_id=USER, unit="credits", amount=100, origin="o1")
    spend = L.Spend(key="k-spend", account_id=USER, unit="credits", amount=10)
    hold_a = L.Hold(key="k-hold-a", account_id=USER, unit="credits", amount=20, ttl_seconds=60)
    hold_b = L.Hold(key="k-hold-b", account_id=USER, unit="credits", amount=20, ttl_seconds=60)
    first: list[tuple[Callable[[Any], Any], Any, Any]] = []
    ops: list[tuple[Callable[[Any], Any], Any]] = [
        (led.grant, grant),
        (led.spend, spend),
        (led.hold, hold_a),
        (led.hold, hold_b),
    ]
    for op, cmd in ops:
        first.append((op, cmd, op(cmd)))
    capture = L.Capture(key="k-capture", hold_id=first[2][2].hold_id, amount=5)
    release = L.Release(key="k-release", hold_id=first[3][2].hold_id)
    clawback = L.Clawback(key="k-claw", account_id=USER, unit="credits", amount=7, origin="o1")
    more: list[tuple[Callable[[Any], Any], Any]] = [
        (led.capture, capture),
        (led.release, release),
        (led.clawback, clawback),
    ]
    for op, cmd in more:
        first.append((op, cmd, op(cmd)))
    before = snapshot(books.engine)

    for op, cmd, result in first:
        assert op(cmd) == result, f"a repeated {type(cmd).__name__} returned something else"

    assert snapshot(books.engine) == before
    assert books.balance() == (78, 0, 0)


def test_given_a_spend_when_repeated_after_the_balance_changed_then_the_first_result_comes_back(
    books: Books,
) -> None:
    books.grant(100)
    first = books.spend(30, key="order-42")
    books.spend(50)

    again = books.spend(30, key="order-42")

    assert again == first
    assert again.balance == 70
    assert books.balance() == (20, 0, 0)


def test_given_a_used_key_when_a_different_request_uses_it_then_idempotency_conflict(
    books: Books,
) -> None:
    books.grant(100, key="k1")
    books.spend(10, key="k2")

    books.refused(errors.IdempotencyConflict, lambda: books.grant(101, key="k1"))
    books.refused(errors.IdempotencyConflict, lambda: books.spend(11, key="k2"))
    books.refused(errors.IdempotencyConflict, lambda: books.spend(10, account="user_2", key="k2"))
    books.refused(errors.IdempotencyConflict, lambda: books.spend(100, key="k1"))  # other kind
    books.refused(errors.IdempotencyConflict, lambda: books.hold(10, key="k2"))
    assert books.balance() == (90, 0, 0)


def test_given_a_grant_with_an_expiry_when_repeated_after_that_expiry_then_the_first_result(
    books: Books,
) -> None:
    """A webhook retried late carries the same grant: it must get the first result back, not a
    complaint that its expiry is now in the past."""
    first = books.grant(100, expires_in=HOUR, key="invoice:in_1")
    books.clock.advance(2 * HOUR)
    before = snapshot(books.engine)

    again = books.ledger.grant(
        L.Grant(
            key="invoice:in_1",
            account_id=USER,
            unit="credits",
            amount=100,
            expires_at=first.expires_at,
            kind="manual",
        )
    )

    assert again == first
    assert snapshot(books.engine) == before


def test_given_a_refused_spend_when_retried_after_a_top_up_then_it_succeeds_once(
    books: Books,
) -> None:
    books.refused(errors.InsufficientBalance, lambda: books.spend(10, key="job-7"))
    books.grant(10)

    first = books.spend(10, key="job-7")

    assert books.spend(10, key="job-7") == first
    assert books.balance() == (0, 0, 0)


def test_given_a_client_key_shaped_like_an_internal_key_then_the_hold_still_expires(
    books: Books,
) -> None:
    """Internal transactions (expiry of grants and holds) have keys too. A client that picks the
    same key must not stop the ledger from writing its own expiry."""
    books.grant(100)
    hold = books.hold(50, ttl=60)
    granted, refused_params = 0, set()
    for key in (f"hold-expire:{hold.hold_id}", f"sys:hold-expire:{hold.hold_id}"):
        try:  # the ledger may refuse reserved keys; it must not let them block its own writes
            books.grant(1, key=key)
            granted += 1
        except errors.ValidationError as exc:
            refused_params.add(exc.details["param"])
    assert refused_params <= {"idempotency_key"}
    books.clock.advance(60)

    books.ledger.sweep()

    assert books.balance() == (100 + granted, 0, 0)
    assert books.spend(100 + granted).balance == 0


# --- draw order ----------------------------------------------------------------------------------


def test_given_grants_of_two_priorities_when_spending_then_the_lower_priority_is_drawn_first(
    books: Books,
) -> None:
    late = books.grant(100, priority=10)
    early = books.grant(100, priority=0)

    spent = books.spend(150)

    assert spent.draws == [(early.grant_id, 100), (late.grant_id, 50)]


def test_given_equal_priority_when_spending_then_soonest_expiry_first_and_no_expiry_last(
    books: Books,
) -> None:
    forever = books.grant(10)
    in_a_week = books.grant(10, expires_in=7 * 24 * HOUR)
    tomorrow = books.grant(10, expires_in=24 * HOUR)

    spent = books.spend(25)

    assert spent.draws == [(tomorrow.grant_id, 10), (in_a_week.grant_id, 10), (forever.grant_id, 5)]


def test_given_equal_priority_and_expiry_when_spending_then_the_oldest_is_drawn_first(
    books: Books,
) -> None:
    made = []
    for _ in range(4):
        made.append(books.grant(10, expires_in=HOUR))
        time.sleep(0.002)  # ids are time-ordered by the millisecond; see test_ledger_rules

    spent = books.spend(35)

    assert spent.draws == [(g.grant_id, 10) for g in made[:3]] + [(made[3].grant_id, 5)]


def test_given_a_bonus_of_higher_priority_that_expires_when_spending_then_priority_wins(
    books: Books,
) -> None:
    """The catalog's professional pack: 3500 credits, and 500 bonus credits at priority 10 that
    expire in 90 days. The purchase is spent first; the bonus is last although it expires."""
    purchase = books.grant(3_500, origin="order_1")
    bonus = books.grant(500, priority=10, expires_in=90 * 24 * HOUR, origin="order_1")

    spent = books.spend(3_600)

    assert spent.draws == [(purchase.grant_id, 3_500), (bonus.grant_id, 100)]


# --- expiry --------------------------------------------------------------------------------------


def test_given_an_expired_grant_before_any_sweep_then_it_is_neither_shown_nor_spendable(
    books: Books,
) -> None:
    books.grant(100, expires_in=HOUR)
    books.grant(50)
    books.clock.advance(HOUR)

    assert books.balance() == (50, 0, 0)
    info = books.refused(errors.InsufficientBalance, lambda: books.spend(60))
    assert info.value.available == 50


def test_given_an_expired_grant_when_swept_then_an_expire_transaction_is_written_once(
    books: Books,
) -> None:
    grant = books.grant(100, expires_in=HOUR)
    books.grant(50)
    books.spend(30)  # from the grant that expires
    books.clock.advance(HOUR + 1)

    swept = books.ledger.sweep()

    assert swept == L.SweepResult(grants_expired=1, amount_expired=70, holds_expired=0)
    assert rows(
        books.engine,
        "SELECT l.account_id, l.amount, l.grant_id FROM ledger_lines l "
        "JOIN ledger_transactions x ON x.id = l.transaction_id WHERE x.kind = 'expire' "
        "ORDER BY l.amount",
    ) == [(USER, -70, grant.grant_id), ("sys:expired", 70, grant.grant_id)]
    assert books.balance() == (50, 0, 0)
    assert books.ledger.sweep() == L.SweepResult(
        grants_expired=0, amount_expired=0, holds_expired=0
    )


def test_given_an_unswept_expired_grant_when_granting_then_the_result_shows_the_real_balance(
    books: Books,
) -> None:
    books.grant(100, expires_in=HOUR)
    books.clock.advance(HOUR)

    result = books.grant(7)

    assert books.balance() == (7, 0, 0)
    assert result.balance == 7


def test_given_a_hold_against_a_grant_that_then_expires_when_captured_then_the_held_part_is_spent(
    books: Books,
) -> None:
    books.grant(100, expires_in=HOUR)
    hold = books.hold(60, ttl=3 * HOUR)
    books.clock.advance(2 * HOUR)
    assert books.balance() == (0, 60, 0)

    captured = books.capture(hold.hold_id, 40)

    assert captured.captured == 40
    assert books.balance() == (0, 0, 0)  # the 20 given back expired at once
    assert rows(
        books.engine,
        "SELECT account_id, SUM(amount) FROM ledger_lines WHERE account_id LIKE 'sys:%' "
        "GROUP BY account_id ORDER BY account_id",
    ) == [("sys:adjustments", -100), ("sys:expired", 60), ("sys:held", 0), ("sys:spent", 40)]
    assert books.ledger.sweep().amount_expired == 0


def test_given_a_hold_against_a_grant_that_then_expires_when_released_then_it_all_expires(
    books: Books,
) -> None:
    books.grant(100, expires_in=HOUR)
    books.grant(5)
    hold = books.hold(100, ttl=3 * HOUR)
    books.clock.advance(2 * HOUR)

    released = books.release(hold.hold_id)

    assert released.status == "released"
    assert books.balance() == (5, 0, 0)
    assert books.spend(5).balance == 0
    assert books.ledger.sweep().amount_expired == 0


def test_given_a_hold_past_its_ttl_before_any_sweep_then_it_counts_as_released(
    books: Books,
) -> None:
    books.grant(100)
    books.hold(30, ttl=60)
    books.clock.advance(61)

    assert books.balance() == (100, 0, 0)
    assert books.ledger.sweep() == L.SweepResult(
        grants_expired=0, amount_expired=0, holds_expired=1
    )
    assert rows(books.engine, "SELECT status FROM holds") == [("expired",)]
    assert books.spend(100).balance == 0


def test_given_a_lapsed_hold_on_an_expired_grant_then_its_value_expires_with_the_grant(
    books: Books,
) -> None:
    books.grant(100, expires_in=HOUR)
    books.grant(10)
    books.hold(80, ttl=2 * HOUR)
    books.clock.advance(3 * HOUR)

    assert books.balance() == (10, 0, 0)
    swept = books.ledger.sweep()
    assert (swept.holds_expired, swept.amount_expired) == (1, 100)
    assert books.balance() == (10, 0, 0)


def test_given_a_lapsed_hold_not_yet_swept_when_another_hold_is_captured_then_the_real_balance(
    books: Books,
) -> None:
    books.grant(100)
    books.hold(30, ttl=10)
    other = books.hold(20, ttl=HOUR)
    books.clock.advance(11)

    captured = books.capture(other.hold_id)

    assert books.balance() == (80, 0, 0)
    assert captured.balance == 80


def test_given_an_expired_grant_not_yet_swept_when_a_hold_is_released_then_the_real_balance(
    books: Books,
) -> None:
    books.grant(100, expires_in=HOUR)
    books.grant(10)
    hold = books.hold(10, ttl=2 * HOUR)  # from the grant that expires first
    books.clock.advance(HOUR)

    released = books.release(hold.hold_id)

    assert books.balance() == (10, 0, 0)
    assert released.balance == 10


# --- clawback ------------------------------------------------------------------------------------


def test_given_floor_policy_when_clawing_back_more_than_is_left_then_only_the_rest_is_taken(
    books: Books,
) -> None:
    books.grant(100, origin="order_1")
    books.grant(100, origin="order_2")
    books.spend(70)  # 70 of order_1's credits

    result = books.clawback(100, origin="order_1", policy="floor")

    assert (result.taken, result.debt, result.unrecovered) == (30, 0, 70)
    assert result.balance == 100
    assert books.balance() == (100, 0, 0)


def test_given_floor_policy_when_nothing_of_the_origin_is_left_then_it_is_all_unrecovered(
    books: Books,
) -> None:
    books.grant(100, origin="order_1")
    books.spend(100)

    result = books.clawback(40, origin="order_1", policy="floor")

    assert (result.requested, result.taken, result.debt, result.unrecovered) == (40, 0, 0, 40)
    assert books.balance() == (0, 0, 0)


def test_given_debt_policy_when_clawing_back_more_than_is_left_then_the_balance_goes_negative(
    books: Books,
) -> None:
    books.grant(100, origin="order_1")
    books.spend(80)

    result = books.clawback(100, origin="order_1", policy="debt")

    assert (result.taken, result.debt, result.unrecovered, result.balance) == (20, 80, 0, -80)
    assert books.balance() == (-80, 0, 80)
    assert books.refused(errors.InsufficientBalance, lambda: books.spend(1)).value.available == 0


def test_given_debt_when_the_next_grants_arrive_then_they_repay_it_first(books: Books) -> None:
    books.grant(100, origin="order_1")
    books.spend(100)
    books.clawback(100, origin="order_1", policy="debt")

    first = books.grant(60, origin="order_2")
    assert (first.debt_repaid, first.balance) == (60, -40)
    assert books.balance() == (-40, 0, 40)
    second = books.grant(100, origin="order_3")

    assert (second.debt_repaid, second.balance) == (40, 60)
    assert books.balance() == (60, 0, 0)
    assert books.spend(60).balance == 0


def test_given_debt_policy_then_the_origin_is_taken_first_then_other_grants_then_debt(
    books: Books,
) -> None:
    books.grant(100, origin="order_1")
    books.grant(100, origin="order_2")
    books.spend(150)  # all of order_1, 50 of order_2

    result = books.clawback(100, origin="order_1", policy="debt")

    assert (result.taken, result.debt) == (50, 50)
    assert books.balance() == (-50, 0, 50)


def test_given_debt_while_a_hold_is_open_when_the_hold_is_released_then_no_spend_overdraws(
    books: Books,
) -> None:
    """Invariant 3: only a clawback may take a balance below zero, never a spend."""
    books.grant(100, origin="order_1")
    hold = books.hold(60)
    books.clawback(100, origin="order_1", policy="debt")  # takes the free 40, owes 60
    books.release(hold.hold_id)
    available = books.balance()[0]

    info = books.refused(errors.InsufficientBalance, lambda: books.spend(60))

    assert available == 0
    assert info.value.available == 0


def test_given_an_account_with_no_grants_of_the_origin_when_clawing_back_under_debt_then_all_debt(
    books: Books,
) -> None:
    result = books.clawback(25, origin="order_9", policy="debt", account="user_9")

    assert (result.taken, result.debt, result.balance) == (0, 25, -25)
    assert books.balance("user_9") == (-25, 0, 25)


def test_given_debt_recorded_while_a_hold_was_open_when_the_hold_lapses_then_reads_agree_with_sweep(
    books: Books,
) -> None:
    """A read already counts what the sweep has not written: sweeping changes no reported figure."""
    books.grant(100, origin="order_1")
    books.hold(60, ttl=10)
    books.clawback(100, origin="order_1", policy="debt")  # takes the free 40, owes 60
    books.clock.advance(11)
    before_sweep = books.balance()

    books.ledger.sweep()

    assert books.balance() == before_sweep


def test_given_debt_and_a_lapsing_hold_then_what_is_owed_does_not_depend_on_when_it_is_settled(
    books: Books,
) -> None:
    """Two customers with the same history. Each later gets a clawback that finds nothing (a
    write that settles the account): one while its grant is live, one after it has expired. When
    that no-op happens must not change what the customer ends up owing."""
    for account in ("early", "late"):
        books.grant(100, account=account, origin="order_1", expires_in=20)
        books.hold(60, account=account, ttl=10)
        books.clawback(100, account=account, origin="order_1", policy="debt")  # owes 60
    books.clock.advance(11)  # the holds have lapsed; the grants are still live
    books.clawback(1, account="early", origin="order_9")
    books.clock.advance(10)  # the grants have expired
    books.clawback(1, account="late", origin="order_9")

    books.ledger.sweep()

    assert books.balance("early") == books.balance("late")


# --- a balance read costs the same whatever the size of the ledger ----------------------------


def statements_of(engine: Engine, action: Callable[[], object]) -> list[str]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def history(books: Books, uow_factory: Any, account: str, transactions: int) -> None:
    """``transactions`` ledger transactions on ``account`` (written in one unit of work, to keep
    the test fast), ending with an unswept expired grant and a lapsed hold, so that the read
    takes every path it has. Each spend drains the grant before it: what grows is the history,
    not the number of live grants."""
    now = books.clock()
    with uow_factory() as uow:
        for i in range((transactions - 4) // 2):
            expires_at = None if i % 2 else now + 10 * HOUR
            movement.grant(
                uow.ledger,
                L.Grant(
                    key=f"{account}-g{i}",
                    account_id=account,
                    unit="credits",
                    amount=5,
                    expires_at=expires_at,
                ),
                now,
            )
            movement.spend(
                uow.ledger,
                L.Spend(key=f"{account}-s{i}", account_id=account, unit="credits", amount=5),
                now,
            )
        uow.commit()
    books.grant(50, account=account, expires_in=HOUR)
    books.grant(50, account=account)
    books.hold(40, account=account, ttl=HOUR)
    books.spend(1, account=account)
    books.clock.advance(HOUR)
    books.clock.now = now  # the same time for the next history


@pytest.fixture
def read_cost(books: Books) -> Callable[[str], list[str]]:
    def cost(account: str) -> list[str]:
        return statements_of(books.engine, lambda: books.ledger.balances(account))

    return cost


def test_given_10_or_500_transactions_when_reading_a_balance_then_the_same_few_statements(
    books: Books, uow_factory: Any, read_cost: Callable[[str], list[str]]
) -> None:
    history(books, uow_factory, "small", 10)
    history(books, uow_factory, "large", 500)
    books.clock.advance(HOUR)
    assert (
        rows(books.engine, "SELECT COUNT(*) FROM ledger_transactions WHERE account_id = 'large'")[
            0
        ][0]
        >= 500
    )

    small, large = read_cost("small"), read_cost("large")

    assert len(small) == len(large) <= 6
    assert not [s for s in large if "ledger_lines" in s], "a balance read must not sum the ledger"
    assert books.balance("large")[1] == 0  # the lapsed hold is released in the read

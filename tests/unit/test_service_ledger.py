"""The ledger's use cases (``service/ledger``) on the memory database: draw order, idempotency,
holds, expiry and debt, each checked by the audit afterwards."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields

import pytest

from billfold.adapters.memory import MemoryDatabase
from billfold.domain import errors
from billfold.domain.ledger import BalanceView
from billfold.service import ledger as L
from billfold.service.ledger import idempotency
from tests.support.memory import HOUR, ManualClock

USER = "user_1"


class Books:
    """A ledger over a memory database, with a clock the test moves."""

    def __init__(self) -> None:
        self.db = MemoryDatabase()
        self.clock = ManualClock()
        self.ledger = L.Ledger(self.db.uow, self.clock, units=frozenset({"credits", "tokens"}))

    def grant(
        self,
        key: str,
        amount: int,
        *,
        priority: int = 0,
        expires_at: int | None = None,
        origin: str | None = None,
    ) -> L.GrantResult:
        return self.ledger.grant(
            L.Grant(
                key=key,
                account_id=USER,
                unit="credits",
                amount=amount,
                priority=priority,
                expires_at=expires_at,
                origin=origin,
            )
        )

    def spend(self, key: str, amount: int) -> L.SpendResult:
        return self.ledger.spend(L.Spend(key=key, account_id=USER, unit="credits", amount=amount))

    def hold(self, key: str, amount: int, ttl: int = 600) -> L.HoldResult:
        return self.ledger.hold(
            L.Hold(key=key, account_id=USER, unit="credits", amount=amount, ttl_seconds=ttl)
        )

    def view(self) -> BalanceView:
        return self.ledger.balances(USER)["credits"]

    def transactions(self) -> int:
        with self.db.uow() as uow:
            return len(uow.ledger.list_transactions(USER, limit=1000, starting_after=None))


@pytest.fixture
def books() -> Iterator[Books]:
    opened = Books()
    yield opened
    assert opened.db.verify() == []


def test_given_grants_of_two_priorities_then_the_lower_priority_is_drawn_first(
    books: Books,
) -> None:
    later = books.grant("g1", 100, priority=5)
    first = books.grant("g2", 100, priority=1)
    assert books.spend("s1", 150).draws == [(first.grant_id, 100), (later.grant_id, 50)]


def test_given_equal_priority_then_soonest_expiry_first_no_expiry_last_then_oldest(
    books: Books,
) -> None:
    forever = books.grant("g1", 10)
    late = books.grant("g2", 10, expires_at=books.clock.now + 2 * HOUR)
    soon = books.grant("g3", 10, expires_at=books.clock.now + HOUR)
    forever_too = books.grant("g4", 10)
    assert books.spend("s1", 40).draws == [
        (soon.grant_id, 10),
        (late.grant_id, 10),
        (forever.grant_id, 10),
        (forever_too.grant_id, 10),
    ]


def test_given_100_credits_when_spending_101_then_insufficient_balance_and_nothing_written(
    books: Books,
) -> None:
    books.grant("g1", 100)
    with pytest.raises(errors.InsufficientBalance) as refused:
        books.spend("s1", 101)
    assert (refused.value.requested, refused.value.available) == (101, 100)
    assert books.transactions() == 1
    assert books.spend("s1", 100).balance == 0  # the refused key was never used


def test_given_a_repeated_key_then_the_first_result_and_a_different_request_conflicts(
    books: Books,
) -> None:
    books.grant("g1", 100)
    first = books.spend("s1", 30)
    again = books.spend("s1", 30)
    assert (again, again.replayed, first.replayed) == (first, True, False)
    assert again.draws == first.draws  # tuples, read back from JSON
    with pytest.raises(errors.IdempotencyConflict):
        books.spend("s1", 31)
    assert books.view().available == 70


def test_given_a_hold_past_its_ttl_then_it_counts_as_released_before_the_sweep_writes_it(
    books: Books,
) -> None:
    books.grant("g1", 100)
    hold = books.hold("h1", 40, ttl=60)
    assert books.view() == BalanceView(unit="credits", available=60, held=40, debt=0)
    books.clock.advance(61)
    assert books.view() == BalanceView(unit="credits", available=100, held=0, debt=0)
    with pytest.raises(errors.HoldNotActive):
        books.ledger.capture(L.Capture(key="c1", hold_id=hold.hold_id))
    assert books.ledger.sweep() == L.SweepResult(
        grants_expired=0, amount_expired=0, holds_expired=1
    )
    assert books.ledger.sweep() == L.SweepResult(
        grants_expired=0, amount_expired=0, holds_expired=0
    )
    with books.db.uow() as uow:
        swept = uow.ledger.get_hold(hold.hold_id)
    assert swept is not None
    assert swept.status == "expired"


def test_given_a_partial_capture_then_the_rest_returns_to_the_grants(books: Books) -> None:
    books.grant("g1", 100)
    hold = books.hold("h1", 40)
    with pytest.raises(errors.ValidationError):
        books.ledger.capture(L.Capture(key="c0", hold_id=hold.hold_id, amount=41))
    captured = books.ledger.capture(L.Capture(key="c1", hold_id=hold.hold_id, amount=15))
    assert (captured.status, captured.captured, captured.balance) == ("captured", 15, 85)
    with pytest.raises(errors.HoldNotActive):
        books.ledger.release(L.Release(key="r1", hold_id=hold.hold_id))
    with pytest.raises(errors.HoldNotFound):
        books.ledger.release(L.Release(key="r2", hold_id="hold_missing"))


def test_given_an_expired_grant_then_it_is_not_spendable_and_the_sweep_expires_it_once(
    books: Books,
) -> None:
    books.grant("g1", 100, expires_at=books.clock.now + HOUR)
    books.grant("g2", 10)
    books.clock.advance(HOUR)
    assert books.view().available == 10
    with pytest.raises(errors.InsufficientBalance):
        books.spend("s1", 11)
    assert books.ledger.sweep() == L.SweepResult(
        grants_expired=1, amount_expired=100, holds_expired=0
    )
    assert books.ledger.sweep() == L.SweepResult(
        grants_expired=0, amount_expired=0, holds_expired=0
    )
    assert books.view().available == 10


def test_given_debt_then_the_next_grant_repays_it_first(books: Books) -> None:
    books.grant("g1", 100, origin="ord_1")
    books.spend("s1", 80)
    clawed = books.ledger.clawback(
        L.Clawback(
            key="c1", account_id=USER, unit="credits", amount=50, origin="ord_1", policy="debt"
        )
    )
    assert (clawed.taken, clawed.debt, clawed.balance) == (20, 30, -30)
    repaid = books.grant("g2", 100)
    assert (repaid.debt_repaid, repaid.balance) == (30, 70)
    assert books.view() == BalanceView(unit="credits", available=70, held=0, debt=0)


def test_given_floor_policy_then_a_clawback_takes_only_what_its_origin_has_left(
    books: Books,
) -> None:
    books.grant("g1", 100, origin="ord_1")
    books.grant("g2", 100, origin="ord_2")
    books.spend("s1", 80)
    clawed = books.ledger.clawback(
        L.Clawback(key="c1", account_id=USER, unit="credits", amount=50, origin="ord_1")
    )
    assert (clawed.taken, clawed.unrecovered, clawed.balance) == (20, 30, 100)


def test_given_many_concurrent_spends_then_the_balance_never_goes_below_zero(
    books: Books,
) -> None:
    books.grant("g1", 100)

    def spend(n: int) -> bool:
        try:
            books.spend(f"s{n}", 7)
        except errors.InsufficientBalance:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        done = list(pool.map(spend, range(30)))
    assert done.count(True) == 100 // 7
    assert books.view().available == 100 % 7


def test_given_an_unknown_unit_then_refused_before_anything_is_written(books: Books) -> None:
    with pytest.raises(errors.UnknownUnit):
        books.ledger.grant(L.Grant(key="g1", account_id=USER, unit="gold", amount=1))
    assert books.ledger.balances(USER) == {}


def test_a_request_hash_is_the_sha256_of_its_canonical_json_as_stored_hashes_were_made() -> None:
    """Every stored key carries its request's hash: the formula does not move between releases
    (a retry after an upgrade would otherwise be refused as a different request)."""
    cmd = L.Spend(key="k", account_id="acct_1", unit="credits", amount=3, reason='é \\ "x"')
    data: dict[str, object] = {f.name: getattr(cmd, f.name) for f in fields(cmd) if f.name != "key"}
    data["__command__"] = "Spend"
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    assert idempotency.request_hash(cmd) == hashlib.sha256(canonical.encode()).hexdigest()
    assert (
        idempotency.request_hash(cmd)
        == "985c522f9d5074c3872738c9603b9714d540f5518e4f283f38f81c4196719808"
    )  # made by the formula before its encoder was kept

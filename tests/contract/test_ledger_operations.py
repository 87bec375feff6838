"""The ledger's use cases over each backend: the same operations give the same books.

The stores are tested one method at a time elsewhere; here the service's own ``Ledger`` drives
them as it does in production, and every backend must end with the same balances, grants and
history, and pass the audit.
"""

from __future__ import annotations

import pytest

from billfold.domain import errors
from billfold.domain.ledger import BalanceView
from billfold.service import ledger as L
from tests.contract.backends import T0, Backend

HOUR = 3_600


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def test_given_a_day_of_grants_spends_holds_and_expiry_then_every_backend_keeps_the_same_books(
    backend: Backend,
) -> None:
    clock = Clock()
    ledger = L.Ledger(backend.uow, clock, units=frozenset({"credits", "tokens"}))
    ledger.grant(
        L.Grant(key="t1", account_id="user_1", unit="tokens", amount=7, expires_at=T0 + HOUR)
    )
    expiring = ledger.grant(
        L.Grant(key="g1", account_id="user_1", unit="credits", amount=100, expires_at=T0 + HOUR)
    )
    ledger.grant(L.Grant(key="g2", account_id="user_1", unit="credits", amount=50, origin="ord_1"))
    spent = ledger.spend(L.Spend(key="s1", account_id="user_1", unit="credits", amount=30))
    assert spent.draws == [(expiring.grant_id, 30)]  # soonest expiry first
    assert ledger.spend(L.Spend(key="s1", account_id="user_1", unit="credits", amount=30)) == spent

    hold = ledger.hold(
        L.Hold(key="h1", account_id="user_1", unit="credits", amount=80, ttl_seconds=600)
    )
    captured = ledger.capture(L.Capture(key="c1", hold_id=hold.hold_id, amount=25))
    assert (captured.status, captured.captured, captured.balance) == ("captured", 25, 95)
    with pytest.raises(errors.HoldNotActive):
        ledger.release(L.Release(key="r1", hold_id=hold.hold_id))

    lapsing = ledger.hold(
        L.Hold(key="h2", account_id="user_1", unit="credits", amount=20, ttl_seconds=60)
    )
    assert ledger.balances("user_1")["credits"].held == 20
    clock.now += 61
    assert ledger.balances("user_1")["credits"] == BalanceView(
        unit="credits", available=95, held=0, debt=0
    )
    with pytest.raises(errors.InsufficientBalance):
        ledger.spend(L.Spend(key="s2", account_id="user_1", unit="credits", amount=96))

    clawed = ledger.clawback(
        L.Clawback(
            key="cb1",
            account_id="user_1",
            unit="credits",
            amount=120,
            origin="ord_1",
            policy="debt",
        )
    )
    assert (clawed.taken, clawed.debt, clawed.balance) == (95, 25, -25)

    clock.now = T0 + HOUR + 1
    swept = ledger.sweep()
    repaid = ledger.grant(L.Grant(key="g3", account_id="user_1", unit="credits", amount=40))
    assert repaid.debt_repaid == 25
    assert ledger.balances("user_1")["credits"] == BalanceView(
        unit="credits", available=15, held=0, debt=0
    )

    with backend.uow() as uow:
        grants = uow.ledger.list_grants(
            "user_1", limit=10, starting_after=None, live_only=False, now=clock.now
        )
        history = uow.ledger.list_transactions("user_1", limit=50, starting_after=None)
        lapsed = uow.ledger.get_hold(lapsing.hold_id)
    assert swept == L.SweepResult(grants_expired=1, amount_expired=7, holds_expired=0)
    assert [(g.unit, g.amount, g.remaining, g.held) for g in grants] == [
        ("credits", 40, 15, 0),
        ("credits", 50, 0, 0),
        ("credits", 100, 0, 0),
        ("tokens", 7, 0, 0),
    ]
    # Newest first. The clawback settled the lapsed hold first, in a transaction of its own that
    # it began after claiming its own key: hence hold_expire before clawback.
    assert [x.kind for x in history] == [
        "grant",
        "expire",
        "hold_expire",
        "clawback",
        "hold",
        "capture",
        "hold",
        "spend",
        "grant",
        "grant",
        "grant",
    ]
    assert sum(x.net_for("user_1") for x in history) == 15  # credits; tokens expired
    assert lapsed is not None
    assert (lapsed.status, lapsed.captured) == ("expired", 0)
    assert backend.verify() == []


def test_given_spends_a_capture_clawbacks_and_a_repaid_debt_then_the_trail_explains_each_lot(
    backend: Backend,
) -> None:
    clock = Clock()
    ledger = L.Ledger(backend.uow, clock, units=frozenset({"credits", "tokens"}))
    first = ledger.grant(
        L.Grant(
            key="g1",
            account_id="user_1",
            unit="credits",
            amount=100,
            origin="ord_1",
            expires_at=T0 + HOUR,
        )
    )
    ledger.grant(L.Grant(key="g2", account_id="user_1", unit="credits", amount=50))
    ledger.grant(L.Grant(key="t1", account_id="user_1", unit="tokens", amount=9))
    spent = ledger.spend(L.Spend(key="s1", account_id="user_1", unit="credits", amount=30))
    hold = ledger.hold(
        L.Hold(key="h1", account_id="user_1", unit="credits", amount=40, ttl_seconds=600)
    )
    captured = ledger.capture(L.Capture(key="c1", hold_id=hold.hold_id, amount=25))
    clawed = ledger.clawback(
        L.Clawback(
            key="cb1",
            account_id="user_1",
            unit="credits",
            amount=20,
            origin="ord_1",
            policy="floor",
        )
    )
    open_hold = ledger.hold(
        L.Hold(
            key="h2",
            account_id="user_1",
            unit="credits",
            amount=10,
            ttl_seconds=60,
            reason="a job",
        )
    )
    into_debt = ledger.clawback(
        L.Clawback(
            key="cb2",
            account_id="user_1",
            unit="credits",
            amount=100,
            origin="ord_x",
            policy="debt",
        )
    )
    assert (into_debt.taken, into_debt.debt) == (65, 35)
    repaying = ledger.grant(L.Grant(key="g3", account_id="user_1", unit="credits", amount=50))

    with backend.uow() as uow:
        trail = uow.ledger.trail("user_1", "credits")
        nothing = uow.ledger.trail("nobody", "credits")
    assert [(x.grant.id, x.grant.remaining, x.grant.held) for x in trail.grants] == [
        (first.grant_id, 10, 10),
        (repaying.grant_id, 15, 0),
    ]
    assert [(x.transaction_kind, x.debt_repaid) for x in trail.grants] == [
        ("grant", 0),
        ("grant", 35),
    ]
    assert [x.transaction_id for x in trail.grants] == [
        first.transaction_id,
        repaying.transaction_id,
    ]
    assert [(d.grant_id, d.transaction_id, d.kind, d.amount) for d in trail.draws] == [
        (first.grant_id, spent.transaction_id, "spend", 30),
        (first.grant_id, captured.transaction_id, "capture", 25),
        (first.grant_id, clawed.transaction_id, "clawback", 20),
        (first.grant_id, into_debt.transaction_id, "clawback", 15),
    ]
    assert all(d.created == T0 for d in trail.draws)
    assert [(h.hold.id, h.hold.amount, h.hold.reason, h.allocations) for h in trail.holds] == [
        (open_hold.hold_id, 10, "a job", ((first.grant_id, 10),))
    ]
    assert trail.debt == 0
    assert (nothing.grants, nothing.draws, nothing.holds, nothing.debt) == ((), (), (), 0)
    assert backend.verify() == []


def test_given_an_adjustment_then_it_draws_like_a_spend_into_adjustments_and_never_makes_debt(
    backend: Backend,
) -> None:
    clock = Clock()
    ledger = L.Ledger(backend.uow, clock, units=frozenset({"credits"}))
    first = ledger.grant(
        L.Grant(key="g1", account_id="user_1", unit="credits", amount=100, expires_at=T0 + HOUR)
    )
    second = ledger.grant(L.Grant(key="g2", account_id="user_1", unit="credits", amount=50))
    command = L.Adjust(
        key="a1", account_id="user_1", unit="credits", amount=120, reason="duplicate grants"
    )
    adjusted = ledger.adjust(command)
    assert (adjusted.amount, adjusted.balance, adjusted.reason) == (120, 30, "duplicate grants")
    assert adjusted.draws == [(first.grant_id, 100), (second.grant_id, 20)]  # soonest expiry first
    with backend.uow() as uow:
        trail = uow.ledger.trail("user_1", "credits")
    assert [(d.grant_id, d.transaction_id, d.kind, d.amount) for d in trail.draws] == [
        (second.grant_id, adjusted.transaction_id, "adjustment", 20),
    ]  # the first lot has nothing left: not part of the balance any more
    again = ledger.adjust(command)
    assert again == adjusted
    assert again.replayed
    with pytest.raises(errors.IdempotencyConflict):
        ledger.adjust(
            L.Adjust(key="a1", account_id="user_1", unit="credits", amount=1, reason="other")
        )
    for refused, error in (
        (
            L.Adjust(key="a2", account_id="user_1", unit="credits", amount=31, reason="r"),
            errors.InsufficientBalance,
        ),
        (
            L.Adjust(key="a3", account_id="nobody", unit="credits", amount=1, reason="r"),
            errors.InsufficientBalance,
        ),
        (
            L.Adjust(key="a4", account_id="user_1", unit="credits", amount=1, reason=" "),
            errors.ValidationError,
        ),
        (
            L.Adjust(key="a5", account_id="user_1", unit="credits", amount=0, reason="r"),
            errors.ValidationError,
        ),
        (
            L.Adjust(key="a6", account_id="user_1", unit="gold", amount=1, reason="r"),
            errors.UnknownUnit,
        ),
    ):
        with pytest.raises(error):
            ledger.adjust(refused)
    # With debt recorded, what the grants hold is encumbered: nothing can be taken.
    ledger.clawback(
        L.Clawback(
            key="cb1", account_id="user_1", unit="credits", amount=40, origin="ord_x", policy="debt"
        )
    )
    with pytest.raises(errors.InsufficientBalance):
        ledger.adjust(L.Adjust(key="a7", account_id="user_1", unit="credits", amount=1, reason="r"))
    assert ledger.balances("user_1")["credits"] == BalanceView(
        unit="credits", available=-10, held=0, debt=10
    )

    with backend.uow() as uow:
        history = uow.ledger.list_transactions("user_1", limit=10, starting_after=None)
    [adjustment] = [x for x in history if x.kind == "adjustment"]
    assert (adjustment.id, adjustment.reason, adjustment.net_for("user_1")) == (
        adjusted.transaction_id,
        "duplicate grants",
        -120,
    )
    assert {(ln.account_id, ln.amount) for ln in adjustment.lines} == {
        ("user_1", -100),
        ("sys:adjustments", 100),
        ("user_1", -20),
        ("sys:adjustments", 20),
    }
    assert backend.verify() == []

"""The explain property (issue 13), on SQLite and PostgreSQL: after any sequence of grants (with
priorities and expiry), purchases, spends, operators' adjustments, holds, captures, releases, refunds (partial, failed),
disputes (open, won, lost) under the ``debt`` and ``floor`` policies, and time passing, the
explanation adds up to the balance every read shows, and each lot's draws account for exactly what
it no longer holds."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.service import ledger as L
from tests.builders import stripe_events as se
from tests.conftest import FakeClock
from tests.support.app import deliver, running_app

CATALOG = """
[policy]
refund = "floor"

[units.credits]

[packages.thousand]
title = "Thousand Pack"
currency = "usd"
price = 999
refund_policy = "debt"
grants = [{ unit = "credits", amount = 700 }, { unit = "credits", amount = 300, kind = "bonus", expires_in_days = 1 }]

[packages.starter]
title = "Starter Pack"
currency = "usd"
price = 499
grants = [{ unit = "credits", amount = 500 }]
"""

PRICES = {"thousand": 999, "starter": 499}

App = tuple[TestClient, Services, FakeClock]


@pytest.fixture
def app(db_url: str, engine: Any, tmp_path: Path) -> Iterator[App]:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    clock = FakeClock()
    with running_app(db_url, clock=clock, catalog=str(path)) as (client, services):
        yield client, services, clock


ops = st.one_of(
    st.tuples(
        st.just("grant"),
        st.integers(1, 300),
        st.integers(-2, 2),
        st.sampled_from([None, 30, 3_000]),
    ),
    st.tuples(st.just("buy"), st.sampled_from(sorted(PRICES))),
    st.tuples(st.just("spend"), st.integers(1, 600)),
    st.tuples(st.just("adjust"), st.integers(1, 300)),
    st.tuples(st.just("hold"), st.integers(1, 400), st.sampled_from([30, 3_000, 200_000])),
    st.tuples(st.just("capture"), st.integers(0, 5), st.integers(0, 100)),
    st.tuples(st.just("release"), st.integers(0, 5)),
    st.tuples(st.just("refund"), st.integers(0, 3), st.integers(1, 999)),
    st.tuples(st.just("refund_fails"), st.integers(0, 5)),
    st.tuples(st.just("dispute"), st.integers(0, 3), st.sampled_from(["open", "won", "lost"])),
    st.tuples(st.just("tick"), st.sampled_from([5, 60, 600, 3_600, 90_000])),
)


@dataclass
class Story:
    client: TestClient
    services: Services
    clock: FakeClock
    account: str
    payments: list[tuple[str, str]] = field(default_factory=list)  # (tag, package)
    holds: list[str] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    n: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, event: dict[str, Any]) -> None:
        answer = deliver(self.client, event)
        assert answer.status_code == 200, answer.text

    def key(self) -> str:
        return f"{self.account}-{next(self.n)}"

    def apply(self, op: tuple[Any, ...]) -> None:
        ledger, name = self.services.ledger, op[0]
        try:
            if name == "grant":
                _, amount, priority, expires_in = op
                ledger.grant(
                    L.Grant(
                        key=self.key(),
                        account_id=self.account,
                        unit="credits",
                        amount=amount,
                        priority=priority,
                        expires_at=None if expires_in is None else self.clock.now + expires_in,
                    )
                )
            elif name == "buy":
                tag = self.key()
                self.payments.append((tag, op[1]))
                self.send(
                    se.checkout_session_completed(
                        session_id=f"cs_test_{tag}",
                        payment_intent=f"pi_{tag}",
                        amount_total=PRICES[op[1]],
                        metadata={"billfold_account": self.account, "billfold_package": op[1]},
                    )
                )
            elif name == "spend":
                ledger.spend(
                    L.Spend(key=self.key(), account_id=self.account, unit="credits", amount=op[1])
                )
            elif name == "adjust":
                ledger.adjust(
                    L.Adjust(
                        key=self.key(),
                        account_id=self.account,
                        unit="credits",
                        amount=op[1],
                        reason="an operator's correction",
                    )
                )
            elif name == "hold":
                done = ledger.hold(
                    L.Hold(
                        key=self.key(),
                        account_id=self.account,
                        unit="credits",
                        amount=op[1],
                        ttl_seconds=op[2],
                    )
                )
                self.holds.append(done.hold_id)
            elif name == "capture" and self.holds:
                hold_id = self.holds[op[1] % len(self.holds)]
                amount = self.services.views.hold(hold_id).amount * op[2] // 100
                ledger.capture(L.Capture(key=self.key(), hold_id=hold_id, amount=amount or None))
            elif name == "release" and self.holds:
                ledger.release(
                    L.Release(key=self.key(), hold_id=self.holds[op[1] % len(self.holds)])
                )
            elif name == "refund" and self.payments:
                tag, package = self.payments[op[1] % len(self.payments)]
                refund = se.refund(
                    refund_id=f"re_{self.key()}",
                    amount=min(op[2], PRICES[package]),
                    charge=f"ch_{tag}",
                    payment_intent=f"pi_{tag}",
                    status="pending",
                )
                self.refunds.append(refund)
                self.send(se.any_event("refund.created", refund))
            elif name == "refund_fails" and self.refunds:
                failed = dict(self.refunds[op[1] % len(self.refunds)], status="failed")
                self.send(se.any_event("refund.updated", failed))
            elif name == "dispute" and self.payments:
                tag, package = self.payments[op[1] % len(self.payments)]
                fields = {
                    "dispute_id": f"dp_{tag}",
                    "charge": f"ch_{tag}",
                    "payment_intent": f"pi_{tag}",
                    "amount": PRICES[package],
                }
                if op[2] == "open":
                    self.send(se.dispute_created(**fields))
                else:
                    self.send(se.dispute_closed(status=op[2], **fields))
            elif name == "tick":
                self.clock.advance(op[1])
        except (errors.InsufficientBalance, errors.HoldNotActive):
            pass  # refused, and nothing written: the books stay as they were

    def check(self) -> None:
        explained = self.services.views.explain(self.account, "credits", must_exist=False)
        shown = self.services.views.balances(self.account)
        assert explained.balance == shown.available["credits"]
        assert explained.held == shown.held["credits"]
        assert explained.debt == shown.debt["credits"]
        total = sum(lot.remaining for lot in explained.lots)
        assert explained.balance == total - explained.held - explained.debt
        assert explained.held == sum(h.amount for h in explained.holds)
        for lot in explained.lots:
            assert lot.amount - sum(d.amount for d in lot.draws) == lot.remaining, lot
            assert 0 <= lot.held <= lot.remaining
            assert lot.remaining > 0
        for reversal in explained.reversals:
            assert reversal.recovered == reversal.taken + reversal.debt
            assert min(reversal.taken, reversal.debt, reversal.unrecovered, reversal.held) >= 0


_accounts = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(ops, min_size=1, max_size=20))
def test_after_any_operations_the_explanation_adds_up_to_the_balance(
    app: App, steps: list[tuple[Any, ...]]
) -> None:
    client, services, clock = app
    story = Story(client, services, clock, account=f"user_{next(_accounts)}")
    story.apply(("buy", "thousand"))  # every story has something to refund, spend and dispute
    for step in steps:
        story.apply(step)
        story.check()

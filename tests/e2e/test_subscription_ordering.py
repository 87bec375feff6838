"""Any delivery order of a subscription's events converges to the in-order result (issue 11), on
SQLite and PostgreSQL, through the webhook route and the worker.

Each scenario is a recorded sequence of at most 8 events (signup with checkout, renewal, failed
renewal -> past_due -> recovery, upgrade, downgrade, cancel at period end, cancel via
``cancel_at``, pause and resume, a trial). Stripe's API answers what it says at the end: the last
state of the subscription. The in-order result and every permutation (with a duplicate delivery
thrown in) must agree on the stored state, the entitlements, the balances and the grants.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billfold.bootstrap import Services
from tests.conftest import FakeClock
from tests.support.app import deliver, running_app
from tests.support.fake_billing import FakeStripeBilling
from tests.support.subscription_story import CATALOG, DAY, MONTH, T0, Story, drain, start

Event = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    events: Callable[[Story], list[Event]]
    evaluated_at: int
    """When the books are read (and the events processed): inside the period that matters."""


def _signup(s: Story) -> list[Event]:
    return [
        s.checkout_completed(T0 + 1, invoice="0"),
        s.state("created", T0 + 2, status="incomplete"),
        s.paid("0", T0 + 3, reason="subscription_create"),
        s.paid("0", T0 + 3, reason="subscription_create", type_="invoice.payment_succeeded"),
        s.state("updated", T0 + 4),
    ]


def _renewal(s: Story) -> list[Event]:
    return [
        s.state("created", T0 + 1),
        s.paid("0", T0 + 2, reason="subscription_create"),
        s.state("updated", start(1) + 1, period=1),
        s.paid("1", start(1) + 2, period=1),
        s.paid("1", start(1) + 3, period=1, type_="invoice.payment_succeeded"),
    ]


def _failed_renewal(s: Story) -> list[Event]:
    failed = start(1) + 100
    return [
        s.state("created", T0 + 1),
        s.paid("0", T0 + 2, reason="subscription_create"),
        s.failed("1", failed, period=1),
        s.state("updated", failed + 1, status="past_due", period=1),
        s.failed("1", failed + DAY, period=1),
        s.paid("1", failed + 2 * DAY, period=1),
        s.state("updated", failed + 2 * DAY + 1, period=1),
    ]


def _still_failing(s: Story) -> list[Event]:
    failed = start(1) + 100
    return [
        s.state("created", T0 + 1),
        s.paid("0", T0 + 2, reason="subscription_create"),
        s.state("updated", start(1) + 50, period=1),
        s.failed("1", failed, period=1),
        s.state("updated", failed + 1, status="past_due", period=1),
        s.failed("1", failed + DAY, period=1),
    ]


def _upgrade(s: Story) -> list[Event]:
    switch = start(0) + MONTH // 2
    return [
        s.state("created", T0 + 1),
        s.paid("0", T0 + 2, reason="subscription_create"),
        s.state("updated", switch, price="price_elite"),
        s._invoice_event(
            "invoice.paid", s.upgrade_invoice("u", period=0, at_fraction=(1, 2)), switch + 1
        ),
    ]


def _downgrade(s: Story) -> list[Event]:
    return [
        s.state("created", T0 + 1, price="price_elite"),
        s.paid("0", T0 + 2, price="price_elite", reason="subscription_create"),
        s.state("updated", T0 + 10 * DAY, price="price_pro"),
        s.state("updated", start(1) + 1, period=1),
        s.paid("1", start(1) + 2, period=1),
    ]


def _cancel_at_period_end(s: Story) -> list[Event]:
    return [
        s.state("created", T0 + 1),
        s.paid("0", T0 + 2, reason="subscription_create"),
        s.state("updated", T0 + 5 * DAY, cancel_at_period_end=True),
        s.state("deleted", start(1)),
    ]


def _cancel_at(s: Story) -> list[Event]:
    ends = T0 + 20 * DAY
    return [
        s.state("created", T0 + 1),
        s.paid("0", T0 + 2, reason="subscription_create"),
        s.state("updated", T0 + 5 * DAY, cancel_at=ends),
        s.state("deleted", ends, cancel_at=ends),
    ]


def _pause_resume(s: Story) -> list[Event]:
    return [
        s.state("created", T0 + 1),
        s.paid("0", T0 + 2, reason="subscription_create"),
        s.state("paused", T0 + 3 * DAY, status="paused"),
        s.state("resumed", T0 + 6 * DAY),
        s.state("updated", T0 + 6 * DAY + 1, pause_collection=None),
    ]


def _trial(s: Story) -> list[Event]:
    trial_end = start(1)
    return [
        s.state("created", T0 + 1, status="trialing", trial_end=trial_end),
        s.paid("0", T0 + 2, amount=0, reason="subscription_create"),
        s.state("trial_will_end", start(1) - 3 * DAY, status="trialing", trial_end=trial_end),
        s.state("updated", start(1) + 1, period=1, trial_end=trial_end),
        s.paid("1", start(1) + 2, period=1),
    ]


SCENARIOS = [
    Scenario("signup", _signup, T0 + DAY),
    Scenario("renewal", _renewal, start(1) + DAY),
    Scenario("failed_renewal", _failed_renewal, start(1) + 4 * DAY),
    Scenario("still_failing", _still_failing, start(1) + 2 * DAY),
    Scenario("upgrade", _upgrade, start(0) + MONTH // 2 + DAY),
    Scenario("downgrade", _downgrade, start(1) + DAY),
    Scenario("cancel_at_period_end", _cancel_at_period_end, start(1) + 10),
    Scenario("cancel_at", _cancel_at, T0 + 25 * DAY),
    Scenario("pause_resume", _pause_resume, T0 + 7 * DAY),
    Scenario("trial", _trial, start(1) + DAY),
]
assert all(len(sc.events(Story("user_x"))) <= 8 for sc in SCENARIOS)


@dataclass
class Books:
    app: TestClient
    services: Services
    stripe: FakeStripeBilling
    clock: FakeClock
    n: itertools.count[int]

    def run(self, scenario: Scenario, order: list[int] | None, duplicate: int | None) -> Any:
        """Deliver ``scenario`` for a fresh account in ``order`` (None: as recorded), then read
        what the books say."""
        story = Story(f"user_{scenario.name[:10]}{next(self.n)}")
        events = scenario.events(story)
        # What Stripe says at the end: every object as of its last event.
        for event in sorted(events, key=lambda e: e["created"]):
            self.stripe.remember(event)
        sequence = [events[i] for i in order] if order is not None else list(events)
        if duplicate is not None:
            sequence.append(events[duplicate % len(events)])
        self.clock.now = scenario.evaluated_at
        for event in sequence:
            assert deliver(self.app, event).status_code == 200
            drain(self.services)
        return snapshot(self.services, story)


def snapshot(services: Services, story: Story) -> Any:
    """What must converge, with the account's own ids taken out."""
    entitlements = services.billing.entitlements(story.account)
    subscriptions = services.billing.subscriptions(story.account).data
    state = [
        (
            s.status,
            s.plan,
            s.quantity,
            s.current_period_start,
            s.current_period_end,
            s.cancel_at_period_end,
            s.cancel_at,
            s.ended_at,
            s.trial_end,
            s.pause_behavior,
            s.past_due_since,
            s.account_id == story.account,
            s.customer_id == story.customer,
        )
        for s in subscriptions
    ]
    balances = {
        u: (v.available, v.debt) for u, v in services.ledger.balances(story.account).items()
    }
    grants = sorted(
        (g.kind, g.unit, g.amount, g.remaining, g.expires_at)
        for g in services.views.grants(
            story.account, must_exist=False, limit=100, starting_after=None, live_only=False
        ).data
    )
    orders = sorted(
        (o.kind, o.status, o.plan, o.amount)
        for o in services.views.orders(account_id=story.account, limit=100).data
    )
    return {
        "entitlements": (
            entitlements.plan,
            entitlements.source,
            entitlements.status,
            entitlements.current_period_end,
            entitlements.grace_until,
        ),
        "subscriptions": state,
        "balances": balances,
        "grants": grants,
        "orders": orders,
    }


@pytest.fixture
def books(db_url: str, engine: Any, tmp_path: Path, clock: FakeClock) -> Iterator[Books]:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    stripe = FakeStripeBilling(clock)
    with running_app(db_url, catalog=str(path), clock=clock, stripe=stripe) as (client, services):
        yield Books(client, services, stripe, clock, itertools.count())


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_the_scenario_in_order_gives_what_the_design_says(books: Books, scenario: Scenario) -> None:
    """The in-order results themselves, so a permutation cannot agree with a wrong answer."""
    found = books.run(scenario, None, None)
    expected = {
        "signup": (("pro", "subscription", "active"), {"credits": (1000, 0)}),
        "renewal": (("pro", "subscription", "active"), {"credits": (1000, 0)}),
        "failed_renewal": (("pro", "subscription", "active"), {"credits": (1000, 0)}),
        "still_failing": (("pro", "grace", "past_due"), {"credits": (0, 0)}),
        "upgrade": (("elite", "subscription", "active"), {"credits": (3000, 0)}),
        "downgrade": (("pro", "subscription", "active"), {"credits": (1000, 0)}),
        "cancel_at_period_end": (("free", "default", "canceled"), {"credits": (0, 0)}),
        "cancel_at": (("free", "default", "canceled"), {"credits": (1000, 0)}),
        "pause_resume": (("pro", "subscription", "active"), {"credits": (1000, 0)}),
        "trial": (("pro", "subscription", "active"), {"credits": (1000, 0)}),
    }[scenario.name]
    assert found["entitlements"][:3] == expected[0]
    assert {u: found["balances"].get(u, (0, 0)) for u in expected[1]} == expected[1]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_the_scenario_delivered_backwards_converges(books: Books, scenario: Scenario) -> None:
    size = len(scenario.events(Story("user_x")))
    in_order = books.run(scenario, None, None)
    assert books.run(scenario, list(reversed(range(size))), 0) == in_order


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_delivery_order_converges_to_the_in_order_result(
    books: Books, data: st.DataObject
) -> None:
    scenario = data.draw(st.sampled_from(SCENARIOS), label="scenario")
    size = len(scenario.events(Story("user_x")))
    order = data.draw(st.permutations(range(size)), label="order")
    duplicate = data.draw(st.none() | st.integers(0, size - 1), label="duplicate")
    assert books.run(scenario, list(order), duplicate) == books.run(scenario, None, None)

"""Reconciliation on the memory fakes: what a run finds, heals and reports; the lease that lets one
run at a time; the events cursor; the completion hook; the schedule."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from billfold.adapters.stripe import webhooks
from billfold.domain import errors
from billfold.domain import reconciliation as rc
from billfold.domain.records import InboundEvent
from billfold.service.billing import Billing
from billfold.service.ports import UnitOfWork
from billfold.service.reconciliation import Reconciliation
from billfold.service.subscriptions import SubscriptionBook
from tests.builders import stripe_events as se
from tests.support.fake_ledger import FakeStripeLedger
from tests.support.memory import T0, FakeStripe, Shop, catalog

STARTER = {"billfold_account": "user_1", "billfold_package": "starter"}


class EventsStripe(FakeStripe):
    """Stripe's Events API over the events a test says Stripe has."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.asked_since: list[int] = []

    def list_events(self, *, created_gte: int, types: Sequence[str]) -> Iterator[InboundEvent]:
        self.asked_since.append(created_gte)
        for event in sorted(self.events, key=lambda e: e["created"]):
            if event["created"] >= created_gte and event["type"] in types:
                yield webhooks.envelope(event, json.dumps(event))


class World:
    def __init__(self) -> None:
        self.events = EventsStripe()
        self.shop = Shop.open(stripe=self.events)
        self.ledger = FakeStripeLedger()
        cat = catalog()
        units = frozenset(u.name for u in cat.units)
        billing = Billing(
            uow_factory=self.shop.db.uow,
            catalog=cat,
            views=self.shop.views,
            book=SubscriptionBook(cat, self.shop.fulfilment, units=units),
            stripe=None,
            clock=self.shop.clock,
        )
        self.reconciliation = Reconciliation(
            uow_factory=self.shop.db.uow,
            inbox=self.shop.inbox,
            billing=billing,
            stripe=self.ledger,
            events=self.events,
            clock=self.shop.clock,
            lease_seconds=60,
            owner="test",
        )

    def paid(self, session_id: str, *, amount: int = 499, created: int = T0) -> dict[str, Any]:
        """A session Stripe says is paid, and its ``checkout.session.completed``."""
        event = se.checkout_session_completed(
            session_id=session_id,
            metadata=STARTER,
            amount_total=amount,
            event_created=created,
        )
        self.ledger.sessions.append(
            rc.StripeSession(
                id=session_id,
                payment_intent_id=None,
                amount=amount,
                currency="usd",
                created=created,
            )
        )
        self.events.events.append(event)
        return event


@pytest.fixture
def world() -> World:
    return World()


def test_a_payment_whose_webhook_never_came_is_granted_from_its_event_and_reported_healed(
    world: World,
) -> None:
    world.paid("cs_delivered")
    world.shop.deliver(world.events.events[0])
    world.paid("cs_lost", created=T0 + 10)
    world.shop.clock.advance(60)

    run = world.reconciliation.run()

    assert (run.status, run.events_imported) == ("completed", 1)
    [item] = run.items
    assert (item.drift_class, item.stripe_ids, item.amount, item.healed) == (
        "paid_not_granted",
        ("cs_lost",),
        499,
        True,
    )
    assert run.open == 0
    assert world.shop.balances("user_1") == {"credits": 1000}
    with world.shop.db.uow() as uow:
        assert uow.reconciliation.events_cursor() == T0 + 10
    again = world.reconciliation.run()
    assert (again.events_imported, again.items) == (0, ())


def test_nothing_is_granted_without_stripe_saying_paid_and_forged_orders_are_reported(
    world: World,
) -> None:
    world.paid("cs_real")
    world.shop.deliver(world.events.events[0])
    # Stripe forgets the session (and has no other proof of payment): billfold's order stays,
    # reported; nothing is taken back or granted by the run.
    world.ledger.sessions.clear()
    world.shop.clock.advance(60)

    run = world.reconciliation.run()

    [item] = run.items
    assert (item.drift_class, item.stripe_ids[0], item.amount, item.healed) == (
        "granted_without_payment",
        "cs_real",
        499,
        False,
    )
    assert world.shop.balances("user_1") == {"credits": 500}
    world.ledger.payments["cs_real"] = rc.StripePayment(
        id="cs_real", paid=True, amount=999, currency="usd"
    )
    mismatch = world.reconciliation.run()
    [item] = mismatch.items
    assert (item.drift_class, item.amount, item.healed) == ("amount_mismatch", 999, False)


def test_a_paid_session_without_any_event_stays_open(world: World) -> None:
    world.paid("cs_silent")
    world.events.events.clear()  # Stripe's Events API has nothing on it (older than 30 days)
    world.shop.clock.advance(60)

    run = world.reconciliation.run()

    [item] = run.items
    assert (item.drift_class, item.healed) == ("paid_not_granted", False)
    assert run.drift["paid_not_granted"] == rc.DriftCount(found=1, healed=0, open=1)
    assert world.shop.balances("user_1") == {}


def test_one_run_at_a_time_and_a_lapsed_run_is_failed_by_the_next(world: World) -> None:
    first = world.reconciliation.start(trigger="api")
    assert first.created
    busy = world.reconciliation.start(trigger="api")
    assert (busy.created, busy.run.id) == (False, first.run.id)
    with pytest.raises(errors.ReconciliationRunning):
        world.reconciliation.run(wait_seconds=0)

    world.shop.clock.advance(61)  # its process died: the lease lapses
    later = world.reconciliation.run()

    assert later.status == "completed"
    stale = world.reconciliation.get(first.run.id)
    assert stale.status == "failed"
    assert stale.error is not None
    assert "abandoned" in stale.error
    page = world.reconciliation.list(limit=1)
    assert ([r.id for r in page.data], page.has_more) == ([later.id], True)
    with pytest.raises(errors.ReconciliationRunNotFound):
        world.reconciliation.get("rcn_unknown")
    with pytest.raises(errors.CursorNotFound):
        world.reconciliation.list(starting_after="rcn_unknown")


def test_the_completion_hook_sees_the_finished_run_in_its_transaction(world: World) -> None:
    seen: list[tuple[str, int]] = []

    def hook(uow: UnitOfWork, run: rc.RunRecord) -> None:
        stored = uow.reconciliation.get_run(run.id)
        assert stored is not None
        seen.append((stored.status, run.open))

    world.reconciliation.completion_hooks.append(hook)
    world.paid("cs_silent")
    world.events.events.clear()
    world.shop.clock.advance(60)

    world.reconciliation.run()

    assert seen == [("completed", 1)]


def test_the_schedule_reads_events_from_the_cursor_and_waits_its_interval(world: World) -> None:
    world.paid("cs_1")
    world.shop.clock.advance(60)
    first = world.reconciliation.run_scheduled(3600)
    assert first is not None
    assert first.trigger == "schedule"
    assert world.reconciliation.run_scheduled(3600) is None  # one ran less than an hour ago
    world.shop.clock.advance(3600)
    world.events.asked_since.clear()
    assert world.reconciliation.run_scheduled(3600) is not None
    assert world.events.asked_since == [T0 - rc.CURSOR_OVERLAP_SECONDS]


def test_a_window_must_make_sense(world: World) -> None:
    with pytest.raises(errors.ValidationError):
        world.reconciliation.start(since=T0, until=T0 - 1)
    assert world.reconciliation.window(None, None) == (T0 - rc.DEFAULT_WINDOW_SECONDS, T0)


def test_a_refund_and_a_dispute_whose_events_never_came_are_taken_in_and_reported_healed(
    world: World,
) -> None:
    for session_id, intent in (("cs_refunded", "pi_refunded"), ("cs_disputed", "pi_disputed")):
        event = se.checkout_session_completed(
            session_id=session_id, payment_intent=intent, metadata=STARTER, event_created=T0
        )
        world.shop.deliver(event)
    assert world.shop.balances("user_1") == {"credits": 1000}
    refund = se.refund_event(
        "refund.created",
        refund_id="re_1",
        payment_intent="pi_refunded",
        charge="ch_refunded",
        amount=499,
        event_created=T0 + 5,
    )
    dispute = se.dispute_created(
        dispute_id="dp_1", payment_intent="pi_disputed", charge="ch_disputed", event_created=T0 + 6
    )
    world.events.events += [refund, dispute]
    world.ledger.reversals += [
        rc.StripeReversal(
            kind="refund",
            id="re_1",
            charge_id="ch_refunded",
            payment_intent_id="pi_refunded",
            amount=499,
            currency="usd",
            status="succeeded",
            created=T0 + 5,
        ),
        rc.StripeReversal(
            kind="dispute",
            id="dp_1",
            charge_id="ch_disputed",
            payment_intent_id="pi_disputed",
            amount=499,
            currency="usd",
            status="needs_response",
            created=T0 + 6,
        ),
    ]
    world.shop.clock.advance(60)

    run = world.reconciliation.run()

    found = {i.drift_class: i for i in run.items}
    assert set(found) == {"refunded_not_clawed_back", "disputed_not_held"}
    assert found["refunded_not_clawed_back"].stripe_ids[0] == "re_1"
    assert found["disputed_not_held"].stripe_ids[0] == "dp_1"
    assert all(i.healed and i.amount == 499 for i in run.items)
    assert run.events_imported == 2
    # The refund took its credits back; the dispute holds the rest.
    assert world.shop.balances("user_1") == {"credits": 0}


def test_open_drift_tells_the_application_once_in_the_runs_transaction(world: World) -> None:
    world.paid("cs_silent")
    world.events.events.clear()  # Stripe has the payment, but no event for it
    world.shop.clock.advance(60)

    run = world.reconciliation.run()

    assert run.open == 1
    with world.shop.db.uow() as uow:
        sent = uow.notifications.list(
            status=None,
            type_="reconciliation.drift",
            account_id=None,
            limit=10,
            starting_after=None,
        )
    assert len(sent) == 1
    data = sent[0].data
    assert data["run_id"] == run.id
    assert data["drift"]["paid_not_granted"] == {"found": 1, "healed": 0, "open": 1}
    assert [item["stripe_ids"] for item in data["items"]] == [["cs_silent"]]


def test_a_clean_run_tells_the_application_nothing(world: World) -> None:
    world.paid("cs_1")
    world.shop.deliver(world.events.events[0])
    world.shop.clock.advance(60)

    assert world.reconciliation.run().open == 0
    with world.shop.db.uow() as uow:
        sent = uow.notifications.list(
            status=None,
            type_="reconciliation.drift",
            account_id=None,
            limit=10,
            starting_after=None,
        )
    assert sent == []

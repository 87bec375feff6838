"""Test clocks: advancing runs renewals, retries and scheduled ends at the clock's own time."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
import stripe
from tests.simulator.billing_support import (
    DAY,
    FEB_1,
    MAR_1,
    T0,
    clock,
    customer,
    of,
    on_clock,
    price,
    subscribe,
    types_of,
)

from billfold.simulator import clocks

if TYPE_CHECKING:
    from tests.simulator.conftest import MakeSim, Receiver, Sim

RENEWAL_CHAIN = [
    "customer.subscription.updated",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
]


def test_a_clock_is_created_listed_retrieved_and_deleted(sim: Sim, receiver: Receiver) -> None:
    created = clock(sim)
    listed = sim.stripe.v1.test_helpers.test_clocks.list()
    customer_id = customer(sim, created.id).id

    deleted = sim.stripe.v1.test_helpers.test_clocks.delete(created.id)
    sim.flush()

    assert created.id.startswith("clock_")
    assert created.object == "test_helpers.test_clock"
    assert created.status == "ready"
    assert created.frozen_time == T0
    assert created.name == "billing test"
    assert created.deletes_after > created.created
    assert [c.id for c in listed.data] == [created.id]
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        sim.stripe.v1.test_helpers.test_clocks.retrieve(created.id)
    with pytest.raises(stripe.InvalidRequestError):
        sim.stripe.v1.customers.retrieve(customer_id)
    assert types_of(receiver, prefixes=("test_helpers",)) == [
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.deleted",
    ]


def test_objects_and_events_of_a_clock_customer_carry_the_clock_time(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id, customer_id, subscription = on_clock(sim)
    sim.flush()

    assert sim.stripe.v1.customers.retrieve(customer_id).test_clock == clock_id
    assert subscription.created == T0
    assert subscription.test_clock == clock_id
    assert subscription.status == "active"
    item = subscription["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (T0, FEB_1)
    catalog = ("price.", "product.", "test_helpers.")
    assert {e["created"] for e in receiver.events if not e["type"].startswith(catalog)} == {T0}
    assert of(receiver, "customer.created")[0]["created"] == T0


def test_advancing_is_asynchronous_then_renews_with_the_whole_chain(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id, _customer_id, subscription = on_clock(sim)
    sim.flush()
    before = len(receiver.events)

    answer = sim.stripe.v1.test_helpers.test_clocks.advance(
        clock_id, params={"frozen_time": FEB_1 + DAY}
    )
    sim.flush()
    ready = sim.stripe.v1.test_helpers.test_clocks.retrieve(clock_id)

    assert answer.status == "advancing"
    assert answer.status_details.advancing.target_frozen_time == FEB_1 + DAY
    assert ready.status == "ready"
    assert ready.frozen_time == FEB_1 + DAY
    billing = types_of(
        receiver, before, prefixes=("customer.subscription", "invoice.", "test_helpers")
    )
    assert billing == [
        "test_helpers.test_clock.advancing",
        *RENEWAL_CHAIN,
        "test_helpers.test_clock.ready",
    ]
    chain = of(receiver, *RENEWAL_CHAIN, since=before)
    assert {e["created"] for e in chain} == {FEB_1}  # one second for the whole chain
    assert of(receiver, "test_helpers.test_clock.ready")[-1]["created"] == FEB_1 + DAY
    updated = chain[0]["data"]
    item = updated["object"]["items"]["data"][0]
    assert (item["current_period_start"], item["current_period_end"]) == (FEB_1, MAR_1)
    assert updated["previous_attributes"]["items"]["data"][0]["current_period_end"] == FEB_1
    invoice = chain[-1]["data"]["object"]
    assert invoice["billing_reason"] == "subscription_cycle"
    assert invoice["amount_paid"] == 1900
    assert (invoice["period_start"], invoice["period_end"]) == (T0, FEB_1)  # the period that ended
    [line] = invoice["lines"]["data"]
    assert line["period"] == {"start": FEB_1, "end": MAR_1}  # the period it pays for
    assert line["parent"]["subscription_item_details"]["subscription"] == subscription.id
    assert line["parent"]["subscription_item_details"]["proration"] is False
    assert invoice["payments"]["data"][0]["payment"]["payment_intent"].startswith("pi_")
    assert invoice["status_transitions"]["paid_at"] == FEB_1
    listed = sim.stripe.v1.invoices.list(params={"subscription": subscription.id})
    assert [i.billing_reason for i in listed.data] == ["subscription_cycle", "subscription_create"]


def test_two_months_renew_twice_and_months_keep_their_anchor(sim: Sim, receiver: Receiver) -> None:
    jan_31 = T0 + 30 * DAY
    clock_id = clock(sim, jan_31).id
    customer_id = customer(sim, clock_id).id
    subscription = subscribe(sim, customer_id, price(sim).id)

    sim.advance(clock_id, jan_31 + 59 * DAY)  # Mar 31
    renewed = sim.stripe.v1.subscriptions.retrieve(subscription.id)

    ends = [
        e["data"]["object"]["items"]["data"][0]["current_period_end"]
        for e in of(receiver, "customer.subscription.updated")
    ]
    feb_28, mar_31, apr_30 = 1_898_467_200, 1_901_145_600, 1_903_737_600
    assert ends == [mar_31, apr_30]
    assert renewed["items"].data[0].current_period_start == mar_31
    created = [e["data"]["object"]["period_end"] for e in of(receiver, "invoice.paid")]
    assert created == [jan_31, feb_28, mar_31]


def test_a_clock_cannot_go_back_nor_past_two_intervals(sim: Sim) -> None:
    clock_id, _, _ = on_clock(sim)
    weekly_clock = clock(sim).id
    subscribe(sim, customer(sim, weekly_clock).id, price(sim, 500, interval="week").id)

    with pytest.raises(stripe.InvalidRequestError) as backwards:
        sim.stripe.v1.test_helpers.test_clocks.advance(clock_id, params={"frozen_time": T0})
    with pytest.raises(stripe.InvalidRequestError) as too_far:
        sim.stripe.v1.test_helpers.test_clocks.advance(clock_id, params={"frozen_time": MAR_1 + 1})
    with pytest.raises(stripe.InvalidRequestError) as weeks:
        sim.stripe.v1.test_helpers.test_clocks.advance(
            weekly_clock, params={"frozen_time": T0 + 15 * DAY}
        )
    two_months = sim.advance(clock_id, MAR_1)

    assert backwards.value.param == "frozen_time"
    assert "two intervals" in str(too_far.value.user_message)
    assert "1 month" in str(too_far.value.user_message)
    assert "1 week" in str(weeks.value.user_message)
    assert two_months.frozen_time == MAR_1


def test_an_advancing_clock_refuses_another_advance(make_sim: MakeSim) -> None:
    # A clock that takes its time to advance: the second request surely finds it advancing (with
    # the suite's 10 ms, a busy machine let the advance finish first).
    sim = make_sim(clock_advance_seconds=0.5)
    clock_id, _, _ = on_clock(sim)
    sim.stripe.v1.test_helpers.test_clocks.advance(clock_id, params={"frozen_time": T0 + DAY})

    with pytest.raises(stripe.InvalidRequestError) as busy:
        sim.stripe.v1.test_helpers.test_clocks.advance(
            clock_id, params={"frozen_time": T0 + 2 * DAY}
        )
    sim.flush()

    assert "already advancing" in str(busy.value.user_message)


def test_a_failed_renewal_is_retried_on_schedule_then_the_subscription_is_canceled(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id, customer_id, subscription = on_clock(sim)
    sim.stripe.v1.customers.update(
        customer_id,
        params={"invoice_settings": {"default_payment_method": "pm_card_chargeCustomerFail"}},
    )
    sim.flush()
    before = len(receiver.events)

    sim.advance(clock_id, FEB_1 + 1)
    sim.advance(clock_id, FEB_1 + 20 * DAY)
    ended = sim.stripe.v1.subscriptions.retrieve(subscription.id)

    failed = of(receiver, "invoice.payment_failed", since=before)
    attempts = [(e["created"], e["data"]["object"]["attempt_count"]) for e in failed]
    assert attempts == [
        (FEB_1, 1),
        (FEB_1 + 3 * DAY, 2),
        (FEB_1 + 8 * DAY, 3),
        (FEB_1 + 15 * DAY, 4),
    ]
    next_attempts = [e["data"]["object"]["next_payment_attempt"] for e in failed]
    assert next_attempts == [FEB_1 + 3 * DAY, FEB_1 + 8 * DAY, FEB_1 + 15 * DAY, None]
    statuses = [
        e["data"]["object"]["status"]
        for e in of(receiver, "customer.subscription.updated", "customer.subscription.deleted")
    ]
    assert statuses[-2:] == ["past_due", "canceled"]
    [deleted] = of(receiver, "customer.subscription.deleted")
    assert deleted["created"] == FEB_1 + 15 * DAY
    assert deleted["data"]["object"]["ended_at"] == FEB_1 + 15 * DAY
    assert deleted["data"]["object"]["cancellation_details"]["reason"] == "payment_failed"
    assert ended.status == "canceled"
    charges = sim.stripe.v1.charges.list(params={"customer": customer_id, "limit": 100})
    assert [c.status for c in charges.data].count("failed") == 4
    assert charges.data[0].payment_method_details.card.last4 == "0341"


def test_dunning_can_leave_a_subscription_unpaid(make_sim: MakeSim, receiver: Receiver) -> None:
    from billfold.simulator.config import DunningPolicy

    sim = make_sim(dunning=DunningPolicy(retry_after_days=(2,), subscription_status="unpaid"))
    clock_id, customer_id, subscription = on_clock(sim)
    sim.control(f"customers/{customer_id}/fail_next_payment", {"count": 5})

    sim.advance(clock_id, FEB_1 + 3 * DAY)
    after = sim.stripe.v1.subscriptions.retrieve(subscription.id)
    sim.advance(clock_id, MAR_1 + DAY)
    draft = sim.stripe.v1.invoices.list(params={"subscription": subscription.id}).data[0]

    assert after.status == "unpaid"
    assert [
        e["data"]["object"]["attempt_count"] for e in of(receiver, "invoice.payment_failed")
    ] == [1, 2]
    assert of(receiver, "customer.subscription.deleted") == []
    assert draft.status == "draft"  # an unpaid subscription's invoices are not attempted
    assert draft.billing_reason == "subscription_cycle"


def test_a_new_card_recovers_at_the_next_retry(sim: Sim, receiver: Receiver) -> None:
    clock_id, customer_id, subscription = on_clock(sim)
    sim.control(f"customers/{customer_id}/fail_next_payment", {"count": 1})
    sim.advance(clock_id, FEB_1 + DAY)
    past_due = sim.stripe.v1.subscriptions.retrieve(subscription.id)

    sim.stripe.v1.payment_methods.attach("pm_card_mastercard", params={"customer": customer_id})
    sim.advance(clock_id, FEB_1 + 4 * DAY)
    recovered = sim.stripe.v1.subscriptions.retrieve(subscription.id)

    assert past_due.status == "past_due"
    assert recovered.status == "active"
    paid = of(receiver, "invoice.paid")[-1]["data"]["object"]
    assert paid["attempt_count"] == 2
    assert of(receiver, "invoice.paid")[-1]["created"] == FEB_1 + 3 * DAY
    updates = of(receiver, "customer.subscription.updated")
    assert updates[-1]["data"]["previous_attributes"] == {"status": "past_due"}


def test_paying_a_past_due_invoice_brings_the_subscription_back(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id, customer_id, subscription = on_clock(sim)
    sim.stripe.v1.customers.update(
        customer_id,
        params={"invoice_settings": {"default_payment_method": "pm_card_chargeCustomerFail"}},
    )
    sim.advance(clock_id, FEB_1 + DAY)
    invoice_id = sim.stripe.v1.subscriptions.retrieve(subscription.id).latest_invoice

    with pytest.raises(stripe.CardError) as declined:
        sim.stripe.v1.invoices.pay(invoice_id)
    visa = sim.stripe.v1.payment_methods.attach("pm_card_visa", params={"customer": customer_id})
    paid = sim.stripe.v1.invoices.pay(invoice_id, params={"payment_method": visa.id})
    sim.flush()

    assert declined.value.code == "card_declined"
    assert declined.value.http_status == 402
    assert paid.status == "paid"
    assert paid.attempt_count == 3
    assert paid.next_payment_attempt is None
    assert sim.stripe.v1.subscriptions.retrieve(subscription.id).status == "active"
    assert of(receiver, "invoice.paid")[-1]["created"] == FEB_1 + DAY
    assert of(receiver, "customer.subscription.updated")[-1]["data"]["object"]["status"] == "active"


def test_cancel_at_period_end_and_cancel_at_end_the_subscription_when_the_clock_passes(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id = clock(sim).id
    customer_id = customer(sim, clock_id).id
    monthly = price(sim).id
    at_period_end = subscribe(sim, customer_id, monthly)
    at_a_time = subscribe(sim, customer_id, monthly)
    sim.stripe.v1.subscriptions.update(at_period_end.id, params={"cancel_at_period_end": True})
    sim.stripe.v1.subscriptions.update(at_a_time.id, params={"cancel_at": T0 + 10 * DAY})

    sim.advance(clock_id, FEB_1 + DAY)

    deleted = {e["data"]["object"]["id"]: e for e in of(receiver, "customer.subscription.deleted")}
    assert deleted[at_a_time.id]["data"]["object"]["ended_at"] == T0 + 10 * DAY
    assert deleted[at_a_time.id]["created"] == T0 + 10 * DAY
    assert deleted[at_period_end.id]["data"]["object"]["ended_at"] == FEB_1
    assert deleted[at_period_end.id]["data"]["object"]["canceled_at"] == T0
    assert of(receiver, "invoice.paid")[-1]["data"]["object"]["billing_reason"] == (
        "subscription_create"
    )  # neither renewed


def test_trials_warn_three_days_before_and_bill_when_they_end(sim: Sim, receiver: Receiver) -> None:
    clock_id = clock(sim).id
    customer_id = customer(sim, clock_id).id
    trialing = subscribe(sim, customer_id, price(sim).id, trial_period_days=14)
    first = sim.stripe.v1.invoices.retrieve(trialing.latest_invoice)

    sim.advance(clock_id, T0 + 15 * DAY)
    active = sim.stripe.v1.subscriptions.retrieve(trialing.id)

    assert trialing.status == "trialing"
    assert (trialing.trial_start, trialing.trial_end) == (T0, T0 + 14 * DAY)
    assert first.amount_paid == 0
    assert first.status == "paid"
    assert first.lines.data[0].description == "Trial period for Pro"
    assert first.lines.data[0].period.end == T0 + 14 * DAY
    [warning] = of(receiver, "customer.subscription.trial_will_end")
    assert warning["created"] == T0 + 11 * DAY
    assert active.status == "active"
    assert active["items"].data[0].current_period_start == T0 + 14 * DAY
    after_trial = of(receiver, "invoice.paid")[-1]
    assert after_trial["created"] == T0 + 14 * DAY
    assert after_trial["data"]["object"]["billing_reason"] == "subscription_cycle"
    assert after_trial["data"]["object"]["amount_paid"] == 1900
    ended_trial = of(receiver, "customer.subscription.updated")[0]["data"]
    assert ended_trial["previous_attributes"]["status"] == "trialing"


def test_a_trial_without_a_card_pauses_and_resumes_when_asked(sim: Sim, receiver: Receiver) -> None:
    clock_id = clock(sim).id
    customer_id = customer(sim, clock_id, card=None).id
    trialing = subscribe(
        sim,
        customer_id,
        price(sim).id,
        trial_period_days=7,
        trial_settings={"end_behavior": {"missing_payment_method": "pause"}},
    )

    sim.advance(clock_id, T0 + 8 * DAY)
    paused = sim.stripe.v1.subscriptions.retrieve(trialing.id)
    sim.stripe.v1.payment_methods.attach("pm_card_visa", params={"customer": customer_id})
    sim.stripe.v1.customers.update(
        customer_id,
        params={
            "invoice_settings": {
                "default_payment_method": sim.stripe.v1.customers.payment_methods.list(customer_id)
                .data[0]
                .id
            }
        },
    )
    resumed = sim.stripe.v1.subscriptions.resume(trialing.id)
    sim.flush()

    assert paused.status == "paused"
    assert "customer.subscription.paused" in receiver.types()
    assert resumed.status == "active"
    assert resumed["items"].data[0].current_period_start == T0 + 8 * DAY
    assert receiver.types().index("customer.subscription.resumed") > receiver.types().index(
        "customer.subscription.paused"
    )
    assert of(receiver, "invoice.paid")[-1]["data"]["object"]["amount_paid"] == 1900


def test_a_first_payment_that_fails_leaves_it_incomplete_then_expired(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id = clock(sim).id
    customer_id = customer(sim, clock_id, card="pm_card_chargeCustomerFail").id
    incomplete = subscribe(sim, customer_id, price(sim).id)
    invoice = sim.stripe.v1.invoices.retrieve(incomplete.latest_invoice)

    sim.advance(clock_id, T0 + DAY)
    expired = sim.stripe.v1.subscriptions.retrieve(incomplete.id)

    assert incomplete.status == "incomplete"
    assert invoice.status == "open"
    assert invoice.next_payment_attempt is None
    [created] = of(receiver, "customer.subscription.created")
    assert created["data"]["object"]["status"] == "incomplete"
    assert expired.status == "incomplete_expired"
    assert sim.stripe.v1.invoices.retrieve(invoice.id).status == "void"
    assert of(receiver, "invoice.voided")[0]["created"] == T0 + 23 * 60 * 60


def test_pause_collection_keeps_the_status_and_decides_the_renewal_invoice(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id = clock(sim).id
    customer_id = customer(sim, clock_id).id
    monthly = price(sim).id
    drafts = subscribe(sim, customer_id, monthly)
    voids = subscribe(sim, customer_id, monthly)
    sim.stripe.v1.subscriptions.update(
        drafts.id, params={"pause_collection": {"behavior": "keep_as_draft"}}
    )
    sim.stripe.v1.subscriptions.update(
        voids.id,
        params={"pause_collection": {"behavior": "void", "resumes_at": FEB_1 + 5 * DAY}},
    )

    sim.advance(clock_id, FEB_1 + 10 * DAY)
    drafts_now = sim.stripe.v1.subscriptions.retrieve(drafts.id)
    voids_now = sim.stripe.v1.subscriptions.retrieve(voids.id)

    assert drafts_now.status == "active"
    assert drafts_now.pause_collection.behavior == "keep_as_draft"
    latest_draft = sim.stripe.v1.invoices.retrieve(drafts_now.latest_invoice)
    assert latest_draft.status == "draft"
    assert sim.stripe.v1.invoices.retrieve(voids_now.latest_invoice).status == "void"
    assert voids_now.pause_collection is None  # lifted at resumes_at
    assert "customer.subscription.paused" not in receiver.types()
    lifted = [
        e
        for e in of(receiver, "customer.subscription.updated")
        if "pause_collection" in e["data"].get("previous_attributes", {})
        and e["data"]["object"]["pause_collection"] is None
    ]
    assert [e["created"] for e in lifted] == [FEB_1 + 5 * DAY]


def test_same_second_chaos_gives_a_burst_one_created(sim: Sim, receiver: Receiver) -> None:
    sim.control("chaos", {"same_second": True})
    session = sim.session()

    sim.control(f"sessions/{session.id}/pay")
    sim.flush()

    assert len({e["created"] for e in receiver.events}) == 1
    assert len(receiver.events) == 4


def test_the_lead_is_how_far_the_furthest_clock_runs_ahead_of_its_creation(sim: Sim) -> None:
    simulator = sim.app.state.simulator
    assert clocks.lead(simulator) == 0
    now = int(time.time())
    behind = clock(sim, now - 10 * DAY)  # a clock in the past leads nothing
    assert clocks.lead(simulator) == 0
    ahead = clock(sim, now)
    sim.advance(ahead.id, now + 3 * DAY)
    lead = clocks.lead(simulator)
    assert 3 * DAY - 5 <= lead <= 3 * DAY
    sim.advance(behind.id, now - 9 * DAY)
    assert clocks.lead(simulator) == lead

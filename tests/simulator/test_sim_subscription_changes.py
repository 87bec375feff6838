"""Creating subscriptions through the API, changing their plan (prorations), pausing, canceling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from tests.simulator.conftest import Receiver, Sim

MID_JAN = T0 + 15 * DAY  # 16 of January's 31 days left
JANUARY = 31 * DAY


def prorated(amount: int, left: int, whole: int) -> int:
    return (2 * amount * left + whole) // (2 * whole)


def switch(sim: Sim, subscription: Any, new_price: str, **extra: Any) -> stripe.Subscription:
    item = subscription["items"].data[0]
    return sim.stripe.v1.subscriptions.update(
        subscription.id, params={"items": [{"id": item.id, "price": new_price}], **extra}
    )


def test_creating_a_subscription_charges_the_default_card(sim: Sim, receiver: Receiver) -> None:
    customer_id = customer(sim).id
    monthly = price(sim, 1500)

    subscription = subscribe(sim, customer_id, monthly.id, expand=["latest_invoice"])
    sim.flush()

    assert subscription.id.startswith("sub_")
    assert subscription.status == "active"
    assert subscription.customer == customer_id
    invoice = subscription.latest_invoice
    assert invoice.billing_reason == "subscription_create"
    assert invoice.status == "paid"
    assert invoice.amount_paid == 1500
    assert invoice.parent.subscription_details.metadata.to_dict() == {"billfold_account": "user_1"}
    assert invoice.lines.data[0].id.startswith("il_")
    assert invoice.lines.data[0].pricing.price_details.price == monthly.id
    intent_id = invoice.payments.data[0].payment.payment_intent
    intent = sim.stripe.v1.payment_intents.retrieve(intent_id)
    assert intent.status == "succeeded"
    assert intent.description == "Subscription creation"
    charge = sim.stripe.v1.charges.retrieve(intent.latest_charge)
    assert charge.amount == 1500
    assert (
        charge.payment_method
        == sim.stripe.v1.customers.retrieve(customer_id).invoice_settings.default_payment_method
    )
    [created] = of(receiver, "customer.subscription.created")
    assert created["data"]["object"]["status"] == "active"  # as it was when the request ended
    assert types_of(receiver).index("customer.subscription.created") < types_of(receiver).index(
        "invoice.created"
    )
    lines = sim.stripe.v1.invoices.line_items.list(invoice.id)
    assert [line.id for line in lines.data] == [line.id for line in invoice.lines.data]


def test_creating_without_a_card_or_with_error_if_incomplete_is_refused(sim: Sim) -> None:
    no_card = customer(sim, card=None).id
    failing = customer(sim, card="pm_card_chargeCustomerFail").id
    monthly = price(sim).id

    with pytest.raises(stripe.InvalidRequestError) as missing:
        subscribe(sim, no_card, monthly)
    with pytest.raises(stripe.CardError) as declined:
        subscribe(sim, failing, monthly, payment_behavior="error_if_incomplete")
    waiting = subscribe(sim, no_card, monthly, payment_behavior="default_incomplete")

    assert "no attached payment source" in str(missing.value.user_message)
    assert declined.value.code == "card_declined"
    assert sim.stripe.v1.subscriptions.list(params={"customer": failing}).data == []
    assert waiting.status == "incomplete"
    assert sim.stripe.v1.invoices.retrieve(waiting.latest_invoice).attempt_count == 0


def test_bad_parameters_answer_stripes_errors(sim: Sim) -> None:
    customer_id = customer(sim).id
    one_time = sim.stripe.v1.prices.create(
        params={"currency": "usd", "unit_amount": 100, "product_data": {"name": "Pack"}}
    )

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sim.stripe.v1.subscriptions.create(
            params={"customer": customer_id, "items": [{"price": one_time.id}], "bogus": "1"}
        )
    with pytest.raises(stripe.InvalidRequestError) as not_recurring:
        subscribe(sim, customer_id, one_time.id)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sim.stripe.v1.subscriptions.retrieve("sub_nope")

    assert unknown.value.code == "parameter_unknown"
    assert unknown.value.param == "bogus"
    assert not_recurring.value.param == "items[0][price]"
    assert missing.value.code == "resource_missing"
    assert missing.value.http_status == 404


def test_always_invoice_bills_the_prorated_difference_at_once(sim: Sim, receiver: Receiver) -> None:
    clock_id, _customer_id, subscription = on_clock(sim, 1000)
    sim.advance(clock_id, MID_JAN)
    before = len(receiver.events)
    pro = price(sim, 3000, name="Elite")

    switched = switch(sim, subscription, pro.id, proration_behavior="always_invoice")
    sim.flush()

    assert switched["items"].data[0].price.id == pro.id
    assert switched["items"].data[0].id == subscription["items"].data[0].id
    invoice = sim.stripe.v1.invoices.retrieve(switched.latest_invoice)
    assert invoice.billing_reason == "subscription_update"
    assert invoice.status == "paid"
    left = FEB_1 - MID_JAN
    credit, charge = -prorated(1000, left, JANUARY), prorated(3000, left, JANUARY)
    assert [line.amount for line in invoice.lines.data] == [credit, charge]
    assert invoice.amount_paid == credit + charge == 1032
    for line in invoice.lines.data:
        details = line.parent.subscription_item_details
        assert details.proration is True
        assert details.invoice_item.startswith("ii_")
        assert details.subscription == subscription.id
        assert (line.period.start, line.period.end) == (MID_JAN, FEB_1)
    assert invoice.lines.data[0].description.startswith("Unused time on 1 \u00d7 Pro after")
    assert invoice.lines.data[1].description.startswith("Remaining time on 1 \u00d7 Elite after")
    assert types_of(receiver, before, prefixes=("customer.", "invoice")) == [
        "invoiceitem.created",
        "invoiceitem.created",
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    update = of(receiver, "customer.subscription.updated", since=before)[0]["data"]
    assert update["previous_attributes"]["items"]["data"][0]["price"]["id"] != pro.id


def test_create_prorations_wait_for_the_renewal_invoice(sim: Sim, receiver: Receiver) -> None:
    clock_id, customer_id, subscription = on_clock(sim, 1000)
    sim.advance(clock_id, MID_JAN)
    pro = price(sim, 3000, name="Elite")

    switched = switch(sim, subscription, pro.id)
    pending = sim.stripe.v1.invoice_items.list(params={"customer": customer_id, "pending": True})
    sim.advance(clock_id, FEB_1 + DAY)
    renewal = sim.stripe.v1.invoices.retrieve(
        sim.stripe.v1.subscriptions.retrieve(subscription.id).latest_invoice
    )

    assert switched.latest_invoice == subscription.latest_invoice  # nothing billed yet
    assert [i.amount for i in pending.data] == [
        prorated(3000, FEB_1 - MID_JAN, JANUARY),
        -prorated(1000, FEB_1 - MID_JAN, JANUARY),
    ]
    assert all(i.proration for i in pending.data)
    assert renewal.billing_reason == "subscription_cycle"
    amounts = sorted(line.amount for line in renewal.lines.data)
    assert amounts == sorted([3000, *(i.amount for i in pending.data)])
    full = next(line for line in renewal.lines.data if line.amount == 3000)
    assert (full.period.start, full.period.end) == (FEB_1, MAR_1)
    assert full.parent.subscription_item_details.proration is False
    assert renewal.amount_paid == 3000 + sum(i.amount for i in pending.data)


def test_proration_none_changes_the_price_from_the_next_period(sim: Sim) -> None:
    clock_id, customer_id, subscription = on_clock(sim, 1000)
    cheaper = price(sim, 500, name="Lite")

    switch(sim, subscription, cheaper.id, proration_behavior="none")
    pending = sim.stripe.v1.invoice_items.list(params={"customer": customer_id, "pending": True})
    sim.advance(clock_id, FEB_1)
    renewal = sim.stripe.v1.invoices.list(params={"subscription": subscription.id}).data[0]

    assert pending.data == []
    assert renewal.amount_paid == 500


def test_a_downgrade_billed_at_once_leaves_a_credit_for_the_next_invoice(sim: Sim) -> None:
    clock_id, customer_id, subscription = on_clock(sim, 3000)
    sim.advance(clock_id, MID_JAN)
    lite = price(sim, 1000, name="Lite")

    switched = switch(sim, subscription, lite.id, proration_behavior="always_invoice")
    credit_invoice = sim.stripe.v1.invoices.retrieve(switched.latest_invoice)
    credit = credit_invoice.total
    balance = sim.stripe.v1.customers.retrieve(customer_id).balance
    sim.advance(clock_id, FEB_1)
    renewal = sim.stripe.v1.invoices.list(params={"subscription": subscription.id}).data[0]

    assert credit < 0
    assert credit_invoice.amount_due == 0
    assert credit_invoice.status == "paid"
    assert credit_invoice.ending_balance == credit == balance
    assert credit == -prorated(3000, FEB_1 - MID_JAN, JANUARY) + prorated(
        1000, FEB_1 - MID_JAN, JANUARY
    )
    assert renewal.starting_balance == credit
    assert renewal.total == 1000
    left = 1000 + credit  # the credit outweighs a whole Lite month: nothing to pay, some left
    assert left < 0
    assert renewal.amount_due == renewal.amount_paid == 0
    assert renewal.status == "paid"
    assert renewal.ending_balance == left
    assert sim.stripe.v1.customers.retrieve(customer_id).balance == left


def test_an_interval_change_resets_the_cycle_and_bills_the_new_period(sim: Sim) -> None:
    clock_id, _, subscription = on_clock(sim, 1000)
    sim.advance(clock_id, MID_JAN)
    yearly = price(sim, 10000, name="Pro yearly", interval="year")

    switched = switch(sim, subscription, yearly.id)
    invoice = sim.stripe.v1.invoices.retrieve(switched.latest_invoice)

    item = switched["items"].data[0]
    assert switched.billing_cycle_anchor == MID_JAN
    assert item.current_period_start == MID_JAN
    assert item.current_period_end == MID_JAN + 365 * DAY
    assert invoice.billing_reason == "subscription_update"
    assert sorted(line.amount for line in invoice.lines.data) == [
        -prorated(1000, FEB_1 - MID_JAN, JANUARY),
        10000,
    ]


def test_pending_if_incomplete_waits_until_the_invoice_is_paid(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id, customer_id, subscription = on_clock(sim, 1000)
    sim.advance(clock_id, MID_JAN)
    elite = price(sim, 3000, name="Elite")
    sim.control(f"customers/{customer_id}/fail_next_payment", {"count": 1})

    waiting = switch(
        sim,
        subscription,
        elite.id,
        proration_behavior="always_invoice",
        payment_behavior="pending_if_incomplete",
    )
    invoice = sim.stripe.v1.invoices.retrieve(waiting.latest_invoice)
    paid = sim.stripe.v1.invoices.pay(invoice.id)
    applied = sim.stripe.v1.subscriptions.retrieve(subscription.id)
    sim.flush()

    assert waiting.status == "active"  # the subscription itself is in good standing
    assert waiting["items"].data[0].price.id != elite.id
    assert waiting.pending_update.subscription_items[0].price.id == elite.id
    assert waiting.pending_update.expires_at == MID_JAN + 23 * 60 * 60
    assert invoice.status == "open"
    assert paid.status == "paid"
    assert applied.pending_update is None
    assert applied["items"].data[0].price.id == elite.id
    assert types_of(receiver, prefixes=("customer.subscription.pending",)) == [
        "customer.subscription.pending_update_applied"
    ]


def test_an_unpaid_pending_update_expires(sim: Sim, receiver: Receiver) -> None:
    clock_id, customer_id, subscription = on_clock(sim, 1000)
    elite = price(sim, 3000, name="Elite")
    sim.advance(clock_id, MID_JAN)
    sim.control(f"customers/{customer_id}/fail_next_payment", {"count": 1})
    waiting = switch(
        sim,
        subscription,
        elite.id,
        proration_behavior="always_invoice",
        payment_behavior="pending_if_incomplete",
    )

    sim.advance(clock_id, MID_JAN + DAY)
    after = sim.stripe.v1.subscriptions.retrieve(subscription.id)

    assert after.pending_update is None
    assert after["items"].data[0].price.id != elite.id
    assert sim.stripe.v1.invoices.retrieve(waiting.latest_invoice).status == "void"
    [expired] = of(receiver, "customer.subscription.pending_update_expired")
    assert expired["created"] == MID_JAN + 23 * 60 * 60


def test_pending_if_incomplete_refuses_other_changes(sim: Sim) -> None:
    _, _, subscription = on_clock(sim)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        sim.stripe.v1.subscriptions.update(
            subscription.id,
            params={"payment_behavior": "pending_if_incomplete", "metadata": {"a": "b"}},
        )

    assert caught.value.param == "metadata"


def test_cancel_now_can_credit_the_unused_time_on_a_final_invoice(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id, customer_id, subscription = on_clock(sim, 1000)
    sim.advance(clock_id, MID_JAN)

    canceled = sim.stripe.v1.subscriptions.cancel(
        subscription.id, params={"prorate": True, "invoice_now": True}
    )
    sim.flush()

    assert canceled.status == "canceled"
    assert canceled.ended_at == canceled.canceled_at == MID_JAN
    final = sim.stripe.v1.invoices.retrieve(canceled.latest_invoice)
    assert final.total == -prorated(1000, FEB_1 - MID_JAN, JANUARY)
    assert sim.stripe.v1.customers.retrieve(customer_id).balance == final.total
    assert of(receiver, "customer.subscription.deleted")[0]["created"] == MID_JAN
    with pytest.raises(stripe.InvalidRequestError):
        sim.stripe.v1.subscriptions.cancel(subscription.id)


def test_scheduling_and_unscheduling_a_cancellation(sim: Sim, receiver: Receiver) -> None:
    _, _, subscription = on_clock(sim)

    at_end = sim.stripe.v1.subscriptions.update(
        subscription.id, params={"cancel_at_period_end": True}
    )
    kept = sim.stripe.v1.subscriptions.update(
        subscription.id, params={"cancel_at_period_end": False}
    )
    at_time = sim.stripe.v1.subscriptions.update(
        subscription.id, params={"cancel_at": T0 + 5 * DAY}
    )
    cleared = sim.stripe.v1.subscriptions.update(subscription.id, params={"cancel_at": ""})
    with pytest.raises(stripe.InvalidRequestError) as both:
        sim.stripe.v1.subscriptions.update(
            subscription.id, params={"cancel_at": T0 + DAY, "cancel_at_period_end": True}
        )
    sim.flush()

    assert (at_end.cancel_at_period_end, at_end.cancel_at, at_end.canceled_at) == (True, FEB_1, T0)
    assert (kept.cancel_at_period_end, kept.cancel_at, kept.canceled_at) == (False, None, None)
    assert (at_time.cancel_at_period_end, at_time.cancel_at) == (False, T0 + 5 * DAY)
    assert cleared.cancel_at is None
    assert both.value.param == "cancel_at"
    previous = [
        e["data"]["previous_attributes"] for e in of(receiver, "customer.subscription.updated")
    ]
    assert previous[0] == {"cancel_at": None, "cancel_at_period_end": False, "canceled_at": None}
    assert previous[1]["cancel_at_period_end"] is True


def test_pause_and_resume_move_the_status_and_bill_a_new_period(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id, customer_id, subscription = on_clock(sim, 1000)
    sim.advance(clock_id, MID_JAN)

    paused = sim.stripe.v1.subscriptions.pause(subscription.id)
    credit = sim.stripe.v1.invoice_items.list(params={"customer": customer_id, "pending": True})
    sim.advance(clock_id, FEB_1 + 5 * DAY)  # no renewal while paused
    resumed = sim.stripe.v1.subscriptions.resume(subscription.id)
    sim.flush()

    assert paused.status == "paused"
    assert [i.amount for i in credit.data] == [-prorated(1000, FEB_1 - MID_JAN, JANUARY)]
    assert resumed.status == "active"
    assert resumed.billing_cycle_anchor == FEB_1 + 5 * DAY
    invoice = sim.stripe.v1.invoices.retrieve(resumed.latest_invoice)
    assert invoice.amount_paid == 1000 + credit.data[0].amount
    assert [e["type"] for e in of(receiver, "customer.subscription.paused")] == [
        "customer.subscription.paused"
    ]
    [event] = of(receiver, "customer.subscription.resumed")
    assert event["created"] == FEB_1 + 5 * DAY
    with pytest.raises(stripe.InvalidRequestError):
        sim.stripe.v1.subscriptions.resume(subscription.id)


def test_lists_filter_by_customer_status_price_clock_and_created(sim: Sim) -> None:
    clock_id = clock(sim).id
    on_the_clock = customer(sim, clock_id).id
    elsewhere = customer(sim).id
    monthly, yearly = price(sim).id, price(sim, 9000, interval="year").id
    first = subscribe(sim, on_the_clock, monthly)
    second = subscribe(sim, elsewhere, yearly)
    sim.stripe.v1.subscriptions.cancel(first.id)

    def ids(**params: Any) -> list[str]:
        return [s.id for s in sim.stripe.v1.subscriptions.list(params=params).data]

    assert ids() == [second.id]
    assert ids(status="all") == [first.id, second.id]  # newest created first: 2030 on the clock
    assert ids(status="canceled") == [first.id]
    assert ids(status="all", customer=on_the_clock) == [first.id]
    assert ids(status="all", price=yearly) == [second.id]
    assert ids(status="all", test_clock=clock_id) == [first.id]
    assert first.created == T0  # the clock's time, years ahead of the wall clock
    assert ids(status="all", created={"gte": T0}) == [first.id]
    assert ids(status="all", created={"lt": T0}) == [second.id]


def test_error_if_incomplete_refuses_a_change_that_cannot_be_paid(sim: Sim) -> None:
    clock_id, customer_id, subscription = on_clock(sim, 1000)
    sim.advance(clock_id, MID_JAN)
    elite = price(sim, 3000, name="Elite")
    sim.control(f"customers/{customer_id}/fail_next_payment", {"count": 1})

    with pytest.raises(stripe.CardError) as declined:
        switch(
            sim,
            subscription,
            elite.id,
            proration_behavior="always_invoice",
            payment_behavior="error_if_incomplete",
        )
    unchanged = sim.stripe.v1.subscriptions.retrieve(subscription.id)

    assert declined.value.http_status == 402
    assert unchanged["items"].data[0].price.id != elite.id
    assert unchanged.latest_invoice == subscription.latest_invoice


def test_payment_methods_attach_detach_and_refuse_declining_cards(
    sim: Sim, receiver: Receiver
) -> None:
    customer_id = customer(sim, card=None).id

    visa = sim.stripe.v1.payment_methods.attach("pm_card_visa", params={"customer": customer_id})
    with pytest.raises(stripe.CardError) as declined:
        sim.stripe.v1.payment_methods.attach(
            "pm_card_chargeDeclined", params={"customer": customer_id}
        )
    listed = sim.stripe.v1.customers.payment_methods.list(customer_id)
    detached = sim.stripe.v1.payment_methods.detach(visa.id)
    with pytest.raises(stripe.InvalidRequestError) as not_attached:
        sim.stripe.v1.customers.update(
            customer_id, params={"invoice_settings": {"default_payment_method": visa.id}}
        )
    sim.flush()

    assert visa.id.startswith("pm_")
    assert visa.id != "pm_card_visa"
    assert (visa.customer, visa.card.brand, visa.card.last4) == (customer_id, "visa", "4242")
    assert declined.value.code == "card_declined"
    assert [m.id for m in listed.data] == [visa.id]
    assert detached.customer is None
    assert not_attached.value.param == "invoice_settings[default_payment_method]"
    assert types_of(receiver, prefixes=("payment_method.",)) == [
        "payment_method.attached",
        "payment_method.detached",
    ]


def test_prices_list_by_recurring_interval(sim: Sim) -> None:
    monthly, yearly = price(sim), price(sim, 9000, interval="year")

    found = sim.stripe.v1.prices.list(params={"recurring": {"interval": "year"}})
    recurring = sim.stripe.v1.prices.list(params={"type": "recurring"})

    assert [p.id for p in found.data] == [yearly.id]
    assert {p.id for p in recurring.data} == {monthly.id, yearly.id}
    assert yearly.recurring.interval == "year"
    assert yearly.recurring.interval_count == 1


def test_a_trial_can_be_moved_or_ended_now(sim: Sim, receiver: Receiver) -> None:
    clock_id = clock(sim).id
    customer_id = customer(sim, clock_id).id
    trialing = subscribe(sim, customer_id, price(sim, 1000).id, trial_period_days=30)

    moved = sim.stripe.v1.subscriptions.update(trialing.id, params={"trial_end": T0 + 10 * DAY})
    sim.advance(clock_id, T0 + 2 * DAY)
    ended = sim.stripe.v1.subscriptions.update(trialing.id, params={"trial_end": "now"})
    sim.flush()

    assert moved.trial_end == moved.billing_cycle_anchor == T0 + 10 * DAY
    assert moved["items"].data[0].current_period_end == T0 + 10 * DAY
    assert ended.status == "active"
    assert ended.trial_end == T0 + 2 * DAY
    assert ended["items"].data[0].current_period_start == T0 + 2 * DAY
    invoice = sim.stripe.v1.invoices.retrieve(ended.latest_invoice)
    assert (invoice.billing_reason, invoice.amount_paid) == ("subscription_cycle", 1000)
    # ended before its warning was due (3 days before the moved end)
    assert of(receiver, "customer.subscription.trial_will_end") == []


def test_resuming_with_an_unchanged_anchor_prorates_the_rest_of_the_period(sim: Sim) -> None:
    clock_id, customer_id, subscription = on_clock(sim, 1000)
    sim.stripe.v1.subscriptions.pause(
        subscription.id, params={"bill_for": {"unused_time_from": {"type": "none"}}}
    )
    sim.advance(clock_id, MID_JAN)

    resumed = sim.stripe.v1.subscriptions.resume(
        subscription.id,
        params={"billing_cycle_anchor": "unchanged", "proration_behavior": "always_invoice"},
    )
    invoice = sim.stripe.v1.invoices.retrieve(resumed.latest_invoice)

    assert resumed.status == "active"
    assert resumed.billing_cycle_anchor == T0
    assert resumed["items"].data[0].current_period_end == FEB_1
    assert invoice.billing_reason == "subscription_update"
    assert invoice.amount_paid == prorated(1000, FEB_1 - MID_JAN, JANUARY)
    assert customer_id


def test_a_checkout_for_a_clock_customer_lives_at_the_clock_time(sim: Sim) -> None:
    clock_id = clock(sim).id
    customer_id = customer(sim, clock_id, card=None).id
    session = sim.session(
        mode="subscription",
        customer=customer_id,
        line_items=[{"price": price(sim).id, "quantity": 1}],
    )

    paid = sim.control(f"sessions/{session.id}/pay")["session"]
    subscription = sim.stripe.v1.subscriptions.retrieve(paid["subscription"])

    assert subscription.created == T0
    assert subscription.test_clock == clock_id
    assert subscription["items"].data[0].current_period_end == FEB_1


def test_a_retried_create_with_the_same_idempotency_key_subscribes_once(
    sim: Sim, receiver: Receiver
) -> None:
    customer_id = customer(sim).id
    params = {"customer": customer_id, "items": [{"price": price(sim).id}]}

    first = sim.stripe.v1.subscriptions.create(params=params, options={"idempotency_key": "s-1"})
    second = sim.stripe.v1.subscriptions.create(params=params, options={"idempotency_key": "s-1"})
    sim.flush()

    assert first.id == second.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(sim.stripe.v1.subscriptions.list(params={"customer": customer_id}).data) == 1
    # One event for this customer's one subscription (a delivery of an earlier test's may land
    # after the reset; a redelivery of the same event is Stripe's at-least-once, not a second).
    created = [
        e
        for e in of(receiver, "customer.subscription.created")
        if e["data"]["object"]["customer"] == customer_id
    ]
    assert len({e["id"] for e in created}) == 1
    assert created[0]["request"]["idempotency_key"] == "s-1"

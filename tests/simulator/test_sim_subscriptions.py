"""Subscription checkout, renewals paid and failed, and cancellation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import stripe

if TYPE_CHECKING:
    from tests.simulator.conftest import Receiver, Sim


def subscribe(sim: Sim, lookup_key: str = "pro_monthly", **params: Any) -> dict[str, Any]:
    price = sim.stripe.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1900,
            "product_data": {"name": "Pro"},
            "recurring": {"interval": "month"},
            "lookup_key": lookup_key,
        }
    )
    settings: dict[str, Any] = {
        "subscription_data": {"metadata": {"plan": "pro"}},
        "customer_email": "sub@example.com",
        **params,
    }
    session = sim.session(
        mode="subscription", line_items=[{"price": price.id, "quantity": 1}], **settings
    )
    paid: dict[str, Any] = sim.control(f"sessions/{session.id}/pay")["session"]
    return paid


def test_a_subscription_checkout_makes_customer_subscription_and_paid_invoice(
    sim: Sim, receiver: Receiver
) -> None:
    session = subscribe(sim)
    sim.flush()

    assert session["mode"] == "subscription"
    assert session["payment_status"] == "paid"
    assert session["customer"].startswith("cus_")
    subscription = sim.stripe.v1.subscriptions.retrieve(session["subscription"])
    assert subscription.status == "active"
    assert subscription.customer == session["customer"]
    assert subscription.metadata.to_dict() == {"plan": "pro"}
    item = subscription["items"].data[0]
    assert item.price.lookup_key == "pro_monthly"
    assert item.current_period_end > item.current_period_start
    invoice = sim.stripe.v1.invoices.retrieve(session["invoice"])
    assert invoice.status == "paid"
    assert invoice.amount_paid == 1900
    assert invoice.billing_reason == "subscription_create"
    assert invoice.parent.subscription_details.subscription == subscription.id
    assert invoice.lines.data[0].pricing.price_details.price == item.price.id
    types = receiver.types()
    for expected in (
        "customer.created",
        "customer.subscription.created",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ):
        assert expected in types
    assert types[-1] == "checkout.session.completed"
    assert sim.stripe.v1.customers.retrieve(session["customer"]).email == "sub@example.com"


def test_renewals_bill_the_next_period_and_a_failure_goes_past_due(
    sim: Sim, receiver: Receiver
) -> None:
    session = subscribe(sim)
    before = sim.stripe.v1.subscriptions.retrieve(session["subscription"])

    renewed = sim.control(f"subscriptions/{session['subscription']}/renew", {"outcome": "paid"})
    failed = sim.control(f"subscriptions/{session['subscription']}/renew", {"outcome": "failed"})
    sim.flush()

    period = renewed["items"]["data"][0]
    old_period = before["items"].data[0]
    assert period["current_period_start"] == old_period.current_period_end
    cycle = [e for e in receiver.of_type("invoice.paid") if e["data"]["object"]["billing_reason"]]
    assert cycle[-1]["data"]["object"]["billing_reason"] == "subscription_cycle"
    assert failed["status"] == "past_due"
    [payment_failed] = receiver.of_type("invoice.payment_failed")
    assert payment_failed["data"]["object"]["status"] == "open"
    updates = receiver.of_type("customer.subscription.updated")
    assert updates[-1]["data"]["previous_attributes"]["status"] == "active"
    listed = sim.stripe.v1.invoices.list(params={"subscription": session["subscription"]})
    assert [i.billing_reason for i in listed.data] == [
        "subscription_cycle",
        "subscription_cycle",
        "subscription_create",
    ]


def test_cancel_now_or_at_the_period_end(sim: Sim, receiver: Receiver) -> None:
    now_session, later_session = subscribe(sim, "now"), subscribe(sim, "later")

    canceled = sim.stripe.v1.subscriptions.cancel(now_session["subscription"])
    updated = sim.stripe.v1.subscriptions.update(
        later_session["subscription"], params={"cancel_at_period_end": True}
    )
    ended = sim.control(f"subscriptions/{later_session['subscription']}/renew")
    sim.flush()

    assert canceled.status == "canceled"
    assert updated.cancel_at_period_end is True
    assert ended["status"] == "canceled"
    deleted = receiver.of_type("customer.subscription.deleted")
    assert [e["data"]["object"]["id"] for e in deleted] == [
        now_session["subscription"],
        later_session["subscription"],
    ]
    with pytest.raises(stripe.InvalidRequestError):
        sim.stripe.v1.subscriptions.cancel(now_session["subscription"])
    active = sim.stripe.v1.subscriptions.list()
    everything = sim.stripe.v1.subscriptions.list(params={"status": "all"})
    assert active.data == []
    assert len(everything.data) == 2


def test_subscription_mode_needs_recurring_prices(sim: Sim) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sim.session(mode="subscription")

    assert caught.value.param == "line_items[0][price]"


def test_a_checkout_subscription_keeps_the_card_for_its_renewals(
    sim: Sim, receiver: Receiver
) -> None:
    session = subscribe(sim)
    sim.flush()

    subscription = sim.stripe.v1.subscriptions.retrieve(session["subscription"])
    method = sim.stripe.v1.payment_methods.retrieve(subscription.default_payment_method)

    assert method.customer == session["customer"]
    assert method.card.last4 == "4242"
    assert "payment_method.attached" in receiver.types()
    [created] = receiver.of_type("customer.subscription.created")
    assert created["data"]["object"]["status"] == "active"


def test_a_trial_checkout_needs_no_payment_and_starts_trialing(
    sim: Sim, receiver: Receiver
) -> None:
    session = subscribe(sim, subscription_data={"trial_period_days": 7, "metadata": {"a": "b"}})
    sim.flush()

    subscription = sim.stripe.v1.subscriptions.retrieve(session["subscription"])
    invoice = sim.stripe.v1.invoices.retrieve(session["invoice"])
    created = sim.stripe.v1.checkout.sessions.retrieve(session["id"])

    assert session["payment_status"] == "no_payment_required"
    assert created.amount_total == 0
    assert subscription.status == "trialing"
    assert subscription.trial_end == subscription.trial_start + 7 * 24 * 60 * 60
    assert subscription.metadata.to_dict() == {"a": "b"}
    assert invoice.amount_paid == 0
    assert invoice.status == "paid"
    assert invoice.billing_reason == "subscription_create"
    types = receiver.types()
    assert "invoice.paid" in types
    assert "invoice.payment_succeeded" in types
    assert "charge.succeeded" not in types
    page = sim.http.get(f"{sim.url}/pay/{session['id']}")
    assert "nothing to pay today" in page.text

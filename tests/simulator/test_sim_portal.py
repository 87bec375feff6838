"""The customer portal: a session through the SDK, then the hosted page driven by form posts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import stripe
from tests.simulator.billing_support import FEB_1, clock, customer, of, price, subscribe

if TYPE_CHECKING:
    from tests.simulator.conftest import Receiver, Sim


def portal(sim: Sim) -> tuple[stripe.billing_portal.Session, str, str, str]:
    """A customer on a clock with a Pro subscription, an Elite price, and a portal session."""
    customer_id = customer(sim, clock(sim).id).id
    pro = price(sim, 1000, name="Pro", nickname="Pro monthly")
    elite = price(sim, 3000, name="Elite", nickname="Elite monthly")
    subscription = subscribe(sim, customer_id, pro.id)
    session = sim.stripe.v1.billing_portal.sessions.create(
        params={"customer": customer_id, "return_url": "https://shop.example/account"}
    )
    return session, subscription.id, elite.id, customer_id


def test_a_portal_session_points_at_the_hosted_page(sim: Sim) -> None:
    session, subscription_id, elite_id, customer_id = portal(sim)

    page = sim.http.get(session.url)

    assert session.id.startswith("bps_")
    assert session.object == "billing_portal.session"
    assert session.customer == customer_id
    assert session.return_url == "https://shop.example/account"
    assert session.url == f"{sim.url}/portal/{session.id}"
    assert page.status_code == 200
    assert "Pro monthly" in page.text
    assert "$10.00" in page.text
    assert f'value="{elite_id}"' in page.text
    assert 'href="https://shop.example/account"' in page.text
    assert "<script" not in page.text
    assert sim.http.get(f"{sim.url}/portal/bps_nope").status_code == 404
    with pytest.raises(stripe.InvalidRequestError):
        sim.stripe.v1.billing_portal.sessions.create(params={"customer": "cus_nope"})
    assert subscription_id


def test_switching_plan_in_the_portal_updates_the_subscription(
    sim: Sim, receiver: Receiver
) -> None:
    session, subscription_id, elite_id, customer_id = portal(sim)

    answer = sim.http.post(
        session.url, data={"action": "switch", "subscription": subscription_id, "price": elite_id}
    )
    sim.flush()

    assert answer.status_code == 200
    assert "Your plan was changed." in answer.text
    subscription = sim.stripe.v1.subscriptions.retrieve(subscription_id)
    assert subscription["items"].data[0].price.id == elite_id
    [update] = of(receiver, "customer.subscription.updated")
    assert update["request"]["id"] is None  # the portal, not an API request
    pending = sim.stripe.v1.invoice_items.list(params={"customer": customer_id, "pending": True})
    assert len(pending.data) == 2  # create_prorations, the portal's configured behaviour


def test_canceling_in_the_portal_uses_cancel_at_and_can_be_undone(
    sim: Sim, receiver: Receiver
) -> None:
    session, subscription_id, _, _ = portal(sim)

    canceled = sim.http.post(
        session.url,
        data={"action": "cancel", "subscription": subscription_id, "feedback": "too_expensive"},
    )
    scheduled = sim.stripe.v1.subscriptions.retrieve(subscription_id)
    kept = sim.http.post(session.url, data={"action": "keep", "subscription": subscription_id})
    sim.flush()

    assert "canceled at the end of the period" in canceled.text
    assert scheduled.cancel_at == FEB_1
    assert scheduled.cancel_at_period_end is False
    assert scheduled.cancellation_details.feedback == "too_expensive"
    assert "Cancels on February 1, 2030" in canceled.text
    assert kept.status_code == 200
    assert sim.stripe.v1.subscriptions.retrieve(subscription_id).cancel_at is None
    assert len(of(receiver, "customer.subscription.updated")) == 2


def test_a_new_card_from_the_portal_is_used_for_the_subscription(sim: Sim) -> None:
    session, subscription_id, _, customer_id = portal(sim)

    answer = sim.http.post(session.url, data={"action": "card", "card": "pm_card_mastercard"})

    customer_now = sim.stripe.v1.customers.retrieve(customer_id)
    method = sim.stripe.v1.payment_methods.retrieve(
        customer_now.invoice_settings.default_payment_method
    )
    assert method.card.brand == "mastercard"
    assert "Mastercard ending 4444" in answer.text
    assert subscription_id


def test_a_bad_portal_action_shows_an_error(sim: Sim) -> None:
    session, subscription_id, _, _ = portal(sim)

    answer = sim.http.post(
        session.url, data={"action": "switch", "subscription": subscription_id, "price": "nope"}
    )

    assert answer.status_code == 400
    assert "not available" in answer.text

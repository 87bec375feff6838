"""One model, two shapes: basil-or-later by default, 2024-06-20 when the account or request asks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import stripe
from tests.simulator.billing_support import DAY, FEB_1, MAR_1, T0, of, on_clock, price
from tests.simulator.conftest import API_KEY

if TYPE_CHECKING:
    from tests.simulator.conftest import MakeSim, Receiver, Sim

OLD = "2024-06-20"


@pytest.fixture
def old_client(sim: Sim) -> Iterator[stripe.StripeClient]:
    """An SDK client pinned to 2024-06-20, as an account on that version would be."""
    http_client = stripe.RequestsClient()
    yield stripe.StripeClient(
        API_KEY,
        base_addresses={"api": sim.url},
        http_client=http_client,
        max_network_retries=0,
        stripe_version=OLD,
    )
    http_client.close()


def renewal_and_switch(sim: Sim) -> tuple[str, str]:
    """A monthly subscription on a clock, renewed once, then switched with a proration invoice."""
    clock_id, _, subscription = on_clock(sim, 1000)
    sim.advance(clock_id, FEB_1 + DAY)
    elite = price(sim, 3000, name="Elite")
    item = subscription["items"].data[0]
    sim.stripe.v1.subscriptions.update(
        subscription.id,
        params={
            "items": [{"id": item.id, "price": elite.id}],
            "proration_behavior": "always_invoice",
        },
    )
    sim.flush()
    return subscription.id, item.id


def test_events_are_basil_shaped_by_default(sim: Sim, receiver: Receiver) -> None:
    subscription_id, item_id = renewal_and_switch(sim)

    renewal = next(
        e
        for e in of(receiver, "invoice.paid")
        if e["data"]["object"]["billing_reason"] == "subscription_cycle"
    )
    update = of(receiver, "invoice.paid")[-1]["data"]["object"]
    updated = of(receiver, "customer.subscription.updated")[0]["data"]["object"]

    assert renewal["api_version"] == "2026-10-28.endive"
    invoice = renewal["data"]["object"]
    for gone in ("charge", "payment_intent", "paid", "subscription_details"):
        assert gone not in invoice
    assert invoice["subscription"] is None  # Stripe's own example still carries it, empty
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription_id
    assert invoice["parent"]["subscription_details"]["metadata"] == {"billfold_account": "user_1"}
    assert invoice["payments"]["data"][0]["payment"]["type"] == "payment_intent"
    line = invoice["lines"]["data"][0]
    assert isinstance(line["pricing"]["price_details"]["price"], str)
    assert line["parent"]["subscription_item_details"]["subscription_item"] == item_id
    assert "type" not in line
    assert "current_period_end" not in updated
    assert updated["items"]["data"][0]["current_period_end"] == MAR_1
    assert {
        li["parent"]["subscription_item_details"]["proration"] for li in update["lines"]["data"]
    } == {True}


def test_an_account_on_2024_06_20_gets_the_old_shapes(
    make_sim: MakeSim, receiver: Receiver
) -> None:
    sim = make_sim(api_version=OLD)
    subscription_id, item_id = renewal_and_switch(sim)

    renewal = next(
        e
        for e in of(receiver, "invoice.paid")
        if e["data"]["object"]["billing_reason"] == "subscription_cycle"
    )
    invoice = renewal["data"]["object"]
    update = of(receiver, "invoice.paid")[-1]["data"]["object"]
    updated = of(receiver, "customer.subscription.updated")[0]["data"]

    assert renewal["api_version"] == OLD
    assert invoice["subscription"] == subscription_id
    assert invoice["subscription_details"] == {"metadata": {"billfold_account": "user_1"}}
    assert invoice["paid"] is True
    assert invoice["payment_intent"].startswith("pi_")
    assert invoice["charge"].startswith("ch_")
    assert "parent" not in invoice
    assert "payments" not in invoice
    line = invoice["lines"]["data"][0]
    assert line["type"] == "subscription"
    assert line["price"]["object"] == "price"
    assert line["price"]["unit_amount"] == 1000
    assert line["plan"]["object"] == "plan"
    assert line["plan"]["interval"] == "month"
    assert (line["subscription"], line["subscription_item"]) == (subscription_id, item_id)
    assert line["proration"] is False
    assert line["period"] == {"start": FEB_1, "end": MAR_1}
    assert "pricing" not in line
    assert {li["type"] for li in update["lines"]["data"]} == {"invoiceitem"}
    assert {li["proration"] for li in update["lines"]["data"]} == {True}
    subscription = updated["object"]
    assert (subscription["current_period_start"], subscription["current_period_end"]) == (
        FEB_1,
        MAR_1,
    )
    assert "current_period_end" not in subscription["items"]["data"][0]
    assert updated["previous_attributes"]["current_period_end"] == FEB_1
    intent = of(receiver, "payment_intent.succeeded")[-1]["data"]["object"]
    assert intent["invoice"] == update["id"]
    charge = of(receiver, "charge.succeeded")[-1]["data"]["object"]
    assert charge["invoice"] == update["id"]


def test_a_request_picks_its_version_with_stripe_version(
    sim: Sim, old_client: stripe.StripeClient
) -> None:
    clock_id, _, subscription = on_clock(sim)

    new = sim.stripe.v1.subscriptions.retrieve(
        subscription.id, params={"expand": ["latest_invoice"]}
    )
    old = old_client.v1.subscriptions.retrieve(
        subscription.id, params={"expand": ["latest_invoice"]}
    )
    listed = old_client.v1.invoices.list(params={"subscription": subscription.id})

    assert "current_period_end" not in new
    assert new.latest_invoice.parent.subscription_details.subscription == subscription.id
    assert old.current_period_start == T0
    assert old.current_period_end == FEB_1
    assert old.latest_invoice.subscription == subscription.id
    assert old.latest_invoice.paid is True
    assert listed.data[0].lines.data[0].price.id == subscription["items"].data[0].price.id
    assert clock_id


def test_an_unknown_version_is_refused(sim: Sim) -> None:
    response = sim.http.get(
        f"{sim.url}/v1/customers",
        headers={"Authorization": f"Bearer {API_KEY}", "Stripe-Version": "yesterday"},
    )

    assert response.status_code == 400
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "Invalid Stripe API version" in error["message"]


def test_the_configured_version_must_look_like_one() -> None:
    from billfold.simulator import SimulatorConfig

    with pytest.raises(ValueError, match="api_version"):
        SimulatorConfig(api_version="latest")


def test_events_keep_the_version_they_were_written_in(
    sim: Sim, old_client: stripe.StripeClient
) -> None:
    on_clock(sim)

    event = old_client.v1.events.list(params={"type": "invoice.paid"}).data[0]

    assert event.api_version == "2026-10-28.endive"
    assert "parent" in event.data.object
    assert "paid" not in event.data.object

"""After the payment: refunds through the API, disputes through the control routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import stripe

if TYPE_CHECKING:
    from tests.simulator.conftest import Receiver, Sim


def paid_intent(sim: Sim, amount: int = 1000) -> Any:
    session = sim.session(
        line_items=[
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": amount,
                    "product_data": {"name": "Pack"},
                },
            }
        ]
    )
    paid = sim.control(f"sessions/{session.id}/pay")
    return sim.stripe.v1.payment_intents.retrieve(paid["session"]["payment_intent"])


def test_a_partial_then_a_full_refund(sim: Sim, receiver: Receiver) -> None:
    intent = paid_intent(sim)

    partial = sim.stripe.v1.refunds.create(
        params={"charge": intent.latest_charge, "amount": 300, "metadata": {"why": "unused"}}
    )
    rest = sim.stripe.v1.refunds.create(params={"payment_intent": intent.id})
    sim.flush()

    assert partial.id.startswith("re_")
    assert partial.amount == 300
    assert partial.status == "succeeded"
    assert partial.payment_intent == intent.id
    assert rest.amount == 700
    charge = sim.stripe.v1.charges.retrieve(intent.latest_charge)
    assert charge.amount_refunded == 1000
    assert charge.refunded is True
    assert [r.id for r in charge.refunds.data] == [rest.id, partial.id]
    refunded = receiver.of_type("charge.refunded")
    assert [e["data"]["object"]["amount_refunded"] for e in refunded] == [300, 1000]
    assert [e["data"]["object"]["refunded"] for e in refunded] == [False, True]
    assert refunded[0]["data"]["previous_attributes"]["amount_refunded"] == 0
    assert refunded[1]["data"]["previous_attributes"]["refunded"] is False
    assert refunded[1]["data"]["object"]["refunds"]["data"][0]["id"] == rest.id
    created = receiver.of_type("refund.created")
    assert [e["data"]["object"]["id"] for e in created] == [partial.id, rest.id]
    assert refunded[0]["request"]["id"] is not None  # caused by an API request
    assert sim.stripe.v1.refunds.retrieve(partial.id).metadata.to_dict() == {"why": "unused"}


def test_refunds_that_stripe_refuses(sim: Sim) -> None:
    intent = paid_intent(sim)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        sim.stripe.v1.refunds.create(params={"charge": intent.latest_charge, "amount": 1001})
    sim.stripe.v1.refunds.create(params={"charge": intent.latest_charge})
    with pytest.raises(stripe.InvalidRequestError) as twice:
        sim.stripe.v1.refunds.create(params={"charge": intent.latest_charge})
    with pytest.raises(stripe.InvalidRequestError) as neither:
        sim.stripe.v1.refunds.create(params={})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sim.stripe.v1.refunds.create(params={"charge": "ch_unknown"})

    assert too_much.value.param == "amount"
    assert twice.value.code == "charge_already_refunded"
    assert neither.value.code == "parameter_missing"
    assert unknown.value.code == "resource_missing"


def test_a_dispute_won(sim: Sim, receiver: Receiver) -> None:
    intent = paid_intent(sim)

    dispute = sim.control("disputes", {"payment_intent": intent.id, "reason": "fraudulent"})
    closed = sim.control(f"disputes/{dispute['id']}/close", {"status": "won"})
    sim.flush()

    assert dispute["id"].startswith("du_")
    assert dispute["amount"] == 1000
    assert dispute["charge"] == intent.latest_charge
    assert dispute["status"] == "needs_response"
    assert closed["status"] == "won"
    assert sim.stripe.v1.charges.retrieve(intent.latest_charge).disputed is True
    assert receiver.of_type("charge.dispute.created")[0]["data"]["object"]["id"] == dispute["id"]
    [closing] = receiver.of_type("charge.dispute.closed")
    assert closing["data"]["object"]["status"] == "won"
    assert closing["data"]["previous_attributes"] == {"status": "needs_response"}
    assert sim.stripe.v1.disputes.retrieve(dispute["id"]).status == "won"


def test_a_partial_dispute_lost_and_what_cannot_be_done_after(sim: Sim, receiver: Receiver) -> None:
    intent = paid_intent(sim)
    dispute = sim.control("disputes", {"charge": intent.latest_charge, "amount": 400})

    sim.control(f"disputes/{dispute['id']}/close", {"status": "lost"})
    again = sim.http.post(f"{sim.url}/_sim/disputes/{dispute['id']}/close", json={"status": "won"})
    second = sim.http.post(f"{sim.url}/_sim/disputes", json={"charge": intent.latest_charge})
    with pytest.raises(stripe.InvalidRequestError) as refund:
        sim.stripe.v1.refunds.create(params={"charge": intent.latest_charge})
    sim.flush()

    assert dispute["amount"] == 400
    assert receiver.of_type("charge.dispute.closed")[0]["data"]["object"]["status"] == "lost"
    assert again.status_code == 400
    assert second.status_code == 400
    assert refund.value.code == "charge_disputed"

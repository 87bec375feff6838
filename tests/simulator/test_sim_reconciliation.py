"""What reconciliation reads: refunds (also failing ones) of invoice payments, disputes, charges,
sessions and invoices, paged with ``created[gte]`` and ``starting_after``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import stripe
from tests.simulator.billing_support import DAY, T0, customer, of, on_clock, price, subscribe

if TYPE_CHECKING:
    from tests.simulator.conftest import MakeSim, Receiver, Sim, WaitUntil


def invoice_payment(sim: Sim, card: str = "pm_card_visa", amount: int = 2000) -> dict[str, Any]:
    """A paid subscription invoice and the ids of its payment."""
    customer_id = customer(sim, card=card).id
    subscription = subscribe(sim, customer_id, price(sim, amount).id)
    invoice = sim.stripe.v1.invoices.retrieve(subscription.latest_invoice)
    intent_id = invoice.payments.data[0].payment.payment_intent
    intent = sim.stripe.v1.payment_intents.retrieve(intent_id)
    return {"invoice": invoice.id, "intent": intent_id, "charge": intent.latest_charge}


def test_an_invoice_payment_is_refunded_through_its_payment_intent(
    sim: Sim, receiver: Receiver
) -> None:
    paid = invoice_payment(sim)

    refund = sim.stripe.v1.refunds.create(params={"payment_intent": paid["intent"], "amount": 500})
    sim.flush()

    assert refund.charge == paid["charge"]
    assert refund.status == "succeeded"
    assert sim.stripe.v1.charges.retrieve(paid["charge"]).amount_refunded == 500
    [refunded] = of(receiver, "charge.refunded")
    assert refunded["data"]["object"]["payment_intent"] == paid["intent"]
    assert of(receiver, "refund.created")[0]["data"]["object"]["id"] == refund.id
    assert sim.stripe.v1.invoices.retrieve(paid["invoice"]).amount_paid == 2000


def test_a_refund_that_fails_later_gives_the_amount_back_to_the_charge(
    sim: Sim, receiver: Receiver
) -> None:
    paid = invoice_payment(sim)
    refund = sim.stripe.v1.refunds.create(params={"charge": paid["charge"]})

    failed = sim.control(f"refunds/{refund.id}/fail", {"failure_reason": "lost_or_stolen_card"})
    again = sim.http.post(f"{sim.url}/_sim/refunds/{refund.id}/fail", json={})
    sim.flush()

    assert failed["status"] == "failed"
    assert failed["failure_reason"] == "lost_or_stolen_card"
    assert again.status_code == 400
    charge = sim.stripe.v1.charges.retrieve(paid["charge"])
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert charge.refunds.data[0].status == "failed"
    tail = [e["type"] for e in receiver.events if e["type"].startswith(("refund.", "charge.ref"))]
    assert tail == [
        "charge.refunded",
        "refund.created",
        "charge.refund.updated",
        "refund.updated",
        "refund.failed",
    ]
    [updated] = of(receiver, "refund.updated")
    assert updated["data"]["previous_attributes"]["status"] == "succeeded"
    assert updated["data"]["object"]["status"] == "failed"
    assert sim.stripe.v1.refunds.retrieve(refund.id).status == "failed"


def test_a_refund_fail_card_fails_its_refunds_by_itself(
    make_sim: MakeSim, receiver: Receiver, wait_until: WaitUntil
) -> None:
    sim = make_sim(async_settle_seconds=0.05)
    paid = invoice_payment(sim, card="pm_card_refundFail")

    refund = sim.stripe.v1.refunds.create(params={"charge": paid["charge"]})

    assert refund.status == "succeeded"
    wait_until(lambda: sim.stripe.v1.refunds.retrieve(refund.id).status == "failed")
    sim.flush()
    assert "refund.failed" in receiver.types()


def test_refund_metadata_updates_emit_refund_updated(sim: Sim, receiver: Receiver) -> None:
    paid = invoice_payment(sim)
    refund = sim.stripe.v1.refunds.create(params={"charge": paid["charge"]})

    updated = sim.stripe.v1.refunds.update(refund.id, params={"metadata": {"ticket": "42"}})
    sim.flush()

    assert updated.metadata.to_dict() == {"ticket": "42"}
    assert [e["type"] for e in receiver.events[-2:]] == ["charge.refund.updated", "refund.updated"]


def test_refunds_disputes_and_charges_list_by_owner_and_created(sim: Sim) -> None:
    first, second = invoice_payment(sim), invoice_payment(sim, amount=3000)
    one = sim.stripe.v1.refunds.create(params={"charge": first["charge"], "amount": 100})
    two = sim.stripe.v1.refunds.create(params={"payment_intent": second["intent"], "amount": 200})
    dispute = sim.control("disputes", {"charge": second["charge"]})

    by_charge = sim.stripe.v1.refunds.list(params={"charge": first["charge"]})
    by_intent = sim.stripe.v1.refunds.list(params={"payment_intent": second["intent"]})
    since = sim.stripe.v1.refunds.list(params={"created": {"gte": one.created}, "limit": 1})
    after = sim.stripe.v1.refunds.list(
        params={"created": {"gte": one.created}, "limit": 1, "starting_after": since.data[0].id}
    )
    disputes = sim.stripe.v1.disputes.list(params={"charge": second["charge"]})
    charges = sim.stripe.v1.charges.list(params={"created": {"gte": one.created - 60}})

    assert [r.id for r in by_charge.data] == [one.id]
    assert [r.id for r in by_intent.data] == [two.id]
    assert [since.data[0].id, after.data[0].id] == [two.id, one.id]
    assert since.has_more is True
    assert after.has_more is False
    assert [d.id for d in disputes.data] == [dispute["id"]]
    assert {c.id for c in charges.data} == {first["charge"], second["charge"]}


def test_a_dispute_of_a_clock_customer_happens_at_the_clock_time(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id, customer_id, subscription = on_clock(sim)
    sim.advance(clock_id, T0 + 3 * DAY)
    invoice = sim.stripe.v1.invoices.retrieve(subscription.latest_invoice)
    intent = invoice.payments.data[0].payment.payment_intent

    dispute = sim.control("disputes", {"payment_intent": intent})
    sim.control(f"disputes/{dispute['id']}/close", {"status": "won"})
    sim.flush()

    assert dispute["created"] == T0 + 3 * DAY
    assert [e["created"] for e in of(receiver, "charge.dispute.funds_reinstated")] == [T0 + 3 * DAY]
    assert customer_id


def test_checkout_sessions_list_by_status_and_created(sim: Sim) -> None:
    open_one = sim.session()
    paid_one = sim.session()
    sim.control(f"sessions/{paid_one.id}/pay")

    complete = sim.stripe.v1.checkout.sessions.list(params={"status": "complete"})
    recent = sim.stripe.v1.checkout.sessions.list(
        params={"created": {"gte": open_one.created}, "limit": 100}
    )
    with pytest.raises(stripe.InvalidRequestError):
        sim.stripe.v1.checkout.sessions.list(params={"created": {"since": 1}})

    assert [s.id for s in complete.data] == [paid_one.id]
    assert [s.id for s in recent.data] == [paid_one.id, open_one.id]

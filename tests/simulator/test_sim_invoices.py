"""Invoices through the SDK: one-off invoices, their transitions, lines, payments and lists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import stripe
from tests.simulator.billing_support import DAY, T0, clock, customer, of, on_clock, types_of

if TYPE_CHECKING:
    from tests.simulator.conftest import Receiver, Sim


def one_off(sim: Sim, customer_id: str, *amounts: int, **extra: Any) -> stripe.Invoice:
    """Pending items for ``amounts``, then a draft invoice that takes them in."""
    for amount in amounts:
        sim.stripe.v1.invoice_items.create(
            params={
                "customer": customer_id,
                "amount": amount,
                "currency": "usd",
                "description": f"Credits x{amount}",
            }
        )
    return sim.stripe.v1.invoices.create(
        params={
            "customer": customer_id,
            "pending_invoice_items_behavior": "include",
            "metadata": {"billfold_account": "user_7", "billfold_package": "starter"},
            **extra,
        }
    )


def test_a_one_off_invoice_is_drafted_finalized_and_paid(sim: Sim, receiver: Receiver) -> None:
    customer_id = customer(sim).id

    draft = one_off(sim, customer_id, 499, 1000)
    finalized = sim.stripe.v1.invoices.finalize_invoice(draft.id)
    paid = sim.stripe.v1.invoices.pay(draft.id)
    sim.flush()

    assert draft.status == "draft"
    assert draft.billing_reason == "manual"
    assert draft.parent is None
    assert draft.metadata.to_dict() == {"billfold_account": "user_7", "billfold_package": "starter"}
    assert draft.total == 1499
    assert draft.number is None
    assert finalized.status == "open"
    assert finalized.number.endswith("-0001")
    assert paid.status == "paid"
    assert paid.amount_paid == 1499
    assert paid.status_transitions.paid_at is not None
    lines = paid.lines.data
    assert [line.amount for line in lines] == [499, 1000]
    assert [line.id for line in lines] == [line.id for line in draft.lines.data]  # stable
    assert lines[0].parent.type == "invoice_item_details"
    assert lines[0].parent.invoice_item_details.invoice_item.startswith("ii_")
    assert types_of(receiver, prefixes=("invoice.",)) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    [paid_event] = of(receiver, "invoice.paid")
    assert paid_event["data"]["object"]["metadata"]["billfold_package"] == "starter"
    assert paid_event["data"]["object"]["parent"] is None
    payment = sim.stripe.v1.invoice_payments.list(params={"invoice": paid.id}).data[0]
    assert payment.status == "paid"
    assert payment.amount_paid == 1499
    assert payment.payment.payment_intent == paid.payments.data[0].payment.payment_intent


def test_items_can_be_added_to_a_draft_and_the_draft_deleted(sim: Sim) -> None:
    customer_id = customer(sim).id
    draft = sim.stripe.v1.invoices.create(params={"customer": customer_id})
    item = sim.stripe.v1.invoice_items.create(
        params={"customer": customer_id, "amount": 250, "currency": "usd", "invoice": draft.id}
    )
    with_item = sim.stripe.v1.invoices.retrieve(draft.id)

    deleted = sim.stripe.v1.invoices.delete(draft.id)

    assert draft.total == 0
    assert with_item.total == 250
    assert item.invoice == draft.id
    assert deleted.deleted is True
    assert sim.stripe.v1.invoice_items.retrieve(item.id).invoice is None


def test_finalized_invoices_can_be_voided_or_marked_uncollectible(
    sim: Sim, receiver: Receiver
) -> None:
    customer_id = customer(sim).id
    to_void = one_off(sim, customer_id, 700)
    to_forget = one_off(sim, customer_id, 800)
    sim.stripe.v1.invoices.finalize_invoice(to_void.id)
    sim.stripe.v1.invoices.finalize_invoice(to_forget.id)

    voided = sim.stripe.v1.invoices.void_invoice(to_void.id)
    forgotten = sim.stripe.v1.invoices.mark_uncollectible(to_forget.id)
    paid_later = sim.stripe.v1.invoices.pay(to_forget.id)
    with pytest.raises(stripe.InvalidRequestError):
        sim.stripe.v1.invoices.pay(to_void.id)
    sim.flush()

    assert voided.status == "void"
    assert voided.status_transitions.voided_at is not None
    assert forgotten.status == "uncollectible"
    assert paid_later.status == "paid"
    assert "invoice.voided" in receiver.types()
    assert "invoice.marked_uncollectible" in receiver.types()
    intent = sim.stripe.v1.payment_intents.retrieve(voided.payments.data[0].payment.payment_intent)
    assert intent.status == "canceled"


def test_a_declined_payment_answers_402_and_records_the_attempt(
    sim: Sim, receiver: Receiver
) -> None:
    customer_id = customer(sim, card="pm_card_chargeCustomerFail").id
    draft = one_off(sim, customer_id, 900)

    with pytest.raises(stripe.CardError) as declined:
        sim.stripe.v1.invoices.pay(draft.id)
    after = sim.stripe.v1.invoices.retrieve(draft.id)
    sim.flush()

    assert declined.value.code == "card_declined"
    assert after.status == "open"
    assert after.attempt_count == 1
    [failed] = of(receiver, "invoice.payment_failed")
    assert failed["data"]["object"]["attempt_count"] == 1


def test_an_auto_advancing_invoice_is_paid_an_hour_after_finalization_on_a_clock(
    sim: Sim, receiver: Receiver
) -> None:
    clock_id = clock(sim).id
    customer_id = customer(sim, clock_id).id
    draft = one_off(sim, customer_id, 1200, auto_advance=True)
    finalized = sim.stripe.v1.invoices.finalize_invoice(draft.id)

    sim.advance(clock_id, T0 + 2 * 60 * 60)

    assert finalized.next_payment_attempt == T0 + 60 * 60
    assert sim.stripe.v1.invoices.retrieve(draft.id).status == "paid"
    assert of(receiver, "invoice.paid")[0]["created"] == T0 + 60 * 60


def test_paid_out_of_band_is_paid_without_a_payment(sim: Sim, receiver: Receiver) -> None:
    customer_id = customer(sim, card=None).id
    draft = one_off(sim, customer_id, 300)

    paid = sim.stripe.v1.invoices.pay(draft.id, params={"paid_out_of_band": True})
    sim.flush()

    assert paid.status == "paid"
    assert "invoice.paid" in receiver.types()
    assert "invoice.payment_succeeded" not in receiver.types()


def test_invoice_lists_filter_and_page_by_created_for_reconciliation(sim: Sim) -> None:
    clock_id, customer_id, _subscription = on_clock(sim)
    sim.advance(clock_id, T0 + 31 * DAY)
    sim.advance(clock_id, T0 + 59 * DAY)
    sim.stripe.v1.invoices.create(params={"customer": customer_id})  # a draft

    paid = sim.stripe.v1.invoices.list(params={"status": "paid", "limit": 100})
    since = sim.stripe.v1.invoices.list(
        params={"status": "paid", "created": {"gte": T0 + DAY}, "limit": 1}
    )
    rest = sim.stripe.v1.invoices.list(
        params={
            "status": "paid",
            "created": {"gte": T0 + DAY},
            "limit": 1,
            "starting_after": since.data[0].id,
        }
    )
    everything = list(
        sim.stripe.v1.invoices.list(params={"customer": customer_id, "limit": 1}).auto_paging_iter()
    )

    assert len(paid.data) == 3
    assert since.has_more is True
    assert [since.data[0].created, rest.data[0].created] == [T0 + 59 * DAY, T0 + 31 * DAY]
    assert rest.has_more is False
    assert len(everything) == 4
    assert {i.status for i in everything} == {"paid", "draft"}


def test_lines_page_with_cursors(sim: Sim) -> None:
    customer_id = customer(sim).id
    draft = one_off(sim, customer_id, 100, 200, 300)

    first = sim.stripe.v1.invoices.line_items.list(draft.id, params={"limit": 2})
    second = sim.stripe.v1.invoices.line_items.list(
        draft.id, params={"limit": 2, "starting_after": first.data[-1].id}
    )

    assert [line.amount for line in first.data] == [100, 200]
    assert first.has_more is True
    assert [line.amount for line in second.data] == [300]


def test_the_attempt_control_route_runs_a_retry_now(sim: Sim, receiver: Receiver) -> None:
    customer_id = customer(sim).id
    draft = one_off(sim, customer_id, 400)
    sim.stripe.v1.invoices.finalize_invoice(draft.id)
    sim.control(f"customers/{customer_id}/fail_next_payment", {"count": 1})

    first = sim.control(f"invoices/{draft.id}/attempt")
    second = sim.control(f"invoices/{draft.id}/attempt")
    refused = sim.http.post(f"{sim.url}/_sim/invoices/{draft.id}/attempt", json={})
    sim.flush()

    assert (first["status"], first["attempt_count"]) == ("open", 1)
    assert (second["status"], second["attempt_count"]) == ("paid", 2)
    assert refused.status_code == 400
    assert [e["type"] for e in of(receiver, "invoice.payment_failed", "invoice.paid")] == [
        "invoice.payment_failed",
        "invoice.paid",
    ]


def test_lists_are_newest_created_first_across_clocks_and_the_wall_clock(sim: Sim) -> None:
    clock_id, on_the_clock, _ = on_clock(sim)  # invoices dated 2030
    later_made = one_off(sim, customer(sim).id, 100)  # made after, dated now

    listed = sim.stripe.v1.invoices.list()
    events = sim.stripe.v1.events.list(params={"limit": 100}).data

    assert [i.id for i in listed.data][-1] == later_made.id
    assert listed.data[0].created == T0
    assert [e.created for e in events] == sorted((e.created for e in events), reverse=True)
    assert clock_id
    assert on_the_clock

"""Refund and dispute events -> ChargeRefunded, RefundChanged, DisputeOpened/Closed/Noted.

A clawback is keyed by refund id, so each refund event must name its refund, its charge and
payment intent, and its status, in every status Stripe documents.
"""

from __future__ import annotations

from typing import Any

import pytest

from billfold.adapters.stripe import translate as tr
from billfold.domain import facts
from tests.builders import stripe_events as se

T0 = 1_760_000_000

# -- charge.refunded -------------------------------------------------------------------------------


def test_given_a_charge_refunded_twice_then_both_refunds_are_listed() -> None:
    refunds = [
        se.refund(refund_id="re_1", amount=100, charge="ch_1"),
        se.refund(refund_id="re_2", amount=150, charge="ch_1", status="pending"),
    ]
    event = se.charge_refunded(
        charge_id="ch_1",
        amount=499,
        payment_intent="pi_1",
        refunds=refunds,
        customer="cus_1",
        event_created=T0,
    )

    assert tr.translate(event) == facts.ChargeRefunded(
        charge_id="ch_1",
        payment_intent_id="pi_1",
        customer_id="cus_1",
        amount=499,
        amount_refunded=250,
        currency="usd",
        refunded=False,
        refunds=(
            facts.RefundInfo(refund_id="re_1", amount=100, status="succeeded"),
            facts.RefundInfo(refund_id="re_2", amount=150, status="pending"),
        ),
        refunds_complete=True,
        livemode=False,
        event_created=T0,
    )


def test_given_a_refunded_charge_without_its_refund_list_then_the_list_is_incomplete() -> None:
    fact = tr.translate(se.charge_refunded(amount=499, include_refunds=False))

    assert isinstance(fact, facts.ChargeRefunded)
    assert (fact.refunds, fact.refunds_complete, fact.amount_refunded, fact.refunded) == (
        (),
        False,
        499,
        True,
    )


def test_given_a_truncated_refund_list_then_it_is_incomplete() -> None:
    event = se.charge_refunded()
    event["data"]["object"]["refunds"]["has_more"] = True

    fact = tr.translate(event)

    assert isinstance(fact, facts.ChargeRefunded)
    assert fact.refunds_complete is False
    assert len(fact.refunds) == 1


# -- one refund ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type", ["refund.created", "refund.updated", "refund.failed", "charge.refund.updated"]
)
def test_given_any_refund_event_then_the_refund_is_read_by_its_id(event_type: str) -> None:
    event = se.refund_event(
        event_type,
        refund_id="re_9",
        amount=250,
        charge="ch_9",
        payment_intent="pi_9",
        status="failed" if event_type == "refund.failed" else "succeeded",
        reason="requested_by_customer",
        created=T0,
        event_created=T0 + 1,
    )
    failed = event_type == "refund.failed"

    assert tr.translate(event) == facts.RefundChanged(
        refund_id="re_9",
        charge_id="ch_9",
        payment_intent_id="pi_9",
        amount=250,
        currency="usd",
        status="failed" if failed else "succeeded",
        reason="requested_by_customer",
        failure_reason="expired_or_canceled_card" if failed else None,
        event_type=event_type,
        livemode=False,
        created=T0,
        event_created=T0 + 1,
    )


@pytest.mark.parametrize(
    "status", ["pending", "requires_action", "succeeded", "failed", "canceled"]
)
def test_given_a_refund_in_each_status_stripe_documents_then_the_status_is_carried(
    status: str,
) -> None:
    fact = tr.translate(se.refund_event("refund.updated", status=status))

    assert isinstance(fact, facts.RefundChanged)
    assert fact.status == status
    assert (fact.failure_reason is not None) is (status == "failed")


def test_given_a_refund_with_expanded_charge_and_payment_intent_then_their_ids_are_read() -> None:
    event = se.refund_event(
        charge=se.charge(charge_id="ch_x"),
        payment_intent=se.payment_intent(payment_intent_id="pi_x"),
    )

    fact = tr.translate(event)

    assert isinstance(fact, facts.RefundChanged)
    assert (fact.charge_id, fact.payment_intent_id) == ("ch_x", "pi_x")


def test_given_a_refund_of_no_charge_then_it_has_no_charge_id() -> None:
    event = se.refund_event()
    event["data"]["object"]["charge"] = None

    fact = tr.translate(event)

    assert isinstance(fact, facts.RefundChanged)
    assert fact.charge_id is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"status": "reversed"}, "data.object.status must be one of pending, requires_action"),
        ({"status": None}, "got None"),
        ({"amount": "2.50"}, "data.object.amount must be an integer or null, got a string"),
        ({"id": None}, "data.object.id is missing"),
        ({"currency": None}, "data.object.currency is missing"),
        ({"object": "charge"}, "data.object.object must be 'refund', got 'charge'"),
    ],
)
def test_given_a_malformed_refund_then_it_is_ignored_naming_the_field(
    change: dict[str, Any], expected: str
) -> None:
    event = se.refund_event("refund.created")
    event["data"]["object"].update(change)

    fact = tr.translate(event)

    assert isinstance(fact, facts.Ignored)
    assert fact.reason.startswith(f"malformed refund.created event {event['id']}: ")
    assert expected in fact.reason


# -- disputes --------------------------------------------------------------------------------------


def test_given_an_opened_dispute_then_it_names_the_charge_even_when_expanded() -> None:
    event = se.dispute_created(
        dispute_id="dp_1",
        charge=se.charge(charge_id="ch_9"),
        payment_intent="pi_9",
        amount=499,
        status="needs_response",
        reason="fraudulent",
        event_created=T0,
    )

    assert tr.translate(event) == facts.DisputeOpened(
        dispute_id="dp_1",
        charge_id="ch_9",
        payment_intent_id="pi_9",
        amount=499,
        currency="usd",
        status="needs_response",
        reason="fraudulent",
        livemode=False,
        event_created=T0,
    )


@pytest.mark.parametrize("status", ["won", "lost", "warning_closed", "prevented"])
def test_given_a_closed_dispute_then_the_outcome_is_carried(status: str) -> None:
    fact = tr.translate(se.dispute_closed(status=status))

    assert isinstance(fact, facts.DisputeClosed)
    assert fact.status == status


def test_given_a_closed_dispute_with_an_open_status_then_it_is_ignored() -> None:
    fact = tr.translate(se.dispute_closed(status="under_review"))

    assert isinstance(fact, facts.Ignored)
    assert "under_review" in fact.reason


def test_given_funds_withdrawn_for_a_dispute_then_the_withdrawal_and_fee_are_read() -> None:
    event = se.dispute_event(
        "funds_withdrawn",
        dispute_id="dp_w",
        charge="ch_w",
        payment_intent="pi_w",
        amount=499,
        status="needs_response",
        event_created=T0,
    )
    (txn,) = event["data"]["object"]["balance_transactions"]

    assert tr.translate(event) == facts.DisputeNoted(
        kind="funds_withdrawn",
        dispute_id="dp_w",
        charge_id="ch_w",
        payment_intent_id="pi_w",
        amount=499,
        currency="usd",
        status="needs_response",
        reason="fraudulent",
        balance_transactions=(
            facts.DisputeBalanceTransaction(
                balance_transaction_id=txn["id"],
                amount=-499,
                fee=1500,
                net=-1999,
                currency="usd",
                reporting_category="dispute",
            ),
        ),
        event_type="charge.dispute.funds_withdrawn",
        livemode=False,
        event_created=T0,
    )


def test_given_funds_reinstated_after_a_won_dispute_then_both_movements_are_listed() -> None:
    fact = tr.translate(se.dispute_event("funds_reinstated", amount=499, status="won"))

    assert isinstance(fact, facts.DisputeNoted)
    assert fact.kind == "funds_reinstated"
    assert [(t.amount, t.net, t.reporting_category) for t in fact.balance_transactions] == [
        (-499, -1999, "dispute"),
        (499, 499, "dispute_reversal"),
    ]
    assert sum(t.net for t in fact.balance_transactions) == -1500


def test_given_an_updated_dispute_then_it_is_noted_with_its_status() -> None:
    fact = tr.translate(se.dispute_event("updated", status="under_review"))

    assert isinstance(fact, facts.DisputeNoted)
    assert (fact.kind, fact.status, fact.balance_transactions) == ("updated", "under_review", ())


@pytest.mark.parametrize(
    ("transactions", "expected"),
    [
        (["txn_1"], "data.object.balance_transactions[0] must be an object"),
        ({"data": []}, "data.object.balance_transactions must be an array or null, got an object"),
        ([{"id": "txn_1", "amount": -5, "fee": 0, "currency": "usd"}], "[0].net is missing"),
    ],
)
def test_given_a_malformed_balance_transaction_then_the_dispute_event_is_ignored(
    transactions: object, expected: str
) -> None:
    event = se.dispute_event("funds_withdrawn", balance_transactions=transactions)

    fact = tr.translate(event)

    assert isinstance(fact, facts.Ignored)
    assert expected in fact.reason

"""Stripe events -> billing facts: the envelope, the table of types, checkout sessions, payment
intents, and what is ignored. Subscriptions, invoices, reversals and the never-raises properties
have their own files (``test_translate_*.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from billfold.adapters.stripe import translate as tr
from billfold.domain import facts
from tests.builders import stripe_events as se

# The table in DESIGN.md, "Stripe events and what they do".
DESIGN_EVENT_TYPES = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
}
# Read for the record, beyond the table (SUBSCRIPTIONS.md lists them among the money events).
RECORDED_EVENT_TYPES = {
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.payment_action_required",
    "charge.dispute.updated",
}

T0 = 1_760_000_000


def translated(event: dict[str, Any]) -> facts.Fact:
    return tr.translate(event)


def test_the_translator_handles_the_event_types_of_the_design_and_those_it_records() -> None:
    assert set(tr.HANDLED_EVENT_TYPES) == DESIGN_EVENT_TYPES | RECORDED_EVENT_TYPES


# -- is_stripe_event -------------------------------------------------------------------------------


def test_a_built_event_is_a_stripe_event() -> None:
    assert tr.is_stripe_event(se.checkout_session_completed())
    assert tr.is_stripe_event(se.fixture("event"))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"id": "cs_123"}, "id is not an event id"),
        ({"id": "evt_"}, "id has nothing after the prefix"),
        ({"id": 123}, "id is not a string"),
        ({"object": "checkout.session"}, "not an event object"),
        ({"type": None}, "no type"),
        ({"type": ""}, "empty type"),
        ({"data": None}, "no data"),
        ({"data": {"object": "cs_123"}}, "data.object is not an object"),
        ({"data": {}}, "no data.object"),
    ],
)
def test_bodies_that_are_not_stripe_events_are_recognised(change: dict[str, Any], why: str) -> None:
    event = se.checkout_session_completed()
    event.update(change)

    assert not tr.is_stripe_event(event), why
    assert translated(event) == facts.Ignored(reason="not a Stripe event")


@pytest.mark.parametrize("body", [None, [], "evt_123", 42, {"object": "event"}, [{"id": "evt_1"}]])
def test_json_that_is_not_an_object_is_not_a_stripe_event(body: object) -> None:
    assert not tr.is_stripe_event(body)


# -- checkout sessions -----------------------------------------------------------------------------


def test_a_paid_checkout_becomes_checkout_completed_with_everything_resolution_needs() -> None:
    event = se.checkout_session_completed(
        session_id="cs_test_paid",
        amount_total=1499,
        currency="usd",
        metadata={"billfold_account": "user_123", "billfold_package": "popular", "other": "x"},
        client_reference_id="ref_9",
        customer="cus_42",
        email="buyer@example.com",
        payment_intent="pi_7",
        created=T0,
        event_created=T0 + 3,
    )

    assert translated(event) == facts.CheckoutCompleted(
        session_id="cs_test_paid",
        mode="payment",
        payment_status="paid",
        payment_intent_id="pi_7",
        amount_total=1499,
        currency="usd",
        metadata_account="user_123",
        metadata_package="popular",
        client_reference_id="ref_9",
        customer_id="cus_42",
        customer_email="buyer@example.com",
        subscription_id=None,
        invoice_id=None,
        livemode=False,
        created=T0,
        event_created=T0 + 3,
    )


@pytest.mark.parametrize("payment_status", ["paid", "unpaid", "no_payment_required"])
def test_the_payment_status_is_carried_as_is(payment_status: str) -> None:
    fact = translated(se.checkout_session_completed(payment_status=payment_status))

    assert isinstance(fact, facts.CheckoutCompleted)
    assert fact.payment_status == payment_status


def test_a_subscription_checkout_carries_the_customer_and_subscription() -> None:
    event = se.checkout_session_completed(
        mode="subscription",
        customer="cus_sub",
        subscription="sub_1",
        invoice="in_1",
        amount_total=2000,
        client_reference_id="user_7",
    )

    fact = translated(event)

    assert isinstance(fact, facts.CheckoutCompleted)
    assert (fact.mode, fact.customer_id, fact.subscription_id, fact.invoice_id) == (
        "subscription",
        "cus_sub",
        "sub_1",
        "in_1",
    )
    assert fact.payment_intent_id is None


def test_expanded_objects_become_their_ids() -> None:
    event = se.checkout_session_completed(
        customer=se.customer(customer_id="cus_expanded", email="e@example.com"),
        payment_intent="pi_x",
        subscription=None,
    )
    event["data"]["object"]["payment_intent"] = se.payment_intent(payment_intent_id="pi_expanded")

    fact = translated(event)

    assert isinstance(fact, facts.CheckoutCompleted)
    assert fact.customer_id == "cus_expanded"
    assert fact.payment_intent_id == "pi_expanded"


def test_the_email_typed_at_checkout_wins_over_the_prefilled_one() -> None:
    typed = translated(se.checkout_session_completed(email="typed@x.io", customer_email="pre@x.io"))
    prefilled = translated(se.checkout_session_completed(email=None, customer_email="pre@x.io"))
    neither = translated(se.checkout_session_completed(email=None, customer_email=None))

    assert isinstance(typed, facts.CheckoutCompleted)
    assert isinstance(prefilled, facts.CheckoutCompleted)
    assert isinstance(neither, facts.CheckoutCompleted)
    assert (typed.customer_email, prefilled.customer_email, neither.customer_email) == (
        "typed@x.io",
        "pre@x.io",
        None,
    )


def test_currencies_are_lowercased() -> None:
    fact = translated(se.checkout_session_completed(currency="USD"))

    assert isinstance(fact, facts.CheckoutCompleted)
    assert fact.currency == "usd"


def test_blank_metadata_and_reference_count_as_absent() -> None:
    event = se.checkout_session_completed(
        metadata={"billfold_account": "  ", "billfold_package": ""}, client_reference_id=""
    )

    fact = translated(event)

    assert isinstance(fact, facts.CheckoutCompleted)
    assert (fact.metadata_account, fact.metadata_package, fact.client_reference_id) == (
        None,
        None,
        None,
    )


def test_null_metadata_is_no_metadata() -> None:
    fact = translated(se.checkout_session_completed(metadata=None, client_reference_id="u1"))

    assert isinstance(fact, facts.CheckoutCompleted)
    assert fact.metadata_account is None


@pytest.mark.parametrize(
    ("build", "fact_type"),
    [
        (se.checkout_session_completed, facts.CheckoutCompleted),
        (se.async_payment_succeeded, facts.CheckoutAsyncSucceeded),
        (se.async_payment_failed, facts.CheckoutAsyncFailed),
        (se.session_expired, facts.CheckoutExpired),
    ],
)
def test_each_checkout_event_has_its_own_fact_with_the_same_session_fields(
    build: Any, fact_type: type[facts.CheckoutSessionFact]
) -> None:
    fact = translated(build(session_id="cs_same", metadata={"billfold_account": "u"}))

    assert type(fact) is fact_type
    assert isinstance(fact, facts.CheckoutSessionFact)
    assert (fact.session_id, fact.metadata_account) == ("cs_same", "u")


def test_an_expired_session_is_unpaid_and_has_no_payment_intent() -> None:
    fact = translated(se.session_expired())

    assert isinstance(fact, facts.CheckoutExpired)
    assert (fact.payment_status, fact.payment_intent_id) == ("unpaid", None)


def test_a_setup_mode_session_is_translated_and_left_to_the_rules() -> None:
    fact = translated(se.checkout_session_completed(mode="setup", amount_total=None, currency=None))

    assert isinstance(fact, facts.CheckoutCompleted)
    assert (fact.mode, fact.amount_total, fact.currency) == ("setup", None, None)


# -- payment intents -------------------------------------------------------------------------------


def test_a_succeeded_payment_intent_carries_amounts_and_billfold_metadata() -> None:
    event = se.payment_intent_succeeded(
        payment_intent_id="pi_1",
        amount=2999,
        currency="eur",
        customer={"id": "cus_9", "object": "customer"},
        metadata={"billfold_account": "acct", "billfold_package": "professional"},
        created=T0,
        event_created=T0 + 3,
    )

    assert translated(event) == facts.PaymentIntentSucceeded(
        payment_intent_id="pi_1",
        amount=2999,
        amount_received=2999,
        currency="eur",
        customer_id="cus_9",
        metadata_account="acct",
        metadata_package="professional",
        livemode=False,
        created=T0,
        event_created=T0 + 3,
    )


def test_a_failed_payment_intent_carries_stripes_message() -> None:
    fact = translated(se.payment_intent_failed(last_error_message="Insufficient funds."))

    assert isinstance(fact, facts.PaymentIntentFailed)
    assert fact.last_error_message == "Insufficient funds."


def test_a_failed_payment_intent_without_an_error_object_has_no_message() -> None:
    event = se.payment_intent_failed()
    event["data"]["object"]["last_payment_error"] = None

    fact = translated(event)

    assert isinstance(fact, facts.PaymentIntentFailed)
    assert fact.last_error_message is None


# -- checkout sessions read from the API -----------------------------------------------------------


def test_given_a_session_retrieved_by_the_success_page_then_it_reads_like_its_event() -> None:
    session = se.checkout_session(
        session_id="cs_api", metadata={"billfold_account": "u1", "billfold_package": "starter"}
    )

    fact = tr.checkout_session_fact(session)

    assert isinstance(fact, facts.CheckoutCompleted)
    assert fact == tr.translate(
        se.any_event("checkout.session.completed", session, created=session["created"])
    )
    assert fact.event_created == session["created"]


def test_given_an_expired_session_retrieved_from_the_api_then_it_reads_as_expired() -> None:
    session = se.checkout_session(status="expired", payment_status="unpaid", payment_intent=None)

    fact = tr.checkout_session_fact(
        session, event_type="checkout.session.expired", event_created=T0
    )

    assert isinstance(fact, facts.CheckoutExpired)
    assert (fact.event_created, fact.payment_status) == (T0, "unpaid")


@pytest.mark.parametrize(
    ("session", "event_type", "reason"),
    [
        (se.checkout_session(), "invoice.paid",
         "cannot read invoice.paid from checkout.session objects"),
        (["cs_1"], "checkout.session.completed",
         "not a Stripe checkout.session object but list; pass an SDK object's to_dict()"),
        (se.checkout_session(session_id="cs_bad", mode="rental"), "checkout.session.completed",
         "malformed checkout.session.completed object cs_bad: "
         "checkout.session.mode must be one of payment, subscription, setup, got 'rental'"),
        ({"object": "checkout.session", "created": 1.5}, "checkout.session.completed",
         "malformed checkout.session.completed object without an id: "
         "checkout.session.created must be an integer or null, got float"),
    ],
)  # fmt: skip
def test_what_cannot_be_read_as_a_checkout_session_is_ignored(
    session: Any, event_type: str, reason: str
) -> None:
    assert tr.checkout_session_fact(session, event_type=event_type) == facts.Ignored(reason=reason)


# -- the envelope ----------------------------------------------------------------------------------


def test_an_object_without_its_own_livemode_takes_the_events() -> None:
    event = se.refund_event()
    event["livemode"] = True
    assert "livemode" not in event["data"]["object"]

    fact = translated(event)

    assert isinstance(fact, facts.RefundChanged)
    assert fact.livemode is True


# -- what is ignored -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["customer.created", "plan.created", "invoice.finalized", "charge.succeeded"]
)
def test_unhandled_event_types_are_ignored_by_name(kind: str) -> None:
    event = se.fixture("event")
    event["type"] = kind

    assert translated(event) == facts.Ignored(reason=f"unhandled event type {kind}")


@pytest.mark.parametrize(
    ("build", "path", "value", "expected"),
    [
        (se.checkout_session_completed, "amount_total", "499", "amount_total must be an integer"),
        (se.checkout_session_completed, "amount_total", 4.99, "amount_total must be an integer"),
        (se.checkout_session_completed, "amount_total", True, "amount_total must be an integer"),
        (se.checkout_session_completed, "id", None, "data.object.id is missing"),
        (se.checkout_session_completed, "payment_status", "paid!", "payment_status must be"),
        (se.checkout_session_completed, "metadata", ["x"], "metadata must be an object"),
        (se.checkout_session_completed, "currency", "dollars", "must be a currency code"),
        (se.checkout_session_completed, "customer", {"object": "customer"}, "customer.id is"),
        (se.checkout_session_completed, "object", "payment_intent", "must be 'checkout.session'"),
        (se.invoice_event, "amount_paid", 5.0, "amount_paid must be an integer or null, got float"),
        (se.invoice_event, "lines", {"data": "x"}, "lines.data must be an array"),
        (se.charge_refunded, "amount_refunded", None, "amount_refunded is missing"),
        (se.dispute_created, "charge", None, "data.object.charge is missing"),
        (se.subscription_event, "items", [], "items must be an object"),
        (se.payment_intent_succeeded, "livemode", "false", "livemode must be true or false"),
    ],
)
def test_a_handled_event_with_a_malformed_field_is_ignored_with_the_field_named(
    build: Any, path: str, value: object, expected: str
) -> None:
    event = build()
    event["data"]["object"][path] = value

    fact = translated(event)

    assert isinstance(fact, facts.Ignored)
    assert fact.reason.startswith(f"malformed {event['type']} event {event['id']}: ")
    assert expected in fact.reason


@pytest.mark.parametrize(
    "build",
    [se.checkout_session_completed, se.subscription_event, se.invoice_event, se.refund_event],
)
def test_a_handled_event_without_its_created_time_is_ignored(build: Any) -> None:
    event = build()
    del event["created"]

    fact = translated(event)

    assert isinstance(fact, facts.Ignored)
    assert "event.created is missing" in fact.reason


# Stripe's example object for each resource, and the handled types whose events carry it.
_RESOURCE_OF = {
    "checkout.session": "checkout.session",
    "payment_intent": "payment_intent",
    "customer.subscription": "subscription",
    "invoice": "invoice",
    "charge.refunded": "charge",
    "refund": "refund",
    "charge.refund": "refund",
    "charge.dispute": "dispute",
}


def _resource_of(event_type: str) -> str:
    prefix = max((p for p in _RESOURCE_OF if event_type.startswith(p)), key=len)
    return _RESOURCE_OF[prefix]


@pytest.mark.parametrize("kind", sorted(tr.HANDLED_EVENT_TYPES))
def test_stripes_own_example_objects_translate_to_facts(kind: str) -> None:
    obj = se.fixture(_resource_of(kind))
    if kind == "charge.dispute.closed":
        obj["status"] = "lost"  # the example dispute is still open

    fact = translated(se.any_event(kind, obj))

    assert not isinstance(fact, facts.Ignored), fact

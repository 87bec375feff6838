"""Stripe events -> billing facts: every handled type, both API shapes, and nothing ever raises."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
}

T0 = 1_760_000_000


def translated(event: dict[str, Any]) -> facts.Fact:
    return tr.translate(event)


def test_the_translator_handles_exactly_the_event_types_of_the_design() -> None:
    assert set(tr.HANDLED_EVENT_TYPES) == DESIGN_EVENT_TYPES


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


# -- subscriptions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["items-period", "legacy-period"])
def test_a_subscription_update_carries_its_state_in_either_api_shape(legacy: bool) -> None:
    event = se.subscription_event(
        "updated",
        subscription_id="sub_1",
        customer="cus_1",
        status="past_due",
        price_ids=["price_pro_monthly"],
        current_period_start=T0,
        current_period_end=T0 + se.MONTH,
        cancel_at_period_end=True,
        metadata={"billfold_account": "user_1"},
        legacy=legacy,
        event_created=T0 + 5,
    )

    assert translated(event) == facts.SubscriptionChanged(
        subscription_id="sub_1",
        customer_id="cus_1",
        status="past_due",
        price_ids=("price_pro_monthly",),
        current_period_start=T0,
        current_period_end=T0 + se.MONTH,
        cancel_at_period_end=True,
        cancel_at=None,
        deleted=False,
        metadata_account="user_1",
        livemode=False,
        event_created=T0 + 5,
    )


@pytest.mark.parametrize("kind", ["created", "updated", "deleted", "paused", "resumed"])
def test_every_subscription_event_becomes_subscription_changed(kind: str) -> None:
    fact = translated(se.subscription_event(kind))

    assert isinstance(fact, facts.SubscriptionChanged)
    assert fact.deleted is (kind == "deleted")


def test_a_deleted_subscription_is_canceled_and_deleted() -> None:
    fact = translated(se.subscription_event("deleted"))

    assert isinstance(fact, facts.SubscriptionChanged)
    assert (fact.status, fact.deleted) == ("canceled", True)


def test_items_with_different_periods_give_the_widest_period_and_every_price() -> None:
    event = se.subscription_event(price_ids=["price_a", "price_b", "price_a"])
    items = event["data"]["object"]["items"]["data"]
    items[0].update(current_period_start=T0 + 10, current_period_end=T0 + 100)
    items[1].update(current_period_start=T0, current_period_end=T0 + 50)
    items[2].update(current_period_start=T0 + 20, current_period_end=T0 + 200)

    fact = translated(event)

    assert isinstance(fact, facts.SubscriptionChanged)
    assert fact.price_ids == ("price_a", "price_b")
    assert (fact.current_period_start, fact.current_period_end) == (T0, T0 + 200)


def test_an_item_price_sent_as_an_id_or_only_as_a_legacy_plan_is_read() -> None:
    event = se.subscription_event(price_ids=["price_a", "price_b"])
    items = event["data"]["object"]["items"]["data"]
    items[0]["price"] = "price_as_id"
    items[1]["price"] = None

    fact = translated(event)

    assert isinstance(fact, facts.SubscriptionChanged)
    assert fact.price_ids == ("price_as_id", "price_b")


def test_a_subscription_with_no_period_anywhere_has_none() -> None:
    event = se.subscription_event()
    for item in event["data"]["object"]["items"]["data"]:
        del item["current_period_start"], item["current_period_end"]

    fact = translated(event)

    assert isinstance(fact, facts.SubscriptionChanged)
    assert (fact.current_period_start, fact.current_period_end) == (None, None)


def test_a_subscription_status_stripe_does_not_document_is_ignored_with_the_reason() -> None:
    fact = translated(se.subscription_event(status="on_vacation"))

    assert isinstance(fact, facts.Ignored)
    assert "data.object.status" in fact.reason
    assert "on_vacation" in fact.reason


# -- invoices --------------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["basil", "legacy"])
@pytest.mark.parametrize("kind", ["invoice.paid", "invoice.payment_succeeded"])
def test_a_paid_subscription_invoice_carries_the_period_and_prices(kind: str, legacy: bool) -> None:
    event = se.invoice_event(
        kind,
        invoice_id="in_1",
        subscription="sub_1",
        customer="cus_1",
        price_ids=["price_pro_monthly"],
        period_start=T0,
        period_end=T0 + se.MONTH,
        amount_paid=2000,
        billing_reason="subscription_cycle",
        legacy=legacy,
    )

    assert translated(event) == facts.InvoicePaid(
        invoice_id="in_1",
        subscription_id="sub_1",
        customer_id="cus_1",
        price_ids=("price_pro_monthly",),
        period_start=T0,
        period_end=T0 + se.MONTH,
        amount_paid=2000,
        currency="usd",
        billing_reason="subscription_cycle",
        livemode=False,
        created=T0,
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["basil", "legacy"])
def test_proration_lines_do_not_decide_the_plan_or_the_period(legacy: bool) -> None:
    sub = "sub_upgrade"
    lines = [
        se.invoice_line(
            invoice_id="in_2",
            subscription=sub,
            price_id="price_pro_monthly",
            amount=-1000,
            currency="usd",
            period_start=T0,
            period_end=T0 + 100,
            proration=True,
            legacy=legacy,
        ),
        se.invoice_line(
            invoice_id="in_2",
            subscription=sub,
            price_id="price_elite_monthly",
            amount=5000,
            currency="usd",
            period_start=T0 + 100,
            period_end=T0 + se.MONTH + 100,
            legacy=legacy,
        ),
    ]
    event = se.invoice_event(
        invoice_id="in_2",
        subscription=sub,
        lines=lines,
        amount_paid=4000,
        billing_reason="subscription_update",
        legacy=legacy,
    )

    fact = translated(event)

    assert isinstance(fact, facts.InvoicePaid)
    assert fact.price_ids == ("price_elite_monthly",)
    assert (fact.period_start, fact.period_end) == (T0 + 100, T0 + se.MONTH + 100)


def test_an_invoice_without_a_subscription_has_none() -> None:
    fact = translated(se.invoice_event(subscription=None, billing_reason="manual"))

    assert isinstance(fact, facts.InvoicePaid)
    assert fact.subscription_id is None


def test_the_subscription_is_found_on_the_lines_when_the_invoice_lacks_it() -> None:
    event = se.invoice_event(subscription="sub_on_lines")
    event["data"]["object"]["parent"] = None

    fact = translated(event)

    assert isinstance(fact, facts.InvoicePaid)
    assert fact.subscription_id == "sub_on_lines"


def test_an_invoice_without_lines_takes_the_invoice_period() -> None:
    event = se.invoice_event(lines=[], period_start=T0)

    fact = translated(event)

    assert isinstance(fact, facts.InvoicePaid)
    assert fact.price_ids == ()
    assert (fact.period_start, fact.period_end) == (T0 - se.MONTH, T0)


def test_an_expanded_subscription_on_a_legacy_invoice_is_read() -> None:
    event = se.invoice_event(legacy=True, subscription="sub_x")
    event["data"]["object"]["subscription"] = se.subscription(subscription_id="sub_x")

    fact = translated(event)

    assert isinstance(fact, facts.InvoicePaid)
    assert fact.subscription_id == "sub_x"


@pytest.mark.parametrize("legacy", [False, True], ids=["basil", "legacy"])
def test_a_failed_invoice_payment_says_when_stripe_tries_again(legacy: bool) -> None:
    event = se.invoice_event(
        "payment_failed",
        invoice_id="in_f",
        subscription="sub_f",
        customer="cus_f",
        next_payment_attempt=T0 + se.DAY,
        attempt_count=2,
        period_start=T0,
        legacy=legacy,
    )

    assert translated(event) == facts.InvoicePaymentFailed(
        invoice_id="in_f",
        subscription_id="sub_f",
        customer_id="cus_f",
        amount_due=2000,
        currency="usd",
        attempt_count=2,
        next_payment_attempt=T0 + se.DAY,
        billing_reason="subscription_cycle",
        livemode=False,
        created=T0,
    )


# -- refunds and disputes --------------------------------------------------------------------------


def test_a_refunded_charge_lists_its_refunds() -> None:
    refunds = [
        se.refund(refund_id="re_1", amount=100, charge="ch_1"),
        se.refund(refund_id="re_2", amount=150, charge="ch_1", status="pending"),
    ]
    event = se.charge_refunded(
        charge_id="ch_1", amount=499, payment_intent="pi_1", refunds=refunds, customer="cus_1"
    )

    assert translated(event) == facts.ChargeRefunded(
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
    )


def test_a_refunded_charge_without_its_refund_list_says_the_list_is_incomplete() -> None:
    fact = translated(se.charge_refunded(amount=499, include_refunds=False))

    assert isinstance(fact, facts.ChargeRefunded)
    assert (fact.refunds, fact.refunds_complete, fact.amount_refunded, fact.refunded) == (
        (),
        False,
        499,
        True,
    )


def test_a_truncated_refund_list_is_incomplete() -> None:
    event = se.charge_refunded()
    event["data"]["object"]["refunds"]["has_more"] = True

    fact = translated(event)

    assert isinstance(fact, facts.ChargeRefunded)
    assert fact.refunds_complete is False
    assert len(fact.refunds) == 1


def test_an_opened_dispute_names_the_charge_even_when_expanded() -> None:
    event = se.dispute_created(
        dispute_id="dp_1",
        charge=se.charge(charge_id="ch_9"),
        payment_intent="pi_9",
        amount=499,
        status="needs_response",
        reason="fraudulent",
    )

    assert translated(event) == facts.DisputeOpened(
        dispute_id="dp_1",
        charge_id="ch_9",
        payment_intent_id="pi_9",
        amount=499,
        currency="usd",
        status="needs_response",
        reason="fraudulent",
        livemode=False,
    )


@pytest.mark.parametrize("status", ["won", "lost", "warning_closed", "prevented"])
def test_a_closed_dispute_carries_the_outcome(status: str) -> None:
    fact = translated(se.dispute_closed(status=status))

    assert isinstance(fact, facts.DisputeClosed)
    assert fact.status == status


def test_a_closed_dispute_with_an_open_status_is_ignored() -> None:
    fact = translated(se.dispute_closed(status="under_review"))

    assert isinstance(fact, facts.Ignored)
    assert "under_review" in fact.reason


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
        (se.invoice_event, "amount_paid", -5, "must not be negative"),
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


def test_a_subscription_event_without_created_is_ignored() -> None:
    event = se.subscription_event()
    del event["created"]

    fact = translated(event)

    assert isinstance(fact, facts.Ignored)
    assert "event.created is missing" in fact.reason


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("checkout.session.completed", "checkout.session"),
        ("checkout.session.expired", "checkout.session"),
        ("payment_intent.succeeded", "payment_intent"),
        ("payment_intent.payment_failed", "payment_intent"),
        ("customer.subscription.updated", "subscription"),
        ("invoice.paid", "invoice"),
        ("invoice.payment_failed", "invoice"),
        ("charge.refunded", "charge"),
        ("charge.dispute.created", "dispute"),
    ],
)
def test_stripes_own_example_objects_translate_to_their_facts(kind: str, resource: str) -> None:
    fact = translated(se.any_event(kind, se.fixture(resource)))

    assert not isinstance(fact, facts.Ignored), fact


# -- never raises ----------------------------------------------------------------------------------

_BUILDERS: list[Callable[[], dict[str, Any]]] = [
    se.checkout_session_completed,
    se.async_payment_succeeded,
    se.async_payment_failed,
    se.session_expired,
    se.payment_intent_succeeded,
    se.payment_intent_failed,
    lambda: se.subscription_event("updated"),
    lambda: se.subscription_event("deleted", legacy=True),
    se.invoice_event,
    lambda: se.invoice_event("payment_failed", legacy=True),
    se.charge_refunded,
    se.dispute_created,
    se.dispute_closed,
]
_TEMPLATES = [build() for build in _BUILDERS]

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.sampled_from(["evt_1", "usd", "paid", "active", "won", "subscription_item_details"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def _paths(node: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_translate_never_raises_whatever_a_handled_event_holds(data: st.DataObject) -> None:
    event = copy.deepcopy(data.draw(st.sampled_from(_TEMPLATES)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        path = data.draw(st.sampled_from(_paths(event)[1:]))
        parent: Any = event
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_json)

    fact = tr.translate(event)

    assert isinstance(fact, facts.Fact)


@given(event=st.dictionaries(st.sampled_from(["id", "object", "type", "data", "created"]), _json))
def test_translate_never_raises_on_arbitrary_json(event: dict[str, Any]) -> None:
    assert isinstance(tr.translate(event), facts.Ignored)

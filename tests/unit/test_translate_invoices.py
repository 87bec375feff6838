"""Invoice events -> InvoicePaid, InvoicePaymentFailed, InvoiceNoted, in both API shapes.

The allowance is granted per paid subscription line for the line's period, so these stories check
the lines above all: renewals (whose invoice ``period_*`` is the period before), upgrades billed at
once with proration lines, $0 trial invoices, one-off invoices that name a package.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from billfold.adapters.stripe import translate as tr
from billfold.domain import facts
from tests.builders import stripe_events as se

T0 = 1_760_000_000
NEXT = T0 + se.MONTH
SHAPES = pytest.mark.parametrize("legacy", [False, True], ids=["basil", "2024-06-20"])


def paid(event: dict[str, Any]) -> facts.InvoicePaid:
    fact = tr.translate(event)
    assert isinstance(fact, facts.InvoicePaid), fact
    return fact


def renewal_line(*, legacy: bool, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "invoice_id": "in_renew",
        "line_id": "il_renew",
        "subscription": "sub_1",
        "subscription_item": "si_1",
        "price_id": "price_pro_monthly",
        "amount": 2000,
        "period_start": T0,
        "period_end": NEXT,
        "legacy": legacy,
    }
    fields.update(changes)
    return se.invoice_line(**fields)


# -- renewals --------------------------------------------------------------------------------------


def test_given_a_basil_renewal_invoice_then_its_line_pays_for_the_new_period() -> None:
    event = se.invoice_event(
        "invoice.paid",
        api_version=se.ENDIVE_API_VERSION,
        invoice_id="in_renew",
        subscription="sub_1",
        customer="cus_1",
        lines=[renewal_line(legacy=False)],
        period_start=T0,
        amount_paid=2000,
        billing_reason="subscription_cycle",
        subscription_metadata={"billfold_account": "user_1"},
        payment_intent="pi_renew",
        include_payments=True,
        event_created=T0 + 7,
    )
    invoice = event["data"]["object"]
    assert (invoice["period_start"], invoice["period_end"]) == (T0 - se.MONTH, T0)

    assert paid(event) == facts.InvoicePaid(
        invoice_id="in_renew",
        status="paid",
        paid=True,
        paid_at=T0,
        subscription_id="sub_1",
        customer_id="cus_1",
        customer_email="jenny.rosen@example.com",
        billing_reason="subscription_cycle",
        amount_paid=2000,
        amount_due=2000,
        total=2000,
        currency="usd",
        metadata_account="user_1",
        metadata_package=None,
        payment_intent_ids=("pi_renew",),
        payments_complete=True,
        charge_id=None,
        lines=(
            facts.InvoiceLineFact(
                line_id="il_renew",
                price_id="price_pro_monthly",
                quantity=1,
                amount=2000,
                currency="usd",
                period_start=T0,
                period_end=NEXT,
                proration=False,
                subscription_id="sub_1",
                subscription_item_id="si_1",
                is_subscription=True,
            ),
        ),
        lines_complete=True,
        price_ids=("price_pro_monthly",),
        period_start=T0,
        period_end=NEXT,
        event_type="invoice.paid",
        livemode=False,
        created=T0,
        event_created=T0 + 7,
    )


def test_given_the_same_renewal_in_the_old_shape_then_the_facts_are_the_same() -> None:
    common: dict[str, Any] = {
        "invoice_id": "in_renew",
        "subscription": "sub_1",
        "customer": "cus_1",
        "period_start": T0,
        "subscription_metadata": {"billfold_account": "user_1"},
        "payment_intent": "pi_renew",
        "event_created": T0 + 7,
    }
    basil = paid(
        se.invoice_event(lines=[renewal_line(legacy=False)], include_payments=True, **common)
    )
    legacy_event = se.invoice_event(lines=[renewal_line(legacy=True)], legacy=True, **common)
    old = paid(legacy_event)

    assert legacy_event["api_version"] == se.LEGACY_API_VERSION
    assert "parent" not in legacy_event["data"]["object"]
    assert old.charge_id == legacy_event["data"]["object"]["charge"]
    assert old.charge_id is not None
    assert dataclasses.replace(old, charge_id=None) == basil


@SHAPES
def test_given_invoice_paid_and_invoice_payment_succeeded_for_one_invoice_then_both_say_the_same(
    legacy: bool,
) -> None:
    invoice = se.invoice(invoice_id="in_twice", legacy=legacy)

    one = paid(se.any_event("invoice.paid", invoice, created=T0))
    other = paid(se.any_event("invoice.payment_succeeded", invoice, created=T0))

    assert (one.event_type, other.event_type) == ("invoice.paid", "invoice.payment_succeeded")
    assert dataclasses.replace(other, event_type="invoice.paid") == one


# -- upgrades and prorations -----------------------------------------------------------------------


@SHAPES
def test_given_an_upgrade_billed_at_once_then_both_proration_lines_are_kept_with_their_signs(
    legacy: bool,
) -> None:
    upgrade_at = T0 + 10 * se.DAY
    credit = renewal_line(
        legacy=legacy,
        invoice_id="in_up",
        line_id="il_credit",
        price_id="price_pro_monthly",
        amount=-1333,
        period_start=upgrade_at,
        period_end=NEXT,
        proration=True,
    )
    charge = renewal_line(
        legacy=legacy,
        invoice_id="in_up",
        line_id="il_charge",
        subscription_item="si_1",
        price_id="price_elite_monthly",
        amount=3333,
        period_start=upgrade_at,
        period_end=NEXT,
        proration=True,
    )
    event = se.invoice_event(
        invoice_id="in_up",
        subscription="sub_1",
        lines=[credit, charge],
        amount_paid=2000,
        billing_reason="subscription_update",
        legacy=legacy,
    )

    fact = paid(event)

    assert (fact.billing_reason, fact.amount_paid, fact.total) == (
        "subscription_update",
        2000,
        2000,
    )
    assert [(ln.line_id, ln.price_id, ln.amount, ln.proration) for ln in fact.lines] == [
        ("il_credit", "price_pro_monthly", -1333, True),
        ("il_charge", "price_elite_monthly", 3333, True),
    ]
    assert all(ln.is_subscription for ln in fact.lines)
    assert {(ln.subscription_id, ln.subscription_item_id) for ln in fact.lines} == {
        ("sub_1", "si_1")
    }
    assert {(ln.period_start, ln.period_end) for ln in fact.lines} == {(upgrade_at, NEXT)}


@SHAPES
def test_given_a_renewal_that_also_bills_earlier_prorations_then_the_conveniences_follow_the_plan_line(
    legacy: bool,
) -> None:
    lines = [
        renewal_line(
            legacy=legacy,
            line_id="il_prorated",
            price_id="price_pro_monthly",
            amount=-1000,
            period_start=T0 - 20 * se.DAY,
            period_end=T0,
            proration=True,
        ),
        renewal_line(legacy=legacy, line_id="il_plan", price_id="price_elite_monthly", amount=5000),
    ]

    fact = paid(se.invoice_event(lines=lines, amount_paid=4000, legacy=legacy))

    assert fact.price_ids == ("price_elite_monthly",)
    assert (fact.period_start, fact.period_end) == (T0, NEXT)
    assert [ln.proration for ln in fact.lines] == [True, False]


def test_given_an_old_invoiceitem_proration_line_then_it_is_a_subscription_line() -> None:
    line = renewal_line(legacy=True, proration=True, amount=-500)
    assert line["type"] == "invoiceitem"

    (fact_line,) = paid(se.invoice_event(lines=[line], legacy=True)).lines

    assert (fact_line.is_subscription, fact_line.proration, fact_line.subscription_item_id) == (
        True,
        True,
        "si_1",
    )


def test_given_a_basil_invoice_item_proration_of_a_subscription_then_it_is_its_line() -> None:
    line = renewal_line(legacy=False, proration=True, amount=-500)
    details = line["parent"]["subscription_item_details"]
    line["parent"] = {
        "type": "invoice_item_details",
        "subscription_item_details": None,
        "invoice_item_details": {
            "invoice_item": details["invoice_item"],
            "proration": True,
            "proration_details": {"credited_items": None},
            "subscription": "sub_1",
        },
    }

    (fact_line,) = paid(se.invoice_event(lines=[line])).lines

    assert (fact_line.is_subscription, fact_line.subscription_id) == (True, "sub_1")
    assert fact_line.subscription_item_id is None


# -- trials, one-off invoices ----------------------------------------------------------------------


@SHAPES
def test_given_the_zero_dollar_invoice_of_a_trial_then_it_is_paid_with_the_trial_period(
    legacy: bool,
) -> None:
    trial_end = T0 + 14 * se.DAY
    event = se.invoice_event(
        lines=[renewal_line(legacy=legacy, amount=0, period_end=trial_end)],
        amount_paid=0,
        billing_reason="subscription_create",
        legacy=legacy,
    )

    fact = paid(event)

    assert (fact.paid, fact.amount_paid, fact.total, fact.billing_reason) == (
        True,
        0,
        0,
        "subscription_create",
    )
    assert fact.payment_intent_ids == ()
    assert [(ln.amount, ln.period_start, ln.period_end) for ln in fact.lines] == [
        (0, T0, trial_end)
    ]


@SHAPES
def test_given_a_one_off_invoice_that_names_a_package_then_account_and_package_come_from_its_metadata(
    legacy: bool,
) -> None:
    event = se.invoice_event(
        subscription=None,
        price_ids=["price_credits_500"],
        amount_paid=499,
        billing_reason="manual",
        metadata={"billfold_account": "user_9", "billfold_package": "starter"},
        legacy=legacy,
    )

    fact = paid(event)

    assert (fact.subscription_id, fact.metadata_account, fact.metadata_package) == (
        None,
        "user_9",
        "starter",
    )
    assert [(ln.price_id, ln.is_subscription, ln.subscription_id) for ln in fact.lines] == [
        ("price_credits_500", False, None)
    ]
    assert fact.price_ids == ("price_credits_500",)


@SHAPES
def test_given_account_in_both_metadata_then_the_subscriptions_snapshot_wins(legacy: bool) -> None:
    event = se.invoice_event(
        subscription_metadata={"billfold_account": "from_subscription"},
        metadata={"billfold_account": "from_invoice"},
        legacy=legacy,
    )

    assert paid(event).metadata_account == "from_subscription"


def test_given_an_old_invoice_with_its_subscription_expanded_then_it_names_the_account() -> None:
    event = se.invoice_event(legacy=True, subscription="sub_x")
    event["data"]["object"]["subscription"] = se.subscription(
        subscription_id="sub_x", metadata={"billfold_account": "user_x"}, legacy=True
    )

    fact = paid(event)

    assert (fact.subscription_id, fact.metadata_account) == ("sub_x", "user_x")


# -- prices, quantities, several lines -------------------------------------------------------------


@pytest.mark.parametrize("price_expanded", [False, True], ids=["price-id", "price-object"])
def test_given_a_basil_line_price_as_an_id_or_as_the_expanded_price_then_the_id_is_read(
    price_expanded: bool,
) -> None:
    line = renewal_line(legacy=False, price_id="price_pro_monthly", price_expanded=price_expanded)
    price = line["pricing"]["price_details"]["price"]
    assert isinstance(price, dict) is price_expanded

    event = se.invoice_event(lines=[line], api_version=se.ENDIVE_API_VERSION)

    assert [ln.price_id for ln in paid(event).lines] == ["price_pro_monthly"]


@pytest.mark.parametrize("form", ["object", "id", "plan-only"])
def test_given_a_legacy_line_price_in_any_form_then_the_id_is_read(form: str) -> None:
    line = renewal_line(legacy=True, price_id="price_pro_monthly")
    if form == "id":
        line["price"] = "price_pro_monthly"
    if form == "plan-only":
        line["price"] = None

    event = se.invoice_event(lines=[line], legacy=True)

    assert [ln.price_id for ln in paid(event).lines] == ["price_pro_monthly"]


@SHAPES
def test_given_a_multi_item_invoice_then_each_line_keeps_its_price_quantity_and_item(
    legacy: bool,
) -> None:
    lines = [
        renewal_line(legacy=legacy, line_id="il_seats", subscription_item="si_seats",
                     price_id="price_seat", quantity=3, amount=3000),
        renewal_line(legacy=legacy, line_id="il_addon", subscription_item="si_addon",
                     price_id="price_addon", quantity=1, amount=500,
                     period_start=T0 + 5, period_end=NEXT + 5),
    ]  # fmt: skip

    fact = paid(se.invoice_event(lines=lines, amount_paid=3500, legacy=legacy))

    assert [
        (ln.line_id, ln.price_id, ln.quantity, ln.subscription_item_id, ln.period_start)
        for ln in fact.lines
    ] == [
        ("il_seats", "price_seat", 3, "si_seats", T0),
        ("il_addon", "price_addon", 1, "si_addon", T0 + 5),
    ]
    assert fact.price_ids == ("price_seat", "price_addon")
    assert (fact.period_start, fact.period_end) == (T0, NEXT + 5)


def test_given_a_truncated_line_list_then_the_fact_says_lines_are_incomplete() -> None:
    fact = paid(se.invoice_event(lines_has_more=True))

    assert fact.lines_complete is False
    assert len(fact.lines) == 1


def test_given_an_invoice_without_lines_then_there_is_no_period_rather_than_the_invoices() -> None:
    fact = paid(se.invoice_event(lines=[], period_start=T0))

    assert (fact.lines, fact.lines_complete, fact.price_ids) == ((), True, ())
    assert (fact.period_start, fact.period_end) == (None, None)


def test_given_an_invoice_whose_lines_were_left_out_then_they_are_incomplete() -> None:
    event = se.invoice_event()
    event["data"]["object"]["lines"] = None

    fact = paid(event)

    assert (fact.lines, fact.lines_complete) == ((), False)


# -- payments, status, customer --------------------------------------------------------------------


def test_given_a_basil_invoice_without_its_payments_then_payment_intents_are_unknown() -> None:
    fact = paid(se.invoice_event(payment_intent="pi_hidden", include_payments=False))

    assert (fact.payment_intent_ids, fact.payments_complete, fact.charge_id) == ((), False, None)


def test_given_a_legacy_invoice_then_its_payment_intent_and_charge_are_read() -> None:
    event = se.invoice_event(
        payment_intent={"id": "pi_obj", "object": "payment_intent"}, legacy=True
    )
    event["data"]["object"]["charge"] = "ch_old"

    fact = paid(event)

    assert (fact.payment_intent_ids, fact.payments_complete, fact.charge_id) == (
        ("pi_obj",),
        True,
        "ch_old",
    )


def test_given_a_legacy_invoice_that_says_paid_true_then_it_is_paid() -> None:
    event = se.invoice_event(legacy=True)
    event["data"]["object"]["status"] = None

    fact = paid(event)

    assert (fact.status, fact.paid) == (None, True)


def test_given_an_invoice_paid_event_whose_invoice_is_open_then_it_is_not_paid() -> None:
    fact = paid(se.invoice_event(status="open"))

    assert (fact.status, fact.paid, fact.paid_at, fact.amount_paid) == ("open", False, None, 0)


def test_an_unknown_billing_reason_is_kept_verbatim() -> None:
    fact = paid(se.invoice_event(billing_reason="subscription_something_new"))

    assert fact.billing_reason == "subscription_something_new"


def test_given_an_expanded_customer_and_no_invoice_email_then_the_customers_is_used() -> None:
    event = se.invoice_event(
        customer=se.customer(customer_id="cus_exp", email="cust@example.com"), customer_email=None
    )

    fact = paid(event)

    assert (fact.customer_id, fact.customer_email) == ("cus_exp", "cust@example.com")


def test_given_an_invoice_whose_parent_is_a_quote_then_it_has_no_subscription() -> None:
    fact = paid(se.any_event("invoice.paid", se.fixture("invoice")))

    assert fact.subscription_id is None
    assert fact.metadata_account is None


def test_given_an_invoice_without_parent_then_the_subscription_is_found_on_its_lines() -> None:
    event = se.invoice_event(subscription="sub_on_lines")
    event["data"]["object"]["parent"] = None

    assert paid(event).subscription_id == "sub_on_lines"


@SHAPES
def test_huge_and_negative_amounts_are_kept_as_integers_for_the_rules_to_flag(legacy: bool) -> None:
    event = se.invoice_event(legacy=legacy)
    event["data"]["object"].update(amount_paid=2**70, total=-5)

    fact = paid(event)

    assert (fact.amount_paid, fact.total) == (2**70, -5)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("amount_paid",), 20.0, "data.object.amount_paid must be an integer or null, got float"),
        (
            ("amount_paid",),
            True,
            "data.object.amount_paid must be an integer or null, got a boolean",
        ),
        (("total",), None, "data.object.total is missing"),
        (("currency",), None, "data.object.currency is missing"),
        (("lines", "data", 0, "period"), None, "data.object.lines.data[0].period is missing"),
        (("lines", "data", 0, "period", "end"), "soon", "lines.data[0].period.end must be an int"),
        (
            ("lines", "data", 0, "amount"),
            1.5,
            "data.object.lines.data[0].amount must be an integer",
        ),
        (("lines", "data", 0, "id"), None, "data.object.lines.data[0].id is missing"),
        (
            ("lines", "data", 0, "pricing", "price_details", "price"),
            {"object": "price"},
            "price.id",
        ),
        (("lines", "data", 0, "parent"), "sub_1", "lines.data[0].parent must be an object"),
        (("parent", "subscription_details"), [], "parent.subscription_details must be an object"),
        (("payments",), {"data": [5]}, "data.object.payments.data[0] must be an object"),
        (("status_transitions",), 3, "status_transitions must be an object or null"),
    ],
)
def test_given_a_malformed_paid_invoice_then_it_is_ignored_naming_the_field(
    path: tuple[Any, ...], value: object, expected: str
) -> None:
    event = se.invoice_event(include_payments=True)
    target: Any = event["data"]["object"]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value

    fact = tr.translate(event)

    assert isinstance(fact, facts.Ignored)
    assert fact.reason.startswith(f"malformed invoice.paid event {event['id']}: ")
    assert expected in fact.reason


# -- failures and recorded invoice events ----------------------------------------------------------


@SHAPES
def test_given_a_failed_renewal_payment_then_the_fact_says_when_stripe_tries_again(
    legacy: bool,
) -> None:
    event = se.invoice_event(
        "payment_failed",
        invoice_id="in_f",
        subscription="sub_f",
        customer="cus_f",
        next_payment_attempt=T0 + 3 * se.DAY,
        attempt_count=2,
        period_start=T0,
        subscription_metadata={"billfold_account": "user_f"},
        payment_intent="pi_f",
        include_payments=True,
        legacy=legacy,
        event_created=T0 + 60,
    )

    assert tr.translate(event) == facts.InvoicePaymentFailed(
        invoice_id="in_f",
        status="open",
        subscription_id="sub_f",
        customer_id="cus_f",
        customer_email="jenny.rosen@example.com",
        amount_due=2000,
        currency="usd",
        attempt_count=2,
        next_payment_attempt=T0 + 3 * se.DAY,
        billing_reason="subscription_cycle",
        metadata_account="user_f",
        payment_intent_ids=("pi_f",),
        event_type="invoice.payment_failed",
        livemode=False,
        created=T0,
        event_created=T0 + 60,
    )


def test_given_the_last_failed_attempt_then_there_is_no_next_attempt() -> None:
    fact = tr.translate(se.invoice_event("payment_failed", next_payment_attempt=None))

    assert isinstance(fact, facts.InvoicePaymentFailed)
    assert fact.next_payment_attempt is None


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("voided", "void"),
        ("marked_uncollectible", "uncollectible"),
        ("payment_action_required", "open"),
    ],
)
@SHAPES
def test_given_an_invoice_event_to_record_then_it_is_noted_never_paid(
    kind: str, status: str, legacy: bool
) -> None:
    event = se.invoice_event(
        kind, invoice_id="in_n", subscription="sub_n", legacy=legacy, event_created=T0
    )

    fact = tr.translate(event)

    assert isinstance(fact, facts.InvoiceNoted)
    assert (fact.kind, fact.invoice_id, fact.status, fact.subscription_id, fact.amount_paid) == (
        kind,
        "in_n",
        status,
        "sub_n",
        0,
    )
    assert (fact.event_type, fact.event_created) == (f"invoice.{kind}", T0)


# -- invoices read from the API --------------------------------------------------------------------


def test_given_an_invoice_fetched_from_the_api_then_it_reads_like_its_paid_event() -> None:
    invoice = se.invoice(invoice_id="in_api", include_payments=True)

    from_api = tr.invoice_fact(invoice, event_created=T0 + 99)
    from_event = tr.translate(se.any_event("invoice.paid", invoice, created=T0 + 99))

    assert from_api == from_event
    assert isinstance(from_api, facts.InvoicePaid)
    assert from_api.paid is True


def test_given_an_open_invoice_fetched_from_the_api_then_it_is_not_paid() -> None:
    fact = tr.invoice_fact(se.invoice(status="open"), event_created=T0)

    assert isinstance(fact, facts.InvoicePaid)
    assert fact.paid is False


def test_given_a_fetched_invoice_read_as_a_failure_then_it_is_a_payment_failure() -> None:
    fact = tr.invoice_fact(
        se.invoice(status="open"), event_created=T0, event_type="invoice.payment_failed"
    )

    assert isinstance(fact, facts.InvoicePaymentFailed)
    assert fact.event_created == T0


@pytest.mark.parametrize("event_type", ["customer.subscription.updated", "invoice.finalized"])
def test_a_fetched_invoice_read_as_another_kind_of_event_is_ignored(event_type: str) -> None:
    fact = tr.invoice_fact(se.invoice(), event_created=T0, event_type=event_type)

    assert fact == facts.Ignored(reason=f"cannot read {event_type} from invoice objects")


def test_a_malformed_fetched_invoice_is_ignored_naming_the_invoice() -> None:
    invoice = se.invoice(invoice_id="in_bad", currency=7)  # type: ignore[arg-type]

    fact = tr.invoice_fact(invoice, event_created=T0)

    assert fact == facts.Ignored(
        reason="malformed invoice.paid object in_bad: "
        "invoice.currency must be a string or null, got an integer"
    )

"""Subscription events -> SubscriptionChanged (state) and SubscriptionNoted (to record).

From API version 2025-03-31.basil on, the period lives on each subscription item; before, on the
subscription. Both shapes give the same facts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import stripe

from billfold.adapters.stripe import translate as tr
from billfold.domain import facts
from tests.builders import stripe_events as se

T0 = 1_760_000_000
NEXT = T0 + se.MONTH
SHAPES = pytest.mark.parametrize("legacy", [False, True], ids=["basil", "2024-06-20"])


def changed(event: dict[str, Any]) -> facts.SubscriptionChanged:
    fact = tr.translate(event)
    assert isinstance(fact, facts.SubscriptionChanged), fact
    return fact


def one_item(event: dict[str, Any], item_id: str) -> dict[str, Any]:
    (item,) = event["data"]["object"]["items"]["data"]
    item["id"] = item_id
    return event


# -- the state -------------------------------------------------------------------------------------


@SHAPES
def test_given_an_updated_subscription_in_either_shape_then_its_whole_state_is_read(
    legacy: bool,
) -> None:
    event = se.subscription_event(
        "updated",
        api_version=None if legacy else se.ENDIVE_API_VERSION,
        subscription_id="sub_1",
        customer="cus_1",
        status="past_due",
        price_ids=["price_pro_monthly"],
        quantity=2,
        current_period_start=T0,
        current_period_end=NEXT,
        cancel_at_period_end=True,
        metadata={"billfold_account": "user_1"},
        legacy=legacy,
        event_created=T0 + 5,
    )
    one_item(event, "si_1")

    assert changed(event) == facts.SubscriptionChanged(
        subscription_id="sub_1",
        customer_id="cus_1",
        status="past_due",
        items=(
            facts.SubscriptionItemFact(
                item_id="si_1",
                price_id="price_pro_monthly",
                quantity=2,
                current_period_start=T0,
                current_period_end=NEXT,
            ),
        ),
        items_complete=True,
        price_ids=("price_pro_monthly",),
        quantity=2,
        current_period_start=T0,
        current_period_end=NEXT,
        cancel_at_period_end=True,
        cancel_at=None,
        canceled_at=None,
        ended_at=None,
        trial_start=None,
        trial_end=None,
        pause_collection=None,
        pending_update=False,
        metadata_account="user_1",
        test_clock_id=None,
        deleted=False,
        event_type="customer.subscription.updated",
        livemode=False,
        event_created=T0 + 5,
    )


@pytest.mark.parametrize("kind", ["created", "updated", "deleted", "paused", "resumed"])
def test_every_state_event_becomes_subscription_changed_with_its_type(kind: str) -> None:
    fact = changed(se.subscription_event(kind))

    assert fact.event_type == f"customer.subscription.{kind}"
    assert fact.deleted is (kind == "deleted")


@SHAPES
def test_given_a_deleted_subscription_then_it_is_canceled_ended_and_deleted(legacy: bool) -> None:
    event = se.subscription_event(
        "deleted", legacy=legacy, canceled_at=T0 - se.DAY, ended_at=T0, cancel_at_period_end=True
    )

    fact = changed(event)

    assert (fact.status, fact.deleted, fact.canceled_at, fact.ended_at) == (
        "canceled",
        True,
        T0 - se.DAY,
        T0,
    )


def test_given_a_portal_cancellation_then_cancel_at_is_read_without_cancel_at_period_end() -> None:
    fact = changed(se.subscription_event(cancel_at=NEXT, cancel_at_period_end=False))

    assert (fact.cancel_at, fact.cancel_at_period_end) == (NEXT, False)


@SHAPES
def test_given_a_trialing_subscription_then_the_trial_is_read(legacy: bool) -> None:
    trial_end = T0 + 14 * se.DAY
    event = se.subscription_event(
        "created",
        status="trialing",
        trial_start=T0,
        trial_end=trial_end,
        current_period_start=T0,
        current_period_end=trial_end,
        legacy=legacy,
    )

    fact = changed(event)

    assert (fact.status, fact.trial_start, fact.trial_end, fact.current_period_end) == (
        "trialing",
        T0,
        trial_end,
        trial_end,
    )


def test_given_paused_collection_then_the_status_stays_and_the_pause_is_read() -> None:
    event = se.subscription_event(
        status="active", pause_collection={"behavior": "keep_as_draft", "resumes_at": NEXT}
    )

    fact = changed(event)

    assert fact.status == "active"
    assert fact.pause_collection == facts.PauseCollection(behavior="keep_as_draft", resumes_at=NEXT)


def test_given_a_paused_subscription_then_its_status_is_paused() -> None:
    fact = changed(se.subscription_event("paused"))

    assert (fact.status, fact.pause_collection, fact.event_type) == (
        "paused",
        None,
        "customer.subscription.paused",
    )


@pytest.mark.parametrize("expanded", [False, True], ids=["id", "object"])
def test_given_a_subscription_on_a_test_clock_then_the_clock_is_named(expanded: bool) -> None:
    clock = se.fixture("test_helpers.test_clock")
    clock["id"] = "clock_1"

    fact = changed(se.subscription_event(test_clock=clock if expanded else "clock_1"))

    assert fact.test_clock_id == "clock_1"


def test_given_a_change_waiting_for_its_invoice_then_the_pending_update_is_noticed() -> None:
    pending = se.fixture("subscription")["pending_update"]

    fact = changed(se.subscription_event(pending_update=pending))

    assert fact.pending_update is True


# -- items and periods -----------------------------------------------------------------------------


def test_given_items_with_different_periods_then_each_item_keeps_its_own() -> None:
    sub = "sub_multi"
    items = [
        se.subscription_item(subscription_id=sub, item_id="si_plan", price_id="price_pro_monthly",
                             quantity=1, current_period_start=T0, current_period_end=NEXT),
        se.subscription_item(subscription_id=sub, item_id="si_seats", price_id="price_seat",
                             quantity=5, current_period_start=T0 + 9, current_period_end=NEXT + 9),
        se.subscription_item(subscription_id=sub, item_id="si_seats_2", price_id="price_seat",
                             quantity=1, current_period_start=T0 - 3, current_period_end=NEXT - 3),
    ]  # fmt: skip
    event = se.subscription_event(
        subscription_id=sub, items=items, api_version=se.ENDIVE_API_VERSION
    )

    fact = changed(event)

    assert fact.items == (
        facts.SubscriptionItemFact(item_id="si_plan", price_id="price_pro_monthly", quantity=1,
                                   current_period_start=T0, current_period_end=NEXT),
        facts.SubscriptionItemFact(item_id="si_seats", price_id="price_seat", quantity=5,
                                   current_period_start=T0 + 9, current_period_end=NEXT + 9),
        facts.SubscriptionItemFact(item_id="si_seats_2", price_id="price_seat", quantity=1,
                                   current_period_start=T0 - 3, current_period_end=NEXT - 3),
    )  # fmt: skip
    assert fact.price_ids == ("price_pro_monthly", "price_seat")
    assert fact.quantity is None  # several items: choose the one whose price is a plan's
    assert (fact.current_period_start, fact.current_period_end) == (T0 - 3, NEXT + 9)


def test_given_an_old_multi_item_subscription_then_items_have_its_period() -> None:
    event = se.subscription_event(
        price_ids=["price_pro_monthly", "price_seat"],
        current_period_start=T0,
        current_period_end=NEXT,
        legacy=True,
    )
    assert "current_period_end" not in event["data"]["object"]["items"]["data"][0]

    fact = changed(event)

    assert [(i.current_period_start, i.current_period_end) for i in fact.items] == [
        (T0, NEXT),
        (T0, NEXT),
    ]


def test_the_item_period_wins_over_a_top_level_one() -> None:
    event = se.subscription_event(current_period_start=T0, current_period_end=NEXT)
    event["data"]["object"].update(current_period_start=T0 - 50, current_period_end=T0)

    fact = changed(event)

    assert (fact.items[0].current_period_start, fact.items[0].current_period_end) == (T0, NEXT)
    assert (fact.current_period_start, fact.current_period_end) == (T0, NEXT)


def test_an_item_price_sent_as_an_id_or_only_as_a_legacy_plan_is_read() -> None:
    event = se.subscription_event(price_ids=["price_a", "price_b"])
    items = event["data"]["object"]["items"]["data"]
    items[0]["price"] = "price_as_id"
    items[1]["price"] = None

    fact = changed(event)

    assert fact.price_ids == ("price_as_id", "price_b")


def test_a_subscription_with_no_period_anywhere_has_none() -> None:
    event = se.subscription_event()
    for item in event["data"]["object"]["items"]["data"]:
        del item["current_period_start"], item["current_period_end"]

    fact = changed(event)

    assert (fact.current_period_start, fact.current_period_end) == (None, None)
    assert fact.items[0].current_period_end is None


def test_a_truncated_item_list_is_incomplete() -> None:
    event = se.subscription_event()
    event["data"]["object"]["items"]["has_more"] = True

    assert changed(event).items_complete is False


# -- what cannot be read ---------------------------------------------------------------------------


def test_a_subscription_status_stripe_does_not_document_is_ignored_with_the_reason() -> None:
    fact = tr.translate(se.subscription_event(status="on_vacation"))

    assert isinstance(fact, facts.Ignored)
    assert "data.object.status" in fact.reason
    assert "on_vacation" in fact.reason


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"items": []}, "data.object.items must be an object or null, got an array"),
        ({"cancel_at": "tomorrow"}, "data.object.cancel_at must be an integer or null"),
        ({"trial_end": 1.5e9}, "data.object.trial_end must be an integer or null, got float"),
        ({"cancel_at_period_end": 1}, "cancel_at_period_end must be true or false, got an integer"),
        ({"pause_collection": {"resumes_at": None}}, "pause_collection.behavior is missing"),
        ({"pending_update": True}, "data.object.pending_update must be an object or null"),
        ({"test_clock": {"object": "test_helpers.test_clock"}}, "test_clock.id is missing"),
    ],
)
def test_a_malformed_subscription_is_ignored_naming_the_field(
    change: dict[str, Any], expected: str
) -> None:
    event = se.subscription_event()
    event["data"]["object"].update(change)

    fact = tr.translate(event)

    assert isinstance(fact, facts.Ignored)
    assert fact.reason.startswith(f"malformed customer.subscription.updated event {event['id']}: ")
    assert expected in fact.reason


def test_an_item_without_an_id_is_malformed() -> None:
    event = se.subscription_event()
    event["data"]["object"]["items"]["data"][0]["id"] = None

    fact = tr.translate(event)

    assert isinstance(fact, facts.Ignored)
    assert "data.object.items.data[0].id is missing" in fact.reason


# -- recorded subscription events ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["trial_will_end", "pending_update_applied", "pending_update_expired"]
)
@SHAPES
def test_given_an_event_to_record_then_it_is_noted_with_the_state_it_saw(
    kind: str, legacy: bool
) -> None:
    state = se.subscription(
        subscription_id="sub_t", status="trialing", trial_end=NEXT, legacy=legacy
    )
    full = f"customer.subscription.{kind}"

    noted = tr.translate(se.any_event(full, state, created=T0))
    as_update = changed(se.any_event("customer.subscription.updated", state, created=T0))

    assert isinstance(noted, facts.SubscriptionNoted)
    assert not isinstance(noted, facts.SubscriptionChanged)
    assert noted.kind == kind
    assert noted.event_type == full
    same = {f.name: getattr(noted, f.name) for f in dataclasses.fields(facts.SubscriptionFact)}
    assert facts.SubscriptionChanged(**same) == dataclasses.replace(as_update, event_type=full)


# -- subscriptions read from the API ---------------------------------------------------------------


def test_given_a_fetched_subscription_then_it_reads_like_an_update_as_of_the_fetch() -> None:
    sub = se.subscription(subscription_id="sub_api", status="active")

    fact = tr.subscription_fact(sub, event_created=T0 + 500)

    assert fact == tr.translate(
        se.any_event("customer.subscription.updated", sub, created=T0 + 500)
    )
    assert isinstance(fact, facts.SubscriptionChanged)
    assert fact.event_created == T0 + 500


def test_given_a_subscription_from_the_stripe_sdk_then_its_dict_is_read() -> None:
    sub = se.subscription(
        subscription_id="sub_sdk", current_period_start=T0, current_period_end=NEXT
    )
    sdk_object = stripe.Subscription.construct_from(sub, "sk_test_x")

    fact = tr.subscription_fact(sdk_object.to_dict(), event_created=T0)
    undone = tr.subscription_fact(sdk_object, event_created=T0)

    assert isinstance(fact, facts.SubscriptionChanged)
    assert (fact.subscription_id, fact.current_period_end) == ("sub_sdk", NEXT)
    assert undone == facts.Ignored(
        reason="not a Stripe subscription object but Subscription; pass an SDK object's to_dict()"
    )


def test_a_fetched_subscription_may_be_read_as_a_deletion() -> None:
    sub = se.subscription(status="canceled")

    fact = tr.subscription_fact(sub, event_created=T0, event_type="customer.subscription.deleted")

    assert isinstance(fact, facts.SubscriptionChanged)
    assert fact.deleted is True


@pytest.mark.parametrize(
    ("obj", "event_type", "reason"),
    [
        ({"object": "subscription"}, "invoice.paid", "cannot read invoice.paid from subscription objects"),
        ("sub_1", "customer.subscription.updated",
         "not a Stripe subscription object but str; pass an SDK object's to_dict()"),
        ({"object": "invoice", "id": "in_1"}, "customer.subscription.updated",
         "malformed customer.subscription.updated object in_1: "
         "subscription.object must be 'subscription', got 'invoice'"),
    ],
)  # fmt: skip
def test_what_is_not_a_subscription_is_ignored(obj: Any, event_type: str, reason: str) -> None:
    fact = tr.subscription_fact(obj, event_created=T0, event_type=event_type)

    assert fact == facts.Ignored(reason=reason)

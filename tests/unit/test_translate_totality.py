"""The translator is total: whatever a handled event holds, it returns a fact and never raises.

Properties over every handled event type, in both API shapes: random fields of a real event
replaced by arbitrary JSON values (or deleted), whole objects made of arbitrary JSON, bare objects
given to the API readers. Facts are plain frozen values: no dict or list of Stripe's leaks in.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billfold.adapters.stripe import translate as tr
from billfold.domain import facts
from tests.builders import stripe_events as se

Build = Callable[[], dict[str, Any]]


def _upgrade_invoice(type_: str, legacy: bool) -> dict[str, Any]:
    lines = [
        se.invoice_line(invoice_id="in_u", subscription="sub_u", price_id=price, amount=amount,
                        period_start=1, period_end=2, proration=True, legacy=legacy,
                        price_expanded=not legacy)
        for price, amount in (("price_pro", -1000), ("price_elite", 3000))
    ]  # fmt: skip
    return se.invoice_event(
        type_, invoice_id="in_u", subscription="sub_u", lines=lines, legacy=legacy,
        include_payments=not legacy, billing_reason="subscription_update",
    )  # fmt: skip


def _templates(event_type: str) -> list[Build]:
    """Events of ``event_type`` in the shapes billfold reads."""
    short = event_type.rsplit(".", 1)[-1]
    if event_type.startswith("checkout.session."):
        build = {
            "completed": se.checkout_session_completed,
            "async_payment_succeeded": se.async_payment_succeeded,
            "async_payment_failed": se.async_payment_failed,
            "expired": se.session_expired,
        }[short]
        return [build, lambda: build(mode="subscription", invoice="in_1", customer="cus_1")]
    if event_type == "payment_intent.succeeded":
        return [se.payment_intent_succeeded]
    if event_type == "payment_intent.payment_failed":
        return [se.payment_intent_failed]
    if event_type.startswith("customer.subscription."):
        return [
            lambda: se.subscription_event(event_type, price_ids=["price_a", "price_b"]),
            lambda: se.subscription_event(
                event_type, legacy=True, pause_collection={"behavior": "void", "resumes_at": 9}
            ),
        ]
    if event_type.startswith("invoice."):
        return [
            lambda: se.invoice_event(event_type, include_payments=True),
            lambda: se.invoice_event(event_type, legacy=True, subscription=None),
            lambda: _upgrade_invoice(event_type, legacy=False),
            lambda: _upgrade_invoice(event_type, legacy=True),
        ]
    if event_type == "charge.refunded":
        return [se.charge_refunded, lambda: se.charge_refunded(include_refunds=False)]
    if event_type.startswith("refund.") or event_type == "charge.refund.updated":
        return [lambda: se.refund_event(event_type), lambda: se.refund_event(event_type, status="failed")]  # fmt: skip
    if event_type == "charge.dispute.created":
        return [se.dispute_created]
    if event_type == "charge.dispute.closed":
        return [se.dispute_closed]
    if event_type.startswith("charge.dispute."):
        return [lambda: se.dispute_event(event_type), lambda: se.dispute_event("funds_reinstated")]
    raise AssertionError(f"no template for {event_type}: add one")


HANDLED = sorted(tr.HANDLED_EVENT_TYPES)
TEMPLATES = {kind: [build() for build in _templates(kind)] for kind in HANDLED}

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "evt_1",
            "usd",
            "USD",
            "paid",
            "active",
            "won",
            "failed",
            "price_details",
            "subscription_item_details",
            "invoice_item_details",
            "subscription_details",
            "",
        ]
    ),
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


def _plain(value: object) -> bool:
    """A fact's field holds plain values: no dict or list that Stripe sent."""
    if value is None or isinstance(value, str | int | bool):
        return True
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_plain(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


@pytest.mark.parametrize("kind", HANDLED)
def test_every_template_of_every_handled_type_becomes_a_plain_frozen_fact(kind: str) -> None:
    for event in TEMPLATES[kind]:
        fact = tr.translate(event)

        assert not isinstance(fact, facts.Ignored), fact
        assert _plain(fact)
        hash(fact)
        with pytest.raises(dataclasses.FrozenInstanceError):
            fact.livemode = True  # type: ignore[misc]


@pytest.mark.parametrize("kind", HANDLED)
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_translate_never_raises_whatever_fields_of_a_handled_event_hold(
    kind: str, data: st.DataObject
) -> None:
    template = data.draw(st.sampled_from(TEMPLATES[kind]))
    expected = type(tr.translate(template))
    event = copy.deepcopy(template)
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

    assert isinstance(fact, expected | facts.Ignored)
    assert _plain(fact)


@pytest.mark.parametrize("kind", HANDLED)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_translate_never_raises_whatever_a_handled_object_is_made_of(
    kind: str, data: st.DataObject
) -> None:
    template = TEMPLATES[kind][0]
    keys = st.sampled_from(sorted(template["data"]["object"]))
    obj = data.draw(st.dictionaries(keys, _json, max_size=12))
    obj["object"] = template["data"]["object"]["object"]
    event = {**template, "data": {"object": obj}}

    assert isinstance(tr.translate(event), facts.Fact)


_READERS: list[Callable[[Any], object]] = [
    lambda obj: tr.checkout_session_fact(obj),
    lambda obj: tr.subscription_fact(obj, event_created=1),
    lambda obj: tr.invoice_fact(obj, event_created=1),
    lambda obj: tr.invoice_fact(obj, event_created=1, event_type="invoice.payment_failed"),
]


@settings(max_examples=150, deadline=None)
@given(reader=st.sampled_from(_READERS), obj=_json)
def test_the_api_object_readers_never_raise(reader: Callable[[Any], object], obj: object) -> None:
    assert isinstance(reader(obj), facts.Fact)


@given(event=st.dictionaries(st.sampled_from(["id", "object", "type", "data", "created"]), _json))
def test_translate_never_raises_on_arbitrary_json(event: dict[str, Any]) -> None:
    assert isinstance(tr.translate(event), facts.Ignored)

"""The Events API: newest first, Stripe's filters, cursors, and the SDK's auto-pagination."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import stripe

if TYPE_CHECKING:
    from tests.simulator.conftest import Sim


def emit_some(sim: Sim) -> list[str]:
    """Three customers and one paid session; return the event types in the order emitted."""
    for n in range(3):
        sim.stripe.v1.customers.create(params={"email": f"c{n}@example.com"})
    session = sim.session()
    sim.control(f"sessions/{session.id}/pay")
    return ["customer.created"] * 3 + [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]


def test_events_list_newest_first_and_auto_paginates(sim: Sim) -> None:
    emitted = emit_some(sim)

    first = sim.stripe.v1.events.list(params={"limit": 2})
    everything = list(first.auto_paging_iter())

    assert first.has_more is True
    assert first.url == "/v1/events"
    assert [e.type for e in everything] == list(reversed(emitted))
    assert len({e.id for e in everything}) == len(emitted)


def test_ending_before_pages_backwards(sim: Sim) -> None:
    emit_some(sim)
    everything = sim.stripe.v1.events.list(params={"limit": 100}).data

    before = sim.stripe.v1.events.list(params={"ending_before": everything[3].id, "limit": 2})

    assert [e.id for e in before.data] == [everything[1].id, everything[2].id]
    assert before.has_more is True


def test_type_types_and_wildcards_filter_events(sim: Sim) -> None:
    emit_some(sim)

    one = sim.stripe.v1.events.list(params={"type": "customer.created"})
    two = sim.stripe.v1.events.list(
        params={"types": ["charge.succeeded", "checkout.session.completed"]}
    )
    wildcard = sim.stripe.v1.events.list(params={"type": "payment_intent.*"})

    assert [e.type for e in one.data] == ["customer.created"] * 3
    assert [e.type for e in two.data] == ["checkout.session.completed", "charge.succeeded"]
    assert {e.type for e in wildcard.data} == {
        "payment_intent.created",
        "payment_intent.succeeded",
    }
    with pytest.raises(stripe.InvalidRequestError):
        sim.stripe.v1.events.list(params={"type": "a", "types": ["b"]})


def test_created_filters_compare_timestamps(sim: Sim) -> None:
    emit_some(sim)
    newest = sim.stripe.v1.events.list(params={"limit": 1}).data[0]

    gte = sim.stripe.v1.events.list(params={"created": {"gte": newest.created}, "limit": 100})
    gt = sim.stripe.v1.events.list(params={"created": {"gt": newest.created}})
    lte = sim.stripe.v1.events.list(params={"created": {"lte": newest.created}, "limit": 100})
    lt = sim.stripe.v1.events.list(params={"created": {"lt": newest.created - 3600}})
    exact = sim.stripe.v1.events.list(params={"created": newest.created, "limit": 100})

    assert newest.id in {e.id for e in gte.data}
    assert gt.data == []
    assert len(lte.data) == 7
    assert lt.data == []
    assert newest.id in {e.id for e in exact.data}


def test_a_retrieved_event_equals_the_listed_one(sim: Sim) -> None:
    emit_some(sim)
    sim.flush()
    listed = sim.stripe.v1.events.list(params={"limit": 1}).data[0]

    retrieved = sim.stripe.v1.events.retrieve(listed.id)

    assert retrieved.to_dict() == listed.to_dict()
    assert retrieved.data.object.object == "checkout.session"


def test_bad_list_params_are_refused(sim: Sim) -> None:
    with pytest.raises(stripe.InvalidRequestError) as too_many:
        sim.stripe.v1.events.list(params={"limit": 101})
    with pytest.raises(stripe.InvalidRequestError) as unknown_cursor:
        sim.stripe.v1.events.list(params={"starting_after": "evt_unknown"})

    assert too_many.value.param == "limit"
    assert unknown_cursor.value.code == "resource_missing"
    assert unknown_cursor.value.param == "starting_after"

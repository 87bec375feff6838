"""A batch of webhook deliveries that meets one needing Stripe: the others are still written
together, and the one that needs Stripe is made on its own, as one delivery is (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from billfold.adapters.stripe import signature
from billfold.bootstrap import Services, build
from billfold.service import inbox as inbox_module
from billfold.service.inbox import Delivery, WebhookReceipt
from tests.builders import stripe_events as se
from tests.support.app import SECRET, balances, count, event_status, settings_for


@pytest.fixture
def services(db_url: str, engine: Any) -> Iterator[Services]:
    built = build(settings_for(db_url))
    try:
        yield built
    finally:
        built.close()


def delivery(services: Services, event: dict[str, Any]) -> Delivery:
    body = json.dumps(event).encode()
    verified = services.inbox.events.verify(body, signature.sign(body, SECRET))
    return Delivery(event=verified.event, fact=verified.fact)


def paid(account: str) -> dict[str, Any]:
    return se.checkout_session_completed(
        metadata={"billfold_account": account, "billfold_package": "starter"}, amount_total=499
    )


def needs_line_items(account: str) -> dict[str, Any]:
    return se.checkout_session_completed(metadata={}, client_reference_id=account)


def test_one_delivery_needing_stripe_is_set_aside_and_the_rest_are_written_together(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [paid("alice"), needs_line_items("bob"), paid("carol"), paid("alice")]
    events.append(events[0])  # a redelivery in the same batch
    writes: list[int] = []
    write_batch = services.inbox._write_batch

    def counted(deliveries: Any, *, skip: frozenset[int]) -> Any:
        writes.append(len(deliveries) - len(skip))
        return write_batch(deliveries, skip=skip)

    monkeypatch.setattr(services.inbox, "_write_batch", counted)
    receipts = services.inbox._receive_batch([delivery(services, e) for e in events])

    assert all(isinstance(r, WebhookReceipt) for r in receipts)
    assert [(r.status, r.duplicate) for r in receipts if isinstance(r, WebhookReceipt)] == [
        ("processed", False),
        ("received", False),  # left for the worker, as one delivery alone would be
        ("processed", False),
        ("processed", False),
        ("duplicate", True),
    ]
    assert writes == [5, 4]  # undone once at the delivery needing Stripe, then written without it
    assert balances(services, "alice") == {"credits": 1000}
    assert balances(services, "carol") == {"credits": 500}
    assert balances(services, "bob") == {}
    assert event_status(services, events[1]["id"]) == "received"
    assert count(services, "orders") == 3  # bob's order waits for the worker's line items


def test_deliveries_shaped_like_the_one_needing_stripe_are_set_aside_with_it(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    needing = [needs_line_items(f"user_{i}") for i in range(5)]
    writes: list[int] = []
    write_batch = services.inbox._write_batch

    def counted(deliveries: Any, *, skip: frozenset[int]) -> Any:
        writes.append(len(deliveries) - len(skip))
        return write_batch(deliveries, skip=skip)

    monkeypatch.setattr(services.inbox, "_write_batch", counted)
    receipts = services.inbox._receive_batch(
        [delivery(services, e) for e in [paid("dan"), *needing]]
    )
    assert writes == [6, 1]  # one undone attempt, not one per delivery needing Stripe
    assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == [
        "processed",
        *["received"] * 5,
    ]
    assert balances(services, "dan") == {"credits": 500}
    assert all(event_status(services, e["id"]) == "received" for e in needing)


def test_past_the_set_aside_limit_the_batch_writes_nothing_and_the_combiner_takes_each_alone(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "_shape", lambda fact: id(fact))  # every one unlike
    needing = [needs_line_items(f"user_{i}") for i in range(inbox_module.SET_ASIDE + 1)]
    with pytest.raises(inbox_module._OnItsOwn):
        services.inbox._receive_batch([delivery(services, e) for e in [paid("dan"), *needing]])
    assert count(services, "events") == 0
    assert count(services, "orders") == 0

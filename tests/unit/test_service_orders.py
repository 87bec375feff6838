"""The operator's desk (``service/orders/desk.py``) on the memory database: an order that needs
attention is resolved once, by naming what was missing, or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from billfold.domain import errors
from billfold.domain.orders import OrderRecord
from billfold.service.orders.desk import ResolveOrder
from tests.builders import stripe_events as se
from tests.support.memory import FakeStripe, Shop, line_item


@pytest.fixture
def shop() -> Iterator[Shop]:
    opened = Shop.open(stripe=FakeStripe())
    yield opened
    assert opened.db.verify() == []


def needing_attention(shop: Shop, event: dict[str, Any]) -> OrderRecord:
    shop.deliver(event)
    shop.run_worker()
    (order,) = shop.orders("needs_attention")
    return order


def unknown_package(shop: Shop) -> OrderRecord:
    """A session without billfold's metadata buying two packages at once: no package is known."""
    event = se.checkout_session_completed(metadata={}, client_reference_id="user_1")
    session_id = str(event["data"]["object"]["id"])
    assert shop.stripe is not None
    shop.stripe.line_items[session_id] = [
        line_item("price_starter", 250),
        line_item("price_starter", 249),
    ]
    order = needing_attention(shop, event)
    assert (order.package, order.account_id) == (None, "user_1")
    return order


def test_given_an_amount_mismatch_when_the_operator_names_the_package_then_granted_once(
    shop: Shop,
) -> None:
    order = needing_attention(
        shop,
        se.checkout_session_completed(
            metadata={"billfold_account": "user_1", "billfold_package": "starter"},
            amount_total=450,
        ),
    )
    desk = shop.desk()
    shop.clock.advance(60)
    resolved = desk.resolve(ResolveOrder(order_id=order.id, package="starter", by="ops@example"))
    assert (resolved.status, resolved.resolved_by, resolved.fulfilled_at, resolved.amount) == (
        "fulfilled",
        "ops@example",
        shop.clock.now,
        450,
    )
    assert shop.balances("user_1") == {"credits": 500}  # the operator's package stands
    again = desk.resolve(ResolveOrder(order_id=order.id))
    assert again == resolved
    assert shop.balances("user_1") == {"credits": 500}


def test_given_no_account_when_resolved_without_one_then_not_resolvable_and_with_one_granted(
    shop: Shop,
) -> None:
    order = needing_attention(
        shop,
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"},
            client_reference_id=None,
            customer=None,
            email=None,
        ),
    )
    desk = shop.desk()
    with pytest.raises(errors.OrderNotResolvable, match="still cannot be fulfilled"):
        desk.resolve(ResolveOrder(order_id=order.id))
    assert shop.orders("needs_attention") == [order]
    resolved = desk.resolve(ResolveOrder(order_id=order.id, account_id="user_9"))
    assert (resolved.status, resolved.account_id) == ("fulfilled", "user_9")
    assert shop.balances("user_9") == {"credits": 500}


def test_given_an_unknown_package_and_no_stripe_then_the_operator_must_name_the_package(
    shop: Shop,
) -> None:
    order = unknown_package(shop)
    desk = shop.desk(stripe=None)
    with pytest.raises(errors.OrderNotResolvable, match="name the package") as refused:
        desk.resolve(ResolveOrder(order_id=order.id))
    assert refused.value.details == {"order_id": order.id}
    assert shop.balances("user_1") == {}
    resolved = desk.resolve(ResolveOrder(order_id=order.id, package="starter"))
    assert resolved.status == "fulfilled"
    assert shop.balances("user_1") == {"credits": 500}


def test_given_an_unknown_package_and_stripe_then_the_desk_reads_the_line_items_again(
    shop: Shop,
) -> None:
    order = unknown_package(shop)
    stripe = FakeStripe({order.stripe_id: [line_item("price_starter", 499)]})
    resolved = shop.desk(stripe=stripe).resolve(ResolveOrder(order_id=order.id))
    assert stripe.asked == [order.stripe_id]
    assert (resolved.status, resolved.package) == ("fulfilled", "starter")
    assert shop.balances("user_1") == {"credits": 500}


def test_given_line_items_that_still_name_no_one_package_then_not_resolvable(
    shop: Shop,
) -> None:
    order = unknown_package(shop)
    assert shop.stripe is not None
    with pytest.raises(errors.OrderNotResolvable, match="still cannot be fulfilled"):
        shop.desk(stripe=shop.stripe).resolve(ResolveOrder(order_id=order.id))
    assert shop.orders("needs_attention")[0].status_reason == (
        "the session buys several packages or more than one of a package"
    )


def test_given_a_pending_order_then_it_is_not_the_desk_s_to_resolve(shop: Shop) -> None:
    shop.deliver(
        se.checkout_session_completed(
            metadata={"billfold_account": "user_1", "billfold_package": "starter"},
            payment_status="unpaid",
        )
    )
    (order,) = shop.orders("pending")
    with pytest.raises(errors.OrderNotResolvable, match="only orders in needs_attention"):
        shop.desk().resolve(ResolveOrder(order_id=order.id, package="starter"))
    with pytest.raises(errors.OrderNotFound):
        shop.desk().resolve(ResolveOrder(order_id="ord_missing"))


def test_given_a_package_the_catalog_lacks_when_named_then_refused_and_nothing_changes(
    shop: Shop,
) -> None:
    order = needing_attention(
        shop,
        se.checkout_session_completed(
            metadata={"billfold_account": "user_1", "billfold_package": "starter"},
            amount_total=1,
        ),
    )
    with pytest.raises(errors.UnknownPackage):
        shop.desk().resolve(ResolveOrder(order_id=order.id, package="nope"))
    assert shop.orders("needs_attention") == [order]

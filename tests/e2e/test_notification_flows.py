"""Notifications from real flows: checkout through the Stripe simulator (the official SDK between
them), spends through the API, a refund and an unresolvable payment; read back through the admin
API, as the application would receive them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from billfold.entrypoints.worker import Worker
from tests.e2e.test_checkout_flow import STRIPE_KEY, MakeShop, Shop, make_shop
from tests.support.api import ADMIN_AUTH, SERVER

__all__ = ["make_shop"]

pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)


def outbox(shop: Shop, **params: Any) -> list[dict[str, Any]]:
    answer = shop.api(
        "GET", "/v1/notifications", params={"limit": 100, **params}, headers=ADMIN_AUTH
    )
    assert answer.status_code == 200, answer.text
    return list(reversed(answer.json()["data"]))  # oldest first


def spend(shop: Shop, amount: int, key: str) -> None:
    answer = shop.api(
        "POST",
        "/v1/accounts/user_1/spend",
        json={"unit": "credits", "amount": amount},
        headers={**SERVER, "Idempotency-Key": key},
    )
    assert answer.status_code == 200, answer.text


def test_a_purchase_spends_a_refund_and_a_top_up_each_tell_the_application(
    make_shop: MakeShop,
) -> None:
    shop = make_shop()
    session_id = shop.buy()
    shop.control(f"sessions/{session_id}/pay", {"email": "ada@example.com"})
    shop.control("flush", {"timeout": 10})
    assert shop.fulfill(session_id).json()["status"] == "fulfilled"
    types = [n["type"] for n in outbox(shop)]
    assert types == ["credits.granted", "order.fulfilled"]  # a first grant restores nothing
    fulfilled = outbox(shop, type="order.fulfilled")[0]["body"]["data"]
    assert fulfilled["account_id"] == "user_1"
    assert fulfilled["amount"] == 499
    assert fulfilled["stripe"]["checkout_session"] == session_id
    assert fulfilled["stripe"]["payment_intent"].startswith("pi_")

    spend(shop, 400, "s1")  # 100: at the threshold
    spend(shop, 1, "s2")  # 99: below
    spend(shop, 1, "s3")  # 98: still low, nothing more
    [low] = outbox(shop, type="balance.low")
    assert low["body"]["data"] | {"transaction_id": None} == {
        "account_id": "user_1",
        "unit": "credits",
        "balance": 99,
        "previous_balance": 100,
        "threshold": 100,
        "transaction_id": None,
    }
    account = shop.api("GET", "/v1/accounts/user_1", headers=SERVER).json()
    assert account["low_balance_alerts"] == {"credits": True}

    again = shop.buy()
    shop.control(f"sessions/{again}/pay")
    shop.control("flush", {"timeout": 10})
    [restored] = outbox(shop, type="balance.restored")
    assert restored["body"]["data"]["balance"] == 598
    account = shop.api("GET", "/v1/accounts/user_1", headers=SERVER).json()
    assert account["low_balance_alerts"] == {"credits": False}

    # A full refund of the second purchase claws its credits back: below the threshold again.
    payment_intent = outbox(shop, type="order.fulfilled")[-1]["body"]["data"]["stripe"]
    refund = shop.http.post(
        f"{shop.sim}/v1/refunds",
        auth=(STRIPE_KEY, ""),
        data={"payment_intent": payment_intent["payment_intent"]},
    )
    assert refund.status_code == 200, refund.text
    shop.control("flush", {"timeout": 10})
    [clawed] = outbox(shop, type="credits.clawed_back")
    data = clawed["body"]["data"]
    assert (data["taken"], data["balance"], data["reason"]) == (500, 98, "refund")
    assert data["stripe"]["refund"] == refund.json()["id"]
    assert [n["body"]["data"]["balance"] for n in outbox(shop, type="balance.low")] == [99, 98]


def test_a_payment_that_cannot_be_resolved_tells_the_application_it_needs_attention(
    make_shop: MakeShop,
) -> None:
    shop = make_shop()
    # A session made straight at Stripe, naming no account billfold could find.
    created = shop.http.post(
        f"{shop.sim}/v1/checkout/sessions",
        auth=(STRIPE_KEY, ""),
        data={
            "mode": "payment",
            "success_url": "https://app.example/ok",
            "line_items[0][price_data][currency]": "usd",
            "line_items[0][price_data][unit_amount]": "123",
            "line_items[0][price_data][product_data][name]": "Mystery",
            "line_items[0][quantity]": "1",
        },
    )
    assert created.status_code == 200, created.text
    shop.control(f"sessions/{created.json()['id']}/pay")
    shop.control("flush", {"timeout": 10})
    # The line items need a call to Stripe: the worker's work.
    worker = Worker(shop.services)
    deadline = time.monotonic() + 20
    while not outbox(shop, type="order.needs_attention") and time.monotonic() < deadline:
        worker.run_once()
        time.sleep(0.1)
    [note] = outbox(shop, type="order.needs_attention")
    data = note["body"]["data"]
    assert data["status"] == "needs_attention"
    assert data["stripe"]["checkout_session"] == created.json()["id"]
    assert data["reason"]

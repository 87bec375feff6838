"""Checkout over HTTP against the StripeGateway port's in-memory fake: the session billfold asks
Stripe for, who may ask, and the success page's fulfilment. (The same flow through the real SDK
and the simulator is in ``test_checkout_flow.py``.)"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.domain.orders import LineItem
from tests.conftest import FakeClock
from tests.support.api import ADMIN_AUTH, SERVER, FakeStripe, api_client, as_user
from tests.support.app import count

Api = tuple[TestClient, Services, FakeStripe]
PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


@pytest.fixture
def api(db_url: str, engine: Any, clock: FakeClock) -> Iterator[Api]:
    stripe = FakeStripe()
    with api_client(db_url, clock=clock, stripe=stripe) as (client, services):
        yield client, services, stripe


def create(client: TestClient, headers: Mapping[str, str] | None = None, **body: Any) -> Any:
    payload = {"account_id": "user_1", "package": "starter", **body}
    return client.post("/v1/checkout/sessions", json=payload, headers=dict(headers or SERVER))


def fulfill(client: TestClient, session_id: str, headers: Mapping[str, str] | None = None) -> Any:
    url = f"/v1/checkout/sessions/{session_id}/fulfill"
    return client.post(url, headers=dict(headers or SERVER))


# --- creating a session --------------------------------------------------------------------------


def test_a_fixed_price_package_is_sent_inline_with_billfolds_metadata(api: Api) -> None:
    client, _, stripe = api
    response = create(
        client, success_url="https://shop.example/thanks", cancel_url="https://shop.example/x"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] == "cs_test_0001"
    assert body["url"] == "https://checkout.example/pay/cs_test_0001"
    assert body["object"] == "checkout.session"
    assert stripe.created == [
        {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 499,
                        "product_data": {"name": "Starter Pack"},
                    },
                }
            ],
            "client_reference_id": "user_1",
            "metadata": {"billfold_account": "user_1", "billfold_package": "starter"},
            "success_url": f"https://shop.example/thanks?session_id={PLACEHOLDER}",
            "cancel_url": "https://shop.example/x",
        }
    ]


def test_a_package_with_a_stripe_price_sends_the_price(
    db_url: str, engine: Any, tmp_path: Any
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        "[units.credits]\n"
        "[packages.starter]\n"
        'title = "Starter"\ncurrency = "usd"\nprice = 499\nstripe_price_id = "price_123"\n'
        'grants = [{ unit = "credits", amount = 500 }]\n'
    )
    stripe = FakeStripe()
    with api_client(db_url, stripe=stripe, catalog=str(catalog)) as (client, _):
        assert create(client).status_code == 201
    assert stripe.created[0]["line_items"] == [{"price": "price_123", "quantity": 1}]


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (None, f"http://testserver/success?session_id={PLACEHOLDER}"),
        (f"https://a.example/ok/{PLACEHOLDER}", f"https://a.example/ok/{PLACEHOLDER}"),
        ("https://a.example/ok?x=1", f"https://a.example/ok?x=1&session_id={PLACEHOLDER}"),
        ("https://a.example/ok#top", f"https://a.example/ok?session_id={PLACEHOLDER}#top"),
    ],
)
def test_the_success_url_always_carries_the_session_id(
    api: Api, given: str | None, sent: str
) -> None:
    client, _, stripe = api
    extra: dict[str, Any] = {"success_url": given} if given else {}
    assert create(client, **extra).status_code == 201
    assert stripe.created[0]["success_url"] == sent


def test_a_known_customer_or_email_goes_to_stripe(api: Api) -> None:
    client, _, stripe = api
    client.put("/v1/accounts/user_1", json={"email": "ada@example.com"}, headers=SERVER)
    client.put("/v1/accounts/user_2", json={"stripe_customer_id": "cus_9"}, headers=SERVER)
    create(client)
    create(client, account_id="user_2")
    assert stripe.created[0]["customer_email"] == "ada@example.com"
    assert "customer" not in stripe.created[0]
    assert stripe.created[1]["customer"] == "cus_9"
    assert "customer_email" not in stripe.created[1]


def test_a_custom_amount_package_takes_the_amount_inline(api: Api) -> None:
    client, _, stripe = api
    assert create(client, package="budget", amount=2500).status_code == 201
    line = stripe.created[0]["line_items"][0]
    assert line["price_data"]["unit_amount"] == 2500
    assert line["price_data"]["product_data"] == {"name": "Budget top-up"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"package": "budget"}, "amount"),
        ({"package": "budget", "amount": 499}, "amount"),
        ({"package": "budget", "amount": 100001}, "amount"),
        ({"package": "budget", "amount": 25.0}, "amount"),
        ({"package": "starter", "amount": 499}, "amount"),
        ({"package": "nope"}, None),
        ({"success_url": "javascript:alert(1)"}, "success_url"),
        ({"cancel_url": "ftp://x.example/"}, "cancel_url"),
        ({"account_id": ""}, "account_id"),
        ({"account_id": "sys:stripe"}, "account_id"),
        ({"mode": "subscription"}, "mode"),
    ],
)
def test_an_invalid_checkout_request_is_400_and_stripe_is_not_called(
    api: Api, body: dict[str, Any], param: str | None
) -> None:
    client, _, stripe = api
    response = create(client, **body)
    assert response.status_code == 400, response.text
    if param:
        assert response.json()["error"]["param"] == param
    assert stripe.calls == []


def test_a_user_creates_sessions_for_their_own_account_only(api: Api) -> None:
    client, _, stripe = api
    assert create(client, as_user("user_1")).status_code == 201
    refused = create(client, as_user("user_2"))
    assert refused.status_code == 403
    assert create(client, ADMIN_AUTH).status_code == 403
    assert len(stripe.created) == 1


def test_the_idempotency_key_goes_to_stripe_scoped_by_caller(api: Api) -> None:
    client, _, stripe = api
    assert create(client).status_code == 201  # no key: Stripe gets none
    assert create(client, {**SERVER, "Idempotency-Key": "k1"}).status_code == 201
    assert create(client, {**SERVER, "Idempotency-Key": "k1"}).status_code == 201
    assert create(client, {**as_user("user_1"), "Idempotency-Key": "k1"}).status_code == 201
    none, server_1, server_2, user = stripe.idempotency_keys
    assert none is None
    assert server_1 is not None
    assert server_1 == server_2
    assert user is not None
    assert user != server_1  # another caller's "k1" is another request
    assert "k1" not in server_1
    assert len(server_1) <= 255
    # A key Stripe could not take is refused here, before any call.
    bad = create(client, {**SERVER, "Idempotency-Key": "k" * 256})
    assert bad.status_code == 400
    assert len(stripe.idempotency_keys) == 4


def test_stripe_failing_is_502_with_a_clear_message(api: Api) -> None:
    client, services, stripe = api
    stripe.fail_with = errors.StripeUnavailable("Could not create a checkout session: timeout.")
    response = create(client)
    assert response.status_code == 502
    assert response.json()["code"] == "stripe_unavailable"
    assert "timeout" in response.json()["message"]
    assert count(services, "accounts") == 0


def test_without_stripe_configured_checkout_is_502_naming_the_setting(
    db_url: str, engine: Any
) -> None:
    with api_client(db_url) as (client, _):
        response = create(client)
        assert response.status_code == 502
        assert "BILLFOLD_STRIPE_SECRET_KEY" in response.json()["message"]
        fulfilled = fulfill(client, "cs_test_1")
        assert fulfilled.status_code == 502


def test_checkout_creation_is_rate_limited_per_caller(
    db_url: str, engine: Any, clock: FakeClock
) -> None:
    stripe = FakeStripe()
    with api_client(db_url, clock=clock, stripe=stripe, rate_limit_checkout_per_minute=2) as (
        client,
        _,
    ):
        user = as_user("user_1")
        assert [create(client, user).status_code for _ in range(3)] == [201, 201, 429]
        limited = create(client, user)
        assert int(limited.headers["Retry-After"]) >= 1
        assert create(client).status_code == 201  # the server key counts on its own
        assert len(stripe.created) == 3


# --- the success page: fulfil --------------------------------------------------------------------


def test_given_a_paid_session_when_fulfilling_then_credits_show_at_once(api: Api) -> None:
    client, services, stripe = api
    session_id = create(client).json()["id"]
    stripe.complete(session_id)
    response = fulfill(client, session_id, as_user("user_1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "fulfilled"
    assert body["session_status"] == "complete"
    assert body["payment_status"] == "paid"
    assert body["order"]["status"] == "fulfilled"
    assert body["order"]["key"] == f"checkout:{session_id}"
    assert body["account_id"] == "user_1"
    assert body["balances"] == {"credits": 500, "tokens": 0, "usd": 0}
    again = fulfill(client, session_id)
    assert again.json()["balances"]["credits"] == 500
    assert again.json()["order"]["id"] == body["order"]["id"]
    assert count(services, "grants") == 1
    assert "line_items" not in stripe.calls  # billfold's metadata named the package


def test_an_open_session_writes_nothing_and_answers_pending(api: Api) -> None:
    client, services, _ = api
    session_id = create(client).json()["id"]
    body = fulfill(client, session_id).json()
    assert body["status"] == "pending"
    assert body["session_status"] == "open"
    assert body["order"] is None
    assert count(services, "orders") == 0


def test_a_completed_but_unpaid_session_is_a_pending_order_and_no_grant(api: Api) -> None:
    client, services, stripe = api
    session_id = create(client).json()["id"]
    stripe.complete(session_id, paid=False)
    body = fulfill(client, session_id).json()
    assert body["status"] == "pending"
    assert body["order"]["status"] == "pending"
    assert body["balances"]["credits"] == 0
    stripe.complete(session_id)  # the delayed payment settled
    assert fulfill(client, session_id).json()["balances"]["credits"] == 500
    assert count(services, "grants") == 1


def test_an_expired_session_marks_the_order_expired(api: Api) -> None:
    client, _, stripe = api
    session_id = create(client).json()["id"]
    stripe.sessions[session_id]["status"] = "expired"
    assert fulfill(client, session_id).json()["status"] == "expired"


def test_a_session_without_metadata_is_resolved_from_its_line_items(api: Api) -> None:
    client, _, stripe = api
    session_id = create(client).json()["id"]
    stripe.complete(session_id, metadata={})
    stripe.line_items[session_id] = [
        LineItem(price_id="price_unknown", quantity=1, amount_total=499, currency="usd")
    ]
    body = fulfill(client, session_id).json()
    assert "line_items" in stripe.calls
    # No catalog price matches and no billfold_package: kept for an operator, never guessed.
    assert body["status"] == "needs_attention"
    assert body["balances"]["credits"] == 0


def test_a_user_cannot_fulfil_another_users_session(api: Api) -> None:
    client, services, stripe = api
    session_id = create(client).json()["id"]
    stripe.complete(session_id)
    response = fulfill(client, session_id, as_user("user_2"))
    assert response.status_code == 404
    assert "500" not in response.text
    assert count(services, "orders") == 0
    assert fulfill(client, session_id, ADMIN_AUTH).status_code == 403


def test_an_unknown_or_malformed_session_id(api: Api) -> None:
    client, _, _ = api
    assert fulfill(client, "cs_test_nope").status_code == 404
    assert fulfill(client, "pi_123").status_code == 400


def test_a_subscription_session_links_the_account_and_writes_no_order(api: Api) -> None:
    client, services, stripe = api
    session_id = create(client).json()["id"]
    stripe.complete(session_id, mode="subscription")
    response = fulfill(client, session_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == "subscription"
    assert body["entitlements"]["account_id"] == body["account_id"]
    assert count(services, "orders") == 0


def test_stripe_failing_during_fulfilment_is_502_and_writes_nothing(api: Api) -> None:
    client, services, stripe = api
    session_id = create(client).json()["id"]
    stripe.complete(session_id)
    stripe.fail_with = errors.StripeUnavailable("Could not retrieve the checkout session.")
    assert fulfill(client, session_id).status_code == 502
    assert count(services, "orders") == 0

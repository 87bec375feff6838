"""Checkout end to end: billfold and the Stripe simulator on real ports, the official SDK between
them. Create a session through the API, pay on the simulator, and watch the success page and the
webhook race to fulfil the order: the credits appear once."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from billfold.bootstrap import Services, build
from billfold.entrypoints.http.app import create_app
from billfold.simulator import RetryPolicy, SimulatorConfig, create_simulator_app
from tests.support.api import SERVER, as_user
from tests.support.app import count, event_status, settings_for
from tests.support.servers import ServerThread

SIM_SECRET = "whsec_checkout_flow"
STRIPE_KEY = "sk_test_checkout_flow"


class _Late:
    """An ASGI app set after the server's port is known (the simulator needs billfold's URL)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@dataclass
class Shop:
    billfold: str
    sim: str
    http: httpx.Client
    services: Services

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.billfold}{path}", **kwargs)

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(f"{self.sim}/_sim/{path}", json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    def buy(self, package: str = "starter", **body: Any) -> str:
        response = self.api(
            "POST",
            "/v1/checkout/sessions",
            json={"account_id": "user_1", "package": package, **body},
            headers=as_user("user_1"),
        )
        assert response.status_code == 201, response.text
        session = response.json()
        assert session["url"].startswith(f"{self.sim}/pay/")
        return str(session["id"])

    def fulfill(self, session_id: str) -> httpx.Response:
        return self.api(
            "POST", f"/v1/checkout/sessions/{session_id}/fulfill", headers=as_user("user_1")
        )


MakeShop = Callable[..., Shop]


@pytest.fixture
def make_shop(db_url: str, engine: Any) -> Iterator[MakeShop]:
    started: list[tuple[ServerThread, ServerThread, httpx.Client, Services]] = []

    def make(*, webhooks: bool = True) -> Shop:
        late = _Late()
        billfold = ServerThread(late)
        sim_app = create_simulator_app(
            SimulatorConfig(
                webhook_url=f"{billfold.url}/webhooks/stripe" if webhooks else None,
                webhook_secret=SIM_SECRET,
                api_keys=(STRIPE_KEY,),
                retry=RetryPolicy(base_seconds=0.02, max_seconds=0.2, max_attempts=5),
                async_settle_seconds=None,
            )
        )
        sim = ServerThread(sim_app).start()
        services = build(
            settings_for(
                db_url,
                stripe_secret_key=STRIPE_KEY,
                stripe_api_base=sim.url,
                stripe_webhook_secrets=SIM_SECRET,
            )
        )
        late.app = create_app(services=services, run_worker=False)
        billfold.start()
        http = httpx.Client(timeout=30)
        started.append((billfold, sim, http, services))
        return Shop(billfold=billfold.url, sim=sim.url, http=http, services=services)

    yield make
    for billfold, sim, http, services in started:
        http.close()
        billfold.stop()
        sim.stop()
        services.close()


def credits(shop: Shop) -> int:
    response = shop.api("GET", "/v1/accounts/user_1", headers=as_user("user_1"))
    return int(response.json()["balances"]["credits"])


def test_given_a_paid_checkout_when_the_success_page_loads_then_the_credits_are_there(
    make_shop: MakeShop,
) -> None:
    shop = make_shop(webhooks=False)  # the webhook is late: it has not arrived at all
    session_id = shop.buy()
    assert shop.fulfill(session_id).json()["status"] == "pending"  # not paid yet
    paid = shop.control(f"sessions/{session_id}/pay", {"email": "ada@example.com"})
    assert paid["redirect_url"].endswith(f"session_id={session_id}")
    first = shop.fulfill(session_id)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "fulfilled"
    assert first.json()["balances"]["credits"] == 500
    again = shop.fulfill(session_id)
    assert again.json()["status"] == "fulfilled"
    assert again.json()["order"]["id"] == first.json()["order"]["id"]
    assert credits(shop) == 500
    assert count(shop.services, "grants") == 1
    account = shop.api("GET", "/v1/accounts/user_1", headers=SERVER).json()
    assert account["email"] == "ada@example.com"  # the payer's e-mail, linked on fulfilment


def test_when_the_webhook_and_the_success_page_race_then_one_grant(make_shop: MakeShop) -> None:
    shop = make_shop()
    session_id = shop.buy()
    shop.control(f"sessions/{session_id}/pay")
    page = shop.fulfill(session_id)  # while the webhook is on its way
    assert page.status_code == 200
    shop.control("flush", {"timeout": 10})
    assert page.json()["balances"]["credits"] == 500
    assert credits(shop) == 500
    assert count(shop.services, "grants") == 1
    completed = shop.http.get(
        f"{shop.sim}/_sim/deliveries", params={"type": "checkout.session.completed"}
    ).json()["data"]
    assert completed
    assert {d["status"] for d in completed} == {"succeeded"}, completed
    for delivery in completed:
        assert event_status(shop.services, delivery["event_id"]) == "processed"


def test_a_custom_amount_top_up_credits_what_was_paid(make_shop: MakeShop) -> None:
    shop = make_shop()
    session_id = shop.buy("budget", amount=2500)
    shop.control(f"sessions/{session_id}/pay")
    body = shop.fulfill(session_id).json()
    assert body["status"] == "fulfilled"
    assert body["balances"]["usd"] == 2500
    assert body["order"]["amount"] == 2500


def test_a_retried_checkout_creation_with_an_idempotency_key_gives_one_session(
    make_shop: MakeShop,
) -> None:
    shop = make_shop(webhooks=False)

    def create(key: str, user: str = "user_1", package: str = "starter") -> httpx.Response:
        return shop.api(
            "POST",
            "/v1/checkout/sessions",
            json={"account_id": user, "package": package},
            headers={**as_user(user), "Idempotency-Key": key},
        )

    first, again = create("buy-1"), create("buy-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotency-Key"] == "buy-1"
    # Another key, or the same key from another caller, is another session.
    assert create("buy-2").json()["id"] != first.json()["id"]
    other_user = create("buy-1", user="user_2")
    assert other_user.status_code == 201
    assert other_user.json()["id"] != first.json()["id"]
    # The same key with another body: 409, as Stripe answers, and no new session.
    listed = shop.http.get(
        f"{shop.sim}/v1/checkout/sessions", auth=(STRIPE_KEY, ""), params={"limit": 100}
    ).json()["data"]
    conflict = create("buy-1", package="popular")
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    after = shop.http.get(
        f"{shop.sim}/v1/checkout/sessions", auth=(STRIPE_KEY, ""), params={"limit": 100}
    ).json()["data"]
    assert len(after) == len(listed) == 3
    # A key billfold cannot forward is refused before Stripe is called.
    assert create("x" * 256).status_code == 400


def test_a_retry_after_the_account_gained_an_email_and_a_customer_gets_the_first_session(
    make_shop: MakeShop,
) -> None:
    """The first answer was lost; before the retry, a payment gave the account an e-mail, then a
    Stripe customer (so billfold's request to Stripe differs): the retry still gets the first
    session, and another package with that key is still refused."""
    shop = make_shop(webhooks=False)

    def create(package: str = "starter") -> httpx.Response:
        return shop.api(
            "POST",
            "/v1/checkout/sessions",
            json={"account_id": "user_7", "package": package},
            headers={**SERVER, "Idempotency-Key": "lost-answer"},
        )

    first = create()
    assert first.status_code == 201, first.text
    put = shop.api(
        "PUT", "/v1/accounts/user_7", json={"email": "seven@example.com"}, headers=SERVER
    )
    assert put.status_code == 200, put.text
    assert create().json()["id"] == first.json()["id"]
    customer = shop.http.post(
        f"{shop.sim}/v1/customers", auth=(STRIPE_KEY, ""), data={"email": "seven@example.com"}
    ).json()["id"]
    put = shop.api(
        "PUT", "/v1/accounts/user_7", json={"stripe_customer_id": customer}, headers=SERVER
    )
    assert put.status_code == 200, put.text
    again = create()
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    conflict = create(package="popular")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"


def test_another_user_cannot_fulfil_the_session(make_shop: MakeShop) -> None:
    shop = make_shop(webhooks=False)
    session_id = shop.buy()
    shop.control(f"sessions/{session_id}/pay")
    response = shop.api(
        "POST", f"/v1/checkout/sessions/{session_id}/fulfill", headers=as_user("user_2")
    )
    assert response.status_code == 404
    assert count(shop.services, "orders") == 0


def test_an_unknown_session_is_404_through_the_sdk(make_shop: MakeShop) -> None:
    shop = make_shop(webhooks=False)
    assert shop.fulfill("cs_test_does_not_exist").status_code == 404


def test_stripe_unreachable_is_502_and_nothing_is_written(db_url: str, engine: Any) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    services = build(settings_for(db_url, stripe_secret_key=STRIPE_KEY, stripe_api_base=dead))
    server = ServerThread(create_app(services=services, run_worker=False)).start()
    try:
        response = httpx.post(
            f"{server.url}/v1/checkout/sessions",
            json={"account_id": "user_1", "package": "starter"},
            headers=SERVER,
            timeout=30,
        )
        assert response.status_code == 502
        assert response.json()["code"] == "stripe_unavailable"
        fulfil = httpx.post(
            f"{server.url}/v1/checkout/sessions/cs_test_1/fulfill", headers=SERVER, timeout=30
        )
        assert fulfil.status_code == 502
        assert count(services, "orders") == 0
        assert count(services, "accounts") == 0
    finally:
        server.stop()
        services.close()

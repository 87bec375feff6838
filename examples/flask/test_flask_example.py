"""The Flask credit shop end to end: billfold serve and Stripe's stand-in running, the shop in
Flask's test client. Buy a pack through checkout, see the credits once, spend them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from creditshop import create_app
from flask.testing import FlaskClient

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def billing(billing_service: Callable[[Path], Any]) -> Any:
    return billing_service(HERE / "catalog.toml")


@pytest.fixture
def shop(billing: Any) -> FlaskClient:
    app = create_app(
        {"BILLFOLD_URL": billing.url, "BILLFOLD_API_KEY": billing.api_key, "TESTING": True}
    )
    return app.test_client()


def sign_in(shop: FlaskClient, user: str, password: str) -> None:
    response = shop.post("/login", data={"username": user, "password": password})
    assert response.status_code == 302


def badge(page: str) -> int:
    found = re.search(r'data-credits="(\d+)"', page)
    assert found, page
    return int(found.group(1))


def test_buy_a_pack_then_spend_credits(shop: FlaskClient, billing: Any) -> None:
    assert shop.get("/").status_code == 302  # sign in first
    sign_in(shop, "ada", "lovelace")
    home = shop.get("/").get_data(as_text=True)
    assert badge(home) == 0
    assert "1,500 credits for $14.99" in home  # the purchase modal's packs
    assert "3,500 credits for $29.99" in home

    refused = shop.post("/report", follow_redirects=True).get_data(as_text=True)
    assert "A report costs 100 credits and you have 0. Buy a pack to continue." in refused

    # Checkout: billfold creates the session at Stripe; the customer pays there.
    bought = shop.post("/buy", data={"package": "pack_500"})
    assert bought.status_code == 303
    session_id = bought.headers["Location"].rsplit("/", 1)[-1]
    assert session_id.startswith("cs_")
    billing.simulator.pay(session_id)
    stripe_session = billing.simulator.sdk().v1.checkout.sessions.retrieve(session_id)
    assert stripe_session.payment_status == "paid"
    assert stripe_session.amount_total == 499

    # The success page fulfils (the webhook already did: either way, once).
    page = shop.get(f"/success?session_id={session_id}").get_data(as_text=True)
    assert 'id="balance">500<' in page
    assert badge(page) == 500
    again = shop.get(f"/success?session_id={session_id}").get_data(as_text=True)
    assert badge(again) == 500  # reloading the success page grants nothing more

    done = shop.post("/report", follow_redirects=True).get_data(as_text=True)
    assert "Report generated: 100 credits spent, 400 left." in done
    assert badge(done) == 400
    history = shop.get("/history").get_data(as_text=True)
    assert history.count('class="txn"') == 2
    assert "+500" in history
    assert "-100" in history


def test_each_user_sees_only_their_own_history_and_sessions(
    shop: FlaskClient, billing: Any
) -> None:
    sign_in(shop, "alan", "turing")
    assert badge(shop.get("/").get_data(as_text=True)) == 0
    assert "Nothing yet." in shop.get("/history").get_data(as_text=True)
    session_id = shop.post("/buy", data={"package": "pack_3500"}).headers["Location"]
    session_id = session_id.rsplit("/", 1)[-1]
    billing.simulator.pay(session_id)
    assert badge(shop.get("/").get_data(as_text=True)) == 3500  # the webhook granted
    shop.post("/logout")
    sign_in(shop, "ada", "lovelace")
    history = shop.get("/history").get_data(as_text=True)
    assert "+3,500" not in history  # alan's purchase is not in ada's history
    assert shop.get(f"/success?session_id={session_id}").status_code == 404  # his, not hers
    assert shop.post("/login", data={"username": "alan", "password": "nope"}).status_code == 200

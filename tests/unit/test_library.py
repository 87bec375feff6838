"""``billfold.Billfold``: the API's operations in-process, on a SQLite file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

import billfold
from billfold.adapters.db.verify import verify
from billfold.domain import errors
from billfold.entrypoints.http.app import create_app
from billfold.library import Billfold
from tests.builders import stripe_events as se
from tests.conftest import FakeClock
from tests.support.api import SERVER, FakeStripe, keyed
from tests.support.app import SECRET, settings_for


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture
def wallet(db: str, clock: FakeClock) -> Iterator[Billfold]:
    with Billfold(settings_for(db), clock=clock, stripe=FakeStripe()) as instance:
        yield instance
        assert verify(instance.services.infra.database.engine) == []


def test_importing_billfold_loads_nothing_else() -> None:
    code = (
        "import sys, billfold\n"
        "heavy = ('billfold.', 'sqlalchemy', 'fastapi')\n"
        "loaded = [m for m in sys.modules if m.startswith(heavy)]\n"
        "assert loaded == [], loaded\n"
        "assert billfold.Billfold.__module__ == 'billfold.library'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Wallet'"):
        _ = billfold.Wallet


def test_grant_spend_and_balances(wallet: Billfold) -> None:
    wallet.grant("user_1", "credits", 100, reason="welcome")
    spent = wallet.spend("user_1", "credits", 30, reason="report")
    assert spent.balance == 70
    assert wallet.balances("user_1") == {"credits": 70, "tokens": 0, "usd": 0}
    assert wallet.balances("nobody") == {"credits": 0, "tokens": 0, "usd": 0}


def test_explain_lists_the_lots_and_their_draws_and_adds_up_to_the_balance(
    wallet: Billfold,
) -> None:
    granted = wallet.grant("user_1", "credits", 100, reason="welcome")
    spent = wallet.spend("user_1", "credits", 30, reason="report")
    explained = wallet.explain("user_1", "credits")
    (lot,) = explained.lots
    assert (lot.grant_id, lot.amount, lot.remaining, lot.origin.type) == (
        granted.grant_id,
        100,
        70,
        "manual",
    )
    assert [(d.transaction_id, d.kind, d.amount) for d in lot.draws] == [
        (spent.transaction_id, "spend", 30)
    ]
    assert explained.balance == 70 == wallet.balances("user_1")["credits"]
    assert wallet.explain("stranger").lots == ()


def test_spending_too_much_raises_with_what_is_available(wallet: Billfold) -> None:
    wallet.grant("user_1", "credits", 10, reason="welcome")
    with pytest.raises(errors.InsufficientBalance) as caught:
        wallet.spend("user_1", "credits", 11)
    assert caught.value.available == 10
    assert wallet.balances("user_1")["credits"] == 10


def test_a_grant_needs_a_reason(wallet: Billfold) -> None:
    with pytest.raises(errors.ValidationError):
        wallet.grant("user_1", "credits", 10, reason="")


def test_idempotency_keys_replay_and_conflict(wallet: Billfold) -> None:
    wallet.grant("user_1", "credits", 100, reason="welcome")
    first = wallet.spend("user_1", "credits", 30, idempotency_key="job-1")
    assert wallet.spend("user_1", "credits", 30, idempotency_key="job-1") == first
    with pytest.raises(errors.IdempotencyConflict):
        wallet.spend("user_1", "credits", 31, idempotency_key="job-1")
    wallet.spend("user_1", "credits", 30)
    wallet.spend("user_1", "credits", 30)  # no key: two spends
    assert wallet.balances("user_1")["credits"] == 10


def test_keys_are_shared_with_the_http_apis_server_keys(wallet: Billfold) -> None:
    wallet.grant("user_1", "credits", 100, reason="welcome")
    first = wallet.spend("user_1", "credits", 30, idempotency_key="shared-7")
    app = create_app(services=wallet.services, run_worker=False)
    with TestClient(app) as client:
        response = client.post(
            "/v1/accounts/user_1/spend",
            json={"unit": "credits", "amount": 30},
            headers=keyed(SERVER, "shared-7"),
        )
    assert response.json()["transaction_id"] == first.transaction_id
    assert response.headers["Idempotent-Replayed"] == "true"
    assert wallet.balances("user_1")["credits"] == 70


def test_hold_capture_and_release(wallet: Billfold, clock: FakeClock) -> None:
    wallet.grant("user_1", "credits", 100, reason="welcome")
    held = wallet.hold("user_1", "credits", 40)
    assert held.expires_at == clock.now + wallet.settings.hold_ttl_seconds
    assert wallet.balances("user_1")["credits"] == 60
    captured = wallet.capture(held.hold_id, 25)
    assert captured.captured == 25
    assert wallet.balances("user_1")["credits"] == 75
    other = wallet.hold("user_1", "credits", 10, ttl_seconds=60)
    assert wallet.release(other.hold_id).status == "released"
    assert wallet.balances("user_1")["credits"] == 75
    with pytest.raises(errors.HoldNotActive):
        wallet.capture(other.hold_id)


def test_entitlements_are_the_default_plans(wallet: Billfold) -> None:
    found = wallet.entitlements("user_1")
    assert found.plan == "free"
    assert found.source == "default"
    assert found.limits == {"max_positions": 5}


def test_checkout_and_fulfilment_in_process(db: str, clock: FakeClock) -> None:
    stripe = FakeStripe()
    with Billfold(settings_for(db), clock=clock, stripe=stripe) as wallet:
        session = wallet.create_checkout_session(
            "user_1", "starter", success_url="https://shop.example/ok"
        )
        assert stripe.created[0]["success_url"].endswith("session_id={CHECKOUT_SESSION_ID}")
        assert wallet.fulfill_checkout(session.id).status == "pending"
        stripe.complete(session.id)
        done = wallet.fulfill_checkout(session.id)
        assert done.status == "fulfilled"
        assert done.balances["credits"] == 500
        assert wallet.fulfill_checkout(session.id).balances["credits"] == 500


def test_the_webhook_app_mounts_into_the_applications_own_app(wallet: Billfold) -> None:
    host = Starlette(routes=[Mount("/billing", app=wallet.webhook_app())])
    event = se.checkout_session_completed(
        metadata={"billfold_account": "user_1", "billfold_package": "starter"}, amount_total=499
    )
    body, headers = se.signed(event, SECRET)
    with TestClient(host) as client:
        response = client.post("/billing/webhooks/stripe", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "processed"
        unsigned = client.post("/billing/webhooks/stripe", content=body)
        assert unsigned.status_code == 400
        assert client.get("/billing/v1/catalog").status_code == 404  # the webhook only
    assert wallet.balances("user_1")["credits"] == 500


def test_settings_come_from_the_environment_by_default(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLFOLD_DATABASE_URL", db)
    monkeypatch.setenv("BILLFOLD_HOLD_TTL_SECONDS", "120")
    wallet = Billfold()
    try:
        assert wallet.settings.database_url == db
        assert wallet.settings.hold_ttl_seconds == 120
        wallet.grant("u", "credits", 1, reason="env")
        assert wallet.balances("u")["credits"] == 1
    finally:
        wallet.close()


def test_a_bad_setting_stops_start_up_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLFOLD_DATABASE_URL", "mysql://nope")
    with pytest.raises(errors.ConfigurationError, match="BILLFOLD_DATABASE_URL"):
        Billfold()

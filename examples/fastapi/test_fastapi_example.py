"""The FastAPI summarizer with billfold in-process: served on a port (Stripe's stand-in delivers
its webhook to the mounted route), a pack bought through checkout, credits spent in the app's own
handlers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from summarizer import create_app

import example_support
from billfold.settings import load_settings

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def webhook_path() -> str:
    return "/billing/webhooks/stripe"


@pytest.fixture(scope="module")
def app_url(stripe_stand_in: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path_factory.mktemp('app') / 'app.db'}",
        catalog=HERE / "catalog.toml",
        stripe_secret_key=example_support.STRIPE_KEY,
        stripe_api_base=stripe_stand_in.simulator.url,
        stripe_webhook_secrets=example_support.WEBHOOK_SECRET,
    )
    with example_support.asgi_server(create_app(settings), stripe_stand_in.port) as url:
        yield url


def test_buy_a_pack_and_spend_it_in_the_apps_own_handlers(
    app_url: str, stripe_stand_in: Any
) -> None:
    with (
        httpx.Client(base_url=app_url, headers={"X-User-Id": "ada"}, timeout=30) as ada,
        httpx.Client(base_url=app_url, headers={"X-User-Id": "alan"}, timeout=30) as alan,
    ):
        assert ada.get("/me/credits").json() == {"credits": 0}
        refused = ada.post("/summaries", json={"text": "Billing. Done right."})
        assert refused.status_code == 402
        assert refused.json()["detail"] == "A summary costs 25 credits; you have 0."
        assert ada.post("/packs/pack_9000/checkout").status_code == 404

        session = ada.post("/packs/pack_500/checkout").json()
        stripe_stand_in.simulator.pay(session["id"])  # the webhook reaches the mounted route
        paid = stripe_stand_in.simulator.sdk().v1.checkout.sessions.retrieve(session["id"])
        assert (paid.payment_status, paid.amount_total) == ("paid", 499)
        assert ada.get("/me/credits").json() == {"credits": 500}
        done = ada.get("/checkout/done", params={"session_id": session["id"]}).json()
        assert done == {"status": "fulfilled", "credits": 500}  # granted once
        assert alan.get("/checkout/done", params={"session_id": session["id"]}).status_code == 404

        first = ada.post(
            "/summaries", json={"text": "Billing. Done right."}, headers={"Idempotency-Key": "s-1"}
        )
        assert first.json() == {"summary": "Billing", "credits_left": 475}
        retried = ada.post(
            "/summaries", json={"text": "Billing. Done right."}, headers={"Idempotency-Key": "s-1"}
        )
        assert retried.json()["credits_left"] == 475  # a retried request is not charged twice
        assert ada.get("/me/credits").json() == {"credits": 475}

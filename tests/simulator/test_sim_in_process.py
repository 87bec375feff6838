"""In-process use: a TestClient for the simulator, events delivered over an ASGI transport."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from tests.simulator.conftest import API_KEY, Sim

from billfold.adapters.stripe import signature
from billfold.adapters.stripe.client import SdkStripeGateway
from billfold.domain.catalog import Plan
from billfold.simulator import SimulatorConfig, create_simulator_app


def test_events_reach_an_asgi_receiver_without_a_network(webhook_secret: str) -> None:
    received: list[dict[str, Any]] = []

    async def webhook(request: Request) -> JSONResponse:
        payload = await request.body()
        signature.verify(payload, request.headers["stripe-signature"], [webhook_secret])
        received.append(json.loads(payload))
        return JSONResponse({"ok": True})

    billfold_like = Starlette(routes=[Route("/webhooks/stripe", webhook, methods=["POST"])])
    app = create_simulator_app(
        SimulatorConfig(
            webhook_url="http://billfold.test/webhooks/stripe",
            webhook_secret=webhook_secret,
            webhook_transport=httpx.ASGITransport(app=billfold_like),
        )
    )
    form = {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "499",
        "line_items[0][price_data][product_data][name]": "Starter",
    }

    with TestClient(app) as client:
        created = client.post("/v1/checkout/sessions", data=form, auth=("sk_test_x", ""))
        session = created.json()
        paid = client.post(f"/pay/{session['id']}", data={"action": "pay"})
        flushed = client.post("/_sim/flush", json={"timeout": 5})

    assert created.status_code == 200
    assert session["url"] == f"http://testserver/pay/{session['id']}"
    assert paid.status_code == 200  # no success_url: the page says it is paid
    assert flushed.json()["settled"] is True
    assert [e["type"] for e in received][-1] == "checkout.session.completed"


def test_a_plans_price_made_before_a_restart_is_found_not_made_again(sim: Sim) -> None:
    """billfold's gateway makes a price for a plan sold inline once; a fresh process (an empty
    cache) finds it by its lookup key among Stripe's prices (the SDK's objects read as dicts)."""
    plan = Plan(id="restart_pro", title="Pro", price=1900, currency="usd", interval="month")
    first = SdkStripeGateway(API_KEY, api_base=sim.url)
    again = SdkStripeGateway(API_KEY, api_base=sim.url)
    try:
        made = first.plan_price(plan)
        assert again.plan_price(plan) == made
    finally:
        first.close()
        again.close()
    prices = sim.stripe.v1.prices.list(params={"lookup_keys": [plan.lookup_key]}).data
    assert [p.id for p in prices] == [made]

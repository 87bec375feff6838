"""Run the simulator and a webhook receiver on real 127.0.0.1 ports, and talk to them as clients do.

The simulator is driven through the official ``stripe`` SDK and plain HTTP (form posts to the hosted
page, JSON to the control routes); events arrive at a small Starlette receiver that checks each
signature with billfold's own ``signature.verify``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp
from tests.support.servers import ServerThread

from billfold.adapters.stripe import signature
from billfold.domain import errors
from billfold.simulator import RetryPolicy, SimulatorConfig, create_simulator_app

SECRET = "whsec_test_simulator_suite"
API_KEY = "sk_test_simulator_suite"


@dataclass
class Receiver:
    """A webhook endpoint: verifies the signature, records each event, fails when told to."""

    fail_first: int = 0  # answer 500 to the first n deliveries of each event
    fail_always: bool = False
    delay: float = 0.0  # seconds to take over each request
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rejected: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    url: str = ""

    async def endpoint(self, request: Request) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            payload = await request.body()
            try:
                signature.verify(payload, request.headers.get("stripe-signature"), [SECRET])
            except errors.InvalidSignature:
                self.rejected += 1
                return JSONResponse({"error": "bad signature"}, status_code=400)
            event = json.loads(payload)
            self.seen[event["id"]] = self.seen.get(event["id"], 0) + 1
            if self.fail_always or self.seen[event["id"]] <= self.fail_first:
                return JSONResponse({"error": "not now"}, status_code=500)
            self.events.append(event)
            self.headers.append(dict(request.headers))
            return JSONResponse({"received": True})
        finally:
            self.in_flight -= 1

    def reset(self) -> None:
        self.fail_first, self.fail_always, self.delay = 0, False, 0.0
        self.events.clear()
        self.headers.clear()
        self.seen.clear()
        self.rejected = self.max_in_flight = 0

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]


@dataclass
class Sim:
    """A running simulator, and the clients that talk to it."""

    url: str
    app: Starlette
    stripe: stripe.StripeClient
    http: httpx.Client
    closers: list[Callable[[], None]] = field(default_factory=list)
    server: ServerThread | None = None

    def client_with_key(self, api_key: str, base_url: str | None = None) -> stripe.StripeClient:
        client, http_client = stripe_client(base_url or self.url, api_key)
        self.closers.append(http_client.close)
        return client

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(f"{self.url}/_sim/{path}", json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    def flush(self, timeout: float = 10.0) -> dict[str, Any]:
        answer: dict[str, Any] = self.control("flush", {"timeout": timeout})
        assert answer["settled"]
        return answer

    def stop(self) -> None:
        """Stop this simulator's server now (a ``make_sim`` one), as a restart would."""
        for close in self.closers:
            close()
        self.closers.clear()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def advance(self, clock_id: str, frozen_time: int) -> stripe.test_helpers.TestClock:
        """Advance a test clock through the SDK, wait until it is ready and every event it
        brought was delivered; the clock as it is then."""
        self.stripe.v1.test_helpers.test_clocks.advance(
            clock_id, params={"frozen_time": frozen_time}
        )
        self.flush()
        return self.stripe.v1.test_helpers.test_clocks.retrieve(clock_id)

    def deliveries(self, **query: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.url}/_sim/deliveries", params=query)
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def session(self, **params: Any) -> stripe.checkout.Session:
        """A one-item payment session for a $4.99 Starter Pack, unless ``params`` say otherwise."""
        defaults: dict[str, Any] = {
            "mode": "payment",
            "success_url": "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://shop.example/cancel",
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
            "metadata": {"billfold_account": "user_123", "billfold_package": "starter"},
        }
        return self.stripe.v1.checkout.sessions.create(params={**defaults, **params})


def stripe_client(base_url: str, api_key: str = API_KEY) -> tuple[stripe.StripeClient, Any]:
    http_client = stripe.RequestsClient()
    client = stripe.StripeClient(
        api_key,
        base_addresses={"api": base_url},
        http_client=http_client,
        max_network_retries=0,
    )
    return client, http_client


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[Receiver]:
    endpoint = Receiver()
    app = Starlette(routes=[Route("/webhooks/stripe", endpoint.endpoint, methods=["POST"])])
    server = ServerThread(app).start()
    endpoint.url = f"{server.url}/webhooks/stripe"
    yield endpoint
    server.stop()


@pytest.fixture
def receiver(_receiver_server: Receiver) -> Receiver:
    """The webhook receiver, emptied and answering 200 again."""
    _receiver_server.reset()
    return _receiver_server


def _config(receiver: Receiver, **overrides: Any) -> SimulatorConfig:
    settings: dict[str, Any] = {
        "webhook_url": receiver.url,
        "webhook_secret": SECRET,
        "retry": RetryPolicy(base_seconds=0.02, max_seconds=0.2, max_attempts=5),
        "async_settle_seconds": None,
        "clock_advance_seconds": 0.01,
    }
    settings.update(overrides)
    return SimulatorConfig(**settings)


def _start(config: SimulatorConfig) -> tuple[ServerThread, Sim]:
    app = create_simulator_app(config)
    server = ServerThread(app).start()
    client, http_client = stripe_client(server.url)
    http = httpx.Client(timeout=10)
    handle = Sim(url=server.url, app=app, stripe=client, http=http, server=server)
    handle.closers += [http_client.close, http.close]
    return server, handle


def _stop(started: list[tuple[ServerThread, Sim]]) -> None:
    # Stopping takes uvicorn a tick each: stop them side by side.
    stopping = [threading.Thread(target=handle.stop) for _, handle in started]
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join()


@pytest.fixture(scope="session")
def _shared_sim(_receiver_server: Receiver) -> Iterator[Sim]:
    started = [_start(_config(_receiver_server))]
    yield started[0][1]
    _stop(started)


@pytest.fixture
def sim(_shared_sim: Sim, receiver: Receiver) -> Sim:
    """A simulator with the default test configuration and nothing in it yet."""
    _shared_sim.control("reset")
    receiver.reset()
    return _shared_sim


MakeSim = Callable[..., Sim]


@pytest.fixture
def make_sim(receiver: Receiver) -> Iterator[MakeSim]:
    """Start a simulator of its own; keyword arguments override ``SimulatorConfig`` fields."""
    started: list[tuple[ServerThread, Sim]] = []

    def make(**overrides: Any) -> Sim:
        started.append(_start(_config(receiver, **overrides)))
        return started[-1][1]

    yield make
    _stop(started)


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not become true in time")
        time.sleep(0.01)


WaitUntil = Callable[..., None]
Serve = Callable[[ASGIApp], ServerThread]
Sdk = Callable[[str], stripe.StripeClient]


@pytest.fixture
def wait_until() -> WaitUntil:
    """Poll a condition (events arrive in the background) until it holds or time runs out."""
    return _wait_until


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Serve any ASGI app on a free port for the length of the test."""
    servers: list[ServerThread] = []

    def start(app: ASGIApp) -> ServerThread:
        servers.append(ServerThread(app).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    """An official SDK client for an API base URL."""
    closers: list[Callable[[], None]] = []

    def make(base_url: str) -> stripe.StripeClient:
        client, http_client = stripe_client(base_url)
        closers.append(http_client.close)
        return client

    yield make
    for close in closers:
        close()


@pytest.fixture
def webhook_secret() -> str:
    return SECRET

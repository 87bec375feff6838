"""``create_simulator_app(config)``: the simulator as an ASGI app, standalone or mounted.

    /v1/...              the Stripe API subset, for the official SDK
    /pay/{session_id}    the hosted checkout page (a checkout session's ``url``)
    /portal/{session_id} the hosted customer portal (a billing portal session's ``url``)
    /_sim/...            JSON control routes for tests (see ``control``)

Mounted inside another app (``Mount("/stripe", app=...)``) its lifespan never runs, so the delivery
worker also starts on the first request; the host should ``await app.state.simulator.aclose()`` on
shutdown. Nothing is built before the factory is called.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from billfold.simulator import checkout, clocks, refunds
from billfold.simulator.api import Api
from billfold.simulator.checkout_page import CheckoutPage
from billfold.simulator.config import SimulatorConfig
from billfold.simulator.control import Control
from billfold.simulator.portal_page import PortalPage
from billfold.simulator.service import Simulator

ALL_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]


class _StartBackground:
    """Starts the delivery worker and job timers in the loop that serves requests."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.simulator.ensure_background()
        await self.app(scope, receive, send)


def create_simulator_app(config: SimulatorConfig) -> Starlette:
    sim = Simulator(
        config,
        handlers={
            "settle": checkout.settle_when_due,
            clocks.JOB: clocks.run_advance,
            refunds.JOB: refunds.fail_when_due,
        },
    )
    api = Api(sim)
    page = CheckoutPage(sim)
    portal_page = PortalPage(sim)
    control = Control(sim)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sim.ensure_background()
        try:
            yield
        finally:
            await sim.aclose()

    routes = [
        Route("/v1/{path:path}", api.handle, methods=ALL_METHODS),
        Route("/pay/{session_id}", page.show, methods=["GET"]),
        Route("/pay/{session_id}", page.submit, methods=["POST"]),
        Route("/portal/{session_id}", portal_page.show, methods=["GET"]),
        Route("/portal/{session_id}", portal_page.submit, methods=["POST"]),
        *control.routes(),
        Route("/{path:path}", api.unknown, methods=ALL_METHODS),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(_StartBackground, simulator=sim)],
    )
    app.state.simulator = sim
    return app

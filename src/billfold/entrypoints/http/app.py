"""The ASGI application factory: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi_offline import FastAPIOffline
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from billfold.bootstrap import Services, build
from billfold.entrypoints import logs
from billfold.entrypoints.http import errors as http_errors
from billfold.entrypoints.http import openapi, routes, webhooks
from billfold.entrypoints.http.access import RateLimits
from billfold.entrypoints.http.admin_ui import AdminConfig, AdminView
from billfold.entrypoints.http.auth import Authenticator
from billfold.entrypoints.http.lean import LeanRoutes, LeanStats
from billfold.entrypoints.http.observability import Observability
from billfold.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    run_worker: bool | None = None,
    admin_links: tuple[tuple[str, str], ...] = (("API docs", "/docs"),),
    lean_routes: bool = True,
) -> FastAPI:
    """The billfold API, and the operator console at ``/admin`` whenever an admin token is set.
    ``services`` may be passed in (tests, ``billfold dev``, embedding). ``lean_routes=False``
    leaves every request to FastAPI (``lean.py``: the tests hold both ways to one answer)."""
    settings = settings or (services.settings if services else load_settings())
    logs.configure(settings)
    svc = services or build(settings)
    in_process = settings.worker_in_process if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if in_process:
            from billfold.entrypoints.worker import Worker

            worker = Worker(svc)
            worker.start_thread()
        app.state.worker = worker
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            if console is not None:
                await console.aclose()
            if services is None:
                svc.close()

    # /docs (Swagger UI) and /redoc from files installed with the package, not from a CDN: the
    # interactive docs work offline and behind a strict firewall.
    app = FastAPIOffline(
        static_url="/docs-assets",
        title="billfold",
        version="0.1.0",
        summary="Stripe payments into prepaid credits, wallet balances and entitlements.",
        lifespan=lifespan,
    )
    app.state.services = svc
    app.state.authenticator = Authenticator(settings)
    app.state.rate_limits = RateLimits.from_settings(settings)
    app.state.lean_routes = LeanStats()
    if lean_routes:
        app.add_middleware(LeanRoutes, stats=app.state.lean_routes)  # inside the two below
    app.add_middleware(JsonBodies)
    app.add_middleware(Observability, metrics=svc.metrics)  # the outermost: sees every answer
    http_errors.install(app)
    app.include_router(webhooks.router)
    routes.install(app)
    openapi.install(app, svc.catalog)
    console = None
    if svc.admin_sessions.configured:
        # The console calls this same API in-process, as an operator's browser would over HTTP.
        console = AdminView(
            AdminConfig(
                api_base_url="http://billfold.internal",
                api_transport=httpx.ASGITransport(app=app),
                admin_token=settings.admin_token.get_secret_value()
                if settings.admin_token
                else None,
                sessions=svc.admin_sessions,
                links=admin_links,
            )
        )
        app.router.routes.append(Mount("/admin", app=Starlette(routes=console.routes())))
        app.add_api_route("/admin", _to_console, include_in_schema=False)
    return app


class JsonBodies:
    """Bodies sent to ``/v1`` without a JSON content type are read as JSON, as many APIs do:
    ``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``, and the API takes no forms."""

    FORMS = (b"application/x-www-form-urlencoded", b"text/plain")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH")
            and scope["path"].startswith("/v1/")
        ):
            headers = list(scope["headers"])
            for index, (name, value) in enumerate(headers):
                if name == b"content-type" and value.split(b";")[0].strip().lower() in self.FORMS:
                    headers[index] = (name, b"application/json")
                    scope["headers"] = headers  # in place: the route it finds is seen outside
                    break
        await self.app(scope, receive, send)


async def _to_console() -> RedirectResponse:
    return RedirectResponse("/admin/", status_code=308)


def create_app_from_env() -> FastAPI:
    """The app ``billfold serve`` runs, one per server process. Everything built at start-up
    (the app, its routes and models, the libraries' modules: a few hundred thousand objects) is
    moved out of the garbage collector's reach: a full collection no longer walks it all, which
    was a pause of tens of milliseconds every few thousand requests (p99 of spends over HTTP
    ~100 ms before, ~30 ms after, ``make bench``)."""
    app = create_app(load_settings())
    gc.freeze()
    return app

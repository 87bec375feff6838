"""The ASGI application factory: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from billfold.bootstrap import Services, build
from billfold.entrypoints.http import errors as http_errors
from billfold.entrypoints.http import openapi, routes, webhooks
from billfold.entrypoints.http.access import RateLimits
from billfold.entrypoints.http.auth import Authenticator
from billfold.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    run_worker: bool | None = None,
) -> FastAPI:
    """The billfold API. ``services`` may be passed in (tests, ``billfold dev``, embedding)."""
    settings = settings or (services.settings if services else load_settings())
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
    http_errors.install(app)
    app.include_router(webhooks.router)
    routes.install(app)
    openapi.install(app, svc.catalog)
    return app


def create_app_from_env() -> FastAPI:
    return create_app(load_settings())

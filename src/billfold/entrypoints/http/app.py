"""The ASGI application factory: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from billfold.bootstrap import Services, build
from billfold.domain import errors
from billfold.entrypoints.http import admin, api, webhooks
from billfold.entrypoints.http import errors as http_errors
from billfold.entrypoints.http.auth import Authenticator
from billfold.entrypoints.http.schemas import HealthResponse
from billfold.service.events import HANDLED_TYPES
from billfold.settings import Settings, load_settings

log = logging.getLogger("billfold.http")


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
    http_errors.install(app)
    app.include_router(webhooks.router)
    app.include_router(admin.router)
    api.install(app, settings)

    @app.get("/healthz", tags=["ops"], response_model=HealthResponse)
    async def healthz() -> JSONResponse:
        """Liveness and readiness: the database, the webhook secret, the inbox backlog."""
        database = "ok"
        backlog: dict[str, int] = {}
        try:
            backlog = await run_in_threadpool(_backlog, svc)
        except (errors.StorageUnavailable, sa.exc.SQLAlchemyError):
            database = "unreachable"
        body = HealthResponse(
            status="ok" if database == "ok" else "unavailable",
            database=database,
            webhook_secret_configured=bool(settings.webhook_secrets),
            stripe_configured=svc.stripe is not None,
            handled_event_types=list(HANDLED_TYPES),
            inbox_backlog=backlog,
        )
        return JSONResponse(body.model_dump(), status_code=200 if database == "ok" else 503)

    return app


def _backlog(svc: Services) -> dict[str, int]:
    with svc.uow() as uow:
        return uow.inbox.backlog()


def create_app_from_env() -> FastAPI:
    return create_app(load_settings())

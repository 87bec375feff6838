"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from billfold.bootstrap import Services, build
from billfold.settings import Settings, load_settings


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    settings = settings or (services.settings if services else load_settings())
    svc = services or build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if services is None:
            svc.close()

    app = FastAPI(title="billfold", version="0.1.0", lifespan=lifespan)
    app.state.services = svc

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def create_app_from_env() -> FastAPI:
    return create_app(load_settings())

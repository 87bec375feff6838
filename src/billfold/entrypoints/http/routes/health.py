"""``GET /healthz``: liveness and readiness in one cheap answer."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from billfold.domain import errors
from billfold.entrypoints.http.deps import ServicesDep
from billfold.schemas import HealthResponse

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz(services: ServicesDep) -> JSONResponse:
    """Liveness and readiness: the database, the webhook secret, the inbox backlog."""
    database = "ok"
    backlog: dict[str, int] = {}
    try:
        backlog = await run_in_threadpool(services.views.backlog)
    except errors.StorageError:
        database = "unreachable"
    body = HealthResponse(
        status="ok" if database == "ok" else "unavailable",
        database=database,
        webhook_secret_configured=bool(services.settings.webhook_secrets),
        stripe_configured=services.stripe_configured,
        handled_event_types=sorted(services.inbox.handled_types),
        inbox_backlog=backlog,
    )
    return JSONResponse(body.model_dump(), status_code=200 if database == "ok" else 503)

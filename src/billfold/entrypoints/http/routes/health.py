"""``GET /healthz`` (cheap: the database answers), ``GET /readyz`` (ready to take traffic: the
database reachable and its schema at billfold's head; the worker's last heartbeat reported) and
``GET /metrics`` (Prometheus; a bearer token when ``BILLFOLD_METRICS_TOKEN`` is set)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from billfold.domain import errors
from billfold.entrypoints.http.deps import ServicesDep
from billfold.entrypoints.http.errors import error_response
from billfold.schemas import HealthResponse, ReadyResponse
from billfold.service.observe import Gauge

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


@router.get("/readyz", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready to take traffic: 200 when the database answers and its schema is at billfold's head,
    503 otherwise. Reports the latest worker heartbeat (seconds ago; null when none ever ran)."""

    def check() -> ReadyResponse:
        try:
            schema = services.maintenance.schema()
        except errors.StorageError:
            return ReadyResponse(status="unavailable", database="unreachable", schema_ok=False)
        try:
            ops = services.views.operations()
        except errors.StorageError:
            return ReadyResponse(status="unavailable", database="unreachable", schema_ok=False)
        current = schema.current
        return ReadyResponse(
            status="ok" if current else "unavailable",
            database="ok",
            schema_ok=current,
            schema_revision=schema.after,
            schema_head=schema.head,
            worker_heartbeat_age_seconds=ops.heartbeat_age,
            worker_last_heartbeat=ops.last_heartbeat,
            inbox_backlog=ops.backlog,
            oldest_waiting_age_seconds=ops.oldest_waiting_age,
        )

    body = await run_in_threadpool(check)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format. Without ``BILLFOLD_METRICS_TOKEN`` anyone may read it (keep it
    on an internal port); with it, ``Authorization: Bearer <token>``."""
    token = services.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.get_secret_value().encode()
        ):
            return error_response(
                401,
                "unauthorized",
                "GET /metrics needs the metrics token: Authorization: Bearer <token>.",
                "authentication_error",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )

    def scrape() -> tuple[bytes, str]:
        gauges: list[Gauge] = []
        try:
            ops = services.views.operations()
        except errors.StorageError:
            gauges.append(Gauge("billfold_database_up", "1 when the database answered.", 0))
        else:
            gauges.append(Gauge("billfold_database_up", "1 when the database answered.", 1))
            for status in ("received", "failed", "dead"):
                gauges.append(
                    Gauge(
                        "billfold_inbox_backlog",
                        "Events waiting in the inbox, by status.",
                        ops.backlog.get(status, 0),
                        (("status", status),),
                    )
                )
            gauges.append(
                Gauge(
                    "billfold_inbox_oldest_waiting_seconds",
                    "Age of the oldest event not yet processed (received or failed); 0 when none.",
                    ops.oldest_waiting_age,
                )
            )
            if ops.heartbeat_age is not None:
                gauges.append(
                    Gauge(
                        "billfold_worker_last_heartbeat_seconds",
                        "Seconds since a worker last reported.",
                        ops.heartbeat_age,
                    )
                )
        return services.metrics.render(gauges)

    body, content_type = await run_in_threadpool(scrape)
    return Response(body, media_type=content_type)

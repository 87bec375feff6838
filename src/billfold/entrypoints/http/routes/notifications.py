"""Notifications to the application, for operators (admin token): endpoints, the outbox, redelivery;
and the ``webhooks`` section of the OpenAPI document (what billfold POSTs, per type)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, Field, create_model
from starlette.concurrency import run_in_threadpool

from billfold import schemas
from billfold.domain import notifications as rules
from billfold.domain.notifications import NotificationStatus
from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import AdminDep
from billfold.entrypoints.http.deps import Limit, ServicesDep, StartingAfter
from billfold.entrypoints.http.openapi import errors_of

router = APIRouter(prefix="/v1", tags=["admin"])


@router.post(
    "/notification-endpoints",
    response_model=schemas.NotificationEndpointResponse,
    responses=errors_of(401, 403, 404),
)
async def create_endpoint(
    body: schemas.CreateNotificationEndpointRequest, services: ServicesDep, _admin: AdminDep
) -> schemas.NotificationEndpointResponse:
    """Register an endpoint of the application (its url and the types it wants) and answer its
    ``whsec_`` secret, once. With ``rotate`` (an endpoint id), give that endpoint a new secret:
    deliveries carry a signature under the new and the previous secret until the next rotation."""
    if body.rotate is not None:
        done = await run_in_threadpool(
            services.notifications.rotate_secret, body.rotate, secret=body.secret
        )
    else:
        done = await run_in_threadpool(
            lambda: services.notifications.create_endpoint(
                body.url, types=list(body.types), secret=body.secret
            )
        )
    return presenters.endpoint(done.endpoint, secret=done.secret)


@router.get(
    "/notification-endpoints",
    response_model=schemas.ListResponse[schemas.NotificationEndpointResponse],
    responses=errors_of(401, 403),
)
def list_endpoints(
    services: ServicesDep, _admin: AdminDep
) -> schemas.ListResponse[schemas.NotificationEndpointResponse]:
    """Every endpoint: those of ``BILLFOLD_NOTIFY_URLS`` (``source: settings``), then the
    registered ones. Secrets are never shown again."""
    found = services.notifications.endpoints()
    return schemas.ListResponse(data=[presenters.endpoint(e) for e in found], has_more=False)


@router.get(
    "/notifications",
    response_model=schemas.ListResponse[schemas.NotificationResponse],
    responses=errors_of(401, 403),
)
def list_notifications(
    services: ServicesDep,
    _admin: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    status: Annotated[str | None, Query(description=", ".join(rules.STATUSES))] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    account_id: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.ListResponse[schemas.NotificationResponse]:
    """The outbox, newest first: filter by status, type and account."""
    rows, has_more = services.notifications.page(
        status=cast(NotificationStatus | None, status),
        type_=type,
        account_id=account_id,
        limit=limit,
        starting_after=starting_after,
    )
    return schemas.ListResponse(data=[presenters.notification(r) for r in rows], has_more=has_more)


@router.get(
    "/notifications/{notification_id}",
    response_model=schemas.NotificationResponse,
    responses=errors_of(401, 403, 404),
)
def get_notification(
    notification_id: str, services: ServicesDep, _admin: AdminDep
) -> schemas.NotificationResponse:
    """One notification, with the body billfold POSTs."""
    return presenters.notification(services.notifications.get(notification_id))


@router.post(
    "/notifications/{notification_id}/redeliver",
    response_model=schemas.NotificationResponse,
    responses=errors_of(401, 403, 404),
)
async def redeliver(
    notification_id: str, services: ServicesDep, _admin: AdminDep
) -> schemas.NotificationResponse:
    """Send it again from the first attempt of the schedule (a dead one comes back to life)."""
    done = await run_in_threadpool(services.notifications.redeliver, notification_id)
    return presenters.notification(done)


def install_webhooks(app: FastAPI) -> None:
    """One entry per type in the OpenAPI document's ``webhooks``: the body billfold POSTs, signed
    per Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""
    for type_ in rules.TYPES:
        data = schemas.NOTIFICATION_DATA[type_]
        name = "".join(part.capitalize() for part in type_.replace("_", ".").split("."))
        body: type[BaseModel] = create_model(
            f"{name}Notification",
            type=(Literal[type_], ...),  # type: ignore[arg-type]
            timestamp=(str, Field(description="When it happened, RFC 3339, UTC.")),
            data=(data, ...),
        )
        _register(app, type_, body)


def _register(app: FastAPI, type_: str, body: type[BaseModel]) -> None:
    def receive(payload: Any) -> None:  # pragma: no cover - documentation only
        return None

    receive.__annotations__ = {"payload": body, "return": None}
    app.webhooks.add_api_route(
        type_,
        receive,
        methods=["POST"],
        summary=type_,
        description=(
            f"billfold POSTs `{type_}` to every endpoint that wants it, with the headers "
            "`webhook-id` (stable across retries), `webhook-timestamp` and "
            "`webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`. Answer 2xx "
            "within 15 s; otherwise billfold retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h "
            "and 10 h, then marks it dead."
        ),
        status_code=200,
    )

"""The event inbox, for operators (admin token): list, inspect, retry."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from billfold.domain import errors
from billfold.domain.records import EVENT_STATUSES, EventStatus, TimeRange
from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import AdminDep
from billfold.entrypoints.http.deps import Limit, ServicesDep, StartingAfter
from billfold.entrypoints.http.openapi import errors_of
from billfold.schemas import EventDetailResponse, EventResponse, ListResponse, OperatorNote
from billfold.service.attention import Who

router = APIRouter(prefix="/v1", tags=["admin"])


def event_status(value: str | None) -> EventStatus | None:
    if value is None:
        return None
    if value not in EVENT_STATUSES:
        raise errors.ValidationError(
            f"status must be one of {', '.join(EVENT_STATUSES)}.", param="status"
        )
    return cast(EventStatus, value)


MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z
_OPS = {"gt": "after", "gte": "at or after", "lt": "before", "lte": "at or before"}


def _created(op: str) -> Any:
    """Stripe's ``created[op]`` query parameter: a non-negative integer (400 otherwise)."""
    return Query(
        alias=f"created[{op}]",
        ge=0,
        le=MAX_TIMESTAMP,
        description=f"Only events created {_OPS[op]} this time (Unix seconds).",
    )


@router.get("/events", response_model=ListResponse[EventResponse], responses=errors_of(401, 403))
def list_events(
    services: ServicesDep,
    _admin: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    status: Annotated[str | None, Query(description=", ".join(EVENT_STATUSES))] = None,
    type: Annotated[str | None, Query(max_length=128)] = None,
    created_gt: Annotated[int | None, _created("gt")] = None,
    created_gte: Annotated[int | None, _created("gte")] = None,
    created_lt: Annotated[int | None, _created("lt")] = None,
    created_lte: Annotated[int | None, _created("lte")] = None,
) -> ListResponse[EventResponse]:
    """The event inbox, newest received first. ``created[gt|gte|lt|lte]`` (Unix seconds, as
    Stripe's List Events takes them) bound the event's ``created`` time at Stripe; an event that
    carries none is placed at the time billfold received it."""
    page = services.views.events(
        status=event_status(status),
        type_=type,
        limit=limit,
        starting_after=starting_after,
        created=TimeRange(gt=created_gt, gte=created_gte, lt=created_lt, lte=created_lte),
    )
    return ListResponse(data=[presenters.event(e) for e in page.data], has_more=page.has_more)


@router.get(
    "/events/{event_id}", response_model=EventDetailResponse, responses=errors_of(401, 403, 404)
)
def get_event(event_id: str, services: ServicesDep, _admin: AdminDep) -> EventDetailResponse:
    """One event, with the payload parsed from what Stripe sent, and its attempt history:
    failed attempts and operators' retries, oldest first."""
    record, history = services.views.event_with_attempts(event_id)
    return presenters.event_detail(record, history, payload=_as_json(record.payload))


@router.get(
    "/events/{event_id}/payload",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "The body as received."},
        **errors_of(401, 403, 404),
    },
)
def get_event_payload(event_id: str, services: ServicesDep, _admin: AdminDep) -> Response:
    """The event's body exactly as it was received, byte for byte (whitespace, key order)."""
    record = services.views.event(event_id)
    return Response((record.payload or "").encode("utf-8"), media_type="application/json")


@router.post(
    "/events/{event_id}/retry",
    response_model=EventResponse,
    responses=errors_of(401, 403, 404, 409),
)
async def retry_event(
    event_id: str, services: ServicesDep, _admin: AdminDep, body: OperatorNote | None = None
) -> EventResponse:
    """Process a failed or dead event again, now. The operator and reason, when given, are
    recorded with the action (``GET /v1/operator-actions``)."""
    who = Who(actor=body.operator, reason=body.reason) if body else Who()
    retried = await run_in_threadpool(services.attention.retry, event_id, who)
    return presenters.event(retried.event)


def _as_json(payload: str | None) -> dict[str, Any] | None:
    try:
        parsed = json.loads(payload or "")
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None

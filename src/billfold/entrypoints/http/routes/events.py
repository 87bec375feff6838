"""The event inbox, for operators (admin token): list, inspect, retry."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from billfold.domain import errors
from billfold.domain.records import EVENT_STATUSES, EventStatus
from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import AdminDep
from billfold.entrypoints.http.deps import Limit, ServicesDep, StartingAfter
from billfold.entrypoints.http.openapi import errors_of
from billfold.schemas import EventResponse, ListResponse, OperatorNote
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


@router.get("/events", response_model=ListResponse[EventResponse], responses=errors_of(401, 403))
def list_events(
    services: ServicesDep,
    _admin: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    status: Annotated[str | None, Query(description=", ".join(EVENT_STATUSES))] = None,
    type: Annotated[str | None, Query(max_length=128)] = None,
) -> ListResponse[EventResponse]:
    """The event inbox, newest first."""
    page = services.views.events(
        status=event_status(status), type_=type, limit=limit, starting_after=starting_after
    )
    return ListResponse(data=[presenters.event(e) for e in page.data], has_more=page.has_more)


@router.get("/events/{event_id}", response_model=EventResponse, responses=errors_of(401, 403, 404))
def get_event(event_id: str, services: ServicesDep, _admin: AdminDep) -> EventResponse:
    """One event, with the payload exactly as Stripe sent it."""
    record = services.views.event(event_id)
    return presenters.event(record, payload=_as_json(record.payload))


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

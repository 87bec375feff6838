"""What needs a person, and what operators did (admin token): the queue, replays, the record."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from billfold.domain.actions import TARGET_TYPES, TargetType
from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import AdminDep
from billfold.entrypoints.http.deps import Limit, ServicesDep, StartingAfter
from billfold.entrypoints.http.openapi import errors_of
from billfold.schemas import (
    AttentionResponse,
    EventResponse,
    ListResponse,
    OperatorActionResponse,
    ReplayEventRequest,
)
from billfold.service.attention import Who

router = APIRouter(prefix="/v1", tags=["admin"])


@router.get("/attention", response_model=AttentionResponse, responses=errors_of(401, 403))
def needs_attention(services: ServicesDep, _admin: AdminDep) -> AttentionResponse:
    """Orders and subscription invoices billfold could not resolve, and failed and dead events."""
    return presenters.attention(services.attention.queue())


@router.post(
    "/events/{event_id}/replay",
    response_model=EventResponse,
    responses=errors_of(401, 403, 404),
)
async def replay_event(
    event_id: str, body: ReplayEventRequest, services: ServicesDep, _admin: AdminDep
) -> EventResponse:
    """Process any event again, whatever its status. Every effect is keyed, so replaying an event
    that was processed changes nothing; one that was ignored (a price the catalog did not sell
    then) is completed. ``reason`` is required and recorded with the operator's name."""
    who = Who(actor=body.operator, reason=body.reason)
    return presenters.event(await run_in_threadpool(services.attention.replay, event_id, who))


@router.get(
    "/operator-actions",
    response_model=ListResponse[OperatorActionResponse],
    responses=errors_of(401, 403),
)
def list_operator_actions(
    services: ServicesDep,
    _admin: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    target_type: Annotated[str | None, Query(description=", ".join(TARGET_TYPES))] = None,
    target_id: Annotated[str | None, Query(max_length=255)] = None,
) -> ListResponse[OperatorActionResponse]:
    """What operators did (retries, replays, resolutions, ...), newest first, with who and why."""
    page = services.attention.actions(
        target_type=cast(TargetType | None, target_type),  # checked by the service
        target_id=target_id,
        limit=limit,
        starting_after=starting_after,
    )
    return ListResponse(
        data=[presenters.operator_action(a) for a in page.data], has_more=page.has_more
    )

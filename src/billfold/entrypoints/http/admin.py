"""Operator routes (admin token): the event inbox and orders needing attention."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from billfold.domain import errors
from billfold.entrypoints.http.deps import AdminDep, Limit, ServicesDep, StartingAfter
from billfold.entrypoints.http.schemas import (
    EventResponse,
    ListResponse,
    OrderResponse,
    ResolveOrderRequest,
)
from billfold.service.orders import Resolution

router = APIRouter(prefix="/v1", tags=["admin"])

EVENT_STATUSES = ("received", "processed", "ignored", "failed", "dead")
ORDER_STATUSES = ("pending", "fulfilled", "failed", "expired", "needs_attention", "refunded")


@router.get("/events", response_model=ListResponse[EventResponse])
def list_events(
    services: ServicesDep,
    _admin: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    status: Annotated[str | None, Query(description=", ".join(EVENT_STATUSES))] = None,
    type: Annotated[str | None, Query(max_length=128)] = None,
) -> ListResponse[EventResponse]:
    """The event inbox, newest first."""
    if status is not None and status not in EVENT_STATUSES:
        raise errors.ValidationError(
            f"status must be one of {', '.join(EVENT_STATUSES)}.", param="status"
        )
    with services.uow() as uow:
        rows = uow.inbox.list(
            status=status, type_=type, limit=limit + 1, starting_after=starting_after
        )
    return ListResponse(
        data=[EventResponse.of(e) for e in rows[:limit]], has_more=len(rows) > limit
    )


@router.get("/events/{event_id}", response_model=EventResponse)
def get_event(event_id: str, services: ServicesDep, _admin: AdminDep) -> EventResponse:
    """One event, with the payload exactly as Stripe sent it."""
    with services.uow() as uow:
        record = uow.inbox.get(event_id)
    if record is None:
        raise errors.EventNotFound(f"No event {event_id!r} in the inbox.")
    return EventResponse.of(record, payload=json.loads(record.payload or "{}"))


@router.post("/events/{event_id}/retry", response_model=EventResponse)
async def retry_event(event_id: str, services: ServicesDep, _admin: AdminDep) -> EventResponse:
    """Process a failed or dead event again, now."""
    record, _ = await run_in_threadpool(services.events.retry, event_id, stripe=services.stripe)
    return EventResponse.of(record)


@router.get("/orders", response_model=ListResponse[OrderResponse])
def list_orders(
    services: ServicesDep,
    _admin: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    status: Annotated[str | None, Query(description=", ".join(ORDER_STATUSES))] = None,
    account_id: Annotated[str | None, Query(max_length=200)] = None,
) -> ListResponse[OrderResponse]:
    """Orders, newest first; ``status=needs_attention`` lists those waiting for an operator."""
    if status is not None and status not in ORDER_STATUSES:
        raise errors.ValidationError(
            f"status must be one of {', '.join(ORDER_STATUSES)}.", param="status"
        )
    with services.uow() as uow:
        rows = uow.orders.list(
            status=status, account_id=account_id, limit=limit + 1, starting_after=starting_after
        )
    return ListResponse(
        data=[OrderResponse.of(o) for o in rows[:limit]], has_more=len(rows) > limit
    )


@router.get("/orders/{order_id}", response_model=OrderResponse)
def get_order(order_id: str, services: ServicesDep, _admin: AdminDep) -> OrderResponse:
    with services.uow() as uow:
        order = uow.orders.get(order_id)
    if order is None:
        raise errors.OrderNotFound(f"No order {order_id!r}.")
    return OrderResponse.of(order)


@router.post("/orders/{order_id}/resolve", response_model=OrderResponse)
def resolve_order(
    order_id: str,
    body: ResolveOrderRequest,
    services: ServicesDep,
    _admin: AdminDep,
) -> OrderResponse:
    """Fulfil an order in ``needs_attention``, naming the account and package where needed."""
    resolution = Resolution(account_id=body.account_id, package=body.package)
    with services.uow() as uow:
        existing = uow.orders.get(order_id)
    line_items = None
    if (
        existing is not None
        and existing.kind == "checkout"
        and body.package is None
        and existing.package is None
        and services.stripe is not None
    ):
        # Fetched before the transaction: no lock is ever held across a call to Stripe.
        line_items = services.stripe.checkout_line_items(existing.stripe_id)
    with services.uow() as uow:
        order = services.orders.resolve(
            uow, order_id, resolution, services.clock(), line_items=line_items
        )
        uow.commit()
    return OrderResponse.of(order)

"""Orders, for operators (admin token): list, inspect, resolve those needing attention."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from billfold.domain import errors
from billfold.domain.orders import ORDER_STATUSES, OrderStatus
from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import AdminDep
from billfold.entrypoints.http.deps import Limit, ServicesDep, StartingAfter
from billfold.entrypoints.http.openapi import errors_of
from billfold.schemas import ListResponse, OrderResponse, ResolveOrderRequest
from billfold.service.attention import Who
from billfold.service.orders.desk import ResolveOrder

router = APIRouter(prefix="/v1", tags=["admin"])


def order_status(value: str | None) -> OrderStatus | None:
    if value is None:
        return None
    if value not in ORDER_STATUSES:
        raise errors.ValidationError(
            f"status must be one of {', '.join(ORDER_STATUSES)}.", param="status"
        )
    return cast(OrderStatus, value)


@router.get("/orders", response_model=ListResponse[OrderResponse], responses=errors_of(401, 403))
def list_orders(
    services: ServicesDep,
    _admin: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    status: Annotated[str | None, Query(description=", ".join(ORDER_STATUSES))] = None,
    account_id: Annotated[str | None, Query(max_length=200)] = None,
) -> ListResponse[OrderResponse]:
    """Orders, newest first; ``status=needs_attention`` lists those waiting for an operator."""
    page = services.views.orders(
        status=order_status(status),
        account_id=account_id,
        limit=limit,
        starting_after=starting_after,
    )
    return ListResponse(data=[presenters.order(o) for o in page.data], has_more=page.has_more)


@router.get("/orders/{order_id}", response_model=OrderResponse, responses=errors_of(401, 403, 404))
def get_order(order_id: str, services: ServicesDep, _admin: AdminDep) -> OrderResponse:
    return presenters.order(services.views.order(order_id))


@router.post(
    "/orders/{order_id}/resolve",
    response_model=OrderResponse,
    responses=errors_of(401, 403, 404, 409, 502),
)
async def resolve_order(
    order_id: str,
    body: ResolveOrderRequest,
    services: ServicesDep,
    _admin: AdminDep,
) -> OrderResponse:
    """Fulfil an order in ``needs_attention``, naming the account and package where needed. The
    operator and reason, when given, are recorded with the action (``GET /v1/operator-actions``)."""
    command = ResolveOrder(order_id=order_id, account_id=body.account_id, package=body.package)
    who = Who(actor=body.operator, reason=body.reason)
    return presenters.order(await run_in_threadpool(services.attention.resolve, command, who))

"""Spending: spends, and holds placed, captured and released.

Writes that move value take an optional ``Idempotency-Key`` header, as Stripe's do: the same key
with the same body answers the first answer again (``Idempotent-Replayed: true``), with another
body 409. Without one, every request is new.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import (
    ReaderDep,
    ServerDep,
    SpenderDep,
    ledger_key,
    mark_idempotent,
)
from billfold.entrypoints.http.auth import Principal
from billfold.entrypoints.http.deps import IdempotencyKey, ServicesDep, services_of
from billfold.entrypoints.http.openapi import errors_of
from billfold.schemas import (
    CaptureRequest,
    HoldRequest,
    HoldResponse,
    SpendRequest,
    SpendResponse,
)
from billfold.service.ledger import Capture, Hold, HoldResult, Release, Spend, SpendResult

router = APIRouter(prefix="/v1", tags=["spending"])

AccountId = Annotated[str, Path(min_length=1, max_length=200, description="Your account id.")]
HoldId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/accounts/{account_id}/spend",
    response_model=SpendResponse,
    responses=errors_of(401, 402, 403, 409, 429),
)
async def spend(
    account_id: AccountId,
    body: SpendRequest,
    response: Response,
    request: Request,
    principal: SpenderDep,
    idempotency_key: IdempotencyKey = None,
) -> SpendResponse:
    """Spend ``amount`` of ``unit`` now, from the grants spent first (priority, then soonest
    expiry). 402 ``insufficient_balance`` when the balance is short; nothing is taken then."""
    done = await spent(services_of(request), principal, account_id, body, idempotency_key)
    mark_idempotent(response, idempotency_key, replayed=done.replayed)
    return presenters.spend(done)


@router.post(
    "/accounts/{account_id}/holds",
    status_code=201,
    response_model=HoldResponse,
    responses=errors_of(401, 402, 403, 409, 429),
)
async def create_hold(
    account_id: AccountId,
    body: HoldRequest,
    response: Response,
    request: Request,
    principal: SpenderDep,
    idempotency_key: IdempotencyKey = None,
) -> HoldResponse:
    """Reserve ``amount`` of ``unit`` for work that finishes later; capture or release it before
    ``expires_at`` (``ttl_seconds``, default ``BILLFOLD_HOLD_TTL_SECONDS``), or it releases
    itself."""
    done = await held(services_of(request), principal, account_id, body, idempotency_key)
    mark_idempotent(response, idempotency_key, replayed=done.replayed)
    return presenters.hold_moved(done)


@router.get(
    "/holds/{hold_id}",
    response_model=HoldResponse,
    responses=errors_of(401, 403, 404),
)
def get_hold(hold_id: HoldId, services: ServicesDep, principal: ReaderDep) -> HoldResponse:
    """A hold as it stands now (a lapsed hold shows ``expired`` even before the sweep writes it)."""
    found = services.views.hold(hold_id)
    if not principal.may_see(found.account_id):
        raise errors.HoldNotFound(f"No hold {hold_id!r}.")
    return presenters.hold(found)


@router.post(
    "/holds/{hold_id}/capture",
    response_model=HoldResponse,
    responses=errors_of(401, 403, 404, 409),
)
async def capture_hold(
    hold_id: HoldId,
    response: Response,
    request: Request,
    principal: ServerDep,
    idempotency_key: IdempotencyKey = None,
    body: CaptureRequest | None = None,
) -> HoldResponse:
    """Spend the hold: all of it, or ``amount`` of it and release the rest. 409 when the hold is
    no longer active (captured, released or expired)."""
    done = await captured(services_of(request), principal, hold_id, body, idempotency_key)
    mark_idempotent(response, idempotency_key, replayed=done.replayed)
    return presenters.hold_moved(done)


@router.post(
    "/holds/{hold_id}/release",
    response_model=HoldResponse,
    responses=errors_of(401, 403, 404, 409),
)
async def release_hold(
    hold_id: HoldId,
    response: Response,
    request: Request,
    principal: ServerDep,
    idempotency_key: IdempotencyKey = None,
) -> HoldResponse:
    """Give the whole hold back to the balance. 409 when it is no longer active."""
    done = await released(services_of(request), principal, hold_id, None, idempotency_key)
    mark_idempotent(response, idempotency_key, replayed=done.replayed)
    return presenters.hold_moved(done)


# What each route does once its caller, path, headers and body are known: the FastAPI routes
# above and the lean routes (``lean.py``) both call these.


async def spent(
    services: Services,
    principal: Principal,
    account_id: str,
    body: SpendRequest,
    idempotency_key: str | None,
) -> SpendResult:
    return await services.ledger.spend_async(
        Spend(
            key=ledger_key(principal, idempotency_key),
            account_id=account_id,
            unit=body.unit,
            amount=body.amount,
            reason=body.reason,
        )
    )


async def held(
    services: Services,
    principal: Principal,
    account_id: str,
    body: HoldRequest,
    idempotency_key: str | None,
) -> HoldResult:
    return await services.ledger.hold_async(
        Hold(
            key=ledger_key(principal, idempotency_key),
            account_id=account_id,
            unit=body.unit,
            amount=body.amount,
            ttl_seconds=body.ttl_seconds or services.settings.hold_ttl_seconds,
            reason=body.reason,
        )
    )


async def captured(
    services: Services,
    principal: Principal,
    hold_id: str,
    body: CaptureRequest | None,
    idempotency_key: str | None,
) -> HoldResult:
    return await services.ledger.capture_async(
        Capture(
            key=ledger_key(principal, idempotency_key),
            hold_id=hold_id,
            amount=body.amount if body else None,
        )
    )


async def released(
    services: Services,
    principal: Principal,
    hold_id: str,
    _body: None,
    idempotency_key: str | None,
) -> HoldResult:
    return await services.ledger.release_async(
        Release(key=ledger_key(principal, idempotency_key), hold_id=hold_id)
    )

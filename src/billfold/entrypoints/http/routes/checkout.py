"""Stripe Checkout: create a session for a package or a plan, and fulfil it from the success
page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import (
    BuyerDep,
    FulfillerDep,
    mark_idempotent,
    namespace,
    own_account,
)
from billfold.entrypoints.http.deps import IdempotencyKey, ServicesDep
from billfold.entrypoints.http.openapi import errors_of
from billfold.schemas import CheckoutSessionRequest, CheckoutSessionResponse, FulfillmentResponse
from billfold.service.checkout import CreateCheckoutSession, FulfillCheckoutSession

router = APIRouter(prefix="/v1", tags=["checkout"])

SessionId = Annotated[str, Path(min_length=1, max_length=255)]


@router.post(
    "/checkout/sessions",
    status_code=201,
    response_model=CheckoutSessionResponse,
    responses=errors_of(401, 403, 409, 429, 502),
)
async def create_checkout_session(
    body: CheckoutSessionRequest,
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: BuyerDep,
    idempotency_key: IdempotencyKey = None,
) -> CheckoutSessionResponse:
    """Create a Stripe Checkout Session that buys ``package`` for ``account_id``, or (with ``plan``
    in its place) subscribes it to a plan; send the customer to ``url``. Without ``success_url``, Stripe returns them to ``/success`` on this server.

    With an ``Idempotency-Key``, a retried request answers the same session (Stripe keeps the key
    for 24 hours); the key with another body answers 409."""
    own_account(principal, body.account_id)
    command = CreateCheckoutSession(
        account_id=body.account_id,
        package=body.package,
        plan=body.plan,
        amount=body.amount,
        success_url=body.success_url or f"{str(request.base_url).rstrip('/')}/success",
        cancel_url=body.cancel_url,
        idempotency_key=idempotency_key,
        namespace=namespace(principal),
    )
    session = await run_in_threadpool(services.checkout.create, command)
    mark_idempotent(response, idempotency_key, replayed=False)
    return CheckoutSessionResponse(
        id=session.id,
        url=session.url,
        account_id=session.account_id,
        mode="subscription" if session.plan else "payment",
        package=session.package,
        plan=session.plan,
    )


@router.post(
    "/checkout/sessions/{session_id}/fulfill",
    response_model=FulfillmentResponse,
    responses=errors_of(401, 403, 404, 409, 502),
)
async def fulfill_checkout_session(
    session_id: SessionId, services: ServicesDep, principal: FulfillerDep
) -> FulfillmentResponse:
    """The success page: fulfil the session's order now if Stripe says it is paid, and show the
    balances. The webhook does the same; whichever comes first grants, the other finds it done."""
    command = FulfillCheckoutSession(
        session_id=session_id,
        as_account=principal.account_id if principal.kind == "user" else None,
    )
    done = await run_in_threadpool(services.checkout.fulfil, command)
    return presenters.fulfillment(done)

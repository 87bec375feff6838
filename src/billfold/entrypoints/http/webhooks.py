"""``POST /webhooks/stripe``: verify over the raw bytes, commit to the inbox, then answer.

The order of work is the point: the signature is checked on the raw body before anything is parsed;
2xx is sent only after the event is committed; processing runs after that, in its own transaction,
and never calls Stripe (an event that needs Stripe is left to the worker). Every refusal answers
through the one error table (400 bad signature or not an event, 413 too large, 503 database down).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.service.inbox import WebhookReceipt

MAX_BODY = 1024 * 1024

router = APIRouter()


async def read_limited(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.PayloadTooLarge(f"The body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"The body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhooks/stripe",
    tags=["webhooks"],
    summary="Receive a Stripe event",
    responses={400: {"description": "bad signature or not a Stripe event"}, 413: {}, 503: {}},
)
async def stripe_webhook(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    raw = await read_limited(request)
    receipt = await services.inbox.receive_webhook_async(
        raw, request.headers.get("stripe-signature")
    )
    return JSONResponse(answer(receipt))


def answer(receipt: WebhookReceipt) -> dict[str, object]:
    if receipt.duplicate:
        return {"received": True, "duplicate": True, "id": receipt.event_id}
    return {"received": True, "duplicate": False, "id": receipt.event_id, "status": receipt.status}

"""``POST /webhooks/stripe``: verify over the raw bytes, commit to the inbox, then answer.

The order of work is the point: the signature is checked on the raw body before anything is parsed;
2xx is sent only after the event is committed; processing runs after that, in its own transaction,
and never calls Stripe (an event that needs Stripe is left to the worker).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from billfold.adapters.stripe import signature, translate
from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.entrypoints.http.errors import error_response
from billfold.service.events import Received

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
    settings = services.settings
    try:
        raw = await read_limited(request)
    except errors.PayloadTooLarge as exc:
        return error_response(413, exc.code, exc.message)
    try:
        signature.verify(
            raw,
            request.headers.get("stripe-signature"),
            settings.webhook_secrets,
            tolerance=settings.webhook_tolerance_seconds,
        )
    except errors.InvalidSignature as exc:
        return error_response(400, exc.code, exc.message)
    try:
        event: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "invalid_event", "The body is not JSON.")
    if not translate.is_stripe_event(event):
        return error_response(400, "invalid_event", "The body is not a Stripe event.")
    try:
        received, status = await run_in_threadpool(_receive_and_process, services, event, raw)
    except errors.StorageUnavailable as exc:
        return error_response(503, exc.code, "The database is unavailable; Stripe will retry.")
    if not received.stored:
        return JSONResponse({"received": True, "duplicate": True, "id": received.event_id})
    return JSONResponse(
        {"received": True, "duplicate": False, "id": received.event_id, "status": status}
    )


def _receive_and_process(services: Services, event: Any, raw: bytes) -> tuple[Received, str]:
    """Commit to the inbox (StorageUnavailable: nothing stored), then process in a second
    transaction; one trip to the thread pool for both."""
    owner = f"inline:{uuid.uuid4().hex}"
    received = services.events.receive(event, raw, lease_owner=owner)
    if not received.stored:
        return received, "duplicate"
    try:
        outcome = services.events.process(received.event_id, stripe=None, event=event)
    except errors.StorageUnavailable:
        # Committed to the inbox: the worker finishes it when the lease ends.
        return received, "received"
    return received, outcome.status

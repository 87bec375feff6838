"""A tiny local stand-in for Stripe's API, for the webhook benchmark's events without billfold
metadata: it answers ``GET /v1/checkout/sessions/{id}/line_items`` (what billfold's worker asks for
such a session) from a file mapping session ids to price ids, as Stripe formats a list of line
items, in about a millisecond. Any other request is answered 404 in Stripe's error shape and
counted, so a benchmark can see that billfold asked for nothing else.

Run by ``bench/webhooks.py`` as ``uvicorn bench.stripe_standin:create_app --factory`` with
``BILLFOLD_BENCH_STANDIN_SESSIONS`` naming a JSON file ``{session id: [price id, amount, currency]}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app() -> Starlette:
    sessions: dict[str, list[object]] = json.loads(
        Path(os.environ["BILLFOLD_BENCH_STANDIN_SESSIONS"]).read_text()
    )
    counts = {"line_items": 0, "unknown": 0}

    async def line_items(request: Request) -> JSONResponse:
        session_id = request.path_params["session_id"]
        found = sessions.get(session_id)
        if found is None:
            counts["unknown"] += 1
            return _missing(f"No such checkout session: '{session_id}'")
        counts["line_items"] += 1
        price, amount, currency = found
        item = {
            "id": f"li_{session_id[-24:]}",
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": currency,
            "description": "bench",
            "price": {"id": price, "object": "price", "currency": currency, "unit_amount": amount},
            "quantity": 1,
        }
        return JSONResponse(
            {
                "object": "list",
                "data": [item],
                "has_more": False,
                "url": f"/v1/checkout/sessions/{session_id}/line_items",
            }
        )

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(counts)

    async def other(request: Request) -> JSONResponse:
        counts["unknown"] += 1
        return _missing(f"Unrecognized request URL ({request.method}: {request.url.path}).")

    return Starlette(
        routes=[
            Route("/v1/checkout/sessions/{session_id}/line_items", line_items, methods=["GET"]),
            Route("/bench/stats", stats),
            Route("/healthz", stats),
            Route("/{path:path}", other, methods=["GET", "POST", "DELETE"]),
        ]
    )


def _missing(message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": "invalid_request_error", "message": message}}, status_code=404
    )

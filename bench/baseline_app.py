"""The HTTP benchmarks' baseline: the least an endpoint can do on billfold's server stack.

uvicorn (uvloop, httptools) + Starlette, the same signature check as billfold (every secret, any
``v1``, tolerance), then one ``INSERT`` of the raw event through billfold's own engine
(``make_engine``: same pool, same SQLite pragmas) on Starlette's thread pool, as billfold's handler
does. No parsing beyond the event id, no ledger, no processing.

``POST /v1/accounts/{id}/spend`` (the spends benchmark's baseline): the same ``Authorization:
Bearer`` check against ``BILLFOLD_API_KEYS``, the JSON body read (``unit``, ``amount``), and a
one-row transaction: ``UPDATE balances ... RETURNING available`` on the account's balance row,
commit, answer the new balance. No idempotency, no grants, no ledger lines.

Run by the benchmarks as ``uvicorn bench.baseline_app:create_app --factory``; the webhook table is
created by the benchmark.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
from collections.abc import AsyncIterator

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billfold.adapters.db.engine import make_engine
from billfold.adapters.stripe import signature
from billfold.domain import errors

MAX_BODY = 1024 * 1024
TABLE = "bench_raw_events"
CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (id VARCHAR(255) PRIMARY KEY, payload TEXT NOT NULL)"
INSERT = sa.text(
    f"INSERT INTO {TABLE} (id, payload) VALUES (:id, :payload) ON CONFLICT (id) DO NOTHING"
)
SPEND = sa.text(
    "UPDATE balances SET available = available - :amount "
    "WHERE account_id = :account AND unit = :unit RETURNING available"
)


def create_app() -> Starlette:
    url = os.environ["BILLFOLD_DATABASE_URL"]
    secrets = [
        s.strip() for s in os.environ.get("BILLFOLD_STRIPE_WEBHOOK_SECRETS", "").split(",") if s
    ]
    api_keys = [k.strip() for k in os.environ.get("BILLFOLD_API_KEYS", "").split(",") if k.strip()]
    engine = make_engine(url, pool_size=int(os.environ.get("BILLFOLD_DB_POOL_SIZE", "10")))

    def insert(event_id: str, payload: str) -> None:
        with engine.begin() as conn:
            conn.execute(INSERT, {"id": event_id, "payload": payload})

    async def webhook(request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"error": {"code": "payload_too_large"}}, status_code=413)
        try:
            signature.verify(raw, request.headers.get("stripe-signature"), secrets, tolerance=300)
        except errors.InvalidSignature:
            return JSONResponse({"error": {"code": "invalid_signature"}}, status_code=400)
        try:
            event_id = str(json.loads(raw)["id"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": {"code": "invalid_event"}}, status_code=400)
        await run_in_threadpool(insert, event_id, raw.decode())
        return JSONResponse({"received": True, "id": event_id})

    def spend_one(account: str, unit: str, amount: int) -> int | None:
        with engine.begin() as conn:
            row = conn.execute(SPEND, {"account": account, "unit": unit, "amount": amount}).first()
        return None if row is None else int(row[0])

    async def spend(request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not any(hmac.compare_digest(token.encode(), k.encode()) for k in api_keys):
            return JSONResponse({"error": {"code": "unauthenticated"}}, status_code=401)
        try:
            body = json.loads(await request.body())
            unit, amount = str(body["unit"]), int(body["amount"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": {"code": "invalid_request"}}, status_code=400)
        account = request.path_params["account_id"]
        balance = await run_in_threadpool(spend_one, account, unit, amount)
        if balance is None:
            return JSONResponse({"error": {"code": "account_not_found"}}, status_code=404)
        return JSONResponse(
            {"account_id": account, "unit": unit, "amount": amount, "balance": balance}
        )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        engine.dispose()

    return Starlette(
        routes=[
            Route("/webhooks/stripe", webhook, methods=["POST"]),
            Route("/v1/accounts/{account_id}/spend", spend, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def create_table(url: str) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(CREATE)
    finally:
        engine.dispose()

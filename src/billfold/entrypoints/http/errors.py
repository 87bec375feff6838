"""The one exception -> HTTP status table, and the JSON error body.

The body follows Stripe's shape, ``{"error": {"type", "code", "message", ...}}``, and repeats
``code`` and ``message`` at the top level for clients that read them there.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from billfold.domain import errors

STATUS: list[tuple[type[errors.BillfoldError], int]] = [
    (errors.InsufficientBalance, 402),
    (errors.IdempotencyConflict, 409),
    (errors.Conflict, 409),
    (errors.NotFound, 404),
    (errors.ValidationError, 400),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.RateLimited, 429),
    (errors.InvalidSignature, 400),
    (errors.PayloadTooLarge, 413),
    (errors.StorageUnavailable, 503),
    (errors.StripeUnavailable, 502),
    (errors.ConfigurationError, 500),
    (errors.InvariantViolation, 500),
]

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "balance_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "idempotency_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
}


def status_for(exc: errors.BillfoldError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    /,
    headers: dict[str, str] | None = None,
    **details: Any,
) -> JSONResponse:
    # Positional-only: an error's details may be named ``status`` (HoldNotActive's are).
    body: dict[str, Any] = {
        "type": TYPES.get(status, "api_error"),
        "code": code,
        "message": message,
    }
    body.update({k: v for k, v in details.items() if v is not None})
    return JSONResponse(
        {"error": body, "code": code, "message": message}, status_code=status, headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.BillfoldError)
    async def _billfold(_request: Request, exc: errors.BillfoldError) -> JSONResponse:
        status = status_for(exc)
        headers = None
        if isinstance(exc, errors.RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        if isinstance(exc, errors.Unauthenticated):
            headers = {"WWW-Authenticate": "Bearer"}
        details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | bool)}
        message = exc.message if status < 500 or status in (502, 503) else "Internal error."
        return error_response(status, exc.code, message, headers, **details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        param = ".".join(loc) or None
        text = first.get("msg", "invalid request")
        message = f"{param}: {text}" if param else str(text)
        return error_response(400, "invalid_request", message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return error_response(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=dict(exc.headers or {}) or None,
        )

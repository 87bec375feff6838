"""The one exception -> HTTP status table, and the JSON error body.

The body follows Stripe's shape, ``{"error": {"type", "code", "message", ...}}``, and repeats
``code`` and ``message`` at the top level for clients that read them there. Statuses and types are
looked up by class hierarchy: the most specific class listed for an error decides
(``HoldNotActive`` answers as a ``Conflict``), so a new error answers like its parent until it is
listed. The API, the webhook route and the pages' API all answer through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from billfold.domain import errors

_V = TypeVar("_V")

STATUS: dict[type[errors.BillfoldError], int] = {
    errors.ValidationError: 400,
    errors.PayloadTooLarge: 413,
    errors.Unauthenticated: 401,
    errors.AccessError: 403,
    errors.RateLimited: 429,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PaymentError: 402,
    errors.StorageError: 500,
    errors.StorageUnavailable: 503,
    errors.Contention: 503,
    errors.StripeError: 502,
    errors.ConfigurationError: 500,
    errors.InvariantViolation: 500,
    errors.BillfoldError: 500,
}

# Stripe's error ``type``: the kind of problem. Only idempotency problems are ``idempotency_error``.
TYPES: dict[type[errors.BillfoldError], str] = {
    errors.ValidationError: "invalid_request_error",
    errors.Unauthenticated: "authentication_error",
    errors.AccessError: "permission_error",
    errors.RateLimited: "rate_limit_error",
    errors.NotFound: "invalid_request_error",
    errors.Conflict: "invalid_request_error",
    errors.IdempotencyConflict: "idempotency_error",
    errors.IdempotencyKeyInUse: "idempotency_error",
    errors.PaymentError: "balance_error",
    errors.BillfoldError: "api_error",
}

# Errors raised by the framework itself, before billfold's code runs.
_FRAMEWORK = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _lookup(table: dict[type[errors.BillfoldError], _V], exc: errors.BillfoldError) -> _V:
    for cls in type(exc).__mro__:
        if issubclass(cls, errors.BillfoldError) and cls in table:
            return table[cls]
    raise LookupError(type(exc).__name__)  # pragma: no cover - BillfoldError is in every table


def status_for(exc: errors.BillfoldError) -> int:
    return _lookup(STATUS, exc)


def type_for(exc: errors.BillfoldError) -> str:
    return _lookup(TYPES, exc)


def error_response(
    status: int,
    code: str,
    message: str,
    /,
    type_: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
    **details: Any,
) -> JSONResponse:
    # Positional-only: an error's details may be named ``status`` (HoldNotActive's are).
    body: dict[str, Any] = {"type": type_, "code": code, "message": message}
    body.update({k: v for k, v in details.items() if v is not None})
    return JSONResponse(
        {"error": body, "code": code, "message": message}, status_code=status, headers=headers
    )


def response_for(exc: errors.BillfoldError) -> JSONResponse:
    status = status_for(exc)
    headers = None
    if isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, errors.Unauthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | bool)}
    message = exc.message
    if status >= 500 and status not in (502, 503):
        message, details = "Internal error.", {}
    return error_response(status, exc.code, message, type_for(exc), headers, **details)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.BillfoldError)
    async def _billfold(_request: Request, exc: errors.BillfoldError) -> JSONResponse:
        return response_for(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        param = ".".join(loc) or None
        text = first.get("msg", "invalid request")
        message = f"{param}: {text}" if param else str(text)
        return error_response(400, "invalid_request", message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Every method the path answers (RFC 9110), not only those of the first route that
            # matched the path: two routers may serve one path (GET and POST .../holds).
            allowed = _methods_for(request.app.routes, request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return error_response(
            exc.status_code,
            _FRAMEWORK.get(exc.status_code, "http_error"),
            str(exc.detail),
            "api_error" if exc.status_code >= 500 else "invalid_request_error",
            headers=headers or None,
        )


def _methods_for(routes: Sequence[Any], path: str) -> list[str]:
    """The methods of every route whose template matches ``path`` (through included routers)."""
    found: set[str] = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found.update(_methods_for(included.routes, path))
            continue
        regex = getattr(route, "path_regex", None)
        methods = getattr(route, "methods", None)
        if regex is not None and methods and regex.match(path):
            found.update(methods)
    return sorted(found)

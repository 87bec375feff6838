"""The OpenAPI document: every error a route can answer, the credentials, the catalog's names.

FastAPI's 422 never happens here (invalid input answers 400), so it is replaced by the 400 that
does; routes that need credentials say so; the catalog's units and packages become enums, so that
clients (and fuzzers) see them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from billfold import schemas
from billfold.domain import catalog as cat

DESCRIPTIONS = {
    400: "Invalid request: the message names the field; nothing was written.",
    401: "Missing, malformed, expired or forged credentials.",
    402: "Insufficient balance: `error.available` says what can be spent.",
    403: "These credentials may not do this, or not for this account.",
    404: "No such object (or not one these credentials may see).",
    409: "Conflict: the idempotency key was used with another request, or the state forbids it.",
    429: "Rate limited: retry after `Retry-After` seconds.",
    502: "Stripe could not be reached, refused, or is not configured.",
    503: "The database is unavailable; try again.",
}

PUBLIC = {
    ("/v1/catalog", "get"),
    ("/healthz", "get"),
    ("/readyz", "get"),
    ("/webhooks/stripe", "post"),
}


def errors_of(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route that can answer ``codes`` (400 and 503 always)."""
    return {
        code: {"model": schemas.ErrorResponse, "description": DESCRIPTIONS[code]}
        for code in (400, *codes, 503)
    }


def install(app: FastAPI, catalog: cat.Catalog) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        _describe_errors(schema)
        _describe_catalog(schema, catalog)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _describe_errors(schema: dict[str, Any]) -> None:
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    components = schema.setdefault("components", {})
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {
                    "description": DESCRIPTIONS[400],
                    "content": {"application/json": {"schema": error_ref}},
                }
            if (path, method) not in PUBLIC:
                operation["security"] = [{"bearer": []}]
    schemas_ = components.setdefault("schemas", {})
    if "ErrorResponse" not in schemas_:  # pragma: no cover - api routes always declare it
        return
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas_.pop(unused, None)
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A server API key, an end user's token (JWT) or the admin token.",
    }


def _describe_catalog(schema: dict[str, Any], catalog: cat.Catalog) -> None:
    units = [u.name for u in catalog.units]
    packages = [p.id for p in catalog.packages]
    models = schema.get("components", {}).get("schemas", {})
    for name in ("SpendRequest", "HoldRequest", "ManualGrantRequest"):
        unit = models.get(name, {}).get("properties", {}).get("unit")
        if unit is not None and units:
            unit["enum"] = units
    package = models.get("CheckoutSessionRequest", {}).get("properties", {}).get("package")
    if package is not None and packages:
        package["enum"] = packages

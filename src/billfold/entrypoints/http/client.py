"""A small async client of billfold's own HTTP API, for the pages (the demo shop, the admin view).

The pages go through the API rather than the services, as an application would: the same
credentials, checks, idempotency and error bodies. ``billfold dev`` hands them an in-process
transport (``httpx.ASGITransport``), so no port has to be known; any other base URL works too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class ApiError(Exception):
    """The API answered with an error: its HTTP status, stable ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str, details: Mapping[str, Any]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details)


class ApiClient:
    """JSON in, JSON out; every non-2xx answer raises ApiError, as does an unreachable API."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), transport=transport, timeout=timeout
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        response = await self._send(method, path, token, json, params, idempotency_key)
        return response.json()

    async def raw(self, path: str, *, token: str | None) -> bytes:
        """A GET's body, exactly as the API answered it (an event's payload as received)."""
        return (await self._send("GET", path, token, None, None, None)).content

    async def _send(
        self,
        method: str,
        path: str,
        token: str | None,
        json: Mapping[str, Any] | None,
        params: Mapping[str, str | int] | None,
        idempotency_key: str | None,
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = await self._http.request(
                method, path, headers=headers, json=json, params=params
            )
        except httpx.HTTPError as exc:
            raise ApiError(
                503, "api_unreachable", f"billfold's API did not answer ({type(exc).__name__}).", {}
            ) from exc
        if response.is_success:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}
        code = str(error.get("code") or "http_error")
        message = str(error.get("message") or f"The API answered {response.status_code}.")
        details = {k: v for k, v in error.items() if k not in ("code", "message", "type")}
        raise ApiError(response.status_code, code, message, details)

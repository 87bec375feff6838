"""Outbound delivery of notifications, signed as the Standard Webhooks specification says.

``webhook-id`` (the notification's id, the same on every retry), ``webhook-timestamp`` (the
attempt's time, seconds) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` under each of the endpoint's ``whsec_`` secrets, space-separated, so that a
receiver verifies during a rotation with the old or the new one. Any non-2xx answer, or none within
the timeout, is a failure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets as _secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from billfold.domain.notifications import TIMEOUT_SECONDS, EndpointRecord

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh ``whsec_`` secret: 32 random bytes, base64."""
    return PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError when it is not one."""
    if not secret.startswith(PREFIX):
        raise ValueError("a notification secret starts with whsec_")
    return base64.b64decode(secret[len(PREFIX) :], validate=True)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    found = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
    }
    if secrets:
        found["webhook-signature"] = " ".join(sign(s, message_id, timestamp, body) for s in secrets)
    return found


class HttpSender:
    """POSTs with httpx (a shared client: connections are reused across deliveries)."""

    def __init__(
        self, *, timeout: float = TIMEOUT_SECONDS, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout), transport=transport, follow_redirects=False
        )

    def send(
        self, endpoint: EndpointRecord, *, message_id: str, timestamp: int, body: bytes
    ) -> str | None:
        try:
            signed = headers(endpoint.secrets, message_id, timestamp, body)
        except (ValueError, binascii.Error):
            return "the endpoint's secret is not a whsec_ base64 secret"
        try:
            answer = self._client.post(endpoint.url, content=body, headers=signed)
        except httpx.TimeoutException:
            return "timed out"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: could not deliver"
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"

    def close(self) -> None:
        self._client.close()


class LocalReceiver:
    """``billfold dev``'s receiver: keeps the latest notifications it would send (newest first)
    for the demo's panel and shows each on ``show`` (the console); endpoints with a real url
    (``BILLFOLD_NOTIFY_URLS``) still get them over HTTP."""

    URL = "http://billfold.dev/notifications"

    def __init__(
        self,
        show: Callable[[str, dict[str, Any]], None] | None = None,
        *,
        keep: int = 50,
        forward: HttpSender | None = None,
    ) -> None:
        self._show = show
        self._keep = keep
        self._forward = forward
        self._lock = threading.Lock()
        self._seen: list[dict[str, Any]] = []

    def recent(self, account_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = list(self._seen)
        if account_id is None:
            return found
        return [n for n in found if n.get("data", {}).get("account_id") == account_id]

    def send(
        self, endpoint: EndpointRecord, *, message_id: str, timestamp: int, body: bytes
    ) -> str | None:
        if endpoint.url != self.URL:
            if self._forward is None:
                return "no HTTP sender"
            return self._forward.send(
                endpoint, message_id=message_id, timestamp=timestamp, body=body
            )
        payload = json.loads(body)
        entry = {"id": message_id, **payload}
        with self._lock:
            if all(n["id"] != message_id for n in self._seen):
                self._seen.insert(0, entry)
                del self._seen[self._keep :]
        if self._show is not None:
            self._show(message_id, payload)
        return None

    def close(self) -> None:
        if self._forward is not None:
            self._forward.close()

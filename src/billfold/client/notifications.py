"""Verify billfold's outbound notifications: Standard Webhooks signatures.

Each notification carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` signatures of
``"{id}.{timestamp}.{body}"`` under the secret (``whsec_`` + base64 of the key). Several
signatures are there while a secret rotates; any one that matches a secret passes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from billfold.domain import errors

DEFAULT_TOLERANCE_SECONDS: Final = 300
_PREFIX: Final = "whsec_"


class WebhookVerificationError(errors.InvalidSignature):
    """The notification's signature or timestamp could not be verified."""


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a notification secret is whsec_ followed by base64") from None


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(name)
    if not value:
        raise WebhookVerificationError(f"Missing {name} header.")
    return value


def sign(secret: str, msg_id: str, timestamp: int, payload: bytes | str) -> str:
    """The ``v1,<base64>`` signature of ``payload`` (what billfold sends; handy in tests)."""
    body = payload.encode() if isinstance(payload, str) else payload
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_notification(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a notification's signature over the raw ``payload`` and return its parsed body
    (``{"type", "timestamp", "data"}``).

    ``secret`` is one ``whsec_...`` secret or several (while rotating). Raises
    ``WebhookVerificationError`` (an ``errors.InvalidSignature``) when a header is missing, the
    timestamp is more than ``tolerance`` seconds away from now (either way), or no signature
    matches; parse only after this passed."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("no secret to verify with")
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("Malformed webhook-timestamp header.") from None
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("The notification's timestamp is too old.")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("The notification's timestamp is too new.")
    expected = [sign(s, msg_id, timestamp, payload).encode() for s in secrets]
    for candidate in signatures.split():
        version, _, _value = candidate.partition(",")
        if version != "v1":
            continue
        if any(hmac.compare_digest(candidate.encode(), e) for e in expected):
            body = payload.decode() if isinstance(payload, bytes) else payload
            try:
                parsed = json.loads(body)
            except ValueError:
                raise errors.InvalidEvent("The notification's body is not JSON.") from None
            if not isinstance(parsed, dict):
                raise errors.InvalidEvent("The notification's body is not a JSON object.")
            return parsed
    raise WebhookVerificationError("No webhook-signature matches the secret.")

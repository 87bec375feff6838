"""Stripe webhook signatures, over the raw request bytes.

The header looks like ``t=1492774577,v1=5257a8...,v1=...,v0=...``. A payload is genuine when any
``v1`` equals HMAC-SHA256(secret, f"{t}.{payload}") for any configured secret (so secrets can be
rotated) and ``t`` is within the tolerance of now, in the past or the future. ``v0`` never counts.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from billfold.domain import errors

SCHEME = "v1"


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a ``Stripe-Signature`` header value for ``payload``, as Stripe sends it."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},{SCHEME}={compute_signature(payload, secret, ts)}"


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int = 300,
    now: int | None = None,
) -> int:
    """Check ``header`` against ``payload``; return the signed timestamp or raise InvalidSignature."""
    if not header:
        raise errors.InvalidSignature("Missing Stripe-Signature header.")
    if not secrets:
        raise errors.InvalidSignature("No webhook secret is configured.")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise errors.InvalidSignature("Malformed Stripe-Signature timestamp.") from None
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise errors.InvalidSignature("Malformed Stripe-Signature header: no t or v1 element.")
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise errors.InvalidSignature("Stripe-Signature timestamp is outside the tolerance.")
    matched = False
    for secret in secrets:
        expected = compute_signature(payload, secret, timestamp)
        for candidate in candidates:
            # Evaluate every pair so the time taken does not depend on which one matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise errors.InvalidSignature("No signature matches the payload for any configured secret.")
    return timestamp

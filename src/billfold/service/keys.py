"""Callers' idempotency keys, made billfold's: validated, and scoped to the caller.

An ``Idempotency-Key`` belongs to whoever sent it: all server API keys and the library share the
application's namespace (so a retry after a key rotation still replays); each end user, and the
admin, has their own. The same key from two callers never meets.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Final

from billfold.domain import errors

APPLICATION: Final = "server"
"""The namespace of keys sent by the application (any server API key, or the library)."""


def check(value: str | None) -> str | None:
    """A caller's key as given, or ValidationError naming the header."""
    if value is None:
        return None
    if not 1 <= len(value) <= 255 or not value.isprintable() or not value.isascii():
        raise errors.ValidationError(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            param="Idempotency-Key",
        )
    return value


def scoped(namespace: str, idempotency_key: str) -> str:
    """A caller's key made unique to the caller: two callers' "k" never meet."""
    return hashlib.sha256(f"{namespace}\x00{idempotency_key}".encode()).hexdigest()


def ledger_key(namespace: str, idempotency_key: str | None) -> str:
    """The ledger key for a caller's key; a fresh one (no dedupe) when absent.

    Not scoped by route or account: the ledger hashes the whole command, so the same key sent with
    another body, to another account or to another route answers 409, as Stripe's keys do.
    """
    given = check(idempotency_key)
    if given is None:
        return f"once:{uuid.uuid4().hex}"
    return f"idem:{scoped(namespace, given)}"


def stripe_key(namespace: str, idempotency_key: str | None) -> str | None:
    """The key billfold sends Stripe for a caller's key (Stripe keeps it for 24 hours)."""
    given = check(idempotency_key)
    return None if given is None else f"billfold-checkout-{scoped(namespace, given)}"

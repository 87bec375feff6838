"""The one exception tree of billfold.

Every error billfold raises on purpose derives from :class:`BillfoldError`. The class docstring is
the default message; ``code`` is the stable machine-readable code the HTTP layer answers with.
Foreign errors (SQLAlchemy, stripe, httpx) are translated at the boundary with ``raise ... from``.

    BillfoldError
    ├── ValidationError              bad input: amount, unit, expiry, ...
    │   ├── UnknownUnit
    │   └── UnknownPackage
    ├── NotFound
    │   ├── AccountNotFound
    │   ├── HoldNotFound
    │   ├── OrderNotFound
    │   └── EventNotFound
    ├── Conflict
    │   ├── IdempotencyConflict      same key, different request
    │   ├── HoldNotActive            captured, released or expired already
    │   └── OrderNotResolvable
    ├── InsufficientBalance          a spend or hold larger than what is available
    ├── Unauthenticated / Forbidden / RateLimited
    ├── InvalidSignature             webhook signature or timestamp rejected
    ├── PayloadTooLarge
    ├── ConfigurationError           a setting or the catalog is wrong; stops start-up
    │   └── CatalogError
    ├── StorageUnavailable           the database cannot be reached
    ├── StripeUnavailable            Stripe answered with an error or not at all
    └── InvariantViolation           the database holds something the ledger rules forbid
"""

from __future__ import annotations

from typing import Any


class BillfoldError(Exception):
    """Something went wrong in billfold."""

    code = "billfold_error"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or (self.__class__.__doc__ or self.code).strip()
        self.details = details
        super().__init__(self.message)


class ValidationError(BillfoldError):
    """The request is not valid."""

    code = "invalid_request"


class UnknownUnit(ValidationError):
    """The unit is not declared in the catalog."""

    code = "unknown_unit"


class UnknownPackage(ValidationError):
    """The package is not in the catalog."""

    code = "unknown_package"


class NotFound(BillfoldError):
    """The object does not exist."""

    code = "not_found"


class AccountNotFound(NotFound):
    """The account does not exist."""

    code = "account_not_found"


class HoldNotFound(NotFound):
    """The hold does not exist."""

    code = "hold_not_found"


class OrderNotFound(NotFound):
    """The order does not exist."""

    code = "order_not_found"


class EventNotFound(NotFound):
    """The event is not in the inbox."""

    code = "event_not_found"


class Conflict(BillfoldError):
    """The request conflicts with the current state."""

    code = "conflict"


class IdempotencyConflict(Conflict):
    """This idempotency key was already used for a different request."""

    code = "idempotency_conflict"


class HoldNotActive(Conflict):
    """The hold is no longer active: it was captured, released or has expired."""

    code = "hold_not_active"


class OrderNotResolvable(Conflict):
    """The order cannot be fulfilled as it stands."""

    code = "order_not_resolvable"


class InsufficientBalance(BillfoldError):
    """The balance is too low for this request."""

    code = "insufficient_balance"

    def __init__(
        self, message: str | None = None, *, unit: str, requested: int, available: int
    ) -> None:
        super().__init__(
            message
            or f"Insufficient balance: requested {requested} {unit}, available {available} {unit}.",
            unit=unit,
            requested=requested,
            available=available,
        )
        self.unit = unit
        self.requested = requested
        self.available = available


class Unauthenticated(BillfoldError):
    """Missing, malformed, expired or forged credentials."""

    code = "unauthenticated"


class Forbidden(BillfoldError):
    """These credentials may not do this."""

    code = "forbidden"


class RateLimited(BillfoldError):
    """Too many requests; slow down."""

    code = "rate_limited"

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class InvalidSignature(BillfoldError):
    """The webhook signature could not be verified."""

    code = "invalid_signature"


class PayloadTooLarge(BillfoldError):
    """The request body is too large."""

    code = "payload_too_large"


class ConfigurationError(BillfoldError):
    """A setting is missing or wrong."""

    code = "configuration_error"


class CatalogError(ConfigurationError):
    """The catalog is not valid."""

    code = "catalog_error"


class StorageUnavailable(BillfoldError):
    """The database cannot be reached; try again later."""

    code = "storage_unavailable"


class StripeUnavailable(BillfoldError):
    """Stripe could not be reached or answered with an error."""

    code = "stripe_unavailable"


class InvariantViolation(BillfoldError):
    """The stored ledger breaks one of billfold's invariants."""

    code = "invariant_violation"

"""The one exception tree of billfold.

Every error billfold raises on purpose derives from :class:`BillfoldError`. The class docstring is
the default message; ``code`` is the stable machine-readable code the HTTP layer answers with, and
the HTTP status of each class is looked up by class hierarchy in one table
(``entrypoints/http/errors.py``), so a new subclass answers like its parent until it says otherwise.
Foreign errors (SQLAlchemy, stripe, httpx) are translated at the boundary with ``raise ... from``.

    BillfoldError
    ├── ValidationError              input: the request is not valid           400
    │   ├── UnknownUnit, UnknownPackage, UnknownPlan
    │   ├── CursorNotFound           ``starting_after`` names nothing ("resource_missing")
    │   ├── InvalidSignature         webhook signature or timestamp rejected   400
    │   ├── InvalidEvent             a signed body that is not a Stripe event  400
    │   └── PayloadTooLarge                                                    413
    ├── AccessError                  who may call
    │   ├── Unauthenticated                                                    401
    │   ├── Forbidden                                                          403
    │   └── RateLimited                                                        429
    ├── NotFound                                                               404
    │   ├── AccountNotFound, HoldNotFound, OrderNotFound, EventNotFound,
    │   │   NotificationNotFound, EndpointNotFound
    │   └── ReconciliationRunNotFound
    ├── Conflict                     the request conflicts with the state      409
    │   ├── IdempotencyConflict      same key, different request
    │   ├── IdempotencyKeyInUse      same key, the first request still running
    │   ├── HoldNotActive            captured, released or expired already
    │   ├── OrderNotResolvable
    │   ├── EventNotRetryable        processed or ignored already
    │   ├── ReconciliationRunning    another run holds the lease
    │   └── CheckoutNotFulfillable   a session this route cannot fulfil
    ├── PaymentError                 money
    │   └── InsufficientBalance                                                402
    ├── StorageError                 the database
    │   ├── StorageUnavailable       cannot be reached; try again              503
    │   ├── ConstraintViolation      refused a write (``constraint`` names it)  500
    │   ├── Contention               a deadlock the database broke; try again   503
    │   └── KeyTaken                 a batch lost a race for a key (retried inside billfold)
    ├── StripeError                  Stripe
    │   └── StripeUnavailable        unreachable, refused, or not configured   502
    ├── InvariantViolation           the ledger rules are broken (a bug, or a damaged database) 500
    └── ConfigurationError           a setting or the catalog is wrong: stops start-up
        └── CatalogError
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


# --- input ---------------------------------------------------------------------------------------


class ValidationError(BillfoldError):
    """The request is not valid."""

    code = "invalid_request"


class UnknownUnit(ValidationError):
    """The unit is not declared in the catalog."""

    code = "unknown_unit"


class UnknownPackage(ValidationError):
    """The package is not in the catalog."""

    code = "unknown_package"


class UnknownPlan(ValidationError):
    """The plan is not in the catalog."""

    code = "unknown_plan"


class CursorNotFound(ValidationError):
    """The ``starting_after`` cursor names no object of this list."""

    code = "resource_missing"

    def __init__(self, cursor: str) -> None:
        super().__init__(f"No such object: {cursor!r} (starting_after).", param="starting_after")


class InvalidSignature(ValidationError):
    """The webhook signature could not be verified."""

    code = "invalid_signature"


class InvalidEvent(ValidationError):
    """The body is not a Stripe event."""

    code = "invalid_event"


class PayloadTooLarge(ValidationError):
    """The request body is too large."""

    code = "payload_too_large"


# --- access --------------------------------------------------------------------------------------


class AccessError(BillfoldError):
    """These credentials may not make this request."""

    code = "access_denied"


class Unauthenticated(AccessError):
    """Missing, malformed, expired or forged credentials."""

    code = "unauthenticated"


class Forbidden(AccessError):
    """These credentials may not do this."""

    code = "forbidden"


class RateLimited(AccessError):
    """Too many requests; slow down."""

    code = "rate_limited"

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


# --- not found -----------------------------------------------------------------------------------


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


class NotificationNotFound(NotFound):
    """The notification does not exist."""

    code = "notification_not_found"


class EndpointNotFound(NotFound):
    """The notification endpoint does not exist."""

    code = "endpoint_not_found"


class EventNotFound(NotFound):
    """The event is not in the inbox."""

    code = "event_not_found"


class ReconciliationRunNotFound(NotFound):
    """The reconciliation run does not exist."""

    code = "reconciliation_run_not_found"


# --- conflicts -----------------------------------------------------------------------------------


class Conflict(BillfoldError):
    """The request conflicts with the current state."""

    code = "conflict"


class IdempotencyConflict(Conflict):
    """This idempotency key was already used for a different request."""

    code = "idempotency_conflict"


class IdempotencyKeyInUse(Conflict):
    """A request with this idempotency key is still in progress; retry shortly."""

    code = "idempotency_key_in_use"


class HoldNotActive(Conflict):
    """The hold is no longer active: it was captured, released or has expired."""

    code = "hold_not_active"


class OrderNotResolvable(Conflict):
    """The order cannot be fulfilled as it stands."""

    code = "order_not_resolvable"


class EventNotRetryable(Conflict):
    """The event was processed already; there is nothing to retry."""

    code = "event_not_retryable"


class ReconciliationRunning(Conflict):
    """Another reconciliation run is still running."""

    code = "reconciliation_running"


class CheckoutNotFulfillable(Conflict):
    """This checkout session cannot be fulfilled here."""

    code = "checkout_not_fulfillable"


# --- money ---------------------------------------------------------------------------------------


class PaymentError(BillfoldError):
    """The request cannot be paid for."""

    code = "payment_error"


class InsufficientBalance(PaymentError):
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


# --- storage -------------------------------------------------------------------------------------


class StorageError(BillfoldError):
    """The database could not do what was asked."""

    code = "storage_error"


class StorageUnavailable(StorageError):
    """The database cannot be reached; try again later."""

    code = "storage_unavailable"


class ConstraintViolation(StorageError):
    """The database refused a write that breaks one of its constraints."""

    code = "constraint_violation"

    def __init__(self, message: str | None = None, *, constraint: str) -> None:
        super().__init__(message, constraint=constraint)
        self.constraint = constraint


class Contention(StorageError):
    """Concurrent transactions conflicted (a deadlock the database broke); try again."""

    code = "contention"


class KeyTaken(StorageError):
    """Another transaction took an idempotency key of this batch while it was deciding: the batch
    is rolled back and its requests are made again (each then finds the key taken)."""

    code = "key_taken"


# --- Stripe --------------------------------------------------------------------------------------


class StripeError(BillfoldError):
    """Stripe could not do what was asked."""

    code = "stripe_error"


class StripeUnavailable(StripeError):
    """Stripe could not be reached or answered with an error."""

    code = "stripe_unavailable"


class InvariantViolation(BillfoldError):
    """The ledger's rules are broken: an unbalanced entry, or a database that holds one."""

    code = "invariant_violation"


# --- configuration -------------------------------------------------------------------------------


class ConfigurationError(BillfoldError):
    """A setting is missing or wrong."""

    code = "configuration_error"


class CatalogError(ConfigurationError):
    """The catalog is not valid."""

    code = "catalog_error"

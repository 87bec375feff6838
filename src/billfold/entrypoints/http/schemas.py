"""Request and response bodies of the HTTP API (``*Request`` / ``*Response``)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from billfold.service.ports import EventRecord, OrderRecord

T = TypeVar("T")


class ListResponse(BaseModel, Generic[T]):
    object: str = "list"
    data: list[T]
    has_more: bool


class EventResponse(BaseModel):
    id: str
    object: str = "event"
    type: str
    livemode: bool
    status: str = Field(description="received, processed, ignored, failed or dead")
    attempts: int
    last_error: str | None
    outcome: str | None
    received_at: int
    processed_at: int | None
    next_attempt_at: int | None
    stripe_created: int | None
    object_id: str | None
    payload: dict[str, Any] | None = None

    @classmethod
    def of(cls, e: EventRecord, *, payload: dict[str, Any] | None = None) -> EventResponse:
        return cls(
            id=e.id, type=e.type, livemode=e.livemode, status=e.status, attempts=e.attempts,
            last_error=e.last_error, outcome=e.outcome, received_at=e.received_at,
            processed_at=e.processed_at, next_attempt_at=e.next_attempt_at,
            stripe_created=e.stripe_created, object_id=e.object_id, payload=payload,
        )


class OrderResponse(BaseModel):
    id: str
    object: str = "order"
    status: str = Field(
        description="pending, fulfilled, failed, expired, needs_attention or refunded"
    )
    status_reason: str | None
    key: str
    kind: str
    stripe_id: str
    payment_intent_id: str | None
    account_id: str | None
    package: str | None
    amount: int | None
    currency: str | None
    customer_email: str | None
    payment_error: str | None
    refunded_amount: int
    disputed_amount: int
    resolved_by: str | None
    created: int
    updated: int
    fulfilled_at: int | None

    @classmethod
    def of(cls, o: OrderRecord) -> OrderResponse:
        return cls(
            id=o.id, status=o.status, status_reason=o.status_reason, key=o.key, kind=o.kind,
            stripe_id=o.stripe_id, payment_intent_id=o.payment_intent_id,
            account_id=o.account_id, package=o.package, amount=o.amount, currency=o.currency,
            customer_email=o.customer_email, payment_error=o.payment_error,
            refunded_amount=o.refunded_amount, disputed_amount=o.disputed_amount,
            resolved_by=o.resolved_by, created=o.created, updated=o.updated,
            fulfilled_at=o.fulfilled_at,
        )


class ResolveOrderRequest(BaseModel):
    account_id: str | None = Field(default=None, min_length=1, max_length=200)
    package: str | None = Field(default=None, min_length=1, max_length=128)


class HealthResponse(BaseModel):
    status: str
    database: str
    webhook_secret_configured: bool
    stripe_configured: bool
    handled_event_types: list[str]
    inbox_backlog: dict[str, int]

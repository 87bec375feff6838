"""Notifications to the application: their types, the retry schedule, and the low-balance rule.

Pure values and rules. The outbox (``service.outbox``) writes a notification in the transaction of
the change it reports; the worker delivers it (``adapters.notify`` signs it per Standard Webhooks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

TYPES: Final = (
    "order.fulfilled",
    "order.needs_attention",
    "credits.granted",
    "credits.clawed_back",
    "balance.low",
    "balance.restored",
    "payment.failed",
    "subscription.updated",
    "entitlements.updated",
    "reconciliation.drift",
)

NotificationStatus = Literal["pending", "delivered", "dead"]
STATUSES: Final = ("pending", "delivered", "dead")

RETRY_DELAYS: Final = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
"""Svix's schedule: the n-th attempt waits ``RETRY_DELAYS[n]`` seconds after the one before it
(the first goes at once); after the last one fails the notification is dead."""

TIMEOUT_SECONDS: Final = 15.0
"""An endpoint that has not answered by then has failed this attempt."""


def next_attempt(attempts: int, now: int) -> int | None:
    """When to try again after ``attempts`` failed attempts; None: the notification is dead."""
    if attempts >= len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[attempts]


def balance_alert(
    *, before: int, after: int, threshold: int | None, alerted: bool, granted: bool
) -> Literal["balance.low", "balance.restored"] | None:
    """What a balance change says about its low-balance alert.

    ``balance.low`` when the balance goes from at or above its threshold to strictly below (once:
    the alert is then set); ``balance.restored`` when a grant leaves an alerted balance at or above
    it (the alert is re-armed). A balance that was never alerted is never restored (a new
    account's first grant)."""
    if threshold is None:
        return None
    if not alerted and before >= threshold > after:
        return "balance.low"
    if alerted and granted and after >= threshold:
        return "balance.restored"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationRecord:
    id: str
    type: str
    account_id: str | None
    data: Mapping[str, Any]
    created: int
    status: NotificationStatus
    attempts: int
    next_attempt_at: int | None
    last_error: str | None
    delivered_to: tuple[str, ...] = ()
    updated: int = 0

    def body(self) -> dict[str, Any]:
        """The Standard Webhooks body: type, timestamp (RFC 3339, UTC) and data."""
        stamp = datetime.fromtimestamp(self.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"type": self.type, "timestamp": stamp, "data": dict(self.data)}


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRecord:
    id: str
    url: str
    secrets: tuple[str, ...]
    """``whsec_`` secrets, newest first: every one signs during a rotation."""
    types: tuple[str, ...] = field(default=())
    """The types it wants; empty: every type."""
    created: int = 0

    def wants(self, type_: str) -> bool:
        return not self.types or type_ in self.types

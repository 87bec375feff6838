"""What billfold keeps, as plain values: accounts, inbox events, grants, holds, transactions.

Stores return these; the service layer passes them to its callers, which present them (the HTTP
API's JSON, the CLI's tables, the admin pages). Orders live in :mod:`billfold.domain.orders` beside
their states and rules. The vocabulary of statuses is defined here once, as ``Literal`` types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar, get_args

from billfold.domain.ledger import HoldStatus, Line

T = TypeVar("T")

EventStatus: TypeAlias = Literal["received", "processed", "ignored", "failed", "dead"]
"""An inbox event's processing status (see DESIGN "Receiving a webhook")."""
EVENT_STATUSES: Final[tuple[str, ...]] = get_args(EventStatus)
DONE_EVENT_STATUSES: Final = frozenset({"processed", "ignored"})
"""An event in one of these has had its effect; processing it again changes nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecord:
    id: str
    email: str | None
    stripe_customer_id: str | None
    metadata: Mapping[str, Any]
    created: int
    updated: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundEvent:
    """A Stripe event as the inbox stores it: its envelope's facts and the body as received."""

    id: str
    type: str
    livemode: bool
    api_version: str | None
    created: int | None
    object_id: str | None
    payload: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """An event in the inbox with its processing state (``payload`` left out of lists)."""

    id: str
    type: str
    livemode: bool
    api_version: str | None
    stripe_created: int | None
    object_id: str | None
    payload: str | None
    status: EventStatus
    attempts: int
    last_error: str | None
    outcome: str | None
    received_at: int
    processed_at: int | None
    next_attempt_at: int | None
    lease_owner: str | None
    lease_expires_at: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventAttempt:
    """One attempt at processing an event that did not simply succeed: a failure (``failed``,
    ``dead``), or an operator's retry or replay, whatever became of it. ``attempt`` is the event's
    attempts counter after it; ``worker`` the lease owner, ``webhook``, or ``operator:<name>``."""

    event_id: str
    attempt: int
    at: int
    outcome: str
    error: str | None
    worker: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeRange:
    """Stripe's ``created[gt|gte|lt|lte]``: Unix seconds, each bound optional."""

    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None

    def __contains__(self, at: int) -> bool:
        return (
            (self.gt is None or at > self.gt)
            and (self.gte is None or at >= self.gte)
            and (self.lt is None or at < self.lt)
            and (self.lte is None or at <= self.lte)
        )

    @property
    def unbounded(self) -> bool:
        return self.gt is None and self.gte is None and self.lt is None and self.lte is None


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantRecord:
    """A grant as the API shows it."""

    id: str
    account_id: str
    unit: str
    amount: int
    remaining: int
    held: int
    priority: int
    expires_at: int | None
    kind: str
    origin: str | None
    reason: str | None
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldRecord:
    id: str
    account_id: str
    unit: str
    amount: int
    captured: int
    status: HoldStatus
    expires_at: int
    reason: str | None
    created: int

    def status_at(self, now: int) -> HoldStatus:
        """The status a reader sees: a lapsed hold is ``expired`` before the sweep writes it."""
        if self.status == "active" and self.expires_at <= now:
            return "expired"
        return self.status


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionRecord:
    id: str
    kind: str
    account_id: str | None
    unit: str | None
    amount: int | None
    reason: str | None
    created: int
    lines: tuple[Line, ...]

    def net_for(self, account_id: str) -> int:
        """What this transaction moved into (+) or out of (-) ``account_id``."""
        return sum(line.amount for line in self.lines if line.account_id == account_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of a list, newest first, as Stripe's lists answer."""

    data: tuple[T, ...]
    has_more: bool


# --- the trail behind a balance (``balance/explain``, issue 13) -----------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TrailGrant:
    """A grant with what its own transaction says about it: the kind of that transaction
    (``grant``, or ``restore`` for value an undone reversal gave back as a grant of its own) and
    the debt the grant repaid when it was written (its ``remaining`` started that much lower)."""

    grant: GrantRecord
    transaction_id: str
    transaction_kind: str
    debt_repaid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TrailDraw:
    """One ledger line that took value out of a grant for good (into ``sys:spent``,
    ``sys:refunded`` or ``sys:expired``), or gave it back (a negative amount: a restore)."""

    grant_id: str
    transaction_id: str
    kind: str
    """The kind of the transaction the line belongs to (spend, capture, clawback, expire, ...)."""
    amount: int
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TrailHold:
    hold: HoldRecord
    allocations: tuple[tuple[str, int], ...]
    """(grant id, amount) the hold reserves of each grant."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerTrail:
    """What one account's balance in one unit is made of, as stored: its grants with something
    remaining, the draws on them, its active holds (lapsed ones included: the reader settles
    them) and the balance row."""

    grants: tuple[TrailGrant, ...]
    draws: tuple[TrailDraw, ...]
    holds: tuple[TrailHold, ...]
    debt: int

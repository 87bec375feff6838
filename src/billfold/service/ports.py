"""The ports: what the service layer needs from storage, as Protocols. Adapters implement them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from billfold.domain.ledger import GrantState, Line


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTransaction:
    id: str
    kind: str
    request_hash: str
    result: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceRow:
    account_id: str
    unit: str
    available: int
    held: int
    debt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NewGrant:
    id: str
    account_id: str
    unit: str
    amount: int
    remaining: int
    priority: int
    expires_at: int | None
    kind: str
    origin: str | None
    reason: str | None
    transaction_id: str
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldRow:
    id: str
    account_id: str
    unit: str
    amount: int
    captured: int
    status: str
    expires_at: int
    reason: str | None
    created: int


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
class TransactionRecord:
    id: str
    kind: str
    account_id: str | None
    unit: str | None
    amount: int | None
    reason: str | None
    created: int
    lines: tuple[Line, ...]


class LedgerStore(Protocol):
    """Ledger rows inside one database transaction (the unit of work owns it)."""

    def claim_key(
        self,
        *,
        txn_id: str,
        key: str,
        request_hash: str,
        kind: str,
        account_id: str | None,
        unit: str | None,
        amount: int | None,
        reason: str | None,
        created: int,
    ) -> bool: ...

    def transaction_by_key(self, key: str) -> StoredTransaction | None: ...

    def finish_transaction(
        self, txn_id: str, lines: Sequence[Line], result: Mapping[str, Any]
    ) -> None: ...

    def ensure_account(self, account_id: str, now: int) -> None: ...

    def ensure_locked_balance(self, account_id: str, unit: str) -> BalanceRow: ...

    def lock_balance(self, account_id: str, unit: str) -> BalanceRow | None: ...

    def set_balance(self, row: BalanceRow) -> None: ...

    def balances(self, account_id: str) -> list[BalanceRow]: ...

    def grant_states(
        self, account_id: str, unit: str, *, expired_at: int | None = None
    ) -> list[GrantState]:
        """Grants with something remaining; only the expired ones with free value when
        ``expired_at`` (a time) is given."""
        ...

    def insert_grant(self, grant: NewGrant) -> None: ...

    def update_grants(self, changes: Sequence[tuple[str, int, int]]) -> None:
        """Set (remaining, held) of each grant id."""
        ...

    def insert_hold(self, hold: HoldRow, transaction_id: str) -> None: ...

    def get_hold(self, hold_id: str) -> HoldRow | None: ...

    def hold_allocations(self, hold_id: str) -> list[tuple[str, int]]: ...

    def insert_allocations(self, hold_id: str, allocations: Sequence[tuple[str, int]]) -> None: ...

    def close_hold(
        self, hold_id: str, *, status: str, captured: int, transaction_id: str
    ) -> None: ...

    def active_holds(self, account_id: str, unit: str) -> list[HoldRow]: ...

    def lapsed_holds(self, account_id: str | None, now: int, limit: int) -> list[HoldRow]: ...

    def expired_grant_positions(self, now: int, limit: int) -> list[tuple[str, str]]: ...

    def pending_expiry(self, account_id: str, now: int) -> dict[str, tuple[int, int]]:
        """Per unit: (free remainder of expired grants, amount of lapsed active holds)."""
        ...

    def list_grants(
        self, account_id: str, *, limit: int, starting_after: str | None, live_only: bool, now: int
    ) -> list[GrantRecord]: ...

    def list_transactions(
        self, account_id: str, *, limit: int, starting_after: str | None
    ) -> list[TransactionRecord]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    id: str
    type: str
    livemode: bool
    api_version: str | None
    stripe_created: int | None
    object_id: str | None
    payload: str | None
    status: str
    attempts: int
    last_error: str | None
    outcome: str | None
    received_at: int
    processed_at: int | None
    next_attempt_at: int | None
    lease_owner: str | None
    lease_expires_at: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    id: str
    key: str
    kind: str
    stripe_id: str
    payment_intent_id: str | None
    account_id: str | None
    package: str | None
    amount: int | None
    currency: str | None
    customer_id: str | None
    customer_email: str | None
    status: str
    status_reason: str | None
    payment_error: str | None
    refunded_amount: int
    disputed_amount: int
    resolved_by: str | None
    last_event_id: str | None
    created: int
    updated: int
    fulfilled_at: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecord:
    id: str
    email: str | None
    stripe_customer_id: str | None
    metadata: Mapping[str, Any]
    created: int
    updated: int


class InboxStore(Protocol):
    def insert(self, row: Mapping[str, Any]) -> bool: ...

    def get(self, event_id: str, *, with_payload: bool = True) -> EventRecord | None: ...

    def lock(self, event_id: str) -> EventRecord | None: ...

    def finish(
        self,
        event_id: str,
        *,
        status: str,
        outcome: str | None,
        now: int,
        from_statuses: tuple[str, ...],
    ) -> bool: ...

    def fail(
        self, event_id: str, *, error: str, now: int, next_attempt_at: int | None, dead: bool
    ) -> None: ...

    def release(self, event_id: str, *, now: int, note: str) -> None: ...

    def claim(self, *, owner: str, now: int, lease_seconds: int, limit: int) -> list[str]: ...

    def retry(self, event_id: str, *, now: int) -> bool: ...

    def reopen(self, event_id: str, *, now: int) -> None: ...

    def take_lease(self, event_id: str, *, owner: str, now: int, lease_seconds: int) -> bool: ...

    def list(
        self, *, status: str | None, type_: str | None, limit: int, starting_after: str | None
    ) -> list[EventRecord]: ...

    def backlog(self) -> dict[str, int]: ...


class OrderStore(Protocol):
    def ensure_locked(self, row: Mapping[str, Any]) -> OrderRecord: ...

    def lock_by_key(self, key: str) -> OrderRecord | None: ...

    def get(self, order_id: str) -> OrderRecord | None: ...

    def by_key(self, key: str) -> OrderRecord | None: ...

    def by_payment_intent(self, payment_intent_id: str) -> OrderRecord | None: ...

    def update(self, order_id: str, **values: Any) -> OrderRecord: ...

    def list(
        self, *, status: str | None, account_id: str | None, limit: int, starting_after: str | None
    ) -> list[OrderRecord]: ...


class AccountStore(Protocol):
    def get(self, account_id: str) -> AccountRecord | None: ...

    def by_stripe_customer(self, customer_id: str) -> AccountRecord | None: ...

    def by_email(self, email: str) -> list[AccountRecord]: ...

    def upsert(self, account_id: str, *, now: int, **values: Any) -> None: ...

    def link_customer(self, account_id: str, customer_id: str, *, now: int) -> None: ...

    def fill_email(self, account_id: str, email: str, *, now: int) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LineItem:
    price_id: str | None
    quantity: int
    amount_total: int
    currency: str


class StripeGateway(Protocol):
    """Everything billfold asks of Stripe. Only the Stripe adapter implements it."""

    def checkout_line_items(self, session_id: str) -> list[LineItem]: ...

    def retrieve_checkout_session(self, session_id: str) -> Mapping[str, Any]: ...

    def create_checkout_session(
        self, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Mapping[str, Any]:
        """Create a session; with ``idempotency_key``, Stripe answers a repeat with the first
        session, and a reuse with other parameters raises IdempotencyConflict."""
        ...

    def list_events(self, *, created_gte: int, types: Sequence[str]) -> Iterator[Mapping[str, Any]]:
        """Stripe's Events API, oldest first, from ``created_gte`` on."""
        ...


class UnitOfWork(Protocol):
    """One database transaction. ``commit`` makes it durable; leaving without it rolls back."""

    @property
    def ledger(self) -> LedgerStore: ...

    @property
    def inbox(self) -> InboxStore: ...

    @property
    def orders(self) -> OrderStore: ...

    @property
    def accounts(self) -> AccountStore: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
Clock = Callable[[], int]

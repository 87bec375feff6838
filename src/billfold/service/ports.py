"""The ports: what the service layer needs from the world, as Protocols. Adapters implement them.

- storage: a :class:`UnitOfWork` (one database transaction) holding the stores;
- Stripe: :class:`StripeGateway` (the API, in billfold's values) and :class:`StripeEvents`
  (webhook verification and the translation of a stored event into a billing fact);
- maintenance: :class:`Schema` (migrations) and :class:`Auditor` (``billfold verify``).

The stores speak in plain rows and the records of :mod:`billfold.domain.records`; the row types
below are theirs alone (the ledger's internal bookkeeping), never shown to callers.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, cast

from billfold.domain import facts
from billfold.domain import reconciliation as rc
from billfold.domain.actions import OperatorAction, SessionRecord, TargetType
from billfold.domain.catalog import Plan
from billfold.domain.checkout import CheckoutRequest, CreatedSession, RetrievedSession
from billfold.domain.ledger import GrantState, HoldStatus, Line
from billfold.domain.notifications import EndpointRecord, NotificationRecord, NotificationStatus
from billfold.domain.orders import LineItem, OrderKind, OrderRecord, OrderStatus
from billfold.domain.records import (
    AccountRecord,
    EventAttempt,
    EventRecord,
    EventStatus,
    GrantRecord,
    HoldRecord,
    InboundEvent,
    LedgerTrail,
    TimeRange,
    TransactionRecord,
)
from billfold.domain.reversals import Lot, ReversalKind, ReversalRecord
from billfold.domain.subscriptions import SubscriptionRecord


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
    low_balance: int | None = None
    """The account's own low-balance threshold for this unit (None: the catalog's)."""
    low_alert: bool = False
    """Whether ``balance.low`` was sent and no grant has restored the balance since."""


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
class NewOrder:
    id: str
    key: str
    kind: str
    stripe_id: str
    payment_intent_id: str | None
    amount: int | None
    currency: str | None
    customer_id: str | None
    customer_email: str | None
    status: OrderStatus
    created: int
    last_event_id: str | None

    def record(self) -> OrderRecord:
        """The order as its insert stores it (what the table's defaults give the rest)."""
        return OrderRecord(
            id=self.id,
            key=self.key,
            kind=cast(OrderKind, self.kind),  # a str here; no CHECK in SQL either
            stripe_id=self.stripe_id,
            payment_intent_id=self.payment_intent_id,
            account_id=None,
            package=None,
            plan=None,
            amount=self.amount,
            currency=self.currency,
            customer_id=self.customer_id,
            customer_email=self.customer_email,
            status=self.status,
            status_reason=None,
            payment_error=None,
            refunded_amount=0,
            disputed_amount=0,
            resolved_by=None,
            last_event_id=self.last_event_id,
            created=self.created,
            updated=self.created,
            fulfilled_at=None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRead:
    """What a batch of ledger writes reads before deciding: its keys, the holds it closes, and
    the balances (account, unit) its spends and holds touch."""

    keys: tuple[str, ...]
    hold_ids: tuple[str, ...]
    positions: tuple[tuple[str, str], ...]
    now: int


@dataclass(slots=True, kw_only=True)
class BatchSnapshot:
    """Everything a batch decides on, read under the locks of its balances.

    ``balances``: the locked rows (a position without one has none); ``grants``: per position, the
    grants with something remaining; ``holds``: the holds asked for and every active hold of the
    positions that has lapsed; ``allocations``: those holds' allocations; ``transactions``: the
    ledger transactions that already hold one of the keys."""

    transactions: dict[str, StoredTransaction]
    balances: dict[tuple[str, str], BalanceRow]
    grants: dict[tuple[str, str], list[GrantState]]
    holds: dict[str, HoldRecord]
    allocations: dict[str, list[tuple[str, int]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTransaction:
    """A finished ledger transaction: its key row, its lines and its result, written at once."""

    id: str
    key: str
    request_hash: str
    kind: str
    account_id: str | None
    unit: str | None
    amount: int | None
    reason: str | None
    created: int
    lines: tuple[Line, ...]
    result: Mapping[str, Any]


@dataclass(slots=True, kw_only=True)
class BatchWrites:
    """What a batch writes, as final states: set-based statements apply it in one transaction."""

    transactions: list[NewTransaction]
    grants: dict[str, tuple[int, int]]
    """grant id -> (remaining, held)."""
    balances: list[BalanceRow]
    holds: list[tuple[HoldRecord, str]]
    """(hold, the transaction that made it)."""
    allocations: list[tuple[str, list[tuple[str, int]]]]
    """(hold id, [(grant id, amount)])."""
    closed_holds: list[tuple[str, HoldStatus, int, str]]
    """(hold id, status, captured, the transaction that closed it)."""
    alerts: list[tuple[str, str, bool]] = field(default_factory=list)
    """(account, unit, low alert) of the balances whose alert changed."""
    notifications: list[NewNotification] = field(default_factory=list)
    """The outbox rows the batch writes (in its transaction)."""
    new_balances: list[BalanceRow] = field(default_factory=list)
    """Balance rows the batch creates (a first grant of a unit), in their final state: written
    before the grants, and not among ``balances``."""
    new_grants: list[NewGrant] = field(default_factory=list)
    """Grants the batch creates, with their final ``remaining`` (``held`` is 0 when written; one
    that changed again is among ``grants`` too)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewNotification:
    """An outbox row: written in the transaction of the change it reports."""

    id: str
    type: str
    account_id: str | None
    data: Mapping[str, Any]
    created: int


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
    ) -> bool:
        """Insert the transaction's key row unless the key exists; True when this call did."""
        ...

    def transaction_by_key(self, key: str) -> StoredTransaction | None: ...

    def finish_transaction(
        self, txn_id: str, lines: Sequence[Line], result: Mapping[str, Any]
    ) -> None: ...

    def ensure_account(self, account_id: str, now: int) -> None: ...

    def ensure_accounts(self, accounts: Sequence[tuple[str, int]]) -> None:
        """``ensure_account`` of each (account id, now), in one statement."""
        ...

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

    def set_low_alert(self, account_id: str, unit: str, alert: bool) -> None:
        """Set the low-balance alert of a balance (written only when it changes)."""
        ...

    def set_low_balance(self, account_id: str, unit: str, threshold: int | None) -> None:
        """The account's own low-balance threshold for ``unit`` (its balance row must exist)."""
        ...

    def add_notification(self, notification: NewNotification) -> None:
        """Write an outbox row in this transaction."""
        ...

    def lots(self, origin: str) -> list[Lot]:
        """Every grant whose origin is ``origin`` (a payment's order), spent or not, oldest
        first."""
        ...

    def insert_grant(self, grant: NewGrant) -> None: ...

    def update_grants(self, changes: Sequence[tuple[str, int, int]]) -> None:
        """Set (remaining, held) of each grant id."""
        ...

    def insert_hold(self, hold: HoldRecord, transaction_id: str) -> None: ...

    def get_hold(self, hold_id: str) -> HoldRecord | None: ...

    def hold_allocations(self, hold_id: str) -> list[tuple[str, int]]: ...

    def insert_allocations(self, hold_id: str, allocations: Sequence[tuple[str, int]]) -> None: ...

    def close_hold(
        self, hold_id: str, *, status: HoldStatus, captured: int, transaction_id: str
    ) -> None: ...

    def lapsed_holds(self, account_id: str | None, now: int, limit: int) -> list[HoldRecord]: ...

    def expired_grant_positions(self, now: int, limit: int) -> list[tuple[str, str]]: ...

    def pending_expiry(self, account_id: str, now: int) -> dict[str, tuple[int, int]]:
        """Per unit: (free remainder of expired grants, amount of lapsed active holds)."""
        ...

    def list_grants(
        self, account_id: str, *, limit: int, starting_after: str | None, live_only: bool, now: int
    ) -> list[GrantRecord]: ...

    def has_grant(self, account_id: str, grant_id: str) -> bool: ...

    def list_holds(
        self,
        account_id: str,
        *,
        status: HoldStatus | None,
        now: int,
        limit: int,
        starting_after: str | None,
    ) -> list[HoldRecord]:
        """The account's holds, newest first (by id). ``status`` as a reader sees it at ``now``:
        a lapsed active hold is ``expired``, not ``active``, before the sweep writes it."""
        ...

    def has_transaction(self, account_id: str, transaction_id: str) -> bool:
        """Whether the transaction moved ``account_id``'s balance (a line of it)."""
        ...

    def list_transactions(
        self, account_id: str, *, limit: int, starting_after: str | None
    ) -> list[TransactionRecord]: ...

    def trail(self, account_id: str, unit: str) -> LedgerTrail:
        """What the balance of ``account_id`` in ``unit`` is made of: the grants with something
        remaining (oldest first), every draw on them (in the order written), the active holds
        with their allocations, and the recorded debt."""
        ...

    # --- batches (the write combiner) ---

    def load_batch(self, read: BatchRead) -> BatchSnapshot:
        """Lock the balances of ``read`` (and of the holds it names) in (account, unit) order,
        then read what the batch decides on."""
        ...

    def flush_batch(self, writes: BatchWrites, *, commit: bool = False) -> None:
        """Write a batch's outcome. Raises ``errors.KeyTaken`` (or ``ConstraintViolation``) when
        another transaction took one of its keys meanwhile: nothing of the batch is then written.
        ``commit``: the caller commits right after, and the store may send the commit with the
        writes (one round trip); the unit of work's commit is still called."""
        ...


class InboxStore(Protocol):
    def insert(self, event: InboundEvent, *, now: int, lease: tuple[str, int] | None) -> bool:
        """Store the event unless its id is in the inbox (True when this call stored it);
        ``lease`` is (owner, expiry) for processing it right away."""
        ...

    def insert_many(self, events: Sequence[InboundEvent], *, now: int) -> set[str]:
        """``insert`` for each event (distinct ids), at once, unleased: the ids this call
        stored."""
        ...

    def get(self, event_id: str, *, with_payload: bool = True) -> EventRecord | None: ...

    def lock(self, event_id: str) -> EventRecord | None: ...

    def get_many(self, event_ids: Sequence[str]) -> list[EventRecord]:
        """The events there of ``event_ids`` (payloads included), in the order asked, in one
        read."""
        ...

    def lock_many(self, event_ids: Sequence[str]) -> list[EventRecord]:
        """The events there of ``event_ids``, without their payloads, locked in id order, in one
        statement."""
        ...

    def finish_many(
        self,
        outcomes: Sequence[tuple[str, EventStatus, str | None]],
        *,
        now: int,
        from_statuses: tuple[EventStatus, ...],
    ) -> None:
        """``finish`` for each (event id, status, outcome) at once."""
        ...

    def finish(
        self,
        event_id: str,
        *,
        status: EventStatus,
        outcome: str | None,
        now: int,
        from_statuses: tuple[EventStatus, ...],
    ) -> bool: ...

    def fail(
        self,
        event_id: str,
        *,
        error: str,
        now: int,
        next_attempt_at: int | None,
        dead: bool,
        worker: str | None = None,
    ) -> None:
        """Count a failed attempt (``dead``: the last one) on an event still received or failed,
        and record it in the event's attempt history, in the same transaction; otherwise nothing
        changes."""
        ...

    def record_attempt(
        self, event_id: str, *, outcome: str, now: int, error: str | None, worker: str | None
    ) -> None:
        """Add the event's latest attempt (its attempts counter, as it stands) to its history:
        for an outcome that ``fail`` does not record, an operator's retry or replay. Nothing
        for an unknown event."""
        ...

    def attempt_history(self, event_id: str) -> builtins.list[EventAttempt]:
        """The event's recorded attempts, oldest first."""
        ...

    def release(self, event_id: str, *, now: int, note: str) -> None: ...

    def release_many(self, event_ids: Sequence[str], *, now: int, note: str) -> None:
        """``release`` for each, in one statement."""
        ...

    def claim(self, *, owner: str, now: int, lease_seconds: int, limit: int) -> list[str]: ...

    def unlease(self, event_id: str, *, owner: str) -> bool:
        """Give up ``owner``'s lease on a claimed event (a worker stopping before it started it);
        nothing else changes. False when ``owner`` holds no lease on it."""
        ...

    def retry(self, event_id: str, *, now: int) -> bool: ...

    def reopen(self, event_id: str, *, now: int) -> None: ...

    def list(
        self,
        *,
        status: EventStatus | None,
        type_: str | None,
        limit: int,
        starting_after: str | None,
        created: TimeRange | None = None,
    ) -> list[EventRecord]:
        """Newest received first, without payloads. ``created`` bounds Stripe's ``created``
        time of the event, or, for an event without one, when billfold received it."""
        ...

    def backlog(self) -> dict[str, int]: ...

    def oldest_waiting(self) -> int | None:
        """When the oldest event not yet processed (received or failed) was received."""
        ...

    def beat(self, owner: str, *, now: int) -> None:
        """A worker says it is alive (one row per worker, kept up to date)."""
        ...

    def last_beat(self) -> int | None:
        """The latest heartbeat of any worker; None when none ever ran."""
        ...


class OrderStore(Protocol):
    def ensure_locked(self, order: NewOrder) -> OrderRecord:
        """The order with ``order.key``, inserted from ``order`` if new, locked for this
        transaction."""
        ...

    def lock_by_key(self, key: str) -> OrderRecord | None: ...

    def lock(self, order_id: str) -> OrderRecord | None: ...

    def get(self, order_id: str) -> OrderRecord | None: ...

    def by_key(self, key: str) -> OrderRecord | None: ...

    def by_payment_intent(self, payment_intent_id: str) -> OrderRecord | None: ...

    def update(self, order_id: str, **values: Any) -> OrderRecord: ...

    def lock_many(self, *, keys: Sequence[str], ids: Sequence[str]) -> list[OrderRecord]:
        """The orders with any of ``keys`` or ``ids``, locked in id order, in one statement (a
        batch's read: a key not found has no order yet)."""
        ...

    def insert_many(self, orders: Sequence[OrderRecord]) -> None:
        """Insert new orders as they are (a plain insert: a key or payment intent another
        transaction took meanwhile fails it, and the caller's transaction with it)."""
        ...

    def update_many(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """``update`` of each (order id, values), in order, answering nothing: one statement
        per set of columns (a batch's deferred writes)."""
        ...

    def list(
        self,
        *,
        status: OrderStatus | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[OrderRecord]: ...


class AccountStore(Protocol):
    def get(self, account_id: str) -> AccountRecord | None: ...

    def by_stripe_customer(self, customer_id: str) -> AccountRecord | None: ...

    def by_email(self, email: str) -> list[AccountRecord]: ...

    def upsert(self, account_id: str, *, now: int, **values: Any) -> None: ...

    def link_customer(self, account_id: str, customer_id: str, *, now: int) -> None: ...

    def fill_email(self, account_id: str, email: str, *, now: int) -> None: ...

    def link_customers(self, links: Sequence[tuple[str, str, int]]) -> None:
        """``link_customer`` of each (account id, customer id, now), in order."""
        ...

    def fill_emails(self, fills: Sequence[tuple[str, str, int]]) -> None:
        """``fill_email`` of each (account id, e-mail, now), in order."""
        ...

    def with_customers(self, *, limit: int, starting_after: str | None) -> list[AccountRecord]:
        """Accounts linked to a Stripe customer, by id, ascending."""
        ...

    def search(
        self,
        *,
        email: str | None = None,
        stripe_customer_id: str | None = None,
        query: str | None = None,
        limit: int,
        starting_after: tuple[int, str] | None = None,
    ) -> list[AccountRecord]:
        """Accounts newest first (``created``, then ``id``, descending); every filter given
        narrows: ``email`` case-insensitively, ``stripe_customer_id`` exactly, ``query`` an id
        prefix or an e-mail (case-insensitively) or a Stripe customer id. ``starting_after`` is
        (created, id) of the previous page's last account."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class NewReversal:
    id: str
    key: str
    kind: ReversalKind
    stripe_id: str
    payment_intent_id: str | None
    charge_id: str | None
    amount: int
    currency: str | None
    status: str
    reason: str | None
    stripe_created: int | None
    created: int


class PaymentStore(Protocol):
    """The gate of a payment (its payment intent), whatever object announces it first."""

    def ensure_locked(self, payment_intent_id: str, *, now: int) -> str | None:
        """Insert the payment's row if new and lock it; the id of its order, if it has one."""
        ...

    def link(self, payment_intent_id: str, order_id: str) -> None:
        """Make ``order_id`` the payment's order (only where it has none)."""
        ...

    def ensure_locked_many(
        self, payment_intent_ids: Sequence[str], *, now: int
    ) -> dict[str, str | None]:
        """``ensure_locked`` of each payment, in one statement, locked in the order given
        (ascending, by every caller: concurrent batches then never deadlock on them)."""
        ...

    def link_many(self, links: Sequence[tuple[str, str]]) -> None:
        """``link`` of each (payment intent, order id), in order."""
        ...

    def of_order(self, order_id: str) -> list[str]:
        """The payment intents of an order."""
        ...


class ReversalStore(Protocol):
    def ensure_locked(self, new: NewReversal) -> tuple[ReversalRecord, bool]:
        """The reversal with ``new.key``, inserted from ``new`` if it is not there (True), locked."""
        ...

    def update(self, reversal_id: str, **values: Any) -> ReversalRecord: ...

    def for_order(self, order_id: str) -> list[ReversalRecord]:
        """``for_payments`` of the payments that name ``order_id``, in one read."""
        ...

    def for_payments(self, payment_intent_ids: Sequence[str]) -> list[ReversalRecord]:
        """The reversals of these payment intents, oldest first."""
        ...

    def of_account(self, account_id: str) -> list[ReversalRecord]:
        """The reversals settled against the orders of ``account_id``, oldest first."""
        ...


class SubscriptionStore(Protocol):
    def ensure_locked(self, subscription_id: str, *, now: int) -> SubscriptionRecord:
        """The copy of a subscription, inserted empty (``status`` None) if new, locked."""
        ...

    def update(self, subscription_id: str, **values: Any) -> SubscriptionRecord: ...

    def get(self, subscription_id: str) -> SubscriptionRecord | None: ...

    def of_account(self, account_id: str) -> list[SubscriptionRecord]:
        """An account's subscriptions, newest first."""
        ...

    def of_customer(self, customer_id: str) -> list[SubscriptionRecord]: ...

    def list(
        self,
        *,
        status: str | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[SubscriptionRecord]:
        """Subscriptions by id, descending (Stripe's ids sort by nothing in particular)."""
        ...


class AdminSessionStore(Protocol):
    """The console's sessions, and the record of what operators did."""

    def insert(
        self, session_id: str, *, created: int, expires_at: int, operator: str | None = None
    ) -> None: ...

    def get(self, session_id: str) -> SessionRecord | None: ...

    def revoke(self, session_id: str, *, now: int) -> None: ...

    def record_action(self, action: OperatorAction) -> None: ...

    def actions(
        self,
        *,
        target_type: TargetType | None,
        target_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[OperatorAction]:
        """Newest first (by id)."""
        ...


class ReconciliationStore(Protocol):
    """Reconciliation runs, the Events API cursor, the lease that lets one run at a time, and the
    reads of billfold's effects that a run compares with Stripe."""

    def lease(self) -> rc.Lease:
        """The run lease, locked for this transaction (made, free, on first use)."""
        ...

    def set_lease(self, *, run_id: str | None, owner: str | None, until: int) -> None:
        """Give the lease (locked by :meth:`lease` in this transaction) to a run, or free it."""
        ...

    def renew_lease(self, run_id: str, *, until: int) -> bool:
        """Extend the lease if ``run_id`` still holds it; False when it does not."""
        ...

    def events_cursor(self) -> int | None:
        """The ``created`` of the newest event a run has read from Stripe, if any."""
        ...

    def advance_events_cursor(self, created: int) -> None:
        """Move the cursor to ``created``, never backwards."""
        ...

    def insert_run(self, run: rc.RunRecord) -> None: ...

    def get_run(self, run_id: str) -> rc.RunRecord | None: ...

    def update_run(
        self,
        run_id: str,
        *,
        status: rc.RunStatus,
        events_imported: int,
        items: Sequence[rc.DriftItem],
        error: str | None,
        finished: int | None,
    ) -> None: ...

    def list_runs(self, *, limit: int, starting_after: str | None) -> list[rc.RunRecord]:
        """Runs, newest first."""
        ...

    def running_runs(self) -> list[rc.RunRecord]: ...

    def fulfilled_orders(
        self, *, since: int, until: int, limit: int, starting_after: str | None
    ) -> list[OrderRecord]:
        """Orders that granted (``fulfilled`` or ``refunded``) created in ``[since, until]``,
        by id ascending."""
        ...

    def reversal_by_key(self, key: str) -> ReversalRecord | None: ...

    def known_events(self, event_ids: Sequence[str]) -> set[str]:
        """Those of ``event_ids`` that the inbox has."""
        ...

    def order_of_payment(self, payment_intent_id: str) -> OrderRecord | None:
        """The order a payment intent paid for (its own, or linked through payments)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationAttempt:
    """What one delivery attempt of a claimed notification came to: its row's new state."""

    id: str
    status: NotificationStatus
    attempts: int
    next_attempt_at: int | None
    last_error: str | None
    delivered_to: tuple[str, ...]


class NotificationStore(Protocol):
    """The outbox and the application's endpoints."""

    def add(self, notification: NewNotification) -> None: ...

    def get(self, notification_id: str) -> NotificationRecord | None: ...

    def get_many(self, notification_ids: Sequence[str]) -> builtins.list[NotificationRecord]:
        """The notifications with these ids, in the order given (an unknown id is left out)."""
        ...

    def claim(self, *, owner: str, now: int, lease_seconds: int, limit: int) -> list[str]:
        """Lease the pending notifications that are due, oldest first (``SKIP LOCKED``)."""
        ...

    def finish(
        self,
        notification_id: str,
        *,
        owner: str,
        status: NotificationStatus,
        attempts: int,
        next_attempt_at: int | None,
        last_error: str | None,
        delivered_to: Sequence[str],
        now: int,
    ) -> bool:
        """Record an attempt, if ``owner`` still holds the lease (True when it did)."""
        ...

    def finish_many(self, attempts: Sequence[NotificationAttempt], *, owner: str, now: int) -> None:
        """``finish`` for each attempt, at once (each where ``owner`` still holds its lease)."""
        ...

    def settle_unrouted(self, *, now: int, limit: int) -> builtins.list[str]:
        """With no endpoint to send to: the due, unleased notifications (oldest first, at most
        ``limit``) recorded as a round that sent them to every endpoint would record them
        (``delivered``, one attempt more, to no one new); their types."""
        ...

    def redeliver(self, notification_id: str, *, now: int) -> bool:
        """Make a notification pending and due now, its attempts counted from zero again."""
        ...

    def list(
        self,
        *,
        status: NotificationStatus | None,
        type_: str | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[NotificationRecord]:
        """Newest first."""
        ...

    def add_endpoint(self, endpoint: EndpointRecord) -> None: ...

    def get_endpoint(self, endpoint_id: str) -> EndpointRecord | None: ...

    def set_endpoint_secrets(self, endpoint_id: str, secrets: Sequence[str]) -> None: ...

    def endpoints(self) -> builtins.list[EndpointRecord]:
        """Every registered endpoint, oldest first."""
        ...


# --- the dashboard (read only) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketCount:
    """How many rows of a kind fall in one time bucket (``bucket`` = ``ts - ts % width``)."""

    bucket: int
    key: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PurchaseRow:
    """Orders fulfilled in one UTC day, of one kind and currency."""

    day: int
    kind: str
    currency: str | None
    count: int
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantSum:
    """What grants of one kind created in one UTC day granted, in one unit."""

    day: int
    kind: str
    unit: str
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RevenueRow:
    """Fulfilled orders of one package (or plan) in one currency."""

    name: str
    currency: str | None
    count: int
    amount: int
    refunded: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BacklogRow:
    received: int
    oldest_received_at: int | None
    failed: int
    dead: int
    needs_attention_orders: int


class DashboardStore(Protocol):
    """The operator's dashboard: aggregates over the inbox, orders and grants. Reads only.
    Times are seconds; a bucket is ``ts - ts % width`` (UTC days for ``86400``)."""

    def events(self, *, since: int, width: int) -> list[BucketCount]:
        """Events received at or after ``since``, per bucket of ``width`` seconds and status."""
        ...

    def purchases(self, *, since: int) -> list[PurchaseRow]:
        """Orders fulfilled at or after ``since``, per UTC day, kind and currency."""
        ...

    def grants(self, *, since: int) -> list[GrantSum]:
        """Grants created at or after ``since``, per UTC day, kind and unit."""
        ...

    def revenue(self, *, since: int, by: str) -> list[RevenueRow]:
        """Orders fulfilled at or after ``since`` with a ``by`` (``package`` or ``plan``), per
        name and currency."""
        ...

    def latencies(self, *, since: int, limit: int) -> list[int]:
        """For the newest ``limit`` orders fulfilled at or after ``since``: seconds from the
        earliest Stripe ``created`` of the events about the order's Stripe object to its
        fulfilment (orders without such an event are left out)."""
        ...

    def backlog(self) -> BacklogRow:
        """Events waiting (``received``, the oldest's arrival), ``failed`` (to be retried),
        ``dead``, and orders needing attention."""
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

    @property
    def payments(self) -> PaymentStore: ...

    @property
    def reversals(self) -> ReversalStore: ...

    @property
    def admin_sessions(self) -> AdminSessionStore: ...

    @property
    def subscriptions(self) -> SubscriptionStore: ...

    @property
    def reconciliation(self) -> ReconciliationStore: ...

    @property
    def notifications(self) -> NotificationStore: ...

    @property
    def dashboard(self) -> DashboardStore: ...

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


# --- Stripe --------------------------------------------------------------------------------------


class StripeGateway(Protocol):
    """Everything billfold asks of Stripe's API, in billfold's values. Only the Stripe adapter
    implements it; its errors are billfold's (``StripeUnavailable``, ``NotFound``,
    ``IdempotencyConflict``)."""

    def checkout_line_items(self, session_id: str) -> list[LineItem]: ...

    def list_refunds(self, charge_id: str) -> list[facts.RefundInfo]:
        """Every refund of a charge (its ``charge.refunded`` event may not carry them)."""
        ...

    def retrieve_checkout_session(self, session_id: str) -> RetrievedSession: ...

    def create_checkout_session(
        self, request: CheckoutRequest, *, idempotency_key: str | None = None
    ) -> CreatedSession:
        """Create a session; with ``idempotency_key``, Stripe answers a repeat with the first
        session, and a reuse with other parameters raises IdempotencyConflict."""
        ...

    def list_events(self, *, created_gte: int, types: Sequence[str]) -> Iterator[InboundEvent]:
        """Stripe's Events API, oldest first, from ``created_gte`` on."""
        ...


class StripeSubscriptions(Protocol):
    """What billfold asks of Stripe about subscriptions, in billfold's values. Only the Stripe
    adapter implements it."""

    def retrieve_subscription(self, subscription_id: str) -> facts.SubscriptionChanged:
        """The subscription as Stripe has it now (``event_created`` is the time it was read)."""
        ...

    def list_subscriptions(self, customer_id: str) -> list[facts.SubscriptionChanged]:
        """Every subscription of a customer, whatever its status."""
        ...

    def list_paid_invoices(self, subscription_id: str, *, limit: int) -> list[facts.InvoicePaid]:
        """The subscription's newest paid invoices (with their payment intents)."""
        ...

    def invoice_payment_intents(self, invoice_id: str) -> list[str]:
        """The payment intents that paid an invoice."""
        ...

    def price_lookup_keys(self, price_ids: Sequence[str]) -> dict[str, str | None]:
        """The ``lookup_key`` of each price (None for a price without one)."""
        ...

    def plan_price(self, plan: Plan) -> str:
        """The Stripe price that sells ``plan``: its own, or the one billfold made for it (found
        again by its lookup key, made when missing)."""
        ...

    def change_plan(
        self, subscription_id: str, *, item_id: str, price_id: str, proration: str
    ) -> facts.SubscriptionChanged: ...

    def cancel(self, subscription_id: str, *, at_period_end: bool) -> facts.SubscriptionChanged: ...

    def portal_url(self, customer_id: str, *, return_url: str | None) -> str: ...

    def retrieve_invoice(self, invoice_id: str) -> facts.InvoicePaid:
        """An invoice as Stripe has it now (``paid`` says whether it is), with its payments."""
        ...


class StripeLedger(Protocol):
    """What reconciliation reads from Stripe, in billfold's values: the money over a window
    (``created`` in ``[since, until]``, every page), subscriptions, and one payment's state. Only
    the Stripe adapter implements it."""

    def paid_checkout_sessions(self, *, since: int, until: int) -> Iterator[rc.StripeSession]: ...

    def paid_invoices(self, *, since: int, until: int) -> Iterator[rc.StripeInvoice]: ...

    def refunds(self, *, since: int, until: int) -> Iterator[rc.StripeReversal]: ...

    def disputes(self, *, since: int, until: int) -> Iterator[rc.StripeReversal]: ...

    def subscription_states(self) -> Iterator[rc.StripeSubscriptionState]:
        """Every subscription, whatever its status."""
        ...

    def payment(self, kind: str, stripe_id: str) -> rc.StripePayment | None:
        """The checkout session, invoice or payment intent behind an order (``kind`` is the
        order's); None when Stripe does not know it."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedEvent:
    event: InboundEvent
    fact: facts.Fact


class StripeEvents(Protocol):
    """Stripe's webhooks in billfold's terms: verify a delivery, read a stored event."""

    @property
    def handled_types(self) -> frozenset[str]:
        """The event types that carry a billing fact (everything else is ``Ignored``)."""
        ...

    def verify(self, raw: bytes, signature: str | None) -> VerifiedEvent:
        """Check the signature over the raw bytes, then read the event. Raises InvalidSignature
        or InvalidEvent, and never anything else."""
        ...

    def read(self, payload: str) -> facts.Fact:
        """The billing fact of an event stored in the inbox (total: never raises)."""
        ...


# --- notifications -------------------------------------------------------------------------------


class NotificationSender(Protocol):
    """Outbound delivery to the application (``adapters.notify``): signs per Standard Webhooks."""

    def send(
        self, endpoint: EndpointRecord, *, message_id: str, timestamp: int, body: bytes
    ) -> str | None:
        """POST ``body`` to the endpoint; None on a 2xx, else what went wrong (never raises)."""
        ...


# --- maintenance ---------------------------------------------------------------------------------


class Schema(Protocol):
    def current(self) -> str | None: ...

    def head(self) -> str: ...

    def upgrade(self, revision: str = "head") -> None: ...


class Auditor(Protocol):
    def verify(self) -> list[str]:
        """Every violation of the ledger's invariants, as readable lines; [] when sound."""
        ...

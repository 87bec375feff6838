"""The memory database's tables, and the constraints the SQL schema puts on them.

Each table is a dict of frozen rows (or a tuple of them), so that a unit of work copies the dicts,
not the rows, and a rollback is dropping the copy. The constraints are those of
``adapters/db/tables.py`` and the migrations, by the same names, raised as the same billfold errors
that ``adapters/db/errors.py`` makes of the database's: a refused write is
``ConstraintViolation(constraint=<name>)``, an overdraw ``InvariantViolation``, and a value that
does not fit its column (a 64-bit integer, a ``VARCHAR(n)``) ``ValidationError``, as PostgreSQL
answers. Checks run in PostgreSQL's order: value ranges, then CHECK constraints (by name), then
UNIQUE and primary keys, then foreign keys; and before anything changes, so that a refused write
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NoReturn

from billfold.domain import errors
from billfold.domain.actions import OperatorAction
from billfold.domain.notifications import EndpointRecord, NotificationRecord
from billfold.domain.orders import OrderRecord
from billfold.domain.reconciliation import Lease, RunRecord
from billfold.domain.records import EventAttempt, EventRecord
from billfold.domain.reversals import ReversalRecord
from billfold.domain.subscriptions import SubscriptionRecord
from billfold.service.ports import BalanceRow

# --- constraint names (adapters/db/tables.py's naming convention, and the migrations' triggers) --

PK_ORDERS: Final = "pk_orders"
PK_GRANTS: Final = "pk_grants"
PK_BALANCES: Final = "pk_balances"
PK_HOLDS: Final = "pk_holds"
PK_HOLD_ALLOCATIONS: Final = "pk_hold_allocations"
UQ_ACCOUNTS_STRIPE_CUSTOMER_ID: Final = "uq_accounts_stripe_customer_id"
UQ_ORDERS_KEY: Final = "uq_orders_key"
UQ_ORDERS_PAYMENT_INTENT_ID: Final = "uq_orders_payment_intent_id"
UQ_REVERSALS_KEY: Final = "uq_reversals_key"
PK_ADMIN_SESSIONS: Final = "pk_admin_sessions"
PK_OPERATOR_ACTIONS: Final = "pk_operator_actions"
CK_OPERATOR_ACTIONS_REASON_GIVEN: Final = "ck_operator_actions_reason_given"
FK_PAYMENTS_ORDER: Final = "fk_payments_order_id_orders"
CK_REVERSALS_AMOUNT_NON_NEGATIVE: Final = "ck_reversals_amount_non_negative"
CK_REVERSALS_KIND_KNOWN: Final = "ck_reversals_kind_known"
CK_REVERSALS_STATE_KNOWN: Final = "ck_reversals_state_known"
UQ_HOLD_ALLOCATIONS_HOLD_ID_SEQ: Final = "uq_hold_allocations_hold_id_seq"
CK_BALANCES_DEBT_NON_NEGATIVE: Final = "ck_balances_debt_non_negative"
CK_BALANCES_HELD_NON_NEGATIVE: Final = "ck_balances_held_non_negative"
CK_BALANCES_NOT_OVERDRAWN: Final = "ck_balances_not_overdrawn"
CK_LEDGER_LINES_NON_ZERO: Final = "ck_ledger_lines_non_zero"
CK_GRANTS_AMOUNT_POSITIVE: Final = "ck_grants_amount_positive"
CK_GRANTS_HELD_IN_RANGE: Final = "ck_grants_held_in_range"
CK_GRANTS_REMAINING_IN_RANGE: Final = "ck_grants_remaining_in_range"
CK_HOLDS_AMOUNT_POSITIVE: Final = "ck_holds_amount_positive"
CK_HOLDS_CAPTURED_IN_RANGE: Final = "ck_holds_captured_in_range"
CK_HOLDS_STATUS_KNOWN: Final = "ck_holds_status_known"
CK_HOLD_ALLOCATIONS_AMOUNT_POSITIVE: Final = "ck_hold_allocations_amount_positive"
CK_EVENTS_STATUS_KNOWN: Final = "ck_events_status_known"
CK_ORDERS_STATUS_KNOWN: Final = "ck_orders_status_known"
CK_ORDERS_REFUNDED_NON_NEGATIVE: Final = "ck_orders_refunded_non_negative"
FK_BALANCES_ACCOUNT: Final = "fk_balances_account_id_accounts"
FK_LINES_TRANSACTION: Final = "fk_ledger_lines_transaction_id_ledger_transactions"
FK_GRANTS_ACCOUNT: Final = "fk_grants_account_id_accounts"
FK_GRANTS_TRANSACTION: Final = "fk_grants_transaction_id_ledger_transactions"
FK_HOLDS_ACCOUNT: Final = "fk_holds_account_id_accounts"
FK_HOLDS_TRANSACTION: Final = "fk_holds_transaction_id_ledger_transactions"
FK_ALLOCATIONS_HOLD: Final = "fk_hold_allocations_hold_id_holds"
FK_ALLOCATIONS_GRANT: Final = "fk_hold_allocations_grant_id_grants"
LEDGER_APPEND_ONLY: Final = "ledger_append_only"
PK_RECONCILIATION_RUNS: Final = "pk_reconciliation_runs"
PK_EVENT_ATTEMPTS: Final = "pk_event_attempts"
PK_NOTIFICATIONS: Final = "pk_notifications"
PK_NOTIFICATION_ENDPOINTS: Final = "pk_notification_endpoints"
CK_RECONCILIATION_RUNS_STATUS_KNOWN: Final = "ck_reconciliation_runs_status_known"

CONSTRAINTS: Final = frozenset(
    {
        PK_ORDERS,
        PK_GRANTS,
        PK_BALANCES,
        PK_HOLDS,
        PK_HOLD_ALLOCATIONS,
        UQ_ACCOUNTS_STRIPE_CUSTOMER_ID,
        UQ_ORDERS_KEY,
        UQ_ORDERS_PAYMENT_INTENT_ID,
        UQ_REVERSALS_KEY,
        PK_ADMIN_SESSIONS,
        FK_PAYMENTS_ORDER,
        CK_REVERSALS_AMOUNT_NON_NEGATIVE,
        CK_REVERSALS_KIND_KNOWN,
        CK_REVERSALS_STATE_KNOWN,
        UQ_HOLD_ALLOCATIONS_HOLD_ID_SEQ,
        CK_BALANCES_DEBT_NON_NEGATIVE,
        CK_BALANCES_HELD_NON_NEGATIVE,
        CK_BALANCES_NOT_OVERDRAWN,
        CK_LEDGER_LINES_NON_ZERO,
        CK_GRANTS_AMOUNT_POSITIVE,
        CK_GRANTS_HELD_IN_RANGE,
        CK_GRANTS_REMAINING_IN_RANGE,
        CK_HOLDS_AMOUNT_POSITIVE,
        CK_HOLDS_CAPTURED_IN_RANGE,
        CK_HOLDS_STATUS_KNOWN,
        CK_HOLD_ALLOCATIONS_AMOUNT_POSITIVE,
        CK_EVENTS_STATUS_KNOWN,
        CK_ORDERS_STATUS_KNOWN,
        PK_RECONCILIATION_RUNS,
        PK_EVENT_ATTEMPTS,
        PK_NOTIFICATIONS,
        PK_NOTIFICATION_ENDPOINTS,
        CK_RECONCILIATION_RUNS_STATUS_KNOWN,
        CK_ORDERS_REFUNDED_NON_NEGATIVE,
        FK_BALANCES_ACCOUNT,
        FK_LINES_TRANSACTION,
        FK_GRANTS_ACCOUNT,
        FK_GRANTS_TRANSACTION,
        FK_HOLDS_ACCOUNT,
        FK_HOLDS_TRANSACTION,
        FK_ALLOCATIONS_HOLD,
        FK_ALLOCATIONS_GRANT,
        LEDGER_APPEND_ONLY,
    }
)
"""Every constraint name this adapter can refuse a write with."""

HOLD_STATUSES: Final = frozenset({"active", "captured", "released", "expired"})
EVENT_STATUSES: Final = frozenset({"received", "processed", "ignored", "failed", "dead"})
ORDER_STATUSES: Final = frozenset(
    {"pending", "fulfilled", "failed", "expired", "needs_attention", "refunded"}
)

# Column widths (``String(n)``), as PostgreSQL enforces them.
ID: Final = 64
KEY: Final = 255
UNIT: Final = 64
ACCOUNT: Final = 200
EMAIL: Final = 320

_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)


# --- refusing a write ----------------------------------------------------------------------------


def refuse(name: str) -> NoReturn:
    """The database refused a write breaking ``name``: as ``adapters/db/errors.translated``."""
    if "not_overdrawn" in name:
        raise errors.InvariantViolation(
            f"the database refused a write that would overdraw a balance ({name})."
        )
    raise errors.ConstraintViolation(f"the database refused a write: {name}", constraint=name)


def _out_of_range() -> NoReturn:
    raise errors.ValidationError("a value is out of range for the database.")


def bigint(*values: int | None) -> None:
    """Each value fits a ``BIGINT``."""
    low, high = _INT64
    for value in values:
        if value is not None and not low <= value <= high:
            _out_of_range()


def integer(*values: int | None) -> None:
    """Each value fits an ``INTEGER`` (32 bits on PostgreSQL)."""
    low, high = _INT32
    for value in values:
        if value is not None and not low <= value <= high:
            _out_of_range()


def varchar(*pairs: tuple[str | None, int]) -> None:
    """Each (value, width) fits its ``VARCHAR(width)``."""
    for value, width in pairs:
        if value is not None and len(value) > width:
            _out_of_range()


# --- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRow:
    id: str
    email: str | None
    stripe_customer_id: str | None
    metadata: str  # JSON text: what a reader gets is a fresh copy, as from the database
    created: int
    updated: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionRow:
    id: str
    idempotency_key: str
    request_hash: str
    kind: str
    account_id: str | None
    unit: str | None
    amount: int | None
    reason: str | None
    line_count: int | None
    result: str | None  # JSON text; None until the transaction is finished
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LineRow:
    id: int
    transaction_id: str
    account_id: str
    unit: str
    amount: int
    grant_id: str | None
    hold_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantRow:
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
    transaction_id: str
    closed_transaction_id: str | None
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationRow:
    hold_id: str
    grant_id: str
    seq: int
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentRow:
    payment_intent_id: str
    order_id: str | None
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRow:
    id: str
    created: int
    expires_at: int
    revoked_at: int | None
    operator: str | None = None


@dataclass(slots=True)
class Tables:
    """Every table. ``copy()`` is what a unit of work starts from: new dicts, the same rows."""

    accounts: dict[str, AccountRow] = field(default_factory=dict)
    balances: dict[tuple[str, str], BalanceRow] = field(default_factory=dict)
    transactions: dict[str, TransactionRow] = field(default_factory=dict)
    transaction_keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> id
    lines: list[LineRow] = field(default_factory=list)
    last_line_id: int = 0
    grants: dict[str, GrantRow] = field(default_factory=dict)
    holds: dict[str, HoldRow] = field(default_factory=dict)
    allocations: dict[str, tuple[AllocationRow, ...]] = field(default_factory=dict)  # by hold
    events: dict[str, EventRecord] = field(default_factory=dict)
    event_attempts: dict[tuple[str, int], EventAttempt] = field(default_factory=dict)
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    order_keys: dict[str, str] = field(default_factory=dict)  # key -> id
    payments: dict[str, PaymentRow] = field(default_factory=dict)  # by payment intent
    reversals: dict[str, ReversalRecord] = field(default_factory=dict)
    reversal_keys: dict[str, str] = field(default_factory=dict)  # key -> id
    admin_sessions: dict[str, SessionRow] = field(default_factory=dict)
    operator_actions: dict[str, OperatorAction] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionRecord] = field(default_factory=dict)
    reconciliation_runs: dict[str, RunRecord] = field(default_factory=dict)
    reconciliation_lease: Lease | None = None  # None: the state row does not exist yet
    events_cursor: int | None = None
    heartbeats: dict[str, int] = field(default_factory=dict)  # worker -> last beat
    notifications: dict[str, NotificationRecord] = field(default_factory=dict)
    notification_leases: dict[str, tuple[str, int]] = field(default_factory=dict)
    endpoints: dict[str, EndpointRecord] = field(default_factory=dict)

    def copy(self) -> Tables:
        return Tables(
            accounts=dict(self.accounts),
            balances=dict(self.balances),
            transactions=dict(self.transactions),
            transaction_keys=dict(self.transaction_keys),
            lines=list(self.lines),
            last_line_id=self.last_line_id,
            grants=dict(self.grants),
            holds=dict(self.holds),
            allocations=dict(self.allocations),
            events=dict(self.events),
            event_attempts=dict(self.event_attempts),
            orders=dict(self.orders),
            order_keys=dict(self.order_keys),
            payments=dict(self.payments),
            reversals=dict(self.reversals),
            reversal_keys=dict(self.reversal_keys),
            admin_sessions=dict(self.admin_sessions),
            operator_actions=dict(self.operator_actions),
            subscriptions=dict(self.subscriptions),
            reconciliation_runs=dict(self.reconciliation_runs),
            reconciliation_lease=self.reconciliation_lease,
            events_cursor=self.events_cursor,
            heartbeats=dict(self.heartbeats),
            notifications=dict(self.notifications),
            notification_leases=dict(self.notification_leases),
            endpoints=dict(self.endpoints),
        )


@dataclass(slots=True)
class Work:
    """What one unit of work changes: its copy of the tables, and the transactions whose lines it
    wrote (checked to sum to zero at commit)."""

    tables: Tables
    lines_written: list[str] = field(default_factory=list)

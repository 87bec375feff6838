"""The schema, as SQLAlchemy Core tables. Alembic migrations create exactly this (``alembic check``).

Constraints carry the invariants: unique idempotency keys, non-negative remainders, a balance that
never goes below minus its recorded debt, and (in the migrations) triggers that keep the ledger
append-only and, on PostgreSQL, a deferred check that every transaction sums to zero per unit.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Computed,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import Boolean as sa_Boolean

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(64)
KEY = String(255)
UNIT = String(64)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("email", String(320), nullable=True),
    Column("stripe_customer_id", String(255), nullable=True, unique=True),
    Column("metadata", JSON, nullable=False, server_default=text("'{}'")),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Index(None, "email"),
)

balances = Table(
    "balances",
    metadata,
    Column("account_id", String(200), ForeignKey("accounts.id"), nullable=False),
    Column("unit", UNIT, nullable=False),
    Column("available", BigInteger, nullable=False, server_default=text("0")),
    Column("held", BigInteger, nullable=False, server_default=text("0")),
    Column("debt", BigInteger, nullable=False, server_default=text("0")),
    Column("low_balance", BigInteger, nullable=True),  # the account's own threshold
    Column("low_alert", sa_Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("account_id", "unit"),
    CheckConstraint("held >= 0", name="held_non_negative"),
    CheckConstraint("debt >= 0", name="debt_non_negative"),
    # Invariant 3: only recorded debt may take a customer balance below zero.
    CheckConstraint("available + debt >= 0", name="not_overdrawn"),
    # Room on each page for a spend's update to stay there (a heap-only update: migration 0011).
    postgresql_with={"fillfactor": 90},
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("idempotency_key", KEY, nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("account_id", String(200), nullable=True),
    Column("unit", UNIT, nullable=True),
    Column("amount", BigInteger, nullable=True),
    Column("reason", Text, nullable=True),
    Column("line_count", Integer, nullable=True),
    Column("result", JSON, nullable=True),
    Column("created", BigInteger, nullable=False),
    Index(None, "account_id", "id"),
)

ledger_lines = Table(
    "ledger_lines",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("transaction_id", ID, ForeignKey("ledger_transactions.id"), nullable=False),
    Column("account_id", String(200), nullable=False),
    Column("unit", UNIT, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("grant_id", ID, nullable=True),
    Column("hold_id", ID, nullable=True),
    CheckConstraint("amount <> 0", name="non_zero"),
    Index(None, "transaction_id"),
    Index(None, "account_id", "unit"),
)

grants = Table(
    "grants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", String(200), ForeignKey("accounts.id"), nullable=False),
    Column("unit", UNIT, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("held", BigInteger, nullable=False, server_default=text("0")),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("expires_at", BigInteger, nullable=True),
    Column("kind", String(32), nullable=False),
    Column("origin", String(255), nullable=True),
    Column("reason", Text, nullable=True),
    Column("transaction_id", ID, ForeignKey("ledger_transactions.id"), nullable=False),
    Column("created", BigInteger, nullable=False),
    # Whether the grant can still be drawn: what the live-grants index holds (migration 0011;
    # stored on PostgreSQL, virtual on SQLite, where a column is added in place only so).
    Column("live", sa_Boolean, Computed("remaining > 0", persisted=True)),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
    CheckConstraint("held >= 0 AND held <= remaining", name="held_in_range"),
    # A balance's live grants, by an index on them alone. A spend changes ``remaining`` but
    # (until the grant runs out) not ``live``: no indexed value, so the update needs no new
    # index entries (a heap-only update, with the room the fillfactor leaves; migration 0011).
    Index(
        "ix_grants_live",
        "account_id",
        "unit",
        postgresql_where=text("live"),
        sqlite_where=text("live"),
    ),
    Index(None, "origin"),
    Index(None, "expires_at"),
    postgresql_with={"fillfactor": 80},
)

holds = Table(
    "holds",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", String(200), ForeignKey("accounts.id"), nullable=False),
    Column("unit", UNIT, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("captured", BigInteger, nullable=False, server_default=text("0")),
    Column("status", String(16), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("reason", Text, nullable=True),
    Column("transaction_id", ID, ForeignKey("ledger_transactions.id"), nullable=False),
    Column("closed_transaction_id", ID, nullable=True),
    Column("created", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("captured >= 0 AND captured <= amount", name="captured_in_range"),
    CheckConstraint("status IN ('active', 'captured', 'released', 'expired')", name="status_known"),
    Index(None, "account_id", "unit", "status"),
    Index(None, "status", "expires_at"),
)

hold_allocations = Table(
    "hold_allocations",
    metadata,
    Column("hold_id", ID, ForeignKey("holds.id"), nullable=False),
    Column("grant_id", ID, ForeignKey("grants.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    PrimaryKeyConstraint("hold_id", "grant_id"),
    CheckConstraint("amount > 0", name="amount_positive"),
    UniqueConstraint("hold_id", "seq"),
)

# --- the event inbox and orders (issue 3) --------------------------------------------------------

events = Table(
    "events",
    metadata,
    Column("id", String(255), primary_key=True),  # Stripe's event id: the inbox's gate
    Column("type", String(128), nullable=False),
    Column("livemode", sa_Boolean, nullable=False, server_default=text("false")),
    Column("api_version", String(64), nullable=True),
    Column("stripe_created", BigInteger, nullable=True),
    Column("object_id", String(255), nullable=True),
    Column("payload", Text, nullable=False),  # the body exactly as Stripe sent it
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("received_at", BigInteger, nullable=False),
    Column("processed_at", BigInteger, nullable=True),
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    CheckConstraint(
        "status IN ('received', 'processed', 'ignored', 'failed', 'dead')", name="status_known"
    ),
    Index(None, "status", "next_attempt_at"),
    Index(None, "object_id"),
    Index(None, "received_at"),
)

worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("owner", String(200), primary_key=True),  # one row per worker (host, pid, nonce)
    Column("beat_at", BigInteger, nullable=False),
    Index(None, "beat_at"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", ID, primary_key=True),
    Column("key", String(255), nullable=False, unique=True),  # checkout:<session>, pi:<intent>
    Column("kind", String(16), nullable=False),
    Column("stripe_id", String(255), nullable=False),
    Column("payment_intent_id", String(255), nullable=True),
    Column("account_id", String(200), nullable=True),
    Column("package", String(128), nullable=True),
    Column("plan", String(128), nullable=True),  # an invoice's, for a subscription invoice
    Column("amount", BigInteger, nullable=True),
    Column("currency", String(16), nullable=True),
    Column("customer_id", String(255), nullable=True),
    Column("customer_email", String(320), nullable=True),
    Column("status", String(24), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("payment_error", Text, nullable=True),
    Column("refunded_amount", BigInteger, nullable=False, server_default=text("0")),
    Column("disputed_amount", BigInteger, nullable=False, server_default=text("0")),
    Column("resolved_by", String(255), nullable=True),
    Column("last_event_id", String(255), nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("fulfilled_at", BigInteger, nullable=True),
    CheckConstraint(
        "status IN ('pending', 'fulfilled', 'failed', 'expired', 'needs_attention', 'refunded')",
        name="status_known",
    ),
    CheckConstraint("refunded_amount >= 0", name="refunded_non_negative"),
    Index(None, "status", "id"),
    # One payment, one order: two orders never claim the same payment intent (issue 10).
    UniqueConstraint("payment_intent_id"),
    Index(None, "account_id", "id"),
    Index(None, "created"),  # reconciliation's window
)

# --- payments and their reversals (issues 10 and 13) ---------------------------------------------

payments = Table(
    "payments",
    metadata,
    # The gate of a payment, whatever object announces it (a checkout session, a payment intent, an
    # invoice, a refund or a dispute that arrives first): every handler locks this row first.
    Column("payment_intent_id", String(255), primary_key=True),
    Column("order_id", ID, ForeignKey("orders.id"), nullable=True),
    Column("created", BigInteger, nullable=False),
    Index(None, "order_id"),
)

reversals = Table(
    "reversals",
    metadata,
    Column("id", ID, primary_key=True),
    Column("key", String(255), nullable=False, unique=True),  # refund:<re_...>, dispute:<dp_...>
    Column("kind", String(16), nullable=False),
    Column("stripe_id", String(255), nullable=False),
    Column("payment_intent_id", String(255), nullable=True),
    Column("charge_id", String(255), nullable=True),
    Column("order_id", ID, nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(16), nullable=True),
    Column("status", String(32), nullable=False),  # Stripe's
    Column("state", String(16), nullable=False),  # what billfold has done about it
    Column("effect", JSON, nullable=True),
    Column("reason", String(255), nullable=True),
    Column("stripe_created", BigInteger, nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    CheckConstraint("amount >= 0", name="amount_non_negative"),
    CheckConstraint("kind IN ('refund', 'dispute')", name="kind_known"),
    CheckConstraint(
        "state IN ('pending', 'applied', 'held', 'restored', 'released', 'void')",
        name="state_known",
    ),
    Index(None, "payment_intent_id"),
    Index(None, "order_id"),
    Index(None, "charge_id"),
)

# --- the operator console's sessions (issue 10) ---------------------------------------------------

admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # a hash of the secret the cookie carries
    Column("created", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("operator", String(200), nullable=True),  # the name given at sign-in: who acts
)

# --- subscriptions (issue 11) -------------------------------------------------------------------

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(255), primary_key=True),  # Stripe's: one copy per subscription
    Column("account_id", String(200), nullable=True),
    Column("customer_id", String(255), nullable=True),
    Column("plan", String(128), nullable=True),
    Column("status", String(32), nullable=True),  # None: only money facts seen so far
    Column("item_id", String(255), nullable=True),
    Column("price_ids", JSON, nullable=False, server_default=text("'[]'")),
    Column("quantity", Integer, nullable=False, server_default=text("1")),
    Column("current_period_start", BigInteger, nullable=True),
    Column("current_period_end", BigInteger, nullable=True),
    Column("cancel_at_period_end", sa_Boolean, nullable=False, server_default=text("false")),
    Column("cancel_at", BigInteger, nullable=True),
    Column("canceled_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Column("trial_start", BigInteger, nullable=True),
    Column("trial_end", BigInteger, nullable=True),
    Column("pause_behavior", String(32), nullable=True),
    Column("pause_resumes_at", BigInteger, nullable=True),
    Column("pending_update", sa_Boolean, nullable=False, server_default=text("false")),
    Column("livemode", sa_Boolean, nullable=False, server_default=text("false")),
    Column("state_created", BigInteger, nullable=False, server_default=text("0")),
    Column("past_due_since", BigInteger, nullable=True),
    Column("grace_invoice_id", String(255), nullable=True),
    # The grace end whose lapse ``entitlements.updated`` has reported (the worker's check).
    Column("grace_lapse_notified", BigInteger, nullable=True),
    Column("note", String(255), nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    CheckConstraint("quantity >= 0", name="quantity_non_negative"),
    Index(None, "account_id"),
    Index(None, "customer_id"),
    Index(None, "status", "id"),
)


reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("id", ID, primary_key=True),  # time-ordered: newest first is id descending
    Column("status", String(16), nullable=False),
    Column("trigger", String(32), nullable=False),  # api, cli, schedule, audit
    Column("since", BigInteger, nullable=False),
    Column("until", BigInteger, nullable=False),
    Column("events_imported", Integer, nullable=False, server_default=text("0")),
    Column("items", JSON, nullable=False, server_default=text("'[]'")),
    Column("error", Text, nullable=True),
    Column("started", BigInteger, nullable=False),
    Column("finished", BigInteger, nullable=True),
    CheckConstraint("status IN ('running', 'completed', 'failed')", name="status_known"),
    Index(None, "status"),
)

reconciliation_state = Table(
    "reconciliation_state",
    metadata,
    Column("name", String(32), primary_key=True),  # one row: "reconciliation"
    Column("events_cursor", BigInteger, nullable=True),  # created of the newest event read
    Column("lease_run_id", ID, nullable=True),
    Column("lease_owner", String(255), nullable=True),
    Column("lease_until", BigInteger, nullable=False, server_default=text("0")),
)

# --- notifications to the application (issue 14) -------------------------------------------------

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(64), primary_key=True),  # the webhook-id, stable across retries
    Column("type", String(64), nullable=False),
    Column("account_id", String(200), nullable=True),
    Column("data", JSON, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_to", JSON, nullable=False, server_default=text("'[]'")),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("updated", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status_known"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "account_id"),
    Index(None, "type"),
)

notification_endpoints = Table(
    "notification_endpoints",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("secrets", JSON, nullable=False),  # whsec_ secrets, newest first
    Column("types", JSON, nullable=False, server_default=text("'[]'")),  # [] = every type
    Column("created", BigInteger, nullable=False),
)

# --- the operator console (issue 14) --------------------------------------------------------------

operator_actions = Table(
    "operator_actions",
    metadata,
    Column("id", ID, primary_key=True),  # time-ordered: newest first is id descending
    Column("created", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),  # who: the name the operator signed in with
    Column("action", String(32), nullable=False),  # resolve, retry, replay, grant, adjust, ...
    Column("target_type", String(32), nullable=False),  # event, order, account, notification
    Column("target_id", String(255), nullable=False),
    Column("reason", Text, nullable=False),  # why: required of every action
    Column("outcome", Text, nullable=True),  # what came of it (a status, an error)
    CheckConstraint("length(reason) > 0", name="reason_given"),
    Index(None, "target_type", "target_id"),
    Index(None, "created"),
)

event_attempts = Table(
    "event_attempts",
    metadata,
    Column("event_id", String(255), ForeignKey("events.id"), nullable=False),
    Column("attempt", Integer, nullable=False),  # 1, 2, ...: the event's attempts counter
    Column("at", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),  # processed, ignored, failed, dead
    Column("error", Text, nullable=True),
    Column("worker", String(200), nullable=True),  # the lease owner, or "operator:<name>"
    PrimaryKeyConstraint("event_id", "attempt"),
)

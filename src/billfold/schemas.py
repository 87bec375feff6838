"""Request and response bodies of the HTTP API (``*Request`` / ``*Response``).

Pydantic only: the server and the Python client (``billfold.client``) share these models, and
importing them loads neither the web framework, the database nor the Stripe SDK. The server turns
billfold's records into them in ``entrypoints/http/presenters.py``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

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


class EventAttemptResponse(BaseModel):
    attempt: int = Field(description="The event's attempts counter after this attempt: 1, 2, ...")
    at: int
    outcome: str = Field(
        description="failed or dead; for an operator's retry, also processed or ignored"
    )
    error: str | None
    worker: str | None = Field(description="The worker's lease, webhook, or operator:<name>")


class EventDetailResponse(EventResponse):
    """One event (``GET /v1/events/{id}``): with its payload and its attempt history."""

    attempt_history: list[EventAttemptResponse] = Field(
        default_factory=list,
        description="Failed attempts and operators' retries, oldest first (successes by the "
        "worker or the webhook show in status and processed_at only)",
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
    plan: str | None = None
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


class OperatorNote(BaseModel):
    """Who acts, and why: recorded with the action (see ``GET /v1/operator-actions``)."""

    reason: str | None = Field(
        default=None, max_length=500, description="Why: recorded with the action."
    )
    operator: str | None = Field(
        default=None,
        max_length=200,
        description="Who: the operator's name (recorded as 'admin token' when not given).",
    )


class ReplayEventRequest(OperatorNote):
    reason: str = Field(
        min_length=1, max_length=500, description="Why: required, recorded with the replay."
    )


class ResolveOrderRequest(OperatorNote):
    account_id: str | None = Field(default=None, min_length=1, max_length=200)
    package: str | None = Field(default=None, min_length=1, max_length=128)


class OperatorActionResponse(BaseModel):
    id: str
    object: str = "operator_action"
    created: int
    operator: str = Field(description="Who acted.")
    action: str = Field(description="retry, replay, resolve, grant, adjust or redeliver")
    target_type: str = Field(description="event, order, account or notification")
    target_id: str
    reason: str = Field(description="Why, as the operator gave it.")
    outcome: str | None = Field(description="What came of it: a status, or why it was refused.")


class HealthResponse(BaseModel):
    status: str
    database: str
    webhook_secret_configured: bool
    stripe_configured: bool
    handled_event_types: list[str]
    inbox_backlog: dict[str, int]


class ReadyResponse(BaseModel):
    """``GET /readyz``: 200 with ``status: ok`` when ready, else 503."""

    status: str
    database: str
    schema_ok: bool
    schema_revision: str | None = None
    schema_head: str | None = None
    worker_last_heartbeat: int | None = None
    worker_heartbeat_age_seconds: int | None = None
    inbox_backlog: dict[str, int] = {}
    oldest_waiting_age_seconds: int = 0


# --- the application API (``api.py``) ------------------------------------------------------------
#
# Every request body forbids unknown fields and takes amounts as strict integers: a float, a string
# or a boolean where an amount belongs is a 400 naming the field, and nothing is written.

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_AMOUNT = 10**15
MAX_HOLD_TTL_SECONDS = 30 * 86_400
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z


def _plain_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[StrictStr, Field(min_length=1, max_length=500), AfterValidator(_plain_text)]
UnitName = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$"),
]
Amount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT, description="A positive integer.")]
AccountIdField = Annotated[
    StrictStr, Field(min_length=1, max_length=200), AfterValidator(_plain_text)
]
Url = Annotated[
    StrictStr,
    Field(min_length=8, max_length=2048, pattern=r"^https?://[^\s/?#]+[^\s]*$"),
    AfterValidator(_plain_text),
]
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


def _email(value: str) -> str:
    if not EMAIL.match(value):
        raise ValueError("must be an e-mail address such as ada@example.com")
    return value


Email = Annotated[
    StrictStr, Field(max_length=320), AfterValidator(_plain_text), AfterValidator(_email)
]
MetadataKey = Annotated[StrictStr, Field(min_length=1, max_length=40)]
MetadataValue = Annotated[StrictStr, Field(max_length=500)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    code: str
    message: str
    param: str | None = None


class ErrorResponse(BaseModel):
    """Every error: ``code`` is stable and machine-readable, ``message`` is for people."""

    error: ErrorDetail
    code: str
    message: str


class UnitResponse(BaseModel):
    name: str
    decimals: int


class CatalogGrantResponse(BaseModel):
    unit: str
    amount: int | Literal["paid"]
    expires_in_days: int | None
    kind: str


class CustomAmountResponse(BaseModel):
    min: int
    max: int


class PackageResponse(BaseModel):
    id: str
    title: str
    currency: str
    price: int | None
    custom_amount: CustomAmountResponse | None
    stripe_price_id: str | None
    grants: list[CatalogGrantResponse]


class PlanResponse(BaseModel):
    id: str
    title: str | None
    default: bool
    rank: int = Field(description="Higher wins when several subscriptions are live.")
    stripe_price_ids: list[str]
    price: int | None = Field(description="Minor units of currency, when sold inline.")
    currency: str | None
    interval: str | None
    features: dict[str, bool]
    limits: dict[str, int | None] = Field(description="null: unlimited.")
    allowance: list[CatalogGrantResponse]
    grace_period_days: int


class CatalogResponse(BaseModel):
    object: Literal["catalog"] = "catalog"
    units: list[UnitResponse]
    packages: list[PackageResponse]
    plans: list[PlanResponse]


class AccountResponse(BaseModel):
    id: str
    object: Literal["account"] = "account"
    email: str | None
    stripe_customer_id: str | None
    metadata: dict[str, Any]
    balances: dict[str, int] = Field(description="What can be spent now, per unit.")
    held: dict[str, int] = Field(description="Reserved by active holds, per unit.")
    debt: dict[str, int] = Field(description="Owed after a refund under the debt policy.")
    created: int | None = Field(description="None for an account nothing has referenced yet.")
    updated: int | None
    low_balance: dict[str, int] = Field(
        default_factory=dict,
        description="Per unit with one: the low-balance threshold (the account's own, else the "
        "catalog's).",
    )
    low_balance_alerts: dict[str, bool] = Field(
        default_factory=dict,
        description="Per unit with a threshold: true while balance.low was sent and no grant "
        "has restored the balance since.",
    )


class UpdateAccountRequest(_Body):
    """Absent fields stay as they are; ``null`` clears; ``metadata`` replaces the whole map."""

    email: Email | None = None
    stripe_customer_id: (
        Annotated[StrictStr, Field(max_length=255, pattern=r"^cus_[A-Za-z0-9]+$")] | None
    ) = None
    metadata: Annotated[dict[MetadataKey, MetadataValue], Field(max_length=50)] | None = None
    low_balance: (
        Annotated[
            dict[Annotated[str, Field(max_length=64)], Annotated[StrictInt, Field(ge=0)] | None],
            Field(max_length=50),
        ]
        | None
    ) = Field(
        default=None,
        description="{unit: threshold}: balance.low fires below it; null goes back to the "
        "catalog's threshold.",
    )


class GrantResponse(BaseModel):
    id: str
    object: Literal["grant"] = "grant"
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


class StripeIdsResponse(BaseModel):
    """The Stripe objects behind a lot (null where there is none, or billfold does not know it)."""

    checkout_session: str | None
    payment_intent: str | None
    invoice: str | None
    charge: str | None


class LotOriginResponse(BaseModel):
    type: Literal["order", "invoice", "manual", "adjustment"] = Field(
        description="order (a checkout or payment intent), invoice (a subscription or one-off "
        "invoice), manual (an operator's grant or a promotion), adjustment (value an undone "
        "reversal gave back)"
    )
    order_id: str | None
    stripe: StripeIdsResponse


class LotDrawResponse(BaseModel):
    transaction_id: str | None = Field(
        description="null for expiry the sweep has not written yet (it already counts)"
    )
    kind: str = Field(
        description="spend, capture, clawback, adjustment (an operator's), expire, hold_expire, "
        "debt_repayment, or restore (value given back: a negative amount)"
    )
    amount: int
    created: int


class LotResponse(BaseModel):
    grant_id: str
    kind: str
    amount: int
    remaining: int = Field(description="amount minus the sum of the draws")
    held: int = Field(description="the part of remaining that live holds reserve")
    priority: int
    expires_at: int | None
    created: int
    reason: str | None
    origin: LotOriginResponse
    draws: list[LotDrawResponse]


class ExplainedHoldResponse(BaseModel):
    hold_id: str
    amount: int
    expires_at: int
    reason: str | None
    created: int


class _ReversalExplained(BaseModel):
    order_id: str | None
    status: str = Field(description="Stripe's status")
    state: str = Field(description="pending, applied, held, restored, released or void")
    amount: int = Field(description="the money refunded or disputed, in minor units")
    currency: str | None
    recovered: int = Field(description="taken back: from the lots, plus debt under `debt`")
    taken: int
    debt: int
    unrecovered: int = Field(description="given up under `floor` (it had been spent)")
    held: int = Field(description="what an open dispute reserves")


class RefundExplainedResponse(_ReversalExplained):
    kind: Literal["refund"] = "refund"
    refund: str


class DisputeFundsResponse(BaseModel):
    event: str = Field(description="funds_withdrawn or funds_reinstated")
    balance_transaction: str | None
    amount: int = Field(description="negative when withdrawn, positive when reinstated")
    fee: int
    currency: str | None


class DisputeExplainedResponse(_ReversalExplained):
    kind: Literal["dispute"] = "dispute"
    dispute: str
    funds: list[DisputeFundsResponse] = Field(
        default_factory=list, description="the fund movements Stripe reported, as recorded"
    )


class BalanceExplainResponse(BaseModel):
    """Every lot that makes up a balance, with its provenance and what drew on it, and the holds
    and debt against it: ``balance == sum(lots.remaining) - held - debt``. Lots with nothing
    left (spent, clawed back, expired) make up nothing and are not listed."""

    object: Literal["balance_explanation"] = "balance_explanation"
    account_id: str
    unit: str
    balance: int
    held: int
    debt: int
    lots: list[LotResponse]
    holds: list[ExplainedHoldResponse]
    reversals: list[
        Annotated[RefundExplainedResponse | DisputeExplainedResponse, Field(discriminator="kind")]
    ]


class LineResponse(BaseModel):
    account_id: str
    unit: str
    amount: int
    grant_id: str | None
    hold_id: str | None


class TransactionResponse(BaseModel):
    id: str
    object: Literal["transaction"] = "transaction"
    kind: str
    account_id: str | None
    unit: str | None
    amount: int | None
    net: int = Field(description="What this transaction moved into (+) or out of (-) the account.")
    reason: str | None
    created: int
    lines: list[LineResponse]


class SpendRequest(_Body):
    unit: UnitName
    amount: Amount
    reason: Text | None = None


class DrawResponse(BaseModel):
    grant_id: str
    amount: int


class SpendResponse(BaseModel):
    object: Literal["spend"] = "spend"
    transaction_id: str
    account_id: str
    unit: str
    amount: int
    balance: int = Field(description="What is left to spend of this unit.")
    draws: list[DrawResponse]


class HoldRequest(_Body):
    unit: UnitName
    amount: Amount
    reason: Text | None = None
    ttl_seconds: (
        Annotated[StrictInt, Field(ge=1, le=MAX_HOLD_TTL_SECONDS, description="At most 30 days.")]
        | None
    ) = None


class CaptureRequest(_Body):
    amount: Amount | None = Field(default=None, description="Default: the whole hold.")


class HoldResponse(BaseModel):
    id: str
    object: Literal["hold"] = "hold"
    account_id: str
    unit: str
    amount: int
    captured: int
    status: str = Field(description="active, captured, released or expired")
    expires_at: int
    reason: str | None
    created: int | None
    transaction_id: str | None = Field(default=None, description="Of the request that answered.")
    balance: int | None = Field(default=None, description="Available after the request.")


class ManualGrantRequest(_Body):
    unit: UnitName
    amount: Amount
    reason: Text = Field(description="Why: recorded on the grant and its transaction.")
    expires_at: Annotated[StrictInt, Field(ge=1, le=MAX_TIMESTAMP)] | None = None
    priority: Annotated[StrictInt, Field(ge=-1_000_000, le=1_000_000)] = 0
    kind: Literal["manual", "promotion"] = "manual"
    operator: str | None = Field(
        default=None,
        max_length=200,
        description="Who: recorded with the action (``GET /v1/operator-actions``).",
    )


class AdjustmentRequest(_Body):
    """Take value away from an account (a negative adjustment)."""

    unit: UnitName
    amount: Amount = Field(description="What to take away: a positive integer, in minor units.")
    reason: Text = Field(description="Why: required, recorded on the adjustment's transaction.")
    operator: str | None = Field(
        default=None,
        max_length=200,
        description="Who: recorded with the action (``GET /v1/operator-actions``).",
    )


class AdjustmentResponse(BaseModel):
    object: Literal["adjustment"] = "adjustment"
    transaction_id: str
    account_id: str
    unit: str
    amount: int = Field(description="What was taken away (positive), in minor units.")
    reason: str
    balance: int = Field(description="What is left to spend of this unit.")
    draws: list[DrawResponse] = Field(description="The lots (grants) it took from.")
    created: int


class GrantCreatedResponse(BaseModel):
    id: str
    object: Literal["grant"] = "grant"
    transaction_id: str
    account_id: str
    unit: str
    amount: int
    expires_at: int | None
    debt_repaid: int
    balance: int


class EntitlementsResponse(BaseModel):
    object: Literal["entitlements"] = "entitlements"
    account_id: str
    plan: str | None
    source: Literal["subscription", "grace", "default", "none"] = Field(
        description="subscription: a live subscription gives the plan; grace: a past_due "
        "subscription keeps it until grace_until; default: the catalog's default plan; none: "
        "no subscription gives a plan and the catalog has no default."
    )
    status: str | None = Field(
        description="The status of the subscription that decided (null without one)."
    )
    features: dict[str, bool]
    limits: dict[str, int | None] = Field(description="null: unlimited.")
    current_period_end: int | None
    grace_until: int | None = Field(
        description="When the grace period of a past_due subscription ends (or ended)."
    )
    subscription_id: str | None = None


class SubscriptionResponse(BaseModel):
    id: str = Field(description="Stripe's subscription id.")
    object: Literal["subscription"] = "subscription"
    account_id: str | None
    customer_id: str | None
    plan: str | None = Field(description="null: no catalog plan sells its price.")
    status: str | None = Field(description="Stripe's status; null until a state event arrives.")
    quantity: int
    current_period_start: int | None
    current_period_end: int | None
    cancel_at: int | None
    cancel_at_period_end: bool
    canceled_at: int | None
    ended_at: int | None
    trial_end: int | None
    pause_collection: str | None = Field(description="Stripe's pause_collection behavior.")
    past_due_since: int | None = Field(description="When the period's first payment failed.")
    grace_until: int | None
    note: str | None = Field(
        description="The last event recorded without changing the state (trial_will_end, "
        "pending_update_applied or _expired), and when."
    )
    livemode: bool
    created: int
    updated: int


class CheckRequest(_Body):
    feature: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    limit: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    usage: Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)] | None = Field(
        default=None, description="How much of limit is used now (default 0)."
    )
    unit: UnitName | None = None
    amount: Amount | None = Field(default=None, description="How much of unit to afford.")


class CheckReason(BaseModel):
    code: str = Field(
        description="unknown_feature, feature_not_in_plan, unknown_limit, limit_reached or "
        "insufficient_balance"
    )
    message: str


class CheckResponse(BaseModel):
    object: Literal["check"] = "check"
    allowed: bool
    reasons: list[CheckReason]
    plan: str | None
    balance: int | None = Field(description="What the account can spend of unit (when asked).")


class ChangePlanRequest(_Body):
    plan: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    proration: Literal["create_prorations", "always_invoice", "none"] = Field(
        default="create_prorations", description="Stripe's proration_behavior."
    )


class BillingPortalRequest(_Body):
    return_url: Url | None = None


class BillingPortalResponse(BaseModel):
    object: Literal["billing_portal.session"] = "billing_portal.session"
    url: str


class SyncChange(BaseModel):
    account_id: str
    subscription_id: str
    what: str


class SyncResponse(BaseModel):
    object: Literal["subscription_sync"] = "subscription_sync"
    accounts: int
    subscriptions: int
    changes: list[SyncChange] = Field(description="What billfold's copy lacked, now repaired.")
    failures: list[str]


class CheckoutSessionRequest(_Body):
    account_id: AccountIdField
    package: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="The package to buy (or name a plan)."
    )
    plan: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="The plan to subscribe to (a subscription checkout)."
    )
    amount: Amount | None = Field(
        default=None, description="Minor units, for a custom-amount package only."
    )
    success_url: Url | None = None
    cancel_url: Url | None = None


class CheckoutSessionResponse(BaseModel):
    id: str
    object: Literal["checkout.session"] = "checkout.session"
    url: str
    account_id: str
    mode: Literal["payment", "subscription"] = "payment"
    package: str | None
    plan: str | None = None


class FulfillmentResponse(BaseModel):
    object: Literal["checkout_fulfillment"] = "checkout_fulfillment"
    session_id: str
    session_status: str | None = Field(description="Stripe's: open, complete or expired.")
    payment_status: str | None
    status: str = Field(description="The order's status; pending while nothing is paid.")
    order: OrderResponse | None
    account_id: str | None
    balances: dict[str, int]
    mode: str = Field(default="payment", description="payment or subscription")
    subscription_id: str | None = None
    plan: str | None = None
    entitlements: EntitlementsResponse | None = None


# --- reconciliation ------------------------------------------------------------------------------


class ReconciliationRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="Unix seconds; default three days before `until`."
    )
    until: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="Unix seconds; default now."
    )


class ReconciliationRunCreated(BaseModel):
    id: str
    status: str = Field(description="running")


class ReconciliationWindow(BaseModel):
    since: int
    until: int


class DriftCountResponse(BaseModel):
    found: int
    healed: int
    open: int


class DriftItemResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    drift_class: str = Field(
        alias="class",
        description="paid_not_granted, granted_without_payment, refunded_not_clawed_back, "
        "disputed_not_held, subscription_state_drift or amount_mismatch",
    )
    stripe_ids: list[str]
    billfold_ids: list[str]
    amount: int | None = Field(description="Minor units of `currency`.")
    currency: str | None
    healed: bool


class ReconciliationRunResponse(BaseModel):
    id: str
    object: Literal["reconciliation_run"] = "reconciliation_run"
    status: str = Field(description="running, completed or failed")
    trigger: str = Field(description="api, cli, schedule or audit")
    window: ReconciliationWindow
    events_imported: int
    drift: dict[str, DriftCountResponse]
    items: list[DriftItemResponse]
    error: str | None
    started: int
    finished: int | None


# --- the operator's dashboard ------------------------------------------------------------------


class EventCountsResponse(BaseModel):
    start: int = Field(description="Unix seconds: the bucket's start (UTC).")
    received: int
    processed: int
    ignored: int
    failed: int
    dead: int
    success_rate: float | None = Field(
        description="(processed + ignored) / (processed + ignored + failed + dead), 0 to 1; "
        "null when none finished."
    )


class WebhookFiguresResponse(BaseModel):
    received: int
    processed: int
    ignored: int
    failed: int
    dead: int
    success_rate: float | None = Field(description="Over the window, 0 to 1; null when none.")
    per_day: list[EventCountsResponse] = Field(description="Every UTC day of the window.")
    per_hour: list[EventCountsResponse] = Field(description="Every hour of the last 24 hours.")


class SaleResponse(BaseModel):
    kind: str = Field(description="checkout, payment_intent or invoice")
    currency: str | None
    count: int
    amount: int = Field(description="Minor units of `currency`.")


class DayPurchasesResponse(BaseModel):
    day: int = Field(description="Unix seconds: the UTC day's start.")
    count: int
    sales: list[SaleResponse]


class DayCreditsResponse(BaseModel):
    day: int = Field(description="Unix seconds: the UTC day's start.")
    paid: dict[str, int] = Field(description="Per unit: granted by purchases and allowances.")
    free: dict[str, int] = Field(description="Per unit: bonuses, promotions, manual grants.")


class RevenueResponse(BaseModel):
    name: str
    currency: str | None
    count: int
    amount: int = Field(description="Minor units of `currency`.")
    refunded: int = Field(description="Minor units of `currency`.")


class RevenueFiguresResponse(BaseModel):
    by_package: list[RevenueResponse]
    by_plan: list[RevenueResponse]


class LatencyResponse(BaseModel):
    count: int = Field(description="Orders measured (the newest 5000 at most).")
    p50: int | None = Field(description="Seconds (nearest rank); null without orders.")
    p99: int | None = Field(description="Seconds (nearest rank); null without orders.")


class BacklogResponse(BaseModel):
    received: int = Field(description="Events waiting to be processed.")
    oldest_age: int | None = Field(description="Seconds the oldest of them has waited.")
    failed: int = Field(description="Events that failed, waiting for a retry.")


class AttentionCountsResponse(BaseModel):
    count: int = Field(description="orders + failed_events + dead_events")
    orders: int = Field(description="Orders in needs_attention.")
    failed_events: int
    dead_events: int


class DashboardResponse(BaseModel):
    object: Literal["dashboard"] = "dashboard"
    days: int
    since: int = Field(description="Unix seconds: now - days * 86400.")
    until: int = Field(description="Unix seconds: now.")
    webhooks: WebhookFiguresResponse
    purchases_per_day: list[DayPurchasesResponse]
    credits_per_day: list[DayCreditsResponse]
    revenue: RevenueFiguresResponse
    latency: LatencyResponse = Field(description="From Stripe's first event to the grant.")
    backlog: BacklogResponse
    needs_attention: AttentionCountsResponse


# --- notifications to the application ----------------------------------------------------------

NotificationType = Literal[
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
]


class CreateNotificationEndpointRequest(_Body):
    url: Annotated[StrictStr, Field(max_length=2048, pattern=r"^https?://")]
    types: list[NotificationType] = Field(
        default_factory=list, description="The types it wants; empty: every type."
    )
    secret: Annotated[StrictStr, Field(pattern=r"^whsec_[A-Za-z0-9+/=]+$")] | None = Field(
        default=None, description="Bring your own whsec_ secret; billfold makes one otherwise."
    )
    rotate: Annotated[StrictStr, Field(max_length=64)] | None = Field(
        default=None,
        description="An endpoint id: give that endpoint a new secret (it signs with the new and "
        "the previous one until the next rotation) instead of creating one.",
    )


class NotificationEndpointResponse(BaseModel):
    id: str
    object: Literal["notification_endpoint"] = "notification_endpoint"
    url: str
    types: list[str]
    source: Literal["api", "settings"]
    created: int
    secret: str | None = Field(
        default=None, description="Only in the answer that made it: billfold never shows it again."
    )


class NotificationResponse(BaseModel):
    id: str = Field(description="The webhook-id header: the same on every retry.")
    object: Literal["notification"] = "notification"
    type: str
    account_id: str | None
    status: str = Field(description="pending, delivered or dead")
    attempts: int
    next_attempt_at: int | None
    last_error: str | None
    created: int
    body: dict[str, Any] = Field(description="Exactly what is POSTed: {type, timestamp, data}.")


class _NotificationData(BaseModel):
    account_id: str | None
    stripe: dict[str, Any] | None = Field(default=None, description="The Stripe ids involved.")


class OrderNotificationData(_NotificationData):
    order_id: str
    status: str
    reason: str | None
    package: str | None
    plan: str | None
    amount: int | None = Field(description="Minor units of currency.")
    currency: str | None
    customer_email: str | None


class CreditsGrantedData(_NotificationData):
    unit: str
    amount: int
    balance: int
    grant_id: str
    transaction_id: str
    kind: str
    origin: str | None = Field(description="The order that paid for it, if any.")
    expires_at: int | None
    reason: str | None


class CreditsClawedBackData(_NotificationData):
    unit: str
    taken: int
    debt: int
    unrecovered: int
    balance: int
    transaction_id: str
    order_id: str
    reason: str = Field(description="refund or dispute")


class BalanceAlertData(_NotificationData):
    unit: str
    balance: int
    previous_balance: int
    threshold: int
    transaction_id: str


class PaymentFailedData(_NotificationData):
    amount: int | None = Field(description="Minor units of currency.")
    currency: str | None
    attempt_count: int | None = None
    next_payment_attempt: int | None = None
    billing_reason: str | None = None
    customer_email: str | None


class SubscriptionUpdatedData(_NotificationData):
    plan: str | None
    status: str | None
    quantity: int
    current_period_start: int | None
    current_period_end: int | None
    cancel_at: int | None
    cancel_at_period_end: bool
    ended_at: int | None
    trial_end: int | None


class EntitlementsUpdatedData(_NotificationData):
    plan: str | None
    source: str
    status: str | None
    features: dict[str, bool]
    limits: dict[str, int | None]
    current_period_end: int | None
    grace_until: int | None
    previous_plan: str | None
    reason: str | None = Field(
        default=None,
        description="grace_period_ended when a past_due subscription's grace period ran out "
        "(no Stripe event says so: the worker tells it, once); absent when a Stripe event "
        "changed the entitlements.",
    )


class ReconciliationDriftData(_NotificationData):
    run_id: str
    drift: dict[str, dict[str, int]] = Field(description="{class: {found, healed, open}}")
    items: list[dict[str, Any]]


NOTIFICATION_DATA: dict[str, type[BaseModel]] = {
    "order.fulfilled": OrderNotificationData,
    "order.needs_attention": OrderNotificationData,
    "credits.granted": CreditsGrantedData,
    "credits.clawed_back": CreditsClawedBackData,
    "balance.low": BalanceAlertData,
    "balance.restored": BalanceAlertData,
    "payment.failed": PaymentFailedData,
    "subscription.updated": SubscriptionUpdatedData,
    "entitlements.updated": EntitlementsUpdatedData,
    "reconciliation.drift": ReconciliationDriftData,
}
"""The ``data`` of each notification type (documented in the OpenAPI document's ``webhooks``)."""


class AttentionResponse(BaseModel):
    """``GET /v1/attention``: what needs a person, the first 50 of each kind."""

    object: str = "attention"
    count: int = Field(description="orders_count + failed_count + dead_count.")
    orders: list[OrderResponse] = Field(description="Orders in needs_attention, newest first.")
    orders_count: int
    orders_has_more: bool
    failed_events: list[EventResponse] = Field(description="Waiting for a retry.")
    failed_count: int
    dead_events: list[EventResponse] = Field(description="Given up on: retry or replay.")
    dead_count: int

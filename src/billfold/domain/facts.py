"""Billing facts: what a Stripe event says, in billfold's terms.

The Stripe translator (:mod:`billfold.adapters.stripe.translate`) turns every event into exactly one
of these values; the rules decide what each means for orders, grants and subscriptions. Nothing
beyond the translator reads Stripe's JSON. Facts carry only what the rules need, as plain values:
ids are strings (never Stripe's expanded objects), amounts are integers in minor units, currencies
are lowercase ISO codes, times are Unix seconds.

    Fact
    ├── checkout session   CheckoutCompleted, CheckoutAsyncSucceeded, CheckoutAsyncFailed,
    │                      CheckoutExpired (the same fields, from a CheckoutSessionFact)
    ├── payment intent     PaymentIntentSucceeded, PaymentIntentFailed
    ├── subscription       SubscriptionChanged
    ├── invoice            InvoicePaid, InvoicePaymentFailed
    ├── refund             ChargeRefunded (with RefundInfo values)
    ├── dispute            DisputeOpened, DisputeClosed
    └── Ignored            anything billfold does not act on, with the reason
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

CheckoutMode: TypeAlias = Literal["payment", "subscription", "setup"]
CheckoutPaymentStatus: TypeAlias = Literal["paid", "unpaid", "no_payment_required"]
SubscriptionStatus: TypeAlias = Literal[
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
]
RefundStatus: TypeAlias = Literal["pending", "requires_action", "succeeded", "failed", "canceled"]
DisputeStatus: TypeAlias = Literal[
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
    "prevented",
    "appeal_needs_response",
    "appeal_under_review",
]
ClosedDisputeStatus: TypeAlias = Literal["won", "lost", "warning_closed", "prevented"]


# -- checkout sessions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutSessionFact:
    """What a checkout session event says about the session. Not a fact itself: see subclasses.

    ``metadata_account`` and ``metadata_package`` are ``metadata.billfold_account`` and
    ``metadata.billfold_package``, which billfold sets on the sessions it creates.
    ``customer_email`` is the e-mail the customer typed at checkout (``customer_details.email``),
    else the one the session was created with (``customer_email``).
    """

    session_id: str
    mode: CheckoutMode
    payment_status: CheckoutPaymentStatus
    payment_intent_id: str | None
    amount_total: int | None
    currency: str | None
    metadata_account: str | None
    metadata_package: str | None
    client_reference_id: str | None
    customer_id: str | None
    customer_email: str | None
    subscription_id: str | None
    invoice_id: str | None
    livemode: bool
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutCompleted(CheckoutSessionFact):
    """``checkout.session.completed``: paid, or ``unpaid`` while a delayed method settles."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutAsyncSucceeded(CheckoutSessionFact):
    """``checkout.session.async_payment_succeeded``: a delayed payment settled."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutAsyncFailed(CheckoutSessionFact):
    """``checkout.session.async_payment_failed``: a delayed payment did not settle."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutExpired(CheckoutSessionFact):
    """``checkout.session.expired``: the customer never paid."""


# -- payment intents -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentIntentSucceeded:
    """``payment_intent.succeeded``. ``amount_received`` is what was captured."""

    payment_intent_id: str
    amount: int
    amount_received: int
    currency: str
    customer_id: str | None
    metadata_account: str | None
    metadata_package: str | None
    livemode: bool
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentIntentFailed:
    """``payment_intent.payment_failed``, with Stripe's message for the customer, if any."""

    payment_intent_id: str
    amount: int
    currency: str
    customer_id: str | None
    metadata_account: str | None
    metadata_package: str | None
    last_error_message: str | None
    livemode: bool
    created: int


# -- subscriptions and invoices --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionChanged:
    """``customer.subscription.created/updated/deleted/paused/resumed``: the subscription now.

    ``event_created`` is the event's own time, to tell a newer state from an older one delivered
    late.
    The period comes from the subscription, or from its items on newer API versions (the earliest
    start and the latest end); it is None when neither carries one.
    """

    subscription_id: str
    customer_id: str | None
    status: SubscriptionStatus
    price_ids: tuple[str, ...]
    current_period_start: int | None
    current_period_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    deleted: bool
    metadata_account: str | None
    livemode: bool
    event_created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoicePaid:
    """``invoice.paid`` or ``invoice.payment_succeeded`` (both dedupe on ``invoice:<id>``).

    ``subscription_id`` is None for an invoice that no subscription produced. ``price_ids`` and the
    period come from the invoice's subscription lines that are not prorations (all its priced
    lines when there are none), else from the invoice itself.
    """

    invoice_id: str
    subscription_id: str | None
    customer_id: str | None
    price_ids: tuple[str, ...]
    period_start: int
    period_end: int
    amount_paid: int
    currency: str
    billing_reason: str | None
    livemode: bool
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoicePaymentFailed:
    """``invoice.payment_failed``. ``next_payment_attempt`` is None when Stripe will not retry."""

    invoice_id: str
    subscription_id: str | None
    customer_id: str | None
    amount_due: int
    currency: str
    attempt_count: int
    next_payment_attempt: int | None
    billing_reason: str | None
    livemode: bool
    created: int


# -- refunds and disputes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundInfo:
    refund_id: str
    amount: int
    status: RefundStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeRefunded:
    """``charge.refunded``: ``amount_refunded`` is the total so far, over every refund.

    ``refunds`` lists the refunds the event carries. Since Stripe API version 2022-11-15 a charge
    does not include its refunds unless expanded, so the tuple may be empty while
    ``amount_refunded`` is not; ``refunds_complete`` says whether the tuple holds every refund.
    """

    charge_id: str
    payment_intent_id: str | None
    customer_id: str | None
    amount: int
    amount_refunded: int
    currency: str
    refunded: bool
    refunds: tuple[RefundInfo, ...]
    refunds_complete: bool
    livemode: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeOpened:
    """``charge.dispute.created``: ``amount`` of the charge is disputed."""

    dispute_id: str
    charge_id: str
    payment_intent_id: str | None
    amount: int
    currency: str
    status: DisputeStatus
    reason: str | None
    livemode: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeClosed:
    """``charge.dispute.closed``: ``won`` and ``warning_closed`` leave the money with the merchant;
    ``lost`` takes it; ``prevented`` means it never became a dispute."""

    dispute_id: str
    charge_id: str
    payment_intent_id: str | None
    amount: int
    currency: str
    status: ClosedDisputeStatus
    reason: str | None
    livemode: bool


# -- everything else -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignored:
    """An event billfold does not act on: an unhandled type, or a handled type it cannot read."""

    reason: str


Fact: TypeAlias = (
    CheckoutCompleted
    | CheckoutAsyncSucceeded
    | CheckoutAsyncFailed
    | CheckoutExpired
    | PaymentIntentSucceeded
    | PaymentIntentFailed
    | SubscriptionChanged
    | InvoicePaid
    | InvoicePaymentFailed
    | ChargeRefunded
    | DisputeOpened
    | DisputeClosed
    | Ignored
)

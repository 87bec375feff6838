"""Billing facts: what a Stripe event says, in billfold's terms.

The Stripe translator (:mod:`billfold.adapters.stripe.translate`) turns every event into exactly one
of these values; the rules decide what each means for orders, grants and subscriptions. Nothing
beyond the translator reads Stripe's JSON. Facts carry only what the rules need, as plain values:
ids are strings (never Stripe's expanded objects), amounts are integers in minor units (never
floats; an amount outside 0..2**63-1 is carried as it came, for the rules to flag), currencies are
lowercase ISO codes, times are Unix seconds. Every fact but ``Ignored`` carries ``livemode`` and
``event_created``, the ``created`` time of the event that brought it (Stripe's clock, not
billfold's; several events often share one second, so it orders only roughly).

    Fact
    ├── checkout session   CheckoutCompleted, CheckoutAsyncSucceeded, CheckoutAsyncFailed,
    │                      CheckoutExpired (the same fields, from a CheckoutSessionFact)
    ├── payment intent     PaymentIntentSucceeded, PaymentIntentFailed
    ├── subscription       SubscriptionChanged (state: created/updated/deleted/paused/resumed),
    │                      SubscriptionNoted (to record: trial_will_end, pending_update_*)
    │                      (the same state fields, from a SubscriptionFact; SubscriptionItemFact)
    ├── invoice            InvoicePaid (with InvoiceLineFact values), InvoicePaymentFailed,
    │                      InvoiceNoted (to record: voided, marked_uncollectible, action required)
    ├── refund             ChargeRefunded (with RefundInfo values), RefundChanged (one refund)
    ├── dispute            DisputeOpened, DisputeClosed, DisputeNoted (updated, funds moved,
    │                      with DisputeBalanceTransaction values)
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
SubscriptionNote: TypeAlias = Literal[
    "trial_will_end", "pending_update_applied", "pending_update_expired"
]
InvoiceNote: TypeAlias = Literal["voided", "marked_uncollectible", "payment_action_required"]
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
DisputeNote: TypeAlias = Literal["updated", "funds_withdrawn", "funds_reinstated"]


# -- checkout sessions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutSessionFact:
    """What a checkout session event says about the session. Not a fact itself: see subclasses.

    ``metadata_account`` and ``metadata_package`` are ``metadata.billfold_account`` and
    ``metadata.billfold_package``, which billfold sets on the sessions it creates.
    ``customer_email`` is the e-mail the customer typed at checkout (``customer_details.email``),
    else the one the session was created with (``customer_email``). ``created`` is the session's
    own creation time; for a session read from the API rather than an event, ``event_created`` is
    what the caller said (by default the session's ``created``).
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
    event_created: int


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
    event_created: int


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
    event_created: int


# -- subscriptions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionItemFact:
    """One item of a subscription: a price, a quantity and the item's own period.

    From API version 2025-03-31.basil on the period is the item's; before, every item has the
    subscription's. ``price_id`` is the item's price (or, failing that, its legacy plan).
    """

    item_id: str
    price_id: str | None
    quantity: int | None
    current_period_start: int | None
    current_period_end: int | None
    price_lookup_key: str | None = None
    """The price's ``lookup_key`` (items carry their price expanded): how billfold finds again
    the prices it made for plans sold with an inline price."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseCollection:
    """``pause_collection``: invoices are still created, but collected per ``behavior``
    (``keep_as_draft``, ``mark_uncollectible``, ``void``, or a newer one, kept verbatim) until
    ``resumes_at``. Not the ``paused`` status: the subscription's status does not change."""

    behavior: str
    resumes_at: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionFact:
    """What a subscription event says about the subscription. Not a fact itself: see subclasses.

    ``items`` are the truth about prices, quantities and periods. The conveniences summarise
    them: ``price_ids`` (every item's, deduplicated, in order), ``quantity`` (the one item's; None
    with several items, where only the item whose price maps to a plan counts), and the period
    (the items', else the subscription's top-level one before basil; with items whose periods
    differ, the earliest start and the latest end: choose an item from ``items`` instead).
    ``items_complete`` is False when Stripe truncated the item list (``has_more``).

    A scheduled end comes as ``cancel_at_period_end`` or as a ``cancel_at`` time (the customer
    portal's way); ``canceled_at`` is when cancellation was requested, ``ended_at`` when the
    subscription ended. ``deleted`` is True for ``customer.subscription.deleted`` only.
    ``pending_update`` says whether a change waits for its invoice to be paid.
    ``metadata_account`` is ``metadata.billfold_account``; ``test_clock_id`` the test clock the
    subscription runs on, if any. ``event_type`` is the event's type (or what the caller said,
    for a subscription read from the API).
    """

    subscription_id: str
    customer_id: str | None
    status: SubscriptionStatus
    items: tuple[SubscriptionItemFact, ...]
    items_complete: bool
    price_ids: tuple[str, ...]
    quantity: int | None
    current_period_start: int | None
    current_period_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None
    ended_at: int | None
    trial_start: int | None
    trial_end: int | None
    pause_collection: PauseCollection | None
    pending_update: bool
    metadata_account: str | None
    test_clock_id: str | None
    deleted: bool
    event_type: str
    livemode: bool
    event_created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionChanged(SubscriptionFact):
    """``customer.subscription.created/updated/deleted/paused/resumed``: the subscription now.

    A state fact: the rules store it only when it is newer than what they hold (events arrive in
    any order, several in one second: see DESIGN.md).
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionNoted(SubscriptionFact):
    """``customer.subscription.trial_will_end`` / ``pending_update_applied`` /
    ``pending_update_expired`` (``kind``): something to record on the subscription.

    It carries the subscription as the event saw it, like ``SubscriptionChanged``, but is a
    different type so that the rules decide explicitly whether that state is newer than theirs:
    a late ``trial_will_end`` must not overwrite a later state.
    """

    kind: SubscriptionNote


# -- invoices --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceLineFact:
    """One invoice line, from either API shape.

    ``period_start/end`` is the service period the line pays for (for a renewal, the new period;
    never the invoice's own ``period_*``). ``amount`` is negative for a credit (an unused-time
    proration). ``subscription_item_id`` is set for lines a subscription item produced (its
    charges and prorations); ``is_subscription`` says the line is such a line (basil
    ``parent.type == "subscription_item_details"``; before, ``type == "subscription"`` or a
    ``subscription_item``). ``subscription_id`` may be set on other lines too (an invoice item
    added to a subscription's invoice).
    """

    line_id: str
    price_id: str | None
    quantity: int | None
    amount: int
    currency: str
    period_start: int
    period_end: int
    proration: bool
    subscription_id: str | None
    subscription_item_id: str | None
    is_subscription: bool
    price_lookup_key: str | None = None
    """The line's price ``lookup_key`` where the line carries its price expanded (before basil,
    or an expanded ``pricing.price_details.price``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoicePaid:
    """``invoice.paid`` or ``invoice.payment_succeeded`` (both the same content; one grant per
    invoice line whichever arrives first).

    ``paid`` is decided from ``status == "paid"`` (and, before basil, ``paid: true``): a
    re-fetched or odd invoice may say otherwise, and then grants nothing. ``status`` and
    ``billing_reason`` are Stripe's, verbatim (an unknown reason is kept for an operator).
    ``subscription_id`` is None for a one-off invoice. ``metadata_account`` is
    ``billfold_account`` from the subscription's metadata snapshot on the invoice, else from the
    invoice's own metadata (a one-off invoice); ``metadata_package`` is the invoice's own
    ``billfold_package``.

    ``lines`` are the truth: the allowance is granted per line, for the line's period.
    ``lines_complete`` is False when Stripe truncated the list (``has_more``) or left it out.
    The conveniences ``price_ids`` and ``period_start/end`` summarise the subscription lines that
    are not prorations (else every priced line), and are None without lines: never the invoice's
    ``period_*``.

    ``payment_intent_ids`` are the payment intents the invoice names (basil: its ``payments``
    list, which Stripe includes only when asked to, e.g. ``expand[]=payments``, so it is usually
    missing from webhooks; before: ``payment_intent``), to map refunds back to the invoice;
    ``payments_complete`` says whether the payload named them all (False: ask Stripe's invoice
    payments). ``charge_id`` exists before basil only. ``created`` is the invoice's own creation
    time.
    """

    invoice_id: str
    status: str | None
    paid: bool
    paid_at: int | None
    subscription_id: str | None
    customer_id: str | None
    customer_email: str | None
    billing_reason: str | None
    amount_paid: int
    amount_due: int
    total: int
    currency: str
    metadata_account: str | None
    metadata_package: str | None
    payment_intent_ids: tuple[str, ...]
    payments_complete: bool
    charge_id: str | None
    lines: tuple[InvoiceLineFact, ...]
    lines_complete: bool
    price_ids: tuple[str, ...]
    period_start: int | None
    period_end: int | None
    event_type: str
    livemode: bool
    created: int
    event_created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoicePaymentFailed:
    """``invoice.payment_failed``, once per attempt. ``next_payment_attempt`` is None when Stripe
    will not retry. The grace clock starts at the ``event_created`` of the first one for an
    invoice; the subscription's status comes from the subscription events only."""

    invoice_id: str
    status: str | None
    subscription_id: str | None
    customer_id: str | None
    customer_email: str | None
    amount_due: int
    currency: str
    attempt_count: int
    next_payment_attempt: int | None
    billing_reason: str | None
    metadata_account: str | None
    payment_intent_ids: tuple[str, ...]
    event_type: str
    livemode: bool
    created: int
    event_created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceNoted:
    """``invoice.voided`` / ``invoice.marked_uncollectible`` / ``invoice.payment_action_required``
    (``kind``): to record on the invoice; never a grant."""

    kind: InvoiceNote
    invoice_id: str
    status: str | None
    subscription_id: str | None
    customer_id: str | None
    amount_due: int
    amount_paid: int
    currency: str
    billing_reason: str | None
    metadata_account: str | None
    payment_intent_ids: tuple[str, ...]
    event_type: str
    livemode: bool
    created: int
    event_created: int


# -- refunds ---------------------------------------------------------------------------------------


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
    event_created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundChanged:
    """``refund.created``, ``refund.updated``, ``refund.failed`` and ``charge.refund.updated``:
    one refund as it is now, keyed by ``refund_id``.

    ``pending`` and ``succeeded`` claw back; ``failed`` and ``canceled`` restore what the refund
    took; ``requires_action`` waits. ``charge_id`` is None for a refund of something that is not
    a charge (a customer balance, for one). ``failure_reason`` is Stripe's, for a failed refund.
    ``created`` is the refund's own creation time.
    """

    refund_id: str
    charge_id: str | None
    payment_intent_id: str | None
    amount: int
    currency: str
    status: RefundStatus
    reason: str | None
    failure_reason: str | None
    event_type: str
    livemode: bool
    created: int
    event_created: int


# -- disputes --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeBalanceTransaction:
    """A movement of the merchant's balance that a dispute caused: negative when the disputed
    amount (and a fee) was withdrawn, positive when reinstated. In the balance's currency, which
    may differ from the dispute's."""

    balance_transaction_id: str
    amount: int
    fee: int
    net: int
    currency: str
    reporting_category: str | None


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
    event_created: int


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
    event_created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeNoted:
    """``charge.dispute.updated`` / ``funds_withdrawn`` / ``funds_reinstated`` (``kind``): to
    record on the dispute. The hold and its outcome follow ``created`` and ``closed`` only."""

    kind: DisputeNote
    dispute_id: str
    charge_id: str
    payment_intent_id: str | None
    amount: int
    currency: str
    status: DisputeStatus
    reason: str | None
    balance_transactions: tuple[DisputeBalanceTransaction, ...]
    event_type: str
    livemode: bool
    event_created: int


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
    | SubscriptionNoted
    | InvoicePaid
    | InvoicePaymentFailed
    | InvoiceNoted
    | ChargeRefunded
    | RefundChanged
    | DisputeOpened
    | DisputeClosed
    | DisputeNoted
    | Ignored
)

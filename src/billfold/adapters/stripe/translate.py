"""Stripe events in, billing facts out: the only code in billfold that reads Stripe's JSON.

``translate`` is total: whatever the dict holds, it returns a :data:`facts.Fact` and never raises.
An event type billfold does not handle becomes ``Ignored("unhandled event type X")``; a handled type
whose object lacks a field the rules need, or holds one of the wrong type, becomes ``Ignored`` with
the field and the problem, so that the inbox shows why nothing happened.

Stripe's shapes change between API versions; both the old and the new ones are read:

- ``invoice.subscription`` moved to ``invoice.parent.subscription_details.subscription``, and a
  line's ``price`` to ``lines.data[].pricing.price_details.price`` (2025-03-31.basil);
- ``subscription.current_period_start/end`` moved onto the subscription items (same version);
- ``charge.refunds`` is no longer included unless expanded (2022-11-15).

Any id may arrive as a string or as the expanded object (``"customer": {"id": "cus_..."}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar, get_args

from billfold.domain import facts

_L = TypeVar("_L", bound=str)

ACCOUNT_METADATA_KEY: Final = "billfold_account"
PACKAGE_METADATA_KEY: Final = "billfold_package"


class _Malformed(Exception):
    """A field of a handled event is missing or of the wrong type; the event becomes Ignored."""


def is_stripe_event(obj: object) -> bool:
    """Whether ``obj`` (a parsed JSON body) has the shape of a Stripe event envelope."""
    if not isinstance(obj, Mapping):
        return False
    event_id, kind, data = obj.get("id"), obj.get("type"), obj.get("data")
    return (
        isinstance(event_id, str)
        and event_id.startswith("evt_")
        and len(event_id) > len("evt_")
        and obj.get("object") == "event"
        and isinstance(kind, str)
        and bool(kind)
        and isinstance(data, Mapping)
        and isinstance(data.get("object"), Mapping)
    )


def translate(event: Mapping[str, Any]) -> facts.Fact:
    """The billing fact ``event`` carries; ``Ignored`` with a reason when there is none."""
    if not is_stripe_event(event):
        return facts.Ignored(reason="not a Stripe event")
    event_type: str = event["type"]
    handler = _HANDLERS.get(event_type)
    if handler is None:
        return facts.Ignored(reason=f"unhandled event type {event_type}")
    expected_object, build = handler
    envelope = _Reader(event, "event")
    obj = _Reader(event["data"]["object"], "data.object")
    try:
        found = obj.text("object")
        if found != expected_object:
            raise _Malformed(f"data.object.object must be {expected_object!r}, got {found!r}")
        return build(event_type, envelope, obj)
    except _Malformed as exc:
        return facts.Ignored(reason=f"malformed {event_type} event {event['id']}: {exc}")


# -- reading Stripe objects ------------------------------------------------------------------------


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


class _Reader:
    """Typed access to one Stripe object; every wrong shape raises _Malformed naming the field."""

    __slots__ = ("data", "where")

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def _bad(self, key: str, expected: str, value: object) -> _Malformed:
        return _Malformed(f"{self.where}.{key} must be {expected}, got {_kind(value)}")

    def text(self, key: str) -> str | None:
        """A string, or None when missing, null or blank."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._bad(key, "a string or null", value)
        return value if value.strip() else None

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise _Malformed(f"{self.where}.{key} is missing")
        return value

    def ref(self, key: str) -> str | None:
        """An id that Stripe may send as ``"cus_..."`` or, expanded, as ``{"id": "cus_..."}``."""
        value = self.data.get(key)
        if isinstance(value, Mapping):
            return _Reader(value, f"{self.where}.{key}").required_text("id")
        return self.text(key)

    def required_ref(self, key: str) -> str:
        value = self.ref(key)
        if value is None:
            raise _Malformed(f"{self.where}.{key} is missing")
        return value

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._bad(key, "an integer or null", value)
        return value

    def required_integer(self, key: str) -> int:
        value = self.integer(key)
        if value is None:
            raise _Malformed(f"{self.where}.{key} is missing")
        return value

    def amount(self, key: str) -> int:
        """A required, non-negative amount in minor units."""
        value = self.required_integer(key)
        if value < 0:
            raise _Malformed(f"{self.where}.{key} must not be negative, got {value}")
        return value

    def flag(self, key: str, *, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._bad(key, "true or false", value)
        return value

    def currency(self, key: str) -> str | None:
        value = self.text(key)
        if value is None:
            return None
        if len(value) != 3 or not value.isascii() or not value.isalpha():
            raise _Malformed(f"{self.where}.{key} must be a currency code, got {value!r}")
        return value.lower()

    def required_currency(self, key: str) -> str:
        value = self.currency(key)
        if value is None:
            raise _Malformed(f"{self.where}.{key} is missing")
        return value

    def choice(self, key: str, options: tuple[_L, ...]) -> _L:
        value = self.text(key)
        for option in options:
            if value == option:
                return option
        raise _Malformed(f"{self.where}.{key} must be one of {', '.join(options)}, got {value!r}")

    def child(self, key: str) -> _Reader | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self._bad(key, "an object or null", value)
        return _Reader(value, f"{self.where}.{key}")

    def items(self, key: str) -> tuple[list[_Reader], bool] | None:
        """The objects of a Stripe list (``{"data": [...], "has_more": ...}``) and whether it is
        complete; None when the list is missing or null."""
        listing = self.child(key)
        if listing is None:
            return None
        data = listing.data.get("data")
        if not isinstance(data, list):
            raise listing._bad("data", "an array", data)
        readers = []
        for index, item in enumerate(data):
            if not isinstance(item, Mapping):
                raise _Malformed(f"{listing.where}.data[{index}] must be an object")
            readers.append(_Reader(item, f"{listing.where}.data[{index}]"))
        return readers, not listing.flag("has_more")

    def metadata(self, key: str) -> str | None:
        meta = self.child("metadata")
        return None if meta is None else meta.text(key)


# (event type, the envelope, data.object) -> the fact
_Build = Callable[[str, _Reader, _Reader], facts.Fact]

_CHECKOUT_MODES: Final = get_args(facts.CheckoutMode)
_CHECKOUT_PAYMENT_STATUSES: Final = get_args(facts.CheckoutPaymentStatus)
_SUBSCRIPTION_STATUSES: Final = get_args(facts.SubscriptionStatus)
_REFUND_STATUSES: Final = get_args(facts.RefundStatus)
_DISPUTE_STATUSES: Final = get_args(facts.DisputeStatus)
_CLOSED_DISPUTE_STATUSES: Final = get_args(facts.ClosedDisputeStatus)


def _dedupe(values: Sequence[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v is not None))


# -- checkout sessions -----------------------------------------------------------------------------

_CheckoutFactType = (
    type[facts.CheckoutCompleted]
    | type[facts.CheckoutAsyncSucceeded]
    | type[facts.CheckoutAsyncFailed]
    | type[facts.CheckoutExpired]
)


def _checkout(cls: _CheckoutFactType) -> _Build:
    def build(event_type: str, envelope: _Reader, session: _Reader) -> facts.Fact:
        details = session.child("customer_details")
        email = (details.text("email") if details else None) or session.text("customer_email")
        return cls(
            session_id=session.required_text("id"),
            mode=session.choice("mode", _CHECKOUT_MODES),
            payment_status=session.choice("payment_status", _CHECKOUT_PAYMENT_STATUSES),
            payment_intent_id=session.ref("payment_intent"),
            amount_total=session.integer("amount_total"),
            currency=session.currency("currency"),
            metadata_account=session.metadata(ACCOUNT_METADATA_KEY),
            metadata_package=session.metadata(PACKAGE_METADATA_KEY),
            client_reference_id=session.text("client_reference_id"),
            customer_id=session.ref("customer"),
            customer_email=email,
            subscription_id=session.ref("subscription"),
            invoice_id=session.ref("invoice"),
            livemode=session.flag("livemode"),
            created=session.required_integer("created"),
        )

    return build


# -- payment intents -------------------------------------------------------------------------------


def _payment_intent_succeeded(event_type: str, envelope: _Reader, pi: _Reader) -> facts.Fact:
    return facts.PaymentIntentSucceeded(
        payment_intent_id=pi.required_text("id"),
        amount=pi.amount("amount"),
        amount_received=pi.amount("amount_received"),
        currency=pi.required_currency("currency"),
        customer_id=pi.ref("customer"),
        metadata_account=pi.metadata(ACCOUNT_METADATA_KEY),
        metadata_package=pi.metadata(PACKAGE_METADATA_KEY),
        livemode=pi.flag("livemode"),
        created=pi.required_integer("created"),
    )


def _payment_intent_failed(event_type: str, envelope: _Reader, pi: _Reader) -> facts.Fact:
    error = pi.child("last_payment_error")
    return facts.PaymentIntentFailed(
        payment_intent_id=pi.required_text("id"),
        amount=pi.amount("amount"),
        currency=pi.required_currency("currency"),
        customer_id=pi.ref("customer"),
        metadata_account=pi.metadata(ACCOUNT_METADATA_KEY),
        metadata_package=pi.metadata(PACKAGE_METADATA_KEY),
        last_error_message=error.text("message") if error else None,
        livemode=pi.flag("livemode"),
        created=pi.required_integer("created"),
    )


# -- subscriptions ---------------------------------------------------------------------------------


def _price_of(holder: _Reader) -> str | None:
    """A subscription item's or (old) invoice line's price id, or its legacy plan's id."""
    price = holder.ref("price")
    if price is not None:
        return price
    plan = holder.child("plan")
    return plan.text("id") if plan else None


def _subscription_changed(event_type: str, envelope: _Reader, sub: _Reader) -> facts.Fact:
    listed = sub.items("items")
    items = listed[0] if listed else []
    start = sub.integer("current_period_start")
    end = sub.integer("current_period_end")
    item_starts = [s for item in items if (s := item.integer("current_period_start")) is not None]
    item_ends = [e for item in items if (e := item.integer("current_period_end")) is not None]
    if start is None and item_starts:
        start = min(item_starts)
    if end is None and item_ends:
        end = max(item_ends)
    return facts.SubscriptionChanged(
        subscription_id=sub.required_text("id"),
        customer_id=sub.ref("customer"),
        status=sub.choice("status", _SUBSCRIPTION_STATUSES),
        price_ids=_dedupe([_price_of(item) for item in items]),
        current_period_start=start,
        current_period_end=end,
        cancel_at_period_end=sub.flag("cancel_at_period_end"),
        cancel_at=sub.integer("cancel_at"),
        deleted=event_type == "customer.subscription.deleted",
        metadata_account=sub.metadata(ACCOUNT_METADATA_KEY),
        livemode=sub.flag("livemode"),
        event_created=envelope.required_integer("created"),
    )


# -- invoices --------------------------------------------------------------------------------------


class _Line:
    """What billfold needs from one invoice line, from either API shape."""

    __slots__ = ("is_subscription", "period", "price_id", "proration", "subscription_id")

    def __init__(self, line: _Reader) -> None:
        parent = line.child("parent")
        details: _Reader | None = None
        is_subscription = line.text("type") == "subscription"  # before 2025-03-31.basil
        if parent is not None:
            parent_type = parent.text("type")
            if parent_type is not None:
                details = parent.child(parent_type)
            is_subscription = is_subscription or parent_type == "subscription_item_details"
            details = (
                details
                or parent.child("subscription_item_details")
                or parent.child("invoice_item_details")
            )
        pricing = line.child("pricing")
        price_details = pricing.child("price_details") if pricing else None
        self.price_id = (price_details.ref("price") if price_details else None) or _price_of(line)
        self.subscription_id = (details.ref("subscription") if details else None) or (
            line.ref("subscription")
        )
        self.proration = (details.flag("proration") if details else False) or line.flag("proration")
        period = line.child("period")
        self.period = (period.integer("start"), period.integer("end")) if period else (None, None)
        self.is_subscription = is_subscription or self.subscription_id is not None


def _invoice_lines(invoice: _Reader) -> list[_Line]:
    listed = invoice.items("lines")
    return [_Line(line) for line in listed[0]] if listed else []


def _invoice_subscription(invoice: _Reader, lines: Sequence[_Line]) -> str | None:
    found = invoice.ref("subscription")  # before 2025-03-31.basil
    if found is None:
        parent = invoice.child("parent")
        details = parent.child("subscription_details") if parent else None
        found = details.ref("subscription") if details else None
    if found is None:
        found = next((line.subscription_id for line in lines if line.subscription_id), None)
    return found


def _invoice_paid(event_type: str, envelope: _Reader, invoice: _Reader) -> facts.Fact:
    lines = _invoice_lines(invoice)
    chosen = [ln for ln in lines if ln.is_subscription and not ln.proration] or [
        ln for ln in lines if ln.price_id
    ]
    starts = [ln.period[0] for ln in chosen if ln.period[0] is not None]
    ends = [ln.period[1] for ln in chosen if ln.period[1] is not None]
    start = min(starts) if starts else invoice.required_integer("period_start")
    end = max(ends) if ends else invoice.required_integer("period_end")
    return facts.InvoicePaid(
        invoice_id=invoice.required_text("id"),
        subscription_id=_invoice_subscription(invoice, lines),
        customer_id=invoice.ref("customer"),
        price_ids=_dedupe([ln.price_id for ln in chosen]),
        period_start=start,
        period_end=end,
        amount_paid=invoice.amount("amount_paid"),
        currency=invoice.required_currency("currency"),
        billing_reason=invoice.text("billing_reason"),
        livemode=invoice.flag("livemode"),
        created=invoice.required_integer("created"),
    )


def _invoice_payment_failed(event_type: str, envelope: _Reader, invoice: _Reader) -> facts.Fact:
    lines = _invoice_lines(invoice)
    return facts.InvoicePaymentFailed(
        invoice_id=invoice.required_text("id"),
        subscription_id=_invoice_subscription(invoice, lines),
        customer_id=invoice.ref("customer"),
        amount_due=invoice.amount("amount_due"),
        currency=invoice.required_currency("currency"),
        attempt_count=invoice.integer("attempt_count") or 0,
        next_payment_attempt=invoice.integer("next_payment_attempt"),
        billing_reason=invoice.text("billing_reason"),
        livemode=invoice.flag("livemode"),
        created=invoice.required_integer("created"),
    )


# -- refunds and disputes --------------------------------------------------------------------------


def _charge_refunded(event_type: str, envelope: _Reader, charge: _Reader) -> facts.Fact:
    listed = charge.items("refunds")
    refunds = tuple(
        facts.RefundInfo(
            refund_id=refund.required_text("id"),
            amount=refund.amount("amount"),
            status=refund.choice("status", _REFUND_STATUSES),
        )
        for refund in (listed[0] if listed else [])
    )
    amount = charge.amount("amount")
    amount_refunded = charge.amount("amount_refunded")
    return facts.ChargeRefunded(
        charge_id=charge.required_text("id"),
        payment_intent_id=charge.ref("payment_intent"),
        customer_id=charge.ref("customer"),
        amount=amount,
        amount_refunded=amount_refunded,
        currency=charge.required_currency("currency"),
        refunded=charge.flag("refunded", default=amount_refunded >= amount),
        refunds=refunds,
        refunds_complete=listed is not None and listed[1],
        livemode=charge.flag("livemode"),
    )


def _dispute_opened(event_type: str, envelope: _Reader, dispute: _Reader) -> facts.Fact:
    return facts.DisputeOpened(
        dispute_id=dispute.required_text("id"),
        charge_id=dispute.required_ref("charge"),
        payment_intent_id=dispute.ref("payment_intent"),
        amount=dispute.amount("amount"),
        currency=dispute.required_currency("currency"),
        status=dispute.choice("status", _DISPUTE_STATUSES),
        reason=dispute.text("reason"),
        livemode=dispute.flag("livemode"),
    )


def _dispute_closed(event_type: str, envelope: _Reader, dispute: _Reader) -> facts.Fact:
    return facts.DisputeClosed(
        dispute_id=dispute.required_text("id"),
        charge_id=dispute.required_ref("charge"),
        payment_intent_id=dispute.ref("payment_intent"),
        amount=dispute.amount("amount"),
        currency=dispute.required_currency("currency"),
        status=dispute.choice("status", _CLOSED_DISPUTE_STATUSES),
        reason=dispute.text("reason"),
        livemode=dispute.flag("livemode"),
    )


# -- the table -------------------------------------------------------------------------------------

# event type -> (the `object` its data.object must be, the function that reads it)
_HANDLERS: Final[Mapping[str, tuple[str, _Build]]] = {
    "checkout.session.completed": ("checkout.session", _checkout(facts.CheckoutCompleted)),
    "checkout.session.async_payment_succeeded": (
        "checkout.session",
        _checkout(facts.CheckoutAsyncSucceeded),
    ),
    "checkout.session.async_payment_failed": (
        "checkout.session",
        _checkout(facts.CheckoutAsyncFailed),
    ),
    "checkout.session.expired": ("checkout.session", _checkout(facts.CheckoutExpired)),
    "payment_intent.succeeded": ("payment_intent", _payment_intent_succeeded),
    "payment_intent.payment_failed": ("payment_intent", _payment_intent_failed),
    "customer.subscription.created": ("subscription", _subscription_changed),
    "customer.subscription.updated": ("subscription", _subscription_changed),
    "customer.subscription.deleted": ("subscription", _subscription_changed),
    "customer.subscription.paused": ("subscription", _subscription_changed),
    "customer.subscription.resumed": ("subscription", _subscription_changed),
    "invoice.paid": ("invoice", _invoice_paid),
    "invoice.payment_succeeded": ("invoice", _invoice_paid),
    "invoice.payment_failed": ("invoice", _invoice_payment_failed),
    "charge.refunded": ("charge", _charge_refunded),
    "charge.dispute.created": ("dispute", _dispute_opened),
    "charge.dispute.closed": ("dispute", _dispute_closed),
}

HANDLED_EVENT_TYPES: Final = frozenset(_HANDLERS)


# -- objects read back from the API ----------------------------------------------------------------

_SESSION_EVENT_FOR_STATUS: Final[Mapping[str, str]] = {
    "complete": "checkout.session.completed",
    "expired": "checkout.session.expired",
}


def read_session(session: Mapping[str, Any]) -> facts.CheckoutSessionFact | facts.Ignored:
    """A checkout session retrieved from the API, read as the webhook's event for its status would
    be (total: ``Ignored`` with the reason when it cannot be read)."""
    status = session.get("status")
    event_type = _SESSION_EVENT_FOR_STATUS.get(
        status if isinstance(status, str) else "", "checkout.session.completed"
    )
    _, build = _HANDLERS[event_type]
    reader = _Reader(session, "checkout.session")
    try:
        found = reader.text("object")
        if found != "checkout.session":
            raise _Malformed(f"object must be 'checkout.session', got {found!r}")
        fact = build(event_type, reader, reader)
    except _Malformed as exc:
        return facts.Ignored(reason=f"unreadable checkout session: {exc}")
    assert isinstance(fact, facts.CheckoutSessionFact | facts.Ignored)
    return fact

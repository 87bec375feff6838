"""Stripe events in, billing facts out: the only code in billfold that reads Stripe's JSON.

``translate`` is total: whatever the dict holds, it returns a :data:`facts.Fact` and never raises.
An event type billfold does not handle becomes ``Ignored("unhandled event type X")``; a handled type
whose object lacks a field the rules need, or holds one of the wrong type, becomes ``Ignored`` with
the field and the problem, so that the inbox shows why nothing happened. Amounts are integers as
Stripe sent them (negative, or past 2**63, included: the rules flag them); a float or a boolean
where an integer belongs is malformed.

``checkout_session_fact``, ``subscription_fact`` and ``invoice_fact`` read the same objects when
they come from the API (a success page, a sync, a reconciliation) rather than in an event, as plain
dicts (an SDK object's ``to_dict()``).

Stripe's shapes change between API versions; both the old (e.g. ``2024-06-20``) and the new ones
(``2025-03-31.basil`` and later) are read (see ``shared/stripe/SUBSCRIPTIONS.md``):

- ``invoice.subscription`` moved to ``invoice.parent.subscription_details.subscription`` (when
  ``parent.type == "subscription_details"``), ``invoice.subscription_details.metadata`` to
  ``invoice.parent.subscription_details.metadata``;
- a line's ``price`` moved to ``lines.data[].pricing.price_details.price`` (an id, or an expanded
  price since 2025-12-15), and its ``subscription``, ``subscription_item`` and ``proration`` to
  ``lines.data[].parent.subscription_item_details`` (or ``invoice_item_details``);
- ``invoice.paid``, ``charge`` and ``payment_intent`` went; payments are listed under
  ``invoice.payments`` (included only when expanded);
- ``subscription.current_period_start/end`` moved onto the subscription items;
- ``charge.refunds`` is no longer included unless expanded (2022-11-15).

Any id may arrive as a string or as the expanded object (``"customer": {"id": "cus_..."}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final, TypeVar, get_args

from billfold.domain import facts

_L = TypeVar("_L", bound=str)

ACCOUNT_METADATA_KEY: Final = "billfold_account"
PACKAGE_METADATA_KEY: Final = "billfold_package"
PLAN_METADATA_KEY: Final = "billfold_plan"


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
    try:
        context = _Context(
            event_type=event_type,
            event_created=_Reader(event, "event").required_integer("created"),
            livemode=event.get("livemode") is True,
        )
        return _read(handler, context, _Reader(event["data"]["object"], "data.object"))
    except _Malformed as exc:
        return facts.Ignored(reason=f"malformed {event_type} event {event['id']}: {exc}")


def checkout_session_fact(
    session: Mapping[str, Any],
    *,
    event_type: str = "checkout.session.completed",
    event_created: int | None = None,
) -> facts.CheckoutSessionFact | facts.Ignored:
    """What a checkout session retrieved from the API says, read as an ``event_type`` event
    would be. ``event_created`` defaults to the session's own ``created``."""
    fact = _translate_object(session, "checkout.session", event_type, event_created)
    if isinstance(fact, facts.CheckoutSessionFact | facts.Ignored):
        return fact
    return facts.Ignored(reason=f"cannot read {event_type} from checkout.session objects")


def subscription_fact(
    subscription: Mapping[str, Any],
    *,
    event_created: int,
    event_type: str = "customer.subscription.updated",
) -> facts.SubscriptionChanged | facts.SubscriptionNoted | facts.Ignored:
    """What a subscription retrieved from the API says: by default a ``SubscriptionChanged``
    (the state as of ``event_created``, the time the caller fetched it)."""
    fact = _translate_object(subscription, "subscription", event_type, event_created)
    if isinstance(fact, facts.SubscriptionChanged | facts.SubscriptionNoted | facts.Ignored):
        return fact
    return facts.Ignored(reason=f"cannot read {event_type} from subscription objects")


def invoice_fact(
    invoice: Mapping[str, Any],
    *,
    event_created: int,
    event_type: str = "invoice.paid",
) -> facts.InvoicePaid | facts.InvoicePaymentFailed | facts.InvoiceNoted | facts.Ignored:
    """What an invoice retrieved from the API says, read as an ``event_type`` event would be.

    By default an ``InvoicePaid``, whose ``paid`` says whether the invoice really is paid.
    """
    fact = _translate_object(invoice, "invoice", event_type, event_created)
    if isinstance(
        fact, facts.InvoicePaid | facts.InvoicePaymentFailed | facts.InvoiceNoted | facts.Ignored
    ):
        return fact
    return facts.Ignored(reason=f"cannot read {event_type} from invoice objects")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Context:
    """What a fact takes from its event rather than from the object."""

    event_type: str
    event_created: int
    livemode: bool  # the envelope's, for an object that does not say


# (the event, data.object) -> the fact
_Build = Callable[[_Context, "_Reader"], facts.Fact]


def _read(handler: tuple[str, _Build], context: _Context, obj: _Reader) -> facts.Fact:
    expected_object, build = handler
    found = obj.text("object")
    if found != expected_object:
        raise _Malformed(f"{obj.where}.object must be {expected_object!r}, got {found!r}")
    return build(context, obj)


def _translate_object(
    obj: object, expected_object: str, event_type: str, event_created: int | None
) -> facts.Fact:
    handler = _HANDLERS.get(event_type)
    if handler is None or handler[0] != expected_object:
        return facts.Ignored(reason=f"cannot read {event_type} from {expected_object} objects")
    if not isinstance(obj, Mapping):
        # The SDK's StripeObject is not a Mapping (stripe 16): its to_dict() is.
        return facts.Ignored(
            reason=f"not a Stripe {expected_object} object but {type(obj).__name__}; "
            "pass an SDK object's to_dict()"
        )
    reader = _Reader(obj, expected_object)
    label = obj.get("id") if isinstance(obj.get("id"), str) else "without an id"
    try:
        if event_created is None:
            event_created = reader.required_integer("created")
        elif isinstance(event_created, bool) or not isinstance(event_created, int):
            raise _Malformed(f"event_created must be an integer, got {_kind(event_created)}")
        context = _Context(event_type=event_type, event_created=event_created, livemode=False)
        return _read(handler, context, reader)
    except _Malformed as exc:
        return facts.Ignored(reason=f"malformed {event_type} object {label}: {exc}")


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

    def _missing(self, key: str) -> _Malformed:
        return _Malformed(f"{self.where}.{key} is missing")

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
            raise self._missing(key)
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
            raise self._missing(key)
        return value

    def expanded(self, key: str) -> _Reader | None:
        """The object behind a reference when Stripe sent it expanded; None for a bare id."""
        value = self.data.get(key)
        return _Reader(value, f"{self.where}.{key}") if isinstance(value, Mapping) else None

    def integer(self, key: str) -> int | None:
        """An integer (of any size or sign: the rules judge amounts), or None when missing or
        null. Never a float, never a boolean."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._bad(key, "an integer or null", value)
        return value

    def required_integer(self, key: str) -> int:
        value = self.integer(key)
        if value is None:
            raise self._missing(key)
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
            raise self._missing(key)
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

    def array(self, key: str) -> list[_Reader] | None:
        """The objects of a JSON array; None when missing or null."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise self._bad(key, "an array or null", value)
        readers = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise _Malformed(f"{self.where}.{key}[{index}] must be an object")
            readers.append(_Reader(item, f"{self.where}.{key}[{index}]"))
        return readers

    def items(self, key: str) -> tuple[list[_Reader], bool] | None:
        """The objects of a Stripe list (``{"data": [...], "has_more": ...}``) and whether it is
        complete; None when the list is missing or null."""
        listing = self.child(key)
        if listing is None:
            return None
        data = listing.data.get("data")
        if not isinstance(data, list):
            raise listing._bad("data", "an array", data)
        found = listing.array("data") or []
        return found, not listing.flag("has_more")

    def metadata(self, key: str) -> str | None:
        meta = self.child("metadata")
        return None if meta is None else meta.text(key)


_CHECKOUT_MODES: Final = get_args(facts.CheckoutMode)
_CHECKOUT_PAYMENT_STATUSES: Final = get_args(facts.CheckoutPaymentStatus)
_SUBSCRIPTION_STATUSES: Final = get_args(facts.SubscriptionStatus)
_REFUND_STATUSES: Final = get_args(facts.RefundStatus)
_DISPUTE_STATUSES: Final = get_args(facts.DisputeStatus)
_CLOSED_DISPUTE_STATUSES: Final = get_args(facts.ClosedDisputeStatus)


def _dedupe(values: Sequence[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v is not None))


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _livemode(context: _Context, obj: _Reader) -> bool:
    return obj.flag("livemode", default=context.livemode)


# -- checkout sessions -----------------------------------------------------------------------------

_CheckoutFactType = (
    type[facts.CheckoutCompleted]
    | type[facts.CheckoutAsyncSucceeded]
    | type[facts.CheckoutAsyncFailed]
    | type[facts.CheckoutExpired]
)


def _checkout(cls: _CheckoutFactType) -> _Build:
    def build(context: _Context, session: _Reader) -> facts.Fact:
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
            livemode=_livemode(context, session),
            created=session.required_integer("created"),
            event_created=context.event_created,
        )

    return build


# -- payment intents -------------------------------------------------------------------------------


def _payment_intent_succeeded(context: _Context, pi: _Reader) -> facts.Fact:
    return facts.PaymentIntentSucceeded(
        payment_intent_id=pi.required_text("id"),
        amount=pi.required_integer("amount"),
        amount_received=pi.required_integer("amount_received"),
        currency=pi.required_currency("currency"),
        customer_id=pi.ref("customer"),
        metadata_account=pi.metadata(ACCOUNT_METADATA_KEY),
        metadata_package=pi.metadata(PACKAGE_METADATA_KEY),
        livemode=_livemode(context, pi),
        created=pi.required_integer("created"),
        event_created=context.event_created,
    )


def _payment_intent_failed(context: _Context, pi: _Reader) -> facts.Fact:
    error = pi.child("last_payment_error")
    return facts.PaymentIntentFailed(
        payment_intent_id=pi.required_text("id"),
        amount=pi.required_integer("amount"),
        currency=pi.required_currency("currency"),
        customer_id=pi.ref("customer"),
        metadata_account=pi.metadata(ACCOUNT_METADATA_KEY),
        metadata_package=pi.metadata(PACKAGE_METADATA_KEY),
        last_error_message=error.text("message") if error else None,
        livemode=_livemode(context, pi),
        created=pi.required_integer("created"),
        event_created=context.event_created,
    )


# -- subscriptions ---------------------------------------------------------------------------------


def _price_of(holder: _Reader) -> str | None:
    """A subscription item's or (old) invoice line's price id, or its legacy plan's id."""
    return holder.ref("price") or holder.ref("plan")


def _lookup_key(holder: _Reader | None, key: str = "price") -> str | None:
    """The ``lookup_key`` of an expanded price (None when the price is only an id)."""
    price = holder.data.get(key) if holder is not None else None
    if not isinstance(price, Mapping):
        return None
    value = price.get("lookup_key")
    return value if isinstance(value, str) and value else None


def _subscription_item(
    item: _Reader, start: int | None, end: int | None
) -> facts.SubscriptionItemFact:
    return facts.SubscriptionItemFact(
        item_id=item.required_text("id"),
        price_id=_price_of(item),
        quantity=item.integer("quantity"),
        current_period_start=_first(item.integer("current_period_start"), start),
        current_period_end=_first(item.integer("current_period_end"), end),
        price_lookup_key=_lookup_key(item),
    )


def _subscription_state(context: _Context, sub: _Reader) -> facts.SubscriptionChanged:
    # Before basil the period is the subscription's; from basil on, each item's.
    top_start = sub.integer("current_period_start")
    top_end = sub.integer("current_period_end")
    listed = sub.items("items")
    items = tuple(
        _subscription_item(item, top_start, top_end) for item in (listed[0] if listed else [])
    )
    starts = [i.current_period_start for i in items if i.current_period_start is not None]
    ends = [i.current_period_end for i in items if i.current_period_end is not None]
    pause = sub.child("pause_collection")
    return facts.SubscriptionChanged(
        subscription_id=sub.required_text("id"),
        customer_id=sub.ref("customer"),
        status=sub.choice("status", _SUBSCRIPTION_STATUSES),
        items=items,
        items_complete=listed is not None and listed[1],
        price_ids=_dedupe([i.price_id for i in items]),
        quantity=items[0].quantity if len(items) == 1 else None,
        current_period_start=min(starts) if starts else top_start,
        current_period_end=max(ends) if ends else top_end,
        cancel_at_period_end=sub.flag("cancel_at_period_end"),
        cancel_at=sub.integer("cancel_at"),
        canceled_at=sub.integer("canceled_at"),
        ended_at=sub.integer("ended_at"),
        trial_start=sub.integer("trial_start"),
        trial_end=sub.integer("trial_end"),
        pause_collection=None
        if pause is None
        else facts.PauseCollection(
            behavior=pause.required_text("behavior"), resumes_at=pause.integer("resumes_at")
        ),
        pending_update=sub.child("pending_update") is not None,
        metadata_account=sub.metadata(ACCOUNT_METADATA_KEY),
        test_clock_id=sub.ref("test_clock"),
        deleted=context.event_type == "customer.subscription.deleted",
        event_type=context.event_type,
        livemode=_livemode(context, sub),
        event_created=context.event_created,
    )


def _subscription_changed(context: _Context, sub: _Reader) -> facts.Fact:
    return _subscription_state(context, sub)


def _subscription_noted(kind: facts.SubscriptionNote) -> _Build:
    def build(context: _Context, sub: _Reader) -> facts.Fact:
        state = _subscription_state(context, sub)
        return facts.SubscriptionNoted(
            kind=kind, **{f.name: getattr(state, f.name) for f in fields(state)}
        )

    return build


# -- invoices --------------------------------------------------------------------------------------

_LINE_PARENTS: Final = ("subscription_item_details", "invoice_item_details")


def _invoice_line(line: _Reader, invoice_currency: str) -> facts.InvoiceLineFact:
    # basil: what produced the line is under parent.<parent.type>; before: on the line itself.
    parent = line.child("parent")
    parent_type: str | None = None
    details: _Reader | None = None
    if parent is not None:
        parent_type = parent.text("type")
        if parent_type is None:  # no type: whichever details there are
            for candidate in _LINE_PARENTS:
                details = parent.child(candidate)
                if details is not None:
                    parent_type = candidate
                    break
        elif parent_type in _LINE_PARENTS:
            details = parent.child(parent_type)
    from_item = parent_type == "subscription_item_details"
    pricing = line.child("pricing")
    price_details = pricing.child("price_details") if pricing else None
    subscription_item = (details.ref("subscription_item") if details and from_item else None) or (
        line.ref("subscription_item")
    )
    subscription = (details.ref("subscription") if details else None) or line.ref("subscription")
    proration = (details.flag("proration") if details else False) or line.flag("proration")
    period = line.child("period")
    if period is None:
        raise _Malformed(f"{line.where}.period is missing")
    return facts.InvoiceLineFact(
        line_id=line.required_text("id"),
        price_id=(price_details.ref("price") if price_details else None) or _price_of(line),
        quantity=line.integer("quantity"),
        amount=line.required_integer("amount"),
        currency=line.currency("currency") or invoice_currency,
        period_start=period.required_integer("start"),
        period_end=period.required_integer("end"),
        proration=proration,
        subscription_id=subscription,
        subscription_item_id=subscription_item,
        # A proration of a subscription is the subscription's, whichever parent Stripe names.
        is_subscription=from_item
        or line.text("type") == "subscription"
        or subscription_item is not None
        or (proration and subscription is not None),
        price_lookup_key=_lookup_key(price_details) or _lookup_key(line),
    )


class _Invoice:
    """What every invoice fact shares, read once from either API shape."""

    __slots__ = (
        "amount_due",
        "billing_reason",
        "charge_id",
        "created",
        "currency",
        "customer_email",
        "customer_id",
        "invoice_id",
        "lines",
        "lines_complete",
        "livemode",
        "metadata_account",
        "payment_intent_ids",
        "payments_complete",
        "status",
        "subscription_id",
    )

    def __init__(self, context: _Context, invoice: _Reader) -> None:
        self.invoice_id = invoice.required_text("id")
        self.status = invoice.text("status")
        self.currency = invoice.required_currency("currency")
        self.amount_due = invoice.required_integer("amount_due")
        self.billing_reason = invoice.text("billing_reason")
        self.created = invoice.required_integer("created")
        self.livemode = _livemode(context, invoice)
        self.customer_id = invoice.ref("customer")
        customer = invoice.expanded("customer")
        self.customer_email = invoice.text("customer_email") or (
            customer.text("email") if customer else None
        )
        listed = invoice.items("lines")
        self.lines = tuple(
            _invoice_line(line, self.currency) for line in (listed[0] if listed else [])
        )
        self.lines_complete = listed is not None and listed[1]

        # basil: parent.subscription_details (when parent.type says so); before: top level.
        parent = invoice.child("parent")
        details = None
        if parent is not None and parent.text("type") in (None, "subscription_details"):
            details = parent.child("subscription_details")
        old_details = invoice.child("subscription_details")
        self.subscription_id = (
            (details.ref("subscription") if details else None)
            or invoice.ref("subscription")
            or next((ln.subscription_id for ln in self.lines if ln.is_subscription), None)
        )
        expanded = (details.expanded("subscription") if details else None) or invoice.expanded(
            "subscription"
        )
        self.metadata_account = (
            (details.metadata(ACCOUNT_METADATA_KEY) if details else None)
            or (old_details.metadata(ACCOUNT_METADATA_KEY) if old_details else None)
            or (expanded.metadata(ACCOUNT_METADATA_KEY) if expanded else None)
            or invoice.metadata(ACCOUNT_METADATA_KEY)
        )

        # basil: payments.data[].payment.payment_intent; before: payment_intent and charge.
        payments = invoice.items("payments")
        intents: list[str | None] = []
        for entry in payments[0] if payments else []:
            payment = entry.child("payment")
            intents.append(payment.ref("payment_intent") if payment else None)
        intents.append(invoice.ref("payment_intent"))
        self.payment_intent_ids = _dedupe(intents)
        self.charge_id = invoice.ref("charge")
        old_shape = "payment_intent" in invoice.data or "charge" in invoice.data
        self.payments_complete = (payments is not None and payments[1]) or old_shape


def _summary(lines: Sequence[facts.InvoiceLineFact]) -> list[facts.InvoiceLineFact]:
    """The lines that say which plan and period an invoice is for: its subscription lines that
    are not prorations, else every priced line."""
    return [ln for ln in lines if ln.is_subscription and not ln.proration] or [
        ln for ln in lines if ln.price_id
    ]


def _invoice_paid(context: _Context, invoice: _Reader) -> facts.Fact:
    head = _Invoice(context, invoice)
    status = head.status
    transitions = invoice.child("status_transitions")
    chosen = _summary(head.lines)
    starts = [ln.period_start for ln in chosen]
    ends = [ln.period_end for ln in chosen]
    return facts.InvoicePaid(
        invoice_id=head.invoice_id,
        status=status,
        paid=status == "paid" or invoice.flag("paid"),
        paid_at=transitions.integer("paid_at") if transitions else None,
        subscription_id=head.subscription_id,
        customer_id=head.customer_id,
        customer_email=head.customer_email,
        billing_reason=head.billing_reason,
        amount_paid=invoice.required_integer("amount_paid"),
        amount_due=head.amount_due,
        total=invoice.required_integer("total"),
        currency=head.currency,
        metadata_account=head.metadata_account,
        metadata_package=invoice.metadata(PACKAGE_METADATA_KEY),
        payment_intent_ids=head.payment_intent_ids,
        payments_complete=head.payments_complete,
        charge_id=head.charge_id,
        lines=head.lines,
        lines_complete=head.lines_complete,
        price_ids=_dedupe([ln.price_id for ln in chosen]),
        period_start=min(starts) if starts else None,
        period_end=max(ends) if ends else None,
        event_type=context.event_type,
        livemode=head.livemode,
        created=head.created,
        event_created=context.event_created,
    )


def _invoice_payment_failed(context: _Context, invoice: _Reader) -> facts.Fact:
    head = _Invoice(context, invoice)
    return facts.InvoicePaymentFailed(
        invoice_id=head.invoice_id,
        status=head.status,
        subscription_id=head.subscription_id,
        customer_id=head.customer_id,
        customer_email=head.customer_email,
        amount_due=head.amount_due,
        currency=head.currency,
        attempt_count=invoice.integer("attempt_count") or 0,
        next_payment_attempt=invoice.integer("next_payment_attempt"),
        billing_reason=head.billing_reason,
        metadata_account=head.metadata_account,
        payment_intent_ids=head.payment_intent_ids,
        event_type=context.event_type,
        livemode=head.livemode,
        created=head.created,
        event_created=context.event_created,
    )


def _invoice_noted(kind: facts.InvoiceNote) -> _Build:
    def build(context: _Context, invoice: _Reader) -> facts.Fact:
        head = _Invoice(context, invoice)
        return facts.InvoiceNoted(
            kind=kind,
            invoice_id=head.invoice_id,
            status=head.status,
            subscription_id=head.subscription_id,
            customer_id=head.customer_id,
            amount_due=head.amount_due,
            amount_paid=invoice.required_integer("amount_paid"),
            currency=head.currency,
            billing_reason=head.billing_reason,
            metadata_account=head.metadata_account,
            payment_intent_ids=head.payment_intent_ids,
            event_type=context.event_type,
            livemode=head.livemode,
            created=head.created,
            event_created=context.event_created,
        )

    return build


# -- refunds ---------------------------------------------------------------------------------------


def _refund_info(refund: _Reader) -> facts.RefundInfo:
    return facts.RefundInfo(
        refund_id=refund.required_text("id"),
        amount=refund.required_integer("amount"),
        status=refund.choice("status", _REFUND_STATUSES),
    )


def refund_info(refund: Mapping[str, Any]) -> facts.RefundInfo | None:
    """A refund object listed from the API, or None when it cannot be read."""
    try:
        return _refund_info(_Reader(refund, "refund"))
    except _Malformed:
        return None


def _charge_refunded(context: _Context, charge: _Reader) -> facts.Fact:
    listed = charge.items("refunds")
    refunds = tuple(_refund_info(refund) for refund in (listed[0] if listed else []))
    amount = charge.required_integer("amount")
    amount_refunded = charge.required_integer("amount_refunded")
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
        livemode=_livemode(context, charge),
        event_created=context.event_created,
    )


def _refund_changed(context: _Context, refund: _Reader) -> facts.Fact:
    return facts.RefundChanged(
        refund_id=refund.required_text("id"),
        charge_id=refund.ref("charge"),
        payment_intent_id=refund.ref("payment_intent"),
        amount=refund.required_integer("amount"),
        currency=refund.required_currency("currency"),
        status=refund.choice("status", _REFUND_STATUSES),
        reason=refund.text("reason"),
        failure_reason=refund.text("failure_reason"),
        event_type=context.event_type,
        livemode=_livemode(context, refund),
        created=refund.required_integer("created"),
        event_created=context.event_created,
    )


# -- disputes --------------------------------------------------------------------------------------


def _dispute_opened(context: _Context, dispute: _Reader) -> facts.Fact:
    return facts.DisputeOpened(
        dispute_id=dispute.required_text("id"),
        charge_id=dispute.required_ref("charge"),
        payment_intent_id=dispute.ref("payment_intent"),
        amount=dispute.required_integer("amount"),
        currency=dispute.required_currency("currency"),
        status=dispute.choice("status", _DISPUTE_STATUSES),
        reason=dispute.text("reason"),
        livemode=_livemode(context, dispute),
        event_created=context.event_created,
    )


def _dispute_closed(context: _Context, dispute: _Reader) -> facts.Fact:
    return facts.DisputeClosed(
        dispute_id=dispute.required_text("id"),
        charge_id=dispute.required_ref("charge"),
        payment_intent_id=dispute.ref("payment_intent"),
        amount=dispute.required_integer("amount"),
        currency=dispute.required_currency("currency"),
        status=dispute.choice("status", _CLOSED_DISPUTE_STATUSES),
        reason=dispute.text("reason"),
        livemode=_livemode(context, dispute),
        event_created=context.event_created,
    )


def _dispute_balance_transaction(txn: _Reader) -> facts.DisputeBalanceTransaction:
    return facts.DisputeBalanceTransaction(
        balance_transaction_id=txn.required_text("id"),
        amount=txn.required_integer("amount"),
        fee=txn.required_integer("fee"),
        net=txn.required_integer("net"),
        currency=txn.required_currency("currency"),
        reporting_category=txn.text("reporting_category"),
    )


def _dispute_noted(kind: facts.DisputeNote) -> _Build:
    def build(context: _Context, dispute: _Reader) -> facts.Fact:
        return facts.DisputeNoted(
            kind=kind,
            dispute_id=dispute.required_text("id"),
            charge_id=dispute.required_ref("charge"),
            payment_intent_id=dispute.ref("payment_intent"),
            amount=dispute.required_integer("amount"),
            currency=dispute.required_currency("currency"),
            status=dispute.choice("status", _DISPUTE_STATUSES),
            reason=dispute.text("reason"),
            balance_transactions=tuple(
                _dispute_balance_transaction(txn)
                for txn in dispute.array("balance_transactions") or []
            ),
            event_type=context.event_type,
            livemode=_livemode(context, dispute),
            event_created=context.event_created,
        )

    return build


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
    "customer.subscription.trial_will_end": (
        "subscription",
        _subscription_noted("trial_will_end"),
    ),
    "customer.subscription.pending_update_applied": (
        "subscription",
        _subscription_noted("pending_update_applied"),
    ),
    "customer.subscription.pending_update_expired": (
        "subscription",
        _subscription_noted("pending_update_expired"),
    ),
    "invoice.paid": ("invoice", _invoice_paid),
    "invoice.payment_succeeded": ("invoice", _invoice_paid),
    "invoice.payment_failed": ("invoice", _invoice_payment_failed),
    "invoice.voided": ("invoice", _invoice_noted("voided")),
    "invoice.marked_uncollectible": ("invoice", _invoice_noted("marked_uncollectible")),
    "invoice.payment_action_required": ("invoice", _invoice_noted("payment_action_required")),
    "charge.refunded": ("charge", _charge_refunded),
    "refund.created": ("refund", _refund_changed),
    "refund.updated": ("refund", _refund_changed),
    "refund.failed": ("refund", _refund_changed),
    "charge.refund.updated": ("refund", _refund_changed),
    "charge.dispute.created": ("dispute", _dispute_opened),
    "charge.dispute.closed": ("dispute", _dispute_closed),
    "charge.dispute.updated": ("dispute", _dispute_noted("updated")),
    "charge.dispute.funds_withdrawn": ("dispute", _dispute_noted("funds_withdrawn")),
    "charge.dispute.funds_reinstated": ("dispute", _dispute_noted("funds_reinstated")),
}

HANDLED_EVENT_TYPES: Final = frozenset(_HANDLERS)


# -- objects read back from the API ----------------------------------------------------------------

_SESSION_EVENT_FOR_STATUS: Final[Mapping[str, str]] = {
    "complete": "checkout.session.completed",
    "expired": "checkout.session.expired",
}


def read_session(session: Mapping[str, Any]) -> facts.CheckoutSessionFact | facts.Ignored:
    """A checkout session retrieved from the API, read as the webhook's event for its status would
    be (an open session as ``completed`` would: its ``payment_status`` says it is unpaid)."""
    status = session.get("status")
    event_type = _SESSION_EVENT_FOR_STATUS.get(
        status if isinstance(status, str) else "", "checkout.session.completed"
    )
    return checkout_session_fact(session, event_type=event_type)

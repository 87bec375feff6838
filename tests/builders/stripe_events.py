"""Build full Stripe webhook events from Stripe's own example objects.

Each builder copies Stripe's example object, changes the fields a case needs (and the fields of the
example that would contradict it: an active subscription has no ``ended_at``), wraps it in an event
envelope with a fresh ``evt_...`` id, and returns plain dicts, exactly as a webhook body parses.
Any other field of the object can be overridden by keyword: ``charge_refunded(status="failed")``.

Provenance: ``fixtures3.json`` next to this module is a subset (the resources used here) of
``openapi/fixtures3.json`` from https://github.com/stripe/openapi, commit
f6c2a48fbac2819d1feba8143d942ffc65e1c0d2, MIT licence, copied unchanged from
``../shared/stripe/fixtures3.json``. The copy is preferred, so a clone without ``shared/`` works.

Shapes: by default objects have the shape of API version ``2025-03-31.basil`` and later (invoice
subscription under ``parent.subscription_details``, line prices under ``pricing.price_details``,
subscription periods on the items, payments under ``invoice.payments`` when included, charges
without ``refunds``); later versions (``ENDIVE_API_VERSION``) keep that shape, and may expand a
line's price (``price_expanded=True``). ``legacy=True`` builds the older shape of
``LEGACY_API_VERSION`` (``invoice.subscription``, ``invoice.subscription_details``,
``invoice.paid``, ``invoice.payment_intent``, ``invoice.charge``, ``lines.data[].price``,
``lines.data[].type``, ``subscription.current_period_*``).
"""

from __future__ import annotations

import copy
import enum
import json
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

from billfold.adapters.stripe import signature

Obj = dict[str, Any]

API_VERSION: Final = "2025-03-31.basil"
LEGACY_API_VERSION: Final = "2024-06-20"
ENDIVE_API_VERSION: Final = "2026-10-28.endive"

_HERE = Path(__file__).resolve().parent
_COPY = _HERE / "fixtures3.json"
_SHARED = _HERE.parents[1] / ".." / "shared" / "stripe" / "fixtures3.json"
_ALPHABET = string.ascii_letters + string.digits
DAY: Final = 86_400
MONTH: Final = 30 * DAY


class _Fresh(enum.Enum):
    FRESH = "fresh"


FRESH: Final = _Fresh.FRESH
"""Default of an id argument where None means "no such object": make up a new id."""


@cache
def _resources() -> Mapping[str, Obj]:
    path = _COPY if _COPY.exists() else _SHARED
    resources: Mapping[str, Obj] = json.loads(path.read_text("utf-8"))["resources"]
    return resources


def fixture(name: str) -> Obj:
    """A fresh deep copy of Stripe's example ``name`` object (``"invoice"``, ``"charge"``, ...)."""
    return copy.deepcopy(_resources()[name])


def new_id(prefix: str) -> str:
    """A Stripe-looking id, unique in practice: ``new_id("evt")`` -> ``evt_1Pq3...``."""
    return f"{prefix}_1" + "".join(secrets.choice(_ALPHABET) for _ in range(23))


def now() -> int:
    return int(time.time())


def _fresh(value: Any, prefix: str) -> Any:
    return new_id(prefix) if value is FRESH else value


def _apply(obj: Obj, fields: Mapping[str, Any]) -> Obj:
    for key, value in fields.items():
        if key not in obj:
            raise TypeError(f"{obj.get('object')} has no field {key!r}")
        obj[key] = value
    return obj


# -- the envelope ----------------------------------------------------------------------------------


def any_event(
    type: str,
    obj: Mapping[str, Any],
    *,
    event_id: str | None = None,
    created: int | None = None,
    api_version: str | None = API_VERSION,
    livemode: bool | None = None,
    previous_attributes: Mapping[str, Any] | None = None,
) -> Obj:
    """Wrap ``obj`` in an event envelope of ``type``, with a fresh ``evt_`` id unless given."""
    event = fixture("event")
    data: Obj = {"object": copy.deepcopy(dict(obj))}
    if previous_attributes is not None:
        data["previous_attributes"] = dict(previous_attributes)
    event.update(
        id=event_id or new_id("evt"),
        type=type,
        created=now() if created is None else created,
        api_version=api_version,
        livemode=bool(obj.get("livemode", False)) if livemode is None else livemode,
        pending_webhooks=1,
        request={"id": None, "idempotency_key": None},
        data=data,
    )
    return event


def signed(
    event: Mapping[str, Any], secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery of ``event``, signed with ``secret`` as Stripe does."""
    body = json.dumps(event, indent=2).encode()
    return body, {
        "Stripe-Signature": signature.sign(body, secret, timestamp),
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }


# -- customers -------------------------------------------------------------------------------------


def customer(*, customer_id: str | None = None, email: str | None = None, **fields: Any) -> Obj:
    """A customer object, for the places where Stripe sends one expanded."""
    obj = fixture("customer")
    obj.update(id=customer_id or new_id("cus"), email=email, discount=None, created=now())
    return _apply(obj, fields)


# -- checkout sessions -----------------------------------------------------------------------------


def checkout_session(
    *,
    session_id: str | None = None,
    amount_total: int | None = 499,
    currency: str | None = "usd",
    metadata: Mapping[str, str] | None = None,
    client_reference_id: str | None = None,
    customer: str | Obj | None = None,
    customer_email: str | None = None,
    email: str | None = "jenny.rosen@example.com",
    payment_status: str = "paid",
    mode: str = "payment",
    status: str = "complete",
    payment_intent: str | _Fresh | None = FRESH,
    subscription: str | _Fresh | None = FRESH,
    invoice: str | None = None,
    created: int | None = None,
    **fields: Any,
) -> Obj:
    """A checkout session. ``customer_email`` is the address the session was created with;
    ``email`` the one the customer typed (``customer_details.email``)."""
    obj = fixture("checkout.session")
    sid = session_id or new_id("cs_test")
    created = now() if created is None else created
    if payment_intent is FRESH:
        payment_intent = new_id("pi") if mode == "payment" and status != "expired" else None
    if subscription is FRESH:
        subscription = new_id("sub") if mode == "subscription" and status == "complete" else None
    obj.update(
        id=sid,
        amount_total=amount_total,
        amount_subtotal=amount_total,
        currency=currency,
        metadata=dict(metadata or {}),
        client_reference_id=client_reference_id,
        customer=customer,
        customer_email=customer_email,
        payment_status=payment_status,
        mode=mode,
        status=status,
        payment_intent=payment_intent,
        subscription=subscription,
        invoice=invoice,
        created=created,
        expires_at=created + DAY,
        url=None if status != "open" else f"https://checkout.stripe.com/c/pay/{sid}",
        shipping_cost=None,
        shipping_address_collection=None,
        currency_conversion=None,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        invoice_creation={
            "enabled": False,
            "invoice_data": obj["invoice_creation"]["invoice_data"],
        },
    )
    obj["customer_details"]["email"] = email
    return _apply(obj, fields)


def _session_event(type_: str, fields: dict[str, Any], **defaults: Any) -> Obj:
    envelope = {k: fields.pop(k) for k in ("event_id", "event_created") if k in fields}
    for key, value in defaults.items():
        fields.setdefault(key, value)
    session = checkout_session(**fields)
    return any_event(
        type_, session, event_id=envelope.get("event_id"), created=envelope.get("event_created")
    )


def checkout_session_completed(**fields: Any) -> Obj:
    """``checkout.session.completed``; ``payment_status="unpaid"`` for a delayed method.

    Takes :func:`checkout_session`'s arguments plus ``event_id`` and ``event_created``.
    """
    return _session_event("checkout.session.completed", fields)


def async_payment_succeeded(**fields: Any) -> Obj:
    return _session_event("checkout.session.async_payment_succeeded", fields)


def async_payment_failed(**fields: Any) -> Obj:
    return _session_event("checkout.session.async_payment_failed", fields, payment_status="unpaid")


def session_expired(**fields: Any) -> Obj:
    return _session_event(
        "checkout.session.expired", fields, payment_status="unpaid", status="expired"
    )


# -- payment intents -------------------------------------------------------------------------------


def payment_intent(
    *,
    payment_intent_id: str | None = None,
    amount: int = 499,
    currency: str = "usd",
    metadata: Mapping[str, str] | None = None,
    customer: str | Obj | None = None,
    status: str = "succeeded",
    last_error_message: str | None = None,
    created: int | None = None,
    **fields: Any,
) -> Obj:
    obj = fixture("payment_intent")
    pid = payment_intent_id or new_id("pi")
    succeeded = status == "succeeded"
    obj.update(
        id=pid,
        amount=amount,
        amount_received=amount if succeeded else 0,
        currency=currency,
        metadata=dict(metadata or {}),
        customer=customer,
        status=status,
        client_secret=f"{pid}_secret_{new_id('s')[2:]}",
        created=now() if created is None else created,
        canceled_at=None,
        latest_charge=new_id("ch") if succeeded else None,
        last_payment_error=None,
        next_action=None,
        processing=None,
        transfer_data=None,
    )
    if last_error_message is not None:
        obj["last_payment_error"] = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": last_error_message,
        }
    return _apply(obj, fields)


def _envelope_of(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": fields.pop("event_id", None),
        "created": fields.pop("event_created", None),
    }


def payment_intent_succeeded(**fields: Any) -> Obj:
    envelope = _envelope_of(fields)
    return any_event("payment_intent.succeeded", payment_intent(**fields), **envelope)


def payment_intent_failed(**fields: Any) -> Obj:
    envelope = _envelope_of(fields)
    fields.setdefault("status", "requires_payment_method")
    fields.setdefault("last_error_message", "Your card was declined.")
    return any_event("payment_intent.payment_failed", payment_intent(**fields), **envelope)


# -- charges, refunds, disputes --------------------------------------------------------------------


def refund(
    *,
    refund_id: str | None = None,
    amount: int = 499,
    currency: str = "usd",
    charge: str | None = None,
    payment_intent: str | None = None,
    status: str = "succeeded",
    reason: str | None = None,
    failure_reason: str | None = None,
    created: int | None = None,
    **fields: Any,
) -> Obj:
    """A refund of ``charge`` (a fresh one unless given). A ``failed`` refund carries Stripe's
    ``failure_reason`` (``expired_or_canceled_card`` unless given) and the balance transaction
    that gave the money back."""
    obj = fixture("refund")
    failed = status == "failed"
    obj.update(
        id=refund_id or new_id("re"),
        amount=amount,
        currency=currency,
        charge=charge or new_id("ch"),
        payment_intent=payment_intent,
        status=status,
        reason=reason,
        created=now() if created is None else created,
        balance_transaction=new_id("txn"),
    )
    if failed:
        obj["failure_reason"] = failure_reason or "expired_or_canceled_card"
        obj["failure_balance_transaction"] = new_id("txn")
    return _apply(obj, fields)


def charge(
    *,
    charge_id: str | None = None,
    amount: int = 499,
    amount_refunded: int = 0,
    currency: str = "usd",
    payment_intent: str | _Fresh | None = FRESH,
    customer: str | Obj | None = None,
    refunds: Sequence[Obj] | None = None,
    include_refunds: bool = False,
    **fields: Any,
) -> Obj:
    """A captured card charge. Its ``refunds`` list is included only when ``include_refunds``
    (Stripe leaves it out since API version 2022-11-15 unless it is expanded)."""
    obj = fixture("charge")
    cid = charge_id or new_id("ch")
    obj.update(
        id=cid,
        amount=amount,
        amount_captured=amount,
        amount_refunded=amount_refunded,
        captured=True,
        currency=currency,
        customer=customer,
        payment_intent=_fresh(payment_intent, "pi"),
        refunded=amount_refunded >= amount,
        created=now(),
        source=None,
        transfer_data=None,
        receipt_url=None,
    )
    if include_refunds:
        obj["refunds"] = {
            "object": "list",
            "data": list(refunds or []),
            "has_more": False,
            "url": f"/v1/charges/{cid}/refunds",
        }
    else:
        del obj["refunds"]
    return _apply(obj, fields)


def charge_refunded(
    *,
    charge_id: str | None = None,
    amount: int = 499,
    amount_refunded: int | None = None,
    currency: str = "usd",
    payment_intent: str | _Fresh | None = FRESH,
    refunds: Sequence[Obj] | None = None,
    include_refunds: bool = True,
    event_id: str | None = None,
    event_created: int | None = None,
    **fields: Any,
) -> Obj:
    """``charge.refunded``: by default fully refunded by one refund, listed in the charge.

    ``refunds`` gives the charge's refunds (see :func:`refund`); ``amount_refunded`` defaults to
    their sum, or to ``amount`` when none are given.
    """
    cid = charge_id or new_id("ch")
    pi = _fresh(payment_intent, "pi")
    if refunds is None:
        total = amount if amount_refunded is None else amount_refunded
        refunds = [refund(amount=total, currency=currency, charge=cid, payment_intent=pi)]
    if amount_refunded is None:
        amount_refunded = sum(r["amount"] for r in refunds)
    obj = charge(
        charge_id=cid,
        amount=amount,
        amount_refunded=amount_refunded,
        currency=currency,
        payment_intent=pi,
        refunds=refunds,
        include_refunds=include_refunds,
        **fields,
    )
    return any_event("charge.refunded", obj, event_id=event_id, created=event_created)


def dispute(
    *,
    dispute_id: str | None = None,
    charge: str | Obj | None = None,
    payment_intent: str | _Fresh | None = FRESH,
    amount: int = 499,
    currency: str = "usd",
    status: str = "needs_response",
    reason: str = "fraudulent",
    **fields: Any,
) -> Obj:
    obj = fixture("dispute")
    obj.update(
        id=dispute_id or new_id("dp"),
        charge=charge or new_id("ch"),
        payment_intent=_fresh(payment_intent, "pi"),
        amount=amount,
        currency=currency,
        status=status,
        reason=reason,
        created=now(),
    )
    obj["payment_method_details"]["card"]["case_type"] = "chargeback"
    return _apply(obj, fields)


def dispute_created(**fields: Any) -> Obj:
    envelope = _envelope_of(fields)
    return any_event("charge.dispute.created", dispute(**fields), **envelope)


def dispute_closed(**fields: Any) -> Obj:
    """``charge.dispute.closed``, by default ``lost``."""
    envelope = _envelope_of(fields)
    fields.setdefault("status", "lost")
    return any_event("charge.dispute.closed", dispute(**fields), **envelope)


def refund_event(
    type: str = "refund.updated",
    *,
    event_id: str | None = None,
    event_created: int | None = None,
    **fields: Any,
) -> Obj:
    """``refund.created/updated/failed`` or ``charge.refund.updated``, about one refund.

    ``refund.failed`` defaults to a ``failed`` refund with Stripe's ``failure_reason``.
    """
    if type == "refund.failed":
        fields.setdefault("status", "failed")
    return any_event(type, refund(**fields), event_id=event_id, created=event_created)


def balance_transaction(
    *,
    amount: int,
    fee: int = 0,
    currency: str = "usd",
    source: str | None = None,
    reporting_category: str = "dispute",
    **fields: Any,
) -> Obj:
    """A balance transaction, as a dispute lists them: ``amount`` is negative when funds are
    withdrawn; ``net`` is ``amount - fee``."""
    obj = fixture("balance_transaction")
    obj.update(
        id=new_id("txn"),
        amount=amount,
        fee=fee,
        net=amount - fee,
        currency=currency,
        source=source,
        reporting_category=reporting_category,
        type="adjustment",
        description="Chargeback withdrawal" if amount < 0 else "Chargeback reversal",
        created=now(),
        available_on=now(),
        fee_details=[]
        if fee == 0
        else [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": "Dispute fee",
                "type": "stripe_fee",
            }
        ],
    )
    return _apply(obj, fields)


def dispute_event(
    type: str = "charge.dispute.updated",
    *,
    event_id: str | None = None,
    event_created: int | None = None,
    **fields: Any,
) -> Obj:
    """``charge.dispute.<type>``, e.g. ``funds_withdrawn`` (which, unless ``balance_transactions``
    is given, lists the withdrawal of the amount and a 1500 fee) or ``funds_reinstated``."""
    full = type if type.startswith("charge.dispute.") else f"charge.dispute.{type}"
    obj = dispute(**fields)
    if "balance_transactions" not in fields:
        amount, currency = obj["amount"], obj["currency"]
        withdrawn = balance_transaction(
            amount=-amount, fee=1500, currency=currency, source=obj["id"]
        )
        if full == "charge.dispute.funds_withdrawn":
            obj["balance_transactions"] = [withdrawn]
        elif full == "charge.dispute.funds_reinstated":
            reinstated = balance_transaction(
                amount=amount,
                currency=currency,
                source=obj["id"],
                reporting_category="dispute_reversal",
            )
            obj["balance_transactions"] = [withdrawn, reinstated]
    return any_event(full, obj, event_id=event_id, created=event_created)


# -- subscriptions ---------------------------------------------------------------------------------


def subscription_item(
    *,
    subscription_id: str,
    price_id: str = "price_pro_monthly",
    quantity: int | None = 1,
    current_period_start: int | None = None,
    current_period_end: int | None = None,
    item_id: str | None = None,
    legacy: bool = False,
) -> Obj:
    """One item of a subscription, from Stripe's example item: with its own period from basil
    on (``legacy=False``), without one before (the period is then the subscription's)."""
    item: dict[str, Any] = copy.deepcopy(fixture("subscription")["items"]["data"][0])
    start = now() if current_period_start is None else current_period_start
    end = start + MONTH if current_period_end is None else current_period_end
    item.update(
        id=item_id or new_id("si"),
        subscription=subscription_id,
        created=start,
        quantity=quantity,
        billing_thresholds=None,
    )
    item["price"].update(id=price_id, product=f"prod_{price_id}", transform_quantity=None)
    item["plan"].update(
        id=price_id,
        amount=item["price"]["unit_amount"],
        amount_decimal=item["price"]["unit_amount_decimal"],
        billing_scheme="per_unit",
        currency="usd",
        interval_count=1,
        livemode=False,
        product=f"prod_{price_id}",
        transform_usage=None,
    )
    if legacy:
        del item["current_period_start"], item["current_period_end"]
    else:
        item.update(current_period_start=start, current_period_end=end)
    return item


def subscription(
    *,
    subscription_id: str | None = None,
    customer: str | Obj | _Fresh | None = FRESH,
    status: str = "active",
    price_ids: Sequence[str] = ("price_pro_monthly",),
    quantity: int | None = 1,
    items: Sequence[Obj] | None = None,
    current_period_start: int | None = None,
    current_period_end: int | None = None,
    cancel_at_period_end: bool = False,
    cancel_at: int | None = None,
    metadata: Mapping[str, str] | None = None,
    legacy: bool = False,
    **fields: Any,
) -> Obj:
    """A subscription with one item per price (or the ``items`` given, see
    :func:`subscription_item`); the period is on the items unless ``legacy``, where it is on the
    subscription. Trials, ``pause_collection``, ``pending_update`` and ``test_clock`` are plain
    fields of the object: pass them by keyword."""
    obj = fixture("subscription")
    sid = subscription_id or new_id("sub")
    start = now() if current_period_start is None else current_period_start
    end = start + MONTH if current_period_end is None else current_period_end
    if items is None:
        items = [
            subscription_item(
                subscription_id=sid,
                price_id=price_id,
                quantity=quantity,
                current_period_start=start,
                current_period_end=end,
                legacy=legacy,
            )
            for price_id in price_ids
        ]
    obj["items"].update(data=list(items), url=f"/v1/subscription_items?subscription={sid}")
    obj.update(
        id=sid,
        customer=_fresh(customer, "cus"),
        status=status,
        cancel_at_period_end=cancel_at_period_end,
        cancel_at=cancel_at,
        canceled_at=now() if status == "canceled" else None,
        ended_at=now() if status in ("canceled", "incomplete_expired") else None,
        metadata=dict(metadata or {}),
        billing_cycle_anchor=start,
        billing_cycle_anchor_config=None,
        start_date=start,
        created=start,
        trial_start=None,
        trial_end=None,
        pause_collection=None,
        pending_update=None,
        next_pending_invoice_item_invoice=None,
        pending_invoice_item_interval=None,
        transfer_data=None,
        billing_schedules=[],
        latest_invoice=new_id("in"),
    )
    if legacy:
        obj.update(current_period_start=start, current_period_end=end)
    return _apply(obj, fields)


def subscription_event(
    type: str = "customer.subscription.updated",
    *,
    event_id: str | None = None,
    event_created: int | None = None,
    api_version: str | None = None,
    previous_attributes: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Obj:
    """``customer.subscription.<type>``; ``type`` may be short (``"deleted"``). The envelope's
    API version follows the shape (``legacy``) unless given."""
    full = type if type.startswith("customer.subscription.") else f"customer.subscription.{type}"
    if full == "customer.subscription.deleted":
        fields.setdefault("status", "canceled")
    if full == "customer.subscription.paused":
        fields.setdefault("status", "paused")
    if api_version is None:
        api_version = LEGACY_API_VERSION if fields.get("legacy") else API_VERSION
    return any_event(
        full,
        subscription(**fields),
        event_id=event_id,
        created=event_created,
        api_version=api_version,
        previous_attributes=previous_attributes,
    )


# -- invoices --------------------------------------------------------------------------------------


def price(price_id: str, *, unit_amount: int = 2000, currency: str = "usd") -> Obj:
    """A recurring monthly price, as Stripe expands it."""
    obj = fixture("price")
    obj.update(
        id=price_id,
        product=f"prod_{price_id}",
        unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount),
        currency=currency,
        transform_quantity=None,
    )
    return obj


def invoice_line(
    *,
    invoice_id: str,
    subscription: str | None,
    price_id: str | None,
    amount: int,
    currency: str = "usd",
    period_start: int,
    period_end: int,
    proration: bool = False,
    legacy: bool = False,
    quantity: int | None = 1,
    line_id: str | None = None,
    subscription_item: str | _Fresh | None = FRESH,
    price_expanded: bool = False,
) -> Obj:
    """One invoice line: a subscription item's charge (or proration) when ``subscription`` is
    given, else a one-off invoice item's.

    Basil shape: ``parent.subscription_item_details`` (or ``invoice_item_details``) and
    ``pricing.price_details.price``, an id, or with ``price_expanded`` the price object (as
    Stripe sends it since 2025-12-15). Legacy shape: ``type``, ``subscription``,
    ``subscription_item``, ``proration``, and ``price`` and ``plan`` objects.
    """
    line: Obj = copy.deepcopy(fixture("invoice")["lines"]["data"][0])
    unit = amount // quantity if quantity else amount
    line.update(
        id=line_id or new_id("il"),
        invoice=invoice_id,
        amount=amount,
        currency=currency,
        period={"start": period_start, "end": period_end},
        quantity=quantity,
        subtotal=amount,
        description=(
            ("Unused time on Pro" if amount < 0 else "Remaining time on Elite")
            if proration
            else f"{quantity} x Pro (at $20.00 / month)"
            if subscription
            else "One-off item"
        ),
        discountable=not proration,
        pretax_credit_amounts=[],
        taxes=[],
    )
    item_id = _fresh(subscription_item, "si") if subscription else None
    invoice_item = new_id("ii") if proration or not subscription else None
    if legacy:
        del line["parent"], line["pricing"]
        line_price = None if price_id is None else price(price_id, unit_amount=unit)
        line_plan = None
        if price_id is not None:
            line_plan = fixture("plan")
            line_plan.update(id=price_id, product=f"prod_{price_id}", amount=unit)
        line.update(
            type="subscription" if subscription and not proration else "invoiceitem",
            invoice_item=invoice_item,
            subscription=subscription,
            subscription_item=item_id,
            proration=proration,
            proration_details={"credit_line_item": None},
            price=line_price,
            plan=line_plan,
            unit_amount_excluding_tax=str(unit),
        )
        return line
    if subscription:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription,
                "subscription_item": item_id,
            },
        }
    else:
        parent = {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
        }
    details: Obj | None = None
    if price_id is not None:
        details = {
            "price": price(price_id, unit_amount=unit) if price_expanded else price_id,
            "product": f"prod_{price_id}",
        }
    line.update(
        subscription=None,
        parent=parent,
        pricing={
            "type": "price_details",
            "price_details": details,
            "unit_amount_decimal": str(unit),
        },
    )
    return line


def invoice_payment(
    *,
    invoice_id: str,
    payment_intent: str | Obj,
    amount: int,
    currency: str = "usd",
    status: str = "paid",
    created: int | None = None,
) -> Obj:
    """One entry of a basil invoice's ``payments`` list: a payment intent that paid it (or, with
    ``status="open"``, one that is still trying)."""
    obj = fixture("invoice_payment")
    at = now() if created is None else created
    paid = status == "paid"
    obj.update(
        id=new_id("inpay"),
        invoice=invoice_id,
        amount_paid=amount if paid else None,
        amount_requested=amount,
        currency=currency,
        created=at,
        livemode=False,
        payment={"type": "payment_intent", "payment_intent": payment_intent},
        status=status,
        status_transitions={"canceled_at": None, "paid_at": at if paid else None},
    )
    return obj


def invoice(
    *,
    invoice_id: str | None = None,
    subscription: str | _Fresh | None = FRESH,
    customer: str | Obj | _Fresh | None = FRESH,
    price_ids: Sequence[str] = ("price_pro_monthly",),
    period_start: int | None = None,
    period_end: int | None = None,
    amount_paid: int = 2000,
    currency: str = "usd",
    billing_reason: str = "subscription_cycle",
    status: str = "paid",
    lines: Sequence[Obj] | None = None,
    lines_has_more: bool = False,
    metadata: Mapping[str, str] | None = None,
    subscription_metadata: Mapping[str, str] | None = None,
    payment_intent: str | Obj | _Fresh | None = FRESH,
    include_payments: bool = False,
    legacy: bool = False,
    **fields: Any,
) -> Obj:
    """An invoice with one line per price, for ``subscription`` (None: a one-off invoice).

    The lines cover ``period_start..period_end`` (the paid period); the invoice's own
    ``period_start/end``, as Stripe sets them for a renewal, are those of the period before.
    ``metadata`` is the invoice's own; ``subscription_metadata`` the snapshot of the
    subscription's that Stripe puts on a subscription invoice (basil
    ``parent.subscription_details.metadata``, legacy ``subscription_details.metadata``).

    ``payment_intent`` (fresh unless given; None for a $0 or draft invoice) is the attempt that
    paid or tries to pay: legacy ``payment_intent`` and ``charge``; in the basil shape it appears
    only in the ``payments`` list, which Stripe includes only when expanded
    (``include_payments``).
    """
    obj = fixture("invoice")
    iid = invoice_id or new_id("in")
    sub = _fresh(subscription, "sub")
    start = now() if period_start is None else period_start
    end = start + MONTH if period_end is None else period_end
    paid = status == "paid"
    if lines is None:
        share = amount_paid // max(len(price_ids), 1) if paid else 2000
        lines = [
            invoice_line(
                invoice_id=iid,
                subscription=sub,
                price_id=price_id,
                amount=share,
                currency=currency,
                period_start=start,
                period_end=end,
                legacy=legacy,
            )
            for price_id in price_ids
        ]
    total = sum(line["amount"] for line in lines)
    if payment_intent is FRESH:
        attempted = status in ("paid", "open", "uncollectible") and total > 0
        payment_intent = new_id("pi") if attempted else None
    obj.update(
        id=iid,
        customer=_fresh(customer, "cus"),
        customer_email="jenny.rosen@example.com",
        currency=currency,
        amount_due=max(total, 0),
        amount_paid=amount_paid if paid else 0,
        amount_remaining=0 if paid else max(total, 0),
        amount_overpaid=0,
        attempted=True,
        attempt_count=1,
        billing_reason=billing_reason,
        status=status,
        metadata=dict(metadata or {}),
        created=start,
        effective_at=start,
        due_date=None,
        period_start=start - MONTH,
        period_end=start,
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
        last_finalization_error=None,
        from_invoice=None,
        shipping_cost=None,
        next_payment_attempt=None,
        number=f"INV-{iid[-6:]}",
        webhooks_delivered_at=None,
        status_transitions={
            "finalized_at": start,
            "marked_uncollectible_at": start if status == "uncollectible" else None,
            "paid_at": start if paid else None,
            "voided_at": start if status == "void" else None,
        },
    )
    obj["lines"].update(data=list(lines), has_more=lines_has_more, url=f"/v1/invoices/{iid}/lines")
    if legacy:
        del obj["parent"]
        obj.update(
            subscription=sub,
            subscription_details={"metadata": dict(subscription_metadata or {})} if sub else None,
            paid=paid,
            paid_out_of_band=False,
            payment_intent=payment_intent,
            charge=new_id("ch") if payment_intent else None,
        )
    else:
        obj["subscription"] = None
        obj["parent"] = (
            {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(subscription_metadata or {}),
                    "subscription": sub,
                },
            }
            if sub
            else None
        )
        if include_payments:
            payments = (
                []
                if payment_intent is None
                else [
                    invoice_payment(
                        invoice_id=iid,
                        payment_intent=payment_intent,
                        amount=max(total, 0),
                        currency=currency,
                        status="paid" if paid else "open",
                        created=start,
                    )
                ]
            )
            obj["payments"] = {
                "object": "list",
                "data": payments,
                "has_more": False,
                "url": f"/v1/invoices/{iid}/payments",
            }
    return _apply(obj, fields)


def invoice_event(
    type: str = "invoice.paid",
    *,
    event_id: str | None = None,
    event_created: int | None = None,
    api_version: str | None = None,
    **fields: Any,
) -> Obj:
    """``invoice.<type>``: ``paid``, ``payment_succeeded``, ``payment_failed`` (an ``open``
    invoice that Stripe retries in 3 days), ``voided``, ``marked_uncollectible``,
    ``payment_action_required``, or any other. The envelope's API version follows the shape
    (``legacy``) unless given."""
    full = type if type.startswith("invoice.") else f"invoice.{type}"
    if full == "invoice.payment_failed":
        fields.setdefault("status", "open")
        fields.setdefault("next_payment_attempt", now() + 3 * DAY)
    if full == "invoice.payment_action_required":
        fields.setdefault("status", "open")
    if full == "invoice.voided":
        fields.setdefault("status", "void")
    if full == "invoice.marked_uncollectible":
        fields.setdefault("status", "uncollectible")
    if api_version is None:
        api_version = LEGACY_API_VERSION if fields.get("legacy") else API_VERSION
    return any_event(
        full, invoice(**fields), event_id=event_id, created=event_created, api_version=api_version
    )

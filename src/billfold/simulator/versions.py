"""One internal model, rendered in the API version a reader asked for.

The simulator keeps every object as Stripe shows it from ``2025-03-31.basil`` on (nothing after basil
moved these fields again). Events are rendered once, when they are emitted, in the configured
``api_version`` (the account's default version, as Stripe renders an event for its endpoints); API
responses are rendered per request, in the ``Stripe-Version`` the request names. For a version
before basil (``2024-06-20``) ``render`` rewrites the shapes that moved:

| object       | basil and later (kept)                          | before basil (rendered)                |
|--------------|-------------------------------------------------|----------------------------------------|
| subscription | ``items.data[].current_period_start/_end``      | ``current_period_start/_end`` on top   |
| invoice      | ``parent.subscription_details.{subscription,    | ``subscription``,                      |
|              | metadata}``                                     | ``subscription_details.metadata``      |
| invoice      | ``payments.data[].payment.payment_intent``,     | ``paid``, ``payment_intent``,          |
|              | ``status_transitions.paid_at``                  | ``charge``                             |
| line_item    | ``pricing.price_details.price`` (an id),        | ``price`` (object), ``plan``, ``type``,|
|              | ``parent.subscription_item_details.{subscription,| ``subscription``, ``subscription_item``|
|              | subscription_item, proration, invoice_item}``   | ``proration``, ``invoice_item``        |
| invoiceitem  | ``parent``, ``pricing``                         | ``price``, ``plan``, ``subscription``, |
|              |                                                 | ``subscription_item``, ``unit_amount`` |
| charge, PI   | (no link to the invoice)                        | ``invoice``                            |

Nested objects (expanded fields, list pages) are rendered too; an event is not: it stays in the
version it was rendered in when it happened (its ``api_version``), whatever version reads it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol

from billfold.simulator import objects
from billfold.simulator.config import valid_api_version
from billfold.simulator.objects import Obj

BASIL = "2025-03-31"


class Lookup(Protocol):
    """What rendering an old shape needs to know beyond the object itself."""

    def find(self, object_id: str) -> Obj | None: ...

    def peek(self, object_id: str) -> Obj: ...


def valid(version: str) -> bool:
    return valid_api_version(version)


def before_basil(version: str) -> bool:
    return version[:10] < BASIL


def render(value: Any, version: str, lookup: Lookup) -> Any:
    """A copy of ``value`` (an object, a list page, anything JSON) in ``version``'s shapes."""
    result = copy.deepcopy(value)
    if not before_basil(version):
        return result
    return _old(result, lookup)


def render_previous(obj: Obj, previous: Obj, version: str, lookup: Lookup) -> Obj:
    """An event's ``previous_attributes`` in ``version``: the old values of what changed, shaped
    as ``render`` shapes ``obj``."""
    result: Obj = copy.deepcopy(previous)
    if not before_basil(version):
        return result
    if obj.get("object") == "subscription" and "items" in previous:
        old_period = _first_period(previous["items"])
        new_period = _first_period(obj["items"])
        for field in ("current_period_start", "current_period_end"):
            if old_period.get(field) != new_period.get(field):
                result[field] = old_period.get(field)
    rendered: Obj = _old(result, lookup)
    return rendered


def _first_period(items: Obj) -> Obj:
    data = items.get("data") or []
    if not data:
        return {}
    return {
        "current_period_start": data[0].get("current_period_start"),
        "current_period_end": data[0].get("current_period_end"),
    }


def _old(node: Any, lookup: Lookup) -> Any:
    """Rewrite ``node`` in place, parents before children (a subscription reads its items'
    periods before the items lose them)."""
    if isinstance(node, list):
        return [_old(item, lookup) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("object")
    if kind == "event":
        return node
    if isinstance(kind, str) and kind in _OLD_SHAPES:
        _OLD_SHAPES[kind](node, lookup)
    for key, value in list(node.items()):
        node[key] = _old(value, lookup)
    return node


_BASIL_ONLY = ("billing_mode", "billing_schedules", "customer_account", "managed_payments")


def _subscription(sub: Obj, lookup: Lookup) -> None:
    period = _first_period(sub["items"])
    sub["current_period_start"] = period.get("current_period_start")
    sub["current_period_end"] = period.get("current_period_end")
    for field in _BASIL_ONLY:
        sub.pop(field, None)


def _subscription_item(item: Obj, lookup: Lookup) -> None:
    item.pop("current_period_start", None)
    item.pop("current_period_end", None)


def _invoice(invoice: Obj, lookup: Lookup) -> None:
    parent = invoice.pop("parent", None) or {}
    details = (
        parent.get("subscription_details") if parent.get("type") == "subscription_details" else None
    )
    invoice["subscription"] = details["subscription"] if details else None
    invoice["subscription_details"] = {"metadata": details["metadata"]} if details else None
    payments = invoice.pop("payments", None) or {}
    intent_id = None
    for payment in payments.get("data", []):
        if payment["payment"].get("payment_intent"):
            intent_id = payment["payment"]["payment_intent"]
    intent = lookup.find(intent_id) if isinstance(intent_id, str) else None
    invoice["payment_intent"] = intent_id
    invoice["charge"] = intent["latest_charge"] if intent else None
    invoice["paid"] = invoice["status"] == "paid"
    invoice["paid_out_of_band"] = bool(lookup.peek(invoice["id"]).get("paid_out_of_band"))
    invoice.update(
        {
            "application_fee_amount": None,
            "discount": None,
            "quote": None,
            "subscription_proration_date": None,
            "tax": None,
            "total_tax_amounts": [],
        }
    )
    for field in (
        "amount_overpaid",
        "customer_account",
        "total_pretax_credit_amounts",
        "total_taxes",
    ):
        invoice.pop(field, None)


def _price_and_plan(pricing: Obj | None, lookup: Lookup) -> tuple[Obj | None, Obj | None]:
    details = (pricing or {}).get("price_details") or {}
    price_ref = details.get("price")
    price = price_ref if isinstance(price_ref, dict) else None
    if isinstance(price_ref, str):
        price = copy.deepcopy(lookup.find(price_ref))
    if price is None:
        return None, None
    plan = objects.plan_from_price(price) if price.get("recurring") else None
    return price, plan


def _line_item(line: Obj, lookup: Lookup) -> None:
    parent = line.pop("parent", None) or {}
    pricing = line.pop("pricing", None)
    from_item = parent.get("subscription_item_details") or {}
    from_invoice_item = parent.get("invoice_item_details") or {}
    source = from_item or from_invoice_item
    invoice_item = source.get("invoice_item")
    price, plan = _price_and_plan(pricing, lookup)
    line.update(
        {
            "amount_excluding_tax": line["amount"],
            "invoice_item": invoice_item,
            "plan": plan,
            "price": price,
            "proration": bool(source.get("proration", False)),
            "proration_details": {"credited_items": None},
            "subscription": source.get("subscription"),
            "subscription_item": from_item.get("subscription_item"),
            "tax_amounts": [],
            "tax_rates": [],
            "type": "invoiceitem" if invoice_item else "subscription",
            "unit_amount_excluding_tax": (pricing or {}).get("unit_amount_decimal"),
        }
    )
    for field in ("pretax_credit_amounts", "taxes", "subtotal"):
        line.pop(field, None)


def _invoice_item(item: Obj, lookup: Lookup) -> None:
    parent = item.pop("parent", None) or {}
    pricing = item.pop("pricing", None)
    details = parent.get("subscription_details") or {}
    price, plan = _price_and_plan(pricing, lookup)
    item.update(
        {
            "plan": plan,
            "price": price,
            "subscription": details.get("subscription"),
            "subscription_item": details.get("subscription_item"),
            "unit_amount": price["unit_amount"] if price else None,
            "unit_amount_decimal": (pricing or {}).get("unit_amount_decimal"),
        }
    )
    for field in ("net_amount", "customer_account"):
        item.pop(field, None)


def _payment_intent(intent: Obj, lookup: Lookup) -> None:
    intent["invoice"] = lookup.peek(intent["id"]).get("invoice")


def _charge(charge: Obj, lookup: Lookup) -> None:
    intent_id = charge.get("payment_intent")
    charge["invoice"] = (
        lookup.peek(intent_id).get("invoice") if isinstance(intent_id, str) else None
    )


_OLD_SHAPES: dict[str, Callable[[Obj, Lookup], None]] = {
    "subscription": _subscription,
    "subscription_item": _subscription_item,
    "invoice": _invoice,
    "line_item": _line_item,
    "invoiceitem": _invoice_item,
    "payment_intent": _payment_intent,
    "charge": _charge,
}

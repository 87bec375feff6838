"""Stripe objects built from Stripe's own examples (``fixtures.json``), never from hand-made dicts.

Each builder starts from a deep copy of the example object, resets the example's placeholder values
(random integers, ``"obj_123"``, nested sample objects) to what a fresh test-mode object holds, then
sets the fields the caller gives. A field that neither the example nor the resets have is refused,
so a typo cannot invent a field Stripe does not send; the resets add the few fields the SDK's
types name that the example lacks (an invoice's ``payments``, say).
"""

from __future__ import annotations

import copy
import functools
import json
import secrets
import string
from importlib import resources
from typing import Any, TypeAlias

Obj: TypeAlias = dict[str, Any]

_ALPHABET = string.ascii_letters + string.digits

# The id prefix of every object the simulator stores, and the `object` value it stands for.
KINDS_BY_PREFIX: dict[str, str] = {
    "cs_": "checkout.session",
    "li_": "item",
    "price_": "price",
    "prod_": "product",
    "cus_": "customer",
    "pi_": "payment_intent",
    "ch_": "charge",
    "py_": "charge",
    "re_": "refund",
    "du_": "dispute",
    "sub_": "subscription",
    "in_": "invoice",
    "evt_": "event",
    "ii_": "invoiceitem",
    "inpay_": "invoice_payment",
    "pm_": "payment_method",
    "clock_": "test_helpers.test_clock",
    "bps_": "billing_portal.session",
}

_NULL_ADDRESS: Obj = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}

# Fields of each example that hold placeholder values, and what a fresh object has instead.
_RESETS: dict[str, Obj] = {
    "checkout.session": {
        "after_expiration": None,
        "automatic_tax": {"enabled": False, "liability": None, "status": None, "provider": None},
        "consent": None,
        "consent_collection": None,
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer_creation": "if_required",
        "customer_details": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "payment_intent": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "saved_payment_method_options": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "adaptive_pricing": {"enabled": False},
        "collected_information": None,
        "permissions": None,
        "wallet_options": None,
        "currency_conversion": None,
        "managed_payments": {"enabled": False},
    },
    "item": {"adjustable_quantity": None, "metadata": {}},
    "price": {
        "custom_unit_amount": None,
        "recurring": None,
        "transform_quantity": None,
        "type": "one_time",
    },
    "product": {
        "default_price": None,
        "description": None,
        "package_dimensions": None,
        "type": "service",
    },
    "customer": {"currency": None, "discount": None, "shipping": None},
    "payment_intent": {
        "automatic_payment_methods": None,
        "canceled_at": None,
        "client_secret": None,
        "last_payment_error": None,
        "next_action": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "processing": None,
        "shipping": None,
        "transfer_data": None,
        "managed_payments": {"enabled": False},
    },
    "charge": {
        "amount_captured": 0,
        "billing_details": {
            "address": dict(_NULL_ADDRESS),
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "BILLFOLD SIMULATOR",
        "description": None,
        "outcome": None,
        "paid": False,
        "receipt_url": None,
        "shipping": None,
        "source": None,
        "status": "pending",
        "transfer_data": None,
    },
    "refund": {"destination_details": {"card": {"type": "refund"}, "type": "card"}},
    "dispute": {"enhanced_eligibility_types": [], "is_charge_refundable": False},
    "subscription": {
        "billing_cycle_anchor_config": None,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "next_pending_invoice_item_invoice": None,
        "pause_collection": None,
        "pending_invoice_item_interval": None,
        "pending_update": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_start": None,
        "cancel_at_period_end": False,
        "billing_thresholds": None,
        "managed_payments": {"enabled": False},
        "billing_schedules": [],
    },
    "subscription_item": {"billing_thresholds": None},
    "invoice": {
        "account_name": "billfold simulator",
        "from_invoice": None,
        "last_finalization_error": None,
        "shipping_cost": None,
        "shipping_details": None,
        "amount_overpaid": 0,
        "rendering": None,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    },
    "line_item": {"pretax_credit_amounts": [], "taxes": [], "quantity_decimal": None},
    "invoiceitem": {
        "discounts": [],
        "net_amount": 0,
        "parent": None,
        "proration_details": {"credited_items": None},
        "quantity_decimal": None,
        "test_clock": None,
    },
    "invoice_payment": {"amount_paid": None, "is_default": True},
    "payment_method": {
        "billing_details": {
            "address": dict(_NULL_ADDRESS),
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "customer": None,
        "metadata": {},
    },
    "test_helpers.test_clock": {"name": None, "status_details": {}},
    "billing_portal.session": {"flow": None, "locale": None, "on_behalf_of": None},
}
# Fields the SDK's types name that Stripe's example object lacks.
_RESETS["invoice"]["payments"] = None
_RESETS["refund"]["failure_reason"] = None
_RESETS["refund"]["failure_balance_transaction"] = None


@functools.cache
def _examples() -> dict[str, Obj]:
    text = resources.files("billfold.simulator").joinpath("fixtures.json").read_text("utf-8")
    loaded: dict[str, Obj] = json.loads(text)["resources"]
    return loaded


def new_id(prefix: str, length: int = 24) -> str:
    """An id shaped like Stripe's: ``pi_3Pq...``; checkout sessions are longer, as Stripe's are."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def build(kind: str, **fields: Any) -> Obj:
    """A ``kind`` object: the example, its placeholders reset, then ``fields`` set."""
    example = _examples()[kind]
    resets = _RESETS.get(kind, {})
    unknown = sorted(set(fields) - set(example) - set(resets))
    if unknown:
        raise KeyError(f"{kind} has no field(s) {', '.join(unknown)}")
    obj = copy.deepcopy(example)
    obj.update(copy.deepcopy(resets))
    obj.update(fields)
    if "livemode" in obj:
        obj["livemode"] = False
    return obj


def list_object(data: list[Obj], url: str, *, has_more: bool = False) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def address() -> Obj:
    return dict(_NULL_ADDRESS)


def customer_details(email: str | None, name: str | None) -> Obj:
    """``customer_details`` of a completed session: the example's shape, the payer's values."""
    details: Obj = copy.deepcopy(_examples()["checkout.session"]["customer_details"])
    details.update(
        {"address": {**address(), "country": "US"}, "email": email, "name": name, "tax_ids": []}
    )
    return details


def plan_from_price(price: Obj) -> Obj:
    """The legacy ``plan`` view of a recurring price, as subscription items still carry it."""
    plan: Obj = copy.deepcopy(_examples()["subscription_item"]["plan"])
    recurring = price["recurring"] or {}
    plan.update(
        {
            "active": price["active"],
            "amount": price["unit_amount"],
            "amount_decimal": price["unit_amount_decimal"],
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": price["currency"],
            "id": price["id"],
            "interval": recurring.get("interval"),
            "interval_count": recurring.get("interval_count"),
            "livemode": False,
            "metadata": price["metadata"],
            "nickname": price["nickname"],
            "product": price["product"],
            "transform_usage": None,
        }
    )
    return plan


def card_details(brand: str = "visa", last4: str = "4242") -> Obj:
    """``payment_method_details`` of a test card charge (Visa 4242 unless told otherwise)."""
    details: Obj = copy.deepcopy(_examples()["charge"]["payment_method_details"])
    card = details["card"]
    card.update(
        {
            "amount_authorized": None,
            "brand": brand,
            "installments": None,
            "last4": last4,
            "network": brand,
            "overcapture": {"maximum_amount_capturable": 0, "status": "unavailable"},
            "wallet": None,
        }
    )
    return details


def card(brand: str, last4: str) -> Obj:
    """The ``card`` of a card payment method, from the example's shape."""
    value: Obj = copy.deepcopy(_examples()["payment_method"]["card"])
    value.update(
        {
            "brand": brand,
            "display_brand": brand,
            "generated_from": None,
            "last4": last4,
            "networks": {"available": [brand], "preferred": None},
            "wallet": None,
        }
    )
    return value


def bank_details() -> Obj:
    """``payment_method_details`` of a delayed (US bank account) charge."""
    return {
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": "individual",
            "account_type": "checking",
            "bank_name": "STRIPE TEST BANK",
            "fingerprint": "FFDMA0xfhBjWSZLu",
            "last4": "6789",
            "mandate": None,
            "payment_reference": None,
            "routing_number": "110000000",
        },
    }


def outcome(approved: bool, *, reason: str | None = None) -> Obj:
    example: Obj = copy.deepcopy(_examples()["charge"]["outcome"])
    if approved:
        example.update(
            {
                "network_status": "approved_by_network",
                "risk_level": "normal",
                "seller_message": "Payment complete.",
                "type": "authorized",
            }
        )
    else:
        example.update(
            {
                "network_status": "declined_by_network",
                "reason": reason,
                "risk_level": "normal",
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined",
            }
        )
    return example

"""Payment intents and charges: what paying, declining or paying by bank debit leaves behind.

Test card payments settle at once; a bank debit (the "delayed method") leaves a pending charge and a
``processing`` intent until it settles either way. Each step emits the events Stripe emits for it.
A card payment names the payment method it used (a stored one for invoices and subscriptions, a
one-off Visa 4242 on the hosted checkout page) and, when declined, why (``DECLINES``).
"""

from __future__ import annotations

from collections.abc import Mapping

from billfold.simulator import objects
from billfold.simulator.objects import Obj
from billfold.simulator.service import DASHBOARD, Origin, Simulator

DECLINE: Mapping[str, str | None] = {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "message": "Your card was declined.",
}
DECLINES: Mapping[str, Mapping[str, str | None]] = {
    "generic_decline": DECLINE,
    "insufficient_funds": {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    },
    "lost_card": {
        "code": "card_declined",
        "decline_code": "lost_card",
        "message": "Your card was declined.",
    },
    "expired_card": {
        "code": "expired_card",
        "decline_code": "expired_card",
        "message": "Your card has expired.",
    },
}
BANK_FAILURE: Mapping[str, str | None] = {
    "code": "insufficient_funds",
    "decline_code": None,
    "message": "The customer's account has insufficient funds to cover this payment.",
}


def create_intent(
    sim: Simulator,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    metadata: dict[str, str],
    description: str | None = None,
    origin: Origin = DASHBOARD,
) -> Obj:
    intent_id = objects.new_id("pi_3")
    intent = objects.build(
        "payment_intent",
        amount=amount,
        amount_capturable=0,
        amount_received=0,
        client_secret=f"{intent_id}_secret_{objects.new_id('', 25)}",
        created=sim.now(),
        currency=currency,
        customer=customer,
        description=description,
        id=intent_id,
        latest_charge=None,
        metadata=dict(metadata),
        payment_method=None,
        status="requires_payment_method",
    )
    sim.put(intent)
    sim.emit("payment_intent.created", intent, origin=origin)
    return intent


def _charge(sim: Simulator, intent: Obj, *, email: str | None, name: str | None) -> Obj:
    charge_id = objects.new_id("ch_3")
    charge = objects.build(
        "charge",
        amount=intent["amount"],
        amount_refunded=0,
        balance_transaction=None,
        created=sim.now(),
        currency=intent["currency"],
        customer=intent["customer"],
        description=intent["description"],
        disputed=False,
        id=charge_id,
        metadata=dict(intent["metadata"]),
        payment_intent=intent["id"],
        receipt_email=email,
        refunded=False,
        refunds=objects.list_object([], f"/v1/charges/{charge_id}/refunds"),
    )
    charge["billing_details"].update({"email": email, "name": name})
    intent["latest_charge"] = charge_id
    return charge


def _succeed(sim: Simulator, intent: Obj, charge: Obj) -> None:
    charge.update(
        {
            "amount_captured": charge["amount"],
            "balance_transaction": objects.new_id("txn_3"),
            "captured": True,
            "failure_code": None,
            "failure_message": None,
            "outcome": objects.outcome(True),
            "paid": True,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{objects.new_id('', 40)}",
            "status": "succeeded",
        }
    )
    intent.update(
        {
            "amount_received": intent["amount"],
            "last_payment_error": None,
            "status": "succeeded",
        }
    )
    sim.put(charge)
    sim.emit("charge.succeeded", charge)
    sim.emit("payment_intent.succeeded", intent)


def _fail(sim: Simulator, intent: Obj, charge: Obj, reason: Mapping[str, str | None]) -> None:
    charge.update(
        {
            "captured": False,
            "amount_captured": 0,
            "failure_code": reason["code"],
            "failure_message": reason["message"],
            "outcome": objects.outcome(False, reason=reason["decline_code"] or reason["code"]),
            "paid": False,
            "status": "failed",
        }
    )
    kind = (
        "card_error"
        if charge["payment_method_details"]["type"] == "card"
        else "invalid_request_error"
    )
    intent.update(
        {
            "last_payment_error": {
                "charge": charge["id"],
                "code": reason["code"],
                "decline_code": reason["decline_code"],
                "doc_url": f"https://stripe.com/docs/error-codes/{reason['code']}",
                "message": reason["message"],
                "payment_method": {"id": charge["payment_method"], "object": "payment_method"},
                "type": kind,
            },
            "payment_method": None,
            "status": "requires_payment_method",
        }
    )
    sim.put(charge)
    sim.emit("charge.failed", charge)
    sim.emit("payment_intent.payment_failed", intent)


def pay_by_card(
    sim: Simulator,
    intent: Obj,
    *,
    approved: bool,
    email: str | None,
    name: str | None,
    payment_method: Obj | None = None,
    decline_code: str = "generic_decline",
) -> Obj:
    """One card attempt on ``intent``: a charge that succeeds or is declined (``decline_code``).
    Without a stored ``payment_method`` the card is a one-off Visa 4242."""
    charge = _charge(sim, intent, email=email, name=name)
    if payment_method is None:
        method_id, brand, last4 = objects.new_id("pm_1"), "visa", "4242"
    else:
        method_id = payment_method["id"]
        brand, last4 = payment_method["card"]["brand"], payment_method["card"]["last4"]
    details = objects.card_details(brand, last4)
    charge.update({"payment_method": method_id, "payment_method_details": details})
    intent.update({"payment_method": method_id, "payment_method_types": ["card"]})
    if approved:
        _succeed(sim, intent, charge)
    else:
        _fail(sim, intent, charge, DECLINES.get(decline_code, DECLINE))
    return charge


def start_bank_debit(sim: Simulator, intent: Obj, *, email: str | None, name: str | None) -> Obj:
    """A bank debit: the charge stays pending and the intent processing until it settles."""
    charge = _charge(sim, intent, email=email, name=name)
    payment_method = objects.new_id("pm_1")
    charge.update(
        {
            "amount_captured": charge["amount"],
            "captured": True,
            "payment_method": payment_method,
            "payment_method_details": objects.bank_details(),
            "status": "pending",
        }
    )
    intent.update(
        {
            "payment_method": payment_method,
            "payment_method_types": ["card", "us_bank_account"],
            "processing": {"type": "us_bank_account"},
            "status": "processing",
        }
    )
    sim.put(charge)
    sim.emit("charge.pending", charge)
    sim.emit("payment_intent.processing", intent)
    return charge


def settle_bank_debit(sim: Simulator, intent: Obj, charge: Obj, *, succeeded: bool) -> None:
    intent["processing"] = None
    if succeeded:
        _succeed(sim, intent, charge)
    else:
        _fail(sim, intent, charge, BANK_FAILURE)


def cancel_intent(sim: Simulator, intent: Obj, *, reason: str, origin: Origin) -> None:
    if intent["status"] in ("succeeded", "canceled", "processing"):
        return
    intent.update({"canceled_at": sim.now(), "cancellation_reason": reason, "status": "canceled"})
    sim.emit("payment_intent.canceled", intent, origin=origin)

"""Refunds, full or partial, of a charge or of a payment intent's charge (an invoice's payment
included), and refunds that fail later.

A card refund succeeds at once: ``charge.refunded`` (the charge, ``amount_refunded`` grown) and
``refund.created``. A refund can fail later, as a card's can when the card is closed: by the
control route ``POST /_sim/refunds/{id}/fail``, or by itself ``async_settle_seconds`` after it was
made when the charge was paid with ``pm_card_refundFail``. Failing gives the amount back to the
charge (``amount_refunded`` shrinks, ``refunded`` false) and emits ``charge.refund.updated``,
``refund.updated`` (status ``failed``, previous ``succeeded``) and ``refund.failed``. Updating a
refund's metadata emits ``refund.updated`` and ``charge.refund.updated``.
"""

from __future__ import annotations

import copy

from billfold.simulator import errors, forms, objects, payment_methods
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import Origin, Simulator

REFUND_PARAMS = (
    "amount",
    "charge",
    "expand",
    "instructions_email",
    "metadata",
    "payment_intent",
    "reason",
    "refund_application_fee",
    "reverse_transfer",
)
REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASONS = (
    "charge_for_pending_refund_disputed",
    "declined",
    "expired_or_canceled_card",
    "insufficient_funds",
    "lost_or_stolen_card",
    "merchant_request",
    "unknown",
)
JOB = "fail_refund"


def refunded_charge(sim: Simulator, params: Params) -> Obj:
    charge_id = params.text("charge")
    intent_id = params.text("payment_intent")
    if charge_id is None and intent_id is None:
        raise errors.ApiError(
            400,
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            code="parameter_missing",
        )
    if charge_id is not None and intent_id is not None:
        raise errors.invalid(
            "You may only specify one of these parameters: charge, payment_intent.",
            param="payment_intent",
        )
    if intent_id is not None:
        intent = sim.get("payment_intent", intent_id, param="payment_intent")
        if intent["status"] != "succeeded" or intent["latest_charge"] is None:
            raise errors.invalid(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        return sim.get("charge", intent["latest_charge"])
    assert charge_id is not None
    return sim.get("charge", charge_id, param="charge")


def create_refund(sim: Simulator, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(REFUND_PARAMS)
    charge = refunded_charge(sim, params)
    with sim.for_customer(charge["customer"]):
        refund = _refund(sim, charge, params, origin=origin)
    delay = sim.config.async_settle_seconds
    if payment_methods.refunds_fail(sim, charge["payment_method"]) and delay is not None:
        sim.schedule(JOB, refund["id"], sim.clock() + delay)
    return refund


def _refund(sim: Simulator, charge: Obj, params: Params, *, origin: Origin) -> Obj:
    if charge["status"] != "succeeded":
        raise errors.invalid(
            f"Charge {charge['id']} has status {charge['status']}; only succeeded charges can "
            "be refunded.",
            param="charge",
        )
    if charge["refunded"]:
        raise errors.invalid(
            f"Charge {charge['id']} has already been refunded.",
            code="charge_already_refunded",
            param="charge",
        )
    if charge["disputed"]:
        raise errors.invalid(
            f"Charge {charge['id']} has been charged back; cannot issue a refund.",
            code="charge_disputed",
            param="charge",
        )
    unrefunded = charge["amount"] - charge["amount_refunded"]
    amount = params.integer("amount", minimum=1)
    if amount is None:
        amount = unrefunded
    if amount > unrefunded:
        raise errors.invalid(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({unrefunded}).",
            param="amount",
        )
    refund = objects.build(
        "refund",
        amount=amount,
        balance_transaction=objects.new_id("txn_3"),
        charge=charge["id"],
        created=sim.now(),
        currency=charge["currency"],
        customer=charge["customer"],
        id=objects.new_id("re_3"),
        metadata=forms.apply_metadata({}, params.metadata()),
        payment_intent=charge["payment_intent"],
        payment_method=charge["payment_method"],
        reason=params.choice("reason", REASONS),
    )
    sim.put(refund)
    previous = {
        "amount_refunded": charge["amount_refunded"],
        "refunds": charge["refunds"],
    }
    charge["amount_refunded"] += amount
    refunds = charge["refunds"]
    charge["refunds"] = {**refunds, "data": [refund, *refunds["data"]]}
    if charge["amount_refunded"] == charge["amount"]:
        previous["refunded"] = False
        charge["refunded"] = True
    sim.emit("charge.refunded", charge, origin=origin, previous=previous)
    sim.emit("refund.created", refund, origin=origin)
    return refund


def _replace_on_charge(charge: Obj, refund: Obj) -> None:
    charge["refunds"]["data"] = [
        copy.deepcopy(refund) if r["id"] == refund["id"] else r for r in charge["refunds"]["data"]
    ]


def fail(
    sim: Simulator, refund_id: str, *, failure_reason: str = "expired_or_canceled_card"
) -> Obj:
    """A refund that was on its way fails: the money stays with the merchant."""
    if failure_reason not in FAILURE_REASONS:
        raise errors.invalid(
            f"failure_reason must be one of {', '.join(FAILURE_REASONS)}", param="failure_reason"
        )
    refund = sim.get("refund", refund_id)
    if refund["status"] not in ("pending", "requires_action", "succeeded"):
        raise errors.invalid(
            f"Refund {refund_id} is {refund['status']}; only a pending or succeeded refund can "
            "fail.",
            param="refund",
        )
    charge = sim.get("charge", refund["charge"])
    sim.unschedule(JOB, refund_id)
    with sim.for_customer(charge["customer"]):
        previous = {"status": refund["status"], "failure_reason": None}
        refund.update(
            {
                "failure_balance_transaction": objects.new_id("txn_3"),
                "failure_reason": failure_reason,
                "status": "failed",
            }
        )
        charge["amount_refunded"] -= refund["amount"]
        charge["refunded"] = False
        _replace_on_charge(charge, refund)
        sim.emit("charge.refund.updated", refund, previous=previous)
        sim.emit("refund.updated", refund, previous=previous)
        sim.emit("refund.failed", refund)
    return refund


def fail_when_due(sim: Simulator, refund_id: str) -> None:
    """The timer of a ``pm_card_refundFail`` refund fired."""
    refund = sim.state.collection("refund").get(refund_id)
    if refund is not None and refund["status"] == "succeeded":
        fail(sim, refund_id)


def update(sim: Simulator, refund_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["expand", "metadata"])
    refund = sim.get("refund", refund_id)
    merged = forms.apply_metadata(refund["metadata"], params.metadata())
    if merged != refund["metadata"]:
        charge = sim.get("charge", refund["charge"])
        with sim.for_customer(charge["customer"]):
            previous = {"metadata": refund["metadata"]}
            refund["metadata"] = merged
            _replace_on_charge(charge, refund)
            sim.emit("charge.refund.updated", refund, origin=origin, previous=previous)
            sim.emit("refund.updated", refund, origin=origin, previous=previous)
    return refund

"""Refunds, full or partial, of a charge or of a payment intent's charge."""

from __future__ import annotations

from billfold.simulator import errors, forms, objects
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

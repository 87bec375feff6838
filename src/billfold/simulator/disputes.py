"""Disputes (chargebacks), opened and closed by the control routes, as a card network would.

Opening emits ``charge.dispute.created`` and ``charge.dispute.funds_withdrawn``; closing emits
``charge.dispute.closed`` and, when won, ``charge.dispute.funds_reinstated``. A dispute of a test
clock customer's charge happens at that clock's time.
"""

from __future__ import annotations

from billfold.simulator import errors, objects
from billfold.simulator.objects import Obj
from billfold.simulator.service import Simulator

OPEN_STATUSES = ("needs_response", "under_review", "warning_needs_response", "warning_under_review")
CLOSED_STATUSES = ("won", "lost")
REASONS = (
    "credit_not_processed",
    "duplicate",
    "fraudulent",
    "general",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
EVIDENCE_DAYS = 7


def open_dispute(
    sim: Simulator,
    *,
    charge_id: str | None,
    payment_intent_id: str | None,
    amount: int | None,
    reason: str,
) -> Obj:
    if reason not in REASONS:
        raise errors.invalid(f"reason must be one of {', '.join(REASONS)}", param="reason")
    if payment_intent_id is not None:
        intent = sim.get("payment_intent", payment_intent_id, param="payment_intent")
        charge_id = intent["latest_charge"]
    if charge_id is None:
        raise errors.parameter_missing("charge")
    charge = sim.get("charge", charge_id, param="charge")
    if charge["status"] != "succeeded":
        raise errors.invalid(f"Charge {charge_id} did not succeed; it cannot be disputed.")
    if charge["disputed"]:
        raise errors.invalid(f"Charge {charge_id} is already disputed.", param="charge")
    with sim.for_customer(charge["customer"]):
        return _open(sim, charge, amount=amount, reason=reason)


def _open(sim: Simulator, charge: Obj, *, amount: int | None, reason: str) -> Obj:
    charge_id = charge["id"]
    if amount is None:
        amount = charge["amount"]
    if not 0 < amount <= charge["amount"]:
        raise errors.invalid(
            f"A dispute amount must be between 1 and the charge amount ({charge['amount']}).",
            param="amount",
        )
    now = sim.now()
    dispute = objects.build(
        "dispute",
        amount=amount,
        charge=charge_id,
        created=now,
        currency=charge["currency"],
        id=objects.new_id("du_1"),
        metadata={},
        payment_intent=charge["payment_intent"],
        reason=reason,
        status="needs_response",
    )
    dispute["evidence_details"]["due_by"] = now + EVIDENCE_DAYS * 24 * 60 * 60
    dispute["payment_method_details"]["card"]["case_type"] = "chargeback"
    sim.put(dispute)
    charge["disputed"] = True
    sim.emit("charge.dispute.created", dispute)
    sim.emit("charge.dispute.funds_withdrawn", dispute)
    return dispute


def close_dispute(sim: Simulator, dispute_id: str, *, status: str) -> Obj:
    if status not in CLOSED_STATUSES:
        raise errors.invalid(f"status must be one of {', '.join(CLOSED_STATUSES)}", param="status")
    dispute = sim.get("dispute", dispute_id)
    if dispute["status"] not in OPEN_STATUSES:
        raise errors.invalid(
            f"Dispute {dispute_id} is already closed ({dispute['status']}).", param="dispute"
        )
    charge = sim.get("charge", dispute["charge"])
    with sim.for_customer(charge["customer"]):
        previous = {"status": dispute["status"]}
        dispute["status"] = status
        sim.emit("charge.dispute.closed", dispute, previous=previous)
        if status == "won":
            sim.emit("charge.dispute.funds_reinstated", dispute)
    return dispute

"""Reversals: what refunds and disputes of one payment take back, as pure arithmetic.

A payment of ``paid`` (minor units of money) granted lots (grants) of one or more units. Refunds and
lost disputes reverse money; what they take back of each unit is cumulative, so the order in which
Stripe reports them never matters:

- after reversals of ``m`` of ``paid``, the unit's target is ``floor(granted * m / paid)``, and all
  of it once ``m >= paid`` (never more: a refund and a lost dispute of one charge together take at
  most what the charge granted);
- the unit's target is split across the payment's lots in proportion to their original amounts, by
  largest remainder (:func:`billfold.domain.ledger.split_largest_remainder`);
- each new reversal takes, per lot, its target less what earlier reversals already took from it
  (or could not take: that part became debt or was given up). A reversal never touches lots of
  other payments.

What a lot still holds may fall short of what a reversal wants (the customer spent it): under the
``debt`` policy the rest becomes debt, repaid first by later grants; under ``floor`` it is recorded
as unrecovered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from billfold.domain.ledger import RefundPolicy, split_largest_remainder

ReversalKind: TypeAlias = Literal["refund", "dispute"]
ReversalState: TypeAlias = Literal["pending", "applied", "held", "restored", "released", "void"]
"""What billfold has done about a reversal: nothing yet (``pending``: its payment is not
fulfilled, or a dispute is not decided), taken back (``applied``), reserved (``held``, an open
dispute), given back (``restored``: a refund that failed after it was applied), released (a dispute
won after a hold), or nothing ever (``void``)."""

# Stripe's statuses, ranked: a status is replaced only by a higher one (events arrive in any order).
REFUND_RANK: Final[Mapping[str, int]] = {
    "requires_action": 0,
    "pending": 1,
    "succeeded": 2,
    "failed": 3,
    "canceled": 3,
}
ACTIVE_REFUND: Final = frozenset({"requires_action", "pending", "succeeded"})
"""A refund takes back as soon as Stripe reports it; only ``failed`` and ``canceled`` give back."""

CLOSED_DISPUTE: Final = frozenset({"won", "lost", "warning_closed", "prevented"})
DISPUTE_LOST: Final = "lost"


def status_rank(kind: ReversalKind, status: str) -> int:
    if kind == "refund":
        return REFUND_RANK.get(status, 0)
    return 1 if status in CLOSED_DISPUTE else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Lot:
    """One grant a payment made, as it stands now."""

    grant_id: str
    unit: str
    amount: int
    remaining: int
    held: int

    @property
    def free(self) -> int:
        return max(self.remaining - self.held, 0)


def unit_target(granted: int, reversed_money: int, paid: int) -> int:
    """What reversals of ``reversed_money`` of ``paid`` take back of ``granted``."""
    if paid <= 0 or granted <= 0 or reversed_money <= 0:
        return 0
    if reversed_money >= paid:
        return granted
    return granted * reversed_money // paid


def lot_targets(lots: Sequence[Lot], reversed_money: int, paid: int) -> dict[str, int]:
    """Per lot (of one unit): its share of the unit's target, by largest remainder."""
    if not lots:
        return {}
    granted = sum(lot.amount for lot in lots)
    target = unit_target(granted, reversed_money, paid)
    shares = split_largest_remainder(target, [lot.amount for lot in lots])
    return {lot.grant_id: share for lot, share in zip(lots, shares, strict=True)}


@dataclass(frozen=True, slots=True, kw_only=True)
class LotTake:
    grant_id: str
    wanted: int
    """This reversal's share of the lot."""
    taken: int
    """What the lot still held of it (the rest is the shortfall)."""

    @property
    def short(self) -> int:
        return self.wanted - self.taken


def wanted(
    lots: Sequence[Lot], attributed: Mapping[str, int], reversed_money: int, paid: int
) -> dict[str, int]:
    """Per lot: what a reversal bringing the total to ``reversed_money`` wants of it, given what
    earlier reversals took (or fell short of) already."""
    targets = lot_targets(lots, reversed_money, paid)
    return {
        grant_id: max(target - attributed.get(grant_id, 0), 0)
        for grant_id, target in targets.items()
    }


def take(lots: Sequence[Lot], wants: Mapping[str, int]) -> tuple[LotTake, ...]:
    """What each lot gives of what is wanted of it: never more than it holds free."""
    by_id = {lot.grant_id: lot for lot in lots}
    out = []
    for grant_id, want in wants.items():
        if want <= 0:
            continue
        lot = by_id.get(grant_id)
        out.append(LotTake(grant_id=grant_id, wanted=want, taken=min(want, lot.free if lot else 0)))
    return tuple(out)


def shortfall(takes: Sequence[LotTake], policy: RefundPolicy) -> tuple[int, int]:
    """(debt, unrecovered) for what the lots could not give."""
    short = sum(t.short for t in takes)
    return (short, 0) if policy == "debt" else (0, short)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReversalRecord:
    """A refund or a dispute of one payment, as billfold keeps it (``effect`` records what it did:
    per unit, the lots it wanted and took, its debt or unrecovered part, its hold)."""

    id: str
    key: str
    kind: ReversalKind
    stripe_id: str
    payment_intent_id: str | None
    charge_id: str | None
    order_id: str | None
    amount: int
    currency: str | None
    status: str
    state: ReversalState
    effect: Mapping[str, Any] | None
    reason: str | None
    stripe_created: int | None
    created: int
    updated: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FundsMoved:
    """A movement of the merchant's money a dispute caused (``charge.dispute.funds_withdrawn`` /
    ``funds_reinstated``), recorded on the dispute; it changes nothing in the ledger (the hold
    and its outcome follow ``created`` and ``closed``)."""

    event: str
    """``funds_withdrawn`` or ``funds_reinstated``."""
    balance_transaction: str | None
    amount: int
    """Negative when withdrawn, positive when reinstated (minor units of ``currency``)."""
    fee: int
    currency: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "balance_transaction": self.balance_transaction,
            "amount": self.amount,
            "fee": self.fee,
            "currency": self.currency,
        }


def record_funds(
    recorded: Sequence[Mapping[str, Any]], moved: Sequence[FundsMoved]
) -> list[dict[str, Any]] | None:
    """The dispute's fund movements with ``moved`` added, each once: by balance transaction (a
    ``funds_reinstated`` lists the withdrawal again), or by event when it names none; None when
    nothing is new."""

    def key(event: object, balance_transaction: object) -> object:
        return balance_transaction if balance_transaction is not None else ("event", event)

    seen = {key(f.get("event"), f.get("balance_transaction")) for f in recorded}
    new: dict[object, dict[str, Any]] = {}
    for m in moved:
        k = key(m.event, m.balance_transaction)
        if k not in seen and k not in new:
            new[k] = m.as_json()
    return [dict(f) for f in recorded] + list(new.values()) if new else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReversalEvent:
    """What Stripe said about a refund or a dispute, in the terms the engine needs."""

    kind: ReversalKind
    stripe_id: str
    payment_intent_id: str | None
    charge_id: str | None
    amount: int
    currency: str | None
    status: str
    reason: str | None = None
    stripe_created: int | None = None
    funds: tuple[FundsMoved, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.stripe_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedsRefunds:
    """The charge's refunds must be listed from Stripe (its event did not carry them all)."""

    charge_id: str

"""Explain a balance: the lots (grants) that make it up, where each came from, what drew on it, the
holds and the debt against it, and what refunds and disputes took back.

The sum rule holds on what is listed: ``balance == sum(lot.remaining) - held - debt``. The listing
is the balance *as a read sees it now*: expiry the sweep has not written yet is counted (a lapsed
hold gives its reservation back; an expired lot keeps only what a live hold still reserves of it),
and shown as a draw of kind ``expire`` without a transaction id. Lots that have nothing left (spent,
clawed back or expired) are left out: they make up nothing of the balance; their history is in the
transactions.

Each lot's draws explain its remainder: ``amount - sum(draw.amount) == remaining``, where a draw is
one ledger line that took value out of the lot for good (a spend, the capture of a hold, a clawback,
an operator's ``adjustment``, an expiry), the debt the grant repaid when it was written (``debt_repayment``), or value a failed
refund gave back (``restore``, a negative draw). Holds only reserve: they are listed apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from billfold.domain.orders import OrderRecord
from billfold.domain.records import LedgerTrail, TrailGrant
from billfold.domain.reversals import FundsMoved, ReversalKind, ReversalRecord, ReversalState
from billfold.service.orders.reversals import effect_entries
from billfold.service.ports import UnitOfWork

OriginType: TypeAlias = Literal["order", "invoice", "manual", "adjustment"]

DEBT_REPAYMENT = "debt_repayment"
PENDING_EXPIRY = "expire"


@dataclass(frozen=True, slots=True, kw_only=True)
class StripeIds:
    """The Stripe objects behind a lot (None where there is none or billfold does not know it)."""

    checkout_session: str | None = None
    payment_intent: str | None = None
    invoice: str | None = None
    charge: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    type: OriginType
    order_id: str | None = None
    stripe: StripeIds = StripeIds()


@dataclass(frozen=True, slots=True, kw_only=True)
class Draw:
    transaction_id: str | None
    """None for expiry the sweep has not written yet."""
    kind: str
    amount: int
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExplainedLot:
    grant_id: str
    kind: str
    amount: int
    remaining: int
    held: int
    """The part of ``remaining`` that live holds reserve."""
    priority: int
    expires_at: int | None
    created: int
    reason: str | None
    origin: Origin
    draws: tuple[Draw, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExplainedHold:
    hold_id: str
    amount: int
    expires_at: int
    reason: str | None
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExplainedReversal:
    """What one refund or dispute did to this unit of the account, as it stands now.

    ``recovered`` is what it took back (``taken`` from its lots, plus ``debt`` recorded under the
    ``debt`` policy); ``unrecovered`` what it gave up under ``floor``; ``held`` what an open
    dispute reserves. A refund given back (``restored``) or a dispute won has recovered nothing."""

    kind: ReversalKind
    stripe_id: str
    order_id: str | None
    status: str
    state: ReversalState
    amount: int
    currency: str | None
    recovered: int
    taken: int
    debt: int
    unrecovered: int
    held: int
    funds: tuple[FundsMoved, ...] = ()
    """A dispute's recorded fund movements (``funds_withdrawn`` / ``funds_reinstated``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    account_id: str
    unit: str
    balance: int
    held: int
    debt: int
    lots: tuple[ExplainedLot, ...]
    holds: tuple[ExplainedHold, ...]
    reversals: tuple[ExplainedReversal, ...]


def explain(uow: UnitOfWork, account_id: str, unit: str, now: int) -> Explanation:
    """The explanation of ``account_id``'s balance in ``unit`` at ``now``, read in ``uow``."""
    trail = uow.ledger.trail(account_id, unit)
    lots, holds = _settled(trail, now)
    origins = _origins(uow, {x.grant.origin for x, _, _ in lots if x.grant.origin})
    explained = tuple(
        ExplainedLot(
            grant_id=x.grant.id,
            kind=x.grant.kind,
            amount=x.grant.amount,
            remaining=remaining,
            held=held,
            priority=x.grant.priority,
            expires_at=x.grant.expires_at,
            created=x.grant.created,
            reason=x.grant.reason,
            origin=_origin_of(x, origins),
            draws=draws,
        )
        for x, (remaining, held), draws in lots
    )
    held_total = sum(h.amount for h in holds)
    return Explanation(
        account_id=account_id,
        unit=unit,
        balance=sum(lot.remaining for lot in explained) - held_total - trail.debt,
        held=held_total,
        debt=trail.debt,
        lots=explained,
        holds=holds,
        reversals=tuple(
            r for row in uow.reversals.of_account(account_id) if (r := _reversal(row, unit))
        ),
    )


def _settled(
    trail: LedgerTrail, now: int
) -> tuple[list[tuple[TrailGrant, tuple[int, int], tuple[Draw, ...]]], tuple[ExplainedHold, ...]]:
    """The lots and holds as the sweep would leave them at ``now`` (what every read counts)."""
    state = {x.grant.id: [x.grant.remaining, x.grant.held] for x in trail.grants}
    holds: list[ExplainedHold] = []
    for entry in trail.holds:
        hold = entry.hold
        if hold.expires_at <= now:  # lapsed: its reservation comes back to its lots
            for grant_id, amount in entry.allocations:
                state[grant_id][1] -= amount
            continue
        holds.append(
            ExplainedHold(
                hold_id=hold.id,
                amount=hold.amount,
                expires_at=hold.expires_at,
                reason=hold.reason,
                created=hold.created,
            )
        )
    draws: dict[str, list[Draw]] = {x.grant.id: [] for x in trail.grants}
    for x in trail.grants:
        if x.debt_repaid:
            draws[x.grant.id].append(
                Draw(
                    transaction_id=x.transaction_id,
                    kind=DEBT_REPAYMENT,
                    amount=x.debt_repaid,
                    created=x.grant.created,
                )
            )
    for d in trail.draws:
        draws[d.grant_id].append(
            Draw(transaction_id=d.transaction_id, kind=d.kind, amount=d.amount, created=d.created)
        )
    out = []
    for x in trail.grants:
        remaining, held = state[x.grant.id]
        expires_at = x.grant.expires_at
        if expires_at is not None and expires_at <= now and remaining > held:
            draws[x.grant.id].append(
                Draw(
                    transaction_id=None,
                    kind=PENDING_EXPIRY,
                    amount=remaining - held,
                    created=expires_at,
                )
            )
            remaining = held
        if remaining > 0:
            out.append((x, (remaining, held), tuple(draws[x.grant.id])))
    return out, tuple(holds)


@dataclass(frozen=True, slots=True, kw_only=True)
class _OrderFacts:
    order: OrderRecord
    payment_intents: tuple[str, ...]
    charge: str | None


def _origins(uow: UnitOfWork, order_ids: set[str]) -> dict[str, _OrderFacts]:
    out: dict[str, _OrderFacts] = {}
    for order_id in sorted(order_ids):
        order = uow.orders.get(order_id)
        if order is None:
            continue
        intents = tuple(uow.payments.of_order(order.id))
        charges = [r.charge_id for r in uow.reversals.for_payments(intents) if r.charge_id]
        out[order_id] = _OrderFacts(
            order=order, payment_intents=intents, charge=charges[0] if charges else None
        )
    return out


def _origin_of(lot: TrailGrant, origins: Mapping[str, _OrderFacts]) -> Origin:
    facts = origins.get(lot.grant.origin or "")
    if facts is None:
        # Value an undone reversal gave back as a grant of its own is a correction, not a gift.
        kind: OriginType = "adjustment" if lot.transaction_kind == "restore" else "manual"
        return Origin(type=kind)
    order = facts.order
    intent = order.payment_intent_id or (
        facts.payment_intents[0] if facts.payment_intents else None
    )
    if order.kind == "payment_intent":
        intent = order.stripe_id
    return Origin(
        type="invoice" if order.kind == "invoice" else "order",
        order_id=order.id,
        stripe=StripeIds(
            checkout_session=order.stripe_id if order.kind == "checkout" else None,
            payment_intent=intent,
            invoice=order.stripe_id if order.kind == "invoice" else None,
            charge=facts.charge,
        ),
    )


def _reversal(row: ReversalRecord, unit: str) -> ExplainedReversal | None:
    """The reversal's effect on ``unit``; None when it has had none there."""
    every = effect_entries(row.effect)
    entries = [e for e in every if e.get("unit") == unit]
    holds = (row.effect or {}).get("holds")
    hold: Any = holds.get(unit) if isinstance(holds, Mapping) else None
    if not entries and hold is None and (every or (isinstance(holds, Mapping) and holds)):
        return None  # it touched other units only
    taken = debt = unrecovered = held = 0
    if row.state == "applied":
        taken = _sum(entries, "taken")
        debt = _sum(entries, "debt")
        unrecovered = _sum(entries, "unrecovered")
    elif row.state == "held" and isinstance(hold, Mapping):
        held = int(hold.get("held") or 0)
    return ExplainedReversal(
        kind=row.kind,
        stripe_id=row.stripe_id,
        order_id=row.order_id,
        status=row.status,
        state=row.state,
        amount=row.amount,
        currency=row.currency,
        recovered=taken + debt,
        taken=taken,
        debt=debt,
        unrecovered=unrecovered,
        held=held,
        funds=_funds((row.effect or {}).get("funds")),
    )


def _funds(recorded: Any) -> tuple[FundsMoved, ...]:
    if not isinstance(recorded, list):
        return ()
    return tuple(
        FundsMoved(
            event=str(f.get("event")),
            balance_transaction=f.get("balance_transaction"),
            amount=int(f.get("amount") or 0),
            fee=int(f.get("fee") or 0),
            currency=f.get("currency"),
        )
        for f in recorded
        if isinstance(f, Mapping)
    )


def _sum(entries: Sequence[Mapping[str, Any]], name: str) -> int:
    return sum(int(e.get(name) or 0) for e in entries)

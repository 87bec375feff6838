"""The money-to-credits audit as arithmetic: what each payment should have done, what the books
say it did, and the differences, per package and per plan. Pure: plain values in, plain values out.

Expected figures come from what the driver did in Stripe (prices paid, refunds, disputes and how
they closed) and the catalog; for each payment of ``p`` that granted ``g`` of a unit, after refunds
and lost disputes totalling ``m``, the clawback is ``floor(g * min(m, p) / p)``
(:func:`billfold.domain.reversals.unit_target`): DESIGN, "Reversals and reconciliation".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from billfold.domain.reversals import unit_target

ItemKind = Literal["package", "plan"]

DRIFT_CLASSES = (
    "paid_not_granted",
    "granted_without_payment",
    "refunded_not_clawed_back",
    "disputed_not_held",
    "amount_mismatch",
    "balance_mismatch",
)


@dataclass(slots=True, kw_only=True)
class Payment:
    """One payment the driver made, and what it did to it afterwards (the expected side)."""

    stripe_id: str
    """The checkout session (a package) or the invoice (a plan) that billfold keys its order on."""
    item_kind: ItemKind
    item: str
    account_id: str
    paid: int
    currency: str
    grants: dict[str, int]
    payment_intent: str | None = None
    refunds: list[int] = field(default_factory=list)
    dispute: int | None = None
    dispute_id: str | None = None
    dispute_outcome: Literal["won", "lost"] | None = None

    @property
    def refunded(self) -> int:
        return sum(self.refunds)

    @property
    def reversed_money(self) -> int:
        lost = (self.dispute or 0) if self.dispute_outcome == "lost" else 0
        return min(self.refunded + lost, self.paid)

    def clawed(self) -> dict[str, int]:
        return {u: unit_target(g, self.reversed_money, self.paid) for u, g in self.grants.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Booked:
    """One order as the database holds it (the actual side)."""

    order_id: str
    stripe_id: str
    account_id: str | None
    status: str
    amount: int
    refunded_amount: int
    disputed_amount: int
    granted: Mapping[str, int]
    clawed: Mapping[str, int]
    held: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    drift: str
    stripe_id: str | None
    billfold_id: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.drift,
            "stripe_id": self.stripe_id,
            "billfold_id": self.billfold_id,
            "message": self.message,
        }


@dataclass(slots=True)
class UnitLine:
    granted_expected: int = 0
    granted_actual: int = 0
    clawed_expected: int = 0
    clawed_actual: int = 0
    held_actual: int = 0

    @property
    def differences(self) -> tuple[int, int, int]:
        return (
            self.granted_actual - self.granted_expected,
            self.clawed_actual - self.clawed_expected,
            self.held_actual,
        )


@dataclass(slots=True)
class Group:
    """One package or plan: its payments' money and units, expected and actual."""

    kind: ItemKind
    item: str
    currency: str
    payments: int = 0
    paid_expected: int = 0
    paid_actual: int = 0
    refunds: int = 0
    refunded_expected: int = 0
    refunded_actual: int = 0
    disputes_won: int = 0
    disputes_lost: int = 0
    disputed_lost_money: int = 0
    units: dict[str, UnitLine] = field(default_factory=lambda: defaultdict(UnitLine))

    @property
    def clean(self) -> bool:
        money = (self.paid_actual, self.refunded_actual) == (
            self.paid_expected,
            self.refunded_expected,
        )
        return money and all(line.differences == (0, 0, 0) for line in self.units.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "item": self.item,
            "currency": self.currency,
            "payments": self.payments,
            "money_paid": {"expected": self.paid_expected, "actual": self.paid_actual},
            "money_refunded": {"expected": self.refunded_expected, "actual": self.refunded_actual},
            "refunds": self.refunds,
            "disputes": {
                "won": self.disputes_won,
                "lost": self.disputes_lost,
                "lost_money": self.disputed_lost_money,
            },
            "units": {
                unit: {
                    "granted": {"expected": ln.granted_expected, "actual": ln.granted_actual},
                    "clawed_back": {"expected": ln.clawed_expected, "actual": ln.clawed_actual},
                    "held": {"expected": 0, "actual": ln.held_actual},
                    "difference": {
                        "granted": ln.differences[0],
                        "clawed_back": ln.differences[1],
                        "held": ln.differences[2],
                    },
                }
                for unit, ln in sorted(self.units.items())
            },
            "clean": self.clean,
        }


@dataclass(slots=True, kw_only=True)
class Comparison:
    groups: list[Group]
    problems: list[Problem]

    @property
    def drift(self) -> dict[str, int]:
        counts = dict.fromkeys(DRIFT_CLASSES, 0)
        for problem in self.problems:
            counts[problem.drift] = counts.get(problem.drift, 0) + 1
        return counts


def compare(
    payments: Sequence[Payment],
    booked: Iterable[Booked],
    balances: Mapping[tuple[str, str], tuple[int, int, int]],
    stray_grants: Mapping[str, int],
) -> Comparison:
    """Every payment against its order; every account's balance against what its payments
    should have left; anything granted on the audit's accounts that no payment explains."""
    by_stripe = {b.stripe_id: b for b in booked}
    problems: list[Problem] = []
    groups: dict[tuple[str, str], Group] = {}
    expected_balance: dict[tuple[str, str], int] = defaultdict(int)
    for p in payments:
        group = groups.get((p.item_kind, p.item))
        if group is None:
            group = groups[(p.item_kind, p.item)] = Group(p.item_kind, p.item, p.currency)
        group.payments += 1
        group.paid_expected += p.paid
        group.refunds += len(p.refunds)
        group.refunded_expected += p.refunded
        if p.dispute_outcome == "won":
            group.disputes_won += 1
        elif p.dispute_outcome == "lost":
            group.disputes_lost += 1
            group.disputed_lost_money += p.dispute or 0
        clawed = p.clawed()
        for unit, granted in p.grants.items():
            line = group.units[unit]
            line.granted_expected += granted
            line.clawed_expected += clawed[unit]
            expected_balance[(p.account_id, unit)] += granted - clawed[unit]
        order = by_stripe.pop(p.stripe_id, None)
        if order is None:
            problems.append(
                Problem(
                    drift="paid_not_granted",
                    stripe_id=p.stripe_id,
                    billfold_id=None,
                    message=f"{p.item} paid {p.paid} {p.currency}: billfold has no order for it",
                )
            )
            continue
        group.paid_actual += order.amount
        group.refunded_actual += order.refunded_amount
        for unit in set(order.granted) | set(order.clawed) | set(order.held):
            line = group.units[unit]
            line.granted_actual += order.granted.get(unit, 0)
            line.clawed_actual += order.clawed.get(unit, 0)
            line.held_actual += order.held.get(unit, 0)
        problems.extend(_order_problems(p, order, clawed))
    for order in by_stripe.values():
        problems.append(
            Problem(
                drift="granted_without_payment",
                stripe_id=order.stripe_id,
                billfold_id=order.order_id,
                message=f"order {order.order_id} ({order.status}) matches no payment the audit made",
            )
        )
    for unit, amount in sorted(stray_grants.items()):
        if amount:
            problems.append(
                Problem(
                    drift="granted_without_payment",
                    stripe_id=None,
                    billfold_id=None,
                    message=f"{amount} {unit} granted on the audit's accounts by no order",
                )
            )
    for key in sorted(set(expected_balance) | set(balances)):
        available, held, debt = balances.get(key, (0, 0, 0))
        want = expected_balance.get(key, 0)
        if (available, held, debt) != (want, 0, 0):
            problems.append(
                Problem(
                    drift="balance_mismatch",
                    stripe_id=None,
                    billfold_id=key[0],
                    message=f"{key[0]} {key[1]}: available {available}, held {held}, debt "
                    f"{debt}; expected available {want}, nothing held, no debt",
                )
            )
    ordered = sorted(groups.values(), key=lambda g: (g.kind, g.item))
    return Comparison(groups=ordered, problems=problems)


def _order_problems(p: Payment, order: Booked, clawed: Mapping[str, int]) -> list[Problem]:
    out: list[Problem] = []

    def add(drift: str, message: str) -> None:
        out.append(
            Problem(drift=drift, stripe_id=p.stripe_id, billfold_id=order.order_id, message=message)
        )

    if order.status not in ("fulfilled", "refunded"):
        add("paid_not_granted", f"order is {order.status}, not fulfilled")
    want_status = "refunded" if p.refunded >= p.paid else "fulfilled"
    if order.status in ("fulfilled", "refunded") and order.status != want_status:
        add("refunded_not_clawed_back", f"order is {order.status}, expected {want_status}")
    if order.account_id != p.account_id:
        add("amount_mismatch", f"order is on {order.account_id}, the payment on {p.account_id}")
    if order.amount != p.paid:
        add("amount_mismatch", f"order amount {order.amount}, paid {p.paid}")
    if order.refunded_amount != p.refunded:
        add(
            "refunded_not_clawed_back",
            f"order refunded {order.refunded_amount}, Stripe refunded {p.refunded}",
        )
    lost = (p.dispute or 0) if p.dispute_outcome == "lost" else 0
    if order.disputed_amount != lost:
        add("disputed_not_held", f"order disputed {order.disputed_amount}, lost {lost}")
    for unit in sorted(set(p.grants) | set(order.granted)):
        if order.granted.get(unit, 0) != p.grants.get(unit, 0):
            add(
                "amount_mismatch",
                f"granted {order.granted.get(unit, 0)} {unit}, the "
                f"{p.item_kind} grants {p.grants.get(unit, 0)}",
            )
        if order.clawed.get(unit, 0) != clawed.get(unit, 0):
            add(
                "refunded_not_clawed_back",
                f"clawed back {order.clawed.get(unit, 0)} {unit}, expected {clawed.get(unit, 0)}",
            )
    for unit, held in sorted(order.held.items()):
        if held:
            add("disputed_not_held", f"{held} {unit} still held after every dispute closed")
    return out

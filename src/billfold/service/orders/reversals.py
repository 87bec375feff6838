"""Reversals: a refund or a lost dispute takes back the share of what the payment granted.

A refund claws back, per grant of the order's package, the share that the refunded total stands for,
less what earlier refunds of the same charge took; a dispute holds the disputed share until it
closes, then releases it (won) or claws it back (lost). The catalog's refund policy (``debt`` or
``floor``) says what happens to value that was already spent. Every ledger write has its own key, so
a redelivered event writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from billfold.domain import catalog as cat
from billfold.domain.orders import FINAL, OrderRecord, share, unit_shares
from billfold.service.ledger import expiry, movement
from billfold.service.ledger.commands import Clawback, Hold, Release
from billfold.service.ports import UnitOfWork

DAY = 86_400
DISPUTE_HOLD_TTL = 366 * DAY

ReversalKind = Literal["refund", "dispute_opened", "dispute_won", "dispute_lost"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reversal:
    """What a refund or dispute event did: the order it touched and the amounts per unit."""

    kind: ReversalKind
    order_id: str | None
    amounts: tuple[tuple[str, int], ...] = ()
    skipped: str | None = None
    """Why nothing was done, when nothing was."""

    def describe(self) -> str:
        if self.skipped is not None:
            return self.skipped
        moved = ", ".join(f"{amount} {unit}" for unit, amount in self.amounts) or "nothing"
        match self.kind:
            case "refund":
                return f"clawed back {moved} from order {self.order_id}"
            case "dispute_opened":
                return f"held {moved} for order {self.order_id}"
            case "dispute_won":
                return f"dispute won: hold released on order {self.order_id}"
            case "dispute_lost":
                return f"dispute lost: clawed back {moved} from order {self.order_id}"


class Reversals:
    def __init__(self, catalog: cat.Catalog, *, units: frozenset[str] | None = None) -> None:
        self.catalog = catalog
        self.units = units

    def refund(
        self,
        uow: UnitOfWork,
        payment_intent_id: str,
        refunded_total: int,
        now: int,
        *,
        charge_id: str,
    ) -> Reversal:
        """Claw back the refunded share of the order's grants, up to ``refunded_total`` so far."""
        found = uow.orders.by_payment_intent(payment_intent_id)
        if found is None:
            return _skip("refund", None, f"no order for payment intent {payment_intent_id}")
        order = uow.orders.lock_by_key(found.key)
        assert order is not None
        if order.status not in FINAL:
            uow.orders.update(
                order.id, refunded_amount=max(refunded_total, order.refunded_amount), updated=now
            )
            return _skip(
                "refund",
                order.id,
                f"order {order.id} was not fulfilled ({order.status}); nothing to claw back",
            )
        previous = order.refunded_amount
        if refunded_total <= previous:
            return _skip(
                "refund",
                order.id,
                f"refund of {refunded_total} already applied to order {order.id}",
            )
        package, specs = self._order_grants(order)
        paid = order.amount or 0
        policy = self.catalog.refund_policy_for(package)
        taken: list[tuple[str, int]] = []
        for index, spec in enumerate(specs):
            part = share(spec.amount, refunded_total, paid) - share(spec.amount, previous, paid)
            if part <= 0 or order.account_id is None:
                continue
            result = movement.clawback(
                uow.ledger,
                Clawback(
                    key=f"refund:{charge_id}:{refunded_total}:{index}",
                    account_id=order.account_id,
                    unit=spec.unit,
                    amount=part,
                    origin=order.id,
                    policy=policy,
                    reason=f"refund of order {order.id}",
                ),
                now,
                units=self.units,
            )
            taken.append((spec.unit, result.taken + result.debt))
        status = "refunded" if refunded_total >= paid else order.status
        uow.orders.update(order.id, refunded_amount=refunded_total, status=status, updated=now)
        return Reversal(kind="refund", order_id=order.id, amounts=tuple(taken))

    def dispute_opened(
        self, uow: UnitOfWork, dispute_id: str, payment_intent_id: str, amount: int, now: int
    ) -> Reversal:
        order = self._locked_by_pi(uow, payment_intent_id)
        if order is None or order.status not in FINAL or order.account_id is None:
            return _skip(
                "dispute_opened", None, "no fulfilled order for this charge; nothing to hold"
            )
        _, specs = self._order_grants(order)
        held: list[tuple[str, int]] = []
        for unit, part in unit_shares(specs, amount, order.amount or 0).items():
            view = expiry.balance_views(uow.ledger, order.account_id, now).get(unit)
            available = view.available if view else 0
            reserve = min(part, max(available, 0))
            if reserve <= 0:
                continue
            movement.hold(
                uow.ledger,
                Hold(
                    key=f"dispute:{dispute_id}:hold:{unit}",
                    account_id=order.account_id,
                    unit=unit,
                    amount=reserve,
                    ttl_seconds=DISPUTE_HOLD_TTL,
                    reason=f"dispute {dispute_id}",
                ),
                now,
                units=self.units,
            )
            held.append((unit, reserve))
        uow.orders.update(order.id, disputed_amount=amount, updated=now)
        return Reversal(kind="dispute_opened", order_id=order.id, amounts=tuple(held))

    def dispute_closed(
        self,
        uow: UnitOfWork,
        dispute_id: str,
        payment_intent_id: str,
        amount: int,
        lost: bool,
        now: int,
    ) -> Reversal:
        order = self._locked_by_pi(uow, payment_intent_id)
        if order is None or order.account_id is None:
            return _skip(
                "dispute_lost" if lost else "dispute_won", None, "no order for this charge"
            )
        package, specs = self._order_grants(order)
        for unit in sorted({s.unit for s in specs}):
            stored = uow.ledger.transaction_by_key(f"dispute:{dispute_id}:hold:{unit}")
            if stored is None or not stored.result:
                continue
            hold = uow.ledger.get_hold(str(stored.result["hold_id"]))
            if hold is not None and hold.status == "active":
                movement.release(
                    uow.ledger,
                    Release(key=f"dispute:{dispute_id}:release:{unit}", hold_id=hold.id),
                    now,
                    units=self.units,
                )
        if not lost:
            uow.orders.update(order.id, disputed_amount=0, updated=now)
            return Reversal(kind="dispute_won", order_id=order.id)
        policy = self.catalog.refund_policy_for(package)
        taken: list[tuple[str, int]] = []
        for index, spec in enumerate(specs):
            part = share(spec.amount, amount, order.amount or 0)
            if part > 0:
                result = movement.clawback(
                    uow.ledger,
                    Clawback(
                        key=f"dispute:{dispute_id}:lost:{index}",
                        account_id=order.account_id,
                        unit=spec.unit,
                        amount=part,
                        origin=order.id,
                        policy=policy,
                        reason=f"dispute {dispute_id} lost",
                    ),
                    now,
                    units=self.units,
                )
                taken.append((spec.unit, result.taken + result.debt))
        return Reversal(kind="dispute_lost", order_id=order.id, amounts=tuple(taken))

    def _locked_by_pi(self, uow: UnitOfWork, payment_intent_id: str) -> OrderRecord | None:
        found = uow.orders.by_payment_intent(payment_intent_id)
        return None if found is None else uow.orders.lock_by_key(found.key)

    def _order_grants(
        self, order: OrderRecord
    ) -> tuple[cat.Package, tuple[cat.ResolvedGrant, ...]]:
        package = self.catalog.package(order.package or "")
        return package, package.grants_for(order.amount or package.price or 0)


def _skip(kind: ReversalKind, order_id: str | None, why: str) -> Reversal:
    return Reversal(kind=kind, order_id=order_id, skipped=why)

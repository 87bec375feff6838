"""Reversals: refunds and disputes take back what their payment granted, once, in any order.

Every refund and dispute is kept as a reversal, keyed by Stripe's id (``refund:<re_...>``,
``dispute:<dp_...>``), with Stripe's latest status (a status only moves forward: events arrive in
any order). Reversals are *settled* against their payment's order under the payment's lock: each is
brought to what its status asks for, in the order they were first seen, with the cumulative
arithmetic of :mod:`billfold.domain.reversals`:

- a refund that is ``pending`` or ``succeeded`` takes back its share of the order's lots; one that
  then fails or is canceled gives back exactly what it took (a new, opposite transaction);
- an open dispute holds its share of the order's lots; won, the hold is released; lost, the hold
  is released and the share taken back; a dispute first seen closed is settled at once, and a late
  ``created`` changes nothing;
- a reversal of a payment whose order is not fulfilled yet (or not known yet) waits, and is settled
  when the order is fulfilled: the refund that arrives before its purchase is not lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from billfold.domain import catalog as cat
from billfold.domain import errors, ids
from billfold.domain import reversals as rv
from billfold.domain.orders import OrderRecord
from billfold.service import outbox
from billfold.service.ledger import lots as ledger_lots
from billfold.service.ledger import movement
from billfold.service.ledger.commands import ClawLots, HoldLots, Release, RestoreLots
from billfold.service.ports import NewReversal, UnitOfWork

DAY = 86_400
DISPUTE_HOLD_TTL = 366 * DAY

Outcome = Literal["kept", "settled", "no_payment"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reversal:
    """What recording one refund or dispute did."""

    key: str
    outcome: Outcome
    order_id: str | None = None
    moved: tuple[str, ...] = ()
    """What settling did, one line per change."""
    untouched: bool = False
    """Settling found nothing due: it wrote nothing (the order is as it was)."""

    def describe(self) -> str:
        if self.outcome == "no_payment":
            return f"{self.key}: no payment intent to settle against; kept"
        if self.outcome == "kept":
            where = f"order {self.order_id} is not fulfilled" if self.order_id else "no order yet"
            return f"{self.key} kept ({where}): settled when the payment is fulfilled"
        done = "; ".join(self.moved) or "nothing to change"
        return f"{self.key} settled on order {self.order_id}: {done}"


@dataclass(slots=True)
class _Books:
    """The state of one order's reversals while they are settled."""

    order: OrderRecord
    lots: dict[str, list[rv.Lot]]  # per unit
    policy: cat.RefundPolicy
    money: int = 0  # reversed by applied reversals
    attributed: dict[str, int] = field(default_factory=dict)  # per lot
    moved: list[str] = field(default_factory=list)


class Reversals:
    def __init__(self, catalog: cat.Catalog, *, units: frozenset[str] | None = None) -> None:
        self.catalog = catalog
        self.low = catalog.low_balances()
        self.units = units

    # --- recording -----------------------------------------------------------------------------

    def record(self, uow: UnitOfWork, event: rv.ReversalEvent, now: int) -> Reversal:
        """Keep what Stripe said about a refund or dispute, then settle its payment's order."""
        if event.payment_intent_id is None:
            self._keep(uow, event, now)
            return Reversal(key=event.key, outcome="no_payment")
        order_id = uow.payments.ensure_locked(event.payment_intent_id, now=now)
        self._keep(uow, event, now)
        if order_id is None:
            return Reversal(key=event.key, outcome="kept")
        order = uow.orders.lock(order_id)
        if order is None or not order.is_final or order.account_id is None:
            if order is not None:
                self._record_totals(uow, order, now)  # shown to the operator who resolves it
            return Reversal(key=event.key, outcome="kept", order_id=order_id)
        return self.settle(uow, order, now, key=event.key)

    def _keep(self, uow: UnitOfWork, event: rv.ReversalEvent, now: int) -> rv.ReversalRecord:
        row, inserted = uow.reversals.ensure_locked(
            NewReversal(
                id=ids.new_id("rev"),
                key=event.key,
                kind=event.kind,
                stripe_id=event.stripe_id,
                payment_intent_id=event.payment_intent_id,
                charge_id=event.charge_id,
                amount=event.amount,
                currency=event.currency,
                status=event.status,
                reason=(event.reason or "")[:255] or None,
                stripe_created=event.stripe_created,
                created=now,
            )
        )
        changes: dict[str, Any] = {}
        recorded = (row.effect or {}).get("funds")
        funds = rv.record_funds(recorded if isinstance(recorded, list) else [], event.funds)
        if funds is not None:
            changes["effect"] = dict(row.effect or {}) | {"funds": funds}
        if inserted:
            return uow.reversals.update(row.id, updated=now, **changes) if changes else row
        if rv.status_rank(row.kind, event.status) > rv.status_rank(row.kind, row.status):
            changes["status"] = event.status
        if row.payment_intent_id is None and event.payment_intent_id is not None:
            changes["payment_intent_id"] = event.payment_intent_id
        if row.charge_id is None and event.charge_id is not None:
            changes["charge_id"] = event.charge_id
        if row.state == "pending" and event.amount != row.amount and changes.get("status"):
            changes["amount"] = event.amount  # a dispute's amount can change until it closes
        if not changes:
            return row
        return uow.reversals.update(row.id, updated=now, **changes)

    # --- settling ------------------------------------------------------------------------------

    def settle(
        self, uow: UnitOfWork, order: OrderRecord, now: int, *, key: str | None = None
    ) -> Reversal:
        """Bring every reversal of ``order``'s payments to what its status asks for. The caller
        holds the payment's and the order's locks; the order is fulfilled.

        The books converge whatever the order events arrived in: what refunds and lost disputes
        took back always ends at the cumulative target of the money they reversed, and open
        disputes' holds are derived state, recomputed (released, then placed again) whenever
        anything else changes."""
        account_id = order.account_id
        if account_id is None:  # pragma: no cover - a fulfilled order has its account
            raise errors.InvariantViolation(f"order {order.id} is fulfilled without an account")
        rows = self._rows(uow, order)
        if not any(_due(row) for row in rows):
            return Reversal(
                key=key or "reversals", outcome="settled", order_id=order.id, untouched=True
            )
        lots: dict[str, list[rv.Lot]] = {}
        for lot in uow.ledger.lots(order.id):
            lots.setdefault(lot.unit, []).append(lot)
        books = _Books(order=order, lots=lots, policy=self._policy(order))
        if any(_due(row) != "hold" for row in rows):
            # Holds are recomputed after the rest: release them first, so the money they reserve
            # is there for a refund or a lost dispute of the same payment.
            for row in rows:
                if row.kind == "dispute" and row.state == "held":
                    self._release(uow, row, now)
                    closed = row.status in rv.CLOSED_DISPUTE
                    if not closed or row.status == rv.DISPUTE_LOST:
                        self._set(uow, books, row, "pending", row.effect, now, None)
                    else:
                        self._set(uow, books, row, "released", row.effect, now, f"{row.key} won")
            rows = self._rows(uow, order)
        for row in rows:
            if row.state == "applied":
                books.money += row.amount
                for grant_id, wanted in _wanted(row.effect).items():
                    books.attributed[grant_id] = books.attributed.get(grant_id, 0) + wanted
        for row in rows:  # give back first: what a failed refund took
            if row.kind == "refund" and row.status not in rv.ACTIVE_REFUND:
                if row.state == "applied":
                    self._restore(uow, books, row, account_id, now)
                elif row.state == "pending":
                    self._set(uow, books, row, "void", None, now, f"{row.key} {row.status}")
        newly = [row for row in rows if _due(row) == "take"]
        for row in newly:
            self._take(uow, books, row, account_id, now)
        for row in rows:
            if row.kind == "dispute" and row.state == "pending" and _due(row) == "void":
                self._set(uow, books, row, "void", row.effect, now, f"{row.key} {row.status}")
        self._top_up(uow, books, account_id, now)
        for row in self._rows(uow, order):
            if _due(row) == "hold":
                self._hold(uow, books, row, account_id, now)
        self._record_totals(uow, order, now)
        return Reversal(
            key=key or "reversals", outcome="settled", order_id=order.id, moved=tuple(books.moved)
        )

    @staticmethod
    def _rows(uow: UnitOfWork, order: OrderRecord) -> list[rv.ReversalRecord]:
        return uow.reversals.for_order(order.id)

    def _top_up(self, uow: UnitOfWork, books: _Books, account_id: str, now: int) -> None:
        """Where a refund given back left less taken than the reversals still standing call for,
        take the difference (attributed to the newest of them)."""
        standing = [r for r in self._rows(uow, books.order) if r.state == "applied"]
        if not standing:
            return
        latest = standing[-1]
        adjustments = list((latest.effect or {}).get("adjustments") or [])
        for unit, lots in sorted(books.lots.items()):
            wants = rv.wanted(lots, books.attributed, books.money, books.order.amount or 0)
            if not any(wants.values()):
                continue
            done = self._claw(uow, books, latest, account_id, unit, wants, now, ids.new_id("adj"))
            adjustments.append(done)
        if len(adjustments) != len((latest.effect or {}).get("adjustments") or []):
            effect = dict(latest.effect or {}) | {"adjustments": adjustments}
            self._set(uow, books, latest, "applied", effect, now, None)

    def _take(
        self, uow: UnitOfWork, books: _Books, row: rv.ReversalRecord, account_id: str, now: int
    ) -> None:
        money = books.money + row.amount
        units: dict[str, dict[str, Any]] = {}
        for unit, lots in sorted(books.lots.items()):
            wants = rv.wanted(lots, books.attributed, money, books.order.amount or 0)
            if any(wants.values()):
                units[unit] = self._claw(uow, books, row, account_id, unit, wants, now, "claw")
        books.money = money
        effect = dict(row.effect or {}) | {"units": units}
        self._set(uow, books, row, "applied", effect, now, None)

    def _claw(
        self,
        uow: UnitOfWork,
        books: _Books,
        row: rv.ReversalRecord,
        account_id: str,
        unit: str,
        wants: Mapping[str, int],
        now: int,
        tag: str,
    ) -> dict[str, Any]:
        done = ledger_lots.claw_lots(
            uow.ledger,
            ClawLots(
                key=f"rev:{row.id}:{tag}:{unit}",
                account_id=account_id,
                unit=unit,
                wants=tuple(sorted(wants.items())),
                policy=books.policy,
                reason=f"{row.kind} {row.stripe_id} of order {books.order.id}",
            ),
            now,
            units=self.units,
            low=self.low,
        )
        for grant_id, wanted, _ in done.takes:
            books.attributed[grant_id] = books.attributed.get(grant_id, 0) + wanted
        books.moved.append(
            f"took {done.taken} {unit}"
            + (f", {done.debt} as debt" if done.debt else "")
            + (f", {done.unrecovered} unrecovered" if done.unrecovered else "")
        )
        if not done.replayed and (done.taken or done.debt or done.unrecovered):
            outbox.emit(
                uow.ledger,
                "credits.clawed_back",
                account_id=account_id,
                data={
                    "unit": unit,
                    "taken": done.taken,
                    "debt": done.debt,
                    "unrecovered": done.unrecovered,
                    "balance": done.balance,
                    "transaction_id": done.transaction_id,
                    "order_id": books.order.id,
                    "reason": row.kind,
                    "stripe": {
                        row.kind: row.stripe_id,
                        "charge": row.charge_id,
                        "payment_intent": row.payment_intent_id,
                    },
                },
                now=now,
            )
        return {
            "unit": unit,
            "lots": {grant_id: [w, t] for grant_id, w, t in done.takes},
            "taken": done.taken,
            "debt": done.debt,
            "unrecovered": done.unrecovered,
            "transaction_id": done.transaction_id,
        }

    def _restore(
        self, uow: UnitOfWork, books: _Books, row: rv.ReversalRecord, account_id: str, now: int
    ) -> None:
        """Give back exactly what the reversal took (and recorded as debt), entry by entry."""
        for index, entry in enumerate(effect_entries(row.effect)):
            unit = str(entry["unit"])
            lots = _lots_of(entry)
            restored = ledger_lots.restore_lots(
                uow.ledger,
                RestoreLots(
                    key=f"rev:{row.id}:restore:{unit}:{index}",
                    account_id=account_id,
                    unit=unit,
                    origin=books.order.id,
                    lots=tuple(sorted((g, taken) for g, (_, taken) in lots.items() if taken)),
                    debt=int(entry.get("debt", 0)),
                    reason=f"{row.kind} {row.stripe_id} {row.status}: given back",
                ),
                now,
                units=self.units,
                low=self.low,
            )
            for grant_id, (wanted, _) in lots.items():
                books.attributed[grant_id] = books.attributed.get(grant_id, 0) - wanted
            books.moved.append(
                f"gave back {restored.restored + restored.debt_cleared + restored.granted} {unit}"
            )
        books.money -= row.amount
        self._set(uow, books, row, "restored", row.effect, now, None)

    def _hold(
        self, uow: UnitOfWork, books: _Books, row: rv.ReversalRecord, account_id: str, now: int
    ) -> None:
        money = books.money + row.amount
        generation = int((row.effect or {}).get("generation", 0)) + 1
        holds: dict[str, dict[str, Any]] = {}
        for unit, lots in sorted(books.lots.items()):
            wants = rv.wanted(lots, books.attributed, money, books.order.amount or 0)
            if not any(wants.values()):
                continue
            done = ledger_lots.hold_lots(
                uow.ledger,
                HoldLots(
                    key=f"rev:{row.id}:hold:{unit}:{generation}",
                    account_id=account_id,
                    unit=unit,
                    wants=tuple(sorted(wants.items())),
                    ttl_seconds=DISPUTE_HOLD_TTL,
                    reason=f"dispute {row.stripe_id}",
                ),
                now,
                units=self.units,
                low=self.low,
            )
            holds[unit] = {"hold_id": done.hold_id, "held": done.amount}
            books.moved.append(f"held {done.amount} {unit}")
        effect = dict(row.effect or {}) | {"holds": holds, "generation": generation}
        self._set(uow, books, row, "held", effect, now, None)

    def _release(self, uow: UnitOfWork, row: rv.ReversalRecord, now: int) -> bool:
        """Release a dispute's holds, if it has any; whether it had."""
        effect = row.effect or {}
        holds = effect.get("holds")
        generation = int(effect.get("generation", 0))
        released = False
        if isinstance(holds, Mapping):
            for unit, held in sorted(holds.items()):
                hold_id = held.get("hold_id") if isinstance(held, Mapping) else None
                if not isinstance(hold_id, str):
                    continue
                found = uow.ledger.get_hold(hold_id)
                if found is not None and found.status == "active" and found.expires_at > now:
                    movement.release(
                        uow.ledger,
                        Release(key=f"rev:{row.id}:release:{unit}:{generation}", hold_id=hold_id),
                        now,
                        units=self.units,
                        low=self.low,
                    )
                released = True
        return released

    def _set(
        self,
        uow: UnitOfWork,
        books: _Books,
        row: rv.ReversalRecord,
        state: rv.ReversalState,
        effect: Mapping[str, Any] | None,
        now: int,
        note: str | None,
    ) -> None:
        uow.reversals.update(
            row.id,
            state=state,
            effect=dict(effect) if effect is not None else None,
            order_id=books.order.id,
            updated=now,
        )
        if note:
            books.moved.append(note)

    def _record_totals(self, uow: UnitOfWork, order: OrderRecord, now: int) -> None:
        """The order's refunded and disputed amounts, and ``refunded`` once all was refunded."""
        rows = uow.reversals.for_order(order.id)
        refunded = sum(
            r.amount for r in rows if r.kind == "refund" and r.status in rv.ACTIVE_REFUND
        )
        disputed = sum(
            r.amount
            for r in rows
            if r.kind == "dispute" and (r.status not in rv.CLOSED_DISPUTE or r.status == "lost")
        )
        paid = order.amount or 0
        status = order.status
        if order.is_final:
            status = "refunded" if paid > 0 and refunded >= paid else "fulfilled"
        if (order.refunded_amount, order.disputed_amount, order.status) != (
            refunded,
            disputed,
            status,
        ):
            uow.orders.update(
                order.id,
                refunded_amount=refunded,
                disputed_amount=disputed,
                status=status,
                updated=now,
            )

    def _policy(self, order: OrderRecord) -> cat.RefundPolicy:
        """The package's (or, for an invoice, the plan's) refund policy, else the catalog's."""
        item: cat.Package | cat.Plan
        try:
            if order.plan is not None:
                item = self.catalog.plan(order.plan)
            else:
                item = self.catalog.package(order.package or "")
        except (errors.UnknownPackage, errors.UnknownPlan):
            return self.catalog.refund_policy
        return self.catalog.refund_policy_for(item)


def _due(row: rv.ReversalRecord) -> str | None:
    """What a reversal's status asks of it now: ``take``, ``hold``, ``restore``, ``void``, or
    nothing."""
    if row.kind == "refund":
        active = row.status in rv.ACTIVE_REFUND
        if active and row.state == "pending":
            return "take"
        if not active and row.state in ("applied", "pending"):
            return "restore" if row.state == "applied" else "void"
        return None
    closed = row.status in rv.CLOSED_DISPUTE
    if not closed:
        return "hold" if row.state == "pending" else None
    if row.state not in ("pending", "held"):
        return None
    return "take" if row.status == rv.DISPUTE_LOST else "void"


def effect_entries(effect: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """Each claw a reversal made: one per unit, then its adjustments."""
    effect = effect or {}
    out: list[Mapping[str, Any]] = []
    units = effect.get("units")
    if isinstance(units, Mapping):
        out += [{"unit": u, **d} for u, d in sorted(units.items()) if isinstance(d, Mapping)]
    adjustments = effect.get("adjustments")
    if isinstance(adjustments, list):
        out += [a for a in adjustments if isinstance(a, Mapping) and "unit" in a]
    return out


def _lots_of(done: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    lots = done.get("lots")
    if not isinstance(lots, Mapping):
        return {}
    return {str(g): (int(v[0]), int(v[1])) for g, v in lots.items()}


def _wanted(effect: Mapping[str, Any] | None) -> dict[str, int]:
    """Per lot: what an applied reversal wanted (taken, or fallen short of)."""
    out: dict[str, int] = {}
    for entry in effect_entries(effect):
        for grant_id, (wanted, _) in _lots_of(entry).items():
            out[grant_id] = out.get(grant_id, 0) + wanted
    return out

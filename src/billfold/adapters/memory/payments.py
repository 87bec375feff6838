"""Payments, reversals, the console's sessions and operators' actions in memory (as
``adapters/db/stores/payments``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any, Final

from billfold.adapters.memory import _tables as t
from billfold.adapters.memory._tables import PaymentRow, SessionRow, Work, refuse
from billfold.domain.actions import OperatorAction, SessionRecord, TargetType
from billfold.domain.reversals import ReversalRecord
from billfold.service.ports import NewReversal

REVERSAL_FIELDS: Final = frozenset(f.name for f in fields(ReversalRecord))
REVERSAL_STATES: Final = frozenset({"pending", "applied", "held", "restored", "released", "void"})


class MemoryPaymentStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def ensure_locked(self, payment_intent_id: str, *, now: int) -> str | None:
        t.varchar((payment_intent_id, 255))
        t.bigint(now)
        payments = self._work.tables.payments
        row = payments.get(payment_intent_id)
        if row is None:
            row = PaymentRow(payment_intent_id=payment_intent_id, order_id=None, created=now)
            payments[payment_intent_id] = row
        return row.order_id

    def link(self, payment_intent_id: str, order_id: str) -> None:
        tables = self._work.tables
        row = tables.payments.get(payment_intent_id)
        if row is None or row.order_id is not None:
            return
        if order_id not in tables.orders:
            refuse(t.FK_PAYMENTS_ORDER)
        tables.payments[payment_intent_id] = replace(row, order_id=order_id)

    def ensure_locked_many(
        self, payment_intent_ids: Sequence[str], *, now: int
    ) -> dict[str, str | None]:
        return {pi: self.ensure_locked(pi, now=now) for pi in payment_intent_ids}

    def link_many(self, links: Sequence[tuple[str, str]]) -> None:
        for payment_intent_id, order_id in links:
            self.link(payment_intent_id, order_id)

    def of_order(self, order_id: str) -> list[str]:
        return sorted(
            p.payment_intent_id
            for p in self._work.tables.payments.values()
            if p.order_id == order_id
        )


class MemoryReversalStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def ensure_locked(self, new: NewReversal) -> tuple[ReversalRecord, bool]:
        tables = self._work.tables
        existing = tables.reversal_keys.get(new.key)
        if existing is not None:  # ON CONFLICT DO NOTHING, then the row, locked
            return tables.reversals[existing], False
        record = ReversalRecord(
            id=new.id,
            key=new.key,
            kind=new.kind,
            stripe_id=new.stripe_id,
            payment_intent_id=new.payment_intent_id,
            charge_id=new.charge_id,
            order_id=None,
            amount=new.amount,
            currency=new.currency,
            status=new.status,
            state="pending",
            effect=None,
            reason=new.reason,
            stripe_created=new.stripe_created,
            created=new.created,
            updated=new.created,
        )
        _check(record)
        tables.reversals[record.id] = record
        tables.reversal_keys[record.key] = record.id
        return record, True

    def update(self, reversal_id: str, **values: Any) -> ReversalRecord:
        unknown = set(values) - REVERSAL_FIELDS
        assert not unknown, unknown
        tables = self._work.tables
        current = tables.reversals[reversal_id]
        if "effect" in values and values["effect"] is not None:
            values["effect"] = json.loads(json.dumps(values["effect"]))  # stored as JSON
        record = replace(current, **values)
        _check(record)
        tables.reversals[reversal_id] = record
        return record

    def for_order(self, order_id: str) -> list[ReversalRecord]:
        pis = [
            p.payment_intent_id
            for p in self._work.tables.payments.values()
            if p.order_id == order_id
        ]
        return self.for_payments(pis)

    def for_payments(self, payment_intent_ids: Sequence[str]) -> list[ReversalRecord]:
        wanted = set(payment_intent_ids)
        rows = [r for r in self._work.tables.reversals.values() if r.payment_intent_id in wanted]
        return sorted(rows, key=lambda r: (r.created, r.id))

    def of_account(self, account_id: str) -> list[ReversalRecord]:
        tables = self._work.tables
        orders = {o.id for o in tables.orders.values() if o.account_id == account_id}
        rows = [r for r in tables.reversals.values() if r.order_id in orders]
        return sorted(rows, key=lambda r: (r.created, r.id))


class MemoryAdminSessionStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def insert(
        self, session_id: str, *, created: int, expires_at: int, operator: str | None = None
    ) -> None:
        t.varchar((session_id, 64), (operator, 200))
        sessions = self._work.tables.admin_sessions
        if session_id in sessions:
            refuse(t.PK_ADMIN_SESSIONS)
        sessions[session_id] = SessionRow(
            id=session_id,
            created=created,
            expires_at=expires_at,
            revoked_at=None,
            operator=operator,
        )

    def get(self, session_id: str) -> SessionRecord | None:
        row = self._work.tables.admin_sessions.get(session_id)
        if row is None:
            return None
        return SessionRecord(
            expires_at=row.expires_at, revoked_at=row.revoked_at, operator=row.operator
        )

    def revoke(self, session_id: str, *, now: int) -> None:
        sessions = self._work.tables.admin_sessions
        row = sessions.get(session_id)
        if row is not None and row.revoked_at is None:
            sessions[session_id] = replace(row, revoked_at=now)

    def record_action(self, action: OperatorAction) -> None:
        t.varchar(
            (action.id, 64),
            (action.actor, 200),
            (action.action, 32),
            (action.target_type, 32),
            (action.target_id, 255),
        )
        t.bigint(action.created)
        if not action.reason:
            refuse(t.CK_OPERATOR_ACTIONS_REASON_GIVEN)
        found = self._work.tables.operator_actions
        if action.id in found:
            refuse(t.PK_OPERATOR_ACTIONS)
        found[action.id] = action

    def actions(
        self,
        *,
        target_type: TargetType | None,
        target_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[OperatorAction]:
        rows = sorted(self._work.tables.operator_actions.values(), key=lambda a: a.id, reverse=True)
        return [
            a
            for a in rows
            if (target_type is None or a.target_type == target_type)
            and (target_id is None or a.target_id == target_id)
            and (starting_after is None or a.id < starting_after)
        ][:limit]


def _check(record: ReversalRecord) -> None:
    t.varchar(
        (record.id, t.ID),
        (record.key, 255),
        (record.kind, 16),
        (record.stripe_id, 255),
        (record.payment_intent_id, 255),
        (record.charge_id, 255),
        (record.order_id, t.ID),
        (record.currency, 16),
        (record.status, 32),
        (record.state, 16),
        (record.reason, 255),
    )
    t.bigint(record.amount, record.stripe_created, record.created, record.updated)
    if record.amount < 0:
        refuse(t.CK_REVERSALS_AMOUNT_NON_NEGATIVE)
    if record.kind not in ("refund", "dispute"):
        refuse(t.CK_REVERSALS_KIND_KNOWN)
    if record.state not in REVERSAL_STATES:
        refuse(t.CK_REVERSALS_STATE_KNOWN)

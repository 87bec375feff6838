"""Payments, reversals, the console's sessions and operators' actions in SQL (the service's ports
of the same names)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.adapters.db.stores._raw import PG_IDS, Raw
from billfold.adapters.db.stores._sql import P, insert_for, is_pg, per_dialect
from billfold.domain.actions import OperatorAction, SessionRecord, TargetType
from billfold.domain.reversals import ReversalRecord
from billfold.service.ports import NewReversal

REVERSAL_FIELDS = frozenset(c.name for c in t.reversals.columns)
# A batch's rows as one JSON document (one prepared statement whatever the batch's size), as the
# ledger's batches. The gates are inserted, and locked, in the order given.
PG_ENSURE_PAYMENTS = (
    "INSERT INTO payments (payment_intent_id, order_id, created) "
    "SELECT value, NULL, %s FROM json_array_elements_text(%s::json) "
    "ON CONFLICT (payment_intent_id) DO UPDATE SET payment_intent_id = excluded.payment_intent_id "
    "RETURNING payment_intent_id, order_id"
)
PG_LINK_PAYMENTS = (
    "UPDATE payments AS p SET order_id = v.o FROM json_to_recordset(%s::json) AS v(i varchar, "
    "o varchar) WHERE p.payment_intent_id = v.i AND p.order_id IS NULL"
)

REVERSAL_COLUMNS = tuple(c.name for c in t.reversals.columns)
PG_FOR_PAYMENTS = (
    f"SELECT {', '.join(REVERSAL_COLUMNS)} FROM reversals WHERE payment_intent_id = {PG_IDS} "
    "ORDER BY created, id"
)


class _Statements:
    def __init__(self, pg: bool) -> None:
        pay, rev, ses = t.payments.c, t.reversals.c, t.admin_sessions.c
        insert = insert_for(pg)
        gate = insert(t.payments)
        # DO UPDATE (not NOTHING): it takes the row lock on PostgreSQL whether or not it inserted.
        self.ensure_payment = gate.on_conflict_do_update(
            index_elements=[pay.payment_intent_id],
            set_={"payment_intent_id": gate.excluded.payment_intent_id},
        ).returning(pay.order_id)
        self.ensure_payments = gate.on_conflict_do_update(
            index_elements=[pay.payment_intent_id],
            set_={"payment_intent_id": gate.excluded.payment_intent_id},
        ).returning(pay.payment_intent_id, pay.order_id)
        self.link = (
            t.payments.update()
            .where(pay.payment_intent_id == P("w_pi"), pay.order_id.is_(None))
            .values(order_id=P("order_id"))
        )
        self.of_order = (
            sa.select(pay.payment_intent_id)
            .where(pay.order_id == P("w_order"))
            .order_by(pay.payment_intent_id)
        )
        reversal = insert(t.reversals)
        self.insert_reversal = reversal.on_conflict_do_nothing().returning(rev.id)
        lock = sa.select(t.reversals).where(rev.key == P("w_key"))
        self.lock_reversal = lock.with_for_update() if pg else lock
        self.update_reversal = (
            t.reversals.update().where(rev.id == P("w_id")).returning(*t.reversals.columns)
        )
        self.for_payments = (
            sa.select(t.reversals)
            .where(rev.payment_intent_id.in_(P("w_pis", expanding=True)))
            .order_by(rev.created, rev.id)
        )
        self.for_order = (
            sa.select(t.reversals)
            .where(
                rev.payment_intent_id.in_(
                    sa.select(pay.payment_intent_id).where(pay.order_id == P("w_order"))
                )
            )
            .order_by(rev.created, rev.id)
        )
        orders = sa.select(t.orders.c.id).where(t.orders.c.account_id == P("w_account"))
        self.of_account = (
            sa.select(t.reversals).where(rev.order_id.in_(orders)).order_by(rev.created, rev.id)
        )
        self.insert_session = t.admin_sessions.insert()
        self.get_session = sa.select(ses.expires_at, ses.revoked_at, ses.operator).where(
            ses.id == P("w_id")
        )
        self.revoke_session = (
            t.admin_sessions.update()
            .where(ses.id == P("w_id"), ses.revoked_at.is_(None))
            .values(revoked_at=P("revoked_at"))
        )


statements = per_dialect(_Statements)


class SqlPaymentStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.pg = is_pg(conn)
        self.sql = statements(self.pg)

    def ensure_locked(self, payment_intent_id: str, *, now: int) -> str | None:
        row = self.conn.execute(
            self.sql.ensure_payment,
            {"payment_intent_id": payment_intent_id, "order_id": None, "created": now},
        ).one()
        return None if row.order_id is None else str(row.order_id)

    def link(self, payment_intent_id: str, order_id: str) -> None:
        self.conn.execute(self.sql.link, {"w_pi": payment_intent_id, "order_id": order_id})

    def ensure_locked_many(
        self, payment_intent_ids: Sequence[str], *, now: int
    ) -> dict[str, str | None]:
        """One multi-row ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (SQLAlchemy's
        "insertmanyvalues"): its rows are inserted, and locked, in the order given."""
        ids = list(dict.fromkeys(payment_intent_ids))  # a row is not affected twice
        if not ids:
            return {}
        if self.pg:
            found = Raw(self.conn).rows(PG_ENSURE_PAYMENTS, (now, json.dumps(ids)))
            return {str(pi): None if order is None else str(order) for pi, order in found}
        rows = self.conn.execute(
            self.sql.ensure_payments,
            [{"payment_intent_id": pi, "order_id": None, "created": now} for pi in ids],
        )
        return {
            str(r.payment_intent_id): None if r.order_id is None else str(r.order_id) for r in rows
        }

    def link_many(self, links: Sequence[tuple[str, str]]) -> None:
        """Each payment keeps the first order it is linked to: one statement."""
        if not links:
            return
        if self.pg:
            first: dict[str, str] = {}
            for pi, order_id in links:
                first.setdefault(pi, order_id)
            document = json.dumps([{"i": pi, "o": o} for pi, o in first.items()])
            Raw(self.conn).send(PG_LINK_PAYMENTS, (document,)).count()
            return
        self.conn.execute(
            self.sql.link, [{"w_pi": pi, "order_id": order_id} for pi, order_id in links]
        )

    def of_order(self, order_id: str) -> list[str]:
        return [str(r[0]) for r in self.conn.execute(self.sql.of_order, {"w_order": order_id})]


class SqlReversalStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.is_pg = is_pg(conn)
        self.sql = statements(self.is_pg)

    def ensure_locked(self, new: NewReversal) -> tuple[ReversalRecord, bool]:
        row = asdict(new) | {"state": "pending", "effect": None, "order_id": None}
        row["updated"] = new.created
        inserted = self.conn.execute(self.sql.insert_reversal, row).first() is not None
        found = self.conn.execute(self.sql.lock_reversal, {"w_key": new.key}).one()
        return _reversal(found), inserted

    def update(self, reversal_id: str, **values: Any) -> ReversalRecord:
        unknown = set(values) - REVERSAL_FIELDS
        assert not unknown, unknown
        row = self.conn.execute(self.sql.update_reversal, {"w_id": reversal_id, **values}).one()
        return _reversal(row)

    def for_order(self, order_id: str) -> list[ReversalRecord]:
        rows = self.conn.execute(self.sql.for_order, {"w_order": order_id})
        return [_reversal(r) for r in rows]

    def for_payments(self, payment_intent_ids: Sequence[str]) -> list[ReversalRecord]:
        if not payment_intent_ids:
            return []
        if self.is_pg:  # one statement text whatever the number of payments (a webhook batch's)
            found = Raw(self.conn).rows(PG_FOR_PAYMENTS, (json.dumps(list(payment_intent_ids)),))
            return [_reversal_of(dict(zip(REVERSAL_COLUMNS, r, strict=True))) for r in found]
        rows = self.conn.execute(self.sql.for_payments, {"w_pis": list(payment_intent_ids)})
        return [_reversal(r) for r in rows]

    def of_account(self, account_id: str) -> list[ReversalRecord]:
        rows = self.conn.execute(self.sql.of_account, {"w_account": account_id})
        return [_reversal(r) for r in rows]


class SqlAdminSessionStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.sql = statements(is_pg(conn))

    def insert(
        self, session_id: str, *, created: int, expires_at: int, operator: str | None = None
    ) -> None:
        self.conn.execute(
            self.sql.insert_session,
            {
                "id": session_id,
                "created": created,
                "expires_at": expires_at,
                "revoked_at": None,
                "operator": operator,
            },
        )

    def get(self, session_id: str) -> SessionRecord | None:
        row = self.conn.execute(self.sql.get_session, {"w_id": session_id}).first()
        if row is None:
            return None
        return SessionRecord(
            expires_at=int(row.expires_at), revoked_at=row.revoked_at, operator=row.operator
        )

    def revoke(self, session_id: str, *, now: int) -> None:
        self.conn.execute(self.sql.revoke_session, {"w_id": session_id, "revoked_at": now})

    def record_action(self, action: OperatorAction) -> None:
        self.conn.execute(t.operator_actions.insert().values(**asdict(action)))

    def actions(
        self,
        *,
        target_type: TargetType | None,
        target_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[OperatorAction]:
        c = t.operator_actions.c
        query = sa.select(t.operator_actions).order_by(c.id.desc()).limit(limit)
        if target_type is not None:
            query = query.where(c.target_type == target_type)
        if target_id is not None:
            query = query.where(c.target_id == target_id)
        if starting_after is not None:
            query = query.where(c.id < starting_after)
        return [OperatorAction(**row._mapping) for row in self.conn.execute(query)]


def _reversal(row: Any) -> ReversalRecord:
    return _reversal_of(row._mapping)


def _reversal_of(m: Any) -> ReversalRecord:
    return ReversalRecord(
        id=m["id"],
        key=m["key"],
        kind=m["kind"],
        stripe_id=m["stripe_id"],
        payment_intent_id=m["payment_intent_id"],
        charge_id=m["charge_id"],
        order_id=m["order_id"],
        amount=int(m["amount"]),
        currency=m["currency"],
        status=m["status"],
        state=m["state"],
        effect=m["effect"],
        reason=m["reason"],
        stripe_created=m["stripe_created"],
        created=int(m["created"]),
        updated=int(m["updated"]),
    )

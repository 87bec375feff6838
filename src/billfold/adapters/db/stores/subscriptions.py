"""Subscriptions in SQL (implements ``service.ports.SubscriptionStore``)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Final

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.adapters.db.stores._sql import P, insert_for, is_pg, per_dialect
from billfold.domain.subscriptions import SubscriptionRecord

FIELDS: Final = frozenset(f.name for f in fields(SubscriptionRecord))


class _Statements:
    def __init__(self, pg: bool) -> None:
        su = t.subscriptions.c
        copy = insert_for(pg)(t.subscriptions)
        self.ensure = copy.on_conflict_do_update(
            index_elements=[su.id], set_={"id": copy.excluded.id}
        ).returning(*t.subscriptions.columns)
        self.get = sa.select(t.subscriptions).where(su.id == P("w_id"))
        self.update = (
            t.subscriptions.update().where(su.id == P("w_id")).returning(*t.subscriptions.columns)
        )
        self.of_account = (
            sa.select(t.subscriptions)
            .where(su.account_id == P("w_account"))
            .order_by(su.created.desc(), su.id.desc())
        )
        self.of_customer = (
            sa.select(t.subscriptions)
            .where(su.customer_id == P("w_customer"))
            .order_by(su.created.desc(), su.id.desc())
        )


statements = per_dialect(_Statements)


class SqlSubscriptionStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.sql = statements(is_pg(conn))

    def ensure_locked(self, subscription_id: str, *, now: int) -> SubscriptionRecord:
        row = self.conn.execute(
            self.sql.ensure,
            {"id": subscription_id, "price_ids": [], "created": now, "updated": now},
        ).one()
        return _record(row)

    def update(self, subscription_id: str, **values: Any) -> SubscriptionRecord:
        unknown = set(values) - FIELDS
        assert not unknown, unknown
        if "price_ids" in values:
            values["price_ids"] = list(values["price_ids"])
        row = self.conn.execute(self.sql.update, {"w_id": subscription_id, **values}).one()
        return _record(row)

    def get(self, subscription_id: str) -> SubscriptionRecord | None:
        row = self.conn.execute(self.sql.get, {"w_id": subscription_id}).first()
        return None if row is None else _record(row)

    def of_account(self, account_id: str) -> list[SubscriptionRecord]:
        return [
            _record(r) for r in self.conn.execute(self.sql.of_account, {"w_account": account_id})
        ]

    def of_customer(self, customer_id: str) -> list[SubscriptionRecord]:
        rows = self.conn.execute(self.sql.of_customer, {"w_customer": customer_id})
        return [_record(r) for r in rows]

    def list(
        self,
        *,
        status: str | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[SubscriptionRecord]:
        su = t.subscriptions.c
        stmt = sa.select(t.subscriptions)
        if status:
            stmt = stmt.where(su.status == status)
        if account_id:
            stmt = stmt.where(su.account_id == account_id)
        if starting_after:
            stmt = stmt.where(su.id < starting_after)
        rows = self.conn.execute(stmt.order_by(su.id.desc()).limit(limit))
        return [_record(r) for r in rows]


def _record(row: Any) -> SubscriptionRecord:
    m = row._mapping
    values = {name: m[name] for name in FIELDS}
    values["price_ids"] = tuple(m["price_ids"] or ())
    values["cancel_at_period_end"] = bool(m["cancel_at_period_end"])
    values["pending_update"] = bool(m["pending_update"])
    values["livemode"] = bool(m["livemode"])
    return SubscriptionRecord(**values)

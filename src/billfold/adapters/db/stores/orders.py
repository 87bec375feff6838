"""Orders in SQL (implements ``service.ports.OrderStore``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.adapters.db.stores._raw import PG_IDS, Raw
from billfold.adapters.db.stores._sql import P, insert_for, is_pg, per_dialect
from billfold.domain import errors
from billfold.domain.orders import OrderRecord, OrderStatus
from billfold.service.ports import NewOrder

ORDER_FIELDS = frozenset(c.name for c in t.orders.columns)
ORDER_COLUMNS = tuple(c.name for c in t.orders.columns)
_RECORD_FIELDS = tuple(f.name for f in fields(OrderRecord))


def _fields(order: OrderRecord) -> dict[str, Any]:
    """``asdict`` without its deep copy (an order's fields are plain values): a batch of
    paid checkouts writes one order per delivery."""
    return {name: getattr(order, name) for name in _RECORD_FIELDS}


# A batch's rows as one JSON document (one prepared statement whatever the batch's size), as the
# ledger's batches; ``NULL::orders``: the table's own row type, every column in its order.
PG_INSERT_ORDERS = (
    "INSERT INTO orders SELECT * FROM json_populate_recordset(NULL::orders, %s::json)"
)
PG_LOCK_ORDERS = (
    f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders "
    f"WHERE key = {PG_IDS} OR id = {PG_IDS} ORDER BY id FOR UPDATE"
)


def _pg_update_orders(columns: Sequence[str]) -> str:
    assert set(columns) <= ORDER_FIELDS, columns
    assigned = ", ".join(f"{name} = v.{name}" for name in columns)
    return (
        f"UPDATE orders AS o SET {assigned} "
        "FROM json_populate_recordset(NULL::orders, %s::json) AS v WHERE o.id = v.id"
    )


class _Statements:
    def __init__(self, pg: bool) -> None:
        od = t.orders.c
        order = insert_for(pg)(t.orders)
        self.ensure_locked = order.on_conflict_do_update(
            index_elements=[od.key], set_={"key": order.excluded.key}
        ).returning(*t.orders.columns)
        by_key = sa.select(t.orders).where(od.key == P("w_key"))
        self.by_key = by_key
        self.lock_by_key = by_key.with_for_update() if pg else by_key
        self.get = sa.select(t.orders).where(od.id == P("w_id"))
        self.lock = self.get.with_for_update() if pg else self.get
        self.by_payment_intent = (
            sa.select(t.orders).where(od.payment_intent_id == P("w_pi")).order_by(od.id).limit(1)
        )
        self.update = t.orders.update().where(od.id == P("w_id")).returning(*t.orders.columns)
        self.update_quietly = t.orders.update().where(od.id == P("w_id"))
        many = (
            sa.select(t.orders)
            .where(
                sa.or_(
                    od.key.in_(P("w_keys", expanding=True)), od.id.in_(P("w_ids", expanding=True))
                )
            )
            .order_by(od.id)
        )
        self.lock_many = many.with_for_update() if pg else many
        self.insert = t.orders.insert()


statements = per_dialect(_Statements)


class SqlOrderStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.pg = is_pg(conn)
        self.sql = statements(self.pg)

    def ensure_locked(self, order: NewOrder) -> OrderRecord:
        """Insert the order unless its key exists, lock it, and return it: one statement.

        ``ON CONFLICT DO UPDATE`` takes the row lock on PostgreSQL whether or not it inserted, so
        concurrent fulfilments of one payment queue here; SQLite has a single writer anyway.
        """
        row = asdict(order) | {"updated": order.created}
        return _order(self.conn.execute(self.sql.ensure_locked, row).one())

    def lock_by_key(self, key: str) -> OrderRecord | None:
        row = self.conn.execute(self.sql.lock_by_key, {"w_key": key}).first()
        return None if row is None else _order(row)

    def lock(self, order_id: str) -> OrderRecord | None:
        row = self.conn.execute(self.sql.lock, {"w_id": order_id}).first()
        return None if row is None else _order(row)

    def get(self, order_id: str) -> OrderRecord | None:
        row = self.conn.execute(self.sql.get, {"w_id": order_id}).first()
        return None if row is None else _order(row)

    def by_key(self, key: str) -> OrderRecord | None:
        row = self.conn.execute(self.sql.by_key, {"w_key": key}).first()
        return None if row is None else _order(row)

    def by_payment_intent(self, payment_intent_id: str) -> OrderRecord | None:
        row = self.conn.execute(self.sql.by_payment_intent, {"w_pi": payment_intent_id}).first()
        return None if row is None else _order(row)

    def update(self, order_id: str, **values: Any) -> OrderRecord:
        unknown = set(values) - ORDER_FIELDS
        assert not unknown, unknown
        if not values:
            order = self.get(order_id)
            assert order is not None, order_id
            return order
        row = self.conn.execute(self.sql.update, {"w_id": order_id, **values}).first()
        if row is None:
            raise errors.OrderNotFound(f"No order {order_id!r}.", order_id=order_id)
        return _order(row)

    def lock_many(self, *, keys: Sequence[str], ids: Sequence[str]) -> list[OrderRecord]:
        if not keys and not ids:
            return []
        if self.pg:
            found = Raw(self.conn).rows(
                PG_LOCK_ORDERS, (json.dumps(list(keys)), json.dumps(list(ids)))
            )
            return [OrderRecord(**dict(zip(ORDER_COLUMNS, r, strict=True))) for r in found]
        rows = self.conn.execute(self.sql.lock_many, {"w_keys": list(keys), "w_ids": list(ids)})
        return [_order(r) for r in rows]

    def insert_many(self, orders: Sequence[OrderRecord]) -> None:
        """One multi-row ``INSERT`` (PostgreSQL: the rows as one JSON document; SQLite:
        SQLAlchemy's "insertmanyvalues")."""
        if not orders:
            return
        if self.pg:
            document = json.dumps([_fields(o) for o in orders])
            Raw(self.conn).send(PG_INSERT_ORDERS, (document,)).count()
            return
        self.conn.execute(self.sql.insert, [_fields(o) for o in orders])

    def update_many(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Each order's changes merged in order (as one ``update`` after another would leave
        it), then one ``UPDATE`` per set of columns (PostgreSQL: the rows as one JSON document;
        SQLite: an executemany, in process)."""
        merged: dict[str, dict[str, Any]] = {}
        for order_id, values in changes:
            unknown = set(values) - ORDER_FIELDS
            assert not unknown, unknown
            merged.setdefault(order_id, {}).update(values)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for order_id, values in merged.items():
            if values:
                groups.setdefault(tuple(sorted(values)), []).append({"id": order_id, **values})
        for columns, rows in groups.items():
            if self.pg:
                sql = _pg_update_orders(columns)
                Raw(self.conn).send(sql, (json.dumps(rows),)).count()
            else:
                self.conn.execute(
                    self.sql.update_quietly, [{"w_id": r.pop("id"), **r} for r in rows]
                )

    def list(
        self,
        *,
        status: OrderStatus | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[OrderRecord]:
        c = t.orders.c
        stmt = sa.select(t.orders)
        if status:
            stmt = stmt.where(c.status == status)
        if account_id:
            stmt = stmt.where(c.account_id == account_id)
        if starting_after:
            stmt = stmt.where(c.id < starting_after)
        return [_order(r) for r in self.conn.execute(stmt.order_by(c.id.desc()).limit(limit))]


def _order(row: Any) -> OrderRecord:
    return OrderRecord(**{k: row._mapping[k] for k in OrderRecord.__dataclass_fields__})

"""Orders in memory (implements ``service.ports.OrderStore``, as ``SqlOrderStore``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any, Final

from billfold.adapters.memory import _tables as t
from billfold.adapters.memory._tables import Work, refuse
from billfold.domain import errors
from billfold.domain.orders import OrderRecord, OrderStatus
from billfold.service.ports import NewOrder

ORDER_FIELDS: Final = frozenset(f.name for f in fields(OrderRecord))


class MemoryOrderStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def ensure_locked(self, order: NewOrder) -> OrderRecord:
        record = order.record()
        _check(record)
        tables = self._work.tables
        existing = tables.order_keys.get(record.key)
        if existing is not None:  # ON CONFLICT (key) DO UPDATE: the order as it stands, locked
            return tables.orders[existing]
        if record.id in tables.orders:
            refuse(t.PK_ORDERS)
        _unique_payment_intent(tables, record)
        tables.orders[record.id] = record
        tables.order_keys[record.key] = record.id
        return record

    def lock_by_key(self, key: str) -> OrderRecord | None:
        return self.by_key(key)

    def lock(self, order_id: str) -> OrderRecord | None:
        return self.get(order_id)

    def get(self, order_id: str) -> OrderRecord | None:
        return self._work.tables.orders.get(order_id)

    def by_key(self, key: str) -> OrderRecord | None:
        tables = self._work.tables
        order_id = tables.order_keys.get(key)
        return None if order_id is None else tables.orders[order_id]

    def by_payment_intent(self, payment_intent_id: str) -> OrderRecord | None:
        found = [
            o for o in self._work.tables.orders.values() if o.payment_intent_id == payment_intent_id
        ]
        return min(found, key=lambda o: o.id) if found else None

    def update(self, order_id: str, **values: Any) -> OrderRecord:
        unknown = set(values) - ORDER_FIELDS
        assert not unknown, unknown
        tables = self._work.tables
        current = tables.orders.get(order_id)
        if current is None:
            raise errors.OrderNotFound(f"No order {order_id!r}.", order_id=order_id)
        if not values:
            return current
        record = replace(current, **values)
        _check(record)
        if record.key != current.key and record.key in tables.order_keys:
            refuse(t.UQ_ORDERS_KEY)
        if record.id != current.id and record.id in tables.orders:
            refuse(t.PK_ORDERS)
        _unique_payment_intent(tables, record)
        del tables.orders[current.id]
        del tables.order_keys[current.key]
        tables.orders[record.id] = record
        tables.order_keys[record.key] = record.id
        return record

    def lock_many(self, *, keys: Sequence[str], ids: Sequence[str]) -> list[OrderRecord]:
        tables = self._work.tables
        wanted = set(ids) | {tables.order_keys[k] for k in keys if k in tables.order_keys}
        return [tables.orders[i] for i in sorted(wanted) if i in tables.orders]

    def insert_many(self, orders: Sequence[OrderRecord]) -> None:
        tables = self._work.tables
        for record in orders:
            _check(record)
            if record.key in tables.order_keys:
                refuse(t.UQ_ORDERS_KEY)
            if record.id in tables.orders:
                refuse(t.PK_ORDERS)
            _unique_payment_intent(tables, record)
            tables.orders[record.id] = record
            tables.order_keys[record.key] = record.id

    def update_many(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        for order_id, values in changes:
            self.update(order_id, **values)

    def list(
        self,
        *,
        status: OrderStatus | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[OrderRecord]:
        rows = [
            o
            for o in self._work.tables.orders.values()
            if (not status or o.status == status)
            and (not account_id or o.account_id == account_id)
            and (not starting_after or o.id < starting_after)
        ]
        rows.sort(key=lambda o: o.id, reverse=True)
        return rows[:limit]


def _unique_payment_intent(tables: t.Tables, record: OrderRecord) -> None:
    pi = record.payment_intent_id
    if pi is not None and any(
        o.payment_intent_id == pi and o.id != record.id for o in tables.orders.values()
    ):
        refuse(t.UQ_ORDERS_PAYMENT_INTENT_ID)


def _check(order: OrderRecord) -> None:
    t.varchar(
        (order.id, t.ID),
        (order.key, 255),
        (order.kind, 16),
        (order.stripe_id, 255),
        (order.payment_intent_id, 255),
        (order.account_id, t.ACCOUNT),
        (order.package, 128),
        (order.plan, 128),
        (order.currency, 16),
        (order.customer_id, 255),
        (order.customer_email, t.EMAIL),
        (order.status, 24),
        (order.resolved_by, 255),
        (order.last_event_id, 255),
    )
    t.bigint(
        order.amount,
        order.refunded_amount,
        order.disputed_amount,
        order.created,
        order.updated,
        order.fulfilled_at,
    )
    if order.status not in t.ORDER_STATUSES:
        refuse(t.CK_ORDERS_STATUS_KNOWN)
    if not order.refunded_amount >= 0:
        refuse(t.CK_ORDERS_REFUNDED_NON_NEGATIVE)

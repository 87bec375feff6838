"""The event inbox, orders and account lookups in SQL (implements the service's ports)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from billfold.adapters.db import tables as t
from billfold.adapters.db.ledger_store import insert_ignore
from billfold.service.ports import AccountRecord, EventRecord, OrderRecord

ORDER_FIELDS = {c.name for c in t.orders.columns}
P = sa.bindparam


class _Statements:
    """The webhook path's statements, built once per dialect (see ``ledger_store._Statements``)."""

    def __init__(self, pg: bool) -> None:
        insert = postgresql.insert if pg else sqlite.insert
        ev, od, ac = t.events.c, t.orders.c, t.accounts.c
        self.insert_event = insert(t.events).on_conflict_do_nothing().returning(ev.id)
        lock = sa.select(t.events).where(ev.id == P("w_id"))
        self.lock_event = lock.with_for_update() if pg else lock
        self.finish_event = (
            t.events.update()
            .where(ev.id == P("w_id"), ev.status.in_(P("w_from", expanding=True)))
            .values(
                status=P("status"),
                outcome=P("outcome"),
                processed_at=P("processed_at"),
                attempts=ev.attempts + 1,
                last_error=None,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=None,
            )
        )
        order = insert(t.orders)
        self.ensure_locked_order = order.on_conflict_do_update(
            index_elements=[od.key], set_={"key": order.excluded.key}
        ).returning(*t.orders.columns)
        lock_order = sa.select(t.orders).where(od.key == P("w_key"))
        self.lock_order_by_key = lock_order.with_for_update() if pg else lock_order
        self.order_by_key = sa.select(t.orders).where(od.key == P("w_key"))
        self.update_order = t.orders.update().where(od.id == P("w_id")).returning(*t.orders.columns)
        self.account = sa.select(t.accounts).where(ac.id == P("w_id"))
        self.fill_email = (
            t.accounts.update()
            .where(ac.id == P("w_id"), ac.email.is_(None))
            .values(email=P("email"), updated=P("updated"))
        )


STATEMENTS = {True: _Statements(pg=True), False: _Statements(pg=False)}


class SqlInboxStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.is_pg = conn.dialect.name == "postgresql"

    def insert(self, row: Mapping[str, Any]) -> bool:
        """Store an event unless its id is already in the inbox; True when this call stored it."""
        sql = STATEMENTS[self.is_pg]
        return self.conn.execute(sql.insert_event, dict(row)).first() is not None

    def get(self, event_id: str, *, with_payload: bool = True) -> EventRecord | None:
        c = t.events.c
        cols = [col for col in t.events.columns if with_payload or col.name != "payload"]
        row = self.conn.execute(sa.select(*cols).where(c.id == event_id)).first()
        return None if row is None else _event(row)

    def lock(self, event_id: str) -> EventRecord | None:
        row = self.conn.execute(STATEMENTS[self.is_pg].lock_event, {"w_id": event_id}).first()
        return None if row is None else _event(row)

    def finish(
        self,
        event_id: str,
        *,
        status: str,
        outcome: str | None,
        now: int,
        from_statuses: tuple[str, ...],
    ) -> bool:
        """Record the outcome, only if the event is still in one of ``from_statuses``."""
        result = self.conn.execute(
            STATEMENTS[self.is_pg].finish_event,
            {
                "w_id": event_id,
                "w_from": list(from_statuses),
                "status": status,
                "outcome": outcome,
                "processed_at": now,
            },
        )
        return bool(result.rowcount)

    def fail(
        self, event_id: str, *, error: str, now: int, next_attempt_at: int | None, dead: bool
    ) -> None:
        c = t.events.c
        self.conn.execute(
            t.events.update()
            .where(c.id == event_id, c.status.in_(("received", "failed")))
            .values(
                status="dead" if dead else "failed",
                last_error=error,
                attempts=c.attempts + 1,
                next_attempt_at=next_attempt_at,
                lease_owner=None,
                lease_expires_at=None,
            )
        )

    def release(self, event_id: str, *, now: int, note: str) -> None:
        """Hand an event to the worker (it needs a call to Stripe): keep it received, unleased."""
        c = t.events.c
        self.conn.execute(
            t.events.update()
            .where(c.id == event_id, c.status == "received")
            .values(lease_owner=None, lease_expires_at=None, next_attempt_at=now, outcome=note)
        )

    def claim(self, *, owner: str, now: int, lease_seconds: int, limit: int) -> list[str]:
        c = t.events.c
        due = (
            sa.select(c.id)
            .where(
                c.status.in_(("received", "failed")),
                sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
                sa.or_(c.lease_expires_at.is_(None), c.lease_expires_at <= now),
            )
            .order_by(c.received_at, c.id)
            .limit(limit)
        )
        if self.is_pg:
            due = due.with_for_update(skip_locked=True)
        result = self.conn.execute(
            t.events.update()
            .where(c.id.in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_expires_at=now + lease_seconds)
            .returning(c.id)
        )
        return [r[0] for r in result]

    def retry(self, event_id: str, *, now: int) -> bool:
        c = t.events.c
        result = self.conn.execute(
            t.events.update()
            .where(c.id == event_id, c.status.in_(("failed", "dead", "received")))
            .values(status="received", next_attempt_at=now, lease_owner=None, lease_expires_at=None)
        )
        return bool(result.rowcount)

    def reopen(self, event_id: str, *, now: int) -> None:
        """Back to ``received``, whatever the status: for an operator's replay."""
        c = t.events.c
        self.conn.execute(
            t.events.update()
            .where(c.id == event_id)
            .values(status="received", next_attempt_at=now, lease_owner=None, lease_expires_at=None)
        )

    def take_lease(self, event_id: str, *, owner: str, now: int, lease_seconds: int) -> bool:
        c = t.events.c
        result = self.conn.execute(
            t.events.update()
            .where(
                c.id == event_id,
                c.status.in_(("received", "failed", "dead")),
                sa.or_(c.lease_expires_at.is_(None), c.lease_expires_at <= now),
            )
            .values(lease_owner=owner, lease_expires_at=now + lease_seconds)
        )
        return bool(result.rowcount)

    def list(
        self, *, status: str | None, type_: str | None, limit: int, starting_after: str | None
    ) -> list[EventRecord]:
        c = t.events.c
        cols = [col for col in t.events.columns if col.name != "payload"]
        stmt = sa.select(*cols)
        if status:
            stmt = stmt.where(c.status == status)
        if type_:
            stmt = stmt.where(c.type == type_)
        if starting_after:
            anchor = self.conn.execute(
                sa.select(c.received_at).where(c.id == starting_after)
            ).scalar()
            if anchor is not None:
                stmt = stmt.where(
                    sa.or_(
                        c.received_at < anchor,
                        sa.and_(c.received_at == anchor, c.id < starting_after),
                    )
                )
        rows = self.conn.execute(stmt.order_by(c.received_at.desc(), c.id.desc()).limit(limit))
        return [_event(r) for r in rows]

    def backlog(self) -> dict[str, int]:
        c = t.events.c
        rows = self.conn.execute(
            sa.select(c.status, sa.func.count())
            .where(c.status.in_(("received", "failed", "dead")))
            .group_by(c.status)
        )
        return {status: int(n) for status, n in rows}


def _event(row: Any) -> EventRecord:
    m = row._mapping
    return EventRecord(
        id=m["id"],
        type=m["type"],
        livemode=bool(m["livemode"]),
        api_version=m["api_version"],
        stripe_created=m["stripe_created"],
        object_id=m["object_id"],
        payload=m.get("payload"),
        status=m["status"],
        attempts=m["attempts"],
        last_error=m["last_error"],
        outcome=m["outcome"],
        received_at=m["received_at"],
        processed_at=m["processed_at"],
        next_attempt_at=m["next_attempt_at"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
    )


class SqlOrderStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.is_pg = conn.dialect.name == "postgresql"

    def ensure_locked(self, row: Mapping[str, Any]) -> OrderRecord:
        """Insert the order unless its key exists, lock it, and return it: one statement.

        ``ON CONFLICT DO UPDATE`` takes the row lock on PostgreSQL whether or not it inserted, so
        concurrent fulfilments of one payment queue here; SQLite has a single writer anyway.
        """
        stmt = STATEMENTS[self.is_pg].ensure_locked_order
        return _order(self.conn.execute(stmt, dict(row)).one())

    def lock_by_key(self, key: str) -> OrderRecord | None:
        row = self.conn.execute(STATEMENTS[self.is_pg].lock_order_by_key, {"w_key": key}).first()
        return None if row is None else _order(row)

    def get(self, order_id: str) -> OrderRecord | None:
        c = t.orders.c
        row = self.conn.execute(sa.select(t.orders).where(c.id == order_id)).first()
        return None if row is None else _order(row)

    def by_key(self, key: str) -> OrderRecord | None:
        row = self.conn.execute(STATEMENTS[self.is_pg].order_by_key, {"w_key": key}).first()
        return None if row is None else _order(row)

    def by_payment_intent(self, payment_intent_id: str) -> OrderRecord | None:
        c = t.orders.c
        row = self.conn.execute(
            sa.select(t.orders).where(c.payment_intent_id == payment_intent_id).order_by(c.id)
        ).first()
        return None if row is None else _order(row)

    def update(self, order_id: str, **values: Any) -> OrderRecord:
        unknown = set(values) - ORDER_FIELDS
        assert not unknown, unknown
        if not values:
            order = self.get(order_id)
            assert order is not None, order_id
            return order
        row = self.conn.execute(
            STATEMENTS[self.is_pg].update_order, {"w_id": order_id, **values}
        ).one()
        return _order(row)

    def list(
        self, *, status: str | None, account_id: str | None, limit: int, starting_after: str | None
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


class SqlAccountStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.is_pg = conn.dialect.name == "postgresql"

    def get(self, account_id: str) -> AccountRecord | None:
        row = self.conn.execute(STATEMENTS[self.is_pg].account, {"w_id": account_id}).first()
        return None if row is None else _account(row)

    def by_stripe_customer(self, customer_id: str) -> AccountRecord | None:
        c = t.accounts.c
        row = self.conn.execute(
            sa.select(t.accounts).where(c.stripe_customer_id == customer_id)
        ).first()
        return None if row is None else _account(row)

    def by_email(self, email: str) -> list[AccountRecord]:
        c = t.accounts.c
        rows = self.conn.execute(
            sa.select(t.accounts).where(sa.func.lower(c.email) == email.lower()).limit(2)
        )
        return [_account(r) for r in rows]

    def upsert(self, account_id: str, *, now: int, **values: Any) -> None:
        c = t.accounts.c
        self.conn.execute(
            insert_ignore(self.conn, t.accounts).values(
                id=account_id, metadata={}, created=now, updated=now
            )
        )
        if values:
            self.conn.execute(
                t.accounts.update().where(c.id == account_id).values(updated=now, **values)
            )

    def link_customer(self, account_id: str, customer_id: str, *, now: int) -> None:
        """Link once: an account keeps the first Stripe customer it was linked to, and a customer
        belongs to one account."""
        c = t.accounts.c
        other = t.accounts.alias("other")
        taken = sa.exists().where(other.c.stripe_customer_id == customer_id)
        self.conn.execute(
            t.accounts.update()
            .where(c.id == account_id, c.stripe_customer_id.is_(None), ~taken)
            .values(stripe_customer_id=customer_id, updated=now)
        )

    def fill_email(self, account_id: str, email: str, *, now: int) -> None:
        """Record an e-mail on an account that has none."""
        self.conn.execute(
            STATEMENTS[self.is_pg].fill_email, {"w_id": account_id, "email": email, "updated": now}
        )


def _account(row: Any) -> AccountRecord:
    m = row._mapping
    return AccountRecord(
        id=m["id"],
        email=m["email"],
        stripe_customer_id=m["stripe_customer_id"],
        metadata=dict(m["metadata"] or {}),
        created=m["created"],
        updated=m["updated"],
    )

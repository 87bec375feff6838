"""The dashboard's aggregates in SQL (implements ``service.ports.DashboardStore``): reads only.

Buckets are integer arithmetic (``ts - ts % width``) that SQLite and PostgreSQL compute alike.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.adapters.db.stores._sql import P, per_dialect
from billfold.service.ports import BacklogRow, BucketCount, GrantSum, PurchaseRow, RevenueRow

DAY: Final = 86_400


def _bucket(column: Any, width: int) -> Any:
    """``column - column % width``, the width written into the SQL: a bound parameter would be
    a different expression in ``GROUP BY`` than in the select list, which PostgreSQL refuses."""
    return column - column % sa.literal_column(str(int(width)))


@cache
def _events(width: int) -> sa.Select[Any]:
    e = t.events.c
    bucket = _bucket(e.received_at, width)
    return (
        sa.select(bucket, e.status, sa.func.count())
        .where(e.received_at >= P("w_since"))
        .group_by(bucket, e.status)
    )


class _Statements:
    def __init__(self, pg: bool) -> None:
        del pg  # the same SQL on both
        e, o, g = t.events.c, t.orders.c, t.grants.c
        day = _bucket(o.fulfilled_at, DAY)
        self.purchases = (
            sa.select(day, o.kind, o.currency, sa.func.count(), sa.func.sum(o.amount))
            .where(o.fulfilled_at.is_not(None), o.fulfilled_at >= P("w_since"))
            .group_by(day, o.kind, o.currency)
        )
        gday = _bucket(g.created, DAY)
        self.grants = (
            sa.select(gday, g.kind, g.unit, sa.func.sum(g.amount))
            .where(g.created >= P("w_since"))
            .group_by(gday, g.kind, g.unit)
        )
        self.revenue = {
            by: sa.select(
                column,
                o.currency,
                sa.func.count(),
                sa.func.sum(o.amount),
                sa.func.sum(o.refunded_amount),
            )
            .where(column.is_not(None), o.fulfilled_at.is_not(None), o.fulfilled_at >= P("w_since"))
            .group_by(column, o.currency)
            for by, column in (("package", o.package), ("plan", o.plan))
        }
        self.latencies = (
            sa.select(o.fulfilled_at - sa.func.min(e.stripe_created))
            .select_from(t.orders.join(t.events, e.object_id == o.stripe_id))
            .where(
                o.fulfilled_at.is_not(None),
                o.fulfilled_at >= P("w_since"),
                e.stripe_created.is_not(None),
            )
            .group_by(o.id, o.fulfilled_at)
            .order_by(o.fulfilled_at.desc(), o.id.desc())
            .limit(P("w_limit"))
        )
        self.events_waiting = sa.select(
            sa.func.count().filter(e.status == "received").label("received"),
            sa.func.min(e.received_at).filter(e.status == "received").label("oldest"),
            sa.func.count().filter(e.status == "failed").label("failed"),
            sa.func.count().filter(e.status == "dead").label("dead"),
        ).where(e.status.in_(("received", "failed", "dead")))
        self.attention = sa.select(sa.func.count()).where(o.status == "needs_attention")


statements = per_dialect(_Statements)


class SqlDashboardStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.sql = statements(conn.dialect.name == "postgresql")

    def events(self, *, since: int, width: int) -> list[BucketCount]:
        rows = self.conn.execute(_events(width), {"w_since": since})
        return [BucketCount(bucket=int(b), key=s, count=int(n)) for b, s, n in rows]

    def purchases(self, *, since: int) -> list[PurchaseRow]:
        rows = self.conn.execute(self.sql.purchases, {"w_since": since})
        return [
            PurchaseRow(day=int(d), kind=k, currency=c, count=int(n), amount=int(a or 0))
            for d, k, c, n, a in rows
        ]

    def grants(self, *, since: int) -> list[GrantSum]:
        rows = self.conn.execute(self.sql.grants, {"w_since": since})
        return [GrantSum(day=int(d), kind=k, unit=u, amount=int(a)) for d, k, u, a in rows]

    def revenue(self, *, since: int, by: str) -> list[RevenueRow]:
        rows = self.conn.execute(self.sql.revenue[by], {"w_since": since})
        return [
            RevenueRow(
                name=name, currency=c, count=int(n), amount=int(a or 0), refunded=int(r or 0)
            )
            for name, c, n, a, r in rows
        ]

    def latencies(self, *, since: int, limit: int) -> list[int]:
        rows = self.conn.execute(self.sql.latencies, {"w_since": since, "w_limit": limit})
        return [int(seconds) for (seconds,) in rows]

    def backlog(self) -> BacklogRow:
        row = self.conn.execute(self.sql.events_waiting).one()
        attention = self.conn.execute(self.sql.attention).scalar_one()
        return BacklogRow(
            received=int(row.received or 0),
            oldest_received_at=None if row.oldest is None else int(row.oldest),
            failed=int(row.failed or 0),
            dead=int(row.dead or 0),
            needs_attention_orders=int(attention),
        )

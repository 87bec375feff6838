"""The outbox and the application's endpoints in SQL (implements
``service.ports.NotificationStore``)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Sequence
from typing import Any, cast

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.adapters.db.stores._raw import PG_IDS, Raw
from billfold.adapters.db.stores._sql import P, is_pg, per_dialect
from billfold.domain.notifications import EndpointRecord, NotificationRecord, NotificationStatus
from billfold.service.ports import NewNotification, NotificationAttempt

# A round's rows as one JSON document (one prepared text whatever their number), as the ledger's
# batches; ``data`` and ``delivered_to`` come back as text and are decoded here, once.
NOTIFICATION_COLUMNS = (
    "id, type, account_id, data::text, created, status, attempts, next_attempt_at, last_error, "
    "delivered_to::text, updated"
)
PG_GET_NOTIFICATIONS = f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = {PG_IDS}"
PG_FINISH_NOTIFICATIONS = (
    "UPDATE notifications AS n SET status = v.s, attempts = v.a, next_attempt_at = v.x, "
    "last_error = v.e, delivered_to = v.d, lease_owner = NULL, lease_expires_at = NULL, "
    "updated = %s FROM json_to_recordset(%s::json) AS v(i varchar, s varchar, a int, x bigint, "
    "e text, d json) WHERE n.id = v.i AND n.lease_owner = %s AND n.status = 'pending'"
)
# The delivery round's claim and the endpoints it reads, run at every round: prepared once on
# the server (SQLAlchemy built and compiled the claim's statement anew each round: a twentieth
# of the server's CPU in the webhook benchmark).
PG_DUE = (
    "SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_at <= %s "
    "AND (lease_expires_at IS NULL OR lease_expires_at <= %s) "
    "ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED"
)
"""The pending notifications due and not leased, oldest first (parameters: now, now, limit)."""
PG_CLAIM = (
    f"UPDATE notifications SET lease_owner = %s, lease_expires_at = %s WHERE id IN ({PG_DUE}) "
    "RETURNING id"
)
PG_SETTLE_UNROUTED = (
    "UPDATE notifications SET status = 'delivered', attempts = attempts + 1, "
    "next_attempt_at = NULL, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL, "
    f"updated = %s WHERE id IN ({PG_DUE}) RETURNING type"
)
PG_ENDPOINTS = (
    "SELECT id, url, secrets::text, types::text, created FROM notification_endpoints "
    "ORDER BY created, id"
)


class _Statements:
    def __init__(self, pg: bool) -> None:
        c = t.notifications.c
        self.get_many = sa.select(t.notifications).where(c.id.in_(P("w_ids", expanding=True)))
        self.finish = (
            t.notifications.update()
            .where(c.id == P("w_id"), c.lease_owner == P("w_owner"), c.status == "pending")
            .values(
                status=P("status"),
                attempts=P("attempts"),
                next_attempt_at=P("next_attempt_at"),
                last_error=P("last_error"),
                delivered_to=P("delivered_to", type_=c.delivered_to.type),
                lease_owner=None,
                lease_expires_at=None,
                updated=P("updated"),
            )
        )


statements = per_dialect(_Statements)


class SqlNotificationStore:
    def __init__(self, conn: sa.Connection, *, pending: Callable[[], None] | None = None) -> None:
        """``pending`` writes what the transaction's ledger store has queued (its notifications
        go out at commit), so that what this store reads includes them."""
        self.conn = conn
        self._pending = pending or (lambda: None)
        self.is_pg = is_pg(conn)
        self.sql = statements(self.is_pg)

    def add(self, notification: NewNotification) -> None:
        self.conn.execute(
            t.notifications.insert().values(
                id=notification.id,
                type=notification.type,
                account_id=notification.account_id,
                data=dict(notification.data),
                created=notification.created,
                status="pending",
                attempts=0,
                next_attempt_at=notification.created,
                delivered_to=[],
                updated=notification.created,
            )
        )

    def get(self, notification_id: str) -> NotificationRecord | None:
        self._pending()
        row = self.conn.execute(
            sa.select(t.notifications).where(t.notifications.c.id == notification_id)
        ).first()
        return _record(row) if row is not None else None

    def get_many(self, notification_ids: Sequence[str]) -> builtins.list[NotificationRecord]:
        if not notification_ids:
            return []
        self._pending()
        if self.is_pg:
            rows = Raw(self.conn).rows(PG_GET_NOTIFICATIONS, (json.dumps(list(notification_ids)),))
            found = {r[0]: _pg_record(r) for r in rows}
        else:
            result = self.conn.execute(self.sql.get_many, {"w_ids": list(notification_ids)})
            found = {r.id: _record(r) for r in result}
        return [found[i] for i in notification_ids if i in found]

    def claim(self, *, owner: str, now: int, lease_seconds: int, limit: int) -> list[str]:
        self._pending()
        if self.is_pg:
            args = (owner, now + lease_seconds, now, now, limit)
            return sorted(str(r[0]) for r in Raw(self.conn).rows(PG_CLAIM, args))
        c = t.notifications.c
        result = self.conn.execute(
            t.notifications.update()
            .where(c.id.in_(self._due(now, limit)))
            .values(lease_owner=owner, lease_expires_at=now + lease_seconds)
            .returning(c.id)
        )
        return sorted(r[0] for r in result)

    def settle_unrouted(self, *, now: int, limit: int) -> builtins.list[str]:
        self._pending()
        if self.is_pg:
            rows = Raw(self.conn).rows(PG_SETTLE_UNROUTED, (now, now, now, limit))
            return [str(r[0]) for r in rows]
        c = t.notifications.c
        result = self.conn.execute(
            t.notifications.update()
            .where(c.id.in_(self._due(now, limit)))
            .values(
                status="delivered",
                attempts=c.attempts + 1,
                next_attempt_at=None,
                last_error=None,
                lease_owner=None,
                lease_expires_at=None,
                updated=now,
            )
            .returning(c.type)
        )
        return [str(r[0]) for r in result]

    def _due(self, now: int, limit: int) -> Any:
        """SQLite: the ids of the pending notifications due and not leased, oldest first."""
        c = t.notifications.c
        return (
            sa.select(c.id)
            .where(
                c.status == "pending",
                c.next_attempt_at <= now,
                sa.or_(c.lease_expires_at.is_(None), c.lease_expires_at <= now),
            )
            .order_by(c.next_attempt_at, c.id)
            .limit(limit)
            .scalar_subquery()
        )

    def finish(
        self,
        notification_id: str,
        *,
        owner: str,
        status: NotificationStatus,
        attempts: int,
        next_attempt_at: int | None,
        last_error: str | None,
        delivered_to: Sequence[str],
        now: int,
    ) -> bool:
        self._pending()
        c = t.notifications.c
        result = self.conn.execute(
            t.notifications.update()
            .where(c.id == notification_id, c.lease_owner == owner, c.status == "pending")
            .values(
                status=status,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                last_error=last_error,
                delivered_to=list(delivered_to),
                lease_owner=None,
                lease_expires_at=None,
                updated=now,
            )
        )
        return bool(result.rowcount)

    def finish_many(self, attempts: Sequence[NotificationAttempt], *, owner: str, now: int) -> None:
        """One statement for all (PostgreSQL: the rows as one JSON document; SQLite runs an
        executemany in process)."""
        if not attempts:
            return
        self._pending()
        if self.is_pg:
            document = json.dumps(
                [
                    {
                        "i": a.id,
                        "s": a.status,
                        "a": a.attempts,
                        "x": a.next_attempt_at,
                        "e": a.last_error,
                        "d": list(a.delivered_to),
                    }
                    for a in attempts
                ]
            )
            Raw(self.conn).send(PG_FINISH_NOTIFICATIONS, (now, document, owner)).count()
            return
        self.conn.execute(
            self.sql.finish,
            [
                {
                    "w_id": a.id,
                    "w_owner": owner,
                    "status": a.status,
                    "attempts": a.attempts,
                    "next_attempt_at": a.next_attempt_at,
                    "last_error": a.last_error,
                    "delivered_to": list(a.delivered_to),
                    "updated": now,
                }
                for a in attempts
            ],
        )

    def redeliver(self, notification_id: str, *, now: int) -> bool:
        self._pending()
        c = t.notifications.c
        result = self.conn.execute(
            t.notifications.update()
            .where(c.id == notification_id)
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=now,
                delivered_to=[],
                lease_owner=None,
                lease_expires_at=None,
                updated=now,
            )
        )
        return bool(result.rowcount)

    def list(
        self,
        *,
        status: NotificationStatus | None,
        type_: str | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[NotificationRecord]:
        self._pending()
        c = t.notifications.c
        stmt = sa.select(t.notifications)
        if status:
            stmt = stmt.where(c.status == status)
        if type_:
            stmt = stmt.where(c.type == type_)
        if account_id:
            stmt = stmt.where(c.account_id == account_id)
        if starting_after:
            stmt = stmt.where(c.id < starting_after)  # ids grow with time
        rows = self.conn.execute(stmt.order_by(c.id.desc()).limit(limit))
        return [_record(r) for r in rows]

    def add_endpoint(self, endpoint: EndpointRecord) -> None:
        self.conn.execute(
            t.notification_endpoints.insert().values(
                id=endpoint.id,
                url=endpoint.url,
                secrets=list(endpoint.secrets),
                types=list(endpoint.types),
                created=endpoint.created,
            )
        )

    def get_endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        row = self.conn.execute(
            sa.select(t.notification_endpoints).where(t.notification_endpoints.c.id == endpoint_id)
        ).first()
        return _endpoint(row) if row is not None else None

    def set_endpoint_secrets(self, endpoint_id: str, secrets: Sequence[str]) -> None:
        self.conn.execute(
            t.notification_endpoints.update()
            .where(t.notification_endpoints.c.id == endpoint_id)
            .values(secrets=list(secrets))
        )

    def endpoints(self) -> builtins.list[EndpointRecord]:
        if self.is_pg:
            return [
                EndpointRecord(
                    id=id_,
                    url=url,
                    secrets=tuple(json.loads(secrets)),
                    types=tuple(json.loads(types) or ()),
                    created=created,
                )
                for id_, url, secrets, types, created in Raw(self.conn).rows(PG_ENDPOINTS)
            ]
        rows = self.conn.execute(
            sa.select(t.notification_endpoints).order_by(
                t.notification_endpoints.c.created, t.notification_endpoints.c.id
            )
        )
        return [_endpoint(r) for r in rows]


def _record(row: Any) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        type=row.type,
        account_id=row.account_id,
        data=row.data,
        created=row.created,
        status=cast(NotificationStatus, row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        delivered_to=tuple(row.delivered_to or ()),
        updated=row.updated,
    )


def _pg_record(row: tuple[Any, ...]) -> NotificationRecord:
    (id_, type_, account_id, data, created, status, attempts, next_at, error, to, updated) = row
    return NotificationRecord(
        id=id_,
        type=type_,
        account_id=account_id,
        data=json.loads(data),
        created=created,
        status=cast(NotificationStatus, status),
        attempts=attempts,
        next_attempt_at=next_at,
        last_error=error,
        delivered_to=tuple(json.loads(to) or ()),
        updated=updated,
    )


def _endpoint(row: Any) -> EndpointRecord:
    return EndpointRecord(
        id=row.id,
        url=row.url,
        secrets=tuple(row.secrets),
        types=tuple(row.types or ()),
        created=row.created,
    )

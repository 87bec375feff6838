"""The event inbox in SQL (implements ``service.ports.InboxStore``)."""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.adapters.db.stores._raw import PG_IDS, Raw
from billfold.adapters.db.stores._sql import P, insert_for, is_pg, per_dialect
from billfold.domain.records import (
    EventAttempt,
    EventRecord,
    EventStatus,
    InboundEvent,
    TimeRange,
)

# A batch's rows as one JSON document (one statement text whatever the batch's size, prepared
# once: SQLAlchemy's "insertmanyvalues" writes a new text for each size, which psycopg parses
# anew). As the ledger's batches (ledger_batch.py).
PG_INSERT_EVENTS = (
    "INSERT INTO events (id, type, livemode, api_version, stripe_created, object_id, payload, "
    "status, attempts, received_at, next_attempt_at) "
    "SELECT i, t, l, v, c, o, p, 'received', 0, %s, %s FROM json_to_recordset(%s::json) AS "
    "e(i varchar, t varchar, l boolean, v varchar, c bigint, o varchar, p text) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)

EVENT_COLUMNS = tuple(c.name for c in t.events.columns)
PG_GET_EVENTS = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id = {PG_IDS}"
PG_LOCK_EVENTS = (
    f"SELECT {', '.join(c for c in EVENT_COLUMNS if c != 'payload')} FROM events "
    f"WHERE id = {PG_IDS} ORDER BY id FOR UPDATE"
)
PG_FINISH_EVENTS = (
    "UPDATE events AS e SET status = v.s, outcome = v.o, processed_at = %s, "
    "attempts = e.attempts + 1, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL, "
    "next_attempt_at = NULL FROM json_to_recordset(%s::json) AS v(i varchar, s varchar, o text) "
    f"WHERE e.id = v.i AND e.status = {PG_IDS}"
)
PG_RELEASE_EVENTS = (
    "UPDATE events SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = %s, "
    f"outcome = %s WHERE id = {PG_IDS} AND status = 'received'"
)


class _Statements:
    def __init__(self, pg: bool) -> None:
        ev = t.events.c
        self.insert_event = insert_for(pg)(t.events).on_conflict_do_nothing().returning(ev.id)
        lock = sa.select(t.events).where(ev.id == P("w_id"))
        self.lock_event = lock.with_for_update() if pg else lock
        # What finishing an event sets, from one of the statuses asked for.
        finished = {
            "status": P("status"),
            "outcome": P("outcome"),
            "processed_at": P("processed_at"),
            "attempts": ev.attempts + 1,
            "last_error": None,
            "lease_owner": None,
            "lease_expires_at": None,
            "next_attempt_at": None,
        }
        self.get_events = sa.select(t.events).where(ev.id.in_(P("w_ids", expanding=True)))
        lock_events = (
            sa.select(*(c for c in t.events.columns if c.name != "payload"))
            .where(ev.id.in_(P("w_ids", expanding=True)))
            .order_by(ev.id)
        )
        self.lock_events = lock_events.with_for_update() if pg else lock_events
        self.release_events = (
            t.events.update()
            .where(ev.id.in_(P("w_ids", expanding=True)), ev.status == "received")
            .values(
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=P("now"),
                outcome=P("note"),
            )
        )
        self.finish_event = (
            t.events.update()
            .where(ev.id == P("w_id"), ev.status.in_(P("w_from", expanding=True)))
            .values(**finished)
        )
        # One parameter per status (an executemany takes no expanding list): up to all five.
        self.finish_from = [
            t.events.update()
            .where(ev.id == P("w_id"), ev.status.in_([P(f"w_from_{i}") for i in range(n)]))
            .values(**finished)
            for n in range(len(typing.get_args(EventStatus)) + 1)
        ]


statements = per_dialect(_Statements)


class SqlInboxStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.sql = statements(is_pg(conn))
        self.is_pg = is_pg(conn)

    def insert(self, event: InboundEvent, *, now: int, lease: tuple[str, int] | None) -> bool:
        """Store an event unless its id is already in the inbox; True when this call stored it."""
        row = _row(event, now=now, lease=lease)
        return self.conn.execute(self.sql.insert_event, row).first() is not None

    def insert_many(self, events: Sequence[InboundEvent], *, now: int) -> set[str]:
        """One multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` (PostgreSQL: the rows
        as one JSON document; SQLite: SQLAlchemy's "insertmanyvalues")."""
        if not events:
            return set()
        if self.is_pg:
            document = json.dumps(
                [
                    {
                        "i": e.id,
                        "t": e.type,
                        "l": e.livemode,
                        "v": e.api_version,
                        "c": e.created,
                        "o": e.object_id,
                        "p": e.payload,
                    }
                    for e in events
                ]
            )
            rows = Raw(self.conn).rows(PG_INSERT_EVENTS, (now, now, document))
            return {str(r[0]) for r in rows}
        inserted = [_row(e, now=now, lease=None) for e in events]
        return {r[0] for r in self.conn.execute(self.sql.insert_event, inserted)}

    def get(self, event_id: str, *, with_payload: bool = True) -> EventRecord | None:
        c = t.events.c
        cols = [col for col in t.events.columns if with_payload or col.name != "payload"]
        row = self.conn.execute(sa.select(*cols).where(c.id == event_id)).first()
        return None if row is None else _event(row)

    def lock(self, event_id: str) -> EventRecord | None:
        row = self.conn.execute(self.sql.lock_event, {"w_id": event_id}).first()
        return None if row is None else _event(row)

    def get_many(self, event_ids: Sequence[str]) -> list[EventRecord]:
        """One read (PostgreSQL: the ids as one JSON document, one prepared text)."""
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return []
        if self.is_pg:
            rows = Raw(self.conn).rows(PG_GET_EVENTS, (json.dumps(ids),))
            found = {r[0]: _event_of(dict(zip(EVENT_COLUMNS, r, strict=True))) for r in rows}
        else:
            result = self.conn.execute(self.sql.get_events, {"w_ids": ids})
            found = {r.id: _event(r) for r in result}
        return [found[i] for i in ids if i in found]

    def lock_many(self, event_ids: Sequence[str]) -> list[EventRecord]:
        ids = sorted(set(event_ids))
        if not ids:
            return []
        if self.is_pg:
            columns = [c for c in EVENT_COLUMNS if c != "payload"]
            rows = Raw(self.conn).rows(PG_LOCK_EVENTS, (json.dumps(ids),))
            return [_event_of(dict(zip(columns, r, strict=True))) for r in rows]
        return [_event(r) for r in self.conn.execute(self.sql.lock_events, {"w_ids": ids})]

    def finish_many(
        self,
        outcomes: Sequence[tuple[str, EventStatus, str | None]],
        *,
        now: int,
        from_statuses: tuple[EventStatus, ...],
    ) -> None:
        """One statement (PostgreSQL: the rows as one JSON document)."""
        if not outcomes:
            return
        if self.is_pg:
            document = json.dumps([{"i": i, "s": s, "o": o} for i, s, o in outcomes])
            Raw(self.conn).send(
                PG_FINISH_EVENTS, (now, document, json.dumps(list(from_statuses)))
            ).count()
            return
        statuses = {f"w_from_{i}": s for i, s in enumerate(dict.fromkeys(from_statuses))}
        self.conn.execute(
            self.sql.finish_from[len(statuses)],
            [
                {"w_id": event_id, "status": s, "outcome": o, "processed_at": now, **statuses}
                for event_id, s, o in outcomes
            ],
        )

    def finish(
        self,
        event_id: str,
        *,
        status: EventStatus,
        outcome: str | None,
        now: int,
        from_statuses: tuple[EventStatus, ...],
    ) -> bool:
        """Record the outcome, only if the event is still in one of ``from_statuses``."""
        result = self.conn.execute(
            self.sql.finish_event,
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
        self,
        event_id: str,
        *,
        error: str,
        now: int,
        next_attempt_at: int | None,
        dead: bool,
        worker: str | None = None,
    ) -> None:
        c = t.events.c
        status = "dead" if dead else "failed"
        failed = self.conn.execute(
            t.events.update()
            .where(c.id == event_id, c.status.in_(("received", "failed")))
            .values(
                status=status,
                last_error=error,
                attempts=c.attempts + 1,
                next_attempt_at=next_attempt_at,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        if failed.rowcount:
            self.record_attempt(event_id, outcome=status, now=now, error=error, worker=worker)

    def record_attempt(
        self, event_id: str, *, outcome: str, now: int, error: str | None, worker: str | None
    ) -> None:
        c = t.events.c
        # The attempt's number is the event's counter, read in the same statement.
        row = sa.select(
            c.id,
            c.attempts,
            sa.literal(now, sa.BigInteger),
            sa.literal(outcome, sa.String),
            sa.literal(error, sa.Text),
            sa.literal(worker, sa.String),
        ).where(c.id == event_id)
        a = t.event_attempts.c
        self.conn.execute(
            t.event_attempts.insert().from_select(
                [a.event_id, a.attempt, a.at, a.outcome, a.error, a.worker], row
            )
        )

    def attempt_history(self, event_id: str) -> list[EventAttempt]:
        a = t.event_attempts.c
        rows = self.conn.execute(
            sa.select(t.event_attempts).where(a.event_id == event_id).order_by(a.attempt)
        )
        return [
            EventAttempt(
                event_id=r.event_id,
                attempt=r.attempt,
                at=r.at,
                outcome=r.outcome,
                error=r.error,
                worker=r.worker,
            )
            for r in rows
        ]

    def release(self, event_id: str, *, now: int, note: str) -> None:
        """Hand an event to the worker (it needs a call to Stripe): keep it received, unleased."""
        c = t.events.c
        self.conn.execute(
            t.events.update()
            .where(c.id == event_id, c.status == "received")
            .values(lease_owner=None, lease_expires_at=None, next_attempt_at=now, outcome=note)
        )

    def release_many(self, event_ids: Sequence[str], *, now: int, note: str) -> None:
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return
        if self.is_pg:
            Raw(self.conn).send(PG_RELEASE_EVENTS, (now, note, json.dumps(ids))).count()
            return
        self.conn.execute(self.sql.release_events, {"w_ids": ids, "now": now, "note": note})

    def unlease(self, event_id: str, *, owner: str) -> bool:
        c = t.events.c
        done = self.conn.execute(
            t.events.update()
            .where(c.id == event_id, c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
        return bool(done.rowcount)

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

    def list(
        self,
        *,
        status: EventStatus | None,
        type_: str | None,
        limit: int,
        starting_after: str | None,
        created: TimeRange | None = None,
    ) -> list[EventRecord]:
        c = t.events.c
        cols = [col for col in t.events.columns if col.name != "payload"]
        stmt = sa.select(*cols)
        if status:
            stmt = stmt.where(c.status == status)
        if type_:
            stmt = stmt.where(c.type == type_)
        if created is not None and not created.unbounded:
            at = sa.func.coalesce(c.stripe_created, c.received_at)
            if created.gt is not None:
                stmt = stmt.where(at > created.gt)
            if created.gte is not None:
                stmt = stmt.where(at >= created.gte)
            if created.lt is not None:
                stmt = stmt.where(at < created.lt)
            if created.lte is not None:
                stmt = stmt.where(at <= created.lte)
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

    def oldest_waiting(self) -> int | None:
        c = t.events.c
        value = self.conn.execute(
            sa.select(sa.func.min(c.received_at)).where(c.status.in_(("received", "failed")))
        ).scalar()
        return None if value is None else int(value)

    def beat(self, owner: str, *, now: int) -> None:
        c = t.worker_heartbeats.c
        self.conn.execute(
            insert_for(is_pg(self.conn))(t.worker_heartbeats)
            .values(owner=owner, beat_at=now)
            .on_conflict_do_update(index_elements=[c.owner], set_={"beat_at": now})
        )
        # Workers that stopped long ago are forgotten (a day).
        self.conn.execute(sa.delete(t.worker_heartbeats).where(c.beat_at < now - 86_400))

    def last_beat(self) -> int | None:
        value = self.conn.execute(sa.select(sa.func.max(t.worker_heartbeats.c.beat_at))).scalar()
        return None if value is None else int(value)


def _event(row: Any) -> EventRecord:
    return _event_of(row._mapping)


def _event_of(m: Any) -> EventRecord:
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


def _row(event: InboundEvent, *, now: int, lease: tuple[str, int] | None) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "livemode": event.livemode,
        "api_version": event.api_version,
        "stripe_created": event.created,
        "object_id": event.object_id,
        "payload": event.payload,
        "status": "received",
        "attempts": 0,
        "received_at": now,
        "next_attempt_at": now,
        "lease_owner": lease[0] if lease else None,
        "lease_expires_at": lease[1] if lease else None,
    }

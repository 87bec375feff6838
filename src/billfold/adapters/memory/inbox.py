"""The event inbox in memory (implements ``service.ports.InboxStore``, as ``SqlInboxStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from billfold.adapters.memory import _tables as t
from billfold.adapters.memory._tables import Work, refuse
from billfold.domain.records import (
    EventAttempt,
    EventRecord,
    EventStatus,
    InboundEvent,
    TimeRange,
)

_CLAIMABLE = ("received", "failed")
_FAILABLE = ("received", "failed")
_RETRYABLE = ("failed", "dead", "received")
_BACKLOG = ("received", "failed", "dead")


class MemoryInboxStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def insert(self, event: InboundEvent, *, now: int, lease: tuple[str, int] | None) -> bool:
        record = EventRecord(
            id=event.id,
            type=event.type,
            livemode=event.livemode,
            api_version=event.api_version,
            stripe_created=event.created,
            object_id=event.object_id,
            payload=event.payload,
            status="received",
            attempts=0,
            last_error=None,
            outcome=None,
            received_at=now,
            processed_at=None,
            next_attempt_at=now,
            lease_owner=lease[0] if lease else None,
            lease_expires_at=lease[1] if lease else None,
        )
        _check(record)
        events = self._work.tables.events
        if record.id in events:
            return False  # ON CONFLICT DO NOTHING: the id is the gate
        events[record.id] = record
        return True

    def insert_many(self, events: Sequence[InboundEvent], *, now: int) -> set[str]:
        return {e.id for e in events if self.insert(e, now=now, lease=None)}

    def get(self, event_id: str, *, with_payload: bool = True) -> EventRecord | None:
        record = self._work.tables.events.get(event_id)
        if record is None or with_payload:
            return record
        return replace(record, payload=None)

    def lock(self, event_id: str) -> EventRecord | None:
        return self._work.tables.events.get(event_id)

    def get_many(self, event_ids: Sequence[str]) -> list[EventRecord]:
        events = self._work.tables.events
        return [events[i] for i in dict.fromkeys(event_ids) if i in events]

    def lock_many(self, event_ids: Sequence[str]) -> list[EventRecord]:
        events = self._work.tables.events
        return [replace(events[i], payload=None) for i in sorted(set(event_ids)) if i in events]

    def finish_many(
        self,
        outcomes: Sequence[tuple[str, EventStatus, str | None]],
        *,
        now: int,
        from_statuses: tuple[EventStatus, ...],
    ) -> None:
        for event_id, status, outcome in outcomes:
            self.finish(
                event_id, status=status, outcome=outcome, now=now, from_statuses=from_statuses
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
        return self._update(
            event_id,
            from_statuses,
            status=status,
            outcome=outcome,
            processed_at=now,
            attempts=lambda r: r.attempts + 1,
            last_error=None,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=None,
        )

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
        status = "dead" if dead else "failed"
        failed = self._update(
            event_id,
            _FAILABLE,
            status=status,
            last_error=error,
            attempts=lambda r: r.attempts + 1,
            next_attempt_at=next_attempt_at,
            lease_owner=None,
            lease_expires_at=None,
        )
        if failed:
            self.record_attempt(event_id, outcome=status, now=now, error=error, worker=worker)

    def record_attempt(
        self, event_id: str, *, outcome: str, now: int, error: str | None, worker: str | None
    ) -> None:
        event = self._work.tables.events.get(event_id)
        if event is None:
            return  # INSERT ... SELECT from no row
        attempt = EventAttempt(
            event_id=event_id,
            attempt=event.attempts,
            at=now,
            outcome=outcome,
            error=error,
            worker=worker,
        )
        t.bigint(now)
        t.varchar((outcome, 16), (worker, 200))
        history = self._work.tables.event_attempts
        if (event_id, attempt.attempt) in history:
            refuse(t.PK_EVENT_ATTEMPTS)
        history[(event_id, attempt.attempt)] = attempt

    def attempt_history(self, event_id: str) -> list[EventAttempt]:
        history = self._work.tables.event_attempts
        return sorted(
            (a for (e, _), a in history.items() if e == event_id), key=lambda a: a.attempt
        )

    def release(self, event_id: str, *, now: int, note: str) -> None:
        self._update(
            event_id,
            ("received",),
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=now,
            outcome=note,
        )

    def release_many(self, event_ids: Sequence[str], *, now: int, note: str) -> None:
        for event_id in event_ids:
            self.release(event_id, now=now, note=note)

    def unlease(self, event_id: str, *, owner: str) -> bool:
        current = self._work.tables.events.get(event_id)
        if current is None or current.lease_owner != owner:
            return False
        return self._update(event_id, None, lease_owner=None, lease_expires_at=None)

    def claim(self, *, owner: str, now: int, lease_seconds: int, limit: int) -> list[str]:
        events = self._work.tables.events
        due = sorted(
            (
                r
                for r in events.values()
                if r.status in _CLAIMABLE
                and (r.next_attempt_at is None or r.next_attempt_at <= now)
                and (r.lease_expires_at is None or r.lease_expires_at <= now)
            ),
            key=lambda r: (r.received_at, r.id),
        )[:limit]
        t.varchar((owner, 128))
        t.bigint(now + lease_seconds)
        for r in due:
            events[r.id] = replace(r, lease_owner=owner, lease_expires_at=now + lease_seconds)
        return [r.id for r in due]

    def retry(self, event_id: str, *, now: int) -> bool:
        return self._update(
            event_id,
            _RETRYABLE,
            status="received",
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )

    def reopen(self, event_id: str, *, now: int) -> None:
        self._update(
            event_id,
            None,
            status="received",
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
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
        events = self._work.tables.events
        rows = [
            r
            for r in events.values()
            if (not status or r.status == status)
            and (not type_ or r.type == type_)
            and (created is None or _created(r) in created)
        ]
        anchor = events.get(starting_after) if starting_after else None
        if anchor is not None:
            # The anchor's own place in the order: (received_at, id), newest first.
            after = (anchor.received_at, anchor.id)
            rows = [r for r in rows if (r.received_at, r.id) < after]
        rows.sort(key=lambda r: (r.received_at, r.id), reverse=True)
        return [replace(r, payload=None) for r in rows[:limit]]

    def backlog(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self._work.tables.events.values():
            if r.status in _BACKLOG:
                counts[r.status] = counts.get(r.status, 0) + 1
        return counts

    def oldest_waiting(self) -> int | None:
        waiting = [
            r.received_at
            for r in self._work.tables.events.values()
            if r.status in ("received", "failed")
        ]
        return min(waiting) if waiting else None

    def beat(self, owner: str, *, now: int) -> None:
        beats = self._work.tables.heartbeats
        beats[owner] = now
        for stale in [o for o, at in beats.items() if at < now - 86_400]:
            del beats[stale]

    def last_beat(self) -> int | None:
        beats = self._work.tables.heartbeats
        return max(beats.values()) if beats else None

    def _update(self, event_id: str, from_statuses: tuple[str, ...] | None, **values: Any) -> bool:
        """UPDATE one event, if it is in one of ``from_statuses`` (any, for None); a callable
        value is computed from the row, as ``attempts = attempts + 1``."""
        events = self._work.tables.events
        current = events.get(event_id)
        if current is None or (from_statuses is not None and current.status not in from_statuses):
            return False
        changes = {k: v(current) if callable(v) else v for k, v in values.items()}
        record = replace(current, **changes)
        _check(record)
        events[event_id] = record
        return True


def _created(record: EventRecord) -> int:
    """Stripe's time of the event, or when it was received (as ``COALESCE`` in SQL)."""
    return record.received_at if record.stripe_created is None else record.stripe_created


def _check(record: EventRecord) -> None:
    t.varchar(
        (record.id, 255),
        (record.type, 128),
        (record.api_version, 64),
        (record.object_id, 255),
        (record.status, 16),
        (record.lease_owner, 128),
    )
    t.bigint(
        record.stripe_created,
        record.received_at,
        record.processed_at,
        record.next_attempt_at,
        record.lease_expires_at,
    )
    t.integer(record.attempts)
    if record.status not in t.EVENT_STATUSES:
        refuse(t.CK_EVENTS_STATUS_KNOWN)

"""The outbox and the application's endpoints in memory (``service.ports.NotificationStore``)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import replace

from billfold.adapters.memory import _tables as t
from billfold.adapters.memory._tables import Work, refuse
from billfold.domain.notifications import EndpointRecord, NotificationRecord, NotificationStatus
from billfold.service.ports import NewNotification, NotificationAttempt


def add_notification(work: Work, notification: NewNotification) -> None:
    t.varchar(
        (notification.id, t.ID), (notification.type, 64), (notification.account_id, t.ACCOUNT)
    )
    t.bigint(notification.created)
    if notification.id in work.tables.notifications:
        refuse(t.PK_NOTIFICATIONS)
    work.tables.notifications[notification.id] = NotificationRecord(
        id=notification.id,
        type=notification.type,
        account_id=notification.account_id,
        data=dict(notification.data),
        created=notification.created,
        status="pending",
        attempts=0,
        next_attempt_at=notification.created,
        last_error=None,
        delivered_to=(),
        updated=notification.created,
    )


class MemoryNotificationStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def add(self, notification: NewNotification) -> None:
        add_notification(self._work, notification)

    def get(self, notification_id: str) -> NotificationRecord | None:
        return self._work.tables.notifications.get(notification_id)

    def get_many(self, notification_ids: Sequence[str]) -> builtins.list[NotificationRecord]:
        found = self._work.tables.notifications
        return [found[i] for i in notification_ids if i in found]

    def _due(self, now: int, limit: int) -> builtins.list[NotificationRecord]:
        """The pending notifications due at ``now`` and not leased, oldest first."""
        tables = self._work.tables
        return sorted(
            (
                n
                for n in tables.notifications.values()
                if n.status == "pending"
                and n.next_attempt_at is not None
                and n.next_attempt_at <= now
                and tables.notification_leases.get(n.id, ("", 0))[1] <= now
            ),
            key=lambda n: (n.next_attempt_at or 0, n.id),
        )[:limit]

    def claim(self, *, owner: str, now: int, lease_seconds: int, limit: int) -> list[str]:
        tables = self._work.tables
        due = self._due(now, limit)
        if due:
            t.varchar((owner, 128))
        for n in due:
            tables.notification_leases[n.id] = (owner, now + lease_seconds)
        return sorted(n.id for n in due)

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
        tables = self._work.tables
        found = tables.notifications.get(notification_id)
        lease = tables.notification_leases.get(notification_id)
        if found is None or found.status != "pending" or lease is None or lease[0] != owner:
            return False
        del tables.notification_leases[notification_id]
        tables.notifications[notification_id] = replace(
            found,
            status=status,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_error=last_error,
            delivered_to=tuple(delivered_to),
            updated=now,
        )
        return True

    def finish_many(self, attempts: Sequence[NotificationAttempt], *, owner: str, now: int) -> None:
        for a in attempts:
            self.finish(
                a.id,
                owner=owner,
                status=a.status,
                attempts=a.attempts,
                next_attempt_at=a.next_attempt_at,
                last_error=a.last_error,
                delivered_to=a.delivered_to,
                now=now,
            )

    def settle_unrouted(self, *, now: int, limit: int) -> builtins.list[str]:
        tables = self._work.tables
        due = self._due(now, limit)
        for n in due:
            tables.notification_leases.pop(n.id, None)
            tables.notifications[n.id] = replace(
                n,
                status="delivered",
                attempts=n.attempts + 1,
                next_attempt_at=None,
                last_error=None,
                updated=now,
            )
        return [n.type for n in due]

    def redeliver(self, notification_id: str, *, now: int) -> bool:
        tables = self._work.tables
        found = tables.notifications.get(notification_id)
        if found is None:
            return False
        tables.notification_leases.pop(notification_id, None)
        tables.notifications[notification_id] = replace(
            found, status="pending", attempts=0, next_attempt_at=now, delivered_to=(), updated=now
        )
        return True

    def list(
        self,
        *,
        status: NotificationStatus | None,
        type_: str | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[NotificationRecord]:
        found = [
            n
            for n in self._work.tables.notifications.values()
            if (status is None or n.status == status)
            and (type_ is None or n.type == type_)
            and (account_id is None or n.account_id == account_id)
            and (starting_after is None or n.id < starting_after)
        ]
        return sorted(found, key=lambda n: n.id, reverse=True)[:limit]

    def add_endpoint(self, endpoint: EndpointRecord) -> None:
        t.varchar((endpoint.id, t.ID), (endpoint.url, 2048))
        if endpoint.id in self._work.tables.endpoints:
            refuse(t.PK_NOTIFICATION_ENDPOINTS)
        self._work.tables.endpoints[endpoint.id] = endpoint

    def get_endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        return self._work.tables.endpoints.get(endpoint_id)

    def set_endpoint_secrets(self, endpoint_id: str, secrets: Sequence[str]) -> None:
        found = self._work.tables.endpoints.get(endpoint_id)
        if found is not None:
            self._work.tables.endpoints[endpoint_id] = replace(found, secrets=tuple(secrets))

    def endpoints(self) -> builtins.list[EndpointRecord]:
        return sorted(self._work.tables.endpoints.values(), key=lambda e: (e.created, e.id))

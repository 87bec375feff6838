"""Notifications to the application: delivery of the outbox, the admin's view, and endpoints.

Delivery runs in the worker (:meth:`Notifications.deliver_due`): claim due notifications with a
lease (one short transaction), POST them concurrently outside any transaction, then record each
attempt (another short one). A slow or failing endpoint therefore holds no lock and no connection
that webhook processing or spends need. Retries follow Svix's schedule
(``domain.notifications.RETRY_DELAYS``); after the last one the notification is ``dead`` until an
admin redelivers it. An endpoint that answered 2xx is not sent the same notification again. Each
recorded attempt is told to the ``Observer`` (by notification type: delivered, retried or dead)
once its transaction has committed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from billfold.domain import errors, ids
from billfold.domain import notifications as rules
from billfold.domain.notifications import EndpointRecord, NotificationRecord, NotificationStatus
from billfold.service.observe import NullObserver, Observer
from billfold.service.ports import (
    Clock,
    NotificationAttempt,
    NotificationSender,
    UnitOfWorkFactory,
)
from billfold.service.threads import KeptThreads

MAX_SECRETS = 2
"""Secrets an endpoint signs with at once: the new one and the one it replaced."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedEndpoint:
    endpoint: EndpointRecord
    secret: str
    """Shown once: billfold never answers it again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReport:
    claimed: int
    delivered: int
    failed: int
    dead: int


class Notifications:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        sender: NotificationSender | None,
        *,
        static: Sequence[EndpointRecord] = (),
        new_secret: Callable[[], str],
        lease_seconds: int = 60,
        threads: int = 8,
        observer: Observer | None = None,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.sender = sender
        self.static = tuple(static)
        self._new_secret = new_secret
        self.lease_seconds = lease_seconds
        self.threads = threads
        self.observer: Observer = observer or NullObserver()
        self._senders = KeptThreads("billfold-notify")

    def close(self) -> None:
        """Let the delivery threads go (after what they are sending)."""
        self._senders.close()

    # --- the admin's view ------------------------------------------------------------------------

    def page(
        self,
        *,
        status: NotificationStatus | None = None,
        type_: str | None = None,
        account_id: str | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> tuple[list[NotificationRecord], bool]:
        if status is not None and status not in rules.STATUSES:
            raise errors.ValidationError(
                f"status must be one of {', '.join(rules.STATUSES)}.", param="status"
            )
        if type_ is not None and type_ not in rules.TYPES:
            raise errors.ValidationError(f"Unknown notification type {type_!r}.", param="type")
        with self._uow() as uow:
            if starting_after is not None and uow.notifications.get(starting_after) is None:
                raise errors.CursorNotFound(starting_after)
            rows = uow.notifications.list(
                status=status,
                type_=type_,
                account_id=account_id,
                limit=limit + 1,
                starting_after=starting_after,
            )
        return rows[:limit], len(rows) > limit

    def get(self, notification_id: str) -> NotificationRecord:
        with self._uow() as uow:
            found = uow.notifications.get(notification_id)
        if found is None:
            raise errors.NotificationNotFound(
                f"No notification {notification_id!r}.", notification_id=notification_id
            )
        return found

    def redeliver(self, notification_id: str) -> NotificationRecord:
        """Send it again, to every endpoint that wants it, from the first attempt of the schedule
        (a dead letter comes back to life; a delivered one is sent once more)."""
        with self._uow() as uow:
            if not uow.notifications.redeliver(notification_id, now=self._clock()):
                raise errors.NotificationNotFound(
                    f"No notification {notification_id!r}.", notification_id=notification_id
                )
            found = uow.notifications.get(notification_id)
            uow.commit()
        assert found is not None
        return found

    # --- endpoints -------------------------------------------------------------------------------

    def endpoints(self) -> list[EndpointRecord]:
        """The configured ones (``BILLFOLD_NOTIFY_URLS``), then the registered ones."""
        with self._uow() as uow:
            return [*self.static, *uow.notifications.endpoints()]

    def create_endpoint(
        self, url: str, *, types: Sequence[str] = (), secret: str | None = None
    ) -> CreatedEndpoint:
        check_url(url)
        wanted = check_types(types)
        secret = check_secret(secret) if secret is not None else self._new_secret()
        endpoint = EndpointRecord(
            id=ids.new_id("ep"),
            url=url,
            secrets=(secret,),
            types=wanted,
            created=self._clock(),
        )
        with self._uow() as uow:
            uow.notifications.add_endpoint(endpoint)
            uow.commit()
        return CreatedEndpoint(endpoint=endpoint, secret=secret)

    def rotate_secret(self, endpoint_id: str, *, secret: str | None = None) -> CreatedEndpoint:
        """A new secret, newest first; the one before it keeps signing (receivers that have not
        switched yet still verify) until the next rotation."""
        secret = check_secret(secret) if secret is not None else self._new_secret()
        with self._uow() as uow:
            found = uow.notifications.get_endpoint(endpoint_id)
            if found is None:
                raise errors.EndpointNotFound(
                    f"No notification endpoint {endpoint_id!r}.", endpoint_id=endpoint_id
                )
            secrets = (secret, *found.secrets)[:MAX_SECRETS]
            uow.notifications.set_endpoint_secrets(endpoint_id, secrets)
            uow.commit()
        return CreatedEndpoint(
            endpoint=EndpointRecord(
                id=found.id,
                url=found.url,
                secrets=secrets,
                types=found.types,
                created=found.created,
            ),
            secret=secret,
        )

    # --- delivery (the worker) -------------------------------------------------------------------

    def deliver_due(self, owner: str, *, limit: int = 50) -> DeliveryReport:
        """Claim what is due, POST it concurrently outside any transaction, record the attempts."""
        if self.sender is None:
            return DeliveryReport(claimed=0, delivered=0, failed=0, dead=0)
        now = self._clock()
        with self._uow() as uow:
            registered = uow.notifications.endpoints()
            if not self.static and not registered:
                # No one to send to: what the round would record (delivered, to no one), in one
                # statement, without leasing, reading and finishing each notification.
                types = uow.notifications.settle_unrouted(now=now, limit=limit)
                uow.commit()
                for type_ in types:
                    self.observer.notification_finished(type_, "delivered")
                return DeliveryReport(claimed=len(types), delivered=len(types), failed=0, dead=0)
            claimed = uow.notifications.claim(
                owner=owner, now=now, lease_seconds=self.lease_seconds, limit=limit
            )
            rows = uow.notifications.get_many(claimed)
            uow.commit()
        if not rows:
            return DeliveryReport(claimed=0, delivered=0, failed=0, dead=0)
        endpoints = [*self.static, *registered]
        if self.threads == 1 or len(rows) == 1:
            outcomes = [self._attempt(row, endpoints) for row in rows]
        else:
            outcomes = list(
                self._senders.get(self.threads).map(lambda r: self._attempt(r, endpoints), rows)
            )
        counts = {"delivered": 0, "pending": 0, "dead": 0}
        finished: list[tuple[str, str]] = []
        recorded: list[NotificationAttempt] = []
        now = self._clock()
        for row, (errors_seen, delivered_to) in zip(rows, outcomes, strict=True):
            attempts = row.attempts + 1
            status: NotificationStatus
            if not errors_seen:
                status, next_at, error = "delivered", None, None
            else:
                next_at = rules.next_attempt(attempts, now)
                status = "pending" if next_at is not None else "dead"
                error = "; ".join(errors_seen)[:1000]
            recorded.append(
                NotificationAttempt(
                    id=row.id,
                    status=status,
                    attempts=attempts,
                    next_attempt_at=next_at,
                    last_error=error,
                    delivered_to=tuple(delivered_to),
                )
            )
            counts[status] += 1
            finished.append((row.type, "retried" if status == "pending" else status))
        with self._uow() as uow:
            uow.notifications.finish_many(recorded, owner=owner, now=now)
            uow.commit()
        for type_, outcome in finished:
            self.observer.notification_finished(type_, outcome)
        return DeliveryReport(
            claimed=len(rows),
            delivered=counts["delivered"],
            failed=counts["pending"],
            dead=counts["dead"],
        )

    def _attempt(
        self, row: NotificationRecord, endpoints: Sequence[EndpointRecord]
    ) -> tuple[list[str], list[str]]:
        """Send ``row`` to each endpoint that wants it and has not had it: (errors, delivered)."""
        assert self.sender is not None
        body = json.dumps(row.body(), separators=(",", ":"), sort_keys=True).encode()
        delivered = list(row.delivered_to)
        problems: list[str] = []
        for endpoint in endpoints:
            if not endpoint.wants(row.type) or endpoint.id in delivered:
                continue
            try:
                error = self.sender.send(
                    endpoint, message_id=row.id, timestamp=self._clock(), body=body
                )
            except Exception as exc:  # a sender bug must not stall the outbox
                error = f"{type(exc).__name__} while sending"
            if error is None:
                delivered.append(endpoint.id)
            else:
                problems.append(f"{endpoint.id}: {error}")
        return problems, delivered


def check_url(url: object) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise errors.ValidationError("url must be an http:// or https:// URL.", param="url")
    return url


def check_secret(secret: str) -> str:
    """A ``whsec_`` secret: the prefix, then base64 of at least 24 bytes."""
    try:
        if not secret.startswith("whsec_"):
            raise ValueError
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (ValueError, binascii.Error):
        key = b""
    if not 24 <= len(key) <= 64:
        raise errors.ValidationError(
            "secret must be whsec_ followed by the base64 of 24 to 64 bytes.", param="secret"
        )
    return secret


def check_types(types: Sequence[str]) -> tuple[str, ...]:
    unknown = [t for t in types if t not in rules.TYPES]
    if unknown:
        raise errors.ValidationError(
            f"Unknown notification type(s): {', '.join(unknown)}; known: {', '.join(rules.TYPES)}.",
            param="types",
        )
    return tuple(dict.fromkeys(types))

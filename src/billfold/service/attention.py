"""What needs a person, and what operators do about it: each action recorded with who and why.

The queue is the orders and subscription invoices billfold could not resolve on its own
(``needs_attention``) and the events whose processing failed (``failed``, waiting for a retry) or
gave up (``dead``). An operator resolves an order (naming the account or the package), retries a
failed or dead event, or replays any event (every effect is keyed, so replaying one that was
processed changes nothing; one that was ignored, say before the catalog sold its price, is
completed). Each action is recorded after it ran, with the operator's name, the reason they gave and
what came of it, failures included: the record is the console's answer to "who did this, and why".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from billfold.domain import errors, ids
from billfold.domain.actions import (
    MAX_ACTOR,
    MAX_REASON,
    TARGET_TYPES,
    ActionName,
    OperatorAction,
    TargetType,
)
from billfold.domain.orders import OrderRecord
from billfold.domain.records import EventRecord, Page
from billfold.service.dashboard import AttentionCounts
from billfold.service.inbox import Inbox, Retried
from billfold.service.orders.desk import OrderDesk, ResolveOrder
from billfold.service.ports import Clock, UnitOfWorkFactory
from billfold.service.views import Views, page

T = TypeVar("T")

NO_REASON: Final = "no reason given"
"""Recorded when an admin API caller gives none (the console always asks for one)."""
API_ACTOR: Final = "admin token"
"""Recorded as who when an admin API caller names no operator."""
QUEUE_LIMIT: Final = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class Queue:
    """The needs-attention queue: the first ``QUEUE_LIMIT`` of each kind, and how many there are
    (the dashboard's counts: one figure for both pages)."""

    orders: tuple[OrderRecord, ...]
    failed: tuple[EventRecord, ...]
    dead: tuple[EventRecord, ...]
    counts: AttentionCounts


@dataclass(frozen=True, slots=True, kw_only=True)
class Who:
    """Who acts and why, as given (blank means not given)."""

    actor: str | None = None
    reason: str | None = None

    def checked(self, *, reason_required: bool) -> tuple[str, str]:
        actor = (self.actor or "").strip()
        reason = (self.reason or "").strip()
        if len(actor) > MAX_ACTOR:
            raise errors.ValidationError(
                f"operator is at most {MAX_ACTOR} characters.", param="operator"
            )
        if len(reason) > MAX_REASON:
            raise errors.ValidationError(
                f"reason is at most {MAX_REASON} characters.", param="reason"
            )
        if reason_required and not reason:
            raise errors.ValidationError(
                "A reason is required: it is recorded with the action.", param="reason"
            )
        return actor or API_ACTOR, reason or NO_REASON


class Attention:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        views: Views,
        inbox: Inbox,
        desk: OrderDesk,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._views = views
        self._inbox = inbox
        self._desk = desk

    def queue(self) -> Queue:
        orders = self._views.orders(status="needs_attention", limit=QUEUE_LIMIT)
        failed = self._views.events(status="failed", limit=QUEUE_LIMIT)
        dead = self._views.events(status="dead", limit=QUEUE_LIMIT)
        with self._uow() as uow:
            backlog = uow.dashboard.backlog()
        counts = AttentionCounts(
            orders=backlog.needs_attention_orders,
            failed_events=backlog.failed,
            dead_events=backlog.dead,
        )
        return Queue(orders=orders.data, failed=failed.data, dead=dead.data, counts=counts)

    # --- actions -------------------------------------------------------------------------------

    def retry(self, event_id: str, who: Who) -> Retried:
        """Process a failed or dead event again, now."""
        actor, reason = who.checked(reason_required=False)
        return self._recorded(
            "retry",
            "event",
            event_id,
            actor,
            reason,
            lambda: self._inbox.retry(event_id, by=_worker(actor)),
            lambda done: (
                f"{done.event.status}" + (f": {done.outcome.note}" if done.outcome.note else "")
            ),
        )

    def replay(self, event_id: str, who: Who) -> EventRecord:
        """Process any event again (a reason is required: replays are deliberate)."""
        actor, reason = who.checked(reason_required=True)

        def run() -> EventRecord:
            self._inbox.replay(event_id, by=_worker(actor))
            return self._views.event(event_id)

        return self._recorded(
            "replay",
            "event",
            event_id,
            actor,
            reason,
            run,
            lambda record: record.status + (f": {record.outcome}" if record.outcome else ""),
        )

    def resolve(self, cmd: ResolveOrder, who: Who) -> OrderRecord:
        """Fulfil an order that needs attention; the order records who resolved it."""
        actor, reason = who.checked(reason_required=False)
        named = ResolveOrder(
            order_id=cmd.order_id, account_id=cmd.account_id, package=cmd.package, by=actor
        )
        return self._recorded(
            "resolve",
            "order",
            cmd.order_id,
            actor,
            reason,
            lambda: self._desk.resolve(named),
            lambda order: f"{order.status} for {order.account_id}",
        )

    def record(
        self,
        action: ActionName,
        target_type: TargetType,
        target_id: str,
        who: Who,
        *,
        outcome: str | None = None,
    ) -> OperatorAction:
        """Record an action taken elsewhere (a manual grant or adjustment, a redelivery), after
        it was done: what was given is cut to fit rather than refused."""
        actor = (who.actor or "").strip()[:MAX_ACTOR] or API_ACTOR
        reason = (who.reason or "").strip()[:MAX_REASON] or NO_REASON
        return self._write(action, target_type, target_id, actor, reason, outcome)

    def actions(
        self,
        *,
        target_type: TargetType | None = None,
        target_id: str | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> Page[OperatorAction]:
        """What operators did, newest first; for one target when given."""
        if target_type is not None and target_type not in TARGET_TYPES:
            raise errors.ValidationError(
                f"target_type must be one of {', '.join(TARGET_TYPES)}.", param="target_type"
            )
        with self._uow() as uow:
            rows = uow.admin_sessions.actions(
                target_type=target_type,
                target_id=target_id,
                limit=limit + 1,
                starting_after=starting_after,
            )
        return page(rows, limit)

    # --- helpers -------------------------------------------------------------------------------

    def _recorded(
        self,
        action: ActionName,
        target_type: TargetType,
        target_id: str,
        actor: str,
        reason: str,
        run: Callable[[], T],
        describe: Callable[[T], str],
    ) -> T:
        try:
            done = run()
        except errors.BillfoldError as exc:
            if not isinstance(exc, errors.NotFound):
                self._write(action, target_type, target_id, actor, reason, f"refused: {exc}")
            raise
        self._write(action, target_type, target_id, actor, reason, describe(done))
        return done

    def _write(
        self,
        action: ActionName,
        target_type: TargetType,
        target_id: str,
        actor: str,
        reason: str,
        outcome: str | None,
    ) -> OperatorAction:
        record = OperatorAction(
            id=ids.new_id("oa"),
            created=self._clock(),
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id[:255],
            reason=reason,
            outcome=outcome[:1000] if outcome else None,
        )
        with self._uow() as uow:
            uow.admin_sessions.record_action(record)
            uow.commit()
        return record


def _worker(actor: str) -> str:
    """How an operator's attempt is named in the event's attempt history."""
    return "operator:admin" if actor == API_ACTOR else f"operator:{actor}"[:200]

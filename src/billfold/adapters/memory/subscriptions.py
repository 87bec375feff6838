"""Subscriptions in memory (as ``adapters/db/stores/subscriptions``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from typing import Any, Final

from billfold.adapters.memory import _tables as t
from billfold.adapters.memory._tables import Work, refuse
from billfold.domain.subscriptions import SubscriptionRecord

FIELDS: Final = frozenset(f.name for f in fields(SubscriptionRecord))


class MemorySubscriptionStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def ensure_locked(self, subscription_id: str, *, now: int) -> SubscriptionRecord:
        t.varchar((subscription_id, 255))
        rows = self._work.tables.subscriptions
        found = rows.get(subscription_id)
        if found is None:
            found = SubscriptionRecord(
                id=subscription_id,
                account_id=None,
                customer_id=None,
                plan=None,
                status=None,
                item_id=None,
                price_ids=(),
                quantity=1,
                current_period_start=None,
                current_period_end=None,
                cancel_at_period_end=False,
                cancel_at=None,
                canceled_at=None,
                ended_at=None,
                trial_start=None,
                trial_end=None,
                pause_behavior=None,
                pause_resumes_at=None,
                pending_update=False,
                livemode=False,
                state_created=0,
                past_due_since=None,
                grace_invoice_id=None,
                note=None,
                created=now,
                updated=now,
            )
            rows[subscription_id] = found
        return found

    def update(self, subscription_id: str, **values: Any) -> SubscriptionRecord:
        unknown = set(values) - FIELDS
        assert not unknown, unknown
        if "price_ids" in values:
            values["price_ids"] = tuple(values["price_ids"])
        rows = self._work.tables.subscriptions
        record = replace(rows[subscription_id], **values)
        t.varchar(
            (record.account_id, t.ACCOUNT),
            (record.customer_id, 255),
            (record.plan, 128),
            (record.status, 32),
            (record.item_id, 255),
            (record.pause_behavior, 32),
            (record.grace_invoice_id, 255),
            (record.note, 255),
        )
        t.bigint(
            record.current_period_start,
            record.current_period_end,
            record.state_created,
            record.grace_lapse_notified,
        )
        if record.quantity < 0:
            refuse("ck_subscriptions_quantity_non_negative")
        rows[subscription_id] = record
        return record

    def get(self, subscription_id: str) -> SubscriptionRecord | None:
        return self._work.tables.subscriptions.get(subscription_id)

    def of_account(self, account_id: str) -> list[SubscriptionRecord]:
        return list(self._newest(s for s in self._rows() if s.account_id == account_id))

    def of_customer(self, customer_id: str) -> list[SubscriptionRecord]:
        return list(self._newest(s for s in self._rows() if s.customer_id == customer_id))

    def list(
        self,
        *,
        status: str | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[SubscriptionRecord]:
        rows = [
            s
            for s in self._rows()
            if (not status or s.status == status)
            and (not account_id or s.account_id == account_id)
            and (not starting_after or s.id < starting_after)
        ]
        return sorted(rows, key=lambda s: s.id, reverse=True)[:limit]

    def _rows(self) -> Iterable[SubscriptionRecord]:
        return self._work.tables.subscriptions.values()

    @staticmethod
    def _newest(rows: Iterable[SubscriptionRecord]) -> Sequence[SubscriptionRecord]:
        return sorted(rows, key=lambda s: (s.created, s.id), reverse=True)

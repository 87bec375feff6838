"""Reconciliation runs, the events cursor and the run lease in memory (implements
``service.ports.ReconciliationStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from billfold.adapters.memory import _tables as t
from billfold.adapters.memory._tables import Work, refuse
from billfold.domain import reconciliation as rc
from billfold.domain.orders import OrderRecord
from billfold.domain.reversals import ReversalRecord

GRANTED: Final = frozenset({"fulfilled", "refunded"})


class MemoryReconciliationStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def lease(self) -> rc.Lease:
        tables = self._work.tables
        if tables.reconciliation_lease is None:
            tables.reconciliation_lease = rc.Lease(run_id=None, owner=None, until=0)
        return tables.reconciliation_lease

    def set_lease(self, *, run_id: str | None, owner: str | None, until: int) -> None:
        t.varchar((run_id, t.ID), (owner, 255))
        t.bigint(until)
        self._work.tables.reconciliation_lease = rc.Lease(run_id=run_id, owner=owner, until=until)

    def renew_lease(self, run_id: str, *, until: int) -> bool:
        t.bigint(until)
        tables = self._work.tables
        lease = tables.reconciliation_lease
        if lease is None or lease.run_id != run_id:
            return False
        tables.reconciliation_lease = replace(lease, until=until)
        return True

    def events_cursor(self) -> int | None:
        return self._work.tables.events_cursor

    def advance_events_cursor(self, created: int) -> None:
        t.bigint(created)
        tables = self._work.tables
        if tables.reconciliation_lease is None:
            tables.reconciliation_lease = rc.Lease(run_id=None, owner=None, until=0)
        if tables.events_cursor is None or tables.events_cursor < created:
            tables.events_cursor = created

    def insert_run(self, run: rc.RunRecord) -> None:
        _check(run)
        runs = self._work.tables.reconciliation_runs
        if run.id in runs:
            refuse(t.PK_RECONCILIATION_RUNS)
        runs[run.id] = run

    def get_run(self, run_id: str) -> rc.RunRecord | None:
        return self._work.tables.reconciliation_runs.get(run_id)

    def update_run(
        self,
        run_id: str,
        *,
        status: rc.RunStatus,
        events_imported: int,
        items: Sequence[rc.DriftItem],
        error: str | None,
        finished: int | None,
    ) -> None:
        runs = self._work.tables.reconciliation_runs
        run = runs.get(run_id)
        if run is None:
            return
        changed = replace(
            run,
            status=status,
            events_imported=events_imported,
            items=tuple(items),
            error=error,
            finished=finished,
        )
        _check(changed)
        runs[run_id] = changed

    def list_runs(self, *, limit: int, starting_after: str | None) -> list[rc.RunRecord]:
        runs = sorted(self._work.tables.reconciliation_runs.values(), key=lambda r: r.id)
        runs.reverse()
        if starting_after:
            runs = [r for r in runs if r.id < starting_after]
        return runs[:limit]

    def running_runs(self) -> list[rc.RunRecord]:
        runs = [r for r in self._work.tables.reconciliation_runs.values() if r.status == "running"]
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def fulfilled_orders(
        self, *, since: int, until: int, limit: int, starting_after: str | None
    ) -> list[OrderRecord]:
        found = sorted(
            (
                o
                for o in self._work.tables.orders.values()
                if o.status in GRANTED
                and since <= o.created <= until
                and (starting_after is None or o.id > starting_after)
            ),
            key=lambda o: o.id,
        )
        return found[:limit]

    def reversal_by_key(self, key: str) -> ReversalRecord | None:
        tables = self._work.tables
        reversal_id = tables.reversal_keys.get(key)
        return None if reversal_id is None else tables.reversals[reversal_id]

    def known_events(self, event_ids: Sequence[str]) -> set[str]:
        events = self._work.tables.events
        return {e for e in event_ids if e in events}

    def order_of_payment(self, payment_intent_id: str) -> OrderRecord | None:
        tables = self._work.tables
        for order in tables.orders.values():
            if order.payment_intent_id == payment_intent_id:
                return order
        row = tables.payments.get(payment_intent_id)
        if row is None or row.order_id is None:
            return None
        return tables.orders.get(row.order_id)


def _check(run: rc.RunRecord) -> None:
    t.varchar((run.id, t.ID), (run.status, 16), (run.trigger, 32))
    t.bigint(run.since, run.until, run.started, run.finished)
    t.integer(run.events_imported)
    if run.status not in rc.RUN_STATUSES:
        refuse(t.CK_RECONCILIATION_RUNS_STATUS_KNOWN)

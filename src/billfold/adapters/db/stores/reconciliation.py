"""Reconciliation runs, the Events API cursor and the run lease in SQL (implements
``service.ports.ReconciliationStore``), and the reads of orders and reversals a run checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.adapters.db.stores._sql import P, insert_for, is_pg, per_dialect
from billfold.adapters.db.stores.orders import _order
from billfold.adapters.db.stores.payments import _reversal
from billfold.domain import reconciliation as rc
from billfold.domain.orders import OrderRecord
from billfold.domain.reversals import ReversalRecord

STATE: Final = "reconciliation"
GRANTED: Final = ("fulfilled", "refunded")


class _Statements:
    def __init__(self, pg: bool) -> None:
        st, ru, o, pay = (
            t.reconciliation_state.c,
            t.reconciliation_runs.c,
            t.orders.c,
            t.payments.c,
        )
        self.ensure_state = (
            insert_for(pg)(t.reconciliation_state)
            .values(name=STATE, lease_until=0)
            .on_conflict_do_nothing(index_elements=[st.name])
        )
        read = sa.select(t.reconciliation_state).where(st.name == STATE)
        self.lock_state = read.with_for_update() if pg else read
        self.read_state = read
        self.set_lease = (
            t.reconciliation_state.update()
            .where(st.name == STATE)
            .values(lease_run_id=P("run_id"), lease_owner=P("owner"), lease_until=P("until"))
        )
        self.renew = (
            t.reconciliation_state.update()
            .where(st.name == STATE, st.lease_run_id == P("w_run"))
            .values(lease_until=P("until"))
        )
        self.cursor = (
            t.reconciliation_state.update()
            .where(
                st.name == STATE,
                sa.or_(st.events_cursor.is_(None), st.events_cursor < P("w_created")),
            )
            .values(events_cursor=P("created"))
        )
        self.insert_run = t.reconciliation_runs.insert()
        self.get_run = sa.select(t.reconciliation_runs).where(ru.id == P("w_id"))
        self.update_run = t.reconciliation_runs.update().where(ru.id == P("w_id"))
        self.running = (
            sa.select(t.reconciliation_runs).where(ru.status == "running").order_by(ru.id.desc())
        )
        self.reversal = sa.select(t.reversals).where(t.reversals.c.key == P("w_key"))
        self.known_events = sa.select(t.events.c.id).where(
            t.events.c.id.in_(P("w_ids", expanding=True))
        )
        self.order_by_pi = sa.select(t.orders).where(o.payment_intent_id == P("w_pi"))
        self.order_via_payments = (
            sa.select(t.orders)
            .join(t.payments, pay.order_id == o.id)
            .where(pay.payment_intent_id == P("w_pi"))
        )


statements = per_dialect(_Statements)


class SqlReconciliationStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.sql = statements(is_pg(conn))

    def lease(self) -> rc.Lease:
        self.conn.execute(self.sql.ensure_state)
        row = self.conn.execute(self.sql.lock_state).one()
        return rc.Lease(run_id=row.lease_run_id, owner=row.lease_owner, until=int(row.lease_until))

    def set_lease(self, *, run_id: str | None, owner: str | None, until: int) -> None:
        self.conn.execute(self.sql.set_lease, {"run_id": run_id, "owner": owner, "until": until})

    def renew_lease(self, run_id: str, *, until: int) -> bool:
        return bool(self.conn.execute(self.sql.renew, {"w_run": run_id, "until": until}).rowcount)

    def events_cursor(self) -> int | None:
        row = self.conn.execute(self.sql.read_state).first()
        return None if row is None or row.events_cursor is None else int(row.events_cursor)

    def advance_events_cursor(self, created: int) -> None:
        self.conn.execute(self.sql.ensure_state)
        self.conn.execute(self.sql.cursor, {"w_created": created, "created": created})

    def insert_run(self, run: rc.RunRecord) -> None:
        self.conn.execute(
            self.sql.insert_run,
            {
                "id": run.id,
                "status": run.status,
                "trigger": run.trigger,
                "since": run.since,
                "until": run.until,
                "events_imported": run.events_imported,
                "items": [i.to_json() for i in run.items],
                "error": run.error,
                "started": run.started,
                "finished": run.finished,
            },
        )

    def get_run(self, run_id: str) -> rc.RunRecord | None:
        row = self.conn.execute(self.sql.get_run, {"w_id": run_id}).first()
        return None if row is None else _run(row)

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
        self.conn.execute(
            self.sql.update_run,
            {
                "w_id": run_id,
                "status": status,
                "events_imported": events_imported,
                "items": [i.to_json() for i in items],
                "error": error,
                "finished": finished,
            },
        )

    def list_runs(self, *, limit: int, starting_after: str | None) -> list[rc.RunRecord]:
        c = t.reconciliation_runs.c
        stmt = sa.select(t.reconciliation_runs)
        if starting_after:
            stmt = stmt.where(c.id < starting_after)
        rows = self.conn.execute(stmt.order_by(c.id.desc()).limit(limit))
        return [_run(r) for r in rows]

    def running_runs(self) -> list[rc.RunRecord]:
        return [_run(r) for r in self.conn.execute(self.sql.running)]

    def fulfilled_orders(
        self, *, since: int, until: int, limit: int, starting_after: str | None
    ) -> list[OrderRecord]:
        c = t.orders.c
        stmt = sa.select(t.orders).where(
            c.status.in_(GRANTED), c.created >= since, c.created <= until
        )
        if starting_after:
            stmt = stmt.where(c.id > starting_after)
        return [_order(r) for r in self.conn.execute(stmt.order_by(c.id).limit(limit))]

    def reversal_by_key(self, key: str) -> ReversalRecord | None:
        row = self.conn.execute(self.sql.reversal, {"w_key": key}).first()
        return None if row is None else _reversal(row)

    def known_events(self, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        rows = self.conn.execute(self.sql.known_events, {"w_ids": list(event_ids)})
        return {str(r.id) for r in rows}

    def order_of_payment(self, payment_intent_id: str) -> OrderRecord | None:
        row = self.conn.execute(self.sql.order_by_pi, {"w_pi": payment_intent_id}).first()
        if row is None:
            row = self.conn.execute(
                self.sql.order_via_payments, {"w_pi": payment_intent_id}
            ).first()
        return None if row is None else _order(row)


def _run(row: Any) -> rc.RunRecord:
    m = row._mapping
    return rc.RunRecord(
        id=m["id"],
        status=m["status"],
        trigger=m["trigger"],
        since=int(m["since"]),
        until=int(m["until"]),
        events_imported=int(m["events_imported"]),
        items=tuple(rc.DriftItem.from_json(i) for i in (m["items"] or [])),
        error=m["error"],
        started=int(m["started"]),
        finished=None if m["finished"] is None else int(m["finished"]),
    )

"""The ledger's rows in SQL (implements ``service.ports.LedgerStore``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.adapters.db.stores import ledger_batch
from billfold.adapters.db.stores._raw import Raw, marks
from billfold.adapters.db.stores._sql import P, insert_for, is_pg, per_dialect
from billfold.domain import ledger as rules
from billfold.domain.ledger import GrantState, HoldStatus, Line
from billfold.domain.records import (
    GrantRecord,
    HoldRecord,
    LedgerTrail,
    TrailDraw,
    TrailGrant,
    TrailHold,
    TransactionRecord,
)
from billfold.domain.reversals import Lot
from billfold.service.ports import (
    BalanceRow,
    BatchRead,
    BatchSnapshot,
    BatchWrites,
    NewGrant,
    NewNotification,
    StoredTransaction,
)

PG_INSERT_NOTIFICATIONS = (
    "INSERT INTO notifications (id, type, account_id, data, created, status, attempts, "
    "next_attempt_at, delivered_to, updated) "
    "SELECT id, type, account_id, data, created, status, attempts, next_attempt_at, "
    "delivered_to, updated FROM json_to_recordset(%s::json) AS v(id varchar, type varchar, "
    "account_id varchar, data json, created bigint, status varchar, attempts int, "
    "next_attempt_at bigint, delivered_to json, updated bigint)"
)
PG_ENSURE_ACCOUNTS = (
    "INSERT INTO accounts (id, metadata, created, updated) "
    "SELECT a, '{}', n, n FROM json_to_recordset(%s::json) AS v(a varchar, n bigint) "
    "ON CONFLICT DO NOTHING"
)


class _Statements:
    """The ledger's hot statements (see ``_sql``)."""

    def __init__(self, pg: bool) -> None:
        insert = insert_for(pg)
        tx, bal, gr = t.ledger_transactions.c, t.balances.c, t.grants.c
        self.claim_key = insert(t.ledger_transactions).on_conflict_do_nothing().returning(tx.id)
        self.transaction_by_key = sa.select(tx.id, tx.kind, tx.request_hash, tx.result).where(
            tx.idempotency_key == P("w_key")
        )
        self.finish_transaction = t.ledger_transactions.update().where(tx.id == P("w_id"))
        self.insert_lines = t.ledger_lines.insert()
        self.ensure_account = insert(t.accounts).on_conflict_do_nothing()
        self.ensure_locked_balance = (
            insert(t.balances)
            .on_conflict_do_update(
                index_elements=[bal.account_id, bal.unit], set_={"available": bal.available}
            )
            .returning(
                bal.account_id,
                bal.unit,
                bal.available,
                bal.held,
                bal.debt,
                bal.low_balance,
                bal.low_alert,
            )
        )
        lock = sa.select(
            bal.account_id,
            bal.unit,
            bal.available,
            bal.held,
            bal.debt,
            bal.low_balance,
            bal.low_alert,
        ).where(bal.account_id == P("w_account"), bal.unit == P("w_unit"))
        self.lock_balance = lock.with_for_update() if pg else lock
        self.set_balance = t.balances.update().where(
            bal.account_id == P("w_account"), bal.unit == P("w_unit")
        )
        self.set_low = t.balances.update().where(
            bal.account_id == P("w_account"), bal.unit == P("w_unit")
        )
        self.insert_notification = t.notifications.insert()
        self.balances = (
            sa.select(
                bal.account_id,
                bal.unit,
                bal.available,
                bal.held,
                bal.debt,
                bal.low_balance,
                bal.low_alert,
            )
            .where(bal.account_id == P("w_account"))
            .order_by(bal.unit)
        )
        self.grant_states = sa.select(
            gr.id, gr.unit, gr.remaining, gr.held, gr.priority, gr.expires_at, gr.origin
        ).where(gr.account_id == P("w_account"), gr.unit == P("w_unit"), gr.live)
        self.expired_grant_states = self.grant_states.where(
            gr.expires_at <= P("w_now"), gr.remaining > gr.held
        )
        self.insert_grant = t.grants.insert()
        self.has_grant = sa.select(gr.id).where(gr.account_id == P("w_account"), gr.id == P("w_id"))
        ln = t.ledger_lines.c
        self.has_transaction = (
            sa.select(ln.transaction_id)
            .where(ln.transaction_id == P("w_id"), ln.account_id == P("w_account"))
            .limit(1)
        )
        self.lots = (
            sa.select(gr.id, gr.unit, gr.amount, gr.remaining, gr.held)
            .where(gr.origin == P("w_origin"))
            .order_by(gr.id)
        )
        self.update_grants = (
            t.grants.update()
            .where(gr.id == P("gid"))
            .values(remaining=P("new_remaining"), held=P("new_held"))
        )


statements = per_dialect(_Statements)

# SQLite's sum-to-zero check at commit, on the driver's connection (this runs at every commit of
# a unit of work that wrote lines, the write combiner's batches included: compiling it through
# SQLAlchemy with an expanding parameter cost 8 % of a batch's CPU: 17.6 µs a spend, now 5.3).
UNBALANCED = (
    "SELECT transaction_id, unit, SUM(amount) FROM ledger_lines WHERE transaction_id IN (%s) "
    "GROUP BY transaction_id, unit HAVING SUM(amount) != 0 LIMIT 1"
)
UNBALANCED_CHUNK = 500  # ids per statement, well under SQLite's limit on parameters


class SqlLedgerStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.is_pg = is_pg(conn)
        self.sql = statements(self.is_pg)
        self.written: list[str] = []  # transaction ids, for the sum-to-zero check on SQLite
        self.pending_notifications: list[dict[str, Any]] = []  # written at commit

    # --- transactions ---

    def claim_key(
        self,
        *,
        txn_id: str,
        key: str,
        request_hash: str,
        kind: str,
        account_id: str | None,
        unit: str | None,
        amount: int | None,
        reason: str | None,
        created: int,
    ) -> bool:
        row = {
            "id": txn_id,
            "idempotency_key": key,
            "request_hash": request_hash,
            "kind": kind,
            "account_id": account_id,
            "unit": unit,
            "amount": amount,
            "reason": reason,
            "created": created,
        }
        inserted = self.conn.execute(self.sql.claim_key, row).first() is not None
        if inserted:
            self.written.append(txn_id)
        return inserted

    def transaction_by_key(self, key: str) -> StoredTransaction | None:
        row = self.conn.execute(self.sql.transaction_by_key, {"w_key": key}).first()
        if row is None:
            return None
        return StoredTransaction(
            id=row.id, kind=row.kind, request_hash=row.request_hash, result=row.result
        )

    def finish_transaction(
        self, txn_id: str, lines: Sequence[Line], result: Mapping[str, Any]
    ) -> None:
        if txn_id not in self.written:
            self.written.append(txn_id)
        if lines:
            self.conn.execute(
                self.sql.insert_lines,
                [
                    {
                        "transaction_id": txn_id,
                        "account_id": ln.account_id,
                        "unit": ln.unit,
                        "amount": ln.amount,
                        "grant_id": ln.grant_id,
                        "hold_id": ln.hold_id,
                    }
                    for ln in lines
                ],
            )
        self.conn.execute(
            self.sql.finish_transaction,
            {"w_id": txn_id, "result": dict(result), "line_count": len(lines)},
        )

    # --- accounts and balances ---

    def ensure_account(self, account_id: str, now: int) -> None:
        self.conn.execute(
            self.sql.ensure_account,
            {"id": account_id, "metadata": {}, "created": now, "updated": now},
        )

    def ensure_accounts(self, accounts: Sequence[tuple[str, int]]) -> None:
        """One multi-row ``INSERT ... ON CONFLICT DO NOTHING`` (PostgreSQL: the rows as one JSON
        document; SQLite: SQLAlchemy's "insertmanyvalues"), in the order given."""
        if not accounts:
            return
        if self.is_pg:
            document = json.dumps([{"a": a, "n": n} for a, n in accounts])
            Raw(self.conn).send(PG_ENSURE_ACCOUNTS, (document,)).count()
            return
        self.conn.execute(
            self.sql.ensure_account,
            [
                {"id": account_id, "metadata": {}, "created": now, "updated": now}
                for account_id, now in accounts
            ],
        )

    def ensure_locked_balance(self, account_id: str, unit: str) -> BalanceRow:
        """Create the balance row if missing and lock it, in one statement.

        ``ON CONFLICT DO UPDATE`` locks the existing row on PostgreSQL just as ``FOR UPDATE`` would.
        """
        row = self.conn.execute(
            self.sql.ensure_locked_balance,
            {"account_id": account_id, "unit": unit, "available": 0, "held": 0, "debt": 0},
        ).one()
        return BalanceRow(
            account_id=row.account_id,
            unit=row.unit,
            available=row.available,
            held=row.held,
            debt=row.debt,
            low_balance=row.low_balance,
            low_alert=bool(row.low_alert),
        )

    def lock_balance(self, account_id: str, unit: str) -> BalanceRow | None:
        row = self.conn.execute(
            self.sql.lock_balance, {"w_account": account_id, "w_unit": unit}
        ).first()
        if row is None:
            return None
        return BalanceRow(
            account_id=row.account_id,
            unit=row.unit,
            available=row.available,
            held=row.held,
            debt=row.debt,
            low_balance=row.low_balance,
            low_alert=bool(row.low_alert),
        )

    def set_balance(self, row: BalanceRow) -> None:
        self.conn.execute(
            self.sql.set_balance,
            {
                "w_account": row.account_id,
                "w_unit": row.unit,
                "available": row.available,
                "held": row.held,
                "debt": row.debt,
            },
        )

    def set_low_alert(self, account_id: str, unit: str, alert: bool) -> None:
        self.conn.execute(
            self.sql.set_low, {"w_account": account_id, "w_unit": unit, "low_alert": alert}
        )

    def set_low_balance(self, account_id: str, unit: str, threshold: int | None) -> None:
        self.conn.execute(
            self.sql.set_low, {"w_account": account_id, "w_unit": unit, "low_balance": threshold}
        )

    def add_notification(self, notification: NewNotification) -> None:
        """Queued, and written with the transaction's other notifications in one multi-row INSERT
        when the unit of work commits (``flush_notifications``): a paid checkout's two cost one
        round trip. Nothing reads them back before the commit."""
        self.pending_notifications.append(
            {
                "id": notification.id,
                "type": notification.type,
                "account_id": notification.account_id,
                "data": dict(notification.data),
                "created": notification.created,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": notification.created,
                "delivered_to": [],
                "updated": notification.created,
            }
        )

    def flush_notifications(self) -> None:
        """One statement (PostgreSQL: the rows as one JSON document, one prepared text whatever
        their number; SQLite: SQLAlchemy's "insertmanyvalues")."""
        pending, self.pending_notifications = self.pending_notifications, []
        if not pending:
            return
        if self.is_pg:
            Raw(self.conn).send(PG_INSERT_NOTIFICATIONS, (json.dumps(pending),)).count()
            return
        self.conn.execute(self.sql.insert_notification, pending)

    def balances(self, account_id: str) -> list[BalanceRow]:
        rows = self.conn.execute(self.sql.balances, {"w_account": account_id})
        return [
            BalanceRow(
                account_id=r.account_id,
                unit=r.unit,
                available=r.available,
                held=r.held,
                debt=r.debt,
                low_balance=r.low_balance,
                low_alert=bool(r.low_alert),
            )
            for r in rows
        ]

    # --- grants ---

    def grant_states(
        self, account_id: str, unit: str, *, expired_at: int | None = None
    ) -> list[GrantState]:
        if expired_at is None:
            rows = self.conn.execute(
                self.sql.grant_states, {"w_account": account_id, "w_unit": unit}
            )
        else:
            rows = self.conn.execute(
                self.sql.expired_grant_states,
                {"w_account": account_id, "w_unit": unit, "w_now": expired_at},
            )
        return [
            GrantState(
                id=r.id,
                unit=r.unit,
                remaining=r.remaining,
                held=r.held,
                priority=r.priority,
                expires_at=r.expires_at,
                created_seq=r.id,
                origin=r.origin,
            )
            for r in rows
        ]

    def lots(self, origin: str) -> list[Lot]:
        rows = self.conn.execute(self.sql.lots, {"w_origin": origin})
        return [
            Lot(grant_id=r.id, unit=r.unit, amount=r.amount, remaining=r.remaining, held=r.held)
            for r in rows
        ]

    def insert_grant(self, grant: NewGrant) -> None:
        self.conn.execute(
            self.sql.insert_grant,
            {
                "id": grant.id,
                "account_id": grant.account_id,
                "unit": grant.unit,
                "amount": grant.amount,
                "remaining": grant.remaining,
                "held": 0,
                "priority": grant.priority,
                "expires_at": grant.expires_at,
                "kind": grant.kind,
                "origin": grant.origin,
                "reason": grant.reason,
                "transaction_id": grant.transaction_id,
                "created": grant.created,
            },
        )

    def update_grants(self, changes: Sequence[tuple[str, int, int]]) -> None:
        if not changes:
            return
        self.conn.execute(
            self.sql.update_grants,
            [{"gid": g, "new_remaining": r, "new_held": h} for g, r, h in changes],
        )

    def expired_grant_positions(self, now: int, limit: int) -> list[tuple[str, str]]:
        c = t.grants.c
        rows = self.conn.execute(
            sa.select(c.account_id, c.unit)
            .where(c.expires_at <= now, c.remaining > c.held)
            .group_by(c.account_id, c.unit)
            .limit(limit)
        )
        return [(r.account_id, r.unit) for r in rows]

    def pending_expiry(self, account_id: str, now: int) -> dict[str, tuple[int, int]]:
        g = t.grants.c
        h = t.holds.c
        out: dict[str, list[int]] = {}
        # One round trip: expired free remainders (kind 0) and lapsed active holds (kind 1).
        expired = (
            sa.select(
                sa.literal(0).label("kind"),
                g.unit.label("unit"),
                sa.func.sum(g.remaining - g.held).label("amount"),
            )
            .where(
                g.account_id == account_id,
                g.remaining > g.held,
                g.expires_at.is_not(None),
                g.expires_at <= now,
            )
            .group_by(g.unit)
        )
        lapsed = (
            sa.select(
                sa.literal(1).label("kind"),
                h.unit.label("unit"),
                sa.func.sum(h.amount).label("amount"),
            )
            .where(h.account_id == account_id, h.status == "active", h.expires_at <= now)
            .group_by(h.unit)
        )
        for kind, unit, amount in self.conn.execute(sa.union_all(expired, lapsed)):
            out.setdefault(unit, [0, 0])[int(kind)] += int(amount)
        # Value that a lapsed hold returns onto an expired grant expires with it.
        if any(v[1] for v in out.values()):
            a = t.hold_allocations.c
            for unit, amount in self.conn.execute(
                sa.select(h.unit, sa.func.sum(a.amount))
                .select_from(t.hold_allocations.join(t.holds).join(t.grants))
                .where(
                    h.account_id == account_id,
                    h.status == "active",
                    h.expires_at <= now,
                    g.expires_at.is_not(None),
                    g.expires_at <= now,
                )
                .group_by(h.unit)
            ):
                out.setdefault(unit, [0, 0])[0] += int(amount)
        return {unit: (v[0], v[1]) for unit, v in out.items()}

    def list_grants(
        self, account_id: str, *, limit: int, starting_after: str | None, live_only: bool, now: int
    ) -> list[GrantRecord]:
        c = t.grants.c
        stmt = sa.select(t.grants).where(c.account_id == account_id)
        if live_only:
            stmt = stmt.where(c.live, sa.or_(c.expires_at.is_(None), c.expires_at > now))
        if starting_after:
            stmt = stmt.where(c.id < starting_after)
        rows = self.conn.execute(stmt.order_by(c.id.desc()).limit(limit))
        return [_grant(r) for r in rows]

    def has_grant(self, account_id: str, grant_id: str) -> bool:
        row = self.conn.execute(self.sql.has_grant, {"w_account": account_id, "w_id": grant_id})
        return row.first() is not None

    def has_transaction(self, account_id: str, transaction_id: str) -> bool:
        row = self.conn.execute(
            self.sql.has_transaction, {"w_account": account_id, "w_id": transaction_id}
        )
        return row.first() is not None

    def list_transactions(
        self, account_id: str, *, limit: int, starting_after: str | None
    ) -> list[TransactionRecord]:
        tx = t.ledger_transactions.c
        ln = t.ledger_lines.c
        touching = sa.select(ln.transaction_id).where(ln.account_id == account_id)
        stmt = sa.select(t.ledger_transactions).where(tx.id.in_(touching))
        if starting_after:
            stmt = stmt.where(tx.id < starting_after)
        txns = list(self.conn.execute(stmt.order_by(tx.id.desc()).limit(limit)))
        lines: dict[str, list[Line]] = {}
        if txns:
            for r in self.conn.execute(
                sa.select(t.ledger_lines)
                .where(ln.transaction_id.in_([x.id for x in txns]))
                .order_by(ln.id)
            ):
                lines.setdefault(r.transaction_id, []).append(
                    Line(
                        account_id=r.account_id,
                        unit=r.unit,
                        amount=r.amount,
                        grant_id=r.grant_id,
                        hold_id=r.hold_id,
                    )
                )
        return [
            TransactionRecord(
                id=x.id,
                kind=x.kind,
                account_id=x.account_id,
                unit=x.unit,
                amount=x.amount,
                reason=x.reason,
                created=x.created,
                lines=tuple(lines.get(x.id, [])),
            )
            for x in txns
        ]

    def trail(self, account_id: str, unit: str) -> LedgerTrail:
        g, tx, ln = t.grants.c, t.ledger_transactions.c, t.ledger_lines.c
        rows = self.conn.execute(
            sa.select(t.grants, tx.kind.label("txn_kind"), tx.result.label("txn_result"))
            .join(t.ledger_transactions, tx.id == g.transaction_id)
            .where(g.account_id == account_id, g.unit == unit, g.live)
            .order_by(g.id)
        ).all()
        grants = tuple(
            TrailGrant(
                grant=_grant(r),
                transaction_id=r.transaction_id,
                transaction_kind=r.txn_kind,
                debt_repaid=_debt_repaid(r.txn_kind, r.txn_result),
            )
            for r in rows
        )
        own = {x.grant.id: x.transaction_id for x in grants}
        draws: list[TrailDraw] = []
        if own:
            # Through the account's transactions (indexed), not the lines' grant ids (not).
            for r in self.conn.execute(
                sa.select(ln.grant_id, ln.transaction_id, ln.amount, tx.kind, tx.created)
                .join(t.ledger_transactions, tx.id == ln.transaction_id)
                .where(
                    tx.account_id == account_id,
                    ln.unit == unit,
                    ln.grant_id.is_not(None),
                    ln.account_id.in_(DRAW_SINKS),
                )
                .order_by(ln.id)
            ):
                if r.grant_id in own and own[r.grant_id] != r.transaction_id:
                    draws.append(
                        TrailDraw(
                            grant_id=r.grant_id,
                            transaction_id=r.transaction_id,
                            kind=r.kind,
                            amount=int(r.amount),
                            created=int(r.created),
                        )
                    )
        h, a = t.holds.c, t.hold_allocations.c
        holds = [
            _hold(r)
            for r in self.conn.execute(
                sa.select(t.holds)
                .where(h.account_id == account_id, h.unit == unit, h.status == "active")
                .order_by(h.id)
            )
        ]
        allocations: dict[str, list[tuple[str, int]]] = {}
        if holds:
            for hold_id, grant_id, amount in self.conn.execute(
                sa.select(a.hold_id, a.grant_id, a.amount)
                .where(a.hold_id.in_([x.id for x in holds]))
                .order_by(a.hold_id, a.seq)
            ):
                allocations.setdefault(hold_id, []).append((grant_id, int(amount)))
        debt = self.conn.execute(
            sa.select(t.balances.c.debt).where(
                t.balances.c.account_id == account_id, t.balances.c.unit == unit
            )
        ).scalar()
        return LedgerTrail(
            grants=grants,
            draws=tuple(draws),
            holds=tuple(
                TrailHold(hold=x, allocations=tuple(allocations.get(x.id, ()))) for x in holds
            ),
            debt=int(debt or 0),
        )

    def first_unbalanced(self) -> tuple[str, str, int] | None:
        """SQLite (no deferred constraint triggers): the first of the transactions this unit of
        work wrote whose lines do not sum to zero in a unit, as (transaction, unit, sum).
        PostgreSQL checks the rule itself at commit (a deferred constraint trigger): None."""
        if self.is_pg:
            return None
        raw = Raw(self.conn)
        for start in range(0, len(self.written), UNBALANCED_CHUNK):
            ids = self.written[start : start + UNBALANCED_CHUNK]
            rows = raw.rows(UNBALANCED % marks(len(ids)), ids)
            if rows:
                txn_id, unit, amount = rows[0]
                return txn_id, unit, amount
        return None

    # --- batches (see ``ledger_batch``) ---

    def load_batch(self, read: BatchRead) -> BatchSnapshot:
        return ledger_batch.load(Raw(self.conn), read)

    def flush_batch(self, writes: BatchWrites, *, commit: bool = False) -> None:
        if commit:
            # The batch's own commit ends the transaction: its notifications (a low-balance
            # crossing) go in before it, with the writes that caused them, not after it.
            self.flush_notifications()
        ledger_batch.flush(Raw(self.conn), writes, commit=commit)
        self.written.extend(x.id for x in writes.transactions if x.lines)

    # --- holds ---

    def insert_hold(self, hold: HoldRecord, transaction_id: str) -> None:
        self.conn.execute(
            t.holds.insert().values(
                id=hold.id,
                account_id=hold.account_id,
                unit=hold.unit,
                amount=hold.amount,
                captured=0,
                status=hold.status,
                expires_at=hold.expires_at,
                reason=hold.reason,
                transaction_id=transaction_id,
                created=hold.created,
            )
        )

    def get_hold(self, hold_id: str) -> HoldRecord | None:
        c = t.holds.c
        r = self.conn.execute(sa.select(t.holds).where(c.id == hold_id)).first()
        return None if r is None else _hold(r)

    def hold_allocations(self, hold_id: str) -> list[tuple[str, int]]:
        c = t.hold_allocations.c
        rows = self.conn.execute(
            sa.select(c.grant_id, c.amount).where(c.hold_id == hold_id).order_by(c.seq)
        )
        return [(r.grant_id, r.amount) for r in rows]

    def insert_allocations(self, hold_id: str, allocations: Sequence[tuple[str, int]]) -> None:
        if not allocations:
            return
        self.conn.execute(
            t.hold_allocations.insert(),
            [
                {"hold_id": hold_id, "grant_id": g, "seq": i, "amount": a}
                for i, (g, a) in enumerate(allocations)
            ],
        )

    def close_hold(
        self, hold_id: str, *, status: HoldStatus, captured: int, transaction_id: str
    ) -> None:
        c = t.holds.c
        self.conn.execute(
            t.holds.update()
            .where(c.id == hold_id, c.status == "active")
            .values(status=status, captured=captured, closed_transaction_id=transaction_id)
        )

    def list_holds(
        self,
        account_id: str,
        *,
        status: HoldStatus | None,
        now: int,
        limit: int,
        starting_after: str | None,
    ) -> list[HoldRecord]:
        c = t.holds.c
        stmt = sa.select(t.holds).where(c.account_id == account_id)
        if status == "active":
            stmt = stmt.where(c.status == "active", c.expires_at > now)
        elif status == "expired":
            lapsed = sa.and_(c.status == "active", c.expires_at <= now)
            stmt = stmt.where(sa.or_(c.status == "expired", lapsed))
        elif status is not None:
            stmt = stmt.where(c.status == status)
        if starting_after:
            stmt = stmt.where(c.id < starting_after)
        rows = self.conn.execute(stmt.order_by(c.id.desc()).limit(limit))
        return [_hold(r) for r in rows]

    def lapsed_holds(self, account_id: str | None, now: int, limit: int) -> list[HoldRecord]:
        c = t.holds.c
        stmt = sa.select(t.holds).where(c.status == "active", c.expires_at <= now)
        if account_id is not None:
            stmt = stmt.where(c.account_id == account_id)
        return [_hold(r) for r in self.conn.execute(stmt.order_by(c.id).limit(limit))]


DRAW_SINKS = tuple(
    rules.system_account(n) for n in (rules.SPENT, rules.REFUNDED, rules.EXPIRED, rules.ADJUSTMENTS)
)
"""Where value a grant gives up goes: a line with the grant's id into one of these is a draw."""


def _debt_repaid(kind: str, result: Any) -> int:
    """The debt a grant's own transaction repaid (recorded in its result)."""
    if kind != "grant" or not isinstance(result, Mapping):
        return 0
    return int(result.get("debt_repaid") or 0)


def _grant(r: Any) -> GrantRecord:
    return GrantRecord(
        id=r.id,
        account_id=r.account_id,
        unit=r.unit,
        amount=r.amount,
        remaining=r.remaining,
        held=r.held,
        priority=r.priority,
        expires_at=r.expires_at,
        kind=r.kind,
        origin=r.origin,
        reason=r.reason,
        created=r.created,
    )


def _hold(r: Any) -> HoldRecord:
    return HoldRecord(
        id=r.id,
        account_id=r.account_id,
        unit=r.unit,
        amount=r.amount,
        captured=r.captured,
        status=r.status,
        expires_at=r.expires_at,
        reason=r.reason,
        created=r.created,
    )

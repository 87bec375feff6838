"""The ledger's rows in SQL (implements ``service.ports.LedgerStore``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from billfold.adapters.db import tables as t
from billfold.domain.ledger import GrantState, Line
from billfold.service.ports import (
    BalanceRow,
    GrantRecord,
    HoldRow,
    NewGrant,
    StoredTransaction,
    TransactionRecord,
)


def insert_ignore(conn: sa.Connection, table: sa.Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


class SqlLedgerStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.is_pg = conn.dialect.name == "postgresql"
        self.written: list[str] = []  # transaction ids, for the sum-to-zero check on SQLite

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
        stmt = (
            insert_ignore(self.conn, t.ledger_transactions)
            .values(
                id=txn_id,
                idempotency_key=key,
                request_hash=request_hash,
                kind=kind,
                account_id=account_id,
                unit=unit,
                amount=amount,
                reason=reason,
                created=created,
            )
            .returning(t.ledger_transactions.c.id)
        )
        inserted = self.conn.execute(stmt).first() is not None
        if inserted:
            self.written.append(txn_id)
        return inserted

    def transaction_by_key(self, key: str) -> StoredTransaction | None:
        c = t.ledger_transactions.c
        row = self.conn.execute(
            sa.select(c.id, c.kind, c.request_hash, c.result).where(c.idempotency_key == key)
        ).first()
        if row is None:
            return None
        return StoredTransaction(
            id=row.id, kind=row.kind, request_hash=row.request_hash, result=row.result
        )

    def finish_transaction(
        self, txn_id: str, lines: Sequence[Line], result: Mapping[str, Any]
    ) -> None:
        if lines:
            self.conn.execute(
                t.ledger_lines.insert(),
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
        c = t.ledger_transactions.c
        self.conn.execute(
            t.ledger_transactions.update()
            .where(c.id == txn_id)
            .values(result=dict(result), line_count=len(lines))
        )

    # --- accounts and balances ---

    def ensure_account(self, account_id: str, now: int) -> None:
        self.conn.execute(
            insert_ignore(self.conn, t.accounts).values(
                id=account_id, metadata={}, created=now, updated=now
            )
        )

    def account_exists(self, account_id: str) -> bool:
        c = t.accounts.c
        return self.conn.execute(sa.select(c.id).where(c.id == account_id)).first() is not None

    def ensure_balance(self, account_id: str, unit: str) -> None:
        self.conn.execute(
            insert_ignore(self.conn, t.balances).values(
                account_id=account_id, unit=unit, available=0, held=0, debt=0
            )
        )

    def ensure_locked_balance(self, account_id: str, unit: str) -> BalanceRow:
        """Create the balance row if missing and lock it, in one statement.

        ``ON CONFLICT DO UPDATE`` locks the existing row on PostgreSQL just as ``FOR UPDATE`` would.
        """
        c = t.balances.c
        insert = postgresql.insert(t.balances) if self.is_pg else sqlite.insert(t.balances)
        row = self.conn.execute(
            insert.values(account_id=account_id, unit=unit, available=0, held=0, debt=0)
            .on_conflict_do_update(
                index_elements=[c.account_id, c.unit], set_={"available": c.available}
            )
            .returning(c.account_id, c.unit, c.available, c.held, c.debt)
        ).one()
        return BalanceRow(
            account_id=row.account_id,
            unit=row.unit,
            available=row.available,
            held=row.held,
            debt=row.debt,
        )

    def lock_balance(self, account_id: str, unit: str) -> BalanceRow | None:
        c = t.balances.c
        stmt = sa.select(c.account_id, c.unit, c.available, c.held, c.debt).where(
            c.account_id == account_id, c.unit == unit
        )
        if self.is_pg:
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        if row is None:
            return None
        return BalanceRow(
            account_id=row.account_id,
            unit=row.unit,
            available=row.available,
            held=row.held,
            debt=row.debt,
        )

    def set_balance(self, row: BalanceRow) -> None:
        c = t.balances.c
        self.conn.execute(
            t.balances.update()
            .where(c.account_id == row.account_id, c.unit == row.unit)
            .values(available=row.available, held=row.held, debt=row.debt)
        )

    def balances(self, account_id: str) -> list[BalanceRow]:
        c = t.balances.c
        rows = self.conn.execute(
            sa.select(c.account_id, c.unit, c.available, c.held, c.debt)
            .where(c.account_id == account_id)
            .order_by(c.unit)
        )
        return [
            BalanceRow(
                account_id=r.account_id,
                unit=r.unit,
                available=r.available,
                held=r.held,
                debt=r.debt,
            )
            for r in rows
        ]

    # --- grants ---

    def grant_states(self, account_id: str, unit: str) -> list[GrantState]:
        c = t.grants.c
        rows = self.conn.execute(
            sa.select(c.id, c.unit, c.remaining, c.held, c.priority, c.expires_at, c.origin).where(
                c.account_id == account_id, c.unit == unit, c.remaining > 0
            )
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

    def insert_grant(self, grant: NewGrant) -> None:
        self.conn.execute(
            t.grants.insert().values(
                id=grant.id,
                account_id=grant.account_id,
                unit=grant.unit,
                amount=grant.amount,
                remaining=grant.remaining,
                held=0,
                priority=grant.priority,
                expires_at=grant.expires_at,
                kind=grant.kind,
                origin=grant.origin,
                reason=grant.reason,
                transaction_id=grant.transaction_id,
                created=grant.created,
            )
        )

    def update_grants(self, changes: Sequence[tuple[str, int, int]]) -> None:
        if not changes:
            return
        c = t.grants.c
        stmt = (
            t.grants.update()
            .where(c.id == sa.bindparam("gid"))
            .values(remaining=sa.bindparam("new_remaining"), held=sa.bindparam("new_held"))
        )
        self.conn.execute(
            stmt,
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
            stmt = stmt.where(c.remaining > 0, sa.or_(c.expires_at.is_(None), c.expires_at > now))
        if starting_after:
            stmt = stmt.where(c.id < starting_after)
        rows = self.conn.execute(stmt.order_by(c.id.desc()).limit(limit))
        return [
            GrantRecord(
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
            for r in rows
        ]

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

    # --- holds ---

    def insert_hold(self, hold: HoldRow, transaction_id: str) -> None:
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

    def get_hold(self, hold_id: str) -> HoldRow | None:
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
        self.conn.execute(
            t.hold_allocations.insert(),
            [
                {"hold_id": hold_id, "grant_id": g, "seq": i, "amount": a}
                for i, (g, a) in enumerate(allocations)
            ],
        )

    def close_hold(self, hold_id: str, *, status: str, captured: int, transaction_id: str) -> None:
        c = t.holds.c
        self.conn.execute(
            t.holds.update()
            .where(c.id == hold_id, c.status == "active")
            .values(status=status, captured=captured, closed_transaction_id=transaction_id)
        )

    def active_holds(self, account_id: str, unit: str) -> list[HoldRow]:
        c = t.holds.c
        rows = self.conn.execute(
            sa.select(t.holds).where(
                c.account_id == account_id, c.unit == unit, c.status == "active"
            )
        )
        return [_hold(r) for r in rows]

    def lapsed_holds(self, account_id: str | None, now: int, limit: int) -> list[HoldRow]:
        c = t.holds.c
        stmt = sa.select(t.holds).where(c.status == "active", c.expires_at <= now)
        if account_id is not None:
            stmt = stmt.where(c.account_id == account_id)
        return [_hold(r) for r in self.conn.execute(stmt.order_by(c.id).limit(limit))]


def _hold(r: Any) -> HoldRow:
    return HoldRow(
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

"""The ledger's rows in memory (implements ``service.ports.LedgerStore``, as ``SqlLedgerStore``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from billfold.adapters.memory import _tables as t
from billfold.adapters.memory._tables import (
    AllocationRow,
    GrantRow,
    HoldRow,
    LineRow,
    TransactionRow,
    Work,
    refuse,
)
from billfold.adapters.memory.notifications import add_notification
from billfold.domain import errors
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


def json_copy(value: Mapping[str, Any]) -> str:
    """What a JSON column stores (tuples become lists, keys strings), as the database does."""
    return json.dumps(dict(value))


class MemoryLedgerStore:
    def __init__(self, work: Work) -> None:
        self._work = work

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
        t.varchar(
            (txn_id, t.ID),
            (key, t.KEY),
            (request_hash, 64),
            (kind, 32),
            (account_id, t.ACCOUNT),
            (unit, t.UNIT),
        )
        t.bigint(amount, created)
        tables = self._work.tables
        # ON CONFLICT DO NOTHING: a used key, or a used id, and nothing is written.
        if key in tables.transaction_keys or txn_id in tables.transactions:
            return False
        tables.transactions[txn_id] = TransactionRow(
            id=txn_id,
            idempotency_key=key,
            request_hash=request_hash,
            kind=kind,
            account_id=account_id,
            unit=unit,
            amount=amount,
            reason=reason,
            line_count=None,
            result=None,
            created=created,
        )
        tables.transaction_keys[key] = txn_id
        return True

    def transaction_by_key(self, key: str) -> StoredTransaction | None:
        tables = self._work.tables
        txn_id = tables.transaction_keys.get(key)
        if txn_id is None:
            return None
        row = tables.transactions[txn_id]
        return StoredTransaction(
            id=row.id,
            kind=row.kind,
            request_hash=row.request_hash,
            result=None if row.result is None else json.loads(row.result),
        )

    def finish_transaction(
        self, txn_id: str, lines: Sequence[Line], result: Mapping[str, Any]
    ) -> None:
        tables = self._work.tables
        for line in lines:
            t.varchar((line.account_id, t.ACCOUNT), (line.unit, t.UNIT))
            t.varchar((line.grant_id, t.ID), (line.hold_id, t.ID))
            t.bigint(line.amount)
        if any(line.amount == 0 for line in lines):
            refuse(t.CK_LEDGER_LINES_NON_ZERO)
        row = tables.transactions.get(txn_id)
        if lines and row is None:
            refuse(t.FK_LINES_TRANSACTION)
        if row is None:
            return  # an UPDATE of no row
        if row.result is not None:
            refuse(t.LEDGER_APPEND_ONLY)  # the trigger: a finished transaction never changes
        encoded = json_copy(result)
        first = tables.last_line_id + 1
        tables.lines.extend(
            LineRow(
                id=first + index,
                transaction_id=txn_id,
                account_id=line.account_id,
                unit=line.unit,
                amount=line.amount,
                grant_id=line.grant_id,
                hold_id=line.hold_id,
            )
            for index, line in enumerate(lines)
        )
        tables.last_line_id += len(lines)
        tables.transactions[txn_id] = replace(row, result=encoded, line_count=len(lines))
        if lines:
            self._work.lines_written.append(txn_id)

    # --- accounts and balances ---

    def ensure_accounts(self, accounts: Sequence[tuple[str, int]]) -> None:
        for account_id, now in accounts:
            self.ensure_account(account_id, now)

    def ensure_account(self, account_id: str, now: int) -> None:
        t.varchar((account_id, t.ACCOUNT))
        t.bigint(now)
        accounts = self._work.tables.accounts
        if account_id not in accounts:
            accounts[account_id] = t.AccountRow(
                id=account_id,
                email=None,
                stripe_customer_id=None,
                metadata="{}",
                created=now,
                updated=now,
            )

    def ensure_locked_balance(self, account_id: str, unit: str) -> BalanceRow:
        t.varchar((account_id, t.ACCOUNT), (unit, t.UNIT))
        tables = self._work.tables
        found = tables.balances.get((account_id, unit))
        if found is not None:
            return found
        if account_id not in tables.accounts:
            refuse(t.FK_BALANCES_ACCOUNT)
        row = BalanceRow(account_id=account_id, unit=unit, available=0, held=0, debt=0)
        tables.balances[(account_id, unit)] = row
        return row

    def lock_balance(self, account_id: str, unit: str) -> BalanceRow | None:
        return self._work.tables.balances.get((account_id, unit))

    def set_balance(self, row: BalanceRow) -> None:
        t.bigint(row.available, row.held, row.debt)
        balances = self._work.tables.balances
        position = (row.account_id, row.unit)
        if position not in balances:
            return  # an UPDATE of no row
        if row.debt < 0:
            refuse(t.CK_BALANCES_DEBT_NON_NEGATIVE)
        if row.held < 0:
            refuse(t.CK_BALANCES_HELD_NON_NEGATIVE)
        if row.available + row.debt < 0:
            refuse(t.CK_BALANCES_NOT_OVERDRAWN)
        balances[position] = replace(
            balances[position], available=row.available, held=row.held, debt=row.debt
        )

    def set_low_alert(self, account_id: str, unit: str, alert: bool) -> None:
        balances = self._work.tables.balances
        if (account_id, unit) in balances:
            balances[(account_id, unit)] = replace(balances[(account_id, unit)], low_alert=alert)

    def set_low_balance(self, account_id: str, unit: str, threshold: int | None) -> None:
        if threshold is not None:
            t.bigint(threshold)
        balances = self._work.tables.balances
        if (account_id, unit) in balances:
            balances[(account_id, unit)] = replace(
                balances[(account_id, unit)], low_balance=threshold
            )

    def add_notification(self, notification: NewNotification) -> None:
        add_notification(self._work, notification)

    def balances(self, account_id: str) -> list[BalanceRow]:
        rows = [b for (a, _), b in self._work.tables.balances.items() if a == account_id]
        return sorted(rows, key=lambda b: b.unit)

    # --- grants ---

    def grant_states(
        self, account_id: str, unit: str, *, expired_at: int | None = None
    ) -> list[GrantState]:
        return [
            GrantState(
                id=g.id,
                unit=g.unit,
                remaining=g.remaining,
                held=g.held,
                priority=g.priority,
                expires_at=g.expires_at,
                created_seq=g.id,
                origin=g.origin,
            )
            for g in self._grants()
            if g.account_id == account_id
            and g.unit == unit
            and g.remaining > 0
            and (
                expired_at is None
                or (
                    g.expires_at is not None and g.expires_at <= expired_at and g.remaining > g.held
                )
            )
        ]

    def insert_grant(self, grant: NewGrant) -> None:
        row = GrantRow(
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
        t.varchar(
            (row.id, t.ID),
            (row.account_id, t.ACCOUNT),
            (row.unit, t.UNIT),
            (row.kind, 32),
            (row.origin, 255),
            (row.transaction_id, t.ID),
        )
        _check_grant(row)
        tables = self._work.tables
        if row.id in tables.grants:
            refuse(t.PK_GRANTS)
        if row.account_id not in tables.accounts:
            refuse(t.FK_GRANTS_ACCOUNT)
        if row.transaction_id not in tables.transactions:
            refuse(t.FK_GRANTS_TRANSACTION)
        tables.grants[row.id] = row

    def update_grants(self, changes: Sequence[tuple[str, int, int]]) -> None:
        grants = self._work.tables.grants
        updated: dict[str, GrantRow] = {}
        for grant_id, remaining, held in changes:
            current = updated.get(grant_id) or grants.get(grant_id)
            if current is None:
                continue  # an UPDATE of no row
            row = replace(current, remaining=remaining, held=held)
            _check_grant(row)
            updated[grant_id] = row
        grants.update(updated)

    def expired_grant_positions(self, now: int, limit: int) -> list[tuple[str, str]]:
        positions = {
            (g.account_id, g.unit)
            for g in self._grants()
            if g.expires_at is not None and g.expires_at <= now and g.remaining > g.held
        }
        return sorted(positions)[:limit]

    def pending_expiry(self, account_id: str, now: int) -> dict[str, tuple[int, int]]:
        tables = self._work.tables
        out: dict[str, list[int]] = {}
        for g in self._grants():
            if (
                g.account_id == account_id
                and g.remaining > g.held
                and g.expires_at is not None
                and g.expires_at <= now
            ):
                out.setdefault(g.unit, [0, 0])[0] += g.remaining - g.held
        lapsed = [
            h
            for h in tables.holds.values()
            if h.account_id == account_id and h.status == "active" and h.expires_at <= now
        ]
        for h in lapsed:
            out.setdefault(h.unit, [0, 0])[1] += h.amount
        # Value that a lapsed hold returns onto an expired grant expires with it.
        for h in lapsed:
            for alloc in tables.allocations.get(h.id, ()):
                grant = tables.grants[alloc.grant_id]
                if grant.expires_at is not None and grant.expires_at <= now:
                    out.setdefault(h.unit, [0, 0])[0] += alloc.amount
        return {unit: (v[0], v[1]) for unit, v in out.items()}

    def list_grants(
        self, account_id: str, *, limit: int, starting_after: str | None, live_only: bool, now: int
    ) -> list[GrantRecord]:
        rows = [
            g
            for g in self._grants()
            if g.account_id == account_id
            and (
                not live_only or (g.remaining > 0 and (g.expires_at is None or g.expires_at > now))
            )
            and (not starting_after or g.id < starting_after)
        ]
        rows.sort(key=lambda g: g.id, reverse=True)
        return [
            GrantRecord(
                id=g.id,
                account_id=g.account_id,
                unit=g.unit,
                amount=g.amount,
                remaining=g.remaining,
                held=g.held,
                priority=g.priority,
                expires_at=g.expires_at,
                kind=g.kind,
                origin=g.origin,
                reason=g.reason,
                created=g.created,
            )
            for g in rows[:limit]
        ]

    def lots(self, origin: str) -> list[Lot]:
        return [
            Lot(grant_id=g.id, unit=g.unit, amount=g.amount, remaining=g.remaining, held=g.held)
            for g in sorted(self._grants(), key=lambda g: g.id)
            if g.origin == origin
        ]

    def has_grant(self, account_id: str, grant_id: str) -> bool:
        found = self._work.tables.grants.get(grant_id)
        return found is not None and found.account_id == account_id

    def has_transaction(self, account_id: str, transaction_id: str) -> bool:
        return any(
            line.transaction_id == transaction_id and line.account_id == account_id
            for line in self._work.tables.lines
        )

    def list_transactions(
        self, account_id: str, *, limit: int, starting_after: str | None
    ) -> list[TransactionRecord]:
        tables = self._work.tables
        touching = {ln.transaction_id for ln in tables.lines if ln.account_id == account_id}
        chosen = sorted(
            (x for x in touching if not starting_after or x < starting_after), reverse=True
        )[:limit]
        lines: dict[str, list[Line]] = {x: [] for x in chosen}
        for ln in tables.lines:  # in the order they were written
            if ln.transaction_id in lines:
                lines[ln.transaction_id].append(
                    Line(
                        account_id=ln.account_id,
                        unit=ln.unit,
                        amount=ln.amount,
                        grant_id=ln.grant_id,
                        hold_id=ln.hold_id,
                    )
                )
        out: list[TransactionRecord] = []
        for txn_id in chosen:
            x = tables.transactions[txn_id]
            out.append(
                TransactionRecord(
                    id=x.id,
                    kind=x.kind,
                    account_id=x.account_id,
                    unit=x.unit,
                    amount=x.amount,
                    reason=x.reason,
                    created=x.created,
                    lines=tuple(lines[txn_id]),
                )
            )
        return out

    def trail(self, account_id: str, unit: str) -> LedgerTrail:
        tables = self._work.tables
        chosen = sorted(
            (
                g
                for g in self._grants()
                if g.account_id == account_id and g.unit == unit and g.remaining > 0
            ),
            key=lambda g: g.id,
        )
        grants: list[TrailGrant] = []
        for g in chosen:
            txn = tables.transactions[g.transaction_id]
            result = json.loads(txn.result) if txn.result else {}
            repaid = int(result.get("debt_repaid") or 0) if txn.kind == "grant" else 0
            grants.append(
                TrailGrant(
                    grant=_grant_record(g),
                    transaction_id=g.transaction_id,
                    transaction_kind=txn.kind,
                    debt_repaid=repaid,
                )
            )
        own = {g.id: g.transaction_id for g in chosen}
        draws = []
        for ln in tables.lines:  # in the order they were written
            if (
                ln.grant_id in own
                and ln.unit == unit
                and ln.account_id in DRAW_SINKS
                and own[ln.grant_id] != ln.transaction_id
            ):
                txn = tables.transactions[ln.transaction_id]
                draws.append(
                    TrailDraw(
                        grant_id=ln.grant_id,
                        transaction_id=ln.transaction_id,
                        kind=txn.kind,
                        amount=ln.amount,
                        created=txn.created,
                    )
                )
        holds = sorted(
            (
                h
                for h in tables.holds.values()
                if h.account_id == account_id and h.unit == unit and h.status == "active"
            ),
            key=lambda h: h.id,
        )
        balance = tables.balances.get((account_id, unit))
        return LedgerTrail(
            grants=tuple(grants),
            draws=tuple(draws),
            holds=tuple(
                TrailHold(hold=_hold(h), allocations=tuple(self.hold_allocations(h.id)))
                for h in holds
            ),
            debt=balance.debt if balance else 0,
        )

    # --- batches ---

    def load_batch(self, read: BatchRead) -> BatchSnapshot:
        holds = {h: found for h in read.hold_ids if (found := self.get_hold(h)) is not None}
        positions = sorted({*read.positions, *((h.account_id, h.unit) for h in holds.values())})
        balances = {pos: row for pos in positions if (row := self.lock_balance(*pos)) is not None}
        for account_id, unit in positions:
            for lapsed in self.lapsed_holds(account_id, read.now, 10_000):
                if lapsed.unit == unit:
                    holds[lapsed.id] = lapsed
        transactions = {
            key: txn for key in read.keys if (txn := self.transaction_by_key(key)) is not None
        }
        return BatchSnapshot(
            transactions=transactions,
            balances=balances,
            grants={pos: self.grant_states(*pos) for pos in positions},
            holds=holds,
            allocations={h: self.hold_allocations(h) for h in holds},
        )

    def flush_batch(self, writes: BatchWrites, *, commit: bool = False) -> None:
        for txn in writes.transactions:
            if not self.claim_key(
                txn_id=txn.id,
                key=txn.key,
                request_hash=txn.request_hash,
                kind=txn.kind,
                account_id=txn.account_id,
                unit=txn.unit,
                amount=txn.amount,
                reason=txn.reason,
                created=txn.created,
            ):
                raise errors.KeyTaken(f"the idempotency key {txn.key!r} was taken meanwhile")
        balances = self._work.tables.balances
        for row in writes.new_balances:
            if (row.account_id, row.unit) in balances:
                refuse(t.PK_BALANCES)  # created meanwhile: a plain INSERT fails
            self.ensure_locked_balance(row.account_id, row.unit)
            self.set_balance(row)
            balances[(row.account_id, row.unit)] = row
        for grant in writes.new_grants:
            self.insert_grant(grant)
        for hold, txn_id in writes.holds:
            self.insert_hold(hold, txn_id)
        for txn in writes.transactions:
            self.finish_transaction(txn.id, txn.lines, txn.result)
        for hold_id, allocations in writes.allocations:
            self.insert_allocations(hold_id, allocations)
        self.update_grants([(g, r, h) for g, (r, h) in writes.grants.items()])
        for row in writes.balances:
            self.set_balance(row)
        for hold_id, status, captured, txn_id in writes.closed_holds:
            self.close_hold(hold_id, status=status, captured=captured, transaction_id=txn_id)

    # --- holds ---

    def insert_hold(self, hold: HoldRecord, transaction_id: str) -> None:
        row = HoldRow(
            id=hold.id,
            account_id=hold.account_id,
            unit=hold.unit,
            amount=hold.amount,
            captured=0,
            status=hold.status,
            expires_at=hold.expires_at,
            reason=hold.reason,
            transaction_id=transaction_id,
            closed_transaction_id=None,
            created=hold.created,
        )
        t.varchar(
            (row.id, t.ID),
            (row.account_id, t.ACCOUNT),
            (row.unit, t.UNIT),
            (row.status, 16),
            (row.transaction_id, t.ID),
        )
        t.bigint(row.amount, row.expires_at, row.created)
        _check_hold(row)
        tables = self._work.tables
        if row.id in tables.holds:
            refuse(t.PK_HOLDS)
        if row.account_id not in tables.accounts:
            refuse(t.FK_HOLDS_ACCOUNT)
        if row.transaction_id not in tables.transactions:
            refuse(t.FK_HOLDS_TRANSACTION)
        tables.holds[row.id] = row

    def get_hold(self, hold_id: str) -> HoldRecord | None:
        row = self._work.tables.holds.get(hold_id)
        return None if row is None else _hold(row)

    def hold_allocations(self, hold_id: str) -> list[tuple[str, int]]:
        rows = sorted(self._work.tables.allocations.get(hold_id, ()), key=lambda a: a.seq)
        return [(a.grant_id, a.amount) for a in rows]

    def insert_allocations(self, hold_id: str, allocations: Sequence[tuple[str, int]]) -> None:
        rows = [
            AllocationRow(hold_id=hold_id, grant_id=g, seq=i, amount=a)
            for i, (g, a) in enumerate(allocations)
        ]
        for row in rows:
            t.varchar((row.hold_id, t.ID), (row.grant_id, t.ID))
            t.bigint(row.amount)
        if any(row.amount <= 0 for row in rows):
            refuse(t.CK_HOLD_ALLOCATIONS_AMOUNT_POSITIVE)
        tables = self._work.tables
        existing = tables.allocations.get(hold_id, ())
        grants_seen = {a.grant_id for a in existing}
        seqs_seen = {a.seq for a in existing}
        for row in rows:
            if row.grant_id in grants_seen:
                refuse(t.PK_HOLD_ALLOCATIONS)
            if row.seq in seqs_seen:
                refuse(t.UQ_HOLD_ALLOCATIONS_HOLD_ID_SEQ)
            grants_seen.add(row.grant_id)
            seqs_seen.add(row.seq)
        for row in rows:
            if row.hold_id not in tables.holds:
                refuse(t.FK_ALLOCATIONS_HOLD)
            if row.grant_id not in tables.grants:
                refuse(t.FK_ALLOCATIONS_GRANT)
        if rows:
            tables.allocations[hold_id] = (*existing, *rows)

    def close_hold(
        self, hold_id: str, *, status: HoldStatus, captured: int, transaction_id: str
    ) -> None:
        holds = self._work.tables.holds
        current = holds.get(hold_id)
        if current is None or current.status != "active":
            return  # the UPDATE matches only an active hold
        t.varchar((status, 16), (transaction_id, t.ID))
        t.bigint(captured)
        row = replace(
            current, status=status, captured=captured, closed_transaction_id=transaction_id
        )
        _check_hold(row)
        holds[hold_id] = row

    def list_holds(
        self,
        account_id: str,
        *,
        status: HoldStatus | None,
        now: int,
        limit: int,
        starting_after: str | None,
    ) -> list[HoldRecord]:
        rows = sorted(
            (
                h
                for h in self._work.tables.holds.values()
                if h.account_id == account_id
                and (status is None or _hold(h).status_at(now) == status)
                and (not starting_after or h.id < starting_after)
            ),
            key=lambda h: h.id,
            reverse=True,
        )
        return [_hold(h) for h in rows[:limit]]

    def lapsed_holds(self, account_id: str | None, now: int, limit: int) -> list[HoldRecord]:
        rows = sorted(
            (
                h
                for h in self._work.tables.holds.values()
                if h.status == "active"
                and h.expires_at <= now
                and (account_id is None or h.account_id == account_id)
            ),
            key=lambda h: h.id,
        )
        return [_hold(h) for h in rows[:limit]]

    # --- helpers ---

    def _grants(self) -> list[GrantRow]:
        return list(self._work.tables.grants.values())


DRAW_SINKS = frozenset(
    rules.system_account(n) for n in (rules.SPENT, rules.REFUNDED, rules.EXPIRED, rules.ADJUSTMENTS)
)


def _grant_record(g: GrantRow) -> GrantRecord:
    return GrantRecord(
        id=g.id,
        account_id=g.account_id,
        unit=g.unit,
        amount=g.amount,
        remaining=g.remaining,
        held=g.held,
        priority=g.priority,
        expires_at=g.expires_at,
        kind=g.kind,
        origin=g.origin,
        reason=g.reason,
        created=g.created,
    )


def _check_grant(row: GrantRow) -> None:
    t.bigint(row.amount, row.remaining, row.held, row.expires_at, row.created)
    t.integer(row.priority)
    if not row.amount > 0:
        refuse(t.CK_GRANTS_AMOUNT_POSITIVE)
    if not 0 <= row.held <= row.remaining:
        refuse(t.CK_GRANTS_HELD_IN_RANGE)
    if not 0 <= row.remaining <= row.amount:
        refuse(t.CK_GRANTS_REMAINING_IN_RANGE)


def _check_hold(row: HoldRow) -> None:
    if not row.amount > 0:
        refuse(t.CK_HOLDS_AMOUNT_POSITIVE)
    if not 0 <= row.captured <= row.amount:
        refuse(t.CK_HOLDS_CAPTURED_IN_RANGE)
    if row.status not in t.HOLD_STATUSES:
        refuse(t.CK_HOLDS_STATUS_KNOWN)


def _hold(row: HoldRow) -> HoldRecord:
    status: Any = row.status  # one of HoldStatus: the CHECK constraint saw to it
    return HoldRecord(
        id=row.id,
        account_id=row.account_id,
        unit=row.unit,
        amount=row.amount,
        captured=row.captured,
        status=status,
        expires_at=row.expires_at,
        reason=row.reason,
        created=row.created,
    )

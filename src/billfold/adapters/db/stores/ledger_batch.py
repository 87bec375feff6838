"""A batch of ledger writes in a fixed number of set-based statements (the write combiner's).

Reading: the holds the batch closes (to learn their balances), then the balance rows, locked in
(account, unit) order (``FOR UPDATE`` on PostgreSQL; SQLite's unit of work already holds the
database's write lock), then, under those locks, the holds that lapsed or are closed, their
allocations, the live grants and the transactions already holding one of the batch's keys
(PostgreSQL: all of it in one call of ``billfold_batch_read``, migration 0010).

Writing, in this order (each statement sees the rows of those before it): the finished
transactions (``ON CONFLICT DO NOTHING``: a key another transaction took meanwhile raises
``KeyTaken`` before anything else is written), new balance rows and grants (the inbox's batches;
a plain ``INSERT``: a row created meanwhile fails the batch), new holds, lines, allocations, then
the final state of every grant, balance and closed hold (PostgreSQL: one JSON document each, all
in one call of ``billfold_batch_write`` followed by the commit; SQLite: ``executemany``, in
process).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from billfold.adapters.db.stores._raw import PG_IDS, Raw, marks
from billfold.domain import errors
from billfold.domain.ledger import GrantState
from billfold.domain.records import HoldRecord
from billfold.service.ports import (
    BalanceRow,
    BatchRead,
    BatchSnapshot,
    BatchWrites,
    StoredTransaction,
)

HOLD_COLUMNS = "id, account_id, unit, amount, captured, status, expires_at, reason, created"
# PostgreSQL takes a batch's rows as one JSON document per statement (``json_to_recordset``):
# one ``json.dumps`` in C, where arrays of parameters cost a Python dumper per element (about a
# fifth of a batch's CPU when they were arrays). Lists of ids go the same way, into an array
# built once (``= ANY(ARRAY(...))``) so that the index is used as for an array parameter.
PG_READ = b"SELECT billfold_batch_read(%s::json, %s::json, %s::json, %d::bigint)"
"""Everything a batch reads, in one call (migration 0010): the batch's planner settings for the
rest of its transaction, the balance rows locked in (account, unit) order, then under the locks
the holds named and lapsed with their allocations, the live grants and the keys' transactions, as
one JSON document. Sent with ``BEGIN`` in one round trip (``Raw.script``)."""
PG_WRITE = b"SELECT billfold_batch_write(%s, %d)"
"""Every write of a batch, in one call (migration 0010): a JSON document of rows for each of
``PG_WRITES``, and how many transactions must go in (fewer: a key was taken meanwhile, and the
call fails on the key's constraint). Sent with ``COMMIT`` in one round trip."""
PG_KEY_TAKEN = "uq_ledger_transactions_idempotency_key"

PG = {"holds": f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = {PG_IDS}"}
# The names each statement's JSON records use, in the order of the rows built in ``flush``.
PG_RECORDS = {
    "insert_transactions": ("i", "k", "h", "d", "a", "u", "m", "r", "c", "x", "n"),
    "insert_balances": ("a", "u", "av", "he", "de", "lo", "al"),
    "insert_grants": ("i", "a", "u", "m", "r", "p", "e", "k", "o", "x", "t", "c"),
    "insert_holds": ("i", "a", "u", "m", "e", "r", "t", "c"),
    "insert_lines": ("t", "a", "u", "m", "g", "h"),
    "insert_allocations": ("h", "g", "s", "m"),
    "update_grants": ("i", "r", "h"),
    "update_balances": ("a", "u", "av", "he", "de"),
    "close_holds": ("i", "s", "c", "t"),
}

# The documents ``billfold_batch_write`` takes, in the order it writes them (a later one may need
# an earlier one's rows: lines their transaction, allocations their hold).
PG_WRITES = (
    "insert_transactions",
    "insert_balances",
    "insert_grants",
    "insert_holds",
    "insert_lines",
    "insert_allocations",
    "update_grants",
    "update_balances",
    "close_holds",
)

SQLITE = {
    "insert_transactions": (
        "INSERT INTO ledger_transactions (id, idempotency_key, request_hash, kind, account_id, "
        "unit, amount, reason, created, result, line_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING"
    ),
    "insert_balances": (
        "INSERT INTO balances (account_id, unit, available, held, debt, low_balance, low_alert) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    ),
    "insert_grants": (
        "INSERT INTO grants (id, account_id, unit, amount, remaining, held, priority, expires_at, "
        "kind, origin, reason, transaction_id, created) "
        "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "insert_holds": (
        "INSERT INTO holds (id, account_id, unit, amount, captured, status, expires_at, reason, "
        "transaction_id, created) VALUES (?, ?, ?, ?, 0, 'active', ?, ?, ?, ?)"
    ),
    "insert_lines": (
        "INSERT INTO ledger_lines (transaction_id, account_id, unit, amount, grant_id, hold_id) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    ),
    "insert_allocations": (
        "INSERT INTO hold_allocations (hold_id, grant_id, seq, amount) VALUES (?, ?, ?, ?)"
    ),
    "update_grants": "UPDATE grants SET remaining = ?, held = ? WHERE id = ?",
    "update_balances": (
        "UPDATE balances SET available = ?, held = ?, debt = ? WHERE account_id = ? AND unit = ?"
    ),
    "close_holds": (
        "UPDATE holds SET status = ?, captured = ?, closed_transaction_id = ? "
        "WHERE id = ? AND status = 'active'"
    ),
}

MAX_LAPSED = 10_000


def _pairs(n: int) -> str:
    return ", ".join(["(?, ?)"] * n)


def _hold(r: Sequence[Any]) -> HoldRecord:
    return HoldRecord(
        id=r[0],
        account_id=r[1],
        unit=r[2],
        amount=r[3],
        captured=r[4],
        status=r[5],
        expires_at=r[6],
        reason=r[7],
        created=r[8],
    )


def load(raw: Raw, read: BatchRead) -> BatchSnapshot:
    hold_ids = list(read.hold_ids)
    holds: dict[str, HoldRecord] = {}
    if hold_ids:
        holds = {r[0]: _hold(r) for r in _select_holds(raw, hold_ids)}
    positions = sorted({*read.positions, *((h.account_id, h.unit) for h in holds.values())})
    if raw.pg:
        return _load_pg(raw, read, hold_ids, positions)
    return _load_sqlite(raw, read, hold_ids, positions)


def _load_pg(
    raw: Raw, read: BatchRead, hold_ids: list[str], positions: list[tuple[str, str]]
) -> BatchSnapshot:
    """One call, one round trip (``billfold_batch_read``, after ``BEGIN``): the locks first,
    then every read under them."""
    sql = PG_READ % (
        raw.literal(json.dumps([{"a": a, "u": u} for a, u in positions])),
        raw.literal(json.dumps(hold_ids)),
        raw.literal(json.dumps(list(read.keys))),
        int(read.now),
    )
    value = raw.script(sql, begin=True).get_value(0, 0)
    assert value is not None  # the function answers an array of four, each a list or null
    balances, holds, grants, transactions = (part or [] for part in json.loads(value))
    return _snapshot(
        positions,
        balances,
        [r[:-1] for r in holds],
        [(r[0], grant_id, amount) for r in holds for grant_id, amount in r[-1] or ()],
        grants,
        transactions,
        limit=MAX_LAPSED + len(hold_ids),
    )


def _load_sqlite(
    raw: Raw, read: BatchRead, hold_ids: list[str], positions: list[tuple[str, str]]
) -> BatchSnapshot:
    """The unit of work holds SQLite's write lock: nothing changes under the batch."""
    flat = [v for pos in positions for v in pos]
    where = f"(account_id, unit) IN (VALUES {_pairs(len(positions))})"
    # The batch's positions drive the join (SQLite takes CROSS JOIN's order as given): each is
    # an index lookup. Written as ``(account_id, unit) IN (VALUES ...)`` SQLite scanned the
    # whole table instead, at every batch (10,000 accounts: 0.16 ms more CPU per spend, growing
    # with the table).
    by_position = f"(VALUES {_pairs(len(positions))}) AS p CROSS JOIN"
    balances = holds = allocations = grants = transactions = []
    if positions:
        balances = raw.rows(
            "SELECT b.account_id, b.unit, b.available, b.held, b.debt, b.low_balance, "
            f"b.low_alert FROM {by_position} balances AS b "
            "ON b.account_id = p.column1 AND b.unit = p.column2",
            flat,
        )
        grants = raw.rows(
            "SELECT g.id, g.account_id, g.unit, g.remaining, g.held, g.priority, g.expires_at, "
            f"g.origin FROM {by_position} grants AS g "
            "ON g.account_id = p.column1 AND g.unit = p.column2 WHERE g.live",
            flat,
        )
        holds = raw.rows(
            f"SELECT {HOLD_COLUMNS} FROM holds WHERE status = 'active' AND expires_at <= ? "
            f"AND {where}",
            [read.now, *flat],
        )
    if hold_ids:
        holds += _select_holds(raw, hold_ids)
    ids = list(dict.fromkeys(r[0] for r in holds))
    if ids:
        allocations = raw.rows(
            "SELECT hold_id, grant_id, amount FROM hold_allocations "
            f"WHERE hold_id IN ({marks(len(ids))}) ORDER BY hold_id, seq",
            ids,
        )
    keys = list(read.keys)
    if keys:
        transactions = raw.rows(
            "SELECT idempotency_key, id, kind, request_hash, result FROM ledger_transactions "
            f"WHERE idempotency_key IN ({marks(len(keys))})",
            keys,
        )
    return _snapshot(
        positions,
        balances,
        holds,
        allocations,
        grants,
        transactions,
        limit=MAX_LAPSED + len(hold_ids),
    )


def _snapshot(
    positions: list[tuple[str, str]],
    balance_rows: list[tuple[Any, ...]],
    hold_rows: list[tuple[Any, ...]],
    allocation_rows: list[tuple[Any, ...]],
    grant_rows: list[tuple[Any, ...]],
    transaction_rows: list[tuple[Any, ...]],
    *,
    limit: int,
) -> BatchSnapshot:
    holds = {r[0]: _hold(r) for r in hold_rows[:limit]}
    allocations: dict[str, list[tuple[str, int]]] = {h: [] for h in holds}
    for hold_id, grant_id, amount in allocation_rows:
        if hold_id in allocations:
            allocations[hold_id].append((grant_id, amount))
    grants: dict[tuple[str, str], list[GrantState]] = {pos: [] for pos in positions}
    for gid, account_id, unit, remaining, held, priority, expires_at, origin in grant_rows:
        grants[(account_id, unit)].append(
            GrantState(
                id=gid,
                unit=unit,
                remaining=remaining,
                held=held,
                priority=priority,
                expires_at=expires_at,
                created_seq=gid,
                origin=origin,
            )
        )
    transactions: dict[str, StoredTransaction] = {}
    for key, txn_id, kind, digest, result in transaction_rows:
        if isinstance(result, str):
            result = json.loads(result)
        transactions[key] = StoredTransaction(
            id=txn_id, kind=kind, request_hash=digest, result=result
        )
    return BatchSnapshot(
        transactions=transactions,
        balances=_balances(balance_rows),
        grants=grants,
        holds=holds,
        allocations=allocations,
    )


def _select_holds(raw: Raw, hold_ids: list[str]) -> list[tuple[Any, ...]]:
    if raw.pg:
        return raw.rows(PG["holds"], (json.dumps(hold_ids),))
    return raw.rows(
        f"SELECT {HOLD_COLUMNS} FROM holds WHERE id IN ({marks(len(hold_ids))})", hold_ids
    )


def _balances(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], BalanceRow]:
    return {
        (a, u): BalanceRow(
            account_id=a,
            unit=u,
            available=av,
            held=he,
            debt=de,
            low_balance=low,
            low_alert=bool(alert),
        )
        for a, u, av, he, de, low, alert in rows
    }


def _records(name: str, rows: Sequence[Sequence[Any]]) -> str:
    """Rows as one JSON document of records (PostgreSQL's ``json_to_recordset``)."""
    names = PG_RECORDS[name]
    return json.dumps([dict(zip(names, row, strict=True)) for row in rows])


def flush(raw: Raw, writes: BatchWrites, *, commit: bool) -> None:
    txns = [
        (
            x.id,
            x.key,
            x.request_hash,
            x.kind,
            x.account_id,
            x.unit,
            x.amount,
            x.reason,
            x.created,
            dict(x.result),
            len(x.lines),
        )
        for x in writes.transactions
    ]
    holds = [
        (h.id, h.account_id, h.unit, h.amount, h.expires_at, h.reason, txn, h.created)
        for h, txn in writes.holds
    ]
    lines = [
        (x.id, ln.account_id, ln.unit, ln.amount, ln.grant_id, ln.hold_id)
        for x in writes.transactions
        for ln in x.lines
    ]
    allocations = [
        (hold_id, grant_id, seq, amount)
        for hold_id, allocated in writes.allocations
        for seq, (grant_id, amount) in enumerate(allocated)
    ]
    new_balances = [
        (b.account_id, b.unit, b.available, b.held, b.debt, b.low_balance, b.low_alert)
        for b in writes.new_balances
    ]
    new_grants = [
        (
            g.id,
            g.account_id,
            g.unit,
            g.amount,
            g.remaining,
            g.priority,
            g.expires_at,
            g.kind,
            g.origin,
            g.reason,
            g.transaction_id,
            g.created,
        )
        for g in writes.new_grants
    ]
    grants = [(g, r, h) for g, (r, h) in writes.grants.items()]
    balances = [(b.account_id, b.unit, b.available, b.held, b.debt) for b in writes.balances]
    closed = [(h, s, c, t) for h, s, c, t in writes.closed_holds]
    if raw.pg:
        # One round trip: the writes, then the commit (the unit of work's commit then finds the
        # transaction committed and has nothing to do). A key taken meanwhile fails the call
        # before anything else is written; the batch is then made one request at a time.
        documents: dict[str, Sequence[Sequence[Any]]] = {
            "insert_transactions": txns,
            "insert_balances": new_balances,
            "insert_grants": new_grants,
            "insert_holds": holds,
            "insert_lines": lines,
            "insert_allocations": allocations,
            "update_grants": grants,
            "update_balances": balances,
            "close_holds": closed,
        }
        sql = PG_WRITE % (
            b", ".join(raw.literal(_records(name, documents[name])) for name in PG_WRITES),
            len(txns),
        )
        try:
            raw.script(sql + b"; COMMIT" if commit else sql)
        except sa.exc.IntegrityError as exc:
            if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) == PG_KEY_TAKEN:
                raise errors.KeyTaken(
                    "another transaction took one of this batch's idempotency keys"
                ) from exc
            raise
        return
    inserted = raw.many(
        SQLITE["insert_transactions"], [(*t[:9], json.dumps(t[9]), t[10]) for t in txns]
    )
    raw.many(SQLITE["insert_balances"], new_balances)
    raw.many(SQLITE["insert_grants"], new_grants)
    raw.many(SQLITE["insert_holds"], holds)
    raw.many(SQLITE["insert_lines"], lines)
    raw.many(SQLITE["insert_allocations"], allocations)
    raw.many(SQLITE["update_grants"], [(r, h, g) for g, r, h in grants])
    raw.many(SQLITE["update_balances"], [(av, he, de, a, u) for a, u, av, he, de in balances])
    raw.many(SQLITE["close_holds"], [(s, c, t, h) for h, s, c, t in closed])
    if inserted != len(txns):
        raise errors.KeyTaken("another transaction took one of this batch's idempotency keys")

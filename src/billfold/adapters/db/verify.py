"""``billfold verify``: audit a database against the design's invariants 1, 2, 3 and 5.

Each check is one aggregate query, so the audit reads the ledger once per check, not once per row.
A violation is a readable line naming the invariant and the rows involved.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from billfold.adapters.db import tables as t
from billfold.domain.ledger import SYSTEM_PREFIX

MAX_REPORTED = 50


def verify(engine: Engine) -> list[str]:
    """Every violation found, as readable lines; an empty list means the database is sound."""
    problems: list[str] = []
    with engine.connect() as conn:
        _balanced(conn, problems)
        _balances_match(conn, problems)
        _never_overdrawn(conn, problems)
        _append_only(conn, problems)
    return problems


def _add(problems: list[str], message: str) -> None:
    if len(problems) < MAX_REPORTED:
        problems.append(message)
    elif len(problems) == MAX_REPORTED:
        problems.append("... more violations not shown")


def _balanced(conn: sa.Connection, problems: list[str]) -> None:
    ln = t.ledger_lines.c
    total = sa.func.sum(ln.amount)
    for txn, unit, amount in conn.execute(
        sa.select(ln.transaction_id, ln.unit, total)
        .group_by(ln.transaction_id, ln.unit)
        .having(total != 0)
        .limit(MAX_REPORTED)
    ):
        _add(problems, f"invariant 1: transaction {txn} does not balance: {unit} sums to {amount}")
    for unit, amount in conn.execute(
        sa.select(ln.unit, total).group_by(ln.unit).having(total != 0)
    ):
        _add(problems, f"invariant 1: all lines in {unit} sum to {amount}, not 0")
    b = t.balances.c
    stored = dict(conn.execute(sa.select(b.unit, sa.func.sum(b.available)).group_by(b.unit)).all())
    system = dict(
        conn.execute(
            sa.select(ln.unit, total)
            .where(ln.account_id.startswith(SYSTEM_PREFIX))
            .group_by(ln.unit)
        ).all()
    )
    for unit in sorted(set(stored) | set(system)):
        s = int(stored.get(unit) or 0) + int(system.get(unit) or 0)
        if s != 0:
            _add(
                problems,
                f"invariant 1: balances of all accounts in {unit}, system accounts included, "
                f"sum to {s}, not 0",
            )


def _balances_match(conn: sa.Connection, problems: list[str]) -> None:
    b, ln, g, h, a = (
        t.balances.c,
        t.ledger_lines.c,
        t.grants.c,
        t.holds.c,
        t.hold_allocations.c,
    )
    line_sums: dict[tuple[str, str], int] = defaultdict(int)
    for acct, unit, s in conn.execute(
        sa.select(ln.account_id, ln.unit, sa.func.sum(ln.amount))
        .where(sa.not_(ln.account_id.startswith(SYSTEM_PREFIX)))
        .group_by(ln.account_id, ln.unit)
    ):
        line_sums[(acct, unit)] = int(s)
    grant_sums: dict[tuple[str, str], tuple[int, int]] = {}
    for acct, unit, rem, held in conn.execute(
        sa.select(g.account_id, g.unit, sa.func.sum(g.remaining), sa.func.sum(g.held)).group_by(
            g.account_id, g.unit
        )
    ):
        grant_sums[(acct, unit)] = (int(rem), int(held))
    hold_sums: dict[tuple[str, str], int] = {}
    for acct, unit, amount in conn.execute(
        sa.select(h.account_id, h.unit, sa.func.sum(h.amount))
        .where(h.status == "active")
        .group_by(h.account_id, h.unit)
    ):
        hold_sums[(acct, unit)] = int(amount)
    seen: set[tuple[str, str]] = set()
    for acct, unit, available, held, debt in conn.execute(
        sa.select(b.account_id, b.unit, b.available, b.held, b.debt)
    ):
        pos = (acct, unit)
        seen.add(pos)
        lines = line_sums.get(pos, 0)
        remaining, grant_held = grant_sums.get(pos, (0, 0))
        holds = hold_sums.get(pos, 0)
        if available != lines:
            _add(
                problems,
                f"invariant 2: {acct}/{unit}: balance {available} but its ledger lines sum to "
                f"{lines}",
            )
        if available + debt != remaining - holds:
            _add(
                problems,
                f"invariant 2: {acct}/{unit}: balance {available} (debt {debt}) but live grants "
                f"hold {remaining} minus active holds {holds}",
            )
        if held != holds or grant_held != holds:
            _add(
                problems,
                f"invariant 2: {acct}/{unit}: {held} recorded as held, grants reserve "
                f"{grant_held}, active holds sum to {holds}",
            )
    for pos in sorted(set(line_sums) - seen):
        if line_sums[pos]:
            _add(problems, f"invariant 2: {pos[0]}/{pos[1]} has ledger lines but no balance")
    allocated = sa.func.coalesce(
        sa.select(sa.func.sum(a.amount))
        .select_from(t.hold_allocations.join(t.holds))
        .where(a.grant_id == g.id, h.status == "active")
        .scalar_subquery(),
        0,
    )
    for gid, held, alloc in conn.execute(
        sa.select(g.id, g.held, allocated).where(g.held != allocated).limit(MAX_REPORTED)
    ):
        _add(problems, f"invariant 2: grant {gid} reserves {held} but its holds allocate {alloc}")


def _never_overdrawn(conn: sa.Connection, problems: list[str]) -> None:
    b, g = t.balances.c, t.grants.c
    for acct, unit, available, debt in conn.execute(
        sa.select(b.account_id, b.unit, b.available, b.debt)
        .where(b.available + b.debt < 0)
        .limit(MAX_REPORTED)
    ):
        _add(
            problems,
            f"invariant 3: {acct}/{unit} is overdrawn: balance {available} with debt {debt}",
        )
    for gid, amount, remaining, held in conn.execute(
        sa.select(g.id, g.amount, g.remaining, g.held)
        .where(sa.or_(g.remaining < 0, g.remaining > g.amount, g.held > g.remaining))
        .limit(MAX_REPORTED)
    ):
        _add(
            problems,
            f"invariant 3: grant {gid}: remaining {remaining} of {amount}, held {held}",
        )


def _append_only(conn: sa.Connection, problems: list[str]) -> None:
    tx, ln = t.ledger_transactions.c, t.ledger_lines.c
    counted = (
        sa.select(ln.transaction_id, sa.func.count().label("n"))
        .group_by(ln.transaction_id)
        .subquery()
    )
    for txn, expected, actual in conn.execute(
        sa.select(tx.id, tx.line_count, sa.func.coalesce(counted.c.n, 0))
        .select_from(t.ledger_transactions.outerjoin(counted, counted.c.transaction_id == tx.id))
        .where(
            sa.or_(
                tx.line_count.is_(None),
                tx.result.is_(None),
                tx.line_count != sa.func.coalesce(counted.c.n, 0),
            )
        )
        .limit(MAX_REPORTED)
    ):
        _add(
            problems,
            f"invariant 5: transaction {txn} was written with {expected} lines and now has "
            f"{actual}",
        )
    orphans = conn.execute(
        sa.select(sa.func.count())
        .select_from(t.ledger_lines.outerjoin(t.ledger_transactions, tx.id == ln.transaction_id))
        .where(tx.id.is_(None))
    ).scalar_one()
    if orphans:
        _add(problems, f"invariant 5: {orphans} ledger lines belong to no transaction")
    if conn.dialect.name == "postgresql":
        names = set(
            conn.execute(sa.text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars()
        )
        wanted = {
            "ledger_lines_balanced",
            "ledger_lines_append_only",
            "ledger_transactions_append_only",
        }
    else:
        names = set(
            conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
        )
        wanted = {
            "ledger_lines_no_update",
            "ledger_lines_no_delete",
            "ledger_transactions_no_delete",
            "ledger_transactions_finish_once",
        }
    for missing in sorted(wanted - names):
        _add(problems, f"invariant 5: the append-only trigger {missing} is missing")

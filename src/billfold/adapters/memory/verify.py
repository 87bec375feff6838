"""The invariant audit of a memory database: ``adapters/db/verify.py``'s checks, line for line.

Invariants 1, 2, 3 and 5 of the design, with the same messages. What the SQL audit also checks
that has no meaning here: that the append-only triggers exist (the memory stores refuse a rewrite
in code, ``ledger_append_only``).
"""

from __future__ import annotations

from collections import defaultdict

from billfold.adapters.memory._tables import Tables
from billfold.domain.ledger import SYSTEM_PREFIX

MAX_REPORTED = 50


def verify(tables: Tables) -> list[str]:
    """Every violation found, as readable lines; an empty list means the books are sound."""
    problems: list[str] = []
    _balanced(tables, problems)
    _balances_match(tables, problems)
    _never_overdrawn(tables, problems)
    _append_only(tables, problems)
    return problems


def _add(problems: list[str], message: str) -> None:
    if len(problems) < MAX_REPORTED:
        problems.append(message)
    elif len(problems) == MAX_REPORTED:
        problems.append("... more violations not shown")


def _balanced(tables: Tables, problems: list[str]) -> None:
    per_transaction: dict[tuple[str, str], int] = defaultdict(int)
    per_unit: dict[str, int] = defaultdict(int)
    system: dict[str, int] = defaultdict(int)
    for ln in tables.lines:
        per_transaction[(ln.transaction_id, ln.unit)] += ln.amount
        per_unit[ln.unit] += ln.amount
        if ln.account_id.startswith(SYSTEM_PREFIX):
            system[ln.unit] += ln.amount
    unbalanced = [(pos, s) for pos, s in per_transaction.items() if s != 0][:MAX_REPORTED]
    for (txn, unit), amount in unbalanced:
        _add(problems, f"invariant 1: transaction {txn} does not balance: {unit} sums to {amount}")
    for unit, amount in sorted(per_unit.items()):
        if amount != 0:
            _add(problems, f"invariant 1: all lines in {unit} sum to {amount}, not 0")
    stored: dict[str, int] = defaultdict(int)
    for bal in tables.balances.values():
        stored[bal.unit] += bal.available
    for unit in sorted(set(stored) | set(system)):
        s = stored.get(unit, 0) + system.get(unit, 0)
        if s != 0:
            _add(
                problems,
                f"invariant 1: balances of all accounts in {unit}, system accounts included, "
                f"sum to {s}, not 0",
            )


def _balances_match(tables: Tables, problems: list[str]) -> None:
    line_sums: dict[tuple[str, str], int] = defaultdict(int)
    for ln in tables.lines:
        if not ln.account_id.startswith(SYSTEM_PREFIX):
            line_sums[(ln.account_id, ln.unit)] += ln.amount
    grant_sums: dict[tuple[str, str], tuple[int, int]] = {}
    for g in tables.grants.values():
        remaining, held = grant_sums.get((g.account_id, g.unit), (0, 0))
        grant_sums[(g.account_id, g.unit)] = (remaining + g.remaining, held + g.held)
    hold_sums: dict[tuple[str, str], int] = defaultdict(int)
    for h in tables.holds.values():
        if h.status == "active":
            hold_sums[(h.account_id, h.unit)] += h.amount
    seen: set[tuple[str, str]] = set()
    for pos, bal in tables.balances.items():
        acct, unit = pos
        seen.add(pos)
        lines = line_sums.get(pos, 0)
        remaining, grant_held = grant_sums.get(pos, (0, 0))
        holds = hold_sums.get(pos, 0)
        if bal.available != lines:
            _add(
                problems,
                f"invariant 2: {acct}/{unit}: balance {bal.available} but its ledger lines sum "
                f"to {lines}",
            )
        if bal.available + bal.debt != remaining - holds:
            _add(
                problems,
                f"invariant 2: {acct}/{unit}: balance {bal.available} (debt {bal.debt}) but live "
                f"grants hold {remaining} minus active holds {holds}",
            )
        if bal.held != holds or grant_held != holds:
            _add(
                problems,
                f"invariant 2: {acct}/{unit}: {bal.held} recorded as held, grants reserve "
                f"{grant_held}, active holds sum to {holds}",
            )
    for pos in sorted(set(line_sums) - seen):
        if line_sums[pos]:
            _add(problems, f"invariant 2: {pos[0]}/{pos[1]} has ledger lines but no balance")
    allocated: dict[str, int] = defaultdict(int)
    for hold_id, allocations in tables.allocations.items():
        if tables.holds[hold_id].status == "active":
            for a in allocations:
                allocated[a.grant_id] += a.amount
    reported = 0
    for g in tables.grants.values():
        if g.held != allocated.get(g.id, 0) and reported < MAX_REPORTED:
            reported += 1
            _add(
                problems,
                f"invariant 2: grant {g.id} reserves {g.held} but its holds allocate "
                f"{allocated.get(g.id, 0)}",
            )


def _never_overdrawn(tables: Tables, problems: list[str]) -> None:
    overdrawn = [b for b in tables.balances.values() if b.available + b.debt < 0]
    for b in overdrawn[:MAX_REPORTED]:
        _add(
            problems,
            f"invariant 3: {b.account_id}/{b.unit} is overdrawn: balance {b.available} with "
            f"debt {b.debt}",
        )
    broken = [
        g
        for g in tables.grants.values()
        if g.remaining < 0 or g.remaining > g.amount or g.held > g.remaining
    ]
    for g in broken[:MAX_REPORTED]:
        _add(
            problems,
            f"invariant 3: grant {g.id}: remaining {g.remaining} of {g.amount}, held {g.held}",
        )


def _append_only(tables: Tables, problems: list[str]) -> None:
    counted: dict[str, int] = defaultdict(int)
    for ln in tables.lines:
        counted[ln.transaction_id] += 1
    damaged = [
        x
        for x in tables.transactions.values()
        if x.line_count is None or x.result is None or x.line_count != counted.get(x.id, 0)
    ]
    for x in damaged[:MAX_REPORTED]:
        _add(
            problems,
            f"invariant 5: transaction {x.id} was written with {x.line_count} lines and now has "
            f"{counted.get(x.id, 0)}",
        )
    orphans = sum(n for txn, n in counted.items() if txn not in tables.transactions)
    if orphans:
        _add(problems, f"invariant 5: {orphans} ledger lines belong to no transaction")

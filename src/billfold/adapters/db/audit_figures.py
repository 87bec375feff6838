"""What the database says about a chaos audit's accounts (``billfold audit``): their orders, what
each order's lots were granted, what reversals took back from them and what is held, their
balances, and the inbox's counts. Read straight from the tables, independently of the reversal
engine's own bookkeeping: a clawback is a ledger line into ``sys:refunded`` drawn from a lot.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from billfold.adapters.db import tables as t
from billfold.domain.ledger import REFUNDED, system_account


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFigures:
    id: str
    kind: str
    stripe_id: str
    payment_intent_id: str | None
    account_id: str | None
    package: str | None
    plan: str | None
    amount: int
    currency: str | None
    status: str
    refunded_amount: int
    disputed_amount: int
    granted: dict[str, int] = field(default_factory=dict)
    """Per unit: what the order's lots were granted (their original amounts)."""
    clawed: dict[str, int] = field(default_factory=dict)
    """Per unit: what reversals took from the order's lots, less what they gave back."""
    held: dict[str, int] = field(default_factory=dict)
    """Per unit: what open disputes hold of the order's lots now."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BookFigures:
    orders: list[OrderFigures]
    stray_grants: dict[str, int]
    """Per unit: grants on the audit's accounts that no order of theirs made."""
    balances: dict[tuple[str, str], tuple[int, int, int]]
    """(account, unit) -> (available, held, debt)."""
    events: dict[str, int]
    """The whole inbox, by status."""


def read(engine: Engine, account_prefix: str) -> BookFigures:
    """The figures of every account whose id starts with ``account_prefix``."""
    like = account_prefix.replace("%", r"\%").replace("_", r"\_") + "%"
    o, g, ln, b, ev = t.orders.c, t.grants.c, t.ledger_lines.c, t.balances.c, t.events.c
    refunded = system_account(REFUNDED)
    with engine.connect() as conn:
        orders = conn.execute(
            sa.select(
                o.id,
                o.kind,
                o.stripe_id,
                o.payment_intent_id,
                o.account_id,
                o.package,
                o.plan,
                o.amount,
                o.currency,
                o.status,
                o.refunded_amount,
                o.disputed_amount,
            ).where(o.account_id.like(like, escape="\\"))
        ).all()
        granted: dict[str | None, dict[str, int]] = defaultdict(dict)
        held: dict[str | None, dict[str, int]] = defaultdict(dict)
        for origin, unit, amount, on_hold in conn.execute(
            sa.select(g.origin, g.unit, sa.func.sum(g.amount), sa.func.sum(g.held))
            .where(g.account_id.like(like, escape="\\"))
            .group_by(g.origin, g.unit)
        ):
            granted[origin][unit] = int(amount or 0)
            held[origin][unit] = int(on_hold or 0)
        clawed: dict[str | None, dict[str, int]] = defaultdict(dict)
        for origin, unit, amount in conn.execute(
            sa.select(g.origin, ln.unit, sa.func.sum(ln.amount))
            .select_from(t.ledger_lines.join(t.grants, ln.grant_id == g.id))
            .where(ln.account_id == refunded, g.account_id.like(like, escape="\\"))
            .group_by(g.origin, ln.unit)
        ):
            clawed[origin][unit] = int(amount or 0)
        balances = {
            (acct, unit): (int(available), int(on_hold), int(debt))
            for acct, unit, available, on_hold, debt in conn.execute(
                sa.select(b.account_id, b.unit, b.available, b.held, b.debt).where(
                    b.account_id.like(like, escape="\\")
                )
            )
        }
        events = {
            str(status): int(n)
            for status, n in conn.execute(sa.select(ev.status, sa.func.count()).group_by(ev.status))
        }
    ids = {r.id for r in orders}
    stray: dict[str, int] = defaultdict(int)
    for origin, per_unit in granted.items():
        if origin not in ids:
            for unit, amount in per_unit.items():
                stray[unit] += amount
    return BookFigures(
        orders=[
            OrderFigures(
                id=r.id,
                kind=r.kind,
                stripe_id=r.stripe_id,
                payment_intent_id=r.payment_intent_id,
                account_id=r.account_id,
                package=r.package,
                plan=r.plan,
                amount=int(r.amount or 0),
                currency=r.currency,
                status=r.status,
                refunded_amount=int(r.refunded_amount or 0),
                disputed_amount=int(r.disputed_amount or 0),
                granted=dict(granted.get(r.id, {})),
                clawed=dict(clawed.get(r.id, {})),
                held={u: n for u, n in held.get(r.id, {}).items() if n},
            )
            for r in orders
        ],
        stray_grants=dict(stray),
        balances=balances,
        events=events,
    )

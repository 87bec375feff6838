"""What time does to a balance: grants that expire, holds that lapse, and a hold's value coming back.

Expiry is never spendable before it is written: every operation first *settles* the balance under
its lock (lapsed holds release, expired grants' free remainders move to ``sys:expired``), and reads
count what the sweep has not written yet (``billfold.domain.ledger.pending_adjustment``). The
worker's sweep writes the rest in the background, one balance at a time. Each expiry is its own
ledger transaction with an internal key (``sys:expire:...``), so writing it twice is impossible.

Every change that moves a balance is written through :func:`put_balance`, which applies the
low-balance rule (``service.outbox.watch_balance``) to it in the same transaction: a spend, a hold,
a claw-back, a dispute's hold and each grant's expiry alike, so ``balance.low`` fires once on the
change that crosses the threshold, whichever it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from billfold.domain import errors, ids
from billfold.domain import ledger as rules
from billfold.domain.ledger import GrantState, Line
from billfold.domain.records import HoldRecord
from billfold.service import outbox
from billfold.service.ports import BalanceRow, LedgerStore

MAX_LAPSED_PER_BALANCE = 10_000


def with_(bal: BalanceRow, **changes: int) -> BalanceRow:
    data = {"available": bal.available, "held": bal.held, "debt": bal.debt} | changes
    return BalanceRow(
        account_id=bal.account_id,
        unit=bal.unit,
        low_balance=bal.low_balance,
        low_alert=bal.low_alert,
        **data,
    )


def put_balance(
    store: LedgerStore,
    before: BalanceRow,
    after: BalanceRow,
    now: int,
    *,
    low: outbox.Thresholds,
    granted: bool,
    transaction_id: str,
) -> BalanceRow:
    """Write the balance ``after`` (it was ``before``) and apply the low-balance rule to the change
    in the same transaction; returns ``after`` with its alert as it now is."""
    store.set_balance(after)
    return outbox.watch_balance(
        store, before, after, now, low=low, granted=granted, transaction_id=transaction_id
    )


def locked(store: LedgerStore, account_id: str, unit: str) -> BalanceRow:
    bal = store.lock_balance(account_id, unit)
    if bal is None:  # pragma: no cover - callers ensure the row first
        raise errors.InvariantViolation(f"missing balance row for {account_id}/{unit}")
    return bal


def settle(
    store: LedgerStore,
    bal: BalanceRow,
    now: int,
    *,
    low: outbox.Thresholds,
    live_grants: bool = True,
) -> tuple[BalanceRow, list[GrantState]]:
    """Under the balance lock: write lapsed holds and expired grants; return the grants with
    something remaining (or nothing, when the caller has no use for them: ``live_grants=False``
    reads only the expired grants)."""
    if bal.held:
        for hold in store.lapsed_holds(bal.account_id, now, MAX_LAPSED_PER_BALANCE):
            if hold.unit == bal.unit:
                bal = expire_hold(store, bal, hold, now, low=low)
    if not live_grants:
        expired = store.grant_states(bal.account_id, bal.unit, expired_at=now)
        if expired:
            bal = expire_grants(store, bal, expired, now, low=low)
        return bal, []
    grants = store.grant_states(bal.account_id, bal.unit)
    expired = [g for g in grants if not g.is_live(now) and g.free > 0]
    if expired:
        bal = expire_grants(store, bal, expired, now, low=low)
        grants = store.grant_states(bal.account_id, bal.unit)
    return bal, grants


def expire_grants(
    store: LedgerStore,
    bal: BalanceRow,
    expired: Sequence[GrantState],
    now: int,
    *,
    low: outbox.Thresholds,
    key_suffix: str = "",
) -> BalanceRow:
    """One expiry transaction per grant, keyed by grant and remaining amount; the expiry that
    takes the balance below its threshold writes ``balance.low`` with it."""
    for grant in expired:
        amount = grant.free
        key = f"{rules.INTERNAL_KEY_PREFIX}expire:{grant.id}:{grant.remaining}{key_suffix}"
        txn_id = ids.new_id("txn")
        if not store.claim_key(
            txn_id=txn_id,
            key=key,
            request_hash="expiry",
            kind="expire",
            account_id=bal.account_id,
            unit=bal.unit,
            amount=amount,
            reason="grant expired",
            created=now,
        ):  # pragma: no cover - the key is unique per grant state under the lock
            continue
        store.update_grants([(grant.id, grant.remaining - amount, grant.held)])
        lines = rules.transfer(
            source=bal.account_id,
            target=rules.system_account(rules.EXPIRED),
            unit=bal.unit,
            amount=amount,
            grant_id=grant.id,
        )
        bal = put_balance(
            store,
            bal,
            with_(bal, available=bal.available - amount),
            now,
            low=low,
            granted=False,
            transaction_id=txn_id,
        )
        entry = rules.JournalEntry(kind="expire", lines=lines)
        store.finish_transaction(
            txn_id, entry.lines, {"grant_id": grant.id, "amount": amount, "balance": bal.available}
        )
    return bal


def settle_hold(
    store: LedgerStore,
    bal: BalanceRow,
    hold: HoldRecord,
    captured: int,
    now: int,
    *,
    low: outbox.Thresholds,
) -> tuple[BalanceRow, list[Line]]:
    """Consume ``captured`` of the hold's allocations, return the rest, expire what has lapsed.
    (What is held is no longer available, so closing a hold never lowers the balance; only the
    expiry it may bring does.)"""
    allocations = [
        rules.Allocation(grant_id=g, amount=a) for g, a in store.hold_allocations(hold.id)
    ]
    plan = rules.plan_capture(allocations, captured)
    consumed = {a.grant_id: a.amount for a in plan.consumed}
    states = {g.id: g for g in store.grant_states(bal.account_id, bal.unit)}
    changes: list[tuple[str, int, int]] = []
    lines: list[Line] = []
    now_expired: list[GrantState] = []
    for alloc in allocations:
        grant = states[alloc.grant_id]
        take = consumed.get(alloc.grant_id, 0)
        remaining, held = grant.remaining - take, grant.held - alloc.amount
        changes.append((grant.id, remaining, held))
        if take:
            lines.extend(
                rules.transfer(
                    source=rules.system_account(rules.HELD),
                    target=rules.system_account(rules.SPENT),
                    unit=hold.unit,
                    amount=take,
                    grant_id=grant.id,
                    hold_id=hold.id,
                )
            )
        back = alloc.amount - take
        if back:
            lines.extend(
                rules.transfer(
                    source=rules.system_account(rules.HELD),
                    target=hold.account_id,
                    unit=hold.unit,
                    amount=back,
                    grant_id=grant.id,
                    hold_id=hold.id,
                )
            )
        if not grant.is_live(now) and remaining - held > 0:
            now_expired.append(
                GrantState(
                    id=grant.id,
                    unit=grant.unit,
                    remaining=remaining,
                    priority=grant.priority,
                    expires_at=grant.expires_at,
                    created_seq=grant.created_seq,
                    origin=grant.origin,
                    held=held,
                )
            )
    store.update_grants(changes)
    bal = with_(bal, available=bal.available + plan.returned, held=bal.held - hold.amount)
    store.set_balance(bal)
    if now_expired:
        # Value released onto a grant that has expired meanwhile is never spendable: expire it now.
        bal = expire_grants(store, bal, now_expired, now, low=low, key_suffix=f":{hold.id}")
    return bal, lines


def expire_hold(
    store: LedgerStore, bal: BalanceRow, hold: HoldRecord, now: int, *, low: outbox.Thresholds
) -> BalanceRow:
    """A hold whose TTL passed releases itself, in its own transaction."""
    txn_id = ids.new_id("txn")
    key = f"{rules.INTERNAL_KEY_PREFIX}hold-expire:{hold.id}"
    if not store.claim_key(
        txn_id=txn_id,
        key=key,
        request_hash="hold-expiry",
        kind="hold_expire",
        account_id=hold.account_id,
        unit=hold.unit,
        amount=hold.amount,
        reason="hold expired",
        created=now,
    ):  # pragma: no cover - closed holds are never lapsed
        return bal
    bal, lines = settle_hold(store, bal, hold, 0, now, low=low)
    store.close_hold(hold.id, status="expired", captured=0, transaction_id=txn_id)
    entry = rules.JournalEntry(kind="hold_expire", lines=tuple(lines))
    store.finish_transaction(txn_id, entry.lines, {"hold_id": hold.id, "balance": bal.available})
    return bal


def sweep_balance(
    store: LedgerStore, account_id: str, unit: str, now: int, *, low: outbox.Thresholds
) -> tuple[int, int, int]:
    """Write the expiry due on one balance: (grants expired, amount expired, holds expired)."""
    bal = store.lock_balance(account_id, unit)
    if bal is None:  # pragma: no cover - a grant always has its balance row
        return 0, 0, 0
    lapsed = [
        h for h in store.lapsed_holds(account_id, now, MAX_LAPSED_PER_BALANCE) if h.unit == unit
    ]
    expired = [g for g in store.grant_states(account_id, unit) if not g.is_live(now) and g.free > 0]
    before = bal.available + bal.held
    bal, _ = settle(store, bal, now, low=low, live_grants=False)
    return len(expired), before - (bal.available + bal.held), len(lapsed)


def balance_views(store: LedgerStore, account_id: str, now: int) -> dict[str, rules.BalanceView]:
    """What the account can spend now, per unit, counting expiry the sweep has not written."""
    rows = store.balances(account_id)
    pending = store.pending_expiry(account_id, now) if rows else {}
    views: dict[str, rules.BalanceView] = {}
    for row in rows:
        expired_free, lapsed = pending.get(row.unit, (0, 0))
        views[row.unit] = rules.BalanceView(
            unit=row.unit,
            available=row.available - expired_free + lapsed,
            held=row.held - lapsed,
            debt=row.debt,
        )
    return views

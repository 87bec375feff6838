"""Value movement: grant, spend, hold, capture, release and clawback, inside a caller's transaction.

Each function runs inside one unit of work that the caller opened and will commit, so other use
cases (fulfilment, reversals) put ledger writes in the same transaction as their own. Per account
and unit the balance row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; the single writer
on SQLite), so everything that changes that account's grants is serialised there, and no operation
locks two balance rows: concurrent work cannot deadlock.
"""

from __future__ import annotations

from billfold.domain import errors, ids
from billfold.domain import ledger as rules
from billfold.domain.ledger import GrantState, HoldStatus, Line
from billfold.domain.records import HoldRecord
from billfold.service import outbox
from billfold.service.ledger import idempotency
from billfold.service.ledger.commands import (
    MAX_HOLD_TTL,
    MAX_TIMESTAMP,
    SOURCES,
    Adjust,
    AdjustmentResult,
    Capture,
    Clawback,
    ClawbackResult,
    Grant,
    GrantResult,
    Hold,
    HoldResult,
    Release,
    Spend,
    SpendResult,
)
from billfold.service.ledger.expiry import locked, put_balance, settle, settle_hold, with_
from billfold.service.ports import BalanceRow, LedgerStore, NewGrant

Units = frozenset[str] | None
Thresholds = outbox.Thresholds


def check_unit(unit: object, units: Units) -> str:
    if not isinstance(unit, str) or not unit:
        raise errors.ValidationError("unit must be a non-empty string.", param="unit")
    if units is not None and unit not in units:
        raise errors.UnknownUnit(
            f"Unknown unit {unit!r}; the catalog declares: {', '.join(sorted(units))}.",
            param="unit",
        )
    return unit


def grant(
    store: LedgerStore, cmd: Grant, now: int, *, units: Units = None, low: Thresholds = None
) -> GrantResult:
    rules.check_key(cmd.key)
    rules.check_account_id(cmd.account_id)
    check_unit(cmd.unit, units)
    rules.check_amount(cmd.amount)
    rules.check_priority(cmd.priority)
    rules.check_text(cmd.reason, what="reason")
    rules.check_text(cmd.origin, what="origin")
    if cmd.kind not in rules.GRANT_KINDS:
        raise errors.ValidationError(
            f"kind must be one of {', '.join(sorted(rules.GRANT_KINDS))}.", param="kind"
        )
    if cmd.source not in SOURCES:
        raise errors.ValidationError("source must be a system source account.", param="source")
    if cmd.expires_at is not None:
        if isinstance(cmd.expires_at, bool) or not isinstance(cmd.expires_at, int):
            raise errors.ValidationError("expires_at must be a unix timestamp.")
        if cmd.expires_at > MAX_TIMESTAMP:
            raise errors.ValidationError(
                "expires_at is too far in the future (after the year 9999).",
                param="expires_at",
            )
    digest = idempotency.request_hash(cmd)
    txn_id = ids.new_id("txn")
    if not _claim(store, "grant", cmd, txn_id, digest, now):
        return idempotency.replay(store, cmd.key, digest, GrantResult)
    if cmd.expires_at is not None and cmd.expires_at <= now:
        # Checked after the key: a replay of a grant whose expiry has since passed still
        # answers with the first result.
        raise errors.ValidationError(
            "expires_at is in the past: a grant must be live when written.",
            param="expires_at",
        )
    store.ensure_account(cmd.account_id, now)
    bal = store.ensure_locked_balance(cmd.account_id, cmd.unit)
    bal, _ = settle(store, bal, now, low=low, live_grants=False)  # the result shows it after expiry
    repayment = rules.repay_debt(bal.debt, cmd.amount)
    grant_id = ids.new_id("gr")
    store.insert_grant(
        NewGrant(
            id=grant_id,
            account_id=cmd.account_id,
            unit=cmd.unit,
            amount=cmd.amount,
            remaining=repayment.remaining_grant,
            priority=cmd.priority,
            expires_at=cmd.expires_at,
            kind=cmd.kind,
            origin=cmd.origin,
            reason=cmd.reason,
            transaction_id=txn_id,
            created=now,
        )
    )
    lines = rules.transfer(
        source=rules.system_account(cmd.source),
        target=cmd.account_id,
        unit=cmd.unit,
        amount=cmd.amount,
        grant_id=grant_id,
    )
    new_bal = with_(bal, available=bal.available + cmd.amount, debt=bal.debt - repayment.repaid)
    new_bal = put_balance(store, bal, new_bal, now, low=low, granted=True, transaction_id=txn_id)
    outbox.emit(
        store,
        "credits.granted",
        account_id=cmd.account_id,
        data={
            "unit": cmd.unit,
            "amount": cmd.amount,
            "balance": new_bal.available,
            "grant_id": grant_id,
            "transaction_id": txn_id,
            "kind": cmd.kind,
            "origin": cmd.origin,
            "expires_at": cmd.expires_at,
            "reason": cmd.reason,
        },
        now=now,
    )
    result = GrantResult(
        transaction_id=txn_id,
        grant_id=grant_id,
        account_id=cmd.account_id,
        unit=cmd.unit,
        amount=cmd.amount,
        debt_repaid=repayment.repaid,
        expires_at=cmd.expires_at,
        balance=new_bal.available,
    )
    idempotency.finish(store, txn_id, "grant", lines, result)
    return result


def spend(
    store: LedgerStore, cmd: Spend, now: int, *, units: Units = None, low: Thresholds = None
) -> SpendResult:
    rules.check_key(cmd.key)
    rules.check_account_id(cmd.account_id)
    check_unit(cmd.unit, units)
    rules.check_amount(cmd.amount)
    rules.check_text(cmd.reason, what="reason")
    digest = idempotency.request_hash(cmd)
    txn_id = ids.new_id("txn")
    if not _claim(store, "spend", cmd, txn_id, digest, now):
        return idempotency.replay(store, cmd.key, digest, SpendResult)
    bal, plan, by_id = _reserve(store, cmd, now, low=low)
    store.update_grants([(gid, by_id[gid].remaining - take, by_id[gid].held) for gid, take in plan])
    lines: list[Line] = []
    for gid, take in plan:
        lines.extend(
            rules.transfer(
                source=cmd.account_id,
                target=rules.system_account(rules.SPENT),
                unit=cmd.unit,
                amount=take,
                grant_id=gid,
            )
        )
    new_bal = with_(bal, available=bal.available - cmd.amount)
    new_bal = put_balance(store, bal, new_bal, now, low=low, granted=False, transaction_id=txn_id)
    result = SpendResult(
        transaction_id=txn_id,
        account_id=cmd.account_id,
        unit=cmd.unit,
        amount=cmd.amount,
        balance=new_bal.available,
        draws=list(plan),
    )
    idempotency.finish(store, txn_id, "spend", lines, result)
    return result


def adjust(
    store: LedgerStore, cmd: Adjust, now: int, *, units: Units = None, low: Thresholds = None
) -> AdjustmentResult:
    """A negative adjustment: a spend into ``sys:adjustments`` with a required reason."""
    rules.check_key(cmd.key)
    rules.check_account_id(cmd.account_id)
    check_unit(cmd.unit, units)
    rules.check_amount(cmd.amount)
    reason = rules.check_text(cmd.reason, what="reason", required=True)
    assert reason is not None
    digest = idempotency.request_hash(cmd)
    txn_id = ids.new_id("txn")
    if not _claim(store, "adjustment", cmd, txn_id, digest, now):
        return idempotency.replay(store, cmd.key, digest, AdjustmentResult)
    bal, plan, by_id = _reserve(store, cmd, now, low=low)
    store.update_grants([(gid, by_id[gid].remaining - take, by_id[gid].held) for gid, take in plan])
    adjustments = rules.system_account(rules.ADJUSTMENTS)
    lines: list[Line] = []
    for gid, take in plan:
        lines.extend(
            rules.transfer(
                source=cmd.account_id, target=adjustments, unit=cmd.unit, amount=take, grant_id=gid
            )
        )
    new_bal = with_(bal, available=bal.available - cmd.amount)
    new_bal = put_balance(store, bal, new_bal, now, low=low, granted=False, transaction_id=txn_id)
    result = AdjustmentResult(
        transaction_id=txn_id,
        account_id=cmd.account_id,
        unit=cmd.unit,
        amount=cmd.amount,
        reason=reason,
        balance=new_bal.available,
        draws=list(plan),
        created=now,
    )
    idempotency.finish(store, txn_id, "adjustment", lines, result)
    return result


def hold(
    store: LedgerStore, cmd: Hold, now: int, *, units: Units = None, low: Thresholds = None
) -> HoldResult:
    rules.check_key(cmd.key)
    rules.check_account_id(cmd.account_id)
    check_unit(cmd.unit, units)
    rules.check_amount(cmd.amount)
    rules.check_text(cmd.reason, what="reason")
    if (
        isinstance(cmd.ttl_seconds, bool)
        or not isinstance(cmd.ttl_seconds, int)
        or not (1 <= cmd.ttl_seconds <= MAX_HOLD_TTL)
    ):
        raise errors.ValidationError(
            f"ttl_seconds must be an integer between 1 and {MAX_HOLD_TTL} (a year).",
            param="ttl_seconds",
        )
    digest = idempotency.request_hash(cmd)
    txn_id = ids.new_id("txn")
    if not _claim(store, "hold", cmd, txn_id, digest, now):
        return idempotency.replay(store, cmd.key, digest, HoldResult)
    bal, plan, by_id = _reserve(store, cmd, now, low=low)
    store.update_grants([(gid, by_id[gid].remaining, by_id[gid].held + take) for gid, take in plan])
    hold_id = ids.new_id("hold")
    record = HoldRecord(
        id=hold_id,
        account_id=cmd.account_id,
        unit=cmd.unit,
        amount=cmd.amount,
        captured=0,
        status="active",
        expires_at=now + cmd.ttl_seconds,
        reason=cmd.reason,
        created=now,
    )
    store.insert_hold(record, txn_id)
    store.insert_allocations(hold_id, plan)
    lines = rules.transfer(
        source=cmd.account_id,
        target=rules.system_account(rules.HELD),
        unit=cmd.unit,
        amount=cmd.amount,
        hold_id=hold_id,
    )
    new_bal = with_(bal, available=bal.available - cmd.amount, held=bal.held + cmd.amount)
    new_bal = put_balance(store, bal, new_bal, now, low=low, granted=False, transaction_id=txn_id)
    result = HoldResult(
        hold_id=hold_id,
        transaction_id=txn_id,
        account_id=cmd.account_id,
        unit=cmd.unit,
        amount=cmd.amount,
        captured=0,
        status="active",
        expires_at=record.expires_at,
        balance=new_bal.available,
        reason=cmd.reason,
        created=now,
    )
    idempotency.finish(store, txn_id, "hold", lines, result)
    return result


def capture(
    store: LedgerStore, cmd: Capture, now: int, *, units: Units = None, low: Thresholds = None
) -> HoldResult:
    if cmd.amount is not None:
        rules.check_amount(cmd.amount)
    return _close_hold(store, cmd, now, low=low)


def release(
    store: LedgerStore, cmd: Release, now: int, *, units: Units = None, low: Thresholds = None
) -> HoldResult:
    return _close_hold(store, cmd, now, low=low)


def _close_hold(
    store: LedgerStore, cmd: Capture | Release, now: int, *, low: Thresholds
) -> HoldResult:
    rules.check_key(cmd.key)
    is_release = isinstance(cmd, Release)
    capture_amount = None if isinstance(cmd, Release) else cmd.amount
    digest = idempotency.request_hash(cmd)
    kind = "release" if is_release else "capture"
    found = store.get_hold(cmd.hold_id)
    if found is None:
        raise errors.HoldNotFound(f"No hold {cmd.hold_id!r}.", hold_id=cmd.hold_id)
    txn_id = ids.new_id("txn")
    if not idempotency.claim(
        store,
        kind=kind,
        key=cmd.key,
        txn_id=txn_id,
        digest=digest,
        now=now,
        account_id=found.account_id,
        unit=found.unit,
        amount=capture_amount,
        reason=None,
    ):
        return idempotency.replay(store, cmd.key, digest, HoldResult)
    bal = locked(store, found.account_id, found.unit)
    bal, _ = settle(store, bal, now, low=low, live_grants=False)  # lapsed holds, expiry first
    held = store.get_hold(cmd.hold_id)  # re-read under the balance lock
    assert held is not None
    if held.status != "active" or held.expires_at <= now:
        # A lapsed hold is released by the sweep (and already counts as released in every
        # read); this request writes nothing.
        state = held.status_at(now)
        raise errors.HoldNotActive(
            f"Hold {cmd.hold_id} is {state}; it can no longer be {kind}d.",
            hold_id=cmd.hold_id,
            status=state,
        )
    amount = held.amount if (is_release or capture_amount is None) else capture_amount
    captured = 0 if is_release else amount
    bal, lines = settle_hold(store, bal, held, captured, now, low=low)
    status: HoldStatus = "released" if is_release else "captured"
    store.close_hold(cmd.hold_id, status=status, captured=captured, transaction_id=txn_id)
    result = HoldResult(
        hold_id=cmd.hold_id,
        transaction_id=txn_id,
        account_id=held.account_id,
        unit=held.unit,
        amount=held.amount,
        captured=captured,
        status=status,
        expires_at=held.expires_at,
        balance=bal.available,
        reason=held.reason,
        created=held.created,
    )
    idempotency.finish(store, txn_id, kind, lines, result)
    return result


def clawback(
    store: LedgerStore, cmd: Clawback, now: int, *, units: Units = None, low: Thresholds = None
) -> ClawbackResult:
    rules.check_key(cmd.key)
    rules.check_account_id(cmd.account_id)
    check_unit(cmd.unit, units)
    rules.check_amount(cmd.amount)
    rules.check_text(cmd.origin, what="origin", required=True)
    if cmd.policy not in rules.REFUND_POLICIES:
        raise errors.ValidationError("policy must be 'debt' or 'floor'.", param="policy")
    digest = idempotency.request_hash(cmd)
    txn_id = ids.new_id("txn")
    if not _claim(store, "clawback", cmd, txn_id, digest, now):
        return idempotency.replay(store, cmd.key, digest, ClawbackResult)
    store.ensure_account(cmd.account_id, now)
    bal = store.ensure_locked_balance(cmd.account_id, cmd.unit)
    bal, grants = settle(store, bal, now, low=low)
    plan = rules.plan_clawback(grants, cmd.amount, now, origin=cmd.origin, policy=cmd.policy)
    by_id = {g.id: g for g in grants}
    store.update_grants(
        [(gid, by_id[gid].remaining - take, by_id[gid].held) for gid, take in plan.takes]
    )
    lines: list[Line] = []
    refunded = rules.system_account(rules.REFUNDED)
    for gid, take in plan.takes:
        lines.extend(
            rules.transfer(
                source=cmd.account_id, target=refunded, unit=cmd.unit, amount=take, grant_id=gid
            )
        )
    if plan.debt:
        lines.extend(
            rules.transfer(source=cmd.account_id, target=refunded, unit=cmd.unit, amount=plan.debt)
        )
    new_bal = with_(
        bal, available=bal.available - plan.taken - plan.debt, debt=bal.debt + plan.debt
    )
    new_bal = put_balance(store, bal, new_bal, now, low=low, granted=False, transaction_id=txn_id)
    result = ClawbackResult(
        transaction_id=txn_id,
        account_id=cmd.account_id,
        unit=cmd.unit,
        requested=cmd.amount,
        taken=plan.taken,
        debt=plan.debt,
        unrecovered=plan.unrecovered,
        balance=new_bal.available,
    )
    idempotency.finish(store, txn_id, "clawback", lines, result)
    return result


# --- helpers -------------------------------------------------------------------------------------


def _claim(
    store: LedgerStore,
    kind: str,
    cmd: Grant | Spend | Adjust | Hold | Clawback,
    txn_id: str,
    digest: str,
    now: int,
) -> bool:
    return idempotency.claim(
        store,
        kind=kind,
        key=cmd.key,
        txn_id=txn_id,
        digest=digest,
        now=now,
        account_id=cmd.account_id,
        unit=cmd.unit,
        amount=cmd.amount,
        reason=cmd.reason,
    )


def _reserve(
    store: LedgerStore, cmd: Spend | Adjust | Hold, now: int, *, low: Thresholds
) -> tuple[BalanceRow, list[tuple[str, int]], dict[str, GrantState]]:
    """Lock the balance, settle it, and plan drawing ``cmd.amount`` from the live grants:
    (balance, [(grant id, amount)], grants by id). InsufficientBalance when it is not there."""
    bal = store.lock_balance(cmd.account_id, cmd.unit)
    if bal is None:
        raise errors.InsufficientBalance(unit=cmd.unit, requested=cmd.amount, available=0)
    bal, grants = settle(store, bal, now, low=low)
    if bal.available < cmd.amount:  # debt encumbers what the grants still hold
        raise errors.InsufficientBalance(
            unit=cmd.unit, requested=cmd.amount, available=max(bal.available, 0)
        )
    plan = rules.plan_draw(grants, cmd.amount, now, unit=cmd.unit)
    return bal, plan, {g.id: g for g in grants}

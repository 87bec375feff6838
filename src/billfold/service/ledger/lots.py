"""Value movement on one payment's lots: what reversals (refunds, disputes) do to the ledger.

Unlike a spend, which draws from whatever the account holds, these touch only the grants one
payment made (its lots), so a refund or a dispute never takes what another purchase granted. Each
runs inside the caller's transaction, under the account's balance lock, behind the same
idempotency envelope as every ledger write.
"""

from __future__ import annotations

from collections.abc import Sequence

from billfold.domain import errors, ids
from billfold.domain import ledger as rules
from billfold.domain import reversals as rv
from billfold.domain.ledger import GrantState, Line
from billfold.domain.records import HoldRecord
from billfold.service.ledger import idempotency
from billfold.service.ledger.commands import (
    MAX_HOLD_TTL,
    ClawLots,
    ClawLotsResult,
    HoldLots,
    HoldLotsResult,
    RestoreLots,
    RestoreLotsResult,
)
from billfold.service.ledger.expiry import put_balance, settle, with_
from billfold.service.ledger.movement import Thresholds, Units, check_unit
from billfold.service.ports import BalanceRow, LedgerStore, NewGrant


def claw_lots(
    store: LedgerStore, cmd: ClawLots, now: int, *, units: Units = None, low: Thresholds = None
) -> ClawLotsResult:
    _check(cmd.key, cmd.account_id, cmd.unit, cmd.wants, units)
    if cmd.policy not in rules.REFUND_POLICIES:
        raise errors.ValidationError("policy must be 'debt' or 'floor'.", param="policy")
    digest = idempotency.request_hash(cmd)
    txn_id = ids.new_id("txn")
    if not _claim(store, "clawback", cmd, txn_id, digest, now, _total(cmd.wants)):
        return idempotency.replay(store, cmd.key, digest, ClawLotsResult)
    bal, grants = _locked(store, cmd.account_id, cmd.unit, now, low=low)
    lots = _lots(grants, cmd.wants)
    takes = rv.take(lots, dict(cmd.wants))
    debt, unrecovered = rv.shortfall(takes, cmd.policy)
    by_id = {g.id: g for g in grants}
    refunded = rules.system_account(rules.REFUNDED)
    lines: list[Line] = []
    changes: list[tuple[str, int, int]] = []
    for t in takes:
        if t.taken:
            grant = by_id[t.grant_id]
            changes.append((grant.id, grant.remaining - t.taken, grant.held))
            lines.extend(
                rules.transfer(
                    source=cmd.account_id,
                    target=refunded,
                    unit=cmd.unit,
                    amount=t.taken,
                    grant_id=t.grant_id,
                )
            )
    if debt:
        lines.extend(
            rules.transfer(source=cmd.account_id, target=refunded, unit=cmd.unit, amount=debt)
        )
    store.update_grants(changes)
    taken = sum(t.taken for t in takes)
    new_bal = with_(bal, available=bal.available - taken - debt, debt=bal.debt + debt)
    new_bal = put_balance(store, bal, new_bal, now, low=low, granted=False, transaction_id=txn_id)
    result = ClawLotsResult(
        transaction_id=txn_id,
        account_id=cmd.account_id,
        unit=cmd.unit,
        takes=[(t.grant_id, t.wanted, t.taken) for t in takes],
        debt=debt,
        unrecovered=unrecovered,
        balance=new_bal.available,
    )
    idempotency.finish(store, txn_id, "clawback", lines, result)
    return result


def restore_lots(
    store: LedgerStore, cmd: RestoreLots, now: int, *, units: Units = None, low: Thresholds = None
) -> RestoreLotsResult:
    _check(cmd.key, cmd.account_id, cmd.unit, cmd.lots, units)
    if isinstance(cmd.debt, bool) or not isinstance(cmd.debt, int) or cmd.debt < 0:
        raise errors.ValidationError("debt must be a non-negative integer.", param="debt")
    digest = idempotency.request_hash(cmd)
    txn_id = ids.new_id("txn")
    total = _total(cmd.lots) + cmd.debt
    if not _claim(store, "restore", cmd, txn_id, digest, now, total or None):
        return idempotency.replay(store, cmd.key, digest, RestoreLotsResult)
    bal = store.ensure_locked_balance(cmd.account_id, cmd.unit)
    bal, _ = settle(store, bal, now, low=low, live_grants=False)
    lots = {lot.grant_id: lot for lot in store.lots(cmd.origin) if lot.unit == cmd.unit}
    refunded = rules.system_account(rules.REFUNDED)
    lines: list[Line] = []
    changes: list[tuple[str, int, int]] = []
    restored = 0
    for lot_id, amount in cmd.lots:
        lot = lots.get(lot_id)
        if lot is None or amount <= 0:
            continue
        back = min(amount, lot.amount - lot.remaining)  # a lot never holds more than it granted
        if back <= 0:
            continue
        changes.append((lot_id, lot.remaining + back, lot.held))
        lines.extend(
            rules.transfer(
                source=refunded,
                target=cmd.account_id,
                unit=cmd.unit,
                amount=back,
                grant_id=lot_id,
            )
        )
        restored += back
    store.update_grants(changes)
    cleared = min(cmd.debt, bal.debt)
    if cleared:
        lines.extend(
            rules.transfer(source=refunded, target=cmd.account_id, unit=cmd.unit, amount=cleared)
        )
    excess = cmd.debt - cleared
    grant_id: str | None = None
    if excess:
        # Later grants repaid this debt meanwhile: what they paid comes back as a grant of its own.
        grant_id = ids.new_id("gr")
        store.insert_grant(
            NewGrant(
                id=grant_id,
                account_id=cmd.account_id,
                unit=cmd.unit,
                amount=excess,
                remaining=excess,
                priority=0,
                expires_at=None,
                kind="manual",
                origin=None,
                reason=cmd.reason or "a reversal was undone",
                transaction_id=txn_id,
                created=now,
            )
        )
        lines.extend(
            rules.transfer(
                source=refunded,
                target=cmd.account_id,
                unit=cmd.unit,
                amount=excess,
                grant_id=grant_id,
            )
        )
    new_bal = with_(
        bal, available=bal.available + restored + cleared + excess, debt=bal.debt - cleared
    )
    new_bal = put_balance(store, bal, new_bal, now, low=low, granted=True, transaction_id=txn_id)
    result = RestoreLotsResult(
        transaction_id=txn_id,
        account_id=cmd.account_id,
        unit=cmd.unit,
        restored=restored,
        debt_cleared=cleared,
        granted=excess,
        grant_id=grant_id,
        balance=new_bal.available,
    )
    idempotency.finish(store, txn_id, "restore", lines, result)
    return result


def hold_lots(
    store: LedgerStore, cmd: HoldLots, now: int, *, units: Units = None, low: Thresholds = None
) -> HoldLotsResult:
    _check(cmd.key, cmd.account_id, cmd.unit, cmd.wants, units)
    if (
        isinstance(cmd.ttl_seconds, bool)
        or not isinstance(cmd.ttl_seconds, int)
        or not (1 <= cmd.ttl_seconds <= MAX_HOLD_TTL)
    ):
        raise errors.ValidationError("ttl_seconds is out of range.", param="ttl_seconds")
    digest = idempotency.request_hash(cmd)
    txn_id = ids.new_id("txn")
    if not _claim(store, "hold", cmd, txn_id, digest, now, _total(cmd.wants)):
        return idempotency.replay(store, cmd.key, digest, HoldLotsResult)
    bal, grants = _locked(store, cmd.account_id, cmd.unit, now, low=low)
    takes = [t for t in rv.take(_lots(grants, cmd.wants), dict(cmd.wants)) if t.taken]
    amount = sum(t.taken for t in takes)
    hold_id: str | None = None
    lines: list[Line] = []
    if amount:
        by_id = {g.id: g for g in grants}
        store.update_grants(
            [
                (t.grant_id, by_id[t.grant_id].remaining, by_id[t.grant_id].held + t.taken)
                for t in takes
            ]
        )
        hold_id = ids.new_id("hold")
        store.insert_hold(
            HoldRecord(
                id=hold_id,
                account_id=cmd.account_id,
                unit=cmd.unit,
                amount=amount,
                captured=0,
                status="active",
                expires_at=now + cmd.ttl_seconds,
                reason=cmd.reason,
                created=now,
            ),
            txn_id,
        )
        store.insert_allocations(hold_id, [(t.grant_id, t.taken) for t in takes])
        lines = list(
            rules.transfer(
                source=cmd.account_id,
                target=rules.system_account(rules.HELD),
                unit=cmd.unit,
                amount=amount,
                hold_id=hold_id,
            )
        )
        bal = put_balance(
            store,
            bal,
            with_(bal, available=bal.available - amount, held=bal.held + amount),
            now,
            low=low,
            granted=False,
            transaction_id=txn_id,
        )
    result = HoldLotsResult(
        transaction_id=txn_id,
        account_id=cmd.account_id,
        unit=cmd.unit,
        hold_id=hold_id,
        amount=amount,
        allocations=[(t.grant_id, t.taken) for t in takes],
        balance=bal.available,
    )
    idempotency.finish(store, txn_id, "hold", lines, result)
    return result


# --- helpers -------------------------------------------------------------------------------------


def _check(
    key: str, account_id: str, unit: str, lots: Sequence[tuple[str, int]], units: Units
) -> None:
    rules.check_key(key)
    rules.check_account_id(account_id)
    check_unit(unit, units)
    for grant_id, amount in lots:
        if not isinstance(grant_id, str) or isinstance(amount, bool) or not isinstance(amount, int):
            raise errors.ValidationError("lots are (grant id, amount) pairs.", param="lots")
        if amount < 0 or amount > rules.MAX_AMOUNT:
            raise errors.ValidationError("a lot's amount is out of range.", param="lots")


def _total(lots: Sequence[tuple[str, int]]) -> int:
    return sum(amount for _, amount in lots)


def _claim(
    store: LedgerStore,
    kind: str,
    cmd: ClawLots | RestoreLots | HoldLots,
    txn_id: str,
    digest: str,
    now: int,
    amount: int | None,
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
        amount=amount or None,
        reason=cmd.reason,
    )


def _locked(
    store: LedgerStore, account_id: str, unit: str, now: int, *, low: Thresholds
) -> tuple[BalanceRow, list[GrantState]]:
    store.ensure_account(account_id, now)
    bal = store.ensure_locked_balance(account_id, unit)
    return settle(store, bal, now, low=low)


def _lots(grants: Sequence[GrantState], wants: Sequence[tuple[str, int]]) -> list[rv.Lot]:
    """The wanted lots as they stand (only what they hold free matters here: an expired or spent
    lot has nothing left to give)."""
    wanted = {grant_id for grant_id, _ in wants}
    return [
        rv.Lot(grant_id=g.id, unit=g.unit, amount=g.remaining, remaining=g.remaining, held=g.held)
        for g in grants
        if g.id in wanted
    ]

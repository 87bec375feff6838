"""Ledger operations: grant, spend, hold, capture, release, clawback, expiry.

Each operation runs in one unit of work and takes an idempotency key. The insert of the key is the
gate: the first request with a key writes; a later one with the same key and the same request gets
the first result back and writes nothing; one with a different request gets IdempotencyConflict.

Per account and unit, the balance row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; the
single writer on SQLite), so everything that changes that account's grants is serialised there, and
no two operations ever lock two balance rows: concurrent work cannot deadlock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from billfold.domain import errors, ids
from billfold.domain import ledger as rules
from billfold.domain.ledger import GrantState, Line
from billfold.service.ports import BalanceRow, HoldRow, LedgerStore, NewGrant

R = TypeVar("R")

SOURCES = frozenset({rules.STRIPE, rules.ADJUSTMENTS, rules.PROMOTIONS})
MAX_HOLD_TTL = 366 * 86_400
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z
GRANT_KINDS = frozenset({"purchase", "bonus", "allowance", "manual", "promotion", "topup"})


# --- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    key: str
    account_id: str
    unit: str
    amount: int
    priority: int = 0
    expires_at: int | None = None
    kind: str = "manual"
    origin: str | None = None
    reason: str | None = None
    source: str = rules.ADJUSTMENTS


@dataclass(frozen=True, slots=True, kw_only=True)
class Spend:
    key: str
    account_id: str
    unit: str
    amount: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    key: str
    account_id: str
    unit: str
    amount: int
    ttl_seconds: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Capture:
    key: str
    hold_id: str
    amount: int | None = None  # None: the whole hold


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    key: str
    hold_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Clawback:
    key: str
    account_id: str
    unit: str
    amount: int
    origin: str
    policy: rules.RefundPolicy = "floor"
    reason: str | None = None


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantResult:
    transaction_id: str
    grant_id: str
    account_id: str
    unit: str
    amount: int
    debt_repaid: int
    expires_at: int | None
    balance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendResult:
    transaction_id: str
    account_id: str
    unit: str
    amount: int
    balance: int
    draws: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldResult:
    hold_id: str
    transaction_id: str
    account_id: str
    unit: str
    amount: int
    captured: int
    status: str
    expires_at: int
    balance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClawbackResult:
    transaction_id: str | None
    account_id: str
    unit: str
    requested: int
    taken: int
    debt: int
    unrecovered: int
    balance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepResult:
    grants_expired: int
    amount_expired: int
    holds_expired: int


def request_hash(command: object) -> str:
    data = asdict(command)  # type: ignore[call-overload]
    data.pop("key", None)
    data["__command__"] = type(command).__name__
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(store: LedgerStore, key: str, digest: str, result_type: type[R]) -> R:
    stored = store.transaction_by_key(key)
    if (
        stored is None or stored.result is None
    ):  # pragma: no cover - the key row commits with its result
        raise errors.Conflict("A request with this idempotency key is still in progress.")
    if stored.request_hash != digest:
        raise errors.IdempotencyConflict(
            "This idempotency key was already used with a different request.", key=key
        )
    data = dict(stored.result)
    if result_type is SpendResult:
        data["draws"] = [tuple(d) for d in data.get("draws", [])]
    return result_type(**data)


def _validate_unit(unit: object, units: frozenset[str] | None) -> str:
    if not isinstance(unit, str) or not unit:
        raise errors.ValidationError("unit must be a non-empty string.", param="unit")
    if units is not None and unit not in units:
        raise errors.UnknownUnit(
            f"Unknown unit {unit!r}; the catalog declares: {', '.join(sorted(units))}.",
            param="unit",
        )
    return unit


class Ledger:
    """The ledger's operations over a unit-of-work factory and a clock."""

    def __init__(
        self,
        uow_factory: Any,
        clock: Any,
        *,
        units: frozenset[str] | None = None,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.units = units

    # --- writes --------------------------------------------------------------------------------

    def grant(self, cmd: Grant) -> GrantResult:
        now = self._clock()
        with self._uow() as uow:
            result = self.grant_in(uow.ledger, cmd, now)
            uow.commit()
            return result

    def grant_in(self, store: LedgerStore, cmd: Grant, now: int) -> GrantResult:
        """Grant inside the caller's unit of work (which commits)."""
        rules.check_key(cmd.key)
        rules.check_account_id(cmd.account_id)
        _validate_unit(cmd.unit, self.units)
        rules.check_amount(cmd.amount)
        rules.check_priority(cmd.priority)
        rules.check_text(cmd.reason, what="reason")
        rules.check_text(cmd.origin, what="origin")
        if cmd.kind not in GRANT_KINDS:
            raise errors.ValidationError(
                f"kind must be one of {', '.join(sorted(GRANT_KINDS))}.", param="kind"
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
        digest = request_hash(cmd)
        txn_id = ids.new_id("txn")
        if not _claim(store, "grant", cmd, txn_id, digest, now):
            return _replay(store, cmd.key, digest, GrantResult)
        if cmd.expires_at is not None and cmd.expires_at <= now:
            # Checked after the key: a replay of a grant whose expiry has since passed still
            # answers with the first result.
            raise errors.ValidationError(
                "expires_at is in the past: a grant must be live when written.",
                param="expires_at",
            )
        store.ensure_account(cmd.account_id, now)
        bal = store.ensure_locked_balance(cmd.account_id, cmd.unit)
        bal, _ = _settle(
            store, bal, now, live_grants=False
        )  # so the result shows the balance after expiry
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
        new_bal = BalanceRow(
            account_id=bal.account_id,
            unit=bal.unit,
            available=bal.available + cmd.amount,
            held=bal.held,
            debt=bal.debt - repayment.repaid,
        )
        store.set_balance(new_bal)
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
        _finish(store, txn_id, "grant", lines, result)
        return result

    def spend(self, cmd: Spend) -> SpendResult:
        now = self._clock()
        with self._uow() as uow:
            result = self.spend_in(uow.ledger, cmd, now)
            uow.commit()
            return result

    def spend_in(self, store: LedgerStore, cmd: Spend, now: int) -> SpendResult:
        """Spend inside the caller's unit of work (which commits)."""
        rules.check_key(cmd.key)
        rules.check_account_id(cmd.account_id)
        _validate_unit(cmd.unit, self.units)
        rules.check_amount(cmd.amount)
        rules.check_text(cmd.reason, what="reason")
        digest = request_hash(cmd)
        txn_id = ids.new_id("txn")
        if not _claim(store, "spend", cmd, txn_id, digest, now):
            return _replay(store, cmd.key, digest, SpendResult)
        bal, plan, by_id = _reserve(store, cmd, now)
        store.update_grants(
            [(gid, by_id[gid].remaining - take, by_id[gid].held) for gid, take in plan]
        )
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
        new_bal = _with(bal, available=bal.available - cmd.amount)
        store.set_balance(new_bal)
        result = SpendResult(
            transaction_id=txn_id,
            account_id=cmd.account_id,
            unit=cmd.unit,
            amount=cmd.amount,
            balance=new_bal.available,
            draws=list(plan),
        )
        _finish(store, txn_id, "spend", lines, result)
        return result

    def hold(self, cmd: Hold) -> HoldResult:
        now = self._clock()
        with self._uow() as uow:
            result = self.hold_in(uow.ledger, cmd, now)
            uow.commit()
            return result

    def hold_in(self, store: LedgerStore, cmd: Hold, now: int) -> HoldResult:
        """Hold inside the caller's unit of work (which commits)."""
        rules.check_key(cmd.key)
        rules.check_account_id(cmd.account_id)
        _validate_unit(cmd.unit, self.units)
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
        digest = request_hash(cmd)
        txn_id = ids.new_id("txn")
        if not _claim(store, "hold", cmd, txn_id, digest, now):
            return _replay(store, cmd.key, digest, HoldResult)
        bal, plan, by_id = _reserve(store, cmd, now)
        store.update_grants(
            [(gid, by_id[gid].remaining, by_id[gid].held + take) for gid, take in plan]
        )
        hold_id = ids.new_id("hold")
        hold = HoldRow(
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
        store.insert_hold(hold, txn_id)
        store.insert_allocations(hold_id, plan)
        lines = rules.transfer(
            source=cmd.account_id,
            target=rules.system_account(rules.HELD),
            unit=cmd.unit,
            amount=cmd.amount,
            hold_id=hold_id,
        )
        new_bal = _with(bal, available=bal.available - cmd.amount, held=bal.held + cmd.amount)
        store.set_balance(new_bal)
        result = HoldResult(
            hold_id=hold_id,
            transaction_id=txn_id,
            account_id=cmd.account_id,
            unit=cmd.unit,
            amount=cmd.amount,
            captured=0,
            status="active",
            expires_at=hold.expires_at,
            balance=new_bal.available,
        )
        _finish(store, txn_id, "hold", lines, result)
        return result

    def capture(self, cmd: Capture) -> HoldResult:
        now = self._clock()
        with self._uow() as uow:
            result = self.capture_in(uow.ledger, cmd, now)
            uow.commit()
            return result

    def release(self, cmd: Release) -> HoldResult:
        now = self._clock()
        with self._uow() as uow:
            result = self.release_in(uow.ledger, cmd, now)
            uow.commit()
            return result

    def capture_in(self, store: LedgerStore, cmd: Capture, now: int) -> HoldResult:
        if cmd.amount is not None:
            rules.check_amount(cmd.amount)
        return _close_hold(store, cmd.key, cmd.hold_id, cmd, now, capture=cmd.amount, release=False)

    def release_in(self, store: LedgerStore, cmd: Release, now: int) -> HoldResult:
        return _close_hold(store, cmd.key, cmd.hold_id, cmd, now, capture=None, release=True)

    def balance_in(self, store: LedgerStore, account_id: str, unit: str, now: int) -> int:
        """What ``account_id`` can spend of ``unit`` now, read inside the caller's transaction."""
        for row in store.balances(account_id):
            if row.unit == unit:
                expired_free, lapsed = store.pending_expiry(account_id, now).get(unit, (0, 0))
                return row.available - expired_free + lapsed
        return 0

    def clawback(self, cmd: Clawback) -> ClawbackResult:
        now = self._clock()
        with self._uow() as uow:
            result = self.clawback_in(uow.ledger, cmd, now)
            uow.commit()
            return result

    def clawback_in(self, store: LedgerStore, cmd: Clawback, now: int) -> ClawbackResult:
        """Clawback inside the caller's unit of work (which commits)."""
        rules.check_key(cmd.key)
        rules.check_account_id(cmd.account_id)
        _validate_unit(cmd.unit, self.units)
        rules.check_amount(cmd.amount)
        rules.check_text(cmd.origin, what="origin", required=True)
        if cmd.policy not in ("debt", "floor"):
            raise errors.ValidationError("policy must be 'debt' or 'floor'.", param="policy")
        digest = request_hash(cmd)
        txn_id = ids.new_id("txn")
        if not _claim(store, "clawback", cmd, txn_id, digest, now):
            return _replay(store, cmd.key, digest, ClawbackResult)
        store.ensure_account(cmd.account_id, now)
        bal = store.ensure_locked_balance(cmd.account_id, cmd.unit)
        bal, grants = _settle(store, bal, now)
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
                    source=cmd.account_id,
                    target=refunded,
                    unit=cmd.unit,
                    amount=take,
                    grant_id=gid,
                )
            )
        if plan.debt:
            lines.extend(
                rules.transfer(
                    source=cmd.account_id, target=refunded, unit=cmd.unit, amount=plan.debt
                )
            )
        new_bal = _with(
            bal, available=bal.available - plan.taken - plan.debt, debt=bal.debt + plan.debt
        )
        store.set_balance(new_bal)
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
        _finish(store, txn_id, "clawback", lines, result)
        return result

    def sweep(self, *, limit: int = 500) -> SweepResult:
        """Write the expiry of every grant and hold whose time has come (a batch at most)."""
        now = self._clock()
        grants_expired = amount = holds_expired = 0
        with self._uow() as uow:
            positions = uow.ledger.expired_grant_positions(now, limit)
            lapsed = uow.ledger.lapsed_holds(None, now, limit)
        todo = sorted(set(positions) | {(h.account_id, h.unit) for h in lapsed})
        for account_id, unit in todo:
            with self._uow() as uow:
                store = uow.ledger
                bal = store.lock_balance(account_id, unit)
                if bal is None:  # pragma: no cover - a grant always has its balance row
                    continue
                lapsed_here = [
                    h for h in store.lapsed_holds(account_id, now, 10_000) if h.unit == unit
                ]
                expired_here = [
                    g
                    for g in store.grant_states(account_id, unit)
                    if not g.is_live(now) and g.free > 0
                ]
                before = bal.available + bal.held
                bal, _ = _settle(store, bal, now, live_grants=False)
                holds_expired += len(lapsed_here)
                grants_expired += len(expired_here)
                amount += before - (bal.available + bal.held)
                uow.commit()
        return SweepResult(
            grants_expired=grants_expired, amount_expired=amount, holds_expired=holds_expired
        )

    # --- reads ---------------------------------------------------------------------------------

    def balances(self, account_id: str) -> dict[str, rules.BalanceView]:
        """What the account can spend now, per unit, counting expiry the sweep has not written."""
        now = self._clock()
        with self._uow() as uow:
            store = uow.ledger
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


def _close_hold(
    store: LedgerStore,
    key: str,
    hold_id: str,
    cmd: object,
    now: int,
    *,
    capture: int | None,
    release: bool,
) -> HoldResult:
    rules.check_key(key)
    digest = request_hash(cmd)
    kind = "release" if release else "capture"
    found = store.get_hold(hold_id)
    if found is None:
        raise errors.HoldNotFound(f"No hold {hold_id!r}.", hold_id=hold_id)
    txn_id = ids.new_id("txn")
    if not store.claim_key(
        txn_id=txn_id,
        key=key,
        request_hash=digest,
        kind=kind,
        account_id=found.account_id,
        unit=found.unit,
        amount=capture,
        reason=None,
        created=now,
    ):
        return _replay(store, key, digest, HoldResult)
    bal = _locked(store, found.account_id, found.unit)
    bal, _ = _settle(store, bal, now, live_grants=False)  # lapsed holds and expired grants first
    hold = store.get_hold(hold_id)  # re-read under the balance lock
    assert hold is not None
    if hold.status != "active" or hold.expires_at <= now:
        # A lapsed hold is released by the sweep (and already counts as released in every
        # read); this request writes nothing.
        state = "expired" if hold.status == "active" else hold.status
        raise errors.HoldNotActive(
            f"Hold {hold_id} is {state}; it can no longer be {kind}d.",
            hold_id=hold_id,
            status=state,
        )
    amount = hold.amount if (release or capture is None) else capture
    captured = 0 if release else amount
    bal, lines = _settle_hold(store, bal, hold, captured, now)
    store.close_hold(
        hold_id,
        status="released" if release else "captured",
        captured=captured,
        transaction_id=txn_id,
    )
    result = HoldResult(
        hold_id=hold_id,
        transaction_id=txn_id,
        account_id=hold.account_id,
        unit=hold.unit,
        amount=hold.amount,
        captured=captured,
        status="released" if release else "captured",
        expires_at=hold.expires_at,
        balance=bal.available,
    )
    _finish(store, txn_id, kind, lines, result)
    return result


# --- helpers (inside a unit of work) -------------------------------------------------------------


def _with(bal: BalanceRow, **changes: int) -> BalanceRow:
    data = {"available": bal.available, "held": bal.held, "debt": bal.debt} | changes
    return BalanceRow(account_id=bal.account_id, unit=bal.unit, **data)


def _locked(store: LedgerStore, account_id: str, unit: str) -> BalanceRow:
    bal = store.lock_balance(account_id, unit)
    if bal is None:  # pragma: no cover - callers ensure the row first
        raise errors.InvariantViolation(f"missing balance row for {account_id}/{unit}")
    return bal


def _claim(
    store: LedgerStore,
    kind: str,
    cmd: Grant | Spend | Hold | Clawback,
    txn_id: str,
    digest: str,
    now: int,
) -> bool:
    """Claim the command's idempotency key for a new transaction; False when it was used."""
    return store.claim_key(
        txn_id=txn_id,
        key=cmd.key,
        request_hash=digest,
        kind=kind,
        account_id=cmd.account_id,
        unit=cmd.unit,
        amount=cmd.amount,
        reason=cmd.reason,
        created=now,
    )


def _reserve(
    store: LedgerStore, cmd: Spend | Hold, now: int
) -> tuple[BalanceRow, list[tuple[str, int]], dict[str, GrantState]]:
    """Lock the balance, settle it, and plan drawing ``cmd.amount`` from the live grants:
    (balance, [(grant id, amount)], grants by id). InsufficientBalance when it is not there."""
    bal = store.lock_balance(cmd.account_id, cmd.unit)
    if bal is None:
        raise errors.InsufficientBalance(unit=cmd.unit, requested=cmd.amount, available=0)
    bal, grants = _settle(store, bal, now)
    if bal.available < cmd.amount:  # debt encumbers what the grants still hold
        raise errors.InsufficientBalance(
            unit=cmd.unit, requested=cmd.amount, available=max(bal.available, 0)
        )
    plan = rules.plan_draw(grants, cmd.amount, now, unit=cmd.unit)
    return bal, plan, {g.id: g for g in grants}


def _finish(
    store: LedgerStore, txn_id: str, kind: str, lines: Sequence[Line], result: object
) -> None:
    # A clawback that finds nothing to take records its result and moves nothing.
    checked = rules.JournalEntry(kind=kind, lines=tuple(lines)).lines if lines else ()
    store.finish_transaction(txn_id, checked, asdict(result))  # type: ignore[call-overload]


def _settle(
    store: LedgerStore, bal: BalanceRow, now: int, *, live_grants: bool = True
) -> tuple[BalanceRow, list[GrantState]]:
    """Under the balance lock: write lapsed holds and expired grants; return the grants with
    something remaining (or nothing, when the caller has no use for them: ``live_grants=False``
    reads only the expired grants)."""
    if bal.held:
        for hold in store.lapsed_holds(bal.account_id, now, 10_000):
            if hold.unit == bal.unit:
                bal = _expire_hold(store, bal, hold, now)
    if not live_grants:
        expired = store.grant_states(bal.account_id, bal.unit, expired_at=now)
        if expired:
            bal = _expire_grants(store, bal, expired, now)
        return bal, []
    grants = store.grant_states(bal.account_id, bal.unit)
    expired = [g for g in grants if not g.is_live(now) and g.free > 0]
    if expired:
        bal = _expire_grants(store, bal, expired, now)
        grants = store.grant_states(bal.account_id, bal.unit)
    return bal, grants


def _expire_grants(
    store: LedgerStore,
    bal: BalanceRow,
    expired: Sequence[GrantState],
    now: int,
    *,
    key_suffix: str = "",
) -> BalanceRow:
    """One expiry transaction per grant, keyed by grant and remaining amount."""
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
        bal = _with(bal, available=bal.available - amount)
        entry = rules.JournalEntry(kind="expire", lines=lines)
        store.finish_transaction(
            txn_id, entry.lines, {"grant_id": grant.id, "amount": amount, "balance": bal.available}
        )
    store.set_balance(bal)
    return bal


def _settle_hold(
    store: LedgerStore, bal: BalanceRow, hold: HoldRow, captured: int, now: int
) -> tuple[BalanceRow, list[Line]]:
    """Consume ``captured`` of the hold's allocations, return the rest, expire what has lapsed."""
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
    bal = _with(bal, available=bal.available + plan.returned, held=bal.held - hold.amount)
    store.set_balance(bal)
    if now_expired:
        # Value released onto a grant that has expired meanwhile is never spendable: expire it now.
        bal = _expire_grants(store, bal, now_expired, now, key_suffix=f":{hold.id}")
    return bal, lines


def _expire_hold(store: LedgerStore, bal: BalanceRow, hold: HoldRow, now: int) -> BalanceRow:
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
    bal, lines = _settle_hold(store, bal, hold, 0, now)
    store.close_hold(hold.id, status="expired", captured=0, transaction_id=txn_id)
    entry = rules.JournalEntry(kind="hold_expire", lines=tuple(lines))
    store.finish_transaction(txn_id, entry.lines, {"hold_id": hold.id, "balance": bal.available})
    return bal


def result_dict(result: object) -> Mapping[str, Any]:
    return asdict(result)  # type: ignore[call-overload,no-any-return]

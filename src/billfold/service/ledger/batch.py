"""A batch of spends, holds, captures and releases decided in one transaction.

The batch reads what it needs at once (``LedgerStore.load_batch``: the balance rows locked in
(account, unit) order, their live grants, the holds it closes or that have lapsed, the keys it
uses), then runs each request, in order, through the very functions a single request runs
(:mod:`.movement` and :mod:`.expiry`, which hold every rule) against :class:`Overlay`, an
in-memory view of that snapshot that records what each request would write. A request that fails
(402, a reused key, a hold no longer active) has its own writes undone and gets its error; the
others are not touched. At the end the overlay's final state is written with a fixed number of
set-based statements (``LedgerStore.flush_batch``) and committed once.

Nothing here decides a rule: the overlay only remembers. Writes of one request that a later one
changes (the same grant drawn twice) reach the database once, as their final state.

The inbox's batches of webhooks use the same overlay for the grants their orders make
(``Overlay(..., strict=True, accounts=...)``): it then also creates balance rows and grants, and
answers only for the balances it read; anything else raises :class:`NotBatched`, and that
delivery is made on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, TypeAlias

from billfold.domain import errors
from billfold.domain import ledger as rules
from billfold.domain.ledger import GrantState, HoldStatus, Line
from billfold.domain.records import GrantRecord, HoldRecord, LedgerTrail, TransactionRecord
from billfold.domain.reversals import Lot
from billfold.service.ledger import movement
from billfold.service.ledger.commands import (
    Capture,
    HoldResult,
    Release,
    Spend,
    SpendResult,
)
from billfold.service.ledger.commands import Hold as HoldCommand
from billfold.service.ports import (
    BalanceRow,
    BatchRead,
    BatchSnapshot,
    BatchWrites,
    NewGrant,
    NewNotification,
    NewTransaction,
    StoredTransaction,
    UnitOfWorkFactory,
)

BatchCommand: TypeAlias = Spend | HoldCommand | Capture | Release
BatchResult: TypeAlias = SpendResult | HoldResult
Outcome: TypeAlias = BatchResult | errors.BillfoldError

Position = tuple[str, str]
_MISSING: Final = object()


class NotBatched(errors.InvariantViolation):
    """The overlay was asked for what it does not hold (a balance it did not read, an operation
    batches never make): the caller makes that request on its own, outside the batch."""


@dataclass(slots=True)
class _Pending:
    """A transaction claimed in this batch; its lines and result come with ``finish``."""

    id: str
    key: str
    request_hash: str
    kind: str
    account_id: str | None
    unit: str | None
    amount: int | None
    reason: str | None
    created: int
    lines: tuple[Line, ...] = ()
    result: Mapping[str, Any] | None = None


class Overlay:
    """The ledger as a batch sees it: the snapshot plus what earlier requests of the batch wrote.

    Implements the ``LedgerStore`` methods that spends, holds, captures, releases and expiry use;
    every change is journaled so that a failing request's changes can be undone."""

    def __init__(
        self,
        snapshot: BatchSnapshot,
        *,
        strict: bool = False,
        accounts: Callable[[str, int], None] | None = None,
    ) -> None:
        """``strict``: a balance the snapshot did not read raises :class:`NotBatched` (without
        it: that balance has no row). ``accounts``: how to create an account row, at once (the
        overlay then grants: it creates balance rows and grants)."""
        self._strict = strict
        self._create_account = accounts
        self._read: frozenset[Position] = frozenset(snapshot.grants)
        self._accounts: set[str] = {a for a, _ in snapshot.balances}
        self._new_balances: dict[Position, None] = {}
        self._new_grants: dict[str, NewGrant] = {}
        self._keys: dict[str, StoredTransaction] = dict(snapshot.transactions)
        self._balances: dict[Position, BalanceRow] = dict(snapshot.balances)
        self._grants: dict[Position, dict[str, GrantState]] = {
            pos: {g.id: g for g in grants} for pos, grants in snapshot.grants.items()
        }
        self._grant_pos: dict[str, Position] = {
            g.id: pos for pos, grants in snapshot.grants.items() for g in grants
        }
        self._holds: dict[str, HoldRecord] = dict(snapshot.holds)
        self._allocations: dict[str, list[tuple[str, int]]] = {
            k: list(v) for k, v in snapshot.allocations.items()
        }
        self._pending: dict[str, _Pending] = {}  # by transaction id, in claim order
        self._pending_by_key: dict[str, str] = {}
        self._new_holds: dict[str, str] = {}  # hold id -> transaction id
        self._closed: dict[str, tuple[HoldStatus, int, str]] = {}
        self._touched_grants: dict[str, None] = {}
        self._touched_balances: dict[Position, None] = {}
        self._alerts: dict[Position, bool] = {}
        self._notifications: dict[str, NewNotification] = {}
        # What each change replaced: (mapping, key, old value or _MISSING), undone in reverse.
        self._journal: list[tuple[dict[Any, Any], Any, Any]] = []

    # --- the journal -----------------------------------------------------------------------------

    def mark(self) -> int:
        return len(self._journal)

    def undo(self, mark: int) -> None:
        journal = self._journal
        while len(journal) > mark:
            mapping, key, old = journal.pop()
            if old is _MISSING:
                del mapping[key]
            else:
                mapping[key] = old

    def _set(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        self._journal.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    # --- transactions ----------------------------------------------------------------------------

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
        if key in self._keys or key in self._pending_by_key:
            return False
        self._set(
            self._pending,
            txn_id,
            _Pending(
                id=txn_id,
                key=key,
                request_hash=request_hash,
                kind=kind,
                account_id=account_id,
                unit=unit,
                amount=amount,
                reason=reason,
                created=created,
            ),
        )
        self._set(self._pending_by_key, key, txn_id)
        return True

    def transaction_by_key(self, key: str) -> StoredTransaction | None:
        found = self._keys.get(key)
        if found is not None:
            return found
        txn_id = self._pending_by_key.get(key)
        if txn_id is None:
            if self._strict:
                raise NotBatched(f"the key {key!r} is not part of this batch")
            return None
        pending = self._pending[txn_id]
        return StoredTransaction(
            id=pending.id,
            kind=pending.kind,
            request_hash=pending.request_hash,
            result=pending.result,
        )

    def finish_transaction(
        self, txn_id: str, lines: Sequence[Line], result: Mapping[str, Any]
    ) -> None:
        old = self._pending[txn_id]
        self._set(self._pending, txn_id, replace(old, lines=tuple(lines), result=dict(result)))

    # --- balances --------------------------------------------------------------------------------

    def _check(self, pos: Position) -> None:
        if self._strict and pos not in self._read:
            raise NotBatched(f"the balance {pos[0]}/{pos[1]} is not part of this batch")

    def lock_balance(self, account_id: str, unit: str) -> BalanceRow | None:
        self._check((account_id, unit))
        return self._balances.get((account_id, unit))

    def set_balance(self, row: BalanceRow) -> None:
        pos = (row.account_id, row.unit)
        self._set(self._balances, pos, row)
        self._set(self._touched_balances, pos, None)

    def set_low_alert(self, account_id: str, unit: str, alert: bool) -> None:
        pos = (account_id, unit)
        self._set(self._balances, pos, replace(self._balances[pos], low_alert=alert))
        self._set(self._alerts, pos, alert)

    def add_notification(self, notification: NewNotification) -> None:
        self._set(self._notifications, notification.id, notification)

    # --- grants ----------------------------------------------------------------------------------

    def grant_states(
        self, account_id: str, unit: str, *, expired_at: int | None = None
    ) -> list[GrantState]:
        self._check((account_id, unit))
        grants = [g for g in self._grants.get((account_id, unit), {}).values() if g.remaining > 0]
        if expired_at is None:
            return grants
        return [
            g
            for g in grants
            if g.expires_at is not None and g.expires_at <= expired_at and g.remaining > g.held
        ]

    def update_grants(self, changes: Sequence[tuple[str, int, int]]) -> None:
        for grant_id, remaining, held in changes:
            pos = self._grant_pos[grant_id]
            grants = self._grants[pos]
            self._set(grants, grant_id, grants[grant_id].with_amounts(remaining, held))
            self._set(self._touched_grants, grant_id, None)

    # --- holds -----------------------------------------------------------------------------------

    def get_hold(self, hold_id: str) -> HoldRecord | None:
        found = self._holds.get(hold_id)
        if found is None and self._strict:
            raise NotBatched(f"the hold {hold_id} is not part of this batch")
        return found

    def insert_hold(self, hold: HoldRecord, transaction_id: str) -> None:
        self._set(self._holds, hold.id, hold)
        self._set(self._new_holds, hold.id, transaction_id)

    def insert_allocations(self, hold_id: str, allocations: Sequence[tuple[str, int]]) -> None:
        self._set(self._allocations, hold_id, list(allocations))

    def hold_allocations(self, hold_id: str) -> list[tuple[str, int]]:
        if self._strict and hold_id not in self._allocations:
            raise NotBatched(f"the hold {hold_id} is not part of this batch")
        return list(self._allocations.get(hold_id, []))

    def close_hold(
        self, hold_id: str, *, status: HoldStatus, captured: int, transaction_id: str
    ) -> None:
        hold = self._holds[hold_id]
        if hold.status != "active":
            return
        self._set(self._holds, hold_id, replace(hold, status=status, captured=captured))
        self._set(self._closed, hold_id, (status, captured, transaction_id))

    def lapsed_holds(self, account_id: str | None, now: int, limit: int) -> list[HoldRecord]:
        if self._strict and (account_id is None or account_id not in {a for a, _ in self._read}):
            raise NotBatched("lapsed holds beyond this batch's balances")
        found = [
            h
            for h in self._holds.values()
            if h.status == "active"
            and h.expires_at <= now
            and (account_id is None or h.account_id == account_id)
        ]
        return sorted(found, key=lambda h: h.id)[:limit]

    # --- grants (the inbox's batches) -------------------------------------------------------------

    def ensure_account(self, account_id: str, now: int) -> None:
        if self._create_account is None:
            raise self._not_batched("ensure_account")
        if account_id not in self._accounts:
            # The caller writes the row before anything that needs it (the inbox's batch view
            # keeps it for its flush, which runs before any read and before the ledger's
            # flush). It leaves with the transaction if the batch does.
            self._create_account(account_id, now)
            self._accounts.add(account_id)

    def ensure_accounts(self, accounts: Sequence[tuple[str, int]]) -> None:
        for account_id, now in accounts:
            self.ensure_account(account_id, now)

    def ensure_locked_balance(self, account_id: str, unit: str) -> BalanceRow:
        pos = (account_id, unit)
        if self._create_account is None:
            raise self._not_batched("ensure_locked_balance")
        self._check(pos)
        row = self._balances.get(pos)
        if row is None:
            # Created by the flush (a plain INSERT: a batch that created it meanwhile fails this
            # one, whose requests are then made one by one).
            row = BalanceRow(account_id=account_id, unit=unit, available=0, held=0, debt=0)
            self._set(self._balances, pos, row)
            self._set(self._new_balances, pos, None)
            if pos not in self._grants:
                self._set(self._grants, pos, {})
        return row

    def insert_grant(self, grant: NewGrant) -> None:
        pos = (grant.account_id, grant.unit)
        if self._create_account is None:
            raise self._not_batched("insert_grant")
        self._check(pos)
        state = GrantState(
            id=grant.id,
            unit=grant.unit,
            remaining=grant.remaining,
            held=0,
            priority=grant.priority,
            expires_at=grant.expires_at,
            created_seq=grant.id,
            origin=grant.origin,
        )
        grants = self._grants.get(pos)
        if grants is None:
            grants = {}
            self._set(self._grants, pos, grants)
        self._set(grants, grant.id, state)
        self._set(self._grant_pos, grant.id, pos)
        self._set(self._new_grants, grant.id, grant)

    # --- what a batch never does (reversals and reads run one at a time) ------------------------

    def _not_batched(self, what: str) -> NotBatched:
        return NotBatched(f"{what} is not part of a batch of ledger writes")

    def balances(self, account_id: str) -> list[BalanceRow]:
        raise self._not_batched("balances")

    def set_low_balance(self, account_id: str, unit: str, threshold: int | None) -> None:
        raise self._not_batched("set_low_balance")

    def lots(self, origin: str) -> list[Lot]:
        raise self._not_batched("lots")

    def trail(self, account_id: str, unit: str) -> LedgerTrail:
        raise self._not_batched("trail")

    def expired_grant_positions(self, now: int, limit: int) -> list[tuple[str, str]]:
        raise self._not_batched("expired_grant_positions")

    def pending_expiry(self, account_id: str, now: int) -> dict[str, tuple[int, int]]:
        raise self._not_batched("pending_expiry")

    def list_grants(
        self, account_id: str, *, limit: int, starting_after: str | None, live_only: bool, now: int
    ) -> list[GrantRecord]:
        raise self._not_batched("list_grants")

    def has_grant(self, account_id: str, grant_id: str) -> bool:
        raise self._not_batched("has_grant")

    def list_holds(
        self,
        account_id: str,
        *,
        status: HoldStatus | None,
        now: int,
        limit: int,
        starting_after: str | None,
    ) -> list[HoldRecord]:
        raise self._not_batched("list_holds")

    def has_transaction(self, account_id: str, transaction_id: str) -> bool:
        raise self._not_batched("has_transaction")

    def list_transactions(
        self, account_id: str, *, limit: int, starting_after: str | None
    ) -> list[TransactionRecord]:
        raise self._not_batched("list_transactions")

    def load_batch(self, read: BatchRead) -> BatchSnapshot:
        raise self._not_batched("load_batch")

    def flush_batch(self, writes: BatchWrites, *, commit: bool = False) -> None:
        raise self._not_batched("flush_batch")

    # --- the outcome -----------------------------------------------------------------------------

    def writes(self) -> BatchWrites:
        """The final state of everything the batch changed."""
        transactions = []
        for pending in self._pending.values():
            if pending.result is None:  # pragma: no cover - every claim is finished or undone
                raise errors.InvariantViolation(f"transaction {pending.id} was never finished")
            transactions.append(
                NewTransaction(
                    id=pending.id,
                    key=pending.key,
                    request_hash=pending.request_hash,
                    kind=pending.kind,
                    account_id=pending.account_id,
                    unit=pending.unit,
                    amount=pending.amount,
                    reason=pending.reason,
                    created=pending.created,
                    lines=pending.lines,
                    result=pending.result,
                )
            )
        grants: dict[str, tuple[int, int]] = {}
        for grant_id in self._touched_grants:
            g = self._grants[self._grant_pos[grant_id]][grant_id]
            if grant_id not in self._new_grants or g.held:
                grants[grant_id] = (g.remaining, g.held)
        new_grants = [
            replace(g, remaining=self._grants[self._grant_pos[g.id]][g.id].remaining)
            for g in self._new_grants.values()
        ]
        new_holds = [(self._holds[h], txn) for h, txn in self._new_holds.items()]
        return BatchWrites(
            transactions=transactions,
            grants=grants,
            balances=[
                self._balances[pos]
                for pos in self._touched_balances
                if pos not in self._new_balances
            ],
            holds=[(replace(h, status="active", captured=0), txn) for h, txn in new_holds],
            allocations=[(h, self._allocations.get(h, [])) for h in self._new_holds],
            closed_holds=[(h, s, c, txn) for h, (s, c, txn) in self._closed.items()],
            alerts=[(a, u, alert) for (a, u), alert in self._alerts.items()],
            notifications=list(self._notifications.values()),
            new_balances=[self._balances[pos] for pos in self._new_balances],
            new_grants=new_grants,
        )


_OPERATIONS: Final[dict[type, Callable[..., BatchResult]]] = {
    Spend: movement.spend,
    HoldCommand: movement.hold,
    Capture: movement.capture,
    Release: movement.release,
}


def _positions(commands: Sequence[BatchCommand]) -> tuple[Position, ...]:
    """The balances the spends and holds touch (captures' come from their holds)."""
    found: dict[Position, None] = {}
    for cmd in commands:
        if not isinstance(cmd, Spend | HoldCommand):
            continue
        if not isinstance(cmd.account_id, str) or not isinstance(cmd.unit, str):
            continue
        try:
            rules.check_account_id(cmd.account_id)
        except errors.ValidationError:
            continue  # the request itself will say why
        if 0 < len(cmd.unit) <= 64:
            found[(cmd.account_id, cmd.unit)] = None
    return tuple(found)


def _strings(values: Sequence[object], longest: int) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if isinstance(v, str) and 0 < len(v) <= longest))


def run_batch(
    uow_factory: UnitOfWorkFactory,
    commands: Sequence[BatchCommand],
    now: int,
    *,
    units: frozenset[str] | None,
    low: Mapping[str, int] | None = None,
    committing: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Decide and write ``commands`` in one transaction; one outcome (result or error) each.
    ``committing()`` is called when everything is decided and the writes and the commit are
    about to be sent (the combiner starts the next batch then).

    Raises when the batch as a whole cannot be written (a database error, ``KeyTaken``): the
    caller then makes each request on its own."""
    read = BatchRead(
        keys=_strings([c.key for c in commands], 255),
        hold_ids=_strings([c.hold_id for c in commands if isinstance(c, Capture | Release)], 64),
        positions=_positions(commands),
        now=now,
    )
    outcomes: list[Outcome] = []
    with uow_factory() as uow:
        overlay = Overlay(uow.ledger.load_batch(read))
        for cmd in commands:
            mark = overlay.mark()
            try:
                outcomes.append(_OPERATIONS[type(cmd)](overlay, cmd, now, units=units, low=low))
            except errors.BillfoldError as exc:
                overlay.undo(mark)
                outcomes.append(exc)
        writes = overlay.writes()
        if writes.transactions:
            # A crossing of a low-balance threshold is rare: its rows go before the batch's own
            # statements, in its transaction (a batch with none writes nothing more).
            for account_id, unit, alert in writes.alerts:
                uow.ledger.set_low_alert(account_id, unit, alert)
            for notification in writes.notifications:
                uow.ledger.add_notification(notification)
            if committing is not None:
                committing()
            uow.ledger.flush_batch(writes, commit=True)
            uow.commit()
    return outcomes

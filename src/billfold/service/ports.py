"""The ports: what the service layer needs from storage, as Protocols. Adapters implement them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from billfold.domain.ledger import GrantState, Line


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTransaction:
    id: str
    kind: str
    request_hash: str
    result: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceRow:
    account_id: str
    unit: str
    available: int
    held: int
    debt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NewGrant:
    id: str
    account_id: str
    unit: str
    amount: int
    remaining: int
    priority: int
    expires_at: int | None
    kind: str
    origin: str | None
    reason: str | None
    transaction_id: str
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldRow:
    id: str
    account_id: str
    unit: str
    amount: int
    captured: int
    status: str
    expires_at: int
    reason: str | None
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantRecord:
    """A grant as the API shows it."""

    id: str
    account_id: str
    unit: str
    amount: int
    remaining: int
    held: int
    priority: int
    expires_at: int | None
    kind: str
    origin: str | None
    reason: str | None
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionRecord:
    id: str
    kind: str
    account_id: str | None
    unit: str | None
    amount: int | None
    reason: str | None
    created: int
    lines: tuple[Line, ...]


class LedgerStore(Protocol):
    """Ledger rows inside one database transaction (the unit of work owns it)."""

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
    ) -> bool: ...

    def transaction_by_key(self, key: str) -> StoredTransaction | None: ...

    def finish_transaction(
        self, txn_id: str, lines: Sequence[Line], result: Mapping[str, Any]
    ) -> None: ...

    def ensure_account(self, account_id: str, now: int) -> None: ...

    def ensure_balance(self, account_id: str, unit: str) -> None: ...

    def lock_balance(self, account_id: str, unit: str) -> BalanceRow | None: ...

    def set_balance(self, row: BalanceRow) -> None: ...

    def balances(self, account_id: str) -> list[BalanceRow]: ...

    def account_exists(self, account_id: str) -> bool: ...

    def grant_states(self, account_id: str, unit: str) -> list[GrantState]: ...

    def insert_grant(self, grant: NewGrant) -> None: ...

    def update_grants(self, changes: Sequence[tuple[str, int, int]]) -> None:
        """Set (remaining, held) of each grant id."""
        ...

    def insert_hold(self, hold: HoldRow, transaction_id: str) -> None: ...

    def get_hold(self, hold_id: str) -> HoldRow | None: ...

    def hold_allocations(self, hold_id: str) -> list[tuple[str, int]]: ...

    def insert_allocations(self, hold_id: str, allocations: Sequence[tuple[str, int]]) -> None: ...

    def close_hold(
        self, hold_id: str, *, status: str, captured: int, transaction_id: str
    ) -> None: ...

    def active_holds(self, account_id: str, unit: str) -> list[HoldRow]: ...

    def lapsed_holds(self, account_id: str | None, now: int, limit: int) -> list[HoldRow]: ...

    def expired_grant_positions(self, now: int, limit: int) -> list[tuple[str, str]]: ...

    def pending_expiry(self, account_id: str, now: int) -> dict[str, tuple[int, int]]:
        """Per unit: (free remainder of expired grants, amount of lapsed active holds)."""
        ...

    def list_grants(
        self, account_id: str, *, limit: int, starting_after: str | None, live_only: bool, now: int
    ) -> list[GrantRecord]: ...

    def list_transactions(
        self, account_id: str, *, limit: int, starting_after: str | None
    ) -> list[TransactionRecord]: ...


class UnitOfWork(Protocol):
    """One database transaction. ``commit`` makes it durable; leaving without it rolls back."""

    ledger: LedgerStore

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc: object) -> None: ...

    def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
Clock = Callable[[], int]

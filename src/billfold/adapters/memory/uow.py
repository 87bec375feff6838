"""The unit of work in memory: one transaction over a copy of the tables, swapped in on commit.

Units of work on one memory database (one :class:`Storage`) run one at a time (a lock,
like SQLite's single writer), so a transaction never sees another's uncommitted writes and commits
never interleave. Every write goes to the unit of work's own copy of the tables; ``commit`` checks
that each transaction it wrote lines for sums to zero per unit (as the SQLite unit of work does
before committing) and makes the copy the database's; leaving without commit drops the copy.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from types import TracebackType
from typing import Final

from billfold.adapters.memory._tables import Tables, Work
from billfold.adapters.memory.accounts import MemoryAccountStore
from billfold.adapters.memory.dashboard import MemoryDashboardStore
from billfold.adapters.memory.inbox import MemoryInboxStore
from billfold.adapters.memory.ledger import MemoryLedgerStore
from billfold.adapters.memory.notifications import MemoryNotificationStore
from billfold.adapters.memory.orders import MemoryOrderStore
from billfold.adapters.memory.payments import (
    MemoryAdminSessionStore,
    MemoryPaymentStore,
    MemoryReversalStore,
)
from billfold.adapters.memory.reconciliation import MemoryReconciliationStore
from billfold.adapters.memory.subscriptions import MemorySubscriptionStore
from billfold.domain import errors

LOCK_TIMEOUT: Final = 30.0
"""Seconds a unit of work waits for another to finish, as SQLite's busy timeout."""


class Storage:
    """What a memory database keeps: the committed tables, and the lock that lets one unit of
    work at a time at them. A committed copy of the tables is never written again."""

    def __init__(self) -> None:
        self.tables = Tables()
        self._lock = threading.Lock()
        self._owner: int | None = None

    def begin(self) -> None:
        if self._owner == threading.get_ident():
            # On SQLite this waits for the busy timeout and fails; here it fails at once.
            raise RuntimeError(
                "a unit of work is already open on this MemoryDatabase in this thread: "
                "units of work do not nest"
            )
        if not self._lock.acquire(timeout=LOCK_TIMEOUT):
            raise errors.StorageUnavailable("The database stayed busy; try again later.")
        self._owner = threading.get_ident()

    def end(self) -> None:
        self._owner = None
        self._lock.release()


class MemoryUnitOfWork:
    """``with uow: ...; uow.commit()``. Leaving the block without commit rolls back.

    As on SQL, a unit of work may go on after ``commit``: what it writes then is a new transaction,
    kept only by another ``commit``.
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._work: Work | None = None
        self._ledger: MemoryLedgerStore | None = None
        self._inbox: MemoryInboxStore | None = None
        self._orders: MemoryOrderStore | None = None
        self._accounts: MemoryAccountStore | None = None
        self._payments: MemoryPaymentStore | None = None
        self._reversals: MemoryReversalStore | None = None
        self._sessions: MemoryAdminSessionStore | None = None
        self._subscriptions: MemorySubscriptionStore | None = None
        self._reconciliation: MemoryReconciliationStore | None = None
        self._notifications: MemoryNotificationStore | None = None
        self._dashboard: MemoryDashboardStore | None = None

    @property
    def ledger(self) -> MemoryLedgerStore:
        assert self._ledger is not None, "use the unit of work in a with block"
        return self._ledger

    @property
    def inbox(self) -> MemoryInboxStore:
        assert self._inbox is not None, "use the unit of work in a with block"
        return self._inbox

    @property
    def orders(self) -> MemoryOrderStore:
        assert self._orders is not None, "use the unit of work in a with block"
        return self._orders

    @property
    def accounts(self) -> MemoryAccountStore:
        assert self._accounts is not None, "use the unit of work in a with block"
        return self._accounts

    @property
    def payments(self) -> MemoryPaymentStore:
        assert self._payments is not None, "use the unit of work in a with block"
        return self._payments

    @property
    def reversals(self) -> MemoryReversalStore:
        assert self._reversals is not None, "use the unit of work in a with block"
        return self._reversals

    @property
    def admin_sessions(self) -> MemoryAdminSessionStore:
        assert self._sessions is not None, "use the unit of work in a with block"
        return self._sessions

    @property
    def subscriptions(self) -> MemorySubscriptionStore:
        assert self._subscriptions is not None, "use the unit of work in a with block"
        return self._subscriptions

    @property
    def reconciliation(self) -> MemoryReconciliationStore:
        assert self._reconciliation is not None, "use the unit of work in a with block"
        return self._reconciliation

    @property
    def notifications(self) -> MemoryNotificationStore:
        assert self._notifications is not None, "use the unit of work in a with block"
        return self._notifications

    @property
    def dashboard(self) -> MemoryDashboardStore:
        assert self._dashboard is not None, "use the unit of work in a with block"
        return self._dashboard

    def __enter__(self) -> MemoryUnitOfWork:
        self._storage.begin()
        work = Work(tables=self._storage.tables.copy())
        self._work = work
        self._ledger = MemoryLedgerStore(work)
        self._inbox = MemoryInboxStore(work)
        self._orders = MemoryOrderStore(work)
        self._accounts = MemoryAccountStore(work)
        self._payments = MemoryPaymentStore(work)
        self._reversals = MemoryReversalStore(work)
        self._sessions = MemoryAdminSessionStore(work)
        self._subscriptions = MemorySubscriptionStore(work)
        self._reconciliation = MemoryReconciliationStore(work)
        self._notifications = MemoryNotificationStore(work)
        self._dashboard = MemoryDashboardStore(work)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._work is None:  # pragma: no cover - __enter__ failed
            return
        self._work = None  # what was not committed is dropped here
        self._ledger = self._inbox = None
        self._orders = self._accounts = None
        self._payments = None
        self._reversals = None
        self._sessions = None
        self._subscriptions = None
        self._reconciliation = None
        self._notifications = None
        self._dashboard = None
        self._storage.end()

    def commit(self) -> None:
        work = self._work
        assert work is not None, "use the unit of work in a with block"
        _check_balanced(work)
        self._storage.tables = work.tables
        # Go on in a new transaction, from what was just committed.
        work.tables = work.tables.copy()
        work.lines_written.clear()


def _check_balanced(work: Work) -> None:
    """The sum-to-zero rule, per transaction and unit, over the transactions written here."""
    written = set(work.lines_written)
    if not written:
        return
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for line in work.tables.lines:
        if line.transaction_id in written:
            totals[(line.transaction_id, line.unit)] += line.amount
    for (txn_id, unit), total in totals.items():
        if total != 0:
            raise errors.InvariantViolation(
                f"transaction {txn_id} does not balance: {unit} sums to {total}."
            )

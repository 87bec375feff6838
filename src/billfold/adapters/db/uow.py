"""The unit of work: one database transaction, owning the connection and the repositories."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from billfold.adapters.db import engine as db_engine
from billfold.adapters.db.errors import translated
from billfold.adapters.db.stores.accounts import SqlAccountStore
from billfold.adapters.db.stores.dashboard import SqlDashboardStore
from billfold.adapters.db.stores.inbox import SqlInboxStore
from billfold.adapters.db.stores.ledger import SqlLedgerStore
from billfold.adapters.db.stores.notifications import SqlNotificationStore
from billfold.adapters.db.stores.orders import SqlOrderStore
from billfold.adapters.db.stores.payments import (
    SqlAdminSessionStore,
    SqlPaymentStore,
    SqlReversalStore,
)
from billfold.adapters.db.stores.reconciliation import SqlReconciliationStore
from billfold.adapters.db.stores.subscriptions import SqlSubscriptionStore
from billfold.domain import errors


class SqlUnitOfWork:
    """``with uow: ...; uow.commit()``. Leaving the block without commit rolls back.

    Database errors raised inside the block leave it as billfold errors (StorageUnavailable,
    ConstraintViolation, InvariantViolation, ValidationError), with the driver's error as the cause.
    """

    ledger: SqlLedgerStore
    inbox: SqlInboxStore
    orders: SqlOrderStore
    accounts: SqlAccountStore
    payments: SqlPaymentStore
    reversals: SqlReversalStore
    admin_sessions: SqlAdminSessionStore
    subscriptions: SqlSubscriptionStore
    reconciliation: SqlReconciliationStore
    notifications: SqlNotificationStore
    dashboard: SqlDashboardStore

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: sa.Connection | None = None
        self._committed = False
        self._lock = db_engine.writer_lock(engine)

    @property
    def conn(self) -> sa.Connection:
        assert self._conn is not None, "use the unit of work in a with block"
        return self._conn

    def __enter__(self) -> SqlUnitOfWork:
        if self._lock is not None and not self._lock.acquire(timeout=db_engine.WRITER_LOCK_TIMEOUT):
            raise errors.StorageUnavailable("The database stayed busy; try again later.")
        try:
            with translated():
                self._conn = self._engine.connect()
                self._conn.begin()
        except BaseException:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock is not None:
                self._lock.release()
            raise
        self._committed = False
        self.ledger = SqlLedgerStore(self._conn)
        self.inbox = SqlInboxStore(self._conn)
        self.orders = SqlOrderStore(self._conn)
        self.accounts = SqlAccountStore(self._conn)
        self.payments = SqlPaymentStore(self._conn)
        self.reversals = SqlReversalStore(self._conn)
        self.admin_sessions = SqlAdminSessionStore(self._conn)
        self.subscriptions = SqlSubscriptionStore(self._conn)
        self.reconciliation = SqlReconciliationStore(self._conn)
        self.notifications = SqlNotificationStore(
            self._conn, pending=self.ledger.flush_notifications
        )
        self.dashboard = SqlDashboardStore(self._conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:  # pragma: no cover - __enter__ failed
            return
        try:
            if not self._committed:
                conn.rollback()
        except sa.exc.SQLAlchemyError:
            pass  # the connection is gone; the transaction died with it
        finally:
            conn.close()
            if self._lock is not None:
                self._lock.release()
        if exc is not None and isinstance(exc, sa.exc.SQLAlchemyError | OverflowError):
            with translated():
                raise exc

    def commit(self) -> None:
        with translated():
            self.ledger.flush_notifications()
            if self.ledger.written:
                self._check_balanced()
            self.conn.commit()
        self._committed = True

    def _check_balanced(self) -> None:
        """The sum-to-zero rule before commit, where the database does not check it at commit
        itself (SQLite: no deferred constraint triggers)."""
        bad = self.ledger.first_unbalanced()
        if bad is not None:
            raise errors.InvariantViolation(
                f"transaction {bad[0]} does not balance: {bad[1]} sums to {bad[2]}."
            )


def uow_factory(engine: Engine) -> Callable[[], SqlUnitOfWork]:
    return lambda: SqlUnitOfWork(engine)

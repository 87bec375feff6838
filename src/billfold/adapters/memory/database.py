"""One memory database, as the service layer sees it: units of work and the invariant audit."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from billfold.adapters.memory._tables import Tables
from billfold.adapters.memory.uow import MemoryUnitOfWork
from billfold.adapters.memory.verify import verify
from billfold.domain import errors

if TYPE_CHECKING:
    from billfold.service.ports import Auditor, UnitOfWorkFactory

LOCK_TIMEOUT: Final = 30.0
"""Seconds a unit of work waits for another to finish, as SQLite's busy timeout."""


class MemoryDatabase:
    """Everything the SQL database keeps, in dicts; ``uow()`` is a ``UnitOfWorkFactory`` and
    ``verify()`` the ``Auditor`` port."""

    def __init__(self) -> None:
        self._tables = Tables()
        self._lock = threading.Lock()
        self._owner: int | None = None

    def uow(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def verify(self) -> list[str]:
        """Every violation of invariants 1, 2, 3 and 5, as ``billfold verify`` words them.

        Reads what was committed: a committed copy of the tables is never written again."""
        return verify(self._tables)

    # --- the single writer ---

    def _begin(self) -> None:
        if self._owner == threading.get_ident():
            # On SQLite this waits for the busy timeout and fails; here it fails at once.
            raise RuntimeError(
                "a unit of work is already open on this MemoryDatabase in this thread: "
                "units of work do not nest"
            )
        if not self._lock.acquire(timeout=LOCK_TIMEOUT):
            raise errors.StorageUnavailable("The database stayed busy; try again later.")
        self._owner = threading.get_ident()

    def _end(self) -> None:
        self._owner = None
        self._lock.release()


if TYPE_CHECKING:  # mypy holds the adapter to the ports

    def _ports(db: MemoryDatabase) -> tuple[UnitOfWorkFactory, Auditor]:
        return db.uow, db

"""One memory database, as the service layer sees it: units of work and the invariant audit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billfold.adapters.memory.uow import MemoryUnitOfWork, Storage
from billfold.adapters.memory.verify import verify

if TYPE_CHECKING:
    from billfold.service.ports import Auditor, UnitOfWorkFactory


class MemoryDatabase:
    """Everything the SQL database keeps, in dicts; ``uow()`` is a ``UnitOfWorkFactory`` and
    ``verify()`` the ``Auditor`` port."""

    def __init__(self) -> None:
        self._storage = Storage()

    def uow(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self._storage)

    def verify(self) -> list[str]:
        """Every violation of invariants 1, 2, 3 and 5, as ``billfold verify`` words them.

        Reads what was committed (never written again), so it needs no unit of work."""
        return verify(self._storage.tables)


if TYPE_CHECKING:  # mypy holds the adapter to the ports

    def _ports(db: MemoryDatabase) -> tuple[UnitOfWorkFactory, Auditor]:
        return db.uow, db

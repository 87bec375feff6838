"""An in-memory implementation of every storage port, for fast service tests.

    database.py   MemoryDatabase: ``uow()`` (a ``UnitOfWorkFactory``) and ``verify()`` (``Auditor``)
    uow.py        MemoryUnitOfWork: one transaction over a copy of the tables, swapped in on commit;
                  Storage: the committed tables and the lock (one unit of work at a time)
    ledger.py, inbox.py, orders.py, accounts.py
                  the stores, one per port, behaving as the SQL stores do
    _tables.py    the rows, and the constraints the SQL schema enforces, by the same names
    verify.py     ``billfold verify``'s invariant checks over the tables

The contract suite (``tests/contract``) runs the same tests against this, SQLite and PostgreSQL.
"""

from __future__ import annotations

from billfold.adapters.memory.database import MemoryDatabase
from billfold.adapters.memory.uow import MemoryUnitOfWork

__all__ = ["MemoryDatabase", "MemoryUnitOfWork"]

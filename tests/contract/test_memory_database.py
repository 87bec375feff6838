"""What only the memory database needs checked: that it names the schema's constraints, and that
it fails fast where SQLite would wait."""

from __future__ import annotations

import importlib

import pytest

from billfold.adapters.db import tables as t
from billfold.adapters.memory import MemoryDatabase
from billfold.adapters.memory import _tables as memory_tables


def test_every_constraint_the_memory_stores_refuse_with_is_one_of_the_schema() -> None:
    schema = {
        str(constraint.name)
        for table in t.metadata.tables.values()
        for constraint in table.constraints
    }
    triggers = importlib.import_module("billfold.adapters.db.migrations.versions.0001_ledger")
    assert memory_tables.CONSTRAINTS - schema == {"ledger_append_only"}
    assert all(
        "ledger_append_only" in "".join(ddl)
        for ddl in (triggers.PG_TRIGGERS, triggers.SQLITE_TRIGGERS)
    )


def test_given_a_unit_of_work_open_when_another_opens_in_the_same_thread_then_it_fails_at_once() -> (
    None
):
    db = MemoryDatabase()
    with db.uow(), pytest.raises(RuntimeError, match="do not nest"):
        db.uow().__enter__()
    with db.uow() as uow:  # the lock was released
        assert uow.accounts.get("x") is None

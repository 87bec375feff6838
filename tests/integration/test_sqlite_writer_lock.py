"""The SQLite writer lock: units of work in one process queue on it instead of polling SQLite's busy
handler; it is always released (commit, rollback, error) and a wait that is too long is a clear
StorageUnavailable, never a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from billfold.adapters.db import engine as db_engine
from billfold.adapters.db import migrate
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.domain import errors


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db_engine.make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_a_file_database_has_a_writer_lock_and_postgres_or_memory_none() -> None:
    assert db_engine.writer_lock(db_engine.make_engine("sqlite://")) is None
    assert db_engine.writer_lock(db_engine.make_engine("postgresql://u@127.0.0.1:1/x")) is None


def test_the_lock_is_released_after_commit_rollback_and_errors(engine: Engine) -> None:
    lock = db_engine.writer_lock(engine)
    assert lock is not None
    with SqlUnitOfWork(engine) as uow:
        uow.ledger.ensure_account("a", 1)
        uow.commit()
    with SqlUnitOfWork(engine):
        pass  # left without commit: rolled back
    with pytest.raises(RuntimeError), SqlUnitOfWork(engine):
        raise RuntimeError("boom")
    # Free again: another thread takes it at once.
    taken = threading.Event()

    def other() -> None:
        with SqlUnitOfWork(engine):
            taken.set()

    worker = threading.Thread(target=other)
    worker.start()
    worker.join(5)
    assert taken.is_set()


def test_a_second_unit_of_work_waits_for_the_first_then_proceeds(engine: Engine) -> None:
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with SqlUnitOfWork(engine) as uow:
            first_in.set()
            time.sleep(0.3)
            uow.ledger.ensure_account("first", 1)
            order.append("first committed")
            uow.commit()

    def second() -> None:
        first_in.wait(5)
        with SqlUnitOfWork(engine) as uow:
            order.append("second began")
            uow.ledger.ensure_account("second", 2)
            uow.commit()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert order == ["first committed", "second began"]


def test_waiting_too_long_is_storage_unavailable(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "WRITER_LOCK_TIMEOUT", 0.2)
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with SqlUnitOfWork(engine):
            held.set()
            release.wait(5)

    th = threading.Thread(target=holder)
    th.start()
    held.wait(5)
    try:
        with pytest.raises(errors.StorageUnavailable), SqlUnitOfWork(engine):
            pass
    finally:
        release.set()
        th.join(5)
    with SqlUnitOfWork(engine):  # and usable again afterwards
        pass

"""The composition root: ``build(settings)`` wires storage, the ledger and the services.

Nothing is built at import time; entry points (HTTP app, worker, CLI, the library facade) call
``build`` with explicit settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from billfold.adapters.db import engine as db_engine
from billfold.adapters.db import migrate
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.domain import errors
from billfold.service.ledger import Ledger
from billfold.settings import Settings


def wall_clock() -> int:
    return int(time.time())


@dataclass
class Services:
    settings: Settings
    engine: Engine
    ledger: Ledger

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def prepare_schema(engine: Engine) -> None:
    """SQLite migrates itself; PostgreSQL refuses an old schema and names the command to run."""
    if engine.dialect.name == "sqlite":
        migrate.upgrade(engine)
        return
    with db_engine.translate_errors():
        current = migrate.current_revision(engine)
    if current != migrate.head_revision():
        raise errors.ConfigurationError(
            f"The database schema is at {current or 'nothing'}, billfold needs "
            f"{migrate.head_revision()}: run `billfold db upgrade` first."
        )


def build(settings: Settings, *, clock: object = None, check_schema: bool = True) -> Services:
    engine = db_engine.make_engine(settings.database_url, pool_size=settings.db_pool_size)
    if check_schema:
        prepare_schema(engine)
    tick = clock if clock is not None else wall_clock
    factory = lambda: SqlUnitOfWork(engine)  # noqa: E731
    ledger = Ledger(factory, tick)
    return Services(settings=settings, engine=engine, ledger=ledger)

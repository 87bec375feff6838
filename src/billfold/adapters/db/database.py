"""One database, as the service layer sees it: units of work, the schema, the invariant audit.

``Database(url)`` is what the composition root builds; everything in it is lazy until used.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from billfold.adapters.db import engine as db_engine
from billfold.adapters.db import migrate
from billfold.adapters.db.errors import translated
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.db.verify import verify
from billfold.domain import errors


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine: Engine = db_engine.make_engine(url, pool_size=pool_size)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    # --- the Schema port ---

    def current(self) -> str | None:
        with translated():
            return migrate.current_revision(self.engine)

    def head(self) -> str:
        return migrate.head_revision()

    def upgrade(self, revision: str = "head") -> None:
        with translated():
            migrate.upgrade(self.engine, revision)

    def prepare(self) -> None:
        """SQLite migrates itself; PostgreSQL refuses an old schema and names the command to run."""
        if self.is_sqlite:
            self.upgrade()
            return
        current = self.current()
        if current != self.head():
            raise errors.ConfigurationError(
                f"The database schema is at {current or 'nothing'}, billfold needs "
                f"{self.head()}: run `billfold db upgrade` first."
            )

    # --- the Auditor port ---

    def verify(self) -> list[str]:
        with translated():
            return verify(self.engine)

    def redacted_url(self) -> str:
        return db_engine.redact(self.url)

    def close(self) -> None:
        self.engine.dispose()

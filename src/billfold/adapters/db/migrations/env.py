"""Alembic environment: runs against the connection billfold hands it, or the configured URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from billfold.adapters.db.engine import normalize_url
from billfold.adapters.db.tables import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = normalize_url(
        os.environ.get("BILLFOLD_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
        or "sqlite:///billfold.db"
    )
    engine = create_engine(url)
    with engine.connect() as conn:
        _migrate(conn)
    engine.dispose()


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()

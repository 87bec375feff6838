"""The composition root: ``build(settings)`` wires storage, the catalog, the ledger and the services.

Nothing is built at import time; entry points (HTTP app, worker, CLI, the library facade) call
``build`` with explicit settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from billfold.adapters.catalog_toml import load_catalog
from billfold.adapters.db import engine as db_engine
from billfold.adapters.db import migrate
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.stripe import translate
from billfold.adapters.stripe.client import SdkStripeGateway
from billfold.domain import errors
from billfold.domain.catalog import Catalog
from billfold.service.events import EventProcessor
from billfold.service.ledger import Ledger
from billfold.service.orders import Orders
from billfold.service.ports import StripeGateway
from billfold.settings import Settings


def wall_clock() -> int:
    return int(time.time())


@dataclass
class Services:
    settings: Settings
    engine: Engine
    catalog: Catalog
    ledger: Ledger
    orders: Orders
    events: EventProcessor
    stripe: StripeGateway | None
    clock: Callable[[], int]

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    def require_stripe(self) -> StripeGateway:
        if self.stripe is None:
            raise errors.ConfigurationError(
                "BILLFOLD_STRIPE_SECRET_KEY is not set: billfold cannot call Stripe."
            )
        return self.stripe

    def close(self) -> None:
        closer = getattr(self.stripe, "close", None)
        if callable(closer):
            closer()
        self.engine.dispose()


def prepare_schema(engine: Engine) -> None:
    """SQLite migrates itself; PostgreSQL refuses an old schema and names the command to run."""
    if engine.dialect.name == "sqlite":
        with db_engine.translate_errors():
            migrate.upgrade(engine)
        return
    with db_engine.translate_errors():
        current = migrate.current_revision(engine)
    if current != migrate.head_revision():
        raise errors.ConfigurationError(
            f"The database schema is at {current or 'nothing'}, billfold needs "
            f"{migrate.head_revision()}: run `billfold db upgrade` first."
        )


def build(
    settings: Settings,
    *,
    clock: Callable[[], int] | None = None,
    check_schema: bool = True,
    stripe: StripeGateway | None = None,
) -> Services:
    catalog = load_catalog(settings.catalog)
    engine = db_engine.make_engine(settings.database_url, pool_size=settings.db_pool_size)
    if check_schema:
        try:
            prepare_schema(engine)
        except BaseException:
            engine.dispose()
            raise
    tick = clock or wall_clock

    def factory() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    ledger = Ledger(factory, tick, units=frozenset(u.name for u in catalog.units))
    orders = Orders(ledger, catalog)
    if stripe is None and settings.stripe_secret_key is not None:
        stripe = SdkStripeGateway(
            settings.stripe_secret_key.get_secret_value(), api_base=settings.stripe_api_base
        )
    processor = EventProcessor(
        uow_factory=factory,
        orders=orders,
        translate=translate.translate,
        clock=tick,
        max_attempts=settings.worker_max_attempts,
        backoff_base=settings.worker_backoff_base_seconds,
        lease_seconds=settings.worker_lease_seconds,
    )
    return Services(
        settings=settings,
        engine=engine,
        catalog=catalog,
        ledger=ledger,
        orders=orders,
        events=processor,
        stripe=stripe,
        clock=tick,
    )

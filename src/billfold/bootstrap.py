"""The composition root: ``build(settings)`` wires storage, Stripe, the catalog and the use cases.

Nothing is built at import time; entry points (HTTP app, worker, CLI, the library facade) call
``build`` with explicit settings and then talk only to the :class:`Services` it returns: the one
door into the service layer. ``Services.infra`` holds the adapters themselves, for the composition
root and for tests; entry points never touch it (``tests/unit/test_architecture.py`` checks).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billfold.adapters import notify
from billfold.adapters.catalog_toml import load_catalog
from billfold.adapters.db.database import Database
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.metrics import PrometheusMetrics
from billfold.adapters.stripe.client import SdkStripeGateway
from billfold.adapters.stripe.webhooks import StripeWebhooks
from billfold.domain.catalog import Catalog
from billfold.domain.notifications import EndpointRecord
from billfold.service.accounts import Accounts
from billfold.service.admin_sessions import AdminSessions
from billfold.service.attention import Attention
from billfold.service.billing import Billing
from billfold.service.checkout import Checkout
from billfold.service.dashboard import Dashboard
from billfold.service.handlers import EventHandlers
from billfold.service.inbox import Inbox
from billfold.service.ledger import Ledger
from billfold.service.maintenance import Maintenance
from billfold.service.notifications import Notifications
from billfold.service.observe import Metrics
from billfold.service.orders.desk import OrderDesk
from billfold.service.orders.fulfilment import Fulfilment
from billfold.service.orders.reversals import Reversals
from billfold.service.ports import (
    NotificationSender,
    StripeGateway,
    StripeLedger,
    StripeSubscriptions,
)
from billfold.service.reconciliation import Reconciliation
from billfold.service.subscriptions import SubscriptionBook
from billfold.service.views import Views
from billfold.settings import Settings


def wall_clock() -> int:
    return int(time.time())


@dataclass
class Infrastructure:
    """The adapters behind the services: for the composition root and tests only."""

    database: Database
    stripe: StripeGateway | None

    def uow(self) -> SqlUnitOfWork:
        return self.database.uow()


@dataclass
class Services:
    """The one door: every use case, grouped by what it is about."""

    settings: Settings
    catalog: Catalog
    clock: Callable[[], int]
    ledger: Ledger
    inbox: Inbox
    orders: OrderDesk
    attention: Attention
    checkout: Checkout
    accounts: Accounts
    billing: Billing
    views: Views
    dashboard: Dashboard
    admin_sessions: AdminSessions
    maintenance: Maintenance
    reconciliation: Reconciliation
    notifications: Notifications
    infra: Infrastructure
    metrics: Metrics

    @property
    def stripe_configured(self) -> bool:
        return self.infra.stripe is not None

    def close(self) -> None:
        self.reconciliation.wait_idle(timeout=10)
        self.ledger.close()
        self.inbox.close()
        closer = getattr(self.infra.stripe, "close", None)
        if callable(closer):
            closer()
        self.notifications.close()
        sender_closer = getattr(self.notifications.sender, "close", None)
        if callable(sender_closer):
            sender_closer()
        self.infra.database.close()


def build(
    settings: Settings,
    *,
    clock: Callable[[], int] | None = None,
    check_schema: bool = True,
    stripe: StripeGateway | None = None,
    subscriptions_api: StripeSubscriptions | None = None,
    ledger_api: StripeLedger | None = None,
    session_clock: Callable[[], int] | None = None,
    notify_sender: NotificationSender | None = None,
    notify_local: bool = False,
) -> Services:
    """Everything, wired. ``stripe`` (and ``subscriptions_api``) replace the SDK gateway (tests).
    ``session_clock`` times the console's sign-in sessions (default: ``clock``): ``billfold dev``
    keeps them on the wall clock while billfold's clock follows Stripe's test clocks.
    ``notify_local``: every notification also goes to ``notify_sender`` as a local receiver
    (``billfold dev``'s console and demo panel)."""
    catalog = load_catalog(settings.catalog)
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    if check_schema:
        try:
            database.prepare()
        except BaseException:
            database.close()
            raise
    tick = clock or wall_clock
    if stripe is None and settings.stripe_secret_key is not None:
        stripe = SdkStripeGateway(
            settings.stripe_secret_key.get_secret_value(), api_base=settings.stripe_api_base
        )
    uow = database.uow
    metrics = PrometheusMetrics()
    units = frozenset(u.name for u in catalog.units)
    reversals = Reversals(catalog, units=units)
    fulfilment = Fulfilment(catalog, reversals, units=units)
    book = SubscriptionBook(catalog, fulfilment, units=units)
    stripe_subscriptions = subscriptions_api or (
        stripe if isinstance(stripe, SdkStripeGateway) else None
    )
    views = Views(uow, catalog, tick)
    inbox = Inbox(
        uow_factory=uow,
        events=StripeWebhooks(
            settings.webhook_secrets, tolerance=settings.webhook_tolerance_seconds
        ),
        handlers=EventHandlers(fulfilment, reversals, book),
        stripe=stripe,
        clock=tick,
        max_attempts=settings.worker_max_attempts,
        backoff_base=settings.worker_backoff_base_seconds,
        lease_seconds=settings.worker_lease_seconds,
        livemode=settings.stripe_livemode,
        stripe_subscriptions=stripe_subscriptions,
        batch_max=settings.webhook_batch_max,
        writers=1 if database.is_sqlite else settings.webhook_writers,
        observer=metrics,
    )
    billing = Billing(
        uow_factory=uow,
        catalog=catalog,
        views=views,
        book=book,
        stripe=stripe_subscriptions,
        clock=tick,
    )
    reconciliation = Reconciliation(
        uow_factory=uow,
        inbox=inbox,
        billing=billing,
        stripe=ledger_api or (stripe if isinstance(stripe, SdkStripeGateway) else None),
        events=stripe,
        clock=tick,
        lease_seconds=settings.worker_lease_seconds,
    )
    desk = OrderDesk(uow_factory=uow, fulfilment=fulfilment, stripe=stripe, clock=tick)
    return Services(
        settings=settings,
        catalog=catalog,
        clock=tick,
        ledger=Ledger(
            uow,
            tick,
            units=units,
            batch_max=settings.ledger_batch_max,
            writers=1 if database.is_sqlite else settings.ledger_writers,
            observer=metrics,
            low=catalog.low_balances(),
        ),
        inbox=inbox,
        orders=desk,
        attention=Attention(uow_factory=uow, clock=tick, views=views, inbox=inbox, desk=desk),
        checkout=Checkout(
            uow_factory=uow,
            catalog=catalog,
            fulfilment=fulfilment,
            views=views,
            stripe=stripe,
            clock=tick,
            billing=billing,
        ),
        accounts=Accounts(uow, catalog, tick),
        billing=billing,
        views=views,
        dashboard=Dashboard(uow, tick, units=[u.name for u in catalog.units]),
        admin_sessions=AdminSessions(
            uow,
            session_clock or tick,
            settings.admin_token.get_secret_value() if settings.admin_token else None,
        ),
        maintenance=Maintenance(schema=database, auditor=database, where=database.redacted_url()),
        reconciliation=reconciliation,
        notifications=Notifications(
            uow,
            tick,
            notify_sender or notify.HttpSender(),
            static=[
                *(
                    [EndpointRecord(id="env_dev", url=notify.LocalReceiver.URL, secrets=())]
                    if notify_local
                    else []
                ),
                *(
                    EndpointRecord(
                        id=f"env_{index}", url=url, secrets=(secret,) if secret else (), created=0
                    )
                    for index, (url, secret) in enumerate(settings.notify_endpoints)
                ),
            ],
            new_secret=notify.new_secret,
            lease_seconds=settings.worker_lease_seconds,
            threads=settings.notify_threads,
            observer=metrics,
        ),
        infra=Infrastructure(database=database, stripe=stripe),
        metrics=metrics,
    )


def local_receiver(
    show: Callable[[str, dict[str, Any]], None] | None = None,
) -> notify.LocalReceiver:
    """``billfold dev``'s receiver of notifications (see ``notify.LocalReceiver``)."""
    return notify.LocalReceiver(show, forward=notify.HttpSender())


def schema_only(settings: Settings) -> Maintenance:
    """Migrations and the audit without the rest (``billfold db``, ``billfold verify``): no
    catalog is read and no schema check runs. ``close()`` releases the connections."""
    database = Database(settings.database_url)
    return Maintenance(
        schema=database, auditor=database, where=database.redacted_url(), closer=database.close
    )

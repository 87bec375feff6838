"""A billfold shop on the memory database, for service tests that run in milliseconds.

``Shop.open()`` wires the service layer as ``bootstrap.build`` does, over a
:class:`~billfold.adapters.memory.MemoryDatabase`, a clock the test moves by hand, the real
``StripeWebhooks`` (deliveries are signed with ``adapters.stripe.signature.sign``) and a small fake
of the Stripe API that answers line items. Nothing is patched: what a test changes, it passes in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from billfold.adapters.catalog_toml import parse_catalog
from billfold.adapters.memory import MemoryDatabase
from billfold.adapters.stripe import signature
from billfold.adapters.stripe.webhooks import StripeWebhooks
from billfold.domain import errors
from billfold.domain import facts as f
from billfold.domain.catalog import Catalog
from billfold.domain.checkout import CheckoutRequest, CreatedSession, RetrievedSession
from billfold.domain.facts import RefundInfo
from billfold.domain.orders import LineItem, OrderRecord, OrderStatus
from billfold.domain.records import EventRecord, GrantRecord, InboundEvent, TransactionRecord
from billfold.service.attention import Attention
from billfold.service.handlers import Applied, EventHandlers, Fetched, Needs
from billfold.service.inbox import Inbox, Outcome, WebhookReceipt
from billfold.service.ledger import Ledger
from billfold.service.orders.desk import OrderDesk
from billfold.service.orders.fulfilment import Fulfilment
from billfold.service.orders.reversals import Reversals
from billfold.service.ports import StripeGateway, UnitOfWork
from billfold.service.subscriptions import SubscriptionBook
from billfold.service.views import Views

SECRET: Final = "whsec_unit_test"
T0: Final = 1_800_000_000
HOUR: Final = 3_600

CATALOG: Final = """
[policy]
refund = "floor"

[units.credits]

[units.usd]
decimals = 2

[packages.starter]
title = "Starter Pack"
currency = "usd"
price = 499
stripe_price_id = "price_starter"
grants = [{ unit = "credits", amount = 500 }]

[packages.popular]
title = "Popular Pack"
currency = "usd"
price = 1499
grants = [{ unit = "credits", amount = 1500 }]

[packages.professional]
title = "Professional Pack"
currency = "usd"
price = 2999
grants = [
  { unit = "credits", amount = 3500 },
  { unit = "credits", amount = 500, priority = 10, expires_in_days = 90, kind = "bonus" },
]

[packages.trusted]
title = "Trusted Pack"
currency = "usd"
price = 999
refund_policy = "debt"
grants = [{ unit = "credits", amount = 1000 }]

[packages.budget]
title = "Budget top-up"
currency = "usd"
custom_amount = { min = 500, max = 100000 }
grants = [{ unit = "usd", amount = "paid" }]
"""
"""The bundled example's packages, a price id on the starter pack, and a pack refunded as debt."""


@cache
def catalog() -> Catalog:
    return parse_catalog(CATALOG, source="unit-catalog.toml")


class ManualClock:
    """billfold's clock, moved by the test. (Webhook signatures are checked against wall time.)"""

    def __init__(self, start: int = T0) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


class FakeStripe:
    """The Stripe API as far as the inbox and the order desk use it: a session's line items."""

    def __init__(self, line_items: Mapping[str, Sequence[LineItem]] | None = None) -> None:
        self.line_items: dict[str, list[LineItem]] = {
            k: list(v) for k, v in (line_items or {}).items()
        }
        self.refunds: dict[str, list[RefundInfo]] = {}
        self.asked: list[str] = []
        """Session (or charge) ids whose line items (or refunds) were read, in order."""

    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        self.asked.append(session_id)
        if session_id not in self.line_items:
            raise errors.NotFound(f"No such checkout session: {session_id!r}")
        return list(self.line_items[session_id])

    def retrieve_checkout_session(self, session_id: str) -> RetrievedSession:
        raise errors.StripeUnavailable("this fake answers line items only")

    def create_checkout_session(
        self, request: CheckoutRequest, *, idempotency_key: str | None = None
    ) -> CreatedSession:
        raise errors.StripeUnavailable("this fake answers line items only")

    def list_events(self, *, created_gte: int, types: Sequence[str]) -> Iterator[InboundEvent]:
        return iter(())

    def list_refunds(self, charge_id: str) -> list[RefundInfo]:
        self.asked.append(charge_id)
        return list(self.refunds.get(charge_id, []))


def line_item(price_id: str | None, amount: int = 499, *, quantity: int = 1) -> LineItem:
    return LineItem(price_id=price_id, quantity=quantity, amount_total=amount, currency="usd")


class FlakyHandlers(EventHandlers):
    """The real handlers, except that the next ``failures`` applications raise."""

    def __init__(
        self, fulfilment: Fulfilment, reversals: Reversals, book: SubscriptionBook
    ) -> None:
        super().__init__(fulfilment, reversals, book)
        self.failures = 0

    def apply(
        self,
        uow: UnitOfWork,
        fact: f.Fact,
        event_id: str,
        now: int,
        fetched: Fetched,
    ) -> Applied | Needs:
        if self.failures > 0:
            self.failures -= 1
            # Write first, then fail: the failure must roll these writes back.
            uow.accounts.upsert("written_before_the_failure", now=now)
            raise RuntimeError("the handler broke")
        return super().apply(uow, fact, event_id, now, fetched)


@dataclass
class Shop:
    """billfold's service layer over one memory database."""

    db: MemoryDatabase
    clock: ManualClock
    stripe: FakeStripe | None
    inbox: Inbox
    handlers: FlakyHandlers
    fulfilment: Fulfilment
    ledger: Ledger
    views: Views
    delivered: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, *, stripe: FakeStripe | None = None, max_attempts: int = 3) -> Shop:
        db = MemoryDatabase()
        clock = ManualClock()
        cat = catalog()
        units = frozenset(u.name for u in cat.units)
        reversals = Reversals(cat, units=units)
        fulfilment = Fulfilment(cat, reversals, units=units)
        handlers = FlakyHandlers(
            fulfilment, reversals, SubscriptionBook(cat, fulfilment, units=units)
        )
        inbox = Inbox(
            uow_factory=db.uow,
            events=StripeWebhooks([SECRET]),
            handlers=handlers,
            stripe=stripe,
            clock=clock,
            max_attempts=max_attempts,
            backoff_base=1.0,
            lease_seconds=60,
        )
        return cls(
            db=db,
            clock=clock,
            stripe=stripe,
            inbox=inbox,
            handlers=handlers,
            fulfilment=fulfilment,
            ledger=Ledger(db.uow, clock, units=units),
            views=Views(db.uow, cat, clock),
        )

    def desk(self, stripe: StripeGateway | None = None) -> OrderDesk:
        return OrderDesk(
            uow_factory=self.db.uow, fulfilment=self.fulfilment, stripe=stripe, clock=self.clock
        )

    def attention(self, stripe: StripeGateway | None = None) -> Attention:
        return Attention(
            uow_factory=self.db.uow,
            clock=self.clock,
            views=self.views,
            inbox=self.inbox,
            desk=self.desk(stripe),
        )

    # --- Stripe's side ---

    def deliver(self, event: Mapping[str, Any]) -> WebhookReceipt:
        """POST the event to the webhook, signed as Stripe signs it."""
        body = json.dumps(event, indent=2).encode()
        self.delivered.append(str(event["id"]))
        return self.inbox.receive_webhook(body, signature.sign(body, SECRET))

    def run_worker(self) -> list[Outcome]:
        """One pass of ``billfold worker``: claim what is due, process it."""
        return self.inbox.process_claimed(self.inbox.claim("worker-1", 100))

    # --- what the books say ---

    def balances(self, account_id: str) -> dict[str, int]:
        """What the account can spend, per unit it holds a balance in."""
        return {u: v.available for u, v in self.ledger.balances(account_id).items()}

    def event(self, event_id: str) -> EventRecord:
        with self.db.uow() as uow:
            record = uow.inbox.get(event_id)
        assert record is not None, f"{event_id} is not in the inbox"
        return record

    def status(self, event_id: str) -> str:
        return self.event(event_id).status

    def orders(self, status: OrderStatus | None = None) -> list[OrderRecord]:
        return list(self.views.orders(status=status, limit=100).data)

    def order(self) -> OrderRecord:
        """The one order there is."""
        (only,) = self.orders()
        return only

    def grants(self, account_id: str) -> list[GrantRecord]:
        return list(
            self.views.grants(
                account_id, must_exist=False, limit=100, starting_after=None, live_only=False
            ).data
        )

    def history(self, account_id: str) -> list[TransactionRecord]:
        return list(
            self.views.transactions(
                account_id, must_exist=False, limit=100, starting_after=None
            ).data
        )

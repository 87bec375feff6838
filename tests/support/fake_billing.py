"""Stripe's subscriptions API as a test double: what Stripe says *now* about subscriptions and
invoices, kept as the raw objects the builders make and read through billfold's own translator
(as the SDK adapter reads what the API answers)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from billfold.adapters.stripe import translate
from billfold.domain import errors, facts
from billfold.domain.catalog import Plan
from tests.support.memory import FakeStripe

Obj = dict[str, Any]


class FakeStripeBilling(FakeStripe):
    """A fake Stripe that also answers the subscriptions port. Tests put the current objects in
    ``subscriptions`` and ``invoices`` (``remember``); a re-fetch translates them as of ``clock()``."""

    def __init__(self, clock: Callable[[], int]) -> None:
        super().__init__()
        self.clock = clock
        self.subscriptions: dict[str, Obj] = {}
        self.invoices: dict[str, Obj] = {}
        self.invoice_intents: dict[str, list[str]] = {}
        self.price_keys: dict[str, str | None] = {}
        self.calls: list[str] = []
        self.down = False

    # --- test setup ------------------------------------------------------------------------------

    def remember(self, *events_or_objects: Mapping[str, Any]) -> None:
        """Make these objects (or the objects of these events) what Stripe says now."""
        for given in events_or_objects:
            obj = given["data"]["object"] if given.get("object") == "event" else given
            obj = copy.deepcopy(dict(obj))
            if obj.get("object") == "subscription":
                self.subscriptions[obj["id"]] = obj
            elif obj.get("object") == "invoice":
                self.invoices[obj["id"]] = obj

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.down:
            raise errors.StripeUnavailable("Stripe is unreachable (the test says so)")

    # --- the StripeSubscriptions port --------------------------------------------------------------

    def retrieve_subscription(self, subscription_id: str) -> facts.SubscriptionChanged:
        self._check(f"retrieve_subscription {subscription_id}")
        found = self.subscriptions.get(subscription_id)
        if found is None:
            raise errors.NotFound(f"No such subscription: {subscription_id!r}")
        return self._state(found)

    def list_subscriptions(self, customer_id: str) -> list[facts.SubscriptionChanged]:
        self._check(f"list_subscriptions {customer_id}")
        return [self._state(s) for s in self.subscriptions.values() if s["customer"] == customer_id]

    def list_paid_invoices(self, subscription_id: str, *, limit: int) -> list[facts.InvoicePaid]:
        self._check(f"list_paid_invoices {subscription_id}")
        out = []
        for obj in reversed(list(self.invoices.values())):  # newest first, as Stripe lists
            fact = translate.invoice_fact(obj, event_created=self.clock())
            if (
                isinstance(fact, facts.InvoicePaid)
                and fact.paid
                and fact.subscription_id == subscription_id
            ):
                out.append(fact)
        return out[:limit]

    def invoice_payment_intents(self, invoice_id: str) -> list[str]:
        self._check(f"invoice_payment_intents {invoice_id}")
        return list(self.invoice_intents.get(invoice_id, []))

    def price_lookup_keys(self, price_ids: Sequence[str]) -> dict[str, str | None]:
        self._check(f"price_lookup_keys {','.join(price_ids)}")
        return {price_id: self.price_keys.get(price_id) for price_id in price_ids}

    def plan_price(self, plan: Plan) -> str:
        return plan.stripe_price_ids[0] if plan.stripe_price_ids else f"price_{plan.id}"

    def change_plan(
        self, subscription_id: str, *, item_id: str, price_id: str, proration: str
    ) -> facts.SubscriptionChanged:
        self._check(f"change_plan {subscription_id} {price_id} {proration}")
        obj = self.subscriptions[subscription_id]
        for item in obj["items"]["data"]:
            if item["id"] == item_id:
                item["price"]["id"] = price_id
                item["plan"]["id"] = price_id
        return self._state(obj)

    def cancel(self, subscription_id: str, *, at_period_end: bool) -> facts.SubscriptionChanged:
        self._check(f"cancel {subscription_id} at_period_end={at_period_end}")
        obj = self.subscriptions[subscription_id]
        if at_period_end:
            obj["cancel_at_period_end"] = True
        else:
            obj.update(status="canceled", canceled_at=self.clock(), ended_at=self.clock())
        return self._state(obj)

    def portal_url(self, customer_id: str, *, return_url: str | None) -> str:
        self._check(f"portal_url {customer_id}")
        return f"https://billing.stripe.test/p/session_{customer_id}"

    def retrieve_invoice(self, invoice_id: str) -> facts.InvoicePaid:
        self._check(f"retrieve_invoice {invoice_id}")
        fact = translate.invoice_fact(self.invoices[invoice_id], event_created=self.clock())
        assert isinstance(fact, facts.InvoicePaid)
        return fact

    def list_events(self, *, created_gte: int, types: Sequence[str]) -> Iterator[Any]:
        return iter(())

    def _state(self, obj: Mapping[str, Any]) -> facts.SubscriptionChanged:
        fact = translate.subscription_fact(obj, event_created=self.clock())
        assert isinstance(fact, facts.SubscriptionChanged), fact
        return fact

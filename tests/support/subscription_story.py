"""One customer's subscription as Stripe tells it: the events of its life, with coherent ids,
periods and times, in either payload shape, built from Stripe's own example objects.

Period ``k`` runs from ``T0 + k * MONTH`` to ``T0 + (k + 1) * MONTH``. Every event is stamped with
the time it happens in the story (``at``), so "in order" is the order of ``created``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from billfold.bootstrap import Services
from tests.builders import stripe_events as se

Obj = dict[str, Any]

T0 = 1_800_000_000
MONTH = se.MONTH
DAY = se.DAY

CATALOG = """
[policy]
refund = "floor"

[units.credits]

[units.usd]
decimals = 2

[packages.pack]
title = "Credit Pack"
currency = "usd"
price = 999
grants = [{ unit = "credits", amount = 500 }]

[plans.free]
title = "Free"
default = true
features = { api = false, export = false }
limits = { seats = 1, projects = 3 }

[plans.pro]
title = "Pro"
stripe_price_ids = ["price_pro", "price_pro_yearly"]
features = { api = true, export = false }
limits = { seats = 5, projects = "unlimited" }
allowance = [{ unit = "credits", amount = 1000 }]
grace_period_days = 3
refund_policy = "debt"

[plans.elite]
title = "Elite"
stripe_price_ids = ["price_elite"]
features = { api = true, export = true }
limits = { seats = 50, projects = "unlimited" }
allowance = [{ unit = "credits", amount = 5000 }]
grace_period_days = 7

[plans.budget]
title = "Budget top-up"
rank = 0
stripe_price_ids = ["price_budget"]
features = { api = false, export = false }
limits = { seats = 1, projects = 3 }
allowance = [{ unit = "usd", amount = "paid" }]

[plans.saver]
title = "Saver"
rank = 1
stripe_price_ids = ["price_saver"]
features = { api = true, export = false }
limits = { seats = 2, projects = 10 }
allowance = [{ unit = "credits", amount = 100, rollover = 40 }]
"""

PRICES = {"pro": "price_pro", "elite": "price_elite", "budget": "price_budget"}
AMOUNTS = {"price_pro": 1900, "price_elite": 4900, "price_budget": 2500, "price_saver": 500}


def start(k: int) -> int:
    return T0 + k * MONTH


@dataclass
class Story:
    """``account``'s subscription ``sub`` (customer ``customer``), told as Stripe's events."""

    account: str
    legacy: bool = False
    sub: str = field(default="")
    customer: str = field(default="")
    item: str = field(default="")
    invoices: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = self.account.replace("_", "")
        self.sub = self.sub or f"sub_{tag}"
        self.customer = self.customer or f"cus_{tag}"
        self.item = self.item or f"si_{tag}"

    # --- state ------------------------------------------------------------------------------------

    def subscription(
        self,
        *,
        status: str = "active",
        price: str = "price_pro",
        period: int = 0,
        **fields: Any,
    ) -> Obj:
        """The subscription object as Stripe would show it."""
        item = se.subscription_item(
            subscription_id=self.sub,
            price_id=price,
            current_period_start=start(period),
            current_period_end=start(period + 1),
            item_id=self.item,
            legacy=self.legacy,
        )
        return se.subscription(
            subscription_id=self.sub,
            customer=self.customer,
            status=status,
            items=[item],
            current_period_start=start(period),
            current_period_end=start(period + 1),
            metadata={"billfold_account": self.account},
            legacy=self.legacy,
            **fields,
        )

    def state(
        self,
        type_: str,
        at: int,
        *,
        status: str = "active",
        price: str = "price_pro",
        period: int = 0,
        **fields: Any,
    ) -> Obj:
        """``customer.subscription.<type_>`` at time ``at``."""
        if type_ == "deleted":
            status = "canceled"
            fields.setdefault("canceled_at", at)
            fields.setdefault("ended_at", at)
        elif status != "canceled":
            fields.setdefault("canceled_at", None)
            fields.setdefault("ended_at", None)
        obj = self.subscription(status=status, price=price, period=period, **fields)
        return se.any_event(
            f"customer.subscription.{type_}",
            obj,
            created=at,
            api_version=se.LEGACY_API_VERSION if self.legacy else se.API_VERSION,
        )

    # --- money ------------------------------------------------------------------------------------

    def invoice(
        self,
        name: str,
        *,
        period: int = 0,
        price: str = "price_pro",
        reason: str = "subscription_cycle",
        status: str = "paid",
        amount: int | None = None,
        lines: Sequence[Obj] | None = None,
        intent: str | None = None,
    ) -> Obj:
        """Invoice ``name`` of this story (the same name is the same invoice)."""
        invoice_id = self.invoices.setdefault(name, f"in_{self.account.replace('_', '')}{name}")
        paid = AMOUNTS.get(price, 1900) if amount is None else amount
        if lines is None:
            lines = [
                se.invoice_line(
                    invoice_id=invoice_id,
                    subscription=self.sub,
                    price_id=price,
                    amount=paid if status == "paid" else AMOUNTS.get(price, 1900),
                    period_start=start(period),
                    period_end=start(period + 1),
                    legacy=self.legacy,
                    line_id=f"il_{invoice_id[3:]}",
                    subscription_item=self.item,
                )
            ]
        return se.invoice(
            invoice_id=invoice_id,
            subscription=self.sub,
            customer=self.customer,
            period_start=start(period),
            period_end=start(period + 1),
            amount_paid=paid,
            billing_reason=reason,
            status=status,
            lines=lines,
            subscription_metadata={"billfold_account": self.account},
            payment_intent=intent or f"pi_{invoice_id[3:]}",
            include_payments=not self.legacy,
            legacy=self.legacy,
        )

    def paid(
        self,
        name: str,
        at: int,
        *,
        type_: str = "invoice.paid",
        **kwargs: Any,
    ) -> Obj:
        """``invoice.paid`` (or ``invoice.payment_succeeded``) of invoice ``name`` at ``at``."""
        return self._invoice_event(type_, self.invoice(name, **kwargs), at)

    def failed(self, name: str, at: int, **kwargs: Any) -> Obj:
        """``invoice.payment_failed`` of invoice ``name`` at ``at`` (Stripe retries later)."""
        obj = self.invoice(name, status="open", **kwargs)
        obj["next_payment_attempt"] = at + 3 * DAY
        obj["attempt_count"] = 1
        return self._invoice_event("invoice.payment_failed", obj, at)

    def upgrade_invoice(self, name: str, *, period: int, at_fraction: tuple[int, int]) -> Obj:
        """The invoice of an upgrade from Pro to Elite billed at once, ``at_fraction`` of the way
        through ``period``: a credit for unused Pro time and a charge for the rest on Elite."""
        invoice_id = self.invoices.setdefault(name, f"in_{self.account.replace('_', '')}{name}")
        num, den = at_fraction
        switch = start(period) + MONTH * num // den
        end = start(period + 1)
        remaining = end - switch
        credit = -(AMOUNTS["price_pro"] * remaining // MONTH)
        charge = AMOUNTS["price_elite"] * remaining // MONTH
        lines = [
            se.invoice_line(
                invoice_id=invoice_id,
                subscription=self.sub,
                price_id="price_pro",
                amount=credit,
                period_start=switch,
                period_end=end,
                proration=True,
                legacy=self.legacy,
                line_id=f"il_{invoice_id[3:]}c",
                subscription_item=self.item,
            ),
            se.invoice_line(
                invoice_id=invoice_id,
                subscription=self.sub,
                price_id="price_elite",
                amount=charge,
                period_start=switch,
                period_end=end,
                proration=True,
                legacy=self.legacy,
                line_id=f"il_{invoice_id[3:]}u",
                subscription_item=self.item,
            ),
        ]
        return self.invoice(
            name,
            period=period,
            price="price_elite",
            reason="subscription_update",
            amount=credit + charge,
            lines=lines,
        )

    def _invoice_event(self, type_: str, obj: Obj, at: int) -> Obj:
        return se.any_event(
            type_,
            obj,
            created=at,
            api_version=se.LEGACY_API_VERSION if self.legacy else se.API_VERSION,
        )

    def checkout_completed(self, at: int, *, invoice: str | None = None) -> Obj:
        session = se.checkout_session(
            session_id=f"cs_test_{self.account.replace('_', '')}",
            mode="subscription",
            amount_total=AMOUNTS["price_pro"],
            metadata={"billfold_account": self.account, "billfold_plan": "pro"},
            client_reference_id=self.account,
            customer=self.customer,
            payment_intent=None,
            subscription=self.sub,
            invoice=self.invoices.get(invoice) if invoice else None,
            created=at,
        )
        return se.any_event("checkout.session.completed", session, created=at)


def drain(services: Services, *, rounds: int = 20) -> None:
    """Run the worker until no event is due (events that need Stripe were left for it)."""
    for _ in range(rounds):
        claimed = services.inbox.claim("test-worker", 100)
        if not claimed:
            return
        for event_id in claimed:
            services.inbox.process(event_id)
    raise AssertionError("the inbox did not drain")

"""Builders for the billing tests: prices, customers on test clocks, subscriptions, the events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import stripe
    from tests.simulator.conftest import Receiver, Sim

DAY = 24 * 60 * 60
T0 = 1_893_456_000  # 2030-01-01T00:00:00Z: far from the wall clock, so clock time is visible
FEB_1 = 1_896_134_400  # 2030-02-01
MAR_1 = 1_898_553_600  # 2030-03-01


def price(
    sim: Sim,
    amount: int = 1900,
    *,
    name: str = "Pro",
    interval: str = "month",
    count: int = 1,
    product: str | None = None,
    **extra: Any,
) -> stripe.Price:
    params: dict[str, Any] = {
        "currency": "usd",
        "unit_amount": amount,
        "recurring": {"interval": interval, "interval_count": count},
        **extra,
    }
    if product is None:
        params["product_data"] = {"name": name}
    else:
        params["product"] = product
    return sim.stripe.v1.prices.create(params=params)


def clock(sim: Sim, frozen_time: int = T0) -> stripe.test_helpers.TestClock:
    return sim.stripe.v1.test_helpers.test_clocks.create(
        params={"frozen_time": frozen_time, "name": "billing test"}
    )


def customer(
    sim: Sim, clock_id: str | None = None, card: str | None = "pm_card_visa", **extra: Any
) -> stripe.Customer:
    params: dict[str, Any] = {"email": "ada@example.com", "name": "Ada", **extra}
    if clock_id is not None:
        params["test_clock"] = clock_id
    if card is not None:
        params["payment_method"] = card
        params["invoice_settings"] = {"default_payment_method": card}
    return sim.stripe.v1.customers.create(params=params)


def subscribe(sim: Sim, customer_id: str, price_id: str, **extra: Any) -> stripe.Subscription:
    return sim.stripe.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": price_id}],
            "metadata": {"billfold_account": "user_1"},
            **extra,
        }
    )


def on_clock(sim: Sim, amount: int = 1900, **extra: Any) -> tuple[str, str, stripe.Subscription]:
    """A clock at T0, a customer with a Visa on it, and a monthly subscription: their ids."""
    clock_id = clock(sim).id
    customer_id = customer(sim, clock_id).id
    subscription = subscribe(sim, customer_id, price(sim, amount).id, **extra)
    return clock_id, customer_id, subscription


def of(receiver: Receiver, *types: str, since: int = 0) -> list[dict[str, Any]]:
    """The events of ``types`` (all when none) received after the first ``since`` events."""
    return [e for e in receiver.events[since:] if not types or e["type"] in types]


def types_of(receiver: Receiver, since: int = 0, *, prefixes: tuple[str, ...] = ()) -> list[str]:
    return [
        e["type"] for e in receiver.events[since:] if not prefixes or e["type"].startswith(prefixes)
    ]

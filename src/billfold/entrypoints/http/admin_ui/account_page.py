"""The account page of the admin view, from the API's answers: what ``AdminView.accounts`` loads
for one account and how each section shows it.

    balances       per unit: available, held, debt, and the low-balance alert state
    lots           every lot with something left (``balance/explain`` per unit): its origin
                   (order, invoice, manual), amounts, expiry and the Stripe objects behind it
    holds          ``/holds``, newest first
    history        ``/transactions``, a page at a time (``after=`` a transaction id: "Older")
    notifications  ``/v1/notifications?account_id=``: what was sent to the application
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from billfold.domain import money

PAGE = 20
ORIGINS = {
    "order": "Order",
    "invoice": "Invoice",
    "manual": "Manual",
    "adjustment": "Adjustment",
}
STRIPE_IDS = ("checkout_session", "payment_intent", "invoice", "charge")

Fetch = Callable[..., Awaitable[Any]]


async def load(
    fetch: Fetch, account_id: str, units: Sequence[str], *, after: str | None
) -> dict[str, Any]:
    """Everything the page shows of ``account_id``, fetched at once (ApiError as the API says:
    404 for an account nothing has referenced)."""
    path = f"/v1/accounts/{quote(account_id, safe='')}"
    history: dict[str, str | int] = {"limit": PAGE}
    if after:
        history["starting_after"] = after[:255]
    found = await asyncio.gather(
        fetch("GET", path),
        fetch("GET", f"{path}/transactions", params=history),
        fetch("GET", f"{path}/entitlements"),
        fetch("GET", f"{path}/subscriptions", params={"limit": PAGE}),
        fetch("GET", f"{path}/holds", params={"limit": PAGE}),
        fetch("GET", "/v1/notifications", params={"account_id": account_id, "limit": PAGE}),
        *(fetch("GET", f"{path}/balance/explain", params={"unit": u}) for u in units),
    )
    account, transactions, entitlements, subscriptions, holds, notifications = found[:6]
    return {
        "account": account,
        "transactions": transactions,
        "entitlements": entitlements,
        "subscriptions": subscriptions,
        "holds": holds,
        "notifications": notifications,
        "explanations": found[6:],
    }


class Shown:
    """Amounts as the catalog writes them (``1,250 credits``, ``$12.34``)."""

    def __init__(self, decimals: Mapping[str, int]) -> None:
        self.decimals = decimals

    def __call__(self, amount: int, unit: str) -> str:
        return money.format_units(amount, unit, self.decimals.get(unit, 0))

    def signed(self, amount: int, unit: str) -> str:
        return money.format_signed_units(amount, unit, self.decimals.get(unit, 0))


def balances(account: Mapping[str, Any], show: Shown) -> list[dict[str, Any]]:
    thresholds = account.get("low_balance") or {}
    alerts = account.get("low_balance_alerts") or {}
    rows = []
    for unit, amount in account["balances"].items():
        threshold = thresholds.get(unit)
        held = account["held"].get(unit, 0)
        debt = account["debt"].get(unit, 0)
        rows.append(
            {
                "unit": unit,
                "available": show(amount, unit),
                "held": show(held, unit),
                "debt": show(debt, unit),
                "has_held": bool(held),
                "has_debt": bool(debt),
                "threshold": None if threshold is None else show(threshold, unit),
                "low": bool(alerts.get(unit)),
            }
        )
    return rows


def lots(explanations: Sequence[Mapping[str, Any]], show: Shown) -> list[dict[str, Any]]:
    rows = []
    for found in explanations:
        unit = found["unit"]
        for lot in found["lots"]:
            origin = lot["origin"]
            stripe = origin.get("stripe") or {}
            rows.append(
                {
                    **lot,
                    "unit": unit,
                    "origin_type": origin["type"],
                    "origin_text": ORIGINS.get(origin["type"], origin["type"]),
                    "order_id": origin.get("order_id"),
                    "stripe_ids": [(k, stripe[k]) for k in STRIPE_IDS if stripe.get(k)],
                    "amount_text": show(lot["amount"], unit),
                    "remaining_text": show(lot["remaining"], unit),
                    "held_text": show(lot["held"], unit) if lot["held"] else None,
                }
            )
    return rows


def holds(page: Mapping[str, Any], show: Shown) -> list[dict[str, Any]]:
    return [
        {
            **h,
            "amount_text": show(h["amount"], h["unit"]),
            "captured_text": show(h["captured"], h["unit"]) if h["captured"] else None,
        }
        for h in page["data"]
    ]


def history(page: Mapping[str, Any], show: Shown) -> list[dict[str, Any]]:
    return [
        {**x, "net_text": show.signed(x["net"], x["unit"]) if x.get("unit") else str(x["net"])}
        for x in page["data"]
    ]


def match(account: Mapping[str, Any], show: Shown) -> dict[str, Any]:
    """One row of a search with several matches."""
    held = [u for u, v in account["balances"].items() if v or account["debt"].get(u)]
    return {
        **account,
        "balance_text": ", ".join(show(account["balances"][u], u) for u in held) or "—",
    }

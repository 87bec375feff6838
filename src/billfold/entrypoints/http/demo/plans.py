"""The demo shop's Plans section, from billfold's answers: the catalog's plans, the account's
entitlements (where its plan comes from, and until when), its subscriptions, its allowances.

Pure functions of the API's JSON: what the page says and which buttons it offers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from billfold.domain import money

LIVE = ("active", "trialing", "past_due", "unpaid", "paused", "incomplete")
CHANGEABLE = ("active", "trialing")
CANCELABLE = ("active", "trialing", "past_due")

Show = Callable[[int, str], str]


def day(timestamp: int | None) -> str:
    if timestamp is None:
        return "—"
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return f"{moment.day} {moment:%b %Y}"


def moment(timestamp: int | None) -> str:
    if timestamp is None:
        return "—"
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return f"{when:%a} {when.day} {when:%b %Y, %H:%M} UTC"


def short(timestamp: int) -> str:
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return f"{when.day} {when:%b %Y, %H:%M} UTC"


def label(name: str) -> str:
    """``max_positions`` -> ``Max positions``."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def plan_title(plans: Mapping[str, Mapping[str, Any]], plan_id: str | None) -> str:
    plan = plans.get(plan_id or "")
    if plan is None:
        return plan_id or "no plan"
    return str(plan.get("title") or plan["id"])


def _price(plan: Mapping[str, Any]) -> str | None:
    if plan.get("price") is None or not plan.get("currency"):
        return None
    every = plan.get("interval") or "period"
    return f"{money.format_money(int(plan['price']), str(plan['currency']))} / {every}"


def allowance_lines(plan: Mapping[str, Any], show: Show) -> list[str]:
    lines = []
    every = plan.get("interval") or "period"
    for grant in plan.get("allowance") or []:
        if grant["amount"] == "paid":
            lines.append(f"What you pay, into your {str(grant['unit']).upper()} wallet")
        else:
            lines.append(f"{show(int(grant['amount']), grant['unit'])} every {every}")
    return lines


def features(entitled: Mapping[str, bool]) -> list[dict[str, Any]]:
    return [{"name": name, "label": label(name), "on": bool(on)} for name, on in entitled.items()]


def limits(entitled: Mapping[str, int | None]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "label": label(name),
            "value": "Unlimited" if value is None else f"{value:,}",
        }
        for name, value in entitled.items()
    ]


def current_subscription(
    entitlements: Mapping[str, Any], subscriptions: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The subscription the page acts on: the one that decides the plan, else the newest live
    one, else the newest."""
    by_id = {s["id"]: s for s in subscriptions}
    decided = by_id.get(entitlements.get("subscription_id") or "")
    if decided is not None and decided.get("status") in LIVE:
        return decided
    live = [s for s in subscriptions if s.get("status") in LIVE]
    if live:
        return live[0]
    return decided or (subscriptions[0] if subscriptions else None)


def standing(
    entitlements: Mapping[str, Any],
    subscription: Mapping[str, Any] | None,
    plans: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """What the plan banner says: ``tone`` (ok, warn, bad, info), a headline and a sentence."""
    plan = plan_title(plans, entitlements.get("plan"))
    source = entitlements.get("source")
    status = entitlements.get("status")
    if source == "subscription":
        sub = subscription or {}
        ends = sub.get("ended_at") or sub.get("cancel_at")
        if ends is None and sub.get("cancel_at_period_end"):
            ends = sub.get("current_period_end")
        if ends is not None:
            return {
                "tone": "info",
                "headline": f"{plan}, ending on {day(ends)}",
                "text": f"Your subscription is canceled: {plan} stays until {moment(ends)}, then "
                "you move to the free plan. Credits you already have keep their dates.",
            }
        if status == "trialing":
            return {
                "tone": "ok",
                "headline": f"{plan} trial",
                "text": f"Your trial runs until {moment(entitlements.get('current_period_end'))}.",
            }
        return {
            "tone": "ok",
            "headline": f"{plan}, active",
            "text": f"Renews on {moment(entitlements.get('current_period_end'))}.",
        }
    if source == "grace":
        return {
            "tone": "warn",
            "headline": f"Payment failed: {plan} until {day(entitlements.get('grace_until'))}",
            "text": "Your last renewal payment failed and Stripe is retrying it. You keep "
            f"{plan} during the grace period, until {moment(entitlements.get('grace_until'))}; "
            "pay with another card to stay on it.",
        }
    lost = plan_title(plans, (subscription or {}).get("plan"))
    if status in ("past_due", "unpaid") and subscription is not None:
        ended = entitlements.get("grace_until")
        since = f" on {moment(ended)}" if ended else ""
        return {
            "tone": "bad",
            "headline": f"You're on {plan}: your {lost} payment failed",
            "text": f"The grace period ended{since}. Pay the open invoice with another card "
            f"and {lost} comes back at once.",
        }
    if status == "canceled" and subscription is not None:
        ended = subscription.get("ended_at")
        return {
            "tone": "info",
            "headline": f"You're on {plan}",
            "text": f"Your {lost} subscription ended on {moment(ended)}.",
        }
    return {
        "tone": "info",
        "headline": f"You're on {plan}",
        "text": "Subscribe to a plan for more features and a monthly credit allowance.",
    }


def plan_cards(
    catalog_plans: Sequence[Mapping[str, Any]],
    entitlements: Mapping[str, Any],
    subscription: Mapping[str, Any] | None,
    show: Show,
) -> list[dict[str, Any]]:
    """One card per plan, with the one button that makes sense for it now."""
    sub_status = (subscription or {}).get("status")
    has_live = sub_status in LIVE
    sub_plan = (subscription or {}).get("plan") if has_live else None
    current_rank = next((p["rank"] for p in catalog_plans if p["id"] == sub_plan), None)
    cards = []
    for plan in catalog_plans:
        card: dict[str, Any] = {
            "id": plan["id"],
            "title": plan.get("title") or plan["id"],
            "price": _price(plan) or ("Always free" if plan.get("default") else "—"),
            "features": features(plan.get("features") or {}),
            "limits": limits(plan.get("limits") or {}),
            "allowance": allowance_lines(plan, show),
            "current": plan["id"] == entitlements.get("plan"),
            "subscribed": plan["id"] == sub_plan,
            "action": None,
            "button": None,
        }
        if plan.get("default"):
            pass  # every account has it; a subscription ends to move to it
        elif not has_live:
            card.update(action="subscribe", button=f"Subscribe to {card['title']}")
        elif plan["id"] != sub_plan and sub_status in CHANGEABLE:
            upgrade = current_rank is None or plan["rank"] > current_rank
            card.update(
                action="change",
                button=f"{'Upgrade' if upgrade else 'Switch'} to {card['title']}",
                proration="always_invoice" if upgrade else "create_prorations",
            )
        cards.append(card)
    return cards


def allowances(grants: Sequence[Mapping[str, Any]], show: Show) -> list[dict[str, Any]]:
    """The live allowance grants, soonest expiry first."""
    found = [g for g in grants if g.get("kind") == "allowance" and g.get("remaining", 0) > 0]
    found.sort(key=lambda g: (g.get("expires_at") is None, g.get("expires_at") or 0, g["id"]))
    return [
        {
            "id": g["id"],
            "remaining": show(int(g["remaining"]), g["unit"]),
            "amount": show(int(g["amount"]), g["unit"]),
            "expires": f"expires {short(g['expires_at'])}" if g.get("expires_at") else "no expiry",
            "reason": g.get("reason") or "Allowance",
        }
        for g in found
    ]


def actions(subscription: Mapping[str, Any] | None) -> dict[str, bool]:
    sub = subscription or {}
    scheduled = bool(sub.get("cancel_at") or sub.get("cancel_at_period_end"))
    return {
        "can_cancel": sub.get("status") in CANCELABLE and not scheduled,
        "has_subscription": sub.get("status") in LIVE,
    }

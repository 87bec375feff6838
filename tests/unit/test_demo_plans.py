"""The demo shop's Plans section as pure views of the API's answers, and its month arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from billfold.entrypoints.http.demo import plans
from billfold.entrypoints.http.demo.simulator_controls import one_month_after

JAN_31 = 1_896_048_000  # 2030-01-31T00:00:00Z
FEB_28 = 1_898_467_200  # 2030-02-28T00:00:00Z
DEC_15 = 1_923_523_200  # 2030-12-15T00:00:00Z
JAN_15 = 1_926_201_600  # 2031-01-15T00:00:00Z
PLANS = {"free": {"id": "free", "title": "Free"}, "pro": {"id": "pro", "title": "Pro"}}


def test_a_month_after_the_31st_is_the_last_day_of_a_shorter_month() -> None:
    assert one_month_after(JAN_31) == FEB_28
    assert one_month_after(DEC_15) == JAN_15  # across a year


def entitled(**fields: Any) -> dict[str, Any]:
    return {"plan": "pro", "source": "subscription", "status": "active", **fields}


@pytest.mark.parametrize(
    ("found", "sub", "tone", "headline"),
    [
        (entitled(current_period_end=FEB_28), {"status": "active"}, "ok", "Pro, active"),
        (entitled(status="trialing"), {"status": "trialing"}, "ok", "Pro trial"),
        (
            entitled(),
            {"status": "active", "cancel_at": FEB_28},
            "info",
            "Pro, ending on 28 Feb 2030",
        ),
        (
            entitled(),
            {"status": "active", "cancel_at_period_end": True, "current_period_end": FEB_28},
            "info",
            "Pro, ending on 28 Feb 2030",
        ),
        (
            entitled(source="grace", status="past_due", grace_until=FEB_28),
            {"status": "past_due", "plan": "pro"},
            "warn",
            "Payment failed: Pro until 28 Feb 2030",
        ),
        (
            entitled(plan="free", source="default", status="past_due", grace_until=FEB_28),
            {"status": "past_due", "plan": "pro"},
            "bad",
            "You're on Free: your Pro payment failed",
        ),
        (
            entitled(plan="free", source="default", status="canceled"),
            {"status": "canceled", "plan": "pro", "ended_at": JAN_31},
            "info",
            "You're on Free",
        ),
        (entitled(plan="free", source="default", status=None), None, "info", "You're on Free"),
    ],
)
def test_the_plan_banner_says_where_the_plan_comes_from(
    found: dict[str, Any], sub: dict[str, Any] | None, tone: str, headline: str
) -> None:
    said = plans.standing(found, sub, PLANS)
    assert (said["tone"], said["headline"]) == (tone, headline)


def test_the_cards_offer_subscribe_without_a_subscription_and_a_change_with_one() -> None:
    catalog = [
        {"id": "free", "title": "Free", "default": True, "rank": 0},
        {"id": "pro", "title": "Pro", "rank": 1, "price": 1900, "currency": "usd"},
        {"id": "elite", "title": "Elite", "rank": 2, "price": 4900, "currency": "usd"},
    ]

    def show(amount: int, unit: str) -> str:
        return f"{amount} {unit}"

    none = plans.plan_cards(catalog, {"plan": "free"}, None, show)
    assert [c["action"] for c in none] == [None, "subscribe", "subscribe"]
    on_pro = {"id": "sub_1", "status": "active", "plan": "pro"}
    cards = plans.plan_cards(catalog, {"plan": "pro"}, on_pro, show)
    assert [(c["action"], c.get("proration")) for c in cards] == [
        (None, None),
        (None, None),
        ("change", "always_invoice"),
    ]
    on_elite = {"id": "sub_1", "status": "active", "plan": "elite"}
    down = plans.plan_cards(catalog, {"plan": "elite"}, on_elite, show)
    assert down[1]["button"] == "Switch to Pro"
    assert down[1]["proration"] == "create_prorations"
    failing = {"id": "sub_1", "status": "past_due", "plan": "pro"}
    assert [c["action"] for c in plans.plan_cards(catalog, {}, failing, show)] == [None] * 3
    assert plans.actions(failing) == {"can_cancel": True, "has_subscription": True}
    assert plans.actions({"status": "active", "cancel_at": FEB_28})["can_cancel"] is False

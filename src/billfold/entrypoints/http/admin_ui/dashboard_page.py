"""The dashboard page's figures and charts, from the body of ``GET /v1/dashboard``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

from markupsafe import Markup

from billfold.entrypoints.http.admin_ui import charts

OUTCOMES: Final = ("processed", "ignored", "received", "failed", "dead")
KINDS: Final = {"checkout": "checkout", "payment_intent": "payment", "invoice": "invoice"}


def days_of(value: str | None, default: int = 7) -> int:
    """The window asked for in the page's query: 1 to 90 days, else the default."""
    try:
        days = int(value or default)
    except ValueError:
        return default
    return days if 1 <= days <= 90 else default


def age(seconds: int | None) -> str:
    """``100`` -> ``1 min 40 s``; ``None`` -> ``—``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _day(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%b %d")


def _hour(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%H:%M")


def _credits(days: Sequence[Mapping[str, Any]], window: str) -> list[Markup]:
    labels = [_day(d["day"]) for d in days]
    units = [u for u in (days[0]["paid"] if days else {}) if _any_of(days, u)]
    made = [
        charts.stacked_bars(
            f"{unit} granted per day, {window}",
            labels,
            [
                charts.Series("paid", [d["paid"].get(unit, 0) for d in days], "#2f54eb"),
                charts.Series("free", [d["free"].get(unit, 0) for d in days], "#9333ea"),
            ],
            y_title=unit,
            x_title="Day (UTC)",
            name=f"credits-{unit}",
        )
        for unit in units
    ]
    if made:
        return made
    empty = charts.stacked_bars(
        f"Credits granted per day, {window}", labels, [], y_title="", x_title="", name="credits"
    )
    return [empty]


def _any_of(days: Sequence[Mapping[str, Any]], unit: str) -> bool:
    return any(d["paid"].get(unit, 0) or d["free"].get(unit, 0) for d in days)


def _revenue(title: str, rows: Sequence[Mapping[str, Any]], name: str) -> Markup:
    bars = [
        charts.Bar(r["name"], r["amount"], r["currency"], count=r["count"], refunded=r["refunded"])
        for r in rows
    ]
    return charts.horizontal_bars(title, bars, name=name)


def context(body: Mapping[str, Any]) -> dict[str, Any]:
    """What ``dashboard.html`` shows."""
    days = body["days"]
    window = f"last {days} day{'s' if days != 1 else ''}"
    hooks = body["webhooks"]
    per_day, per_hour = hooks["per_day"], hooks["per_hour"]
    purchases = body["purchases_per_day"]
    kinds = [k for k in KINDS if any(s["kind"] == k for d in purchases for s in d["sales"])]
    latency, backlog = body["latency"], body["backlog"]
    return {
        "days": days,
        "window": window,
        "backlog": backlog,
        "backlog_age": age(backlog["oldest_age"]),
        "attention": body["needs_attention"],
        "latency": latency,
        "p50": age(latency["p50"]),
        "p99": age(latency["p99"]),
        "success": charts.percent(hooks["success_rate"]),
        "events_total": sum(hooks[s] for s in OUTCOMES),
        "purchases_total": sum(d["count"] for d in purchases),
        "rate_chart": charts.rate_bars(
            f"Webhook success rate per day, {window}",
            [_day(d["start"]) for d in per_day],
            [d["success_rate"] for d in per_day],
            overall=hooks["success_rate"],
            y_title="success",
            x_title="Day (UTC)",
            name="success-rate",
        ),
        "hourly_chart": charts.stacked_bars(
            "Events per hour by outcome, last 24 hours",
            [_hour(h["start"]) for h in per_hour],
            [charts.Series(s, [h[s] for h in per_hour], charts.COLORS[s]) for s in OUTCOMES],
            y_title="events",
            x_title="Hour (UTC)",
            name="events-per-hour",
        ),
        "purchases_chart": charts.stacked_bars(
            f"Purchases per day, {window}",
            [_day(d["day"]) for d in purchases],
            [
                charts.Series(
                    KINDS[k],
                    [sum(s["count"] for s in d["sales"] if s["kind"] == k) for d in purchases],
                )
                for k in kinds
            ],
            y_title="orders",
            x_title="Day (UTC)",
            name="purchases",
        ),
        "credit_charts": _credits(body["credits_per_day"], window),
        "package_chart": _revenue(
            f"Revenue by package, {window}", body["revenue"]["by_package"], "revenue-package"
        ),
        "plan_chart": _revenue(
            f"Revenue by plan, {window}", body["revenue"]["by_plan"], "revenue-plan"
        ),
    }

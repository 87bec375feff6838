"""GET /v1/dashboard after a scripted run (tests/support/dashboard_story.py): every figure exact,
on SQLite and PostgreSQL; the window's bounds checked."""

from __future__ import annotations

from typing import Any

from tests.conftest import FakeClock
from tests.support import dashboard_story as story
from tests.support.app import admin_headers, running_app

DAY = story.DAY
D0 = story.D0


def _counts(bucket: dict[str, Any]) -> tuple[int, ...]:
    return tuple(bucket[s] for s in ("received", "processed", "ignored", "failed", "dead"))


def test_after_a_scripted_run_every_figure_is_exact(db_url: str) -> None:
    clock = FakeClock()
    with running_app(db_url, clock=clock, **story.SETTINGS) as (client, services):
        story.script(client, services, clock)
        answer = client.get("/v1/dashboard", headers=admin_headers())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    now = story.NOW
    assert (body["object"], body["days"], body["since"], body["until"]) == (
        "dashboard",
        7,
        now - 7 * DAY,
        now,
    )
    hooks = body["webhooks"]
    # (received, processed, ignored, failed, dead): the two purchases and the order needing
    # attention processed, one ignored, one of each of the rest.
    assert _counts(hooks) == (1, 3, 1, 1, 1)
    assert hooks["success_rate"] == 4 / 6
    days = [d["start"] for d in hooks["per_day"]]
    assert days == [D0 - (7 - i) * DAY for i in range(8)]
    per_day = {d["start"]: (_counts(d), d["success_rate"]) for d in hooks["per_day"]}
    assert per_day[D0 - 2 * DAY] == ((0, 1, 0, 0, 0), 1.0)
    assert per_day[D0] == ((1, 2, 1, 1, 1), 3 / 5)
    assert per_day[D0 - DAY] == ((0, 0, 0, 0, 0), None)
    hours = hooks["per_hour"]
    assert len(hours) == 25
    assert hours[-1]["start"] == now - now % 3_600
    busy = {h["start"]: _counts(h) for h in hours if any(_counts(h))}
    assert busy == {story.T: (0, 2, 1, 0, 1), story.T + 3_600: (1, 0, 0, 1, 0)}

    purchases = {d["day"]: d for d in body["purchases_per_day"]}
    assert [d["day"] for d in body["purchases_per_day"]] == days
    assert purchases[D0 - 2 * DAY]["sales"] == [
        {"kind": "checkout", "currency": "usd", "count": 1, "amount": 499}
    ]
    assert purchases[D0]["sales"] == [
        {"kind": "checkout", "currency": "usd", "count": 1, "amount": 2999}
    ]
    assert sum(d["count"] for d in body["purchases_per_day"]) == 2

    credits = {d["day"]: d for d in body["credits_per_day"]}
    assert credits[D0 - 2 * DAY]["paid"] == {"credits": 500, "tokens": 0, "usd": 0}
    assert credits[D0]["paid"] == {"credits": 3500, "tokens": 0, "usd": 0}
    assert credits[D0]["free"] == {"credits": 500, "tokens": 0, "usd": 0}
    assert credits[D0 - DAY]["paid"] == {"credits": 0, "tokens": 0, "usd": 0}

    assert body["revenue"] == {
        "by_package": [
            {"name": "professional", "currency": "usd", "count": 1, "amount": 2999, "refunded": 0},
            {"name": "starter", "currency": "usd", "count": 1, "amount": 499, "refunded": 0},
        ],
        "by_plan": [],
    }
    assert body["latency"] == {"count": 2, "p50": 30, "p99": 120}
    assert body["backlog"] == {"received": 1, "oldest_age": 100, "failed": 1}
    assert body["needs_attention"] == {
        "count": 3,
        "orders": 1,
        "failed_events": 1,
        "dead_events": 1,
    }


def test_a_shorter_window_leaves_older_days_out(db_url: str) -> None:
    clock = FakeClock()
    with running_app(db_url, clock=clock, **story.SETTINGS) as (client, services):
        story.script(client, services, clock)
        body = client.get("/v1/dashboard?days=1", headers=admin_headers()).json()
    assert [d["day"] for d in body["purchases_per_day"]] == [D0 - DAY, D0]  # since: a day ago
    assert body["revenue"]["by_package"] == [
        {"name": "professional", "currency": "usd", "count": 1, "amount": 2999, "refunded": 0}
    ]
    assert body["latency"] == {"count": 1, "p50": 120, "p99": 120}
    assert body["backlog"]["received"] == 1  # the backlog is now, whatever the window


def test_an_empty_database_answers_zeros_and_no_rates(db_url: str) -> None:
    with running_app(db_url, clock=FakeClock()) as (client, _services):
        body = client.get("/v1/dashboard?days=90", headers=admin_headers()).json()
    assert len(body["purchases_per_day"]) == 91
    assert body["webhooks"]["success_rate"] is None
    assert body["latency"] == {"count": 0, "p50": None, "p99": None}
    assert body["backlog"] == {"received": 0, "oldest_age": None, "failed": 0}
    assert body["needs_attention"]["count"] == 0


def test_days_outside_1_to_90_are_refused(db_url: str) -> None:
    with running_app(db_url) as (client, _services):
        for days in ("0", "91", "-1", "seven", "1.5"):
            answer = client.get(f"/v1/dashboard?days={days}", headers=admin_headers())
            assert answer.status_code == 400, days
            assert answer.json()["error"]["param"] == "days"

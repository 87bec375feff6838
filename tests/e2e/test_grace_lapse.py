"""A grace period that ends tells the application: no Stripe event says so (entitlements are
evaluated as of now), so the worker's check writes ``entitlements.updated`` once per grace end,
whatever restarts, and whichever of two workers racing sees it first. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from billfold.entrypoints.worker import Worker
from tests.e2e.test_subscriptions import App, app, at, catalog, entitlements, send
from tests.support.subscription_story import DAY, T0, Story, start

__all__ = ["app", "catalog"]


def lapses(app: App, account: str | None = None) -> list[dict[str, Any]]:
    """The ``entitlements.updated`` a grace period's end wrote, oldest first."""
    rows, more = app[1].notifications.page(
        type_="entitlements.updated", account_id=account, limit=100
    )
    assert not more
    found = [dict(r.data) for r in reversed(rows)]
    return [d for d in found if d.get("reason") == "grace_period_ended"]


def fail_renewal(app: App, story: Story, period: int) -> int:
    """The renewal of ``period`` fails: past_due, the grace clock from then; its grace end."""
    failed_at = start(period) + 100
    at(app, failed_at + 5)
    send(
        app,
        story.failed(str(period), failed_at, period=period),
        story.state("updated", failed_at + 1, status="past_due", period=period),
    )
    return failed_at + 3 * DAY


def subscribed(app: App, story: Story) -> None:
    send(app, story.state("created", T0 + 10), story.paid("0", T0 + 11))


def test_a_lapsed_grace_period_writes_entitlements_updated_once_across_restarts(app: App) -> None:
    story = Story("user_lapse")
    subscribed(app, story)
    grace_end = fail_renewal(app, story, 1)
    worker = Worker(app[1], name="worker:a")
    at(app, grace_end - 1)
    assert worker.notify_grace_lapses() == 0  # still in grace
    assert lapses(app) == []
    at(app, grace_end)
    assert worker.notify_grace_lapses() == 1
    assert worker.notify_grace_lapses() == 0
    at(app, grace_end + DAY)
    assert Worker(app[1], name="worker:restarted").notify_grace_lapses() == 0
    [told] = lapses(app)
    assert told == {
        "account_id": "user_lapse",
        "plan": "free",
        "source": "default",
        "status": "past_due",
        "features": {"api": False, "export": False},
        "limits": {"seats": 1, "projects": 3},
        "current_period_end": None,
        "grace_until": grace_end,
        "previous_plan": "pro",
        "stripe": {"subscription": story.sub},
        "reason": "grace_period_ended",
    }
    assert entitlements(app, "user_lapse")["plan"] == "free"  # what the notification said


def test_a_later_grace_period_that_lapses_again_is_told_again(app: App) -> None:
    story = Story("user_twice")
    subscribed(app, story)
    first_end = fail_renewal(app, story, 1)
    at(app, first_end)
    worker = Worker(app[1], name="worker:a")
    assert worker.notify_grace_lapses() == 1
    # The retry pays; the next renewal fails too, and its grace runs out in turn.
    send(
        app,
        story.paid("1", first_end + 60, period=1),
        story.state("updated", first_end + 61, period=1),
    )
    assert entitlements(app, "user_twice")["plan"] == "pro"
    second_end = fail_renewal(app, story, 2)
    at(app, second_end)
    assert worker.notify_grace_lapses() == 1
    assert [d["grace_until"] for d in lapses(app, "user_twice")] == [first_end, second_end]


def test_a_lapse_that_changes_nothing_is_marked_but_not_told(app: App) -> None:
    account = "user_two_subs"
    failing = Story(account, sub="sub_failing", item="si_failing")
    other = Story(account, sub="sub_other", item="si_other")
    subscribed(app, failing)
    send(app, other.state("created", T0 + 20), other.paid("0", T0 + 21))
    grace_end = fail_renewal(app, failing, 1)
    # The other subscription renews: the account keeps pro when the failing one's grace ends.
    send(
        app,
        other.paid("1", start(1) + 50, period=1),
        other.state("updated", start(1) + 51, period=1),
    )
    at(app, grace_end)
    assert entitlements(app, account)["plan"] == "pro"
    assert Worker(app[1], name="worker:a").notify_grace_lapses() == 0
    assert lapses(app) == []
    [row] = [s for s in app[1].billing.subscriptions(account).data if s.id == "sub_failing"]
    assert row.grace_lapse_notified == grace_end  # looked at once: not again


def test_two_workers_racing_tell_each_lapse_once(app: App) -> None:
    stories = [Story(f"user_race_{n}") for n in range(6)]
    ends = set()
    for story in stories:
        subscribed(app, story)
    for story in stories:
        ends.add(fail_renewal(app, story, 1))
    at(app, max(ends))
    workers = [Worker(app[1], name=f"worker:{n}") for n in range(2)]
    gate = threading.Barrier(len(workers))

    def check(worker: Worker) -> int:
        gate.wait()
        return worker.notify_grace_lapses()

    with ThreadPoolExecutor(len(workers)) as pool:
        written = list(pool.map(check, workers))
    assert sum(written) == len(stories)
    told = lapses(app)
    assert sorted(d["account_id"] for d in told) == sorted(s.account for s in stories)
    assert all(Worker(app[1]).notify_grace_lapses() == 0 for _ in range(2))


def test_the_worker_loop_checks_with_its_expiry_sweep(app: App) -> None:
    story = Story("user_loop")
    subscribed(app, story)
    grace_end = fail_renewal(app, story, 1)
    at(app, grace_end + 1)
    worker = Worker(app[1], name="worker:loop")
    worker.run_once()  # a new worker sweeps on its first round
    worker.run_once()  # the next sweep is an interval away: nothing more either way
    assert [d["account_id"] for d in lapses(app)] == ["user_loop"]

"""The pure rules of subscriptions: which state is newer, what an account may do now (as of the
clock), what a paid invoice grants, and the catalog keys plans use."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import datetime
from typing import Any

import pytest

from billfold.adapters import catalog_toml
from billfold.adapters.stripe import translate
from billfold.domain import allowances, facts
from billfold.domain import catalog as cat
from billfold.domain import entitlements as ent
from billfold.domain.subscriptions import SubscriptionRecord, compare, state_of
from tests.builders import stripe_events as se
from tests.support.subscription_story import CATALOG, DAY, MONTH, T0, Story, start

CAT = catalog_toml.parse_catalog(CATALOG, source="catalog.toml")


def record(**values: Any) -> SubscriptionRecord:
    base: dict[str, Any] = {
        "id": "sub_1",
        "account_id": "user_1",
        "customer_id": "cus_1",
        "plan": "pro",
        "status": "active",
        "item_id": "si_1",
        "price_ids": ("price_pro",),
        "quantity": 1,
        "current_period_start": start(0),
        "current_period_end": start(1),
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "trial_start": None,
        "trial_end": None,
        "pause_behavior": None,
        "pause_resumes_at": None,
        "pending_update": False,
        "livemode": False,
        "state_created": T0 + 10,
        "past_due_since": None,
        "grace_invoice_id": None,
        "note": None,
        "created": T0,
        "updated": T0,
    }
    base.update(values)
    return SubscriptionRecord(**base)


def state(at: int, **fields: Any) -> Any:
    event = Story("user_1", sub="sub_1", customer="cus_1", item="si_1").state(
        "updated", at, **fields
    )
    fact = translate.subscription_fact(event["data"]["object"], event_created=at)
    assert isinstance(fact, facts.SubscriptionChanged)
    return state_of(fact, CAT)


# --- only forward ------------------------------------------------------------------------------


def test_anything_is_newer_than_no_state_and_nothing_follows_the_end() -> None:
    assert compare(state(T0), record(status=None, state_created=0)) == "newer"
    assert compare(state(T0 + 99), record(status="canceled")) == "older"
    assert compare(state(T0 + 99, status="canceled"), record(status="incomplete_expired")) in (
        "newer",
        "older",
        "undecided",
    )


def test_created_decides_first_then_the_period_end_then_the_status_rank() -> None:
    stored = record(status="active", state_created=T0 + 10)
    assert compare(state(T0 + 11, status="past_due"), stored) == "newer"
    assert compare(state(T0 + 9, status="past_due"), stored) == "older"
    # Same second: the later period wins, whatever its status.
    assert compare(state(T0 + 10, status="active", period=1), stored) == "newer"
    assert compare(state(T0 + 10, status="trialing", period=-1), stored) == "older"
    # Same second, same period: the status rank (past_due comes after active).
    assert compare(state(T0 + 10, status="past_due"), stored) == "newer"
    assert compare(state(T0 + 10, status="incomplete"), stored) == "older"
    # Same second, same period, same rank, other state: only Stripe knows.
    assert compare(state(T0 + 10, cancel_at_period_end=True), stored) == "undecided"
    assert compare(state(T0 + 10), stored) == "same"


def test_a_subscription_with_several_items_is_on_the_highest_plan_its_prices_sell() -> None:
    items = [
        se.subscription_item(subscription_id="sub_1", price_id=p, item_id=f"si_{p}")
        for p in ("price_pro", "price_elite", "price_other")
    ]
    obj = se.subscription(subscription_id="sub_1", customer="cus_1", items=items)
    fact = translate.subscription_fact(obj, event_created=T0)
    assert isinstance(fact, facts.SubscriptionChanged)
    found = state_of(fact, CAT)
    assert (found.plan, found.item_id) == ("elite", "si_price_elite")


# --- entitlements as of now ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "plan", "source"),
    [
        ("active", "pro", "subscription"),
        ("trialing", "pro", "subscription"),
        ("unpaid", "free", "default"),
        ("canceled", "free", "default"),
        ("incomplete", "free", "default"),
        ("incomplete_expired", "free", "default"),
        ("paused", "free", "default"),
    ],
)
def test_each_status_gives_the_plan_or_the_default(status: str, plan: str, source: str) -> None:
    found = ent.evaluate("user_1", [record(status=status)], CAT, T0 + DAY)
    assert (found.plan, found.source, found.status) == (plan, source, status)
    assert found.features == dict(CAT.plan(plan).features)


def test_past_due_keeps_the_plan_until_grace_ends_to_the_second() -> None:
    failed = start(1) + 100
    sub = record(status="past_due", past_due_since=failed, current_period_start=start(1))
    until = failed + 3 * DAY
    during = ent.evaluate("user_1", [sub], CAT, until - 1)
    assert (during.plan, during.source, during.grace_until) == ("pro", "grace", until)
    after = ent.evaluate("user_1", [sub], CAT, until)
    assert (after.plan, after.source, after.status, after.grace_until) == (
        "free",
        "default",
        "past_due",
        until,
    )


def test_past_due_before_its_failure_is_known_counts_grace_from_the_period_start() -> None:
    sub = record(status="past_due", current_period_start=start(1), current_period_end=start(2))
    assert ent.evaluate("user_1", [sub], CAT, start(1) + 3 * DAY - 1).source == "grace"
    assert ent.evaluate("user_1", [sub], CAT, start(1) + 3 * DAY).source == "default"


@pytest.mark.parametrize(
    "scheduled",
    [
        {"cancel_at_period_end": True},
        {"cancel_at": start(1)},
        {"ended_at": start(1)},
    ],
)
def test_a_scheduled_end_that_has_passed_ends_the_plan(scheduled: dict[str, Any]) -> None:
    sub = record(**scheduled)
    assert ent.evaluate("user_1", [sub], CAT, start(1) - 1).plan == "pro"
    assert ent.evaluate("user_1", [sub], CAT, start(1)).plan == "free"


def test_the_highest_plan_wins_and_rank_overrides_catalog_order() -> None:
    subs = [
        record(id="sub_a", plan="pro"),
        record(id="sub_b", plan="elite"),
        record(id="sub_c", plan="saver"),
    ]
    assert ent.evaluate("user_1", subs, CAT, T0 + DAY).plan == "elite"
    # saver sets rank = 1, pro's place: a tie, which the later in the catalog wins.
    assert ent.evaluate("user_1", subs[::2], CAT, T0 + DAY).plan == "saver"
    # budget sets rank = 0, below pro although it comes after it.
    budget = record(id="sub_d", plan="budget")
    assert ent.evaluate("user_1", [subs[0], budget], CAT, T0 + DAY).plan == "pro"


def test_without_a_default_plan_an_account_without_subscription_has_none() -> None:
    no_default = catalog_toml.parse_catalog(
        textwrap.dedent(
            """
            [units.credits]
            [plans.pro]
            stripe_price_ids = ["price_pro"]
            features = { api = true }
            """
        ),
        source="c.toml",
    )
    found = ent.evaluate("user_1", [], no_default, T0)
    assert (found.plan, found.source, found.features) == (None, "none", {})


def test_a_plan_the_catalog_no_longer_has_gives_the_default() -> None:
    assert ent.evaluate("user_1", [record(plan="retired")], CAT, T0).plan == "free"


# --- check ---------------------------------------------------------------------------------------


def test_check_lists_every_reason_and_treats_a_null_limit_as_unlimited() -> None:
    pro = ent.evaluate("user_1", [record()], CAT, T0)
    known_f = {"api": True, "export": True}
    known_l: dict[str, int | None] = {"seats": 5, "projects": None}
    ok = ent.check(pro, feature="api", limit="projects", usage=10**12, known_features=known_f)
    assert (ok.allowed, ok.reasons) == (True, ())
    denied = ent.check(
        pro,
        feature="export",
        limit="seats",
        usage=5,
        unit="credits",
        amount=10,
        available=3,
        known_features=known_f,
        known_limits=known_l,
    )
    assert [r.code for r in denied.reasons] == [
        "feature_not_in_plan",
        "limit_reached",
        "insufficient_balance",
    ]
    assert denied.balance == 3
    odd = ent.check(
        pro, feature="fly", limit="rockets", known_features=known_f, known_limits=known_l
    )
    assert [r.code for r in odd.reasons] == ["unknown_feature", "unknown_limit"]
    assert ent.check(pro, limit="seats").allowed  # no usage: 0 used, one more allowed


# --- allowances ----------------------------------------------------------------------------------


def invoice(story: Story, name: str, **kwargs: Any) -> facts.InvoicePaid:
    fact = translate.invoice_fact(story.invoice(name, **kwargs), event_created=T0)
    assert isinstance(fact, facts.InvoicePaid)
    return fact


def plan_of(line: facts.InvoiceLineFact) -> cat.Plan | None:
    return CAT.plan_for_price(line.price_id, line.price_lookup_key)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_period_invoice_grants_each_lines_allowance_until_the_lines_period_end(
    legacy: bool,
) -> None:
    fact = invoice(Story("user_1", legacy=legacy), "0", period=2)
    grants, problem = allowances.for_invoice(fact, plan_of, period_length=MONTH)
    assert problem is None
    [grant] = grants
    assert (grant.unit, grant.amount, grant.expires_at, grant.plan) == (
        "credits",
        1000,
        start(3),
        "pro",
    )
    assert grant.key == f"invoice:{fact.invoice_id}:{fact.lines[0].line_id}:0"


def test_rollover_splits_the_allowance_into_what_expires_and_what_carries() -> None:
    fact = invoice(Story("user_1"), "0", price="price_saver")
    grants, _ = allowances.for_invoice(fact, plan_of, period_length=MONTH)
    assert sorted((g.amount, g.expires_at) for g in grants) == [
        (40, start(1) + MONTH),
        (60, start(1)),
    ]


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [((1, 2), 2000), ((1, 3), 2666), ((2, 3), 1333), ((0, 1), 4000), ((29, 30), 133)],
)
def test_an_upgrade_grants_the_prorated_difference_rounded_down(
    fraction: tuple[int, int], expected: int
) -> None:
    story = Story("user_1")
    obj = story.upgrade_invoice("u", period=0, at_fraction=fraction)
    fact = translate.invoice_fact(obj, event_created=T0)
    assert isinstance(fact, facts.InvoicePaid)
    grants, problem = allowances.for_invoice(fact, plan_of, period_length=MONTH)
    assert problem is None
    assert [(g.amount, g.expires_at, g.plan) for g in grants] == [(expected, start(1), "elite")]


def test_a_downgrade_invoice_grants_nothing() -> None:
    story = Story("user_1")
    obj = story.upgrade_invoice("d", period=0, at_fraction=(1, 2))
    for line in obj["lines"]["data"]:  # swap: credit Elite, charge Pro
        details = line["pricing"]["price_details"]
        details["price"] = "price_pro" if details["price"] == "price_elite" else "price_elite"
    fact = translate.invoice_fact(obj, event_created=T0)
    assert isinstance(fact, facts.InvoicePaid)
    grants, _ = allowances.for_invoice(fact, plan_of, period_length=MONTH)
    assert grants == ()


def test_a_paid_allowance_adds_the_amount_paid_and_a_zero_invoice_adds_nothing() -> None:
    paid = invoice(Story("user_1"), "0", price="price_budget", amount=2500)
    grants, _ = allowances.for_invoice(paid, plan_of, period_length=MONTH)
    assert [(g.unit, g.amount, g.expires_at) for g in grants] == [("usd", 2500, None)]
    zero = invoice(Story("user_1"), "1", price="price_budget", amount=0)
    assert allowances.for_invoice(zero, plan_of, period_length=MONTH)[0] == ()


def test_an_invoice_billed_for_another_reason_is_kept_for_an_operator() -> None:
    fact = invoice(Story("user_1"), "0", reason="manual")
    grants, problem = allowances.for_invoice(fact, plan_of, period_length=MONTH)
    assert grants == ()
    assert problem is not None
    assert "manual" in problem


def test_quantity_multiplies_the_allowance() -> None:
    fact = invoice(Story("user_1"), "0")
    line = dataclasses.replace(fact.lines[0], quantity=3)
    fact = dataclasses.replace(fact, lines=(line,))
    grants, _ = allowances.for_invoice(fact, plan_of, period_length=MONTH)
    assert [g.amount for g in grants] == [3000]


# --- catalog keys of plans -----------------------------------------------------------------------


def test_unlimited_limits_rollover_rank_and_inline_prices_round_trip() -> None:
    again = catalog_toml.parse_catalog(catalog_toml.dumps_catalog(CAT), source="again.toml")
    assert again == CAT
    assert CAT.plan("pro").limits == {"seats": 5, "projects": None}
    assert CAT.plan("saver").allowance[0].rollover == 40
    assert CAT.plan_rank(CAT.plan("budget"))[0] == 0


@pytest.mark.parametrize(
    ("start_at", "end_at", "expected"),
    [
        # calendar months from the anchor day, clamped: Jan 31 -> Feb 28 -> Mar 31
        ("2026-01-31", "2026-02-28", "2026-03-31"),
        ("2026-02-28", "2026-03-28", "2026-04-28"),
        ("2026-12-15", "2027-01-15", "2027-02-15"),
        # a calendar year, from Feb 29
        ("2028-02-29", "2029-02-28", "2030-02-28"),
        # anything else: a period of the same length (a week)
        ("2026-03-02", "2026-03-09", "2026-03-16"),
    ],
)
def test_a_carried_lot_expires_at_the_end_of_the_next_calendar_period(
    start_at: str, end_at: str, expected: str
) -> None:
    def ts(day: str) -> int:
        return int(datetime.fromisoformat(day + "T09:30:00+00:00").timestamp())

    start_ts, end_ts = ts(start_at), ts(end_at)
    got = allowances.next_period_end(start_ts, end_ts, end_ts - start_ts)
    assert got == ts(expected)

"""Subscriptions through the webhook route and the API, on SQLite and PostgreSQL (issue 11): every
row of DESIGN's subscription event table, both payload shapes, grace timing to the second,
allowances (renewal, upgrade proration, rollover, money wallets, refunds), purchased packs through
every transition, the plan-changing routes, and a sync that repairs what was dropped.

Stripe's API is ``FakeStripeBilling``: the objects the test says Stripe holds now, read through
billfold's own translator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from tests.builders import stripe_events as se
from tests.conftest import FakeClock
from tests.support.api import ADMIN_AUTH, SERVER, as_user
from tests.support.app import count, deliver, running_app
from tests.support.fake_billing import FakeStripeBilling
from tests.support.subscription_story import CATALOG, DAY, MONTH, T0, Story, drain, start

App = tuple[TestClient, Services, FakeStripeBilling, FakeClock]


@pytest.fixture
def catalog(tmp_path: Path) -> str:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    return str(path)


@pytest.fixture
def app(db_url: str, engine: Any, catalog: str, clock: FakeClock) -> Iterator[App]:
    clock.now = T0 + 60
    stripe = FakeStripeBilling(clock)
    with running_app(db_url, catalog=catalog, clock=clock, stripe=stripe) as (client, services):
        yield client, services, stripe, clock


@pytest.fixture(params=[False, True], ids=["basil", "legacy"])
def legacy(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def send(app: App, *events: dict[str, Any]) -> None:
    client, services, stripe, _ = app
    for event in events:
        stripe.remember(event)
        answer = deliver(client, event)
        assert answer.status_code == 200, answer.text
    drain(services)


def send_concurrently(app: App, events: Sequence[dict[str, Any]]) -> None:
    client, services, _, _ = app
    gate = threading.Barrier(len(events))

    def one(event: dict[str, Any]) -> int:
        gate.wait()
        return int(deliver(client, event).status_code)

    with ThreadPoolExecutor(len(events)) as pool:
        assert list(pool.map(one, events)) == [200] * len(events)
    drain(services)


def entitlements(app: App, account: str) -> dict[str, Any]:
    answer = app[0].get(f"/v1/accounts/{account}/entitlements", headers=SERVER)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def subscriptions(app: App, account: str) -> list[dict[str, Any]]:
    answer = app[0].get(f"/v1/accounts/{account}/subscriptions", headers=SERVER)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def credits(app: App, account: str, unit: str = "credits") -> tuple[int, int]:
    """(available, debt) now."""
    view = app[1].ledger.balances(account).get(unit)
    return (0, 0) if view is None else (view.available, view.debt)


def grants(app: App, account: str) -> list[Any]:
    found = app[1].views.grants(
        account, must_exist=False, limit=100, starting_after=None, live_only=False
    )
    return list(found.data)


def at(app: App, when: int) -> None:
    app[3].now = when


# --- the event table ---------------------------------------------------------------------------


def test_a_subscription_checkout_links_account_customer_and_subscription(
    app: App, legacy: bool
) -> None:
    story = Story("user_link", legacy=legacy)
    send(app, story.checkout_completed(T0 + 10))
    account = app[1].views.account("user_link", must_exist=True)
    assert account.record is not None
    assert account.record.stripe_customer_id == story.customer
    [row] = subscriptions(app, "user_link")
    assert row["id"] == story.sub
    assert row["account_id"] == "user_link"
    assert row["status"] is None  # the state comes with the subscription's own events
    assert entitlements(app, "user_link")["source"] == "default"


def test_subscription_created_gives_the_plan_now(app: App, legacy: bool) -> None:
    story = Story("user_new", legacy=legacy)
    send(app, story.state("created", T0 + 10))
    found = entitlements(app, "user_new")
    assert found == {
        "object": "entitlements",
        "account_id": "user_new",
        "plan": "pro",
        "source": "subscription",
        "status": "active",
        "features": {"api": True, "export": False},
        "limits": {"seats": 5, "projects": None},
        "current_period_end": start(1),
        "grace_until": None,
        "subscription_id": story.sub,
    }
    [row] = subscriptions(app, "user_new")
    assert row["plan"] == "pro"
    assert row["status"] == "active"
    assert row["quantity"] == 1
    assert (row["current_period_start"], row["current_period_end"]) == (start(0), start(1))


def test_an_unknown_account_has_the_default_plan_no_subscriptions_and_may_check(app: App) -> None:
    client = app[0]
    found = entitlements(app, "user_never_seen")
    assert (found["plan"], found["source"], found["status"]) == ("free", "default", None)
    assert subscriptions(app, "user_never_seen") == []
    answer = client.post(
        "/v1/accounts/user_never_seen/check", json={"feature": "api"}, headers=SERVER
    )
    assert answer.status_code == 200
    assert answer.json()["allowed"] is False


def test_invoice_paid_and_payment_succeeded_grant_the_allowance_once(
    app: App, legacy: bool
) -> None:
    story = Story("user_paid", legacy=legacy)
    send(
        app,
        story.state("created", T0 + 10),
        story.paid("0", T0 + 11),
        story.paid("0", T0 + 12, type_="invoice.payment_succeeded"),
    )
    assert credits(app, "user_paid") == (1000, 0)
    [grant] = grants(app, "user_paid")
    assert grant.kind == "allowance"
    assert grant.amount == 1000
    assert grant.expires_at == start(1)  # the line's period end, never invoice.period_end
    assert count(app[1], "orders") == 1


def test_invoice_paid_and_payment_succeeded_delivered_at_once_grant_once(app: App) -> None:
    for n in range(4):
        story = Story(f"user_race{n}")
        send(app, story.state("created", T0 + 10))
        events = [
            story.paid("0", T0 + 11),
            story.paid("0", T0 + 11, type_="invoice.payment_succeeded"),
        ]
        app[2].remember(events[0])
        send_concurrently(app, events * 3)
        assert credits(app, f"user_race{n}") == (1000, 0)


def test_checkout_completed_and_subscription_created_at_once_both_apply_inline(
    app: App,
) -> None:
    """The checkout links the account, then locks the subscription; the subscription's state
    locks the subscription, then the account: one lock order for both (on PostgreSQL the other
    order deadlocked, and one of them was left for the worker or failed the success page)."""
    client, services, _, _ = app
    for n in range(8):
        story = Story(f"user_both{n}")
        events = [story.checkout_completed(T0 + 10), story.state("created", T0 + 10)]
        gate = threading.Barrier(len(events))

        def one(event: dict[str, Any], gate: threading.Barrier = gate) -> Any:
            gate.wait()
            return deliver(client, event).json()

        with ThreadPoolExecutor(len(events)) as pool:
            answers = list(pool.map(one, events))
        assert [a["status"] for a in answers] == ["processed", "processed"], answers
        [row] = subscriptions(app, f"user_both{n}")
        assert (row["account_id"], row["status"]) == (f"user_both{n}", "active")
    drain(services)


def test_a_paid_invoice_never_writes_the_subscription_status(app: App) -> None:
    story = Story("user_money")
    send(
        app,
        story.state("created", T0 + 10),
        story.state("updated", start(1) + 5, status="past_due", period=1),
    )
    send(app, story.paid("1", start(1) + 50, period=1))
    at(app, start(1) + 60)
    [row] = subscriptions(app, "user_money")
    assert row["status"] == "past_due"  # until customer.subscription.updated says active
    assert entitlements(app, "user_money")["source"] == "grace"


def test_a_renewal_grants_the_new_allowance_and_the_old_one_expires(app: App, legacy: bool) -> None:
    story = Story("user_renew", legacy=legacy)
    send(app, story.state("created", T0 + 10), story.paid("0", T0 + 11))
    at(app, start(1) + 30)
    send(
        app,
        story.state("updated", start(1) + 10, period=1),
        story.paid("1", start(1) + 11, period=1),
    )
    assert credits(app, "user_renew") == (1000, 0)  # last month's 1,000 expired at start(1)
    found = entitlements(app, "user_renew")
    assert found["current_period_end"] == start(2)


def test_a_late_invoice_for_a_period_already_over_grants_nothing_spendable(app: App) -> None:
    story = Story("user_late")
    at(app, start(2) + 10)
    send(app, story.state("updated", start(1) + 10, period=1), story.paid("0", T0 + 11))
    assert credits(app, "user_late") == (0, 0)


def test_deleted_falls_to_the_default_plan_and_keeps_the_granted_allowance(
    app: App, legacy: bool
) -> None:
    story = Story("user_gone", legacy=legacy)
    send(app, story.state("created", T0 + 10), story.paid("0", T0 + 11))
    send(app, story.state("deleted", T0 + 5 * DAY))
    at(app, T0 + 5 * DAY + 1)
    found = entitlements(app, "user_gone")
    assert (found["plan"], found["source"], found["status"]) == ("free", "default", "canceled")
    assert credits(app, "user_gone") == (1000, 0)  # granted allowance keeps its expiry
    [grant] = grants(app, "user_gone")
    assert grant.expires_at == start(1)


def test_paused_gives_the_default_plan_and_resumed_gives_it_back(app: App, legacy: bool) -> None:
    story = Story("user_pause", legacy=legacy)
    send(app, story.state("created", T0 + 10))
    send(app, story.state("paused", T0 + 20, status="paused"))
    assert entitlements(app, "user_pause")["plan"] == "free"
    send(app, story.state("resumed", T0 + 30))
    assert entitlements(app, "user_pause")["plan"] == "pro"


def test_pause_collection_keeps_an_active_subscription_on_its_plan(app: App) -> None:
    story = Story("user_pc")
    send(
        app,
        story.state(
            "updated",
            T0 + 10,
            pause_collection={"behavior": "keep_as_draft", "resumes_at": None},
        ),
    )
    [row] = subscriptions(app, "user_pc")
    assert row["pause_collection"] == "keep_as_draft"
    assert entitlements(app, "user_pc")["plan"] == "pro"


@pytest.mark.parametrize(
    "kind", ["trial_will_end", "pending_update_applied", "pending_update_expired"]
)
def test_notes_are_recorded_without_moving_the_state_back(app: App, kind: str) -> None:
    story = Story(f"user_{kind[:8]}")
    send(app, story.state("updated", T0 + 50, period=0))
    send(app, story.state(kind, T0 + 20, status="trialing"))  # older: recorded, not applied
    [row] = subscriptions(app, story.account)
    assert row["status"] == "active"
    assert row["note"] is not None
    assert kind in row["note"]


def test_an_older_state_event_never_moves_the_copy_back(app: App, legacy: bool) -> None:
    story = Story("user_order", legacy=legacy)
    send(app, story.state("updated", start(1) + 10, period=1))
    send(app, story.state("created", T0 + 10, status="incomplete"))
    [row] = subscriptions(app, "user_order")
    assert (row["status"], row["current_period_end"]) == ("active", start(2))


@pytest.mark.parametrize("first", ["stripe_state", "other"])
@pytest.mark.parametrize(
    ("now", "other"),
    [
        ({"status": "paused"}, {"status": "unpaid"}),
        ({"cancel_at_period_end": True}, {"cancel_at_period_end": False}),
    ],
    ids=["paused-unpaid", "cancel-uncancel"],
)
def test_same_second_events_that_cannot_be_ordered_are_settled_by_stripe(
    app: App, first: str, now: dict[str, Any], other: dict[str, Any]
) -> None:
    story = Story(f"user_same{first[:5]}")
    says_now = story.state("updated", T0 + 10, **now)
    stale = story.state("updated", T0 + 10, **other)
    app[2].remember(says_now)  # what Stripe says now
    events = [says_now, stale] if first == "stripe_state" else [stale, says_now]
    for event in events:
        assert deliver(app[0], event).status_code == 200
    drain(app[1])
    assert [c for c in app[2].calls if c.startswith("retrieve_subscription")]
    [row] = subscriptions(app, story.account)
    assert {k: row[k] for k in now} == now


def test_a_subscription_whose_price_no_plan_names_gives_nothing_and_is_listed(app: App) -> None:
    story = Story("user_odd")
    send(app, story.state("created", T0 + 10, price="price_someone_elses"))
    [row] = subscriptions(app, "user_odd")
    assert row["plan"] is None
    assert row["status"] == "active"
    assert entitlements(app, "user_odd")["plan"] == "free"
    listed = app[0].get("/v1/subscriptions", headers=ADMIN_AUTH).json()["data"]
    assert [r["id"] for r in listed] == [story.sub]


def test_the_highest_plan_wins_with_several_live_subscriptions(app: App) -> None:
    pro = Story("user_two", sub="sub_twopro", item="si_twopro")
    elite = Story("user_two", sub="sub_twoelite", item="si_twoelite")
    send(app, pro.state("created", T0 + 10), elite.state("created", T0 + 11, price="price_elite"))
    assert entitlements(app, "user_two")["plan"] == "elite"
    send(app, elite.state("deleted", T0 + 20, price="price_elite"))
    assert entitlements(app, "user_two")["plan"] == "pro"
    assert len(subscriptions(app, "user_two")) == 2


# --- grace ---------------------------------------------------------------------------------------


def test_a_failed_renewal_keeps_the_plan_through_grace_then_falls_to_default_at_the_second(
    app: App, legacy: bool
) -> None:
    story = Story("user_grace", legacy=legacy)
    failed_at = start(1) + 100
    send(app, story.state("created", T0 + 10), story.paid("0", T0 + 11))
    at(app, failed_at + 5)
    send(
        app,
        story.failed("1", failed_at, period=1),
        story.state("updated", failed_at + 1, status="past_due", period=1),
    )
    grace_end = failed_at + 3 * DAY
    at(app, grace_end - 1)
    found = entitlements(app, "user_grace")
    assert (found["plan"], found["source"], found["status"]) == ("pro", "grace", "past_due")
    assert found["grace_until"] == grace_end
    # A second failure of the same invoice does not restart the clock.
    send(app, story.failed("1", failed_at + 2 * DAY, period=1))
    assert entitlements(app, "user_grace")["grace_until"] == grace_end
    at(app, grace_end)
    found = entitlements(app, "user_grace")
    assert (found["plan"], found["source"], found["status"]) == ("free", "default", "past_due")
    assert found["grace_until"] == grace_end
    [row] = subscriptions(app, "user_grace")
    assert row["past_due_since"] == failed_at
    assert row["grace_until"] == grace_end
    # Recovery: the retry pays, the subscription is active again, the allowance comes.
    send(
        app,
        story.paid("1", grace_end + 60, period=1),
        story.state("updated", grace_end + 61, period=1),
    )
    found = entitlements(app, "user_grace")
    assert (found["plan"], found["source"], found["grace_until"]) == ("pro", "subscription", None)
    assert credits(app, "user_grace") == (1000, 0)


def test_the_grace_clock_starts_at_stripes_time_of_the_failure_not_at_delivery(app: App) -> None:
    story = Story("user_late_fail")
    failed_at = start(1) + 100
    at(app, failed_at + 2 * DAY)  # delivered two days late
    send(
        app,
        story.state("updated", failed_at + 1, status="past_due", period=1),
        story.failed("1", failed_at, period=1),
    )
    assert entitlements(app, "user_late_fail")["grace_until"] == failed_at + 3 * DAY


# --- scheduled ends ------------------------------------------------------------------------------


def test_cancel_at_period_end_keeps_the_plan_until_the_period_ends(app: App, legacy: bool) -> None:
    story = Story("user_cape", legacy=legacy)
    send(app, story.state("updated", T0 + 10, cancel_at_period_end=True))
    at(app, start(1) - 1)
    assert entitlements(app, "user_cape")["plan"] == "pro"
    at(app, start(1))  # before customer.subscription.deleted arrives
    assert entitlements(app, "user_cape")["plan"] == "free"


def test_cancel_at_ends_the_plan_at_that_time(app: App) -> None:
    story = Story("user_cat")
    ends = T0 + 10 * DAY
    send(app, story.state("updated", T0 + 10, cancel_at=ends))
    at(app, ends - 1)
    assert entitlements(app, "user_cat")["plan"] == "pro"
    at(app, ends)
    assert entitlements(app, "user_cat")["plan"] == "free"
    [row] = subscriptions(app, "user_cat")
    assert row["cancel_at"] == ends


# --- allowances ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fraction", "expected"), [((1, 2), 2000), ((1, 3), 2666), ((29, 30), 133)]
)
def test_an_upgrade_billed_at_once_grants_the_prorated_difference_rounded_down(
    app: App, legacy: bool, fraction: tuple[int, int], expected: int
) -> None:
    story = Story("user_up", legacy=legacy)
    send(app, story.state("created", T0 + 10), story.paid("0", T0 + 11))
    switch = start(0) + MONTH * fraction[0] // fraction[1]
    at(app, switch + 5)
    upgrade = story.upgrade_invoice("u", period=0, at_fraction=fraction)
    send(
        app,
        story.state("updated", switch, price="price_elite"),
        story._invoice_event("invoice.paid", upgrade, switch + 1),
    )
    assert credits(app, "user_up") == (1000 + expected, 0)
    assert entitlements(app, "user_up")["plan"] == "elite"
    extra = [g for g in grants(app, "user_up") if g.amount == expected]
    assert extra
    assert extra[0].expires_at == start(1)


INLINE_CATALOG = CATALOG.replace(
    'stripe_price_ids = ["price_pro", "price_pro_yearly"]',
    'price = 1900\ncurrency = "usd"\ninterval = "month"',
).replace(
    'stripe_price_ids = ["price_elite"]', 'price = 4900\ncurrency = "usd"\ninterval = "month"'
)


def _sold_inline(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its items' prices carrying the lookup keys billfold gives inline prices."""
    for item in event["data"]["object"]["items"]["data"]:
        item["price"]["lookup_key"] = f"billfold_plan_{item['price']['id'].removeprefix('price_')}"
    return event


def test_an_upgrade_between_plans_sold_inline_reads_the_old_price_from_stripe(
    db_url: str, engine: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """A basil line names its price by id only: the credit line of an upgrade names the old
    plan's price, which is no longer the subscription's; its lookup key, read from Stripe, says
    it sells Pro (without it, both lines looked like Elite and the upgrade granted nothing)."""
    path = tmp_path / "inline.toml"
    path.write_text(INLINE_CATALOG)
    clock.now = T0 + 60
    stripe = FakeStripeBilling(clock)
    stripe.price_keys = {"price_pro": "billfold_plan_pro", "price_elite": "billfold_plan_elite"}
    with running_app(db_url, catalog=str(path), clock=clock, stripe=stripe) as (client, services):
        app = (client, services, stripe, clock)
        story = Story("user_inline")
        send(app, _sold_inline(story.state("created", T0 + 10)), story.paid("0", T0 + 11))
        assert credits(app, "user_inline") == (1000, 0)
        switch = start(0) + MONTH // 2
        at(app, switch + 5)
        upgrade = story.upgrade_invoice("u", period=0, at_fraction=(1, 2))
        send(
            app,
            _sold_inline(story.state("updated", switch, price="price_elite")),
            story._invoice_event("invoice.paid", upgrade, switch + 1),
        )
        assert entitlements(app, "user_inline")["plan"] == "elite"
        assert credits(app, "user_inline") == (1000 + 2000, 0)
        assert "price_lookup_keys price_pro" in stripe.calls
        # The same invoice again (payment_succeeded): granted already, Stripe is not asked again.
        send(app, story._invoice_event("invoice.payment_succeeded", upgrade, switch + 2))
        assert credits(app, "user_inline") == (3000, 0)
        assert sum(c.startswith("price_lookup_keys") for c in stripe.calls) == 1


def test_a_downgrade_grants_nothing_now_and_the_new_allowance_next_period(app: App) -> None:
    story = Story("user_down")
    send(
        app,
        story.state("created", T0 + 10, price="price_elite"),
        story.paid("0", T0 + 11, price="price_elite"),
    )
    send(app, story.state("updated", T0 + 5 * DAY, price="price_pro"))
    at(app, T0 + 5 * DAY + 1)
    assert entitlements(app, "user_down")["plan"] == "pro"  # features change at once
    assert credits(app, "user_down") == (5000, 0)  # this period's elite allowance stays
    at(app, start(1) + 20)
    send(app, story.paid("1", start(1) + 10, period=1))
    assert credits(app, "user_down") == (1000, 0)


def test_rollover_carries_at_most_the_plans_maximum_into_the_next_period(app: App) -> None:
    story = Story("user_roll")
    send(
        app,
        story.state("created", T0 + 10, price="price_saver"),
        story.paid("0", T0 + 11, price="price_saver"),
    )
    assert credits(app, "user_roll") == (100, 0)
    client = app[0]
    spent = client.post(
        "/v1/accounts/user_roll/spend",
        json={"unit": "credits", "amount": 30},
        headers={**SERVER, "Idempotency-Key": "roll-1"},
    )
    assert spent.status_code == 200, spent.text
    at(app, start(1) + 20)
    send(app, story.paid("1", start(1) + 10, period=1, price="price_saver"))
    # 70 unused; at most 40 carried: 40 + this period's 100.
    assert credits(app, "user_roll") == (140, 0)


def test_a_paid_allowance_adds_the_amount_paid_to_the_wallet(app: App, legacy: bool) -> None:
    story = Story("user_wallet", legacy=legacy)
    send(
        app,
        story.state("created", T0 + 10, price="price_budget"),
        story.paid("0", T0 + 11, price="price_budget"),
        story.paid("0", T0 + 12, price="price_budget", type_="invoice.payment_succeeded"),
    )
    assert credits(app, "user_wallet", "usd") == (2500, 0)


def test_a_trial_invoice_of_zero_grants_the_allowance(app: App) -> None:
    story = Story("user_trial")
    send(
        app,
        story.state("created", T0 + 10, status="trialing", trial_end=start(1)),
        story.paid("0", T0 + 11, amount=0, reason="subscription_create"),
    )
    assert credits(app, "user_trial") == (1000, 0)
    assert entitlements(app, "user_trial")["status"] == "trialing"


def test_a_one_off_invoice_naming_a_package_fulfils_it(app: App, legacy: bool) -> None:
    invoice = se.invoice(
        subscription=None,
        customer="cus_oneoff",
        amount_paid=999,
        billing_reason="manual",
        lines=[
            se.invoice_line(
                invoice_id="in_oneoff",
                subscription=None,
                price_id=None,
                amount=999,
                period_start=T0,
                period_end=T0,
                legacy=legacy,
            )
        ],
        invoice_id="in_oneoff",
        metadata={"billfold_account": "user_oneoff", "billfold_package": "pack"},
        include_payments=not legacy,
        legacy=legacy,
    )
    event = se.any_event(
        "invoice.paid",
        invoice,
        created=T0 + 10,
        api_version=se.LEGACY_API_VERSION if legacy else se.API_VERSION,
    )
    send(app, event, event)
    assert credits(app, "user_oneoff") == (500, 0)


def test_a_refund_of_an_invoice_claws_back_its_allowance_once(app: App, legacy: bool) -> None:
    story = Story("user_refund", legacy=legacy)
    send(app, story.state("created", T0 + 10), story.paid("0", T0 + 11))
    spent = app[0].post(
        "/v1/accounts/user_refund/spend",
        json={"unit": "credits", "amount": 300},
        headers={**SERVER, "Idempotency-Key": "refund-1"},
    )
    assert spent.status_code == 200
    (allowance,) = app[1].views.explain("user_refund", "credits", must_exist=True).lots
    assert (allowance.kind, allowance.origin.type) == ("allowance", "invoice")
    assert allowance.origin.stripe.invoice == story.invoices["0"]
    pi = f"pi_{story.invoices['0'][3:]}"
    refund = se.refund(refund_id="re_userrefund", amount=1900, payment_intent=pi, charge="ch_ur")
    refunded = se.charge_refunded(
        charge_id="ch_ur", payment_intent=pi, amount=1900, refunds=[refund]
    )
    created = se.refund_event(
        "refund.created", refund_id="re_userrefund", amount=1900, payment_intent=pi, charge="ch_ur"
    )
    send(app, refunded, created)
    # Pro's policy is "debt": the whole allowance is taken back, 300 of it already spent.
    assert credits(app, "user_refund") == (-300, 300)
    send(app, refunded)
    assert credits(app, "user_refund") == (-300, 300)
    explained = app[1].views.explain("user_refund", "credits", must_exist=True)
    (reversal,) = explained.reversals
    assert (reversal.kind, reversal.stripe_id) == ("refund", "re_userrefund")
    assert (reversal.recovered, reversal.debt, reversal.unrecovered) == (allowance.amount, 300, 0)
    assert (explained.lots, explained.balance, explained.debt) == ((), -300, 300)


# --- purchased packs survive everything --------------------------------------------------------------


def test_purchased_packs_survive_every_subscription_transition(app: App) -> None:
    story = Story("user_pack")
    pack = se.checkout_session_completed(
        session_id="cs_test_userpack",
        payment_intent="pi_userpack",
        amount_total=999,
        metadata={"billfold_account": "user_pack", "billfold_package": "pack"},
    )
    send(app, pack)
    [pack_grant] = grants(app, "user_pack")
    failed_at = start(1) + 100
    steps: list[tuple[int, list[dict[str, Any]]]] = [
        (T0 + 20, [story.state("created", T0 + 10), story.paid("0", T0 + 11)]),
        (T0 + 5 * DAY, [story.state("updated", T0 + 5 * DAY - 1, price="price_elite")]),
        (T0 + 6 * DAY, [story.state("updated", T0 + 6 * DAY - 1, price="price_pro")]),
        (
            failed_at + 10,
            [
                story.failed("1", failed_at, period=1),
                story.state("updated", failed_at + 1, status="past_due", period=1),
            ],
        ),
        (failed_at + 4 * DAY, []),  # grace over
        (
            failed_at + 5 * DAY,
            [story.state("updated", failed_at + 5 * DAY - 1, status="unpaid", period=1)],
        ),
        (
            failed_at + 6 * DAY,
            [story.state("paused", failed_at + 6 * DAY - 1, status="paused", period=1)],
        ),
        (failed_at + 7 * DAY, [story.state("deleted", failed_at + 7 * DAY - 1, period=1)]),
    ]
    for when, events in steps:
        at(app, when)
        send(app, *events)
        [now] = [g for g in grants(app, "user_pack") if g.id == pack_grant.id]
        assert (now.remaining, now.expires_at) == (500, None), when
    assert credits(app, "user_pack") == (500, 0)


# --- the API: check, change, cancel, portal, sync ----------------------------------------------------


def test_check_lists_every_reason_an_account_may_not(app: App) -> None:
    client = app[0]
    story = Story("user_check")
    send(app, story.state("created", T0 + 10))

    def check(**body: Any) -> dict[str, Any]:
        answer = client.post("/v1/accounts/user_check/check", json=body, headers=SERVER)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    assert check(feature="api") == {
        "object": "check",
        "allowed": True,
        "reasons": [],
        "plan": "pro",
        "balance": None,
    }
    assert check(limit="seats", usage=4)["allowed"] is True
    assert check(limit="projects", usage=10**9)["allowed"] is True  # unlimited
    denied = check(feature="export", limit="seats", usage=5, unit="credits", amount=1)
    assert denied["allowed"] is False
    assert [r["code"] for r in denied["reasons"]] == [
        "feature_not_in_plan",
        "limit_reached",
        "insufficient_balance",
    ]
    assert denied["balance"] == 0
    assert [r["code"] for r in check(feature="teleport")["reasons"]] == ["unknown_feature"]
    bad = client.post(
        "/v1/accounts/user_check/check", json={"unit": "gold", "amount": 1}, headers=SERVER
    )
    assert bad.status_code == 400
    bad = client.post("/v1/accounts/user_check/check", json={"usage": -1}, headers=SERVER)
    assert bad.status_code == 400


def test_change_plan_goes_through_stripe_and_applies_at_once(app: App) -> None:
    client, _, stripe, _ = app
    story = Story("user_change")
    send(app, story.state("created", T0 + 10))
    answer = client.post(
        "/v1/accounts/user_change/subscription",
        json={"plan": "elite", "proration": "always_invoice"},
        headers=SERVER,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["plan"] == "elite"
    assert f"change_plan {story.sub} price_elite always_invoice" in stripe.calls
    assert entitlements(app, "user_change")["plan"] == "elite"
    for body, status in [
        ({"plan": "free"}, 400),
        ({"plan": "platinum"}, 400),
        ({"plan": "elite", "proration": "sometimes"}, 400),
    ]:
        assert (
            client.post(
                "/v1/accounts/user_change/subscription", json=body, headers=SERVER
            ).status_code
            == status
        )
    nobody = client.post(
        "/v1/accounts/user_nobody/subscription", json={"plan": "elite"}, headers=SERVER
    )
    assert nobody.status_code == 404


def test_cancel_at_period_end_by_default_or_now(app: App) -> None:
    client = app[0]
    story = Story("user_cancel")
    send(app, story.state("created", T0 + 10))
    answer = client.delete("/v1/accounts/user_cancel/subscription", headers=SERVER)
    assert answer.status_code == 200, answer.text
    assert answer.json()["cancel_at_period_end"] is True
    assert entitlements(app, "user_cancel")["plan"] == "pro"
    answer = client.delete(
        "/v1/accounts/user_cancel/subscription?at_period_end=false", headers=SERVER
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "canceled"
    assert entitlements(app, "user_cancel")["plan"] == "free"
    again = client.delete("/v1/accounts/user_cancel/subscription", headers=SERVER)
    assert again.status_code == 404


def test_the_billing_portal_opens_for_an_account_with_a_customer(app: App) -> None:
    client = app[0]
    story = Story("user_portal")
    send(app, story.state("created", T0 + 10))
    answer = client.post(
        "/v1/accounts/user_portal/billing-portal",
        json={"return_url": "https://app.example.com/account"},
        headers=SERVER,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["url"].startswith("https://")
    none = client.post("/v1/accounts/user_nocustomer/billing-portal", json={}, headers=SERVER)
    assert none.status_code == 409


def test_sync_repairs_a_subscription_whose_events_were_all_dropped(app: App, legacy: bool) -> None:
    client, _, stripe, _ = app
    story = Story("user_sync", legacy=legacy)
    # Stripe has the subscription and its paid invoice; billfold got none of their events.
    stripe.remember(story.state("created", T0 + 10), story.paid("0", T0 + 11))
    put = client.put(
        "/v1/accounts/user_sync", json={"stripe_customer_id": story.customer}, headers=SERVER
    )
    assert put.status_code == 200
    assert entitlements(app, "user_sync")["plan"] == "free"
    answer = client.post("/v1/accounts/user_sync/sync", headers=SERVER)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["subscriptions"] == 1
    assert report["failures"] == []
    assert len(report["changes"]) == 2  # the state, and the invoice's allowance
    assert entitlements(app, "user_sync")["plan"] == "pro"
    assert credits(app, "user_sync") == (1000, 0)
    # Then the dropped events arrive after all: nothing twice.
    send(app, story.state("created", T0 + 10), story.paid("0", T0 + 11))
    assert credits(app, "user_sync") == (1000, 0)
    again = client.post("/v1/subscriptions/sync", headers=ADMIN_AUTH)
    assert again.status_code == 200
    assert again.json()["changes"] == []


def test_sync_reports_stripe_being_down_and_changes_nothing(app: App) -> None:
    client, _, stripe, _ = app
    story = Story("user_down_sync")
    send(app, story.state("created", T0 + 10))
    stripe.down = True
    answer = client.post("/v1/accounts/user_down_sync/sync", headers=SERVER)
    assert answer.status_code == 502
    assert entitlements(app, "user_down_sync")["plan"] == "pro"


def test_an_end_user_manages_only_their_own_subscription(app: App) -> None:
    client = app[0]
    story = Story("user_self")
    send(app, story.state("created", T0 + 10))
    me = as_user("user_self")
    assert client.get("/v1/accounts/user_self/entitlements", headers=me).status_code == 200
    assert client.get("/v1/accounts/user_self/subscriptions", headers=me).status_code == 200
    assert (
        client.post("/v1/accounts/user_self/check", json={"feature": "api"}, headers=me).status_code
        == 200
    )
    assert client.post("/v1/accounts/user_self/sync", headers=me).status_code == 200
    assert (
        client.post("/v1/accounts/user_self/billing-portal", json={}, headers=me).status_code == 200
    )
    assert (
        client.post(
            "/v1/accounts/user_self/subscription", json={"plan": "elite"}, headers=me
        ).status_code
        == 200
    )
    assert client.delete("/v1/accounts/user_self/subscription", headers=me).status_code == 200
    other = as_user("user_other")
    for method, path in [
        ("GET", "/v1/accounts/user_self/entitlements"),
        ("GET", "/v1/accounts/user_self/subscriptions"),
        ("POST", "/v1/accounts/user_self/sync"),
        ("DELETE", "/v1/accounts/user_self/subscription"),
    ]:
        assert client.request(method, path, headers=other).status_code == 403, path
    assert client.post("/v1/subscriptions/sync", headers=me).status_code == 403
    admin_change = client.post(
        "/v1/accounts/user_self/subscription", json={"plan": "pro"}, headers=ADMIN_AUTH
    )
    assert admin_change.status_code == 403


def test_an_invoice_whose_lines_were_cut_short_is_read_whole_from_stripe(app: App) -> None:
    story = Story("user_lines")
    send(app, story.state("created", T0 + 10))
    invoice_id = "in_userlines0"
    lines = [
        se.invoice_line(
            invoice_id=invoice_id,
            subscription=story.sub,
            price_id=price,
            amount=1900,
            period_start=start(0),
            period_end=start(1),
            line_id=f"il_lines{n}",
            subscription_item=f"si_lines{n}",
        )
        for n, price in enumerate(["price_pro", "price_elite"])
    ]
    whole = story.invoice("0", lines=lines, amount=3800)
    app[2].remember(whole)  # what Stripe has: both lines
    cut = {**whole, "lines": {**whole["lines"], "data": lines[:1], "has_more": True}}
    assert deliver(app[0], story._invoice_event("invoice.paid", cut, T0 + 11)).status_code == 200
    drain(app[1])
    assert "retrieve_invoice in_userlines0" in app[2].calls
    assert credits(app, "user_lines") == (6000, 0)

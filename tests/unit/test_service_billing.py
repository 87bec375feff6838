"""Billing (subscriptions for callers) on the memory fakes: sync repairs and reports, changes go
through Stripe and apply at once, and every refusal says what to do."""

from __future__ import annotations

import pytest

from billfold.adapters import catalog_toml
from billfold.adapters.memory import MemoryDatabase
from billfold.domain import errors
from billfold.service.billing import Billing, Cancel, ChangePlan, CheckRequest
from billfold.service.orders.fulfilment import Fulfilment
from billfold.service.orders.reversals import Reversals
from billfold.service.subscriptions import SubscriptionBook
from billfold.service.views import Views
from tests.support.fake_billing import FakeStripeBilling
from tests.support.memory import ManualClock
from tests.support.subscription_story import CATALOG, DAY, T0, Story

CAT = catalog_toml.parse_catalog(CATALOG, source="catalog.toml")


def billing(stripe: FakeStripeBilling | None) -> tuple[Billing, MemoryDatabase, ManualClock]:
    db = MemoryDatabase()
    clock = ManualClock(T0 + 60)
    units = frozenset(u.name for u in CAT.units)
    fulfilment = Fulfilment(CAT, Reversals(CAT, units=units), units=units)
    book = SubscriptionBook(CAT, fulfilment, units=units)
    found = Billing(
        uow_factory=db.uow,
        catalog=CAT,
        views=Views(db.uow, CAT, clock),
        book=book,
        stripe=stripe,
        clock=clock,
    )
    if stripe is not None:
        stripe.clock = clock
    return found, db, clock


def link(db: MemoryDatabase, account: str, customer: str) -> None:
    with db.uow() as uow:
        uow.accounts.upsert(account, now=T0)
        uow.accounts.link_customer(account, customer, now=T0)
        uow.commit()


def test_sync_applies_what_stripe_has_and_a_second_sync_changes_nothing() -> None:
    stripe = FakeStripeBilling(lambda: 0)
    service, db, _ = billing(stripe)
    story = Story("user_1")
    stripe.remember(story.state("created", T0 + 10), story.paid("0", T0 + 11))
    link(db, "user_1", story.customer)
    first = service.sync("user_1")
    assert (first.accounts, first.subscriptions, len(first.changes), first.failures) == (
        1,
        1,
        2,
        [],
    )
    assert "state unknown -> active (pro)" in first.changes[0].what
    assert service.entitlements("user_1").plan == "pro"
    again = service.sync("user_1")
    assert again.changes == []


def test_sync_all_walks_every_account_with_a_customer_and_reports_progress() -> None:
    stripe = FakeStripeBilling(lambda: 0)
    service, db, _ = billing(stripe)
    for n in range(3):
        story = Story(f"user_{n}")
        stripe.remember(story.state("created", T0 + 10))
        link(db, f"user_{n}", story.customer)
    seen: list[tuple[int, int, str]] = []
    report = service.sync_all(progress=lambda done, total, who: seen.append((done, total, who)))
    assert [s[:2] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    assert (report.accounts, report.subscriptions, len(report.changes)) == (3, 3, 3)


def test_one_accounts_failure_is_reported_and_the_others_go_on() -> None:
    stripe = FakeStripeBilling(lambda: 0)
    service, db, _ = billing(stripe)
    link(db, "user_a", "cus_a")
    link(db, "user_b", "cus_b")
    stripe.down = True
    report = service.sync_all()
    assert report.accounts == 2
    assert len(report.failures) == 2
    assert all("unreachable" in f for f in report.failures)


def test_change_plan_and_cancel_apply_what_stripe_answers_at_once() -> None:
    stripe = FakeStripeBilling(lambda: 0)
    service, db, clock = billing(stripe)
    story = Story("user_1")
    stripe.remember(story.state("created", T0 + 10))
    link(db, "user_1", story.customer)
    service.sync("user_1")
    changed = service.change_plan(ChangePlan(account_id="user_1", plan="elite"))
    assert changed.plan == "elite"
    assert service.entitlements("user_1").plan == "elite"
    ending = service.cancel(Cancel(account_id="user_1"))
    assert ending.cancel_at_period_end
    assert service.entitlements("user_1").plan == "elite"  # until the period ends
    clock.now = T0 + 40 * DAY
    assert service.entitlements("user_1").plan == "free"


@pytest.mark.parametrize(
    ("command", "error", "words"),
    [
        (ChangePlan(account_id="user_1", plan="free"), errors.ValidationError, "default plan"),
        (ChangePlan(account_id="user_1", plan="gold"), errors.UnknownPlan, "gold"),
        (ChangePlan(account_id="user_none", plan="elite"), errors.NotFound, "no subscription"),
        (Cancel(account_id="user_none"), errors.NotFound, "no subscription"),
    ],
)
def test_a_change_that_cannot_be_made_says_why_and_calls_nobody(
    command: ChangePlan | Cancel, error: type[Exception], words: str
) -> None:
    stripe = FakeStripeBilling(lambda: 0)
    service, _, _ = billing(stripe)

    def act() -> object:
        if isinstance(command, ChangePlan):
            return service.change_plan(command)
        return service.cancel(command)

    with pytest.raises(error, match=words):
        act()
    assert stripe.calls == []


def test_without_stripe_configured_the_error_names_the_setting() -> None:
    service, db, _ = billing(None)
    link(db, "user_1", "cus_1")
    with pytest.raises(errors.StripeUnavailable, match="BILLFOLD_STRIPE_SECRET_KEY"):
        service.portal_url("user_1", None)
    with pytest.raises(errors.Conflict, match="no Stripe customer"):
        service.portal_url("user_nobody", None)


def test_check_asks_for_a_known_unit_and_reports_the_balance() -> None:
    service, _, _ = billing(None)
    with pytest.raises(errors.UnknownUnit):
        service.check(CheckRequest(account_id="user_1", unit="gold", amount=1))
    found = service.check(CheckRequest(account_id="user_1", unit="credits", amount=1))
    assert (found.allowed, found.balance, [r.code for r in found.reasons]) == (
        False,
        0,
        ["insufficient_balance"],
    )

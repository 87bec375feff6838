"""The inbox, the event handlers, fulfilment and reversals on the memory database.

The same stories as ``tests/e2e/test_webhooks.py`` (over HTTP, on SQLite and PostgreSQL), told to
the service layer directly: a signed delivery in, the books out, in milliseconds. After every test
the audit must find the books sound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from billfold.domain import errors
from billfold.service.ledger import Spend
from tests.builders import stripe_events as se
from tests.support.memory import HOUR, FakeStripe, Shop, line_item

Event = dict[str, Any]


@pytest.fixture
def shop() -> Iterator[Shop]:
    opened = Shop.open()
    yield opened
    assert opened.db.verify() == []


def paid_session(account: str = "user_1", package: str = "starter", **fields: Any) -> Event:
    fields.setdefault(
        "amount_total", {"starter": 499, "popular": 1499, "professional": 2999}.get(package, 499)
    )
    return se.checkout_session_completed(
        metadata={"billfold_account": account, "billfold_package": package}, **fields
    )


def payment_intent_of(event: Event) -> str:
    return str(event["data"]["object"]["payment_intent"])


# --- one-time purchases --------------------------------------------------------------------------


def test_given_a_paid_checkout_when_delivered_twice_then_granted_once_and_the_repeat_is_a_duplicate(
    shop: Shop,
) -> None:
    event = paid_session()
    first = shop.deliver(event)
    again = shop.deliver(event)
    assert (first.status, first.duplicate) == ("processed", False)
    assert (again.status, again.duplicate) == ("duplicate", True)
    assert shop.balances("user_1") == {"credits": 500}
    assert [(g.amount, g.kind) for g in shop.grants("user_1")] == [(500, "purchase")]
    order = shop.order()
    assert (order.status, order.account_id, order.package, order.amount) == (
        "fulfilled",
        "user_1",
        "starter",
        499,
    )
    record = shop.event(event["id"])
    assert (record.status, record.attempts, record.outcome) == (
        "processed",
        1,
        f"order {order.id} fulfilled",
    )


def test_given_the_same_session_in_three_events_then_one_grant(shop: Shop) -> None:
    sid = se.new_id("cs_test")
    meta = {"billfold_account": "user_1", "billfold_package": "starter"}
    receipts = [
        shop.deliver(paid_session(session_id=sid)),
        shop.deliver(paid_session(session_id=sid)),
        shop.deliver(se.async_payment_succeeded(session_id=sid, metadata=meta)),
    ]
    assert [r.status for r in receipts] == ["processed"] * 3
    assert shop.balances("user_1") == {"credits": 500}
    assert len(shop.grants("user_1")) == 1


def test_given_no_payment_required_then_the_order_is_fulfilled(shop: Shop) -> None:
    shop.deliver(paid_session(payment_status="no_payment_required"))
    assert shop.balances("user_1") == {"credits": 500}


def test_given_a_delayed_payment_method_then_pending_until_the_async_payment_succeeds(
    shop: Shop,
) -> None:
    sid = se.new_id("cs_test")
    meta = {"billfold_account": "user_1", "billfold_package": "popular"}
    shop.deliver(
        se.checkout_session_completed(
            session_id=sid, metadata=meta, payment_status="unpaid", amount_total=1499
        )
    )
    assert [o.status for o in shop.orders()] == ["pending"]
    assert shop.balances("user_1") == {}
    shop.clock.advance(HOUR)
    shop.deliver(se.async_payment_succeeded(session_id=sid, metadata=meta, amount_total=1499))
    assert shop.balances("user_1") == {"credits": 1500}
    order = shop.order()
    assert (order.status, order.fulfilled_at) == ("fulfilled", shop.clock.now)


def test_given_the_async_success_before_the_completed_event_then_no_downgrade_to_pending(
    shop: Shop,
) -> None:
    sid = se.new_id("cs_test")
    meta = {"billfold_account": "user_1", "billfold_package": "starter"}
    shop.deliver(se.async_payment_succeeded(session_id=sid, metadata=meta))
    shop.deliver(
        se.checkout_session_completed(session_id=sid, metadata=meta, payment_status="unpaid")
    )
    assert shop.balances("user_1") == {"credits": 500}
    assert [o.status for o in shop.orders()] == ["fulfilled"]


@pytest.mark.parametrize(
    ("builder", "status"),
    [(se.async_payment_failed, "failed"), (se.session_expired, "expired")],
    ids=["failed", "expired"],
)
def test_given_a_failed_or_expired_session_then_the_order_says_so_and_nothing_is_granted(
    shop: Shop, builder: Callable[..., Event], status: str
) -> None:
    receipt = shop.deliver(
        builder(metadata={"billfold_account": "user_1", "billfold_package": "starter"})
    )
    assert receipt.status == "processed"
    assert [o.status for o in shop.orders()] == [status]
    assert shop.balances("user_1") == {}


def test_given_a_package_with_a_bonus_then_two_grants_with_their_priority_and_expiry(
    shop: Shop,
) -> None:
    shop.deliver(paid_session(package="professional"))
    grants = sorted((g.amount, g.priority, g.kind, g.expires_at) for g in shop.grants("user_1"))
    assert grants == [(500, 10, "bonus", shop.clock.now + 90 * 86_400), (3500, 0, "purchase", None)]
    assert shop.balances("user_1") == {"credits": 4000}


def test_given_a_custom_amount_top_up_then_the_paid_amount_is_credited(shop: Shop) -> None:
    shop.deliver(paid_session(package="budget", amount_total=2500))
    assert shop.balances("user_1") == {"usd": 2500}


# --- what needs an operator ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"package": "nope"}, "unknown package 'nope' in the payment's metadata"),
        (
            {"amount_total": 450},
            "amount mismatch: paid 450 usd, package 'starter' costs 499 usd",
        ),
        (
            {"amount_total": 499, "currency": "eur"},
            "amount mismatch: paid 499 eur, package 'starter' costs 499 usd",
        ),
        (
            {"package": "budget", "amount_total": 100},
            "amount mismatch: paid 100 usd, package 'budget' costs 500..100000 usd",
        ),
    ],
    ids=["unknown-package", "amount", "currency", "custom-amount-out-of-range"],
)
def test_given_a_payment_that_does_not_match_the_catalog_then_it_needs_attention(
    shop: Shop, fields: dict[str, Any], reason: str
) -> None:
    event = paid_session(**fields)
    assert shop.deliver(event).status == "processed"
    (order,) = shop.orders("needs_attention")
    assert order.status_reason == reason
    assert order.account_id == "user_1"
    assert shop.balances("user_1") == {}


def test_given_a_payment_naming_no_account_then_it_needs_attention(shop: Shop) -> None:
    shop.deliver(
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"},
            client_reference_id=None,
            customer=None,
            email=None,
        )
    )
    (order,) = shop.orders("needs_attention")
    assert (order.account_id, order.package) == (None, "starter")
    assert order.status_reason is not None
    assert order.status_reason.startswith("no account")


def test_given_client_reference_id_only_then_it_names_the_account(shop: Shop) -> None:
    shop.deliver(
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"}, client_reference_id="user_ref"
        )
    )
    assert shop.balances("user_ref") == {"credits": 500}


def test_given_a_customer_linked_to_an_account_then_the_payment_finds_it(shop: Shop) -> None:
    with shop.db.uow() as uow:
        uow.accounts.upsert("user_cus", now=shop.clock.now, stripe_customer_id="cus_linked")
        uow.commit()
    shop.deliver(
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"}, customer="cus_linked"
        )
    )
    assert shop.balances("user_cus") == {"credits": 500}


def test_given_only_an_email_of_exactly_one_account_then_that_account_in_any_case(
    shop: Shop,
) -> None:
    with shop.db.uow() as uow:
        uow.accounts.upsert("user_mail", now=shop.clock.now, email="Jenny@Example.com")
        uow.commit()
    shop.deliver(
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"}, email="jenny@example.com"
        )
    )
    assert shop.balances("user_mail") == {"credits": 500}


def test_given_an_email_shared_by_two_accounts_then_neither_is_guessed(shop: Shop) -> None:
    with shop.db.uow() as uow:
        uow.accounts.upsert("user_a", now=shop.clock.now, email="sam@example.com")
        uow.accounts.upsert("user_b", now=shop.clock.now, email="SAM@example.com")
        uow.commit()
    shop.deliver(
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"}, email="sam@example.com"
        )
    )
    assert [o.account_id for o in shop.orders("needs_attention")] == [None]


def test_given_a_paid_checkout_then_the_account_is_linked_to_its_customer_and_email(
    shop: Shop,
) -> None:
    shop.deliver(paid_session(customer="cus_new", email="new@example.com"))
    with shop.db.uow() as uow:
        account = uow.accounts.get("user_1")
    assert account is not None
    assert (account.stripe_customer_id, account.email) == ("cus_new", "new@example.com")


# --- sessions that need Stripe: the worker's -----------------------------------------------------


def test_given_a_session_without_billfold_metadata_then_the_request_leaves_it_to_the_worker() -> (
    None
):
    stripe = FakeStripe()
    shop = Shop.open(stripe=stripe)
    event = se.checkout_session_completed(metadata={}, client_reference_id="user_li")
    session_id = str(event["data"]["object"]["id"])
    stripe.line_items[session_id] = [line_item("price_starter", 499)]

    receipt = shop.deliver(event)
    assert receipt.status == "received"  # the request never calls Stripe
    assert stripe.asked == []
    assert shop.orders() == []  # what it began was rolled back
    record = shop.event(event["id"])
    assert (record.status, record.outcome, record.lease_owner) == (
        "received",
        "waiting for the worker: needs Stripe",
        None,
    )

    outcomes = shop.run_worker()
    assert [(o.event_id, o.status) for o in outcomes] == [(event["id"], "processed")]
    assert stripe.asked == [session_id]
    assert shop.status(event["id"]) == "processed"
    assert shop.balances("user_li") == {"credits": 500}
    assert shop.run_worker() == []
    assert shop.db.verify() == []


def test_given_a_session_that_names_no_package_then_the_worker_reads_its_line_items_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It is evident from the event that its line items are needed: they are read before the
    transaction, which then applies the event once (no attempt rolled back to find out)."""
    stripe = FakeStripe()
    shop = Shop.open(stripe=stripe)
    events = [
        se.checkout_session_completed(metadata={}, client_reference_id=f"user_{i}")
        for i in range(3)
    ]
    for event in events:
        stripe.line_items[str(event["data"]["object"]["id"])] = [line_item("price_starter")]
        assert shop.deliver(event).status == "received"
    applied: list[bool] = []
    apply = shop.handlers.apply

    def counted(uow: Any, fact: Any, event_id: str, now: int, fetched: Any) -> Any:
        applied.append(fetched.line_items is not None)
        return apply(uow, fact, event_id, now, fetched)

    monkeypatch.setattr(shop.handlers, "apply", counted)
    assert [o.status for o in shop.run_worker()] == ["processed"] * 3
    assert applied == [True] * 3  # once each, with the line items already read
    assert sorted(stripe.asked) == sorted(str(e["data"]["object"]["id"]) for e in events)
    assert [shop.balances(f"user_{i}") for i in range(3)] == [{"credits": 500}] * 3
    assert shop.db.verify() == []


def test_given_a_round_event_that_must_go_alone_then_stripe_is_not_asked_for_it_twice() -> None:
    """A session whose refund came first cannot be settled inside the round (the clawback reads
    the ledger beyond it): it is processed on its own, with the line items the round read."""
    stripe = FakeStripe()
    shop = Shop.open(stripe=stripe)
    pi = se.new_id("pi")
    assert shop.deliver(se.charge_refunded(payment_intent=pi, amount=499)).status == "processed"
    checkout = se.checkout_session_completed(
        metadata={}, client_reference_id="user_li", payment_intent=pi, amount_total=499
    )
    session_id = str(checkout["data"]["object"]["id"])
    stripe.line_items[session_id] = [line_item("price_starter")]
    assert shop.deliver(checkout).status == "received"

    assert [o.status for o in shop.run_worker()] == ["processed"]
    assert stripe.asked.count(session_id) == 1
    assert shop.balances("user_li") == {"credits": 0}  # granted, then the refund took it
    assert shop.db.verify() == []


def test_given_line_items_with_no_catalog_price_then_the_worker_leaves_the_order_for_an_operator() -> (
    None
):
    stripe = FakeStripe()
    shop = Shop.open(stripe=stripe)
    event = se.checkout_session_completed(
        metadata={},
        client_reference_id=None,
        customer=None,
        email=None,
        amount_total=12345,
        currency="eur",
    )
    stripe.line_items[str(event["data"]["object"]["id"])] = [line_item("price_other", 12345)]
    assert shop.deliver(event).status == "received"
    shop.run_worker()
    (order,) = shop.orders("needs_attention")
    assert order.stripe_id == event["data"]["object"]["id"]
    assert (order.package, order.account_id) == (None, None)
    assert shop.grants("user_1") == []
    assert shop.db.verify() == []


def test_given_stripe_failing_when_the_worker_asks_for_line_items_then_the_event_fails_and_retries() -> (
    None
):
    stripe = FakeStripe()  # knows no session: answers NotFound
    shop = Shop.open(stripe=stripe)
    event = se.checkout_session_completed(metadata={}, client_reference_id="user_li")
    shop.deliver(event)
    (outcome,) = shop.run_worker()
    record = shop.event(event["id"])
    assert (outcome.status, record.status, record.attempts) == ("failed", "failed", 1)
    assert record.last_error is not None
    assert record.last_error.startswith("NotFound: No such checkout session")
    assert record.next_attempt_at is not None
    assert record.next_attempt_at > shop.clock.now
    stripe.line_items[str(event["data"]["object"]["id"])] = [line_item("price_starter")]
    assert shop.run_worker() == []  # not due yet
    shop.clock.advance(HOUR)
    assert [o.status for o in shop.run_worker()] == ["processed"]
    assert shop.balances("user_li") == {"credits": 500}
    assert shop.db.verify() == []


# --- payment intents -----------------------------------------------------------------------------


def test_given_a_payment_intent_billfold_created_then_it_is_fulfilled_once(shop: Shop) -> None:
    event = se.payment_intent_succeeded(
        amount=499, metadata={"billfold_account": "user_pi", "billfold_package": "starter"}
    )
    shop.deliver(event)
    shop.deliver(se.any_event("payment_intent.succeeded", event["data"]["object"]))
    assert shop.balances("user_pi") == {"credits": 500}
    order = shop.order()
    assert (order.kind, order.key, order.status) == (
        "payment_intent",
        f"pi:{event['data']['object']['id']}",
        "fulfilled",
    )


def test_given_the_payment_intent_of_a_checkout_then_it_is_only_recorded(shop: Shop) -> None:
    session = paid_session()
    pi = payment_intent_of(session)
    shop.deliver(session)
    succeeded = shop.deliver(se.payment_intent_succeeded(payment_intent_id=pi, metadata={}))
    failed = shop.deliver(se.payment_intent_failed(payment_intent_id=pi, metadata={}))
    unknown = se.payment_intent_failed(metadata={})
    shop.deliver(unknown)
    assert (succeeded.status, failed.status) == ("processed", "processed")
    assert shop.balances("user_1") == {"credits": 500}
    assert shop.order().payment_error == "Your card was declined."
    assert shop.event(unknown["id"]).outcome == (
        "recorded: no billfold order uses this payment intent"
    )


# --- refunds and disputes ------------------------------------------------------------------------


def test_given_a_full_refund_delivered_twice_then_the_grants_are_clawed_back_once(
    shop: Shop,
) -> None:
    session = paid_session(package="popular")
    pi = payment_intent_of(session)
    shop.deliver(session)
    refund = se.charge_refunded(payment_intent=pi, amount=1499, amount_refunded=1499)
    shop.deliver(refund)
    shop.deliver(se.any_event("charge.refunded", refund["data"]["object"]))
    assert shop.balances("user_1") == {"credits": 0}
    order = shop.order()
    assert (order.status, order.refunded_amount) == ("refunded", 1499)
    assert [t.kind for t in shop.history("user_1")] == ["clawback", "grant"]


def test_given_partial_then_full_refunds_under_floor_then_only_what_is_left_is_taken(
    shop: Shop,
) -> None:
    session = paid_session(package="starter")
    pi = payment_intent_of(session)
    shop.deliver(session)
    shop.ledger.spend(Spend(key="s1", account_id="user_1", unit="credits", amount=400))

    first = se.refund(amount=250, charge="ch_1", payment_intent=pi)
    half = shop.deliver(
        se.charge_refunded(charge_id="ch_1", payment_intent=pi, amount=499, refunds=[first])
    )
    # 250 of 499 paid stands for 250 of the 500 credits; 100 are left to take.
    assert half.status == "processed"
    outcome = shop.event(shop.delivered[-1]).outcome or ""
    assert f"settled on order {shop.order().id}: took 100 credits, 150 unrecovered" in outcome
    assert shop.balances("user_1") == {"credits": 0}
    assert shop.order().status == "fulfilled"

    # Stripe lists every refund of the charge so far: the first again, and the second.
    second = se.refund(amount=249, charge="ch_1", payment_intent=pi)
    shop.deliver(
        se.charge_refunded(charge_id="ch_1", payment_intent=pi, amount=499, refunds=[first, second])
    )
    view = shop.ledger.balances("user_1")["credits"]
    assert (view.available, view.debt) == (0, 0)
    assert (shop.order().status, shop.order().refunded_amount) == ("refunded", 499)


def test_given_partial_then_full_refunds_under_debt_then_the_balance_owes_the_rest(
    shop: Shop,
) -> None:
    session = paid_session(package="trusted", amount_total=999)
    pi = payment_intent_of(session)
    shop.deliver(session)
    shop.ledger.spend(Spend(key="s1", account_id="user_1", unit="credits", amount=600))

    shop.deliver(se.charge_refunded(payment_intent=pi, amount=999, amount_refunded=500))
    # 500 of 999 stands for 500 of the 1000 credits: 400 are left, 100 become debt.
    view = shop.ledger.balances("user_1")["credits"]
    assert (view.available, view.debt) == (-100, 100)

    shop.deliver(se.charge_refunded(payment_intent=pi, amount=999, amount_refunded=999))
    view = shop.ledger.balances("user_1")["credits"]
    assert (view.available, view.debt) == (-600, 600)
    assert shop.order().status == "refunded"

    # The next purchase repays the debt first.
    shop.deliver(paid_session(package="popular"))
    view = shop.ledger.balances("user_1")["credits"]
    assert (view.available, view.debt) == (900, 0)


def test_given_a_refund_of_an_order_never_fulfilled_then_nothing_is_clawed_back(
    shop: Shop,
) -> None:
    session = paid_session(amount_total=450)  # needs attention: amount mismatch
    shop.deliver(session)
    shop.deliver(se.charge_refunded(payment_intent=payment_intent_of(session), amount=450))
    order = shop.order()
    assert (order.status, order.refunded_amount) == ("needs_attention", 450)
    assert shop.history("user_1") == []


def test_given_a_dispute_then_the_share_is_held_and_released_when_won(shop: Shop) -> None:
    session = paid_session(package="starter")
    pi = payment_intent_of(session)
    shop.deliver(session)
    dispute_id = se.new_id("du")
    shop.deliver(se.dispute_created(dispute_id=dispute_id, payment_intent=pi, amount=499))
    view = shop.ledger.balances("user_1")["credits"]
    assert (view.available, view.held) == (0, 500)
    assert shop.order().disputed_amount == 499

    shop.deliver(
        se.dispute_closed(dispute_id=dispute_id, payment_intent=pi, amount=499, status="won")
    )
    view = shop.ledger.balances("user_1")["credits"]
    assert (view.available, view.held) == (500, 0)
    assert shop.order().disputed_amount == 0


def test_given_a_lost_dispute_then_the_held_share_is_clawed_back(shop: Shop) -> None:
    session = paid_session(package="starter")
    pi = payment_intent_of(session)
    shop.deliver(session)
    dispute_id = se.new_id("du")
    shop.deliver(se.dispute_created(dispute_id=dispute_id, payment_intent=pi, amount=499))
    closed = se.dispute_closed(dispute_id=dispute_id, payment_intent=pi, amount=499)
    shop.deliver(closed)
    shop.deliver(se.any_event("charge.dispute.closed", closed["data"]["object"]))
    view = shop.ledger.balances("user_1")["credits"]
    assert (view.available, view.held, view.debt) == (0, 0, 0)
    assert [t.kind for t in shop.history("user_1")] == ["clawback", "release", "hold", "grant"]


def test_given_a_dispute_of_a_charge_billfold_never_sold_then_nothing_is_held(
    shop: Shop,
) -> None:
    event = se.dispute_created(amount=499)
    assert shop.deliver(event).status == "processed"
    outcome = shop.event(event["id"]).outcome or ""
    assert outcome.endswith("kept (no order yet): settled when the payment is fulfilled")
    assert shop.balances("user_1") == {}


# --- failures, retries, replays ------------------------------------------------------------------


def test_given_a_handler_that_keeps_failing_then_failed_with_backoff_then_dead_then_retried_by_an_operator(
    shop: Shop,
) -> None:
    shop.handlers.failures = 3
    event = paid_session()
    receipt = shop.deliver(event)
    record = shop.event(event["id"])
    assert (receipt.status, record.status, record.attempts) == ("failed", "failed", 1)
    assert record.last_error == "RuntimeError: the handler broke"
    assert record.next_attempt_at is not None
    assert record.next_attempt_at > shop.clock.now  # backoff
    assert shop.run_worker() == []  # not due yet
    with shop.db.uow() as uow:  # what the failing handler wrote was rolled back
        assert uow.accounts.get("written_before_the_failure") is None

    shop.clock.advance(HOUR)
    assert [o.status for o in shop.run_worker()] == ["failed"]
    shop.clock.advance(HOUR)
    assert [o.status for o in shop.run_worker()] == ["dead"]
    record = shop.event(event["id"])
    assert (record.status, record.attempts, record.next_attempt_at) == ("dead", 3, None)
    shop.clock.advance(HOUR)
    assert shop.run_worker() == []  # the dead stay dead
    assert shop.balances("user_1") == {}
    assert [e.id for e in shop.views.events(status="dead").data] == [event["id"]]

    retried = shop.inbox.retry(event["id"])
    assert (retried.outcome.status, retried.event.status, retried.event.attempts) == (
        "processed",
        "processed",
        4,
    )
    assert shop.balances("user_1") == {"credits": 500}
    # Each failure is in the history with its error; the operator's retry too, whatever it did.
    _, history = shop.views.event_with_attempts(event["id"])
    assert [(a.attempt, a.outcome, a.error) for a in history] == [
        (1, "failed", "RuntimeError: the handler broke"),
        (2, "failed", "RuntimeError: the handler broke"),
        (3, "dead", "RuntimeError: the handler broke"),
        (4, "processed", None),
    ]
    assert [a.worker for a in history][::3] == ["webhook", "operator"]
    assert history[1].worker is not None
    assert history[1].worker.startswith("worker")


def test_given_a_handler_failing_once_then_the_worker_succeeds_when_it_is_due(
    shop: Shop,
) -> None:
    shop.handlers.failures = 1
    event = paid_session()
    assert shop.deliver(event).status == "failed"
    shop.clock.advance(HOUR)
    assert [o.status for o in shop.run_worker()] == ["processed"]
    assert shop.balances("user_1") == {"credits": 500}
    assert shop.views.backlog() == {}


def test_given_a_worker_round_where_one_event_fails_then_only_it_fails_and_the_rest_are_applied(
    shop: Shop,
) -> None:
    """The round applies its events in one transaction: one whose processing raises records its
    failed attempt (as alone) and leaves the batch; the batch is written without it."""
    events = [paid_session(f"user_{i}") for i in range(3)]
    shop.handlers.failures = len(events)  # every delivery fails: all wait for the worker
    assert [shop.deliver(e).status for e in events] == ["failed"] * 3
    shop.clock.advance(HOUR)
    shop.handlers.failures = 1  # the round's first application raises

    outcomes = shop.run_worker()

    assert [o.status for o in outcomes].count("failed") == 1
    assert [o.status for o in outcomes].count("processed") == 2
    (failing,) = [o.event_id for o in outcomes if o.status == "failed"]
    record = shop.event(failing)
    assert (record.status, record.attempts) == ("failed", 2)
    assert record.last_error == "RuntimeError: the handler broke"
    with shop.db.uow() as uow:
        assert uow.accounts.get("written_before_the_failure") is None  # rolled back
    shop.clock.advance(HOUR)
    assert [o.status for o in shop.run_worker()] == ["processed"]
    assert [shop.balances(f"user_{i}") for i in range(3)] == [{"credits": 500}] * 3
    assert shop.db.verify() == []


def test_given_a_worker_round_whose_batch_cannot_be_written_then_each_event_goes_alone(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [paid_session(f"user_{i}") for i in range(3)]
    shop.handlers.failures = len(events)
    for event in events:
        shop.deliver(event)
    shop.clock.advance(HOUR)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise errors.ConstraintViolation("a row was created meanwhile", constraint="pk_balances")

    monkeypatch.setattr(shop.inbox, "_write_batch", refused)
    assert [o.status for o in shop.run_worker()] == ["processed"] * 3
    assert [shop.balances(f"user_{i}") for i in range(3)] == [{"credits": 500}] * 3


def test_given_a_worker_round_with_an_event_already_settled_then_it_is_skipped() -> None:
    stripe = FakeStripe()
    shop = Shop.open(stripe=stripe)
    waiting = se.checkout_session_completed(metadata={}, client_reference_id="user_li")
    stripe.line_items[str(waiting["data"]["object"]["id"])] = [line_item("price_starter")]
    shop.deliver(waiting)
    claimed = shop.inbox.claim("worker-1", 10)
    assert shop.inbox.process(waiting["id"]).status == "processed"  # an operator was faster

    (outcome,) = shop.inbox.process_claimed(claimed)
    assert (outcome.event_id, outcome.status) == (waiting["id"], "skipped")
    assert shop.balances("user_li") == {"credits": 500}


def test_given_a_processed_event_when_replayed_then_nothing_changes(shop: Shop) -> None:
    event = paid_session()
    shop.deliver(event)
    before = (shop.balances("user_1"), shop.history("user_1"), shop.order())
    outcome = shop.inbox.replay(event["id"])
    assert outcome.status == "processed"
    assert (shop.balances("user_1"), shop.history("user_1"), shop.order()) == before
    assert shop.status(event["id"]) == "processed"


def test_given_a_processed_event_when_an_operator_retries_it_then_it_is_not_retryable(
    shop: Shop,
) -> None:
    event = paid_session()
    shop.deliver(event)
    with pytest.raises(errors.EventNotRetryable):
        shop.inbox.retry(event["id"])
    with pytest.raises(errors.EventNotFound):
        shop.inbox.replay("evt_missing")


def test_given_an_event_type_billfold_does_not_handle_then_it_is_ignored(shop: Shop) -> None:
    event = se.any_event("customer.created", se.customer())
    assert shop.deliver(event).status == "ignored"
    assert shop.status(event["id"]) == "ignored"


def test_given_a_forged_signature_then_nothing_is_stored(shop: Shop) -> None:
    body, headers = se.signed(paid_session(), "whsec_someone_else")
    with pytest.raises(errors.InvalidSignature):
        shop.inbox.receive_webhook(body, headers["Stripe-Signature"])
    assert shop.views.events().data == ()

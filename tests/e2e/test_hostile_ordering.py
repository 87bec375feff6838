"""Exactly once under hostile ordering (issue 10): one payment, one fulfilment, one reversal,
whatever arrives when, on SQLite and PostgreSQL, through the webhook route.

A 1,000-credit pack sells for $9.99 under the ``debt`` policy. Every test names the events it sends
in the order Stripe may really send them, and checks the books converge: the same balance and debt
whatever the order, never more taken back than the payment granted.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billfold.bootstrap import Services
from tests.builders import stripe_events as se
from tests.support.app import (
    SECRET,
    admin_headers,
    count,
    deliver,
    event_status,
    running_app,
)

CATALOG = """
[policy]
refund = "floor"

[units.credits]

[packages.thousand]
title = "Thousand Pack"
currency = "usd"
price = 999
refund_policy = "debt"
grants = [{ unit = "credits", amount = 1000 }]

[packages.starter]
title = "Starter Pack"
currency = "usd"
price = 499
grants = [{ unit = "credits", amount = 500 }]
"""

App = tuple[TestClient, Services]


@pytest.fixture
def catalog(tmp_path: Path) -> str:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    return str(path)


@pytest.fixture
def app(db_url: str, engine: Any, catalog: str) -> Iterator[App]:
    with running_app(db_url, catalog=catalog) as pair:
        yield pair


def credits(services: Services, account: str) -> tuple[int, int, int]:
    """(available, held, debt) of credits."""
    view = services.ledger.balances(account).get("credits")
    return (0, 0, 0) if view is None else (view.available, view.held, view.debt)


@dataclass
class Payment:
    """The events Stripe sends about one $9.99 payment of ``account``'s 1,000-credit pack."""

    account: str
    n: int = 0
    session: str = field(init=False)
    pi: str = field(init=False)
    charge: str = field(init=False)
    dispute: str = field(init=False)
    refund_1: dict[str, Any] = field(init=False)
    refund_2: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        tag = f"{self.account}{self.n}"
        self.session, self.pi = f"cs_test_{tag}", f"pi_{tag}"
        self.charge, self.dispute = f"ch_{tag}", f"dp_{tag}"
        self.refund_1 = se.refund(
            refund_id=f"re_{tag}a", amount=400, charge=self.charge, payment_intent=self.pi
        )
        self.refund_2 = se.refund(
            refund_id=f"re_{tag}b", amount=599, charge=self.charge, payment_intent=self.pi
        )

    def metadata(self, package: str = "thousand") -> dict[str, str]:
        return {"billfold_account": self.account, "billfold_package": package}

    def completed(self, package: str = "thousand") -> dict[str, Any]:
        return se.checkout_session_completed(
            session_id=self.session,
            payment_intent=self.pi,
            amount_total=999,
            metadata=self.metadata(package),
        )

    def intent_succeeded(self) -> dict[str, Any]:
        return se.payment_intent_succeeded(
            payment_intent_id=self.pi, amount=999, metadata=self.metadata()
        )

    def refunded(self, *, full: bool) -> dict[str, Any]:
        """``charge.refunded``: Stripe lists every refund of the charge so far."""
        refunds = [self.refund_1, self.refund_2] if full else [self.refund_1]
        return se.charge_refunded(
            charge_id=self.charge, payment_intent=self.pi, amount=999, refunds=refunds
        )

    def dispute_created(self) -> dict[str, Any]:
        return se.dispute_created(
            dispute_id=self.dispute, charge=self.charge, payment_intent=self.pi, amount=999
        )

    def dispute_closed(self, status: str) -> dict[str, Any]:
        return se.dispute_closed(
            dispute_id=self.dispute,
            charge=self.charge,
            payment_intent=self.pi,
            amount=999,
            status=status,
        )


def send(client: TestClient, events: Sequence[dict[str, Any]]) -> None:
    for event in events:
        answer = deliver(client, event)
        assert answer.status_code == 200, answer.text


def send_concurrently(client: TestClient, events: Sequence[dict[str, Any]]) -> None:
    start = threading.Barrier(len(events))

    def one(event: dict[str, Any]) -> int:
        start.wait()
        return int(deliver(client, event).status_code)

    with ThreadPoolExecutor(len(events)) as pool:
        assert list(pool.map(one, events)) == [200] * len(events)


# --- 1. one payment, one order ---------------------------------------------------------------------


@pytest.mark.parametrize("first", ["checkout", "payment_intent"])
def test_a_checkout_and_its_payment_intent_are_one_payment_with_one_grant(
    app: App, first: str
) -> None:
    client, services = app
    pay = Payment("user_one")
    events = [pay.completed(), pay.intent_succeeded()]
    send(client, events if first == "checkout" else events[::-1])
    assert credits(services, "user_one") == (1000, 0, 0)
    assert count(services, "orders") == 1
    assert services.views.orders().data[0].payment_intent_id == pay.pi


def test_a_checkout_and_its_payment_intent_delivered_at_once_grant_once(app: App) -> None:
    client, services = app
    for n in range(5):
        pay = Payment("user_race", n)
        send_concurrently(client, [pay.completed(), pay.intent_succeeded()] * 3)
    assert credits(services, "user_race") == (5000, 0, 0)
    assert count(services, "orders") == 5


# --- 2. a refund and a lost dispute of one charge take it back once ------------------------------


@pytest.mark.parametrize("order", ["refund_first", "dispute_first"])
def test_a_refund_and_a_lost_dispute_of_one_charge_take_back_what_it_granted_once(
    app: App, order: str
) -> None:
    client, services = app
    pay = Payment("user_twice")
    send(client, [pay.completed()])
    refund = [pay.refunded(full=True)]
    dispute = [pay.dispute_created(), pay.dispute_closed("lost")]
    send(client, refund + dispute if order == "refund_first" else dispute + refund)
    assert credits(services, "user_twice") == (0, 0, 0)


def test_a_refund_and_a_lost_dispute_delivered_at_once_take_back_once(app: App) -> None:
    client, services = app
    pay = Payment("user_both")
    send(client, [pay.completed()])
    send_concurrently(
        client, [pay.refunded(full=True), pay.dispute_created(), pay.dispute_closed("lost")] * 2
    )
    assert credits(services, "user_both") == (0, 0, 0)


# --- 3. reversals that arrive before their purchase ------------------------------------------------


def test_a_refund_that_arrives_before_its_purchase_is_kept_and_applied(app: App) -> None:
    client, services = app
    pay = Payment("user_early")
    send(client, [pay.refunded(full=True)])
    assert credits(services, "user_early") == (0, 0, 0)
    send(client, [pay.completed()])
    assert credits(services, "user_early") == (0, 0, 0)
    assert services.views.orders().data[0].status == "refunded"


def test_a_partial_refund_before_its_purchase_takes_its_share_when_fulfilled(app: App) -> None:
    client, services = app
    pay = Payment("user_half")
    send(client, [pay.refunded(full=False), pay.completed()])
    assert credits(services, "user_half") == (1000 - 1000 * 400 // 999, 0, 0)


def test_a_lost_dispute_that_arrives_before_its_purchase_is_kept_and_applied(app: App) -> None:
    client, services = app
    pay = Payment("user_disputed")
    send(client, [pay.dispute_created(), pay.dispute_closed("lost"), pay.completed()])
    assert credits(services, "user_disputed") == (0, 0, 0)


# --- 4. a refunded order resolved later ------------------------------------------------------------


def test_resolving_an_order_refunded_while_it_needed_attention_grants_and_takes_back(
    app: App,
) -> None:
    client, services = app
    pay = Payment("user_resolved")
    send(client, [pay.completed(package="no_such_pack"), pay.refunded(full=True)])
    order = services.views.orders(status="needs_attention").data[0]
    assert order.refunded_amount == 999
    resolved = client.post(
        f"/v1/orders/{order.id}/resolve", json={"package": "thousand"}, headers=admin_headers()
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "refunded"
    assert credits(services, "user_resolved") == (0, 0, 0)


# --- 5. disputes out of order ------------------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "left"), [("won", 1300), ("lost", 300)])
def test_a_dispute_closed_before_it_was_opened_is_final_and_touches_only_its_lots(
    app: App, outcome: str, left: int
) -> None:
    client, services = app
    pay = Payment("user_closed")
    send(client, [pay.completed()])
    granted = client.post(
        "/v1/accounts/user_closed/grants",
        json={"unit": "credits", "amount": 300, "reason": "goodwill"},
        headers=admin_headers(),
    )
    assert granted.status_code == 201
    send(client, [pay.dispute_closed(outcome), pay.dispute_created()])
    assert credits(services, "user_closed") == (left, 0, 0)


def test_an_open_dispute_holds_only_the_lots_its_payment_granted(app: App) -> None:
    client, services = app
    pay = Payment("user_held")
    send(client, [pay.completed()])
    client.post(
        "/v1/accounts/user_held/grants",
        json={"unit": "credits", "amount": 300, "reason": "goodwill"},
        headers=admin_headers(),
    )
    send(client, [pay.dispute_created()])
    assert credits(services, "user_held") == (300, 1000, 0)
    send(client, [pay.dispute_closed("won")])
    assert credits(services, "user_held") == (1300, 0, 0)


# --- the permutations: any subset, any order, converges ---------------------------------------------

EVENTS = ("completed", "intent", "refund_part", "refund_full", "dispute_open", "dispute_closed")


def expected(chosen: Sequence[str], outcome: str) -> tuple[int, int, int]:
    granted = 1000 if {"completed", "intent"} & set(chosen) else 0
    if not granted:
        return (0, 0, 0)
    refunded = 999 if "refund_full" in chosen else 400 if "refund_part" in chosen else 0
    lost = 999 if "dispute_closed" in chosen and outcome == "lost" else 0
    open_dispute = "dispute_open" in chosen and "dispute_closed" not in chosen

    def target(money: int) -> int:
        return 1000 if money >= 999 else 1000 * money // 999

    taken = target(refunded + lost)
    held = target(refunded + lost + 999) - taken if open_dispute else 0
    return (granted - taken - held, held, 0)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    chosen=st.lists(st.sampled_from(EVENTS), min_size=1, max_size=6, unique=True).flatmap(
        st.permutations
    ),
    outcome=st.sampled_from(["won", "lost"]),
    redeliver=st.booleans(),
)
def test_every_order_of_one_payments_events_converges_and_never_takes_more_than_granted(
    app: App, chosen: list[str], outcome: str, redeliver: bool
) -> None:
    client, services = app
    account = f"user_{next(_accounts)}"
    pay = Payment(account)
    build: dict[str, Callable[[], dict[str, Any]]] = {
        "completed": pay.completed,
        "intent": pay.intent_succeeded,
        "refund_part": lambda: pay.refunded(full=False),
        "refund_full": lambda: pay.refunded(full=True),
        "dispute_open": pay.dispute_created,
        "dispute_closed": lambda: pay.dispute_closed(outcome),
    }
    events = [build[name]() for name in chosen]
    send(client, events + (events[:2] if redeliver else []))
    available, held, debt = credits(services, account)
    assert (available, held, debt) == expected(chosen, outcome)
    assert available + held <= 1000


_accounts = itertools.count()


# --- 6. live events in a test setup ------------------------------------------------------------------


@pytest.mark.parametrize(("key", "live"), [("sk_test_hostile", True), ("sk_live_hostile", False)])
def test_an_event_whose_mode_does_not_match_the_stripe_key_is_kept_and_grants_nothing(
    db_url: str, engine: Any, catalog: str, key: str, live: bool
) -> None:
    with running_app(db_url, catalog=catalog, stripe_secret_key=key) as (client, services):
        pay = Payment("user_mode")
        event = pay.completed()
        event["livemode"] = live
        event["data"]["object"]["livemode"] = live
        assert deliver(client, event).status_code == 200
        assert event_status(services, event["id"]) == "dead"
        assert "livemode mismatch" in (services.views.event(event["id"]).last_error or "")
        assert credits(services, "user_mode") == (0, 0, 0)
        assert count(services, "orders") == 0


# --- 7-12. inputs that answered 500 ------------------------------------------------------------------


def _signed(client: TestClient, body: bytes) -> Any:
    from billfold.adapters.stripe.signature import sign

    return client.post(
        "/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": sign(body, SECRET), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(json.dumps(se.checkout_session_completed()).encode("utf-16"), id="utf-16"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-arrays"),
        pytest.param(
            b"\xef\xbb\xbf" + json.dumps(se.checkout_session_completed()).encode(), id="bom"
        ),
        pytest.param(
            json.dumps({**se.checkout_session_completed(), "created": 2**63}).encode(),
            id="created-2**63",
        ),
        pytest.param(
            json.dumps({**se.checkout_session_completed(), "created": -1}).encode(),
            id="created-negative",
        ),
        pytest.param(
            json.dumps({**se.checkout_session_completed(), "id": "evt_" + "x" * 300}).encode(),
            id="id-too-long",
        ),
    ],
)
def test_a_validly_signed_body_that_is_no_storable_event_answers_400_and_stores_nothing(
    app: App, body: bytes
) -> None:
    client, services = app
    answer = _signed(client, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_event"
    assert count(services, "events") == 0


def test_an_account_id_longer_than_an_account_id_needs_attention_on_every_database(
    app: App,
) -> None:
    client, services = app
    event = se.checkout_session_completed(
        metadata={"billfold_account": "u" * 300, "billfold_package": "no_such_pack"}
    )
    assert deliver(client, event).status_code == 200
    assert event_status(services, event["id"]) == "processed"
    order = services.views.orders(status="needs_attention").data[0]
    assert order.account_id is None
    assert "200 characters" in (order.status_reason or "")


@pytest.mark.parametrize("amount", [2**63, 2**64, 10**16])
def test_a_paid_amount_past_what_the_books_hold_needs_attention_and_is_not_retried(
    app: App, amount: int
) -> None:
    client, services = app
    pay = Payment("user_huge")
    event = se.checkout_session_completed(
        session_id=pay.session, payment_intent=pay.pi, amount_total=amount, metadata=pay.metadata()
    )
    assert deliver(client, event).status_code == 200
    assert event_status(services, event["id"]) == "processed"
    order = services.views.orders(status="needs_attention").data[0]
    assert order.amount is None
    assert "out of range" in (order.status_reason or "")
    assert credits(services, "user_huge") == (0, 0, 0)


# --- the route under arbitrary signed input -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.builds(
        lambda obj, kind, n: json.dumps(
            {
                "id": f"evt_fuzz{n}",
                "object": "event",
                "type": kind,
                "created": 1,
                "data": {"object": obj},
            }
        ).encode(),
        st.dictionaries(st.text(max_size=12), json_values, max_size=6),
        st.sampled_from(
            [
                "checkout.session.completed",
                "payment_intent.succeeded",
                "charge.refunded",
                "charge.dispute.closed",
                "invoice.paid",
            ]
        ),
        st.uuids().map(lambda u: u.hex),
    )
)
def test_signed_arbitrary_bytes_and_json_never_answer_5xx_and_never_grant(
    app: App, body: bytes
) -> None:
    client, services = app
    answer = _signed(client, body)
    assert answer.status_code < 500, answer.text
    assert count(services, "grants") == 0

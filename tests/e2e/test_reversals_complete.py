"""Reversals, complete (issue 13), on SQLite and PostgreSQL through the webhook route: refunds keyed by
refund id whatever event carries them, failed and canceled refunds given back by a new transaction,
and the dispute's fund movements recorded.

A 1,000-credit pack sells for $9.99 under ``debt``; a 500-credit pack for $4.99 under ``floor``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from billfold.service.ledger import Spend
from tests.builders import stripe_events as se
from tests.support.app import deliver, running_app

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
def app(db_url: str, engine: Any, tmp_path: Path) -> Iterator[App]:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    with running_app(db_url, catalog=str(path)) as pair:
        yield pair


def send(client: TestClient, *events: dict[str, Any]) -> None:
    for event in events:
        answer = deliver(client, event)
        assert answer.status_code == 200, answer.text


def buy(client: TestClient, account: str, tag: str, package: str = "thousand") -> dict[str, str]:
    ids = {"pi": f"pi_{tag}", "charge": f"ch_{tag}"}
    send(
        client,
        se.checkout_session_completed(
            session_id=f"cs_test_{tag}",
            payment_intent=ids["pi"],
            amount_total=999 if package == "thousand" else 499,
            metadata={"billfold_account": account, "billfold_package": package},
        ),
    )
    return ids


def credits(services: Services, account: str) -> tuple[int, int, int]:
    view = services.ledger.balances(account)["credits"]
    return (view.available, view.held, view.debt)


def reversals(services: Services, account: str) -> dict[str, tuple[str, int, int, int]]:
    """Per Stripe id: (state, recovered, unrecovered, held), as the explanation shows them."""
    explained = services.views.explain(account, "credits", must_exist=True)
    return {r.stripe_id: (r.state, r.recovered, r.unrecovered, r.held) for r in explained.reversals}


def kinds(services: Services, account: str) -> list[str]:
    page = services.views.transactions(account, must_exist=True, limit=100, starting_after=None)
    return [x.kind for x in reversed(page.data)]


# --- refunds keyed by refund id, whatever event carries them --------------------------------------

ORDERS = {
    "as_stripe_sends_them": (0, 1, 2, 3, 4),
    "charge_refunded_first": (3, 4, 2, 0, 1),
    "reversed": (4, 3, 2, 1, 0),
    "updates_before_creates": (1, 2, 3, 4, 0),
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_two_partial_refunds_take_their_share_once_whatever_events_carry_them_in_any_order(
    app: App, order: str
) -> None:
    client, services = app
    ids = buy(client, "user_parts", "parts")
    refund_a = se.refund(
        refund_id="re_parts_a",
        amount=300,
        charge=ids["charge"],
        payment_intent=ids["pi"],
        status="pending",
    )
    refund_b = se.refund(
        refund_id="re_parts_b", amount=200, charge=ids["charge"], payment_intent=ids["pi"]
    )
    settled_a = dict(refund_a, status="succeeded")
    events = [
        se.any_event("refund.created", refund_a),
        se.any_event("charge.refund.updated", settled_a),
        se.any_event("refund.updated", refund_b),
        se.charge_refunded(
            charge_id=ids["charge"],
            payment_intent=ids["pi"],
            amount=999,
            refunds=[settled_a, refund_b],
        ),
        se.any_event("refund.created", refund_b),
    ]
    send(client, *(events[i] for i in ORDERS[order]))
    send(client, *events)  # and every one of them again

    # 500 of 999 refunded: floor(1000 * 500 / 999) = 500 credits, 300 + 200 by refund.
    assert credits(services, "user_parts") == (500, 0, 0)
    assert reversals(services, "user_parts") == {
        "re_parts_a": ("applied", 300, 0, 0),
        "re_parts_b": ("applied", 200, 0, 0),
    }
    assert kinds(services, "user_parts") == ["grant", "clawback", "clawback"]


# --- a refund that fails or is canceled gives back what it took -----------------------------------


@pytest.mark.parametrize("how", ["refund.failed", "refund.updated", "charge.refund.updated"])
def test_a_refund_that_fails_after_its_clawback_is_given_back_by_a_new_transaction(
    app: App, how: str
) -> None:
    client, services = app
    ids = buy(client, "user_fail", "fail")
    services.ledger.spend(Spend(key="s", account_id="user_fail", unit="credits", amount=100))
    pending = se.refund(
        refund_id="re_fail",
        amount=999,
        charge=ids["charge"],
        payment_intent=ids["pi"],
        status="pending",
    )
    send(client, se.any_event("refund.created", pending))
    assert credits(services, "user_fail") == (-100, 0, 100)  # "debt": the spent part is owed
    assert reversals(services, "user_fail") == {"re_fail": ("applied", 1000, 0, 0)}

    status = "failed" if how != "charge.refund.updated" else "canceled"
    send(client, se.any_event(how, dict(pending, status=status)))
    assert credits(services, "user_fail") == (900, 0, 0)  # exactly as before the refund
    assert reversals(services, "user_fail") == {"re_fail": ("restored", 0, 0, 0)}
    # Nothing rewritten: the clawback stays, and the restore is a transaction of its own.
    assert kinds(services, "user_fail") == ["grant", "spend", "clawback", "restore"]

    send(client, se.any_event("refund.updated", dict(pending, status="succeeded")))
    assert credits(services, "user_fail") == (900, 0, 0)  # a failed refund stays failed


def test_a_refund_canceled_before_billfold_saw_it_created_takes_nothing(app: App) -> None:
    client, services = app
    ids = buy(client, "user_void", "void", package="starter")
    refund = se.refund(
        refund_id="re_void", amount=499, charge=ids["charge"], payment_intent=ids["pi"]
    )
    send(client, se.any_event("refund.updated", dict(refund, status="canceled")))
    send(client, se.any_event("refund.created", dict(refund, status="pending")))
    assert credits(services, "user_void") == (500, 0, 0)
    assert reversals(services, "user_void") == {"re_void": ("void", 0, 0, 0)}
    assert kinds(services, "user_void") == ["grant"]


def test_a_floor_refund_given_back_returns_only_what_it_took(app: App) -> None:
    client, services = app
    ids = buy(client, "user_floor", "floor", package="starter")
    services.ledger.spend(Spend(key="s", account_id="user_floor", unit="credits", amount=450))
    refund = se.refund(
        refund_id="re_floor",
        amount=499,
        charge=ids["charge"],
        payment_intent=ids["pi"],
        status="succeeded",
    )
    send(client, se.any_event("refund.created", refund))
    assert credits(services, "user_floor") == (0, 0, 0)
    assert reversals(services, "user_floor") == {"re_floor": ("applied", 50, 450, 0)}
    send(client, se.refund_event("refund.failed", **_fields(refund)))
    assert credits(services, "user_floor") == (50, 0, 0)


def _fields(refund: dict[str, Any]) -> dict[str, Any]:
    return {
        "refund_id": refund["id"],
        "amount": refund["amount"],
        "charge": refund["charge"],
        "payment_intent": refund["payment_intent"],
    }


# --- disputes: held, fund movements recorded, released or taken back -----------------------------


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_a_dispute_holds_records_its_fund_movements_then_releases_or_takes_back(
    app: App, outcome: str
) -> None:
    client, services = app
    ids = buy(client, "user_dispute", "dispute")
    fields: dict[str, Any] = {
        "dispute_id": "dp_story",
        "charge": ids["charge"],
        "payment_intent": ids["pi"],
        "amount": 999,
    }
    send(client, se.dispute_created(**fields))
    assert credits(services, "user_dispute") == (0, 1000, 0)
    withdrawn = se.dispute_event("funds_withdrawn", **fields)
    send(client, withdrawn, withdrawn)  # recorded once, whatever the redeliveries
    assert credits(services, "user_dispute") == (0, 1000, 0)  # a record: the hold is unchanged
    closed = se.dispute_closed(status=outcome, **fields)
    send(client, closed)
    if outcome == "won":
        # Stripe lists the dispute's every balance transaction: the withdrawal again, then this.
        (taken,) = withdrawn["data"]["object"]["balance_transactions"]
        back = se.balance_transaction(amount=999, currency="usd", source="dp_story")
        send(
            client,
            se.dispute_event(
                "funds_reinstated", status="won", balance_transactions=[taken, back], **fields
            ),
        )

    explained = services.views.explain("user_dispute", "credits", must_exist=True)
    (dispute,) = explained.reversals
    assert [(f.event, f.amount, f.fee) for f in dispute.funds] == [
        ("funds_withdrawn", -999, 1500),
        *([("funds_reinstated", 999, 0)] if outcome == "won" else []),
    ]
    body = client.get(
        "/v1/accounts/user_dispute/balance/explain",
        headers={"Authorization": "Bearer adm_test_token"},
    ).json()
    assert [f["event"] for f in body["reversals"][0]["funds"]] == [f.event for f in dispute.funds]
    if outcome == "won":
        assert credits(services, "user_dispute") == (1000, 0, 0)
        assert (dispute.state, dispute.recovered) == ("released", 0)
    else:
        assert credits(services, "user_dispute") == (0, 0, 0)
        assert (dispute.state, dispute.recovered) == ("applied", 1000)

"""``GET /v1/accounts/{id}/balance/explain`` (issue 13): every lot that makes up a balance, where
it came from, what drew on it; holds, debt and reversals; and the amounts add up to the balance.
On SQLite and PostgreSQL, through the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from tests.builders import stripe_events as se
from tests.conftest import FakeClock
from tests.support.api import ADMIN_AUTH, SERVER, as_user, grant, keyed
from tests.support.app import deliver, running_app

CATALOG = """
[policy]
refund = "floor"

[units.credits]

[units.tokens]

[packages.thousand]
title = "Thousand Pack"
currency = "usd"
price = 999
refund_policy = "debt"
grants = [{ unit = "credits", amount = 1000 }]

[packages.starter]
title = "Starter Pack"
currency = "usd"
price = 500
grants = [{ unit = "credits", amount = 400 }, { unit = "credits", amount = 100, kind = "bonus" }]
"""

Api = tuple[TestClient, Services]


@pytest.fixture
def api(db_url: str, engine: Any, clock: FakeClock, tmp_path: Path) -> Iterator[Api]:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    with running_app(db_url, clock=clock, catalog=str(path)) as pair:
        yield pair


def buy(client: TestClient, account: str, tag: str, package: str, price: int) -> dict[str, str]:
    ids = {"session": f"cs_test_{tag}", "pi": f"pi_{tag}", "charge": f"ch_{tag}"}
    event = se.checkout_session_completed(
        session_id=ids["session"],
        payment_intent=ids["pi"],
        amount_total=price,
        metadata={"billfold_account": account, "billfold_package": package},
    )
    assert deliver(client, event).status_code == 200
    return ids


def refund(client: TestClient, ids: dict[str, str], refund_id: str, amount: int) -> None:
    event = se.refund_event(
        "refund.created",
        refund_id=refund_id,
        amount=amount,
        charge=ids["charge"],
        payment_intent=ids["pi"],
        status="succeeded",
    )
    assert deliver(client, event).status_code == 200


def explain(client: TestClient, account: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(f"/v1/accounts/{account}/balance/explain", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_adds_up(body: dict[str, Any]) -> None:
    """The sum rule, and each lot's draws account for what it no longer holds."""
    total = sum(lot["remaining"] for lot in body["lots"])
    assert body["balance"] == total - body["held"] - body["debt"]
    assert body["held"] == sum(h["amount"] for h in body["holds"])
    for lot in body["lots"]:
        assert lot["amount"] - sum(d["amount"] for d in lot["draws"]) == lot["remaining"], lot


def test_given_a_purchase_a_manual_grant_a_spend_a_hold_and_a_refund_the_lots_explain_the_balance(
    api: Api, clock: FakeClock
) -> None:
    client, services = api
    ids = buy(client, "user_1", "a1", "starter", 500)
    manual = grant(client, "user_1", 100, priority=-1, expires_at=clock.now + 3_600)
    spent = client.post(
        "/v1/accounts/user_1/spend",
        json={"unit": "credits", "amount": 80},
        headers=keyed(SERVER, "spend-1"),
    )
    assert spent.status_code == 200, spent.text
    held = client.post(
        "/v1/accounts/user_1/holds",
        json={"unit": "credits", "amount": 30, "ttl_seconds": 600, "reason": "render job"},
        headers=keyed(SERVER, "hold-1"),
    )
    assert held.status_code == 201, held.text
    refund(client, ids, "re_a1", 100)  # a fifth of the payment: a fifth of each lot

    body = explain(client, "user_1", SERVER, unit="credits")
    assert (body["account_id"], body["unit"]) == ("user_1", "credits")
    assert body["balance"] == services.views.balances("user_1").available["credits"]
    assert body["balance"] == 500 + 100 - 80 - 30 - 100
    assert_adds_up(body)

    lots = {lot["grant_id"]: lot for lot in body["lots"]}
    first = lots[manual["id"]]  # priority -1: spent first
    assert first["origin"] == {
        "type": "manual",
        "order_id": None,
        "stripe": {
            "checkout_session": None,
            "payment_intent": None,
            "invoice": None,
            "charge": None,
        },
    }
    assert [(d["kind"], d["amount"]) for d in first["draws"]] == [("spend", 80)]
    purchased = [lot for lot in body["lots"] if lot["origin"]["type"] == "order"]
    assert sorted(lot["amount"] for lot in purchased) == [100, 400]
    order_id = purchased[0]["origin"]["order_id"]
    for lot in purchased:
        assert lot["origin"]["order_id"] == order_id
        assert lot["origin"]["stripe"] == {
            "checkout_session": ids["session"],
            "payment_intent": ids["pi"],
            "invoice": None,
            "charge": ids["charge"],
        }
        claws = [d for d in lot["draws"] if d["kind"] == "clawback"]
        assert sum(d["amount"] for d in claws) == lot["amount"] // 5
    draws = [d for lot in body["lots"] for d in lot["draws"]]
    assert sum(d["amount"] for d in draws if d["kind"] == "spend") == 80
    assert (first["remaining"], first["held"]) == (20, 20)  # the hold reserves it first
    assert all(d["transaction_id"].startswith("txn_") for d in draws)
    assert body["holds"] == [
        {
            "hold_id": held.json()["id"],
            "amount": 30,
            "expires_at": clock.now + 600,
            "reason": "render job",
            "created": clock.now,
        }
    ]
    assert body["debt"] == 0
    assert body["reversals"] == [
        {
            "kind": "refund",
            "refund": "re_a1",
            "order_id": order_id,
            "status": "succeeded",
            "state": "applied",
            "amount": 100,
            "currency": "usd",
            "recovered": 100,
            "taken": 100,
            "debt": 0,
            "unrecovered": 0,
            "held": 0,
        }
    ]


def test_a_refund_of_what_was_spent_shows_as_debt_and_the_next_grant_repays_it(
    api: Api,
) -> None:
    client, _ = api
    ids = buy(client, "user_debt", "d1", "thousand", 999)
    spent = client.post(
        "/v1/accounts/user_debt/spend",
        json={"unit": "credits", "amount": 900},
        headers=keyed(SERVER, "spend-d"),
    )
    assert spent.status_code == 200
    refund(client, ids, "re_d1", 999)  # all of it back, under "debt"

    owed = explain(client, "user_debt", SERVER)  # the unit defaults to the catalog's first
    assert owed["unit"] == "credits"
    assert (owed["balance"], owed["debt"], owed["lots"]) == (-900, 900, [])
    assert owed["reversals"][0]["refund"] == "re_d1"
    assert (owed["reversals"][0]["taken"], owed["reversals"][0]["debt"]) == (100, 900)
    assert owed["reversals"][0]["recovered"] == 1000
    assert_adds_up(owed)

    repay = grant(client, "user_debt", 1000)
    after = explain(client, "user_debt", SERVER)
    assert (after["balance"], after["debt"]) == (100, 0)
    (lot,) = after["lots"]
    assert lot["grant_id"] == repay["id"]
    assert [(d["kind"], d["amount"]) for d in lot["draws"]] == [("debt_repayment", 900)]
    assert_adds_up(after)


def test_a_floor_refund_of_spent_credits_reports_what_it_could_not_recover(api: Api) -> None:
    client, _ = api
    ids = buy(client, "user_floor", "f1", "starter", 500)
    assert (
        client.post(
            "/v1/accounts/user_floor/spend",
            json={"unit": "credits", "amount": 450},
            headers=keyed(SERVER, "spend-f"),
        ).status_code
        == 200
    )
    refund(client, ids, "re_f1", 500)
    body = explain(client, "user_floor", SERVER)
    (reversal,) = body["reversals"]
    assert (reversal["recovered"], reversal["unrecovered"], reversal["debt"]) == (50, 450, 0)
    assert (body["balance"], body["debt"], body["lots"]) == (0, 0, [])


def test_expiry_the_sweep_has_not_written_is_already_a_draw_and_a_lapsed_hold_is_gone(
    api: Api, clock: FakeClock
) -> None:
    client, services = api
    grant(client, "user_exp", 100, expires_at=clock.now + 60)
    grant(client, "user_exp", 40)
    hold = client.post(
        "/v1/accounts/user_exp/holds",
        json={"unit": "credits", "amount": 30, "ttl_seconds": 30},
        headers=keyed(SERVER, "hold-exp"),
    )
    assert hold.status_code == 201
    clock.now += 61
    body = explain(client, "user_exp", SERVER)
    assert body["balance"] == services.views.balances("user_exp").available["credits"] == 40
    assert body["holds"] == []
    assert [lot["amount"] for lot in body["lots"]] == [40]
    assert_adds_up(body)


def test_an_expired_lot_a_live_hold_still_reserves_stays_listed_with_its_pending_expiry(
    api: Api, clock: FakeClock
) -> None:
    client, services = api
    expiring = grant(client, "user_kept", 100, expires_at=clock.now + 60)
    grant(client, "user_kept", 40)
    hold = client.post(
        "/v1/accounts/user_kept/holds",
        json={"unit": "credits", "amount": 30, "ttl_seconds": 600},
        headers=keyed(SERVER, "hold-kept"),
    )
    assert hold.status_code == 201
    clock.now += 61
    body = explain(client, "user_kept", SERVER)
    assert body["balance"] == services.views.balances("user_kept").available["credits"] == 40
    kept = next(lot for lot in body["lots"] if lot["grant_id"] == expiring["id"])
    assert (kept["remaining"], kept["held"]) == (30, 30)
    assert kept["draws"] == [
        {"transaction_id": None, "kind": "expire", "amount": 70, "created": clock.now - 1}
    ]
    assert [h["amount"] for h in body["holds"]] == [30]
    assert_adds_up(body)


# --- access ----------------------------------------------------------------------------------------


def test_the_owner_the_server_and_the_admin_may_read_it_and_another_user_may_not(
    api: Api,
) -> None:
    client, _ = api
    grant(client, "user_1", 500)
    for headers in (SERVER, ADMIN_AUTH, as_user("user_1")):
        assert explain(client, "user_1", headers, unit="credits")["balance"] == 500
    other = client.get(
        "/v1/accounts/user_1/balance/explain?unit=credits", headers=as_user("user_2")
    )
    assert other.status_code == 403
    assert other.json()["code"] == "forbidden"
    assert "500" not in other.text
    anonymous = client.get("/v1/accounts/user_1/balance/explain?unit=credits")
    assert anonymous.status_code == 401


def test_an_unknown_account_is_404_for_the_server_and_empty_for_its_own_user(api: Api) -> None:
    client, _ = api
    for headers in (SERVER, ADMIN_AUTH):
        response = client.get("/v1/accounts/nobody/balance/explain", headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "account_not_found"
    mine = explain(client, "newbie", as_user("newbie"), unit="tokens")
    assert mine == {
        "object": "balance_explanation",
        "account_id": "newbie",
        "unit": "tokens",
        "balance": 0,
        "held": 0,
        "debt": 0,
        "lots": [],
        "holds": [],
        "reversals": [],
    }


def test_an_unknown_unit_is_400(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 5)
    response = client.get("/v1/accounts/user_1/balance/explain?unit=gems", headers=SERVER)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "unit"


def test_the_explanation_is_in_the_openapi_document(api: Api) -> None:
    client, _ = api
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/accounts/{account_id}/balance/explain"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/BalanceExplainResponse")
    assert "LotResponse" in document["components"]["schemas"]

"""The account routes: balances, details, grants, transactions, entitlements; the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from tests.conftest import FakeClock
from tests.support.api import ADMIN_AUTH, SERVER, api_client, as_user, grant, keyed
from tests.support.app import count

Api = tuple[TestClient, Services]


@pytest.fixture
def api(db_url: str, engine: Any, clock: FakeClock) -> Iterator[Api]:
    with api_client(db_url, clock=clock) as pair:
        yield pair


# --- catalog -------------------------------------------------------------------------------------


def test_the_catalog_is_public_and_shows_units_packages_and_plans(api: Api) -> None:
    client, _ = api
    response = client.get("/v1/catalog")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "catalog"
    assert {u["name"] for u in body["units"]} == {"credits", "tokens", "usd"}
    starter = next(p for p in body["packages"] if p["id"] == "starter")
    assert starter["price"] == 499
    assert starter["grants"] == [
        {"unit": "credits", "amount": 500, "expires_in_days": None, "kind": "purchase"}
    ]
    budget = next(p for p in body["packages"] if p["id"] == "budget")
    assert budget["custom_amount"] == {"min": 500, "max": 100000}
    assert budget["grants"][0]["amount"] == "paid"
    assert next(p for p in body["plans"] if p["default"])["id"] == "free"


# --- GET /v1/accounts/{id} -----------------------------------------------------------------------


def test_given_a_grant_when_reading_the_account_then_every_unit_has_a_balance(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 500)
    response = client.get("/v1/accounts/user_1", headers=SERVER)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "user_1"
    assert body["object"] == "account"
    assert body["balances"] == {"credits": 500, "tokens": 0, "usd": 0}
    assert body["held"] == {"credits": 0, "tokens": 0, "usd": 0}
    assert body["debt"] == {"credits": 0, "tokens": 0, "usd": 0}
    assert body["email"] is None
    assert body["metadata"] == {}
    assert isinstance(body["created"], int)


def test_an_unknown_account_is_404_for_server_keys_and_admin(api: Api) -> None:
    client, _ = api
    for headers in (SERVER, ADMIN_AUTH):
        response = client.get("/v1/accounts/nobody", headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "account_not_found"


def test_a_user_sees_their_own_account_even_before_anything_happened(api: Api) -> None:
    client, services = api
    response = client.get("/v1/accounts/new_user", headers=as_user("new_user"))
    assert response.status_code == 200
    assert response.json()["balances"] == {"credits": 0, "tokens": 0, "usd": 0}
    assert response.json()["created"] is None
    assert count(services, "accounts") == 0


def test_a_user_never_sees_another_users_account(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 500)
    response = client.get("/v1/accounts/user_1", headers=as_user("user_2"))
    assert response.status_code == 403
    assert "500" not in response.text
    assert response.json()["code"] == "forbidden"


def test_a_reserved_account_id_is_400(api: Api) -> None:
    client, _ = api
    response = client.get("/v1/accounts/sys:stripe", headers=SERVER)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


# --- PUT /v1/accounts/{id} -----------------------------------------------------------------------


def test_put_creates_the_account_then_updates_only_the_fields_given(api: Api) -> None:
    client, _ = api
    created = client.put(
        "/v1/accounts/user_1",
        json={"email": "ada@example.com", "metadata": {"plan": "beta"}},
        headers=SERVER,
    )
    assert created.status_code == 200, created.text
    assert created.json()["email"] == "ada@example.com"
    assert created.json()["metadata"] == {"plan": "beta"}
    updated = client.put(
        "/v1/accounts/user_1", json={"stripe_customer_id": "cus_ABC123"}, headers=SERVER
    )
    body = updated.json()
    assert body["email"] == "ada@example.com"  # left out: unchanged
    assert body["stripe_customer_id"] == "cus_ABC123"
    assert body["metadata"] == {"plan": "beta"}
    cleared = client.put(
        "/v1/accounts/user_1", json={"email": None, "metadata": {"tier": "x"}}, headers=SERVER
    )
    assert cleared.json()["email"] is None
    assert cleared.json()["metadata"] == {"tier": "x"}  # replaced, not merged
    assert client.get("/v1/accounts/user_1", headers=SERVER).json()["metadata"] == {"tier": "x"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": 42}, "email"),
        ({"stripe_customer_id": "acct_123"}, "stripe_customer_id"),
        ({"metadata": {"k": 1}}, "metadata.k"),
        ({"metadata": {"x" * 41: "v"}}, "metadata.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.[key]"),
        ({"nickname": "ada"}, "nickname"),
    ],
)
def test_put_with_an_invalid_field_is_400_naming_it_and_writes_nothing(
    api: Api, body: dict[str, Any], param: str
) -> None:
    client, services = api
    response = client.put("/v1/accounts/user_1", json=body, headers=SERVER)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert response.json()["error"]["param"] == param
    assert param.split(".")[0] in response.json()["message"]
    assert count(services, "accounts") == 0


def test_linking_a_stripe_customer_already_linked_elsewhere_is_409(api: Api) -> None:
    client, _ = api
    first = client.put("/v1/accounts/a", json={"stripe_customer_id": "cus_1"}, headers=SERVER)
    assert first.status_code == 200
    second = client.put("/v1/accounts/b", json={"stripe_customer_id": "cus_1"}, headers=SERVER)
    assert second.status_code == 409
    assert second.json()["code"] == "conflict"
    assert client.get("/v1/accounts/b", headers=SERVER).status_code == 404
    again = client.put("/v1/accounts/a", json={"stripe_customer_id": "cus_1"}, headers=SERVER)
    assert again.status_code == 200


# --- grants and transactions ---------------------------------------------------------------------


def test_grants_and_transactions_list_newest_first(api: Api, clock: FakeClock) -> None:
    client, _ = api
    first = grant(client, "user_1", 100)
    clock.advance(10)
    second = grant(client, "user_1", 50, expires_at=clock.now + 3600)
    spent = client.post(
        "/v1/accounts/user_1/spend", json={"unit": "credits", "amount": 30}, headers=SERVER
    )
    assert spent.status_code == 200
    grants = client.get("/v1/accounts/user_1/grants", headers=SERVER).json()
    assert grants["object"] == "list"
    assert [g["id"] for g in grants["data"]] == [second["id"], first["id"]]
    assert grants["has_more"] is False
    # Same priority: the grant that expires is spent before the one that never does.
    assert [g["remaining"] for g in grants["data"]] == [20, 100]
    txns = client.get("/v1/accounts/user_1/transactions", headers=SERVER).json()
    kinds = [t["kind"] for t in txns["data"]]
    assert kinds == ["spend", "grant", "grant"]
    assert [t["net"] for t in txns["data"]] == [-30, 50, 100]
    assert txns["data"][0]["id"] == spent.json()["transaction_id"]
    assert all(sum(line["amount"] for line in t["lines"]) == 0 for t in txns["data"])


def test_live_grants_leave_out_the_spent_and_the_expired(api: Api, clock: FakeClock) -> None:
    client, _ = api
    grant(client, "user_1", 10)
    kept = grant(client, "user_1", 20, expires_at=clock.now + 100, priority=5)
    client.post("/v1/accounts/user_1/spend", json={"unit": "credits", "amount": 10}, headers=SERVER)
    live = client.get("/v1/accounts/user_1/grants?live=true", headers=SERVER).json()
    assert [g["id"] for g in live["data"]] == [kept["id"]]
    clock.advance(101)
    assert client.get("/v1/accounts/user_1/grants?live=true", headers=SERVER).json()["data"] == []


def test_pagination_edges(api: Api) -> None:
    client, _ = api
    ids = [grant(client, "user_1", n + 1)["id"] for n in range(4)]
    newest_first = list(reversed(ids))

    def page(**query: Any) -> Any:
        response = client.get("/v1/accounts/user_1/grants", params=query, headers=SERVER)
        assert response.status_code == 200, response.text
        return response.json()

    one = page(limit=1)
    assert [g["id"] for g in one["data"]] == newest_first[:1]
    assert one["has_more"] is True
    exact = page(limit=2, starting_after=newest_first[1])
    assert [g["id"] for g in exact["data"]] == newest_first[2:]
    assert exact["has_more"] is False  # the page ends exactly at the last grant
    everything = page(limit=4)
    assert len(everything["data"]) == 4
    assert everything["has_more"] is False
    last = page(starting_after=newest_first[-1])
    assert last == {"object": "list", "data": [], "has_more": False}
    # Issue 10: a well-formed id nobody has is no cursor: 400 resource_missing, as Stripe answers
    # (it used to be a position, answering everything older than it).
    for cursor in ("gr_" + "Z" * 26, "gr_" + "0" * 26):
        missing = client.get(
            "/v1/accounts/user_1/grants", params={"starting_after": cursor}, headers=SERVER
        )
        assert missing.status_code == 400
        assert missing.json()["error"]["code"] == "resource_missing"
        assert missing.json()["error"]["param"] == "starting_after"


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=ten", "starting_after=txn_01ABC", "starting_after=nonsense"],
)
def test_invalid_pagination_is_400(api: Api, query: str) -> None:
    client, _ = api
    grant(client, "user_1", 1)
    response = client.get(f"/v1/accounts/user_1/grants?{query}", headers=SERVER)
    assert response.status_code == 400
    assert response.json()["error"]["param"] in ("limit", "starting_after")


def test_transactions_page_by_transaction_id(api: Api) -> None:
    client, _ = api
    for n in range(3):
        grant(client, "user_1", n + 1)
    first = client.get("/v1/accounts/user_1/transactions?limit=2", headers=SERVER).json()
    assert first["has_more"] is True
    rest = client.get(
        "/v1/accounts/user_1/transactions",
        params={"limit": 2, "starting_after": first["data"][-1]["id"]},
        headers=SERVER,
    ).json()
    assert [t["amount"] for t in first["data"] + rest["data"]] == [3, 2, 1]
    assert rest["has_more"] is False
    bad = client.get("/v1/accounts/user_1/transactions?starting_after=gr_x", headers=SERVER)
    assert bad.status_code == 400


def test_lists_of_an_unknown_account_are_404_but_a_users_own_are_empty(api: Api) -> None:
    client, _ = api
    for route in ("grants", "transactions"):
        assert client.get(f"/v1/accounts/ghost/{route}", headers=SERVER).status_code == 404
        mine = client.get(f"/v1/accounts/ghost/{route}", headers=as_user("ghost"))
        assert mine.json() == {"object": "list", "data": [], "has_more": False}


# --- entitlements --------------------------------------------------------------------------------


def test_an_account_without_a_subscription_has_the_default_plan(api: Api) -> None:
    client, _ = api
    for headers in (SERVER, as_user("anyone"), ADMIN_AUTH):
        response = client.get("/v1/accounts/anyone/entitlements", headers=headers)
        assert response.status_code == 200
        assert response.json() == {
            "object": "entitlements",
            "account_id": "anyone",
            "plan": "free",
            "source": "default",
            "status": None,
            "features": {"auto_trading": False, "priority_support": False},
            "limits": {"max_positions": 5},
            "current_period_end": None,
            "grace_until": None,
            "subscription_id": None,
        }


# --- manual grants -------------------------------------------------------------------------------


def test_a_manual_grant_records_its_reason_and_answers_201(api: Api) -> None:
    client, _ = api
    response = client.post(
        "/v1/accounts/user_1/grants",
        json={"unit": "credits", "amount": 250, "reason": "support ticket 42"},
        headers=keyed(ADMIN_AUTH, "ticket-42"),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["object"] == "grant"
    assert body["amount"] == 250
    assert body["balance"] == 250
    assert response.headers["Idempotency-Key"] == "ticket-42"
    listed = client.get("/v1/accounts/user_1/grants", headers=ADMIN_AUTH).json()["data"]
    assert listed[0]["reason"] == "support ticket 42"
    assert listed[0]["kind"] == "manual"
    txn = client.get("/v1/accounts/user_1/transactions", headers=ADMIN_AUTH).json()["data"][0]
    assert txn["reason"] == "support ticket 42"
    replay = client.post(
        "/v1/accounts/user_1/grants",
        json={"unit": "credits", "amount": 250, "reason": "support ticket 42"},
        headers=keyed(ADMIN_AUTH, "ticket-42"),
    )
    assert replay.status_code == 201
    assert replay.json() == body
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert client.get("/v1/accounts/user_1", headers=SERVER).json()["balances"]["credits"] == 250


@pytest.mark.parametrize(
    "body",
    [
        {"unit": "credits", "amount": 5},
        {"unit": "credits", "amount": 5, "reason": ""},
        {"unit": "credits", "amount": 5, "reason": "x" * 501},
        {"unit": "credits", "amount": 5, "reason": "bad\x00text"},
        {"unit": "credits", "amount": 5.0, "reason": "r"},
        {"unit": "credits", "amount": 5, "reason": "r", "kind": "purchase"},
        {"unit": "gold", "amount": 5, "reason": "r"},
    ],
)
def test_a_manual_grant_needs_a_reason_and_a_valid_body(api: Api, body: dict[str, Any]) -> None:
    client, services = api
    response = client.post("/v1/accounts/user_1/grants", json=body, headers=ADMIN_AUTH)
    assert response.status_code == 400, response.text
    assert count(services, "grants") == 0


def test_a_grant_expiring_in_the_past_is_400(api: Api, clock: FakeClock) -> None:
    client, _ = api
    response = client.post(
        "/v1/accounts/user_1/grants",
        json={"unit": "credits", "amount": 5, "reason": "r", "expires_at": clock.now - 1},
        headers=ADMIN_AUTH,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "expires_at"

"""What the operator console's account pages call: search accounts (``GET /v1/accounts``), list an
account's holds (``GET /v1/accounts/{id}/holds``), and take value away with a reason
(``POST /v1/accounts/{id}/adjustments``)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


def given_accounts(client: TestClient, clock: FakeClock) -> None:
    """Three accounts, a second apart: acme (cus_ACME1), acme_eu, bob (the same e-mail as acme)."""
    for account_id, body in (
        ("acme", {"email": "Ops@Acme.example", "stripe_customer_id": "cus_ACME1"}),
        ("acme_eu", {"email": "eu@acme.example"}),
        ("bob", {"email": "ops@acme.example", "stripe_customer_id": "cus_BOB"}),
    ):
        assert (
            client.put(f"/v1/accounts/{account_id}", json=body, headers=SERVER).status_code == 200
        )
        clock.advance(1)


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["data"]]


# --- GET /v1/accounts ----------------------------------------------------------------------------


def test_accounts_list_newest_first_each_as_the_account_route_answers_it(
    api: Api, clock: FakeClock
) -> None:
    client, _ = api
    given_accounts(client, clock)
    grant(client, "acme", 300)
    response = client.get("/v1/accounts", headers=ADMIN_AUTH)
    assert ids(response) == ["bob", "acme_eu", "acme"]
    assert response.json()["has_more"] is False
    [acme] = [a for a in response.json()["data"] if a["id"] == "acme"]
    assert acme == client.get("/v1/accounts/acme", headers=ADMIN_AUTH).json()
    assert acme["balances"]["credits"] == 300


def test_accounts_filter_by_email_customer_or_a_single_query(api: Api, clock: FakeClock) -> None:
    client, _ = api
    given_accounts(client, clock)

    def search(**params: str) -> list[str]:
        return ids(client.get("/v1/accounts", params=params, headers=ADMIN_AUTH))

    assert search(email="OPS@ACME.EXAMPLE") == ["bob", "acme"]
    assert search(stripe_customer_id="cus_ACME1") == ["acme"]
    assert search(stripe_customer_id="cus_acme1") == []
    assert search(query="cus_BOB") == ["bob"]
    assert search(query="acme") == ["acme_eu", "acme"]
    assert search(query="acme_") == ["acme_eu"]
    assert search(query="eu@acme.example") == ["acme_eu"]
    assert search(query="  cus_ACME1 ") == ["acme"]
    assert search(query="nobody") == []
    assert search(query="acme", email="eu@acme.example") == ["acme_eu"]


def test_accounts_page_after_an_account_id(api: Api, clock: FakeClock) -> None:
    client, _ = api
    given_accounts(client, clock)
    first = client.get("/v1/accounts", params={"limit": 2}, headers=ADMIN_AUTH)
    assert ids(first) == ["bob", "acme_eu"]
    assert first.json()["has_more"] is True
    second = client.get(
        "/v1/accounts", params={"limit": 2, "starting_after": "acme_eu"}, headers=ADMIN_AUTH
    )
    assert ids(second) == ["acme"]
    assert second.json()["has_more"] is False


@pytest.mark.parametrize(
    "query",
    [
        "starting_after=nobody",
        "limit=0",
        "limit=101",
        "query=%20%20",
        "email=",
        "query=" + "x" * 321,
    ],
)
def test_an_invalid_account_search_is_400(api: Api, clock: FakeClock, query: str) -> None:
    client, _ = api
    given_accounts(client, clock)
    response = client.get(f"/v1/accounts?{query}", headers=ADMIN_AUTH)
    assert response.status_code == 400, response.text


def test_only_the_admin_searches_accounts(api: Api) -> None:
    client, _ = api
    assert client.get("/v1/accounts").status_code == 401
    assert client.get("/v1/accounts", headers=SERVER).status_code == 403
    assert client.get("/v1/accounts", headers=as_user("user_1")).status_code == 403


# --- GET /v1/accounts/{id}/holds -----------------------------------------------------------------


def place(client: TestClient, account_id: str, amount: int, ttl: int = 600) -> str:
    response = client.post(
        f"/v1/accounts/{account_id}/holds",
        json={"unit": "credits", "amount": amount, "ttl_seconds": ttl, "reason": f"job {amount}"},
        headers=SERVER,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_holds_list_newest_first_and_filter_by_status_as_they_stand(
    api: Api, clock: FakeClock
) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    grant(client, "user_2", 100)
    lapsing = place(client, "user_1", 10, ttl=5)
    captured = place(client, "user_1", 20)
    active = place(client, "user_1", 30)
    place(client, "user_2", 40)
    assert client.post(f"/v1/holds/{captured}/capture", headers=SERVER).status_code == 200
    clock.advance(10)

    def listed(**params: str) -> list[tuple[str, str]]:
        response = client.get("/v1/accounts/user_1/holds", params=params, headers=ADMIN_AUTH)
        assert response.status_code == 200, response.text
        return [(h["id"], h["status"]) for h in response.json()["data"]]

    assert listed() == [(active, "active"), (captured, "captured"), (lapsing, "expired")]
    assert listed(status="active") == [(active, "active")]
    assert listed(status="expired") == [(lapsing, "expired")]
    assert listed(status="captured") == [(captured, "captured")]
    assert listed(status="released") == []
    page = client.get("/v1/accounts/user_1/holds", params={"limit": 1}, headers=ADMIN_AUTH)
    assert page.json()["has_more"] is True
    assert listed(starting_after=active, limit="1") == [(captured, "captured")]
    [first] = client.get("/v1/accounts/user_1/holds", headers=SERVER).json()["data"][:1]
    assert first["object"] == "hold"
    assert (first["amount"], first["reason"]) == (30, "job 30")


def test_holds_are_the_accounts_own_to_read(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    hold_id = place(client, "user_1", 10)
    mine = client.get("/v1/accounts/user_1/holds", headers=as_user("user_1"))
    assert [h["id"] for h in mine.json()["data"]] == [hold_id]
    assert client.get("/v1/accounts/user_1/holds", headers=as_user("user_2")).status_code == 403
    assert client.get("/v1/accounts/user_1/holds").status_code == 401
    assert client.get("/v1/accounts/nobody/holds", headers=ADMIN_AUTH).status_code == 404
    empty = client.get("/v1/accounts/user_9/holds", headers=as_user("user_9"))
    assert (empty.status_code, empty.json()["data"], empty.json()["has_more"]) == (200, [], False)


@pytest.mark.parametrize(
    "query", ["status=frozen", "starting_after=gr_01HZZZZZZZZZZZZZZZZZZZZZZZ", "limit=0"]
)
def test_an_invalid_holds_query_is_400(api: Api, query: str) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    response = client.get(f"/v1/accounts/user_1/holds?{query}", headers=ADMIN_AUTH)
    assert response.status_code == 400, response.text


def test_a_holds_cursor_of_another_account_is_400(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    grant(client, "user_2", 100)
    theirs = place(client, "user_2", 10)
    response = client.get(
        "/v1/accounts/user_1/holds", params={"starting_after": theirs}, headers=ADMIN_AUTH
    )
    assert response.status_code == 400
    assert response.json()["code"] == "resource_missing"


# --- POST /v1/accounts/{id}/adjustments ----------------------------------------------------------


def adjust(client: TestClient, amount: int, reason: str | None = "ticket 7", key: str = "") -> Any:
    body: dict[str, Any] = {"unit": "credits", "amount": amount}
    if reason is not None:
        body["reason"] = reason
    headers = keyed(ADMIN_AUTH, key) if key else ADMIN_AUTH
    return client.post("/v1/accounts/user_1/adjustments", json=body, headers=headers)


def credits(client: TestClient) -> int:
    return int(client.get("/v1/accounts/user_1", headers=SERVER).json()["balances"]["credits"])


def test_an_adjustment_takes_value_away_in_a_transaction_of_its_own_with_its_reason(
    api: Api,
) -> None:
    client, _ = api
    granted = grant(client, "user_1", 100)
    response = adjust(client, 30, "duplicate grant, ticket 7")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["object"] == "adjustment"
    assert (body["amount"], body["balance"], body["reason"]) == (
        30,
        70,
        "duplicate grant, ticket 7",
    )
    assert body["draws"] == [{"grant_id": granted["id"], "amount": 30}]
    assert credits(client) == 70
    [txn, _] = client.get("/v1/accounts/user_1/transactions", headers=ADMIN_AUTH).json()["data"]
    assert (txn["id"], txn["kind"], txn["net"]) == (body["transaction_id"], "adjustment", -30)
    assert txn["reason"] == "duplicate grant, ticket 7"
    assert {(ln["account_id"], ln["amount"]) for ln in txn["lines"]} == {
        ("user_1", -30),
        ("sys:adjustments", 30),
    }
    explained = client.get(
        "/v1/accounts/user_1/balance/explain", params={"unit": "credits"}, headers=ADMIN_AUTH
    ).json()
    [lot] = explained["lots"]
    assert lot["remaining"] == 70
    assert [(d["kind"], d["amount"]) for d in lot["draws"]] == [("adjustment", 30)]


def test_an_adjustment_past_the_balance_is_402_and_never_makes_debt(api: Api) -> None:
    client, services = api
    grant(client, "user_1", 100)
    assert (
        client.post(
            "/v1/accounts/user_1/holds", json={"unit": "credits", "amount": 60}, headers=SERVER
        ).status_code
        == 201
    )
    response = adjust(client, 41)
    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_balance"
    assert response.json()["error"]["available"] == 40
    account = client.get("/v1/accounts/user_1", headers=ADMIN_AUTH).json()
    assert (account["balances"]["credits"], account["debt"]["credits"]) == (40, 0)
    nobody = client.post(
        "/v1/accounts/nobody/adjustments",
        json={"unit": "credits", "amount": 1, "reason": "r"},
        headers=ADMIN_AUTH,
    )
    assert nobody.status_code == 402
    assert count(services, "ledger_transactions") == 2  # the grant and the hold
    assert adjust(client, 40).status_code == 201
    assert credits(client) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"unit": "credits", "amount": 5},
        {"unit": "credits", "amount": 5, "reason": ""},
        {"unit": "credits", "amount": 5, "reason": "   "},
        {"unit": "credits", "amount": 5, "reason": "x" * 501},
        {"unit": "credits", "amount": 0, "reason": "r"},
        {"unit": "credits", "amount": -5, "reason": "r"},
        {"unit": "credits", "amount": 5.0, "reason": "r"},
        {"unit": "gold", "amount": 5, "reason": "r"},
        {"unit": "credits", "amount": 5, "reason": "r", "debt": True},
    ],
)
def test_an_adjustment_needs_a_reason_and_a_valid_body(api: Api, body: dict[str, Any]) -> None:
    client, services = api
    grant(client, "user_1", 100)
    response = client.post("/v1/accounts/user_1/adjustments", json=body, headers=ADMIN_AUTH)
    assert response.status_code == 400, response.text
    assert count(services, "ledger_transactions") == 1
    assert credits(client) == 100


def test_only_the_admin_adjusts(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    body = {"unit": "credits", "amount": 5, "reason": "r"}
    for headers, status in ((SERVER, 403), (as_user("user_1"), 403), ({}, 401)):
        response = client.post("/v1/accounts/user_1/adjustments", json=body, headers=headers)
        assert response.status_code == status
    assert credits(client) == 100


def test_a_replayed_adjustment_answers_the_first_answer_and_takes_once(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    first = adjust(client, 25, key="adj-1")
    again = adjust(client, 25, key="adj-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert credits(client) == 75
    other = adjust(client, 26, key="adj-1")
    assert other.status_code == 409
    assert credits(client) == 75


def test_a_refused_adjustment_does_not_burn_its_key(api: Api) -> None:
    client, _ = api
    assert adjust(client, 10, key="adj-2").status_code == 402
    grant(client, "user_1", 10)
    assert adjust(client, 10, key="adj-2").status_code == 201
    assert credits(client) == 0


def test_concurrent_retries_of_one_adjustment_take_once(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: adjust(client, 10, key="burst"), range(16)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["transaction_id"] for a in answers}) == 1
    assert credits(client) == 90

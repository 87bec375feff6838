"""Spends and holds over HTTP: balances, 402, validation, idempotent replays and conflicts, rate
limits."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from tests.conftest import FakeClock
from tests.support.api import (
    ADMIN_AUTH,
    ROTATED_SERVER,
    SERVER,
    api_client,
    as_user,
    grant,
    keyed,
)
from tests.support.app import count

Api = tuple[TestClient, Services]


@pytest.fixture
def api(db_url: str, engine: Any, clock: FakeClock) -> Iterator[Api]:
    with api_client(db_url, clock=clock) as pair:
        yield pair


def spend(client: TestClient, amount: Any, key: str | None = None, **body: Any) -> Any:
    headers = keyed(SERVER, key) if key else SERVER
    return client.post(
        "/v1/accounts/user_1/spend",
        json={"unit": "credits", "amount": amount, **body},
        headers=headers,
    )


def credits(client: TestClient, account: str = "user_1") -> int:
    body = client.get(f"/v1/accounts/{account}", headers=SERVER).json()
    return int(body["balances"]["credits"])


# --- spend ---------------------------------------------------------------------------------------


def test_given_100_credits_when_spending_30_then_70_remain(api: Api) -> None:
    client, _ = api
    granted = grant(client, "user_1", 100)
    response = spend(client, 30, reason="report #1")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "spend"
    assert body["balance"] == 70
    assert body["amount"] == 30
    assert body["draws"] == [{"grant_id": granted["id"], "amount": 30}]
    assert body["transaction_id"].startswith("txn_")
    assert "Idempotency-Key" not in response.headers
    assert credits(client) == 70


def test_spending_more_than_the_balance_is_402_with_what_is_available(api: Api) -> None:
    client, services = api
    grant(client, "user_1", 10)
    response = spend(client, 11)
    assert response.status_code == 402
    body = response.json()
    assert body["code"] == "insufficient_balance"
    assert body["error"]["available"] == 10
    assert body["error"]["requested"] == 11
    assert body["error"]["unit"] == "credits"
    assert credits(client) == 10
    assert count(services, "ledger_transactions") == 1  # the grant only


def test_spending_from_an_account_nobody_has_seen_is_402_and_creates_nothing(api: Api) -> None:
    client, services = api
    response = client.post(
        "/v1/accounts/ghost/spend", json={"unit": "credits", "amount": 1}, headers=SERVER
    )
    assert response.status_code == 402
    assert response.json()["error"]["available"] == 0
    assert count(services, "accounts") == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"unit": "credits", "amount": 1.5}, "amount"),
        ({"unit": "credits", "amount": 1.0}, "amount"),
        ({"unit": "credits", "amount": "5"}, "amount"),
        ({"unit": "credits", "amount": True}, "amount"),
        ({"unit": "credits", "amount": 0}, "amount"),
        ({"unit": "credits", "amount": -5}, "amount"),
        ({"unit": "credits", "amount": 10**16}, "amount"),
        ({"unit": "credits"}, "amount"),
        ({"amount": 5}, "unit"),
        ({"unit": "gold", "amount": 5}, "unit"),
        ({"unit": "Credits", "amount": 5}, "unit"),
        ({"unit": "credits", "amount": 5, "reason": 7}, "reason"),
        ({"unit": "credits", "amount": 5, "memo": "x"}, "memo"),
    ],
)
def test_an_invalid_spend_is_400_naming_the_field_and_writes_nothing(
    api: Api, body: dict[str, Any], param: str
) -> None:
    client, services = api
    grant(client, "user_1", 100)
    response = client.post("/v1/accounts/user_1/spend", json=body, headers=SERVER)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert param in response.json()["message"]
    assert credits(client) == 100
    assert count(services, "ledger_transactions") == 1


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'{"unit": "credits",'])
def test_a_body_that_is_not_a_json_object_is_400(api: Api, content: bytes) -> None:
    client, _ = api
    response = client.post(
        "/v1/accounts/user_1/spend",
        content=content,
        headers={**SERVER, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


# --- idempotency ---------------------------------------------------------------------------------


def test_the_same_key_and_body_answer_the_first_answer_again(api: Api) -> None:
    client, services = api
    grant(client, "user_1", 100)
    first = spend(client, 30, key="order-7")
    assert first.status_code == 200
    assert first.headers["Idempotency-Key"] == "order-7"
    assert "Idempotent-Replayed" not in first.headers
    spend(client, 5)  # the balance moves on meanwhile
    again = spend(client, 30, key="order-7")
    assert again.status_code == 200
    assert again.json() == first.json()  # balance 70: the first answer, not today's 65
    assert again.headers["Idempotent-Replayed"] == "true"
    assert credits(client) == 65
    assert count(services, "ledger_transactions") == 3


def test_a_key_is_the_applications_whichever_server_key_sends_it(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    first = spend(client, 30, key="rotate-me")
    retried = client.post(
        "/v1/accounts/user_1/spend",
        json={"unit": "credits", "amount": 30},
        headers=keyed(ROTATED_SERVER, "rotate-me"),
    )
    assert retried.json() == first.json()
    assert credits(client) == 70


@pytest.mark.parametrize(
    "other",
    [
        {"amount": 31},
        {"amount": 30, "reason": "different"},
        {"amount": 30, "unit": "tokens"},
    ],
)
def test_the_same_key_with_another_body_is_409(api: Api, other: dict[str, Any]) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    grant(client, "user_1", 100, unit="tokens")
    assert spend(client, 30, key="k1").status_code == 200
    body = {"unit": "credits", **other}
    conflict = client.post("/v1/accounts/user_1/spend", json=body, headers=keyed(SERVER, "k1"))
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_conflict"
    assert "use a new key" in conflict.json()["message"]
    # Only what the caller can use: not billfold's digest of the key.
    assert set(conflict.json()["error"]) == {"code", "message", "type"}
    assert credits(client) == 70


def test_the_same_key_on_another_account_or_route_is_409(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    grant(client, "user_2", 100)
    assert spend(client, 30, key="shared").status_code == 200
    other_account = client.post(
        "/v1/accounts/user_2/spend",
        json={"unit": "credits", "amount": 30},
        headers=keyed(SERVER, "shared"),
    )
    assert other_account.status_code == 409
    other_route = client.post(
        "/v1/accounts/user_1/holds",
        json={"unit": "credits", "amount": 30},
        headers=keyed(SERVER, "shared"),
    )
    assert other_route.status_code == 409
    assert credits(client, "user_2") == 100


def test_a_failed_request_does_not_burn_its_key(api: Api) -> None:
    client, _ = api
    assert spend(client, 30, key="later").status_code == 402
    grant(client, "user_1", 100)
    assert spend(client, 30, key="later").status_code == 200
    assert credits(client) == 70


def test_an_invalid_idempotency_key_is_400(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    response = spend(client, 1, key="x" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"
    non_ascii = client.post(
        "/v1/accounts/user_1/spend",
        json={"unit": "credits", "amount": 1},
        headers={**SERVER, "Idempotency-Key": "caf\u00e9".encode()},
    )
    assert non_ascii.status_code == 400
    assert credits(client) == 100


def test_concurrent_retries_of_one_key_spend_once(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: spend(client, 10, key="burst"), range(16)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["transaction_id"] for a in answers}) == 1
    assert credits(client) == 90


# --- holds ---------------------------------------------------------------------------------------


def hold(client: TestClient, amount: int, key: str | None = None, **body: Any) -> Any:
    headers = keyed(SERVER, key) if key else SERVER
    return client.post(
        "/v1/accounts/user_1/holds",
        json={"unit": "credits", "amount": amount, **body},
        headers=headers,
    )


def test_a_hold_answers_201_with_its_id_and_expiry(api: Api, clock: FakeClock) -> None:
    client, services = api
    grant(client, "user_1", 100)
    response = hold(client, 40, reason="render job")
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("hold_")
    assert body["object"] == "hold"
    assert body["status"] == "active"
    assert body["amount"] == 40
    assert body["unit"] == "credits"
    assert body["reason"] == "render job"
    assert body["expires_at"] == clock.now + services.settings.hold_ttl_seconds
    assert body["balance"] == 60
    account = client.get("/v1/accounts/user_1", headers=SERVER).json()
    assert account["balances"]["credits"] == 60
    assert account["held"]["credits"] == 40
    shown = client.get(f"/v1/holds/{body['id']}", headers=SERVER).json()
    assert shown["status"] == "active"
    assert shown["created"] == clock.now


def test_a_hold_takes_its_ttl_up_to_30_days(api: Api, clock: FakeClock) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    assert hold(client, 1, ttl_seconds=60).json()["expires_at"] == clock.now + 60
    assert hold(client, 1, ttl_seconds=30 * 86_400).status_code == 201
    too_long = hold(client, 1, ttl_seconds=30 * 86_400 + 1)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["param"] == "ttl_seconds"
    assert hold(client, 1, ttl_seconds=0).status_code == 400


def test_a_hold_larger_than_the_balance_is_402(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 10)
    response = hold(client, 11)
    assert response.status_code == 402
    assert response.json()["error"]["available"] == 10


def test_capture_part_of_a_hold_releases_the_rest(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    hold_id = hold(client, 40).json()["id"]
    captured = client.post(f"/v1/holds/{hold_id}/capture", json={"amount": 25}, headers=SERVER)
    assert captured.status_code == 200
    assert captured.json()["status"] == "captured"
    assert captured.json()["captured"] == 25
    assert captured.json()["balance"] == 75
    assert credits(client) == 75
    again = client.post(f"/v1/holds/{hold_id}/capture", headers=SERVER)
    assert again.status_code == 409
    assert again.json()["code"] == "hold_not_active"


def test_capture_without_a_body_takes_the_whole_hold(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    hold_id = hold(client, 40).json()["id"]
    captured = client.post(f"/v1/holds/{hold_id}/capture", headers=SERVER)
    assert captured.json()["captured"] == 40
    assert credits(client) == 60


def test_capturing_more_than_the_hold_is_400(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    hold_id = hold(client, 40).json()["id"]
    response = client.post(f"/v1/holds/{hold_id}/capture", json={"amount": 41}, headers=SERVER)
    assert response.status_code == 400
    assert client.get(f"/v1/holds/{hold_id}", headers=SERVER).json()["status"] == "active"


def test_release_gives_the_hold_back(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    hold_id = hold(client, 40).json()["id"]
    released = client.post(f"/v1/holds/{hold_id}/release", headers=keyed(SERVER, "rel-1"))
    assert released.status_code == 200
    assert released.json()["status"] == "released"
    assert credits(client) == 100
    replay = client.post(f"/v1/holds/{hold_id}/release", headers=keyed(SERVER, "rel-1"))
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert client.post(f"/v1/holds/{hold_id}/release", headers=SERVER).status_code == 409
    assert client.post(f"/v1/holds/{hold_id}/capture", headers=SERVER).status_code == 409


def test_a_replayed_capture_answers_the_first_capture(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    hold_id = hold(client, 40).json()["id"]
    url = f"/v1/holds/{hold_id}/capture"
    first = client.post(url, json={"amount": 10}, headers=keyed(SERVER, "cap"))
    again = client.post(url, json={"amount": 10}, headers=keyed(SERVER, "cap"))
    assert again.json() == first.json()
    other = client.post(url, json={"amount": 11}, headers=keyed(SERVER, "cap"))
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"


def test_a_replayed_hold_answers_the_first_answer_even_after_capture(api: Api) -> None:
    client, services = api
    grant(client, "user_1", 100)
    first = hold(client, 40, key="h")
    client.post(f"/v1/holds/{first.json()['id']}/capture", headers=SERVER)
    again = hold(client, 40, key="h")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert count(services, "holds") == 1


def test_a_lapsed_hold_shows_expired_and_cannot_be_captured(api: Api, clock: FakeClock) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    hold_id = hold(client, 40, ttl_seconds=60).json()["id"]
    clock.advance(61)
    assert client.get(f"/v1/holds/{hold_id}", headers=SERVER).json()["status"] == "expired"
    assert credits(client) == 100
    response = client.post(f"/v1/holds/{hold_id}/capture", headers=SERVER)
    assert response.status_code == 409
    assert response.json()["error"]["status"] == "expired"


def test_an_unknown_hold_is_404(api: Api) -> None:
    client, _ = api
    for method, path in [
        ("GET", "/v1/holds/hold_nope"),
        ("POST", "/v1/holds/hold_nope/capture"),
        ("POST", "/v1/holds/hold_nope/release"),
    ]:
        response = client.request(method, path, headers=SERVER)
        assert response.status_code == 404
        assert response.json()["code"] == "hold_not_found"


def test_a_user_sees_their_own_holds_only(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 100)
    hold_id = hold(client, 40).json()["id"]
    assert client.get(f"/v1/holds/{hold_id}", headers=as_user("user_1")).status_code == 200
    assert client.get(f"/v1/holds/{hold_id}", headers=as_user("user_2")).status_code == 404
    assert client.get(f"/v1/holds/{hold_id}", headers=ADMIN_AUTH).status_code == 200


# --- rate limits ---------------------------------------------------------------------------------


def test_spends_past_the_limit_answer_429_with_retry_after(
    db_url: str, engine: Any, clock: FakeClock
) -> None:
    with api_client(db_url, clock=clock, rate_limit_spend_per_minute=3) as (client, _):
        grant(client, "user_1", 100)
        codes = [spend(client, 1).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        limited = spend(client, 1)
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 20
        # Per credential: the other server key has its own budget; holds count as spends.
        other = client.post(
            "/v1/accounts/user_1/spend",
            json={"unit": "credits", "amount": 1},
            headers=ROTATED_SERVER,
        )
        assert other.status_code == 200
        assert hold(client, 1).status_code == 429
        assert credits(client) == 96
        # Reads are never limited.
        assert client.get("/v1/accounts/user_1", headers=SERVER).status_code == 200


def test_a_limit_of_zero_turns_rate_limiting_off(
    db_url: str, engine: Any, clock: FakeClock
) -> None:
    with api_client(db_url, clock=clock, rate_limit_spend_per_minute=0) as (client, _):
        grant(client, "user_1", 100)
        assert {spend(client, 1).status_code for _ in range(20)} == {200}

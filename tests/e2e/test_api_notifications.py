"""The notification routes over HTTP: endpoints (secret answered once, rotation), the outbox list
and its filters and paging, redelivery, account thresholds, and the OpenAPI ``webhooks``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from tests.conftest import FakeClock
from tests.support.api import ADMIN_AUTH, SERVER, api_client, as_user, grant, keyed

Api = tuple[TestClient, Services]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def api(db_url: str, engine: Any, clock: FakeClock) -> Iterator[Api]:
    with api_client(db_url, clock=clock, notify_urls=f"https://app.example/hooks|{SECRET}") as pair:
        yield pair


def test_an_endpoint_gets_a_secret_shown_once_and_a_rotation_keeps_the_old_one(api: Api) -> None:
    client, _ = api
    made = client.post(
        "/v1/notification-endpoints",
        json={"url": "https://app.example/billfold", "types": ["balance.low"]},
        headers=ADMIN_AUTH,
    )
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["secret"].startswith("whsec_")
    assert (body["types"], body["source"]) == (["balance.low"], "api")
    listed = client.get("/v1/notification-endpoints", headers=ADMIN_AUTH).json()["data"]
    assert [(e["url"], e["source"], e["secret"]) for e in listed] == [
        ("https://app.example/hooks", "settings", None),
        ("https://app.example/billfold", "api", None),
    ]
    rotated = client.post(
        "/v1/notification-endpoints",
        json={"url": "https://app.example/billfold", "rotate": body["id"]},
        headers=ADMIN_AUTH,
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["id"] == body["id"]
    assert rotated.json()["secret"] not in (None, body["secret"])
    unknown = client.post(
        "/v1/notification-endpoints",
        json={"url": "https://app.example/x", "rotate": "ep_nothing"},
        headers=ADMIN_AUTH,
    )
    assert unknown.status_code == 404
    bad = client.post(
        "/v1/notification-endpoints",
        json={"url": "https://app.example/x", "types": ["no.such"]},
        headers=ADMIN_AUTH,
    )
    assert bad.status_code == 400
    short = client.post(
        "/v1/notification-endpoints",
        json={"url": "https://app.example/x", "secret": "whsec_abc"},
        headers=ADMIN_AUTH,
    )
    assert short.status_code == 400
    own = client.post(
        "/v1/notification-endpoints",
        json={"url": "https://app.example/x", "secret": SECRET},
        headers=ADMIN_AUTH,
    )
    assert own.json()["secret"] == SECRET


def test_only_the_admin_reaches_the_notification_routes(api: Api) -> None:
    client, _ = api
    for method, path in [
        ("GET", "/v1/notifications"),
        ("GET", "/v1/notification-endpoints"),
        ("POST", "/v1/notifications/msg_x/redeliver"),
    ]:
        assert client.request(method, path, headers=SERVER).status_code == 403
        assert client.request(method, path, headers=as_user("user_1")).status_code in (401, 403)
        assert client.request(method, path).status_code == 401


def test_the_outbox_lists_filters_pages_and_redelivers(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 150)
    grant(client, "user_2", 30)
    spent = client.post(
        "/v1/accounts/user_1/spend",
        json={"unit": "credits", "amount": 60},
        headers=keyed(SERVER, "s1"),
    )
    assert spent.status_code == 200
    page = client.get("/v1/notifications", params={"limit": 2}, headers=ADMIN_AUTH).json()
    assert page["has_more"] is True
    assert [n["type"] for n in page["data"]] == ["balance.low", "credits.granted"]
    rest = client.get(
        "/v1/notifications",
        params={"limit": 2, "starting_after": page["data"][-1]["id"]},
        headers=ADMIN_AUTH,
    ).json()
    assert rest["has_more"] is False
    assert [n["body"]["data"]["account_id"] for n in rest["data"]] == ["user_1"]
    low = page["data"][0]
    assert low["status"] == "pending"
    assert low["body"]["type"] == "balance.low"
    assert low["body"]["data"]["balance"] == 90
    assert set(low["body"]) == {"type", "timestamp", "data"}
    only = client.get(
        "/v1/notifications",
        params={"type": "credits.granted", "account_id": "user_2"},
        headers=ADMIN_AUTH,
    ).json()["data"]
    assert [n["body"]["data"]["amount"] for n in only] == [30]
    assert (
        client.get("/v1/notifications", params={"status": "nope"}, headers=ADMIN_AUTH).status_code
        == 400
    )
    again = client.post(f"/v1/notifications/{low['id']}/redeliver", headers=ADMIN_AUTH)
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["status"], again.json()["attempts"]) == (
        low["id"],
        "pending",
        0,
    )
    assert (
        client.post("/v1/notifications/msg_nothing/redeliver", headers=ADMIN_AUTH).status_code
        == 404
    )


def test_an_account_sets_its_own_threshold_and_shows_its_alert(api: Api) -> None:
    client, _ = api
    grant(client, "user_1", 1_000)
    put = client.put("/v1/accounts/user_1", json={"low_balance": {"credits": 500}}, headers=SERVER)
    assert put.status_code == 200, put.text
    assert put.json()["low_balance"] == {"credits": 500}
    assert put.json()["low_balance_alerts"] == {"credits": False}
    client.post(
        "/v1/accounts/user_1/spend",
        json={"unit": "credits", "amount": 600},
        headers=keyed(SERVER, "s1"),
    )
    account = client.get("/v1/accounts/user_1", headers=SERVER).json()
    assert account["low_balance_alerts"] == {"credits": True}
    back = client.put(
        "/v1/accounts/user_1", json={"low_balance": {"credits": None}}, headers=SERVER
    )
    assert back.json()["low_balance"] == {"credits": 100}  # the catalog's again
    wrong = client.put("/v1/accounts/user_1", json={"low_balance": {"gold": 5}}, headers=SERVER)
    assert wrong.status_code == 400
    negative = client.put(
        "/v1/accounts/user_1", json={"low_balance": {"credits": -1}}, headers=SERVER
    )
    assert negative.status_code == 400


def test_every_notification_type_is_documented_in_the_openapi_webhooks(api: Api) -> None:
    client, _ = api
    document = client.get("/openapi.json").json()
    webhooks = document["webhooks"]
    assert set(webhooks) == {
        "order.fulfilled",
        "order.needs_attention",
        "credits.granted",
        "credits.clawed_back",
        "balance.low",
        "balance.restored",
        "payment.failed",
        "subscription.updated",
        "entitlements.updated",
        "reconciliation.drift",
    }
    schemas = document["components"]["schemas"]
    ref = webhooks["balance.low"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    body = schemas[ref["$ref"].split("/")[-1]]
    assert set(body["properties"]) == {"type", "timestamp", "data"}
    data = schemas[body["properties"]["data"]["$ref"].split("/")[-1]]
    assert {"account_id", "balance", "threshold", "unit"} <= set(data["properties"])

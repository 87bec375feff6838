"""The needs-attention queue, on SQLite and PostgreSQL: what billfold could not finish on its own,
and what operators did about it — resolve, retry, replay — each recorded with who and why, through
the console (in-process, over the real API) and the admin API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.domain.orders import LineItem
from billfold.entrypoints.http.admin_ui import AdminConfig, create_admin_app
from tests.builders import stripe_events as se
from tests.support.api import ADMIN_AUTH
from tests.support.app import ADMIN, deliver, event_status, running_app, use_stripe

Console = tuple[TestClient, Services, TestClient]


class _StripeDown:
    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        raise errors.StripeUnavailable("Could not list the line items: Stripe is down")


class _LineItems:
    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        return [LineItem(price_id=None, quantity=1, amount_total=1234, currency="usd")]


@pytest.fixture
def console(db_url: str, engine: Any) -> Iterator[Console]:
    with running_app(db_url) as (api, services):
        view = create_admin_app(
            AdminConfig(
                api_base_url="http://billfold.test",
                api_transport=httpx.ASGITransport(app=api.app),
                admin_token=ADMIN,
                sessions=services.admin_sessions,
            )
        )
        root = Starlette(routes=[Mount("/admin", app=view)])
        with TestClient(root, base_url="http://testserver", follow_redirects=False) as ui:
            yield ui, services, api


def sign_in(ui: TestClient, operator: str | None = "Ada Lovelace") -> str:
    data = {"token": ADMIN, "next": "/admin/attention"}
    if operator is not None:
        data["operator"] = operator
    answer = ui.post("/admin/login", data=data)
    assert answer.status_code == 303
    page = ui.get("/admin/attention")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "no CSRF token in the page"
    return found.group(1)


def unmatched_order(api: TestClient) -> dict[str, Any]:
    """A paid session naming a package and no account: an order that needs attention."""
    event = se.checkout_session_completed(metadata={"billfold_package": "starter"})
    assert deliver(api, event).status_code == 200
    [order] = api.get("/v1/orders?status=needs_attention", headers=ADMIN_AUTH).json()["data"]
    return dict(order)


def failed_event(api: TestClient, services: Services) -> dict[str, Any]:
    """A session whose line items billfold needs while Stripe is down: a failed event."""
    event = se.checkout_session_completed(
        amount_total=1234, metadata={"billfold_account": "user_1"}
    )
    assert deliver(api, event).status_code == 200
    use_stripe(services, _StripeDown())
    services.inbox.process(event["id"])
    assert event_status(services, event["id"]) == "failed"
    return dict(event)


def actions(api: TestClient, **params: str) -> list[dict[str, Any]]:
    answer = api.get("/v1/operator-actions", params=params, headers=ADMIN_AUTH)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def credits(api: TestClient, account: str) -> int:
    return balances(api, account).get("credits", 0)


def balances(api: TestClient, account: str) -> dict[str, int]:
    found = api.get(f"/v1/accounts/{account}", headers=ADMIN_AUTH)
    if found.status_code == 404:
        return {}
    return {unit: int(v) for unit, v in found.json()["balances"].items() if v}


def test_the_queue_shows_what_needs_a_person_and_every_action_is_recorded_with_who_and_why(
    console: Console,
) -> None:
    ui, services, api = console
    order = unmatched_order(api)
    event = failed_event(api, services)

    queue = api.get("/v1/attention", headers=ADMIN_AUTH).json()
    assert queue["object"] == "attention"
    assert [o["id"] for o in queue["orders"]] == [order["id"]]
    assert [e["id"] for e in queue["failed_events"]] == [event["id"]]
    assert (queue["failed_count"], queue["dead_count"], queue["count"]) == (1, 0, 2)
    assert (queue["orders_count"], queue["orders_has_more"]) == (1, False)
    # One figure for both pages: the dashboard's needs-attention count is the queue's.
    figures = api.get("/v1/dashboard", headers=ADMIN_AUTH).json()
    assert figures["needs_attention"]["count"] == queue["count"]

    csrf = sign_in(ui)
    page = ui.get("/admin/attention").text
    assert order["id"] in page
    assert event["id"] in page
    assert "Stripe is down" in page
    assert 'id="attention-count">2<' in page
    back = "/admin/attention"

    # Without a reason nothing happens, and nothing is recorded.
    blank = ui.post(
        f"/admin/events/{event['id']}/retry",
        data={"csrf": csrf, "back": back, "need_reason": "1", "reason": "  "},
    )
    assert blank.status_code == 400
    assert "A reason is required" in blank.text
    # A post without a valid CSRF token: 403, nothing done.
    forged = ui.post(
        f"/admin/events/{event['id']}/retry",
        data={"csrf": "0" * 64, "back": back, "need_reason": "1", "reason": "forged"},
    )
    assert forged.status_code == 403
    assert event_status(services, event["id"]) == "failed"
    assert actions(api) == []

    use_stripe(services, _LineItems())  # Stripe is back
    retried = ui.post(
        f"/admin/events/{event['id']}/retry",
        data={"csrf": csrf, "back": back, "need_reason": "1", "reason": "Stripe is back up"},
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == "/admin/attention?done=retried"
    assert event_status(services, event["id"]) == "processed"
    assert balances(api, "user_1") == {"usd": 1234}  # a price no package sells: its wallet

    resolved = ui.post(
        f"/admin/orders/{order['id']}/resolve",
        data={
            "csrf": csrf,
            "back": back,
            "need_reason": "1",
            "account_id": "user_9",
            "reason": "Customer wrote in from their account e-mail",
        },
    )
    assert resolved.status_code == 303, resolved.text
    assert resolved.headers["location"] == "/admin/attention?done=resolved"
    fulfilled = api.get(f"/v1/orders/{order['id']}", headers=ADMIN_AUTH).json()
    assert (fulfilled["status"], fulfilled["account_id"]) == ("fulfilled", "user_9")
    assert credits(api, "user_9") == 500

    # A replay of what was processed changes nothing, and is recorded too.
    replayed = ui.post(
        f"/admin/events/{event['id']}/replay",
        data={"csrf": csrf, "back": back, "reason": "Checking the replay is harmless"},
    )
    assert replayed.status_code == 303
    assert balances(api, "user_1") == {"usd": 1234}

    done = actions(api)
    assert [(a["action"], a["target_type"], a["target_id"]) for a in done] == [
        ("replay", "event", event["id"]),
        ("resolve", "order", order["id"]),
        ("retry", "event", event["id"]),
    ]
    assert {a["operator"] for a in done} == {"Ada Lovelace"}
    assert [a["reason"] for a in done] == [
        "Checking the replay is harmless",
        "Customer wrote in from their account e-mail",
        "Stripe is back up",
    ]
    assert done[0]["outcome"].startswith("processed")
    assert done[1]["outcome"] == "fulfilled for user_9"
    assert done[2]["outcome"].startswith("processed")
    assert actions(api, target_type="order", target_id=order["id"]) == [done[1]]

    page = ui.get("/admin/attention").text
    assert "No orders need attention." in page
    assert 'id="attention-count">0<' in page
    assert "Ada Lovelace" in page
    assert "Customer wrote in from their account e-mail" in page


def test_a_refused_action_is_recorded_with_why_it_was_refused(console: Console) -> None:
    _, services, api = console
    event = se.checkout_session_completed(
        metadata={"billfold_account": "user_1", "billfold_package": "starter"}
    )
    deliver(api, event)
    assert event_status(services, event["id"]) == "processed"

    again = api.post(
        f"/v1/events/{event['id']}/retry",
        json={"reason": "double-check", "operator": "bob"},
        headers=ADMIN_AUTH,
    )
    assert again.status_code == 409
    [refused] = actions(api)
    assert (refused["operator"], refused["action"], refused["reason"]) == (
        "bob",
        "retry",
        "double-check",
    )
    assert refused["outcome"].startswith("refused: ")
    # An unknown event is a 404 and no action on anything.
    assert api.post("/v1/events/evt_nope/retry", headers=ADMIN_AUTH).status_code == 404
    assert len(actions(api)) == 1


def test_replays_need_a_reason_and_api_callers_without_a_name_are_the_admin_token(
    console: Console,
) -> None:
    _, _services, api = console
    event = se.checkout_session_completed(
        metadata={"billfold_account": "user_1", "billfold_package": "starter"}
    )
    deliver(api, event)
    path = f"/v1/events/{event['id']}/replay"
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}):
        refused = api.post(path, json=body, headers=ADMIN_AUTH)
        assert refused.status_code == 400, body
        assert refused.json()["error"]["param"] == "reason" or "reason" in refused.text
    assert actions(api) == []
    assert api.post(path, json={"reason": "why not"}).status_code == 401

    done = api.post(path, json={"reason": "after a catalog fix"}, headers=ADMIN_AUTH)
    assert done.status_code == 200
    assert done.json()["status"] == "processed"
    assert credits(api, "user_1") == 500  # once
    [recorded] = actions(api)
    assert (recorded["operator"], recorded["reason"]) == ("admin token", "after a catalog fix")
    # A retry through the API with no body still works, recorded without a reason.
    assert (
        api.post("/v1/events/evt_nope/replay", json={"reason": "x"}, headers=ADMIN_AUTH).status_code
        == 404
    )
    bad = api.get("/v1/operator-actions?target_type=planet", headers=ADMIN_AUTH)
    assert bad.status_code == 400


def test_an_unmatched_order_resolved_through_the_api_records_the_default_reason(
    console: Console,
) -> None:
    _, _, api = console
    order = unmatched_order(api)
    done = api.post(
        f"/v1/orders/{order['id']}/resolve", json={"account_id": "user_2"}, headers=ADMIN_AUTH
    )
    assert done.status_code == 200
    assert credits(api, "user_2") == 500
    [recorded] = actions(api)
    assert (recorded["operator"], recorded["reason"], recorded["action"]) == (
        "admin token",
        "no reason given",
        "resolve",
    )


def test_signing_in_without_a_name_still_records_the_console_as_who(console: Console) -> None:
    ui, _services, api = console
    order = unmatched_order(api)
    csrf = sign_in(ui, operator=None)
    ui.post(
        f"/admin/orders/{order['id']}/resolve",
        data={
            "csrf": csrf,
            "back": "/admin/attention",
            "need_reason": "1",
            "account_id": "user_3",
            "reason": "known customer",
        },
    )
    [recorded] = actions(api)
    assert (recorded["operator"], recorded["reason"]) == ("console", "known customer")


def test_manual_grants_and_adjustments_are_recorded_with_who_and_why(console: Console) -> None:
    ui, _, api = console
    headers = {**ADMIN_AUTH, "Idempotency-Key": "grant-1"}
    body = {"unit": "credits", "amount": 40, "reason": "goodwill", "operator": "Ada"}
    assert api.post("/v1/accounts/user_4/grants", json=body, headers=headers).status_code == 201
    # The same request again is a replay: one grant, one record.
    assert api.post("/v1/accounts/user_4/grants", json=body, headers=headers).status_code == 201
    csrf = sign_in(ui, operator="Grace")
    taken = ui.post(
        "/admin/accounts/user_4/adjustments",
        data={"csrf": csrf, "unit": "credits", "amount": "15", "reason": "duplicate grant"},
    )
    assert taken.status_code == 303, taken.text
    assert credits(api, "user_4") == 25
    adjusted, granted = actions(api, target_type="account", target_id="user_4")
    assert (granted["action"], granted["operator"], granted["reason"]) == (
        "grant",
        "Ada",
        "goodwill",
    )
    assert granted["outcome"].startswith("granted 40 credits (txn_")
    assert (adjusted["action"], adjusted["operator"], adjusted["reason"]) == (
        "adjust",
        "Grace",
        "duplicate grant",
    )
    assert adjusted["outcome"].startswith("took 15 credits (txn_")

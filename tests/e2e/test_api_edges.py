"""The API's edges from the hostile review (issue 10): credentials, the console's sessions, cursors,
bodies without a JSON content type, and the log level."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.entrypoints import logs
from billfold.settings import load_settings
from tests.builders import stripe_events as se
from tests.support.api import SERVER, api_client, grant
from tests.support.app import ADMIN, API_KEY, admin_headers, deliver

Api = tuple[TestClient, Services]


@pytest.fixture
def api(db_url: str, engine: Any) -> Iterator[Api]:
    with api_client(db_url) as pair:
        yield pair


# --- 13. credentials are trimmed as HTTP trims them -------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {API_KEY}\xa0",
        f"Bearer \xa0{API_KEY}",
        f"Bearer {API_KEY}\x85",
        f"Bearer {API_KEY}\u2003",
    ],
    ids=["nbsp-after", "nbsp-before", "nel-after", "em-space"],
)
def test_a_credential_with_unicode_space_around_it_is_not_the_credential(
    api: Api, header: str
) -> None:
    client, _ = api
    try:
        raw = header.encode("latin-1")  # what Starlette decodes header bytes with
    except UnicodeEncodeError:
        raw = header.encode()
    answer = client.get("/v1/accounts/user_1", headers={b"Authorization": raw})
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "header", [f"Bearer {API_KEY} ", f"Bearer \t{API_KEY}\t", f"Bearer  {API_KEY}"]
)
def test_spaces_and_tabs_around_a_credential_are_what_http_trims(api: Api, header: str) -> None:
    client, _ = api
    grant(client, "user_1", 5)
    assert client.get("/v1/accounts/user_1", headers={"Authorization": header}).status_code == 200


# --- 14, 15. the console: sessions end at sign-out, served by ``billfold serve`` -----------------------


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_billfold_serves_the_console_at_admin_whenever_an_admin_token_is_set(api: Api) -> None:
    client, _ = api
    assert client.get("/admin", follow_redirects=False).status_code == 308
    login = client.get("/admin/login")
    assert login.status_code == 200
    assert "admin token" in login.text.lower()


def test_the_console_is_not_served_without_an_admin_token(db_url: str, engine: Any) -> None:
    from tests.support.app import running_app

    with running_app(db_url, admin_token=None) as (client, _):
        assert client.get("/admin/login").status_code == 404


def test_signing_out_ends_the_session_for_good(api: Api) -> None:
    client, _ = api
    signed_in = client.post(
        "/admin/login", data={"token": ADMIN, "next": "/admin/events"}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    cookie = client.cookies.get("billfold_admin")
    assert cookie
    assert ADMIN not in cookie
    page = client.get("/admin/events")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    # Without the form's CSRF token, signing out is refused and changes nothing.
    assert client.post("/admin/logout", data={}, follow_redirects=False).status_code == 403
    assert client.get("/admin/events", follow_redirects=False).status_code == 200
    out = client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    # The old cookie, kept by someone, no longer opens anything.
    client.cookies.set("billfold_admin", cookie, path="/admin/")
    again = client.get("/admin/events", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/admin/login")


def test_a_console_form_without_a_valid_csrf_token_answers_403_and_changes_nothing(
    api: Api,
) -> None:
    client, services = api
    client.post("/admin/login", data={"token": ADMIN}, follow_redirects=False)
    forged = client.post(
        "/admin/accounts/user_9/grants",
        data={"unit": "credits", "amount": "50", "reason": "forged", "csrf": "0" * 64},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert services.ledger.balances("user_9") == {}


# --- 16. JSON bodies, whatever the content type says -------------------------------------------------


def test_a_spend_sent_as_curl_d_sends_it_is_read_as_json(api: Api) -> None:
    client, _ = api
    grant(client, "user_123", 100)
    answer = client.post(
        "/v1/accounts/user_123/spend",
        content=b'{"unit": "credits", "amount": 20, "reason": "report"}',
        headers={**SERVER, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance"] == 80


def test_a_body_that_is_not_json_is_a_400_naming_the_problem(api: Api) -> None:
    client, _ = api
    answer = client.post(
        "/v1/accounts/user_123/spend",
        content=b"unit=credits&amount=20",
        headers={**SERVER, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_request"


# --- 17. the log level ---------------------------------------------------------------------------------


def test_the_log_level_setting_is_checked_and_applied() -> None:
    with pytest.raises(errors.ConfigurationError, match="BILLFOLD_LOG_LEVEL"):
        load_settings(log_level="loud")
    logger = logging.getLogger("billfold")
    before = logger.level
    try:
        logs.configure(load_settings(log_level="DEBUG"))
        assert logger.level == logging.DEBUG
        logs.configure(load_settings(log_level="error"))
        assert logger.level == logging.ERROR
    finally:
        logger.setLevel(before)


# --- 18. a cursor that names nothing is resource_missing, on every list route -------------------------


@pytest.mark.parametrize(
    ("path", "cursor", "headers"),
    [
        ("/v1/accounts/user_1/grants", "gr_01ZZZZZZZZZZZZZZZZZZZZZZZZ", SERVER),
        ("/v1/accounts/user_1/transactions", "txn_01ZZZZZZZZZZZZZZZZZZZZZZZZ", SERVER),
        ("/v1/events", "evt_unknown", None),
        ("/v1/orders", "ord_unknown", None),
    ],
)
def test_an_unknown_cursor_answers_400_resource_missing_as_stripe_does(
    api: Api, path: str, cursor: str, headers: dict[str, str] | None
) -> None:
    client, _ = api
    grant(client, "user_1", 5)
    deliver(client, se.checkout_session_completed(metadata={"billfold_account": "user_1"}))
    answer = client.get(path, params={"starting_after": cursor}, headers=headers or admin_headers())
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "resource_missing"
    assert body["error"]["param"] == "starting_after"
    assert body["error"]["type"] == "invalid_request_error"


def test_a_grant_of_another_account_is_no_cursor_for_this_one(api: Api) -> None:
    client, _ = api
    theirs = grant(client, "user_2", 5)["id"]
    grant(client, "user_1", 5)
    answer = client.get(
        "/v1/accounts/user_1/grants", params={"starting_after": theirs}, headers=SERVER
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "resource_missing"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/accounts/user_1/holds", "GET, POST"),  # two routers serve this path
        ("DELETE", "/v1/accounts/user_1", "GET, PUT"),
        ("GET", "/v1/accounts/user_1/spend", "POST"),
        ("PUT", "/v1/holds/hold_1", "GET"),
    ],
)
def test_a_method_the_path_does_not_answer_is_405_naming_every_method_it_does(
    api: Api, method: str, path: str, allowed: str
) -> None:
    client, _ = api
    answer = client.request(method, path, headers=SERVER)
    assert answer.status_code == 405
    assert answer.json()["code"] == "method_not_allowed"
    assert answer.headers["Allow"] == allowed

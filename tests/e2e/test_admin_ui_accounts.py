"""The admin view's account pages over the real API, in-process, on SQLite and PostgreSQL: search
by id, e-mail or Stripe customer; the account page's sections; adjustments with a reason; CSRF.
(tests/browser/test_admin_accounts.py walks the same pages in Chromium.)"""

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
from billfold.entrypoints.http.admin_ui import AdminConfig, create_admin_app
from tests.builders import stripe_events as se
from tests.conftest import FakeClock
from tests.support.api import ADMIN_AUTH, SERVER, grant
from tests.support.app import ADMIN, deliver, running_app

Admin = tuple[TestClient, Services, TestClient]


@pytest.fixture
def admin(db_url: str, engine: Any, clock: FakeClock) -> Iterator[Admin]:
    with running_app(db_url, clock=clock) as (api, services):
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
            answer = ui.post("/admin/login", data={"token": ADMIN, "next": "/admin/accounts"})
            assert answer.status_code == 303
            yield ui, services, api


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def put(api: TestClient, account_id: str, **body: Any) -> None:
    assert api.put(f"/v1/accounts/{account_id}", json=body, headers=SERVER).status_code == 200


def credits(services: Services, account_id: str = "user_1") -> int:
    return services.ledger.balances(account_id)["credits"].available


def test_one_match_shows_the_account_several_are_listed_none_says_so(
    admin: Admin, clock: FakeClock
) -> None:
    ui, _, api = admin
    put(api, "acme", email="Ops@Acme.example", stripe_customer_id="cus_ACME1")
    clock.advance(1)
    put(api, "acme_eu", email="eu@acme.example")
    grant(api, "acme_eu", 250)

    for query in ("ops@acme.example", "cus_ACME1", "  OPS@ACME.EXAMPLE "):
        found = ui.get("/admin/accounts", params={"q": query})
        assert found.status_code == 303, query
        assert found.headers["location"] == "/admin/accounts?id=acme"
    several = ui.get("/admin/accounts", params={"q": "acme"})
    assert several.status_code == 200
    matches = several.text[several.text.index('id="matches"') :]
    assert '<a href="/admin/accounts?id=acme_eu">acme_eu</a>' in matches
    assert '<a href="/admin/accounts?id=acme">acme</a>' in matches
    assert matches.index("acme_eu") < matches.index('id=acme"')  # newest first
    assert "250 credits" in matches
    assert "cus_ACME1" in matches
    none = ui.get("/admin/accounts", params={"q": "nobody@acme.example"})
    assert none.status_code == 200
    assert 'id="no-matches"' in none.text
    assert "No account matches <strong>nobody@acme.example</strong>" in none.text
    assert 'id="account"' not in none.text


def test_the_account_page_shows_balances_lots_holds_history_and_notifications(
    admin: Admin,
) -> None:
    ui, services, api = admin
    put(api, "user_1", email="ada@example.com", low_balance={"credits": 600})
    event = se.checkout_session_completed(
        amount_total=499, metadata={"billfold_account": "user_1", "billfold_package": "starter"}
    )
    assert deliver(api, event).status_code == 200
    if credits(services) == 0:
        services.inbox.process(event["id"])
    assert credits(services) == 500
    session = event["data"]["object"]
    grant(api, "user_1", 100, reason="Goodwill for ticket 8")
    hold = api.post(
        "/v1/accounts/user_1/holds",
        json={"unit": "credits", "amount": 40, "reason": "render job"},
        headers=SERVER,
    ).json()

    page = ui.get("/admin/accounts?id=user_1")
    assert page.status_code == 200
    html = page.text
    balance = html[html.index('data-unit="credits"') :]
    balance = balance[: balance.index("</div>")]
    assert "560 credits" in balance
    assert "held 40 credits" in balance
    assert "debt 0 credits" in balance
    assert "low-balance alert sent" in balance  # 560 is below the account's own 600
    lots = html[html.index('id="lots"') : html.index("</table>", html.index('id="lots"'))]
    assert 'data-origin="order"' in lots
    assert session["id"] in lots
    assert session["payment_intent"] in lots
    assert 'data-origin="manual"' in lots
    assert "Goodwill for ticket 8" in lots
    holds = html[html.index('id="holds"') :]
    assert f'data-hold-id="{hold["id"]}"' in holds
    assert "render job" in holds
    notifications = html[html.index('id="notifications"') :]
    assert notifications.count("credits.granted") == 2
    assert "balance.low" in notifications
    assert 'id="transactions"' in html
    assert 'id="grant-form"' in html
    assert 'id="adjustment-form"' in html


def test_history_pages_with_an_older_link(admin: Admin) -> None:
    ui, _, api = admin
    for n in range(23):
        grant(api, "user_1", 1 + n, reason=f"grant number {n}")
    first = history_of(ui.get("/admin/accounts?id=user_1").text)
    older = re.search(
        r'href="(/admin/accounts\?id=user_1&amp;after=txn_[0-9A-Z]+)" rel="next"', first
    )
    assert older, "no Older link"
    assert "grant number 22" in first
    assert "grant number 2<" not in first
    second = history_of(ui.get(older.group(1).replace("&amp;", "&")).text)
    assert "grant number 2<" in second
    assert "grant number 0<" in second
    assert "grant number 22" not in second
    assert 'rel="next"' not in second
    assert '<a href="/admin/accounts?id=user_1">Newest</a>' in second


def history_of(html: str) -> str:
    """The History section of an account page."""
    start = html.index("<h2>History</h2>")
    return html[start : html.index("</section>", start)]


def test_an_adjustment_needs_a_reason_and_never_overdraws(admin: Admin) -> None:
    ui, services, api = admin
    grant(api, "user_1", 100)
    csrf = csrf_of(ui.get("/admin/accounts?id=user_1").text)
    form = {"csrf": csrf, "unit": "credits", "amount": "30", "nonce": "adj-1"}

    no_reason = ui.post("/admin/accounts/user_1/adjustments", data={**form, "reason": "  "})
    assert no_reason.status_code == 400
    assert "A reason is required: it is recorded with the adjustment." in no_reason.text
    assert credits(services) == 100

    too_much = ui.post(
        "/admin/accounts/user_1/adjustments", data={**form, "amount": "101", "reason": "x"}
    )
    assert too_much.status_code == 402
    assert "The adjustment was refused: Insufficient balance" in too_much.text
    assert credits(services) == 100

    done = ui.post(
        "/admin/accounts/user_1/adjustments", data={**form, "reason": "Duplicate grant #7"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/accounts?id=user_1&done=adjusted"
    again = ui.post(  # the same form sent twice
        "/admin/accounts/user_1/adjustments", data={**form, "reason": "Duplicate grant #7"}
    )
    assert again.status_code == 303
    assert credits(services) == 70
    shown = ui.get(done.headers["location"]).text
    assert "Adjustment recorded." in shown
    history = history_of(shown)
    assert "adjustment" in history
    assert "Duplicate grant #7" in history
    assert "\u221230 credits" in history  # a minus sign, not a hyphen
    txn = api.get("/v1/accounts/user_1/transactions", headers=ADMIN_AUTH).json()["data"][0]
    assert (txn["kind"], txn["net"], txn["reason"]) == ("adjustment", -30, "Duplicate grant #7")


@pytest.mark.parametrize("path", ["adjustments", "grants"])
def test_a_form_post_without_a_valid_csrf_token_is_403_and_changes_nothing(
    admin: Admin, path: str
) -> None:
    ui, services, api = admin
    grant(api, "user_1", 100)
    form = {"unit": "credits", "amount": "30", "reason": "forged", "nonce": "n"}
    for csrf in ("0" * 64, ""):
        forged = ui.post(f"/admin/accounts/user_1/{path}", data={**form, "csrf": csrf})
        assert forged.status_code == 403
        assert "This form has expired or was not sent from here." in forged.text
    assert credits(services) == 100
    history = api.get("/v1/accounts/user_1/transactions", headers=ADMIN_AUTH).json()["data"]
    assert len(history) == 1

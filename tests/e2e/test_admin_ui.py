"""The admin view over the real API, in-process: sign-in, CSRF, Retry of a failed event, manual
grants. (The browser tests walk the same pages in Chromium.)"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
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
from tests.support.app import ADMIN, deliver, event_status, running_app, use_stripe
from tests.support.subscription_story import DAY, T0, Story, start


class _StripeDown:
    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        raise errors.StripeUnavailable("Could not list the line items: Stripe is down")


class _LineItems:
    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        return [LineItem(price_id=None, quantity=1, amount_total=1234, currency="usd")]


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[tuple[TestClient, Services, TestClient]]:
    with running_app(f"sqlite:///{tmp_path / 'admin.db'}") as (api, services):
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


def sign_in(ui: TestClient) -> None:
    answer = ui.post("/admin/login", data={"token": ADMIN, "next": "/admin/events"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/events"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/admin/" in cookie
    assert ADMIN not in cookie


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_every_page_needs_the_admin_token(admin: tuple[TestClient, Services, TestClient]) -> None:
    ui, _, _ = admin
    for path in (
        "/admin/",
        "/admin/events",
        "/admin/orders",
        "/admin/subscriptions",
        "/admin/accounts?id=x",
    ):
        answer = ui.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/admin/login?next=")
    refused = ui.post("/admin/login", data={"token": "adm_wrong"})
    assert refused.status_code == 401
    assert "That is not the admin token." in refused.text
    # A forged cookie is no session.
    ui.cookies.set("billfold_admin", "9999999999.abc.def", path="/admin/")
    assert ui.get("/admin/events").status_code == 303
    # Never a redirect to another site after signing in.
    ui.cookies.clear()
    away = ui.post("/admin/login", data={"token": ADMIN, "next": "//evil.example/admin/"})
    assert away.headers["location"] == "/admin/"


def test_an_operator_retries_a_failed_event_and_grants_with_a_reason(
    admin: tuple[TestClient, Services, TestClient],
) -> None:
    ui, services, api = admin
    event = se.checkout_session_completed(
        amount_total=1234, metadata={"billfold_account": "user_1"}
    )
    assert deliver(api, event).status_code == 200
    # The event needs Stripe (its line items) and Stripe is down: it fails, to be retried.
    use_stripe(services, _StripeDown())
    services.inbox.process(event["id"])
    assert event_status(services, event["id"]) == "failed"

    sign_in(ui)
    page = ui.get("/admin/events?status=failed")
    assert page.status_code == 200
    assert event["id"] in page.text
    assert "Stripe is down" in page.text
    assert ">Retry</button>" in page.text
    assert ADMIN not in page.text
    csrf = csrf_of(page.text)

    # Issue 10: a form post without a valid CSRF token answers 403 (it used to redirect).
    forged = ui.post(f"/admin/events/{event['id']}/retry", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    assert event_status(services, event["id"]) == "failed"

    use_stripe(services, _LineItems())  # Stripe is back
    retried = ui.post(
        f"/admin/events/{event['id']}/retry",
        data={"csrf": csrf, "back": "/admin/events?status=failed"},
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == "/admin/events?status=failed&done=retried"
    assert event_status(services, event["id"]) == "processed"
    detail = ui.get(f"/admin/events/{event['id']}")
    assert "processed" in detail.text
    assert "&#34;billfold_account&#34;: &#34;user_1&#34;" in detail.text

    account = ui.get("/admin/accounts?id=user_1")
    assert "$12.34" in account.text
    csrf = csrf_of(account.text)
    no_reason = ui.post(
        "/admin/accounts/user_1/grants",
        data={"csrf": csrf, "unit": "credits", "amount": "50", "reason": "  ", "nonce": "n1"},
    )
    assert no_reason.status_code == 400
    assert "A reason is required" in no_reason.text
    bad_amount = ui.post(
        "/admin/accounts/user_1/grants",
        data={"csrf": csrf, "unit": "usd", "amount": "1.234", "reason": "x", "nonce": "n1"},
    )
    assert bad_amount.status_code == 400
    assert "at most 2 decimal places" in bad_amount.text
    form = {"csrf": csrf, "unit": "credits", "amount": "50", "reason": "Sorry!", "nonce": "n2"}
    granted = ui.post("/admin/accounts/user_1/grants", data=form)
    assert granted.status_code == 303
    again = ui.post("/admin/accounts/user_1/grants", data=form)  # a resubmitted form
    assert again.status_code == 303
    balances = services.ledger.balances("user_1")
    assert balances["credits"].available == 50
    assert balances["usd"].available == 1234
    shown = ui.get(granted.headers["location"])
    assert "Grant recorded." in shown.text
    assert "Sorry!" in shown.text


def test_an_operator_resolves_an_order_that_needs_attention(
    admin: tuple[TestClient, Services, TestClient],
) -> None:
    ui, services, api = admin
    event = se.checkout_session_completed(
        amount_total=499, metadata={"billfold_package": "starter"}
    )
    assert deliver(api, event).status_code == 200
    sign_in(ui)
    page = ui.get("/admin/orders")
    assert "needs attention" in page.text
    order_id = re.search(r'data-order-id="(ord_[0-9A-Z]+)"', page.text)
    assert order_id
    csrf = csrf_of(page.text)
    unknown = ui.post(
        f"/admin/orders/{order_id.group(1)}/resolve",
        data={"csrf": csrf, "account_id": "", "package": ""},
    )
    assert unknown.status_code == 400
    assert "Could not resolve" in unknown.text
    resolved = ui.post(
        f"/admin/orders/{order_id.group(1)}/resolve",
        data={"csrf": csrf, "account_id": "user_9", "package": "starter"},
    )
    assert resolved.status_code == 303
    assert services.ledger.balances("user_9")["credits"].available == 500


def _when(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _on_plan(event: dict[str, Any], plan: str) -> dict[str, Any]:
    """The event with its items' price made for ``plan`` sold inline (billfold's lookup key)."""
    for item in event["data"]["object"]["items"]["data"]:
        item["price"]["lookup_key"] = f"billfold_plan_{plan}"
    return event


def test_subscriptions_are_listed_by_status_with_the_planless_ones_marked(
    admin: tuple[TestClient, Services, TestClient],
) -> None:
    ui, _, api = admin
    paying, failing, mystery = Story("user_pays"), Story("user_fails"), Story("user_mystery")
    for event in (
        _on_plan(paying.state("created", T0), "pro"),
        _on_plan(failing.state("created", T0), "elite"),
        _on_plan(failing.state("updated", start(1) + 5, status="past_due", period=1), "elite"),
        failing.failed("1", start(1) + 10, period=1),
        mystery.state("created", T0, price="price_nobody_sells"),
    ):
        assert deliver(api, event).status_code == 200
    sign_in(ui)

    page = ui.get("/admin/subscriptions")
    assert page.status_code == 200
    for story in (paying, failing, mystery):
        assert f'data-subscription-id="{story.sub}"' in page.text
    assert "no plan sells this price" in page.text
    assert 'id="planless"' in page.text
    assert '<a href="/admin/accounts?id=user_fails">user_fails</a>' in page.text
    assert f"until {_when(start(1) + 10 + 7 * DAY)}" in page.text  # Elite's 7 days of grace

    past_due = ui.get("/admin/subscriptions?status=past_due").text
    assert f'data-subscription-id="{failing.sub}"' in past_due
    assert paying.sub not in past_due
    assert 'aria-current="page">past due</a>' in past_due
    # An unknown status filter is no filter.
    assert mystery.sub in ui.get("/admin/subscriptions?status=bogus").text


def test_an_account_page_shows_its_plan_subscriptions_and_grace(
    admin: tuple[TestClient, Services, TestClient],
) -> None:
    ui, _, api = admin
    failing = Story("user_grace")
    for event in (
        _on_plan(failing.state("created", T0), "pro"),
        _on_plan(failing.state("updated", start(1) + 5, status="past_due", period=1), "pro"),
        failing.failed("1", start(1) + 10, period=1),
    ):
        assert deliver(api, event).status_code == 200
    sign_in(ui)
    page = ui.get("/admin/accounts?id=user_grace").text
    plan = page[page.index('id="account-plan"') :]
    assert 'id="plan-source">grace</span>' in plan
    assert "<strong>Pro</strong>" in plan
    assert f"running</span> until {_when(start(1) + 10 + 3 * DAY)}" in plan
    assert f'data-subscription-id="{failing.sub}"' in plan
    assert 'data-feature="auto_trading">auto_trading</span>' in plan

"""The admin view's account pages in a real browser, on a desktop and on a phone-sized screen:
search by e-mail and by Stripe customer, the account page's sections, an adjustment refused
without a reason and recorded with one, and a forged form post (403, nothing changed)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, Shot, new_page
from tests.browser.test_admin import sign_in
from tests.support.dev_server import DevServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CUSTOMER = "cus_BrowserAda1"
SCREENS = {"desktop": DESKTOP, "phone": PHONE}


def given_a_customer_with_a_purchase_and_a_hold(shop: DevServer) -> dict[str, Any]:
    """demo_user buys the starter pack (500 credits) through the simulator, has an e-mail and a
    Stripe customer, and a hold of 40; demo_team has 10 credits."""
    created = shop.api(
        "POST", "/v1/checkout/sessions", json={"account_id": "demo_user", "package": "starter"}
    )
    assert created.status_code == 201, created.text
    session = created.json()
    shop.sim(f"/sessions/{session['id']}/pay", {"email": "ada@example.com"})
    shop.settle()
    shop.wait_for_balance(500)
    for account_id, body in (
        ("demo_user", {"email": "ada@example.com", "stripe_customer_id": CUSTOMER}),
        ("demo_team", {"email": "team@example.com"}),
    ):
        answer = shop.api("PUT", f"/v1/accounts/{account_id}", json=body)
        assert answer.status_code == 200, answer.text
    granted = shop.admin(
        "POST",
        "/v1/accounts/demo_team/grants",
        json={"unit": "credits", "amount": 10, "reason": "team trial"},
    )
    assert granted.status_code == 201, granted.text
    hold = shop.api(
        "POST",
        "/v1/accounts/demo_user/holds",
        json={"unit": "credits", "amount": 40, "reason": "render job", "ttl_seconds": 3600},
    )
    assert hold.status_code == 201, hold.text
    return {"session": session["id"], "hold": hold.json()["id"]}


def search(page: Page, text: str) -> None:
    box = page.get_by_label("Account id, e-mail or Stripe customer")
    box.fill(text)
    page.get_by_role("button", name="Look up").click()


def fits(page: Page, width: int) -> None:
    """Nothing wider than the screen: no sideways scrolling."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("screen", list(SCREENS))
def test_an_operator_finds_an_account_reads_it_and_adjusts_it_with_a_reason(
    shop: DevServer, browser: Browser, shot: Shot, screen: str
) -> None:
    made = given_a_customer_with_a_purchase_and_a_hold(shop)
    viewport = SCREENS[screen]
    phone = screen == "phone"
    page = new_page(browser, viewport=viewport, is_mobile=phone, has_touch=phone)
    page.goto(shop.url + "/admin/accounts")
    sign_in(page, shop, shop.admin_token)
    expect(page.get_by_role("heading", name="Accounts")).to_be_visible()

    # By e-mail, ignoring case: one match shows the account.
    search(page, "ADA@example.com")
    account = page.locator("#account")
    expect(account.get_by_role("heading", name="demo_user")).to_be_visible()
    expect(page.locator("#account-customer")).to_have_text(CUSTOMER)
    balance = account.locator('.balance[data-unit="credits"]')
    expect(balance).to_contain_text("460 credits")
    expect(balance).to_contain_text("held 40 credits")
    expect(balance).to_contain_text("debt 0 credits")
    order_lot = page.locator('#lots tr[data-origin="order"]')
    expect(order_lot).to_contain_text("Order")
    expect(order_lot).to_contain_text(made["session"])
    expect(order_lot).to_contain_text("500 credits")
    expect(page.locator(f'#holds tr[data-hold-id="{made["hold"]}"]')).to_contain_text("active")
    expect(page.locator("#holds")).to_contain_text("render job")
    expect(page.locator("#transactions")).to_contain_text("grant")
    expect(page.locator("#notifications")).to_contain_text("credits.granted")
    expect(page.locator("#account-plan")).to_be_visible()
    fits(page, viewport["width"])
    shot(page, f"account-by-email-{screen}")

    # By Stripe customer: the same account.
    search(page, CUSTOMER)
    expect(account.get_by_role("heading", name="demo_user")).to_be_visible()
    shot(page, f"account-by-customer-{screen}")

    # Several matches are listed, each a link; none says so.
    search(page, "demo_")
    matches = page.locator("#matches")
    expect(matches.get_by_role("link", name="demo_team")).to_be_visible()
    expect(matches.get_by_role("link", name="demo_user")).to_be_visible()
    fits(page, viewport["width"])
    shot(page, f"several-matches-{screen}")
    matches.get_by_role("link", name="demo_team").click()
    expect(page.locator("#account").get_by_role("heading", name="demo_team")).to_be_visible()
    search(page, "nobody@example.com")
    expect(page.locator("#no-matches")).to_contain_text("No account matches nobody@example.com")
    shot(page, f"no-match-{screen}")

    # An adjustment: refused without a reason, recorded with one.
    search(page, CUSTOMER)
    form = page.locator("#adjustment-form")
    form.get_by_label("Amount").fill("60")
    form.get_by_label("Reason").fill("   ")
    form.get_by_role("button", name="Adjust").click()
    expect(page.get_by_role("alert")).to_contain_text("A reason is required")
    assert shop.balance() == 460
    shot(page, f"adjustment-without-reason-{screen}")
    form = page.locator("#adjustment-form")
    form.get_by_label("Reason").fill("Duplicate grant, ticket #77")
    form.get_by_role("button", name="Adjust").click()
    expect(page.get_by_role("status")).to_have_text("Adjustment recorded.")
    expect(page.locator('#account .balance[data-unit="credits"]')).to_contain_text("400 credits")
    latest = page.locator("#transactions tbody tr").first
    expect(latest).to_contain_text("adjustment")
    expect(latest).to_contain_text("Duplicate grant, ticket #77")
    fits(page, viewport["width"])
    shot(page, f"after-adjustment-{screen}")
    assert shop.balance() == 400

    # A form post whose CSRF token is not the session's: 403, and nothing changes.
    form = page.locator("#adjustment-form")
    form.locator('input[name="csrf"]').evaluate("input => { input.value = '0'.repeat(64) }")
    form.get_by_label("Amount").fill("5")
    form.get_by_label("Reason").fill("forged")
    with page.expect_response(lambda r: r.url.endswith("/adjustments")) as answer:
        form.get_by_role("button", name="Adjust").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("This form has expired")
    shot(page, f"forged-post-{screen}")
    assert shop.balance() == 400
    kinds = [x["kind"] for x in shop.transactions()]
    assert kinds.count("adjustment") == 1
    page.context.close()

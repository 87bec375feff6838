"""The admin view in a real browser: sign in with the admin token, watch the event inbox, resolve
an order that needs attention, look an account up and grant credits with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PHONE, Shot, new_page
from tests.support.dev_server import DevServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def pay_a_session_nobody_can_match(shop: DevServer) -> str:
    """A payment made outside the shop, for a known package but no account billfold knows."""
    session = shop.stripe(
        "POST",
        "/checkout/sessions",
        {
            "mode": "payment",
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": "usd",
            "line_items[0][price_data][unit_amount]": "499",
            "line_items[0][price_data][product_data][name]": "Starter Pack",
            "success_url": "https://example.com/thanks",
            # Names the package, so resolving needs no call for the line items.
            "metadata[billfold_package]": "starter",
        },
    )
    shop.sim(f"/sessions/{session['id']}/pay", {"email": "stranger@example.com"})
    shop.settle()
    return str(session["id"])


def sign_in(page: Page, shop: DevServer, token: str) -> None:
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_an_operator_resolves_an_order_and_grants_credits(
    shop: DevServer, page: Page, shot: Shot, tmp_path: Path
) -> None:
    session_id = pay_a_session_nobody_can_match(shop)
    [order] = shop.orders(status="needs_attention")
    assert order["stripe_id"] == session_id

    page.goto(shop.url + "/admin")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, shop, "not-the-token")
    expect(page.get_by_role("alert")).to_have_text("That is not the admin token.")
    shot(page, "wrong-token")

    sign_in(page, shop, shop.admin_token)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()  # the console's home
    page.get_by_role("link", name="Events", exact=True).click()
    expect(page.get_by_role("heading", name="Event inbox")).to_be_visible()
    events = page.locator("#events")
    expect(events).to_contain_text("checkout.session.completed")
    expect(events).to_contain_text("needs_attention")
    shot(page, "events")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "billfold_admin"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert shop.admin_token not in cookie["value"]
    assert shop.admin_token not in page.content()

    page.get_by_role("link", name="checkout.session.completed").click()
    expect(page.locator(".payload")).to_contain_text(session_id)
    shot(page, "event")

    page.get_by_role("link", name="Orders").click()
    row = page.locator(f'tr[data-order-id="{order["id"]}"]')
    expect(row).to_contain_text("needs attention")
    form = page.get_by_role("form", name=f"Resolve {order['id']}")
    form.get_by_label("Account").fill("demo_user")
    form.get_by_label("Package").select_option("starter")
    shot(page, "order-needs-attention")
    form.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_have_text("Order resolved.")
    expect(page.locator(f'tr[data-order-id="{order["id"]}"]')).to_contain_text("fulfilled")
    shot(page, "order-resolved")
    assert shop.balance() == 500

    page.get_by_role("link", name="Accounts").click()
    page.get_by_label("Account id").fill("demo_user")
    page.get_by_role("button", name="Look up").click()
    balance = page.locator('#account .balance[data-unit="credits"]')
    expect(balance).to_contain_text("500 credits")
    grant = page.locator("#grant-form")
    grant.get_by_label("Amount").fill("25")
    grant.get_by_label("Reason").fill("   ")
    grant.get_by_role("button", name="Grant").click()
    expect(page.get_by_role("alert")).to_contain_text("A reason is required")
    grant = page.locator("#grant-form")
    grant.get_by_label("Reason").fill("Goodwill credit for ticket #123")
    grant.get_by_role("button", name="Grant").click()
    expect(page.get_by_role("status")).to_have_text("Grant recorded.")
    expect(balance).to_contain_text("525 credits")
    expect(page.locator("#transactions")).to_contain_text("Goodwill credit for ticket #123")
    shot(page, "account-after-grant")
    assert shop.balance() == 525

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(shop.url + "/admin/accounts?id=demo_user")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_admin_view_on_a_phone_sized_screen(
    shop: DevServer, browser: Browser, shot: Shot
) -> None:
    pay_a_session_nobody_can_match(shop)
    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(shop.url + "/admin/orders")
    sign_in(page, shop, shop.admin_token)
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    expect(page.locator("#orders")).to_contain_text("needs attention")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "orders-phone")
    page.get_by_role("link", name="Events").click()
    expect(page.locator("#events")).to_contain_text("checkout.session.completed")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "events-phone")
    page.context.close()

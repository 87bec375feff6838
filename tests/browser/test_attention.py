"""The needs-attention page in a real browser, on a desktop and a phone-sized screen: an operator
signs in with their name, resolves an order billfold could not match, and the page records who
did it and why."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, Shot, new_page
from tests.browser.test_admin import pay_a_session_nobody_can_match
from tests.support.dev_server import DevServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def sign_in_as(page: Page, shop: DevServer, name: str) -> None:
    page.get_by_label("Admin token").fill(shop.admin_token)
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_an_operator_resolves_an_order_from_the_queue_and_is_recorded_with_why(
    shop: DevServer, browser: Browser, shot: Shot, screen: str
) -> None:
    session_id = pay_a_session_nobody_can_match(shop)
    [order] = shop.orders(status="needs_attention")
    phone = screen == "phone"
    page = new_page(browser, viewport=PHONE if phone else DESKTOP, is_mobile=phone, has_touch=phone)
    page.goto(shop.url + "/admin/attention")
    sign_in_as(page, shop, "Grace Hopper")
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    expect(page.locator("#attention-count")).to_have_text("1")
    item = page.locator(f'li[data-order-id="{order["id"]}"]')
    expect(item).to_contain_text(session_id)
    expect(item).to_contain_text("stranger@example.com")
    expect(page.locator("#operator-actions")).to_contain_text("No actions yet.")
    assert (
        page.evaluate("document.documentElement.scrollWidth")
        <= (PHONE if phone else DESKTOP)["width"]
    )
    shot(page, f"queue-{screen}")

    form = page.get_by_role("form", name=f"Resolve {order['id']}")
    form.get_by_label("Account").fill("demo_user")
    form.get_by_label("Package").select_option("starter")
    # The reason is required: the browser will not send the form without one.
    form.get_by_role("button", name="Resolve").click()
    expect(page.locator(f'li[data-order-id="{order["id"]}"]')).to_be_visible()
    assert shop.balance() == 0
    form.get_by_label("Why").fill("Customer wrote in from stranger@example.com, ticket #42")
    form.get_by_role("button", name="Resolve").click()

    expect(page.get_by_role("status")).to_have_text("Order resolved.")
    expect(page.locator("#attention-count")).to_have_text("0")
    expect(page.locator("#attention-orders")).to_contain_text("No orders need attention.")
    recorded = page.locator("#actions")
    expect(recorded).to_contain_text("Grace Hopper")
    expect(recorded).to_contain_text("resolve")
    expect(recorded).to_contain_text("ticket #42")
    expect(recorded).to_contain_text("fulfilled for demo_user")
    assert (
        page.evaluate("document.documentElement.scrollWidth")
        <= (PHONE if phone else DESKTOP)["width"]
    )
    shot(page, f"resolved-{screen}")
    assert shop.balance() == 500
    [action] = shop.admin("GET", "/v1/operator-actions").json()["data"]
    assert (action["operator"], action["target_id"]) == ("Grace Hopper", order["id"])
    page.context.close()

"""The demo shop in a real browser: buy, pay on the simulator's page, see the balance, spend.

Each test starts its own ``billfold dev`` on a fresh database, so the demo user starts at zero.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import PHONE, Shot, new_page
from tests.support.dev_server import DevServer, dev_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHECKOUT_PAGE = re.compile(r"/stripe/pay/cs_")
SUCCESS_PAGE = re.compile(r"/success\?session_id=cs_")


def chip(page: Page, unit: str = "credits") -> Locator:
    return page.locator(f'.chip [data-balance="{unit}"]')


def outcome(page: Page) -> Locator:
    return page.locator("#outcome")


def session_id(page: Page) -> str:
    return parse_qs(urlsplit(page.url).query)["session_id"][0]


def buy(page: Page, pack: str, price: str) -> None:
    page.get_by_role("button", name=f"Buy {pack} for {price}").click()
    page.wait_for_url(CHECKOUT_PAGE)


def no_sideways_scrolling(page: Page) -> None:
    viewport = page.viewport_size
    assert viewport is not None
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


def test_buy_a_pack_pay_see_the_balance_and_spend_until_refused(
    shop: DevServer, page: Page, shot: Shot
) -> None:
    page.goto(shop.url + "/")
    expect(chip(page)).to_have_text("0 credits")
    expect(page.locator("#history")).to_contain_text("Nothing yet")
    shot(page, "shop")

    buy(page, "Starter Pack", "$4.99")
    expect(page.get_by_text("Total due today")).to_be_visible()
    expect(page.locator("#email")).to_have_value("demo@example.com")
    shot(page, "checkout")

    page.get_by_role("button", name="Pay $4.99").click()
    page.wait_for_url(SUCCESS_PAGE)
    expect(outcome(page)).to_have_attribute("data-state", "done")
    expect(page.get_by_role("heading", name="Payment received. Thank you!")).to_be_visible()
    expect(page.locator("#outcome-lines")).to_have_text("Starter Pack: +500 credits")
    expect(chip(page)).to_have_text("500 credits")
    shot(page, "success")

    # The success page and the webhook both fulfil the session: exactly one grant.
    shop.settle()
    assert shop.balance() == 500
    grants = [x for x in shop.transactions() if x["kind"] == "grant"]
    assert [g["net"] for g in grants] == [500]
    assert [o["status"] for o in shop.orders(account_id="demo_user")] == ["fulfilled"]

    # The application's backend spends most of it; the user spends the rest in the page.
    spent = shop.api(
        "POST", "/v1/accounts/demo_user/spend", json={"unit": "credits", "amount": 480}
    )
    assert spent.status_code == 200, spent.text
    page.get_by_role("link", name="Back to the shop").click()
    expect(chip(page)).to_have_text("20 credits")
    use = page.get_by_role("button", name="Use a feature (10 credits)")
    use.click()
    expect(page.locator("#notice")).to_have_text("Done! The feature ran and used 10 credits.")
    expect(chip(page)).to_have_text("10 credits")
    shot(page, "spent")
    use.click()
    expect(chip(page)).to_have_text("0 credits")
    use.click()
    refused = page.get_by_role("alert")
    expect(refused).to_contain_text("Not enough credits")
    expect(refused).to_contain_text("you have 0 credits")
    expect(chip(page)).to_have_text("0 credits")
    expect(page.locator("#history")).to_contain_text("Used a feature")
    shot(page, "refused")
    assert shop.balance() == 0
    assert len([x for x in shop.transactions() if x["kind"] == "spend"]) == 3


def test_a_delayed_payment_shows_pending_until_the_balance_arrives(
    tmp_path: Path, browser: Browser, shot: Shot
) -> None:
    # Settled by the test (not by a timer), so "pending" is on the page for as long as we look.
    with dev_server(tmp_path, "--settle-seconds", "-1") as shop:
        page = new_page(browser)
        page.goto(shop.url + "/")
        buy(page, "Popular Pack", "$14.99")
        page.get_by_role("button", name="Pay with a delayed method").click()
        page.wait_for_url(SUCCESS_PAGE)
        expect(outcome(page)).to_have_attribute("data-state", "pending")
        expect(page.get_by_role("heading", name="Payment pending")).to_be_visible()
        expect(chip(page)).to_have_text("0 credits")
        shot(page, "pending")

        shop.settle()
        assert shop.balance() == 0
        assert [o["status"] for o in shop.orders()] == ["pending"]

        shop.sim(f"/sessions/{session_id(page)}/settle")
        # The page keeps asking; the balance arrives once the bank debit has cleared.
        expect(outcome(page)).to_have_attribute("data-state", "done", timeout=30_000)
        expect(chip(page)).to_have_text("1,500 credits")
        expect(page.locator("#outcome-lines")).to_have_text("Popular Pack: +1,500 credits")
        shot(page, "arrived")
        shop.settle()
        assert shop.balance() == 1500
        page.context.close()


def test_a_delayed_payment_that_fails_grants_nothing(
    tmp_path: Path, browser: Browser, shot: Shot
) -> None:
    with dev_server(tmp_path, "--settle-seconds", "1") as shop:
        page = new_page(browser)
        page.goto(shop.url + "/")
        buy(page, "Starter Pack", "$4.99")
        page.select_option("select[name=delayed_outcome]", "failed")
        page.get_by_role("button", name="Pay with a delayed method").click()
        page.wait_for_url(SUCCESS_PAGE)
        expect(page.get_by_role("heading", name="Payment pending")).to_be_visible()
        shot(page, "pending")
        expect(outcome(page)).to_have_attribute("data-state", "failed", timeout=30_000)
        expect(page.get_by_role("heading", name="The payment did not go through")).to_be_visible()
        expect(chip(page)).to_have_text("0 credits")
        shot(page, "failed")
        shop.settle()
        assert shop.balance() == 0
        assert [o["status"] for o in shop.orders()] == ["failed"]
        page.context.close()


def test_a_declined_card_grants_nothing(shop: DevServer, page: Page, shot: Shot) -> None:
    page.goto(shop.url + "/")
    buy(page, "Professional Pack", "$29.99")
    page.get_by_role("button", name="Decline").click()
    expect(page.get_by_role("alert")).to_have_text("Your card was declined. Try again.")
    shot(page, "declined")

    page.get_by_role("link", name="Back").click()
    expect(page.locator("#notice")).to_have_text("Checkout cancelled: nothing was charged.")
    expect(chip(page)).to_have_text("0 credits")
    shot(page, "back-in-the-shop")

    shop.settle()
    assert shop.balance() == 0
    assert all(o["status"] != "fulfilled" for o in shop.orders())
    failed = shop.admin("GET", "/v1/events", params={"type": "payment_intent.payment_failed"})
    assert len(failed.json()["data"]) == 1
    assert shop.transactions() == []


def test_without_javascript_the_success_page_confirms_on_the_server(
    shop: DevServer, browser: Browser, shot: Shot
) -> None:
    page = new_page(browser, java_script_enabled=False)
    page.goto(shop.url + "/")
    buy(page, "Starter Pack", "$4.99")
    page.get_by_role("button", name="Pay $4.99").click()
    page.wait_for_url(re.compile(r"/success\?session_id=cs_[^&]+&confirm=1"))
    expect(page.get_by_role("heading", name="Payment received. Thank you!")).to_be_visible()
    expect(page.locator("#outcome-lines")).to_have_text("Starter Pack: +500 credits")
    expect(chip(page)).to_have_text("500 credits")
    shot(page, "success-without-js")
    shop.settle()
    assert shop.balance() == 500
    page.context.close()


def test_a_top_up_on_a_phone_sized_screen(shop: DevServer, browser: Browser, shot: Shot) -> None:
    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(shop.url + "/")
    no_sideways_scrolling(page)
    shot(page, "shop-phone")

    amount = page.get_by_label("Amount (USD)")
    amount.fill("2")
    page.get_by_role("button", name="Top up").click()
    expect(page.get_by_role("alert")).to_have_text("Choose an amount from $5.00 to $1,000.00.")
    expect(amount).to_be_focused()
    shot(page, "top-up-too-small")

    amount.fill("12.34")
    page.get_by_role("button", name="Top up").click()
    page.wait_for_url(CHECKOUT_PAGE)
    expect(page.get_by_text("Total due today")).to_be_visible()
    page.get_by_role("button", name="Pay $12.34").click()
    page.wait_for_url(SUCCESS_PAGE)
    expect(outcome(page)).to_have_attribute("data-state", "done")
    expect(page.locator("#outcome-lines")).to_have_text("Budget top-up: +$12.34")
    expect(chip(page, "usd")).to_have_text("$12.34")
    no_sideways_scrolling(page)
    shot(page, "success-phone")
    shop.settle()
    assert shop.balances()["usd"] == 1234
    page.context.close()

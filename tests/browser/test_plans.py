"""Plans in a real browser: subscribe in the demo shop, then let months go by with the developer
tools of ``billfold dev`` (Stripe's test clock): renewals, a failed renewal, grace, the default
plan, and a recovery; the admin view shows the same subscription."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import PHONE, Shot, new_page
from tests.support.dev_server import DevServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CHECKOUT_PAGE = re.compile(r"/stripe/pay/cs_")
SUCCESS_PAGE = re.compile(r"/success\?session_id=cs_")
SHOP_PAGE = re.compile(r"/\?notice=")


def chip(page: Page, unit: str = "credits") -> Locator:
    return page.locator(f'.chip [data-balance="{unit}"]')


def plan(page: Page) -> Locator:
    return page.locator("#plan")


def feature(page: Page, name: str) -> Locator:
    return page.locator(f'#plan-features [data-feature="{name}"]')


def press(page: Page, button: str) -> None:
    """Press a button of the shop and wait for the page it leads back to."""
    page.get_by_role("button", name=button).click()
    page.wait_for_url(SHOP_PAGE)


def clock_time(page: Page) -> int:
    return int(page.locator("#clock-now").get_attribute("data-frozen-time") or 0)


def test_subscribe_renew_fail_grace_default_and_recover(
    shop: DevServer, page: Page, shot: Shot
) -> None:
    page.goto(shop.url + "/")
    expect(plan(page)).to_have_attribute("data-source", "default")
    expect(page.locator("#plan-title")).to_have_text("You're on Free")
    expect(feature(page, "auto_trading")).to_have_class("off")
    expect(page.locator("#devtools")).to_contain_text("Stripe test clock")
    start = clock_time(page)
    shot(page, "free")

    # Subscribe: Stripe's checkout page, then the success page says what the plan gives.
    page.get_by_role("button", name="Subscribe to Pro").click()
    page.wait_for_url(CHECKOUT_PAGE)
    expect(page.get_by_text("Total due today")).to_be_visible()
    shot(page, "checkout")
    page.get_by_role("button", name="Pay $19.00").click()
    page.wait_for_url(SUCCESS_PAGE)
    expect(page.locator("#outcome")).to_have_attribute("data-state", "done")
    expect(page.get_by_role("heading", name="Welcome to Pro!")).to_be_visible()
    expect(page.locator("#outcome-lines")).to_have_text("Pro: 1,000 credits every month")
    expect(chip(page)).to_have_text("1,000 credits")
    shot(page, "subscribed")

    # Pro's features and its allowance, in the shop.
    page.get_by_role("link", name="Back to the shop").click()
    expect(plan(page)).to_have_attribute("data-source", "subscription")
    expect(page.locator("#plan-title")).to_have_text("Pro, active")
    expect(feature(page, "auto_trading")).to_have_class("on")
    expect(page.locator('#plan-limits [data-limit="max_positions"] dd')).to_have_text("50")
    allowances = page.locator("#plan-allowances li")
    expect(allowances).to_have_count(2)
    expect(allowances.nth(0)).to_contain_text("800 credits left of 800 credits")
    expect(allowances.nth(1)).to_contain_text("200 credits left of 200 credits")
    expect(page.locator('#plans [data-plan="pro"] .ribbon')).to_have_text("Current plan")
    expect(page.get_by_role("button", name="Upgrade to Elite")).to_be_visible()
    shot(page, "pro")

    # A month later: February's allowance; January's 800 expired.
    press(page, "Advance one month")
    assert clock_time(page) > start + 27 * 24 * 3600
    expect(chip(page)).to_have_text("1,200 credits")
    expect(page.locator("#plan-allowances li")).to_have_count(3)
    expired = page.locator("#history .history-row", has_text="Grant expired")
    expect(expired).to_have_count(1)
    expect(expired).to_contain_text("800 credits")
    expect(page.locator("#history .history-row").first).to_contain_text("Pro allowance")
    expect(plan(page)).to_have_attribute("data-source", "subscription")
    shot(page, "a-month-later")

    # The card on file declines from now on: the next renewal fails, and grace begins.
    press(page, "Make the next renewal fail")
    expect(page.locator("#devtools")).to_contain_text("Visa ending 0341")
    press(page, "Advance one month")
    expect(plan(page)).to_have_attribute("data-source", "grace")
    expect(page.locator("#plan-title")).to_contain_text("Payment failed: Pro until")
    expect(page.locator("#plan-source")).to_have_text("grace period")
    expect(feature(page, "auto_trading")).to_have_class("on")  # Pro, for three more days
    expect(page.get_by_role("button", name="Pay $19.00 with a new card")).to_be_visible()
    shot(page, "grace")

    # A week on, Stripe's retry failed too and the grace period is over: the free plan.
    press(page, "Advance one week")
    expect(plan(page)).to_have_attribute("data-source", "default")
    expect(page.locator("#plan-title")).to_have_text("You're on Free: your Pro payment failed")
    expect(page.locator("#plan-text")).to_contain_text("The grace period ended on")
    expect(feature(page, "auto_trading")).to_have_class("off")
    expect(page.locator('#plan-limits [data-limit="max_positions"] dd')).to_have_text("5")
    shot(page, "default-plan")

    # Recover: a new card pays the open invoice, and Pro is back with this period's allowance.
    press(page, "Pay $19.00 with a new card")
    expect(page.locator("#notice")).to_have_text("Paid with a new card.")
    expect(plan(page)).to_have_attribute("data-source", "subscription")
    expect(page.locator("#plan-title")).to_have_text("Pro, active")
    expect(feature(page, "auto_trading")).to_have_class("on")
    expect(page.locator("#devtools")).to_contain_text("Visa ending 4242")
    expect(page.locator("#plan-allowances")).to_contain_text("800 credits left of 800 credits")
    shot(page, "recovered")

    shop.settle()
    entitlements = shop.api("GET", "/v1/accounts/demo_user/entitlements").json()
    assert (entitlements["plan"], entitlements["source"]) == ("pro", "subscription")
    [subscription] = shop.api("GET", "/v1/accounts/demo_user/subscriptions").json()["data"]
    assert (subscription["status"], subscription["past_due_since"]) == ("active", None)


def test_upgrade_cancel_the_portal_and_the_admin_view(
    shop: DevServer, browser: Browser, page: Page, shot: Shot
) -> None:
    page.goto(shop.url + "/")
    page.get_by_role("button", name="Subscribe to Pro").click()
    page.wait_for_url(CHECKOUT_PAGE)
    page.get_by_role("button", name="Pay $19.00").click()
    page.wait_for_url(SUCCESS_PAGE)
    expect(page.get_by_role("heading", name="Welcome to Pro!")).to_be_visible()
    page.get_by_role("link", name="Back to the shop").click()
    press(page, "Advance one week")

    # An upgrade is billed at once and grants the rest of the period's difference.
    press(page, "Upgrade to Elite")
    expect(page.locator("#notice")).to_have_text("Your plan was changed.")
    expect(page.locator("#plan-title")).to_have_text("Elite, active")
    expect(feature(page, "priority_support")).to_have_class("on")
    expect(page.locator("#plan-allowances")).to_contain_text("Elite allowance")
    expect(chip(page, "tokens")).not_to_have_text("0 tokens")
    shot(page, "elite")

    # The billing portal opens on Stripe's page and comes back to the shop.
    page.get_by_role("button", name="Manage billing").click()
    page.wait_for_url(re.compile(r"/stripe/portal/bps_"))
    expect(page.get_by_text("Elite").first).to_be_visible()
    shot(page, "portal")
    page.go_back()
    page.wait_for_url(re.compile(r"/#plan$|/\?notice="))

    # Cancel at the end of the period: Elite stays until then.
    page.goto(shop.url + "/")
    press(page, "Cancel at period end")
    expect(plan(page)).to_have_attribute("data-source", "subscription")
    expect(page.locator("#plan-title")).to_contain_text("Elite, ending on")
    expect(page.get_by_role("button", name="Cancel at period end")).to_have_count(0)
    shot(page, "ending")
    press(page, "Advance one month")
    expect(plan(page)).to_have_attribute("data-source", "default")
    expect(page.locator("#plan-text")).to_contain_text("Your Elite subscription ended on")
    expect(page.get_by_role("button", name="Subscribe to Pro")).to_be_visible()
    shot(page, "ended")

    # The operator's view of the same subscription.
    admin = new_page(browser)
    admin.goto(shop.url + "/admin/subscriptions")
    admin.get_by_label("Admin token").fill(shop.admin_token)
    admin.get_by_role("button", name="Sign in").click()
    expect(admin.get_by_role("heading", name="Subscriptions")).to_be_visible()
    rows = admin.locator("#subscriptions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("canceled")
    expect(rows.first).to_contain_text("Elite")
    shot(admin, "admin-subscriptions")
    admin.get_by_role("link", name="demo_user").click()
    expect(admin.locator("#plan-source")).to_have_text("default")
    expect(admin.locator("#account-plan")).to_contain_text("Free")
    shot(admin, "admin-account")
    admin.context.close()


def test_the_plans_on_a_phone_sized_screen(shop: DevServer, browser: Browser, shot: Shot) -> None:
    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(shop.url + "/")
    expect(page.locator("#plans article")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "plans-phone")
    page.context.close()

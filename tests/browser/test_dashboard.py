"""The console's dashboard in a real browser, after a scripted run (two purchases through the Stripe
simulator, one payment nobody can match): the tiles' figures, the charts drawn with their words, on
a desktop and on a phone-sized screen without sideways scrolling."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, Shot, new_page
from tests.browser.test_admin import pay_a_session_nobody_can_match, sign_in
from tests.support.dev_server import DevServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHARTS = (
    "success-rate",
    "events-per-hour",
    "purchases",
    "credits-credits",
    "revenue-package",
    "revenue-plan",
)


def buy(shop: DevServer, package: str) -> None:
    created = shop.api(
        "POST", "/v1/checkout/sessions", json={"account_id": "demo_user", "package": package}
    )
    assert created.status_code == 201, created.text
    shop.sim(f"/sessions/{created.json()['id']}/pay", {"email": "demo@example.com"})


def scripted_run(shop: DevServer) -> dict[str, Any]:
    """Two purchases and a payment that needs attention; the API's figures afterwards."""
    buy(shop, "starter")
    buy(shop, "popular")
    pay_a_session_nobody_can_match(shop)
    shop.settle()
    assert shop.balance() == 2_000
    answer = shop.admin("GET", "/v1/dashboard", params={"days": 7})
    assert answer.status_code == 200, answer.text
    figures: dict[str, Any] = answer.json()
    return figures


def no_sideways_scrolling(page: Page) -> None:
    viewport = page.viewport_size
    assert viewport is not None
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


def check_dashboard(page: Page, figures: dict[str, Any]) -> None:
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    expect(page.locator("#tile-backlog .tile-value")).to_have_text("0")
    attention = page.locator("#tile-attention")
    expect(attention.locator(".tile-value")).to_have_text("1")
    expect(attention).to_contain_text("1 order, 0 failed and 0 dead events")
    expect(attention).to_have_attribute("href", "/admin/attention")
    expect(page.get_by_role("link", name="Needs attention: 1")).to_be_visible()
    expect(page.locator("#tile-latency")).to_contain_text("2 orders")
    assert figures["latency"]["count"] == 2

    for name in CHARTS:
        chart = page.locator(f'svg[data-chart="{name}"]')
        expect(chart).to_be_visible()
        expect(chart).to_have_attribute("role", "img")
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 200, name
        assert box["height"] > 40, name
    label = page.locator('svg[data-chart="purchases"]').get_attribute("aria-label")
    assert label == "Purchases per day, last 7 days: 2 checkout (total 2)"
    assert page.locator('svg[data-chart="revenue-package"]').get_attribute("aria-label") == (
        "Revenue by package, last 7 days: popular $14.99 (1 order), starter $4.99 (1 order)"
    )
    assert page.locator('svg[data-chart="revenue-plan"]').get_attribute("aria-label") == (
        "Revenue by plan, last 7 days: no data yet"
    )
    credits = page.locator('svg[data-chart="credits-credits"]').get_attribute("aria-label")
    assert credits == "credits granted per day, last 7 days: 2,000 paid, 0 free (total 2,000)"
    hourly = figures["webhooks"]["per_hour"]
    counts = {s: sum(h[s] for h in hourly) for s in ("processed", "ignored", "received")}
    said = page.locator('svg[data-chart="events-per-hour"]').get_attribute("aria-label") or ""
    assert said.startswith(
        f"Events per hour by outcome, last 24 hours: {counts['processed']} processed, "
        f"{counts['ignored']} ignored, {counts['received']} received, 0 failed, 0 dead"
    )
    assert counts["processed"] >= 3  # the two purchases and the unmatched payment
    rate = page.locator('svg[data-chart="success-rate"]').get_attribute("aria-label") or ""
    assert "100% overall" in rate
    # the bars are drawn: one revenue bar per package, stacked bars for the purchases
    expect(page.locator('svg[data-chart="revenue-package"] rect[data-value]')).to_have_count(2)
    expect(page.locator('svg[data-chart="purchases"] rect[data-value]')).to_have_count(1)


def test_the_dashboard_shows_a_scripted_run_on_a_desktop_and_a_phone(
    shop: DevServer, browser: Browser, shot: Shot
) -> None:
    figures = scripted_run(shop)
    for viewport, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        phone = viewport is PHONE
        page = new_page(browser, viewport=viewport, is_mobile=phone, has_touch=phone)
        refused: list[str] = []

        def console(message: ConsoleMessage, seen: list[str] = refused) -> None:
            if message.type == "error":
                seen.append(message.text)

        page.on("console", console)
        page.goto(shop.url + "/admin")
        sign_in(page, shop, shop.admin_token)
        check_dashboard(page, figures)
        no_sideways_scrolling(page)
        for name in CHARTS:
            box = page.locator(f'svg[data-chart="{name}"]').bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= viewport["width"], name
        shot(page, f"dashboard-{suffix}")
        assert refused == []  # nothing the Content-Security-Policy refused, nothing failed
        page.context.close()

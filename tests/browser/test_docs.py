"""The interactive API docs render in a real browser with no network beyond billfold itself."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Shot
from tests.support.dev_server import DevServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def only_billfold(page: Page, shop: DevServer) -> list[str]:
    """Refuse every request to another host; return the refused ones the page needs to work
    (scripts, styles, fonts, data). ReDoc's "powered by" badge, an image, may be refused."""
    own = urlsplit(shop.url).netloc
    refused: list[str] = []

    def route(r: Route) -> None:
        if urlsplit(r.request.url).netloc == own:
            r.continue_()
            return
        if r.request.resource_type != "image":
            refused.append(f"{r.request.resource_type} {r.request.url}")
        r.abort()

    page.route("**/*", route)
    return refused


def test_swagger_ui_renders_the_operations_offline(shop: DevServer, page: Page, shot: Shot) -> None:
    refused = only_billfold(page, shop)
    page.goto(shop.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("billfold", timeout=60_000)
    spend = page.locator(".opblock", has_text="/v1/accounts/{account_id}/spend")
    expect(spend.first).to_be_visible()
    spend.first.locator(".opblock-summary").click()
    expect(spend.first.get_by_text("Idempotency-Key")).to_be_visible()
    shot(page, "swagger-ui")
    assert refused == []


def test_redoc_renders_offline(shop: DevServer, page: Page, shot: Shot) -> None:
    refused = only_billfold(page, shop)
    page.goto(shop.url + "/redoc")
    # ReDoc parses and lays out the whole document in the page: seconds on a busy 2-core machine.
    expect(page.get_by_role("heading", name="billfold").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("/v1/accounts/{account_id}/spend").first).to_be_attached()
    shot(page, "redoc")
    assert refused == []

"""Purchases while Stripe misbehaves: every event delivered twice, in shuffled order, some only on
a retry. The balance must still be exactly what was paid for, and ``billfold verify`` clean."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Shot, new_page
from tests.browser.test_shop import CHECKOUT_PAGE, SUCCESS_PAGE, chip, outcome
from tests.support.dev_server import dev_server, run_cli

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

# pack, price on the button, how it is paid, credits it grants
PURCHASES = [
    ("Starter Pack", "$4.99", "Pay $4.99", 500),
    ("Popular Pack", "$14.99", "Pay with a delayed method", 1500),
    ("Professional Pack", "$29.99", "Pay $29.99", 4000),
]


def first_attempts(deliveries: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(created, first attempt) of each delivered copy."""
    return [
        (d["created"], d["attempts"][0]["at"]) for d in deliveries if d["status"] == "succeeded"
    ]


def test_purchases_under_duplicated_and_reordered_webhooks_grant_exactly_once(
    tmp_path: Path, browser: Browser, shot: Shot
) -> None:
    # Delayed payments settle at once, so their two events travel in one shuffled batch.
    with dev_server(tmp_path, "--chaos", "--settle-seconds", "0") as shop:
        chaos = shop.sim(
            "/chaos",
            {
                "duplicate_rate": 1.0,
                "reorder": True,
                "reorder_window_seconds": 0.3,
                "delay_seconds": 0,
                "drop_first_attempt_rate": 0.3,
                "seed": 20240601,
            },
        )
        assert chaos["duplicate_rate"] == 1.0

        page = new_page(browser)
        page.goto(shop.url + "/")
        expected = 0
        for pack, price, pay, credits in PURCHASES:
            page.get_by_role("button", name=f"Buy {pack} for {price}").click()
            page.wait_for_url(CHECKOUT_PAGE)
            page.get_by_role("button", name=pay).click()
            page.wait_for_url(SUCCESS_PAGE)
            expected += credits
            expect(outcome(page)).to_have_attribute("data-state", "done", timeout=30_000)
            expect(chip(page)).to_have_text(f"{expected:,} credits")
            shot(page, re.sub(r"\W+", "-", pack.lower()))
            page.get_by_role("link", name="Back to the shop").click()

        shop.settle(timeout=60)
        assert shop.balance() == expected == 6000
        page.reload()
        expect(chip(page)).to_have_text("6,000 credits")
        shot(page, "shop-after-chaos")

        grants = sorted(x["net"] for x in shop.transactions() if x["kind"] == "grant")
        assert grants == [500, 500, 1500, 3500]
        assert sorted(o["status"] for o in shop.orders()) == ["fulfilled"] * 3

        # Chaos really happened: every event went twice, and some arrived out of order.
        sent = httpx.get(shop.url + "/stripe/_sim/deliveries", timeout=30).json()
        deliveries = sent["data"]
        events = {d["event_id"] for d in deliveries}
        assert len(deliveries) == 2 * len(events)
        assert sent["counts"]["failed"] == 0
        assert any(len(d["attempts"]) > 1 for d in deliveries), "no first attempt was dropped"
        order = first_attempts(deliveries)
        assert any(
            a_created < b_created and a_at > b_at
            for a_created, a_at in order
            for b_created, b_at in order
        ), "no event overtook an earlier one"
        duplicates = shop.admin("GET", "/v1/events", params={"limit": 100}).json()["data"]
        assert len(duplicates) == len(events)  # the inbox holds each event once

    verified = run_cli("verify", db=shop.db)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ok" in verified.stdout
    page.context.close()

"""The console's events pages in a real browser, on a desktop and on a phone: the time filter (the
form's From/To in UTC, the quick links, a form-less address), the payload exactly as received and
the attempts table, Retry adding to it."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from billfold.adapters.stripe import signature
from tests.browser.conftest import PHONE, Shot, new_page
from tests.builders import stripe_events as se
from tests.support.dev_server import DevServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

NOW = int(time.time())
HOUR, DAY = 3600, 86_400


def post(shop: DevServer, body: bytes) -> str:
    """Deliver ``body`` to the dev server's webhook endpoint, signed with its secret."""
    secret = shop.credentials["webhook_secret"]
    answer = httpx.post(
        f"{shop.url}/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": signature.sign(body, secret)},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


def paid(ago: int, account: str, **fields: Any) -> dict[str, Any]:
    return se.checkout_session_completed(
        metadata={"billfold_account": account, "billfold_package": "starter"},
        amount_total=499,
        event_created=NOW - ago,
        **fields,
    )


def stock(shop: DevServer) -> tuple[dict[str, str], bytes]:
    """Events created half an hour, 20 hours, 5 and 30 days ago (processed), and a live-mode one
    ten minutes ago that the test-mode setup refuses (dead), sent with odd spacing and key order."""
    ids = {}
    for name, ago in (("recent", HOUR // 2), ("yesterday", 20 * HOUR), ("week", 5 * DAY)):
        event = paid(ago, f"user_{name}")
        assert post(shop, json.dumps(event).encode()) == "processed"
        ids[name] = event["id"]
    old = paid(30 * DAY, "user_old")
    post(shop, json.dumps(old).encode())
    ids["old"] = old["id"]
    refused = paid(600, "user_refused", livemode=True)
    body = ('{ "zeta" :\t[1,  2],\n  ' + json.dumps(refused, indent=1)[1:] + "\n").encode()
    assert post(shop, body) == "dead"
    ids["refused"] = refused["id"]
    return ids, body


def local(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M")


def sign_in(page: Page, shop: DevServer, path: str) -> None:
    page.goto(shop.url + path)
    page.get_by_label("Admin token").fill(shop.admin_token)
    page.get_by_role("button", name="Sign in").click()


def expect_rows(page: Page, *event_ids: str) -> None:
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(len(event_ids))
    shown = rows.evaluate_all("rows => rows.map(r => r.dataset.eventId)")
    assert sorted(shown) == sorted(event_ids)


def fits(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_an_operator_filters_events_by_time_and_reads_one_as_received(
    shop: DevServer, page: Page, shot: Shot, tmp_path: Path
) -> None:
    ids, body = stock(shop)
    sign_in(page, shop, "/admin/events")
    expect(page.get_by_role("heading", name="Event inbox")).to_be_visible()
    expect_rows(page, *ids.values())
    shot(page, "every-event")

    page.get_by_role("link", name="last hour").click()
    expect_rows(page, ids["recent"], ids["refused"])
    expect(page.get_by_label("From")).to_have_value(re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d$"))
    shot(page, "last-hour")
    page.get_by_role("link", name="7 days").click()
    expect_rows(page, ids["recent"], ids["refused"], ids["yesterday"], ids["week"])

    # The form: From and To, in UTC, with the status kept.
    page.get_by_label("From").fill(local(NOW - 6 * DAY))
    page.get_by_label("To").fill(local(NOW - HOUR))
    page.get_by_label("Status").select_option("processed")
    page.get_by_role("button", name="Filter").click()
    expect_rows(page, ids["yesterday"], ids["week"])
    expect(page.get_by_label("From")).to_have_value(local(NOW - 6 * DAY))
    expect(page.get_by_label("To")).to_have_value(local(NOW - HOUR))
    assert "from=" in page.url
    assert "to=" in page.url
    shot(page, "from-to-filter")

    # A form-less address: the same filter typed in.
    page.goto(f"{shop.url}/admin/events?from={local(NOW - 40 * DAY)}&to={local(NOW - 10 * DAY)}")
    expect_rows(page, ids["old"])
    page.goto(f"{shop.url}/admin/events?status=dead&from={local(NOW - HOUR)}")
    expect_rows(page, ids["refused"])

    # The refused event: its payload exactly as sent, its attempt, then an operator's retry.
    page.locator(f'tr[data-event-id="{ids["refused"]}"] a').first.click()
    payload = page.locator("#payload")
    expect(payload).to_be_visible()
    assert payload.text_content() == body.decode()
    attempts = page.locator("#attempts tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("livemode mismatch")
    expect(attempts.first).to_contain_text("webhook")
    shot(page, "event-dead")
    page.get_by_role("button", name="Retry now").click()
    expect(page.get_by_role("status")).to_contain_text("Event processed again")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(1)).to_contain_text("operator:console")  # signed in without a name
    expect(attempts.nth(1)).to_contain_text("dead")
    shot(page, "event-after-retry")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download raw").click()
    download = downloading.value
    assert download.suggested_filename == f"{ids['refused']}.json"
    saved = tmp_path / "raw.json"
    download.save_as(saved)
    assert saved.read_bytes() == body


def test_the_events_pages_on_a_phone_sized_screen(
    shop: DevServer, browser: Browser, shot: Shot
) -> None:
    ids, body = stock(shop)
    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page, shop, "/admin/events")
    expect_rows(page, *ids.values())
    fits(page, PHONE["width"])
    shot(page, "events-phone")
    page.get_by_role("link", name="24 h").click()
    expect_rows(page, ids["recent"], ids["refused"], ids["yesterday"])
    from_box = page.get_by_label("From").bounding_box()
    assert from_box is not None
    assert from_box["x"] + from_box["width"] <= PHONE["width"]
    fits(page, PHONE["width"])
    shot(page, "events-24h-phone")

    page.goto(f"{shop.url}/admin/events/{ids['refused']}")
    payload = page.locator("#payload")
    assert payload.text_content() == body.decode()
    expect(page.locator("#attempts tbody tr")).to_have_count(1)
    expect(page.get_by_role("link", name="Download raw")).to_be_visible()
    fits(page, PHONE["width"])  # the payload scrolls in its own box
    shot(page, "event-phone")
    page.context.close()

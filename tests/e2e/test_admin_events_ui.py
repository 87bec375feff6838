"""The console's events pages over the real API, in-process: the time filter (a form-less GET, the
quick links, kept across pages), the payload exactly as received, and the attempts table."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from billfold.adapters.stripe import signature
from billfold.bootstrap import Services
from billfold.entrypoints.http.admin_ui import AdminConfig, create_admin_app
from tests.builders import stripe_events as se
from tests.support.app import ADMIN, SECRET, deliver, running_app

UI = tuple[TestClient, Services, TestClient]
NOW = int(time.time())


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[UI]:
    # A test-mode key: a live-mode event is refused (dead), which is how one fails here.
    db = f"sqlite:///{tmp_path / 'admin.db'}"
    with running_app(db, stripe_secret_key="sk_test_events_ui") as (api, services):
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
            assert ui.post("/admin/login", data={"token": ADMIN}).status_code == 303
            yield ui, services, api


def local(timestamp: int) -> str:
    """As ``<input type="datetime-local">`` sends it, in UTC."""
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M")


def rows(page: str) -> list[str]:
    return re.findall(r'<tr data-event-id="([^"]+)"', page)


def created_at(api: TestClient, ago: int, account: str = "user_1") -> str:
    event = se.checkout_session_completed(
        metadata={"billfold_account": account, "billfold_package": "starter"},
        amount_total=499,
        event_created=NOW - ago,
    )
    assert deliver(api, event).status_code == 200
    return str(event["id"])


def test_a_form_less_get_filters_the_inbox_by_stripes_time(admin: UI) -> None:
    ui, _, api = admin
    hour_ago = created_at(api, 1800)
    day_ago = created_at(api, 20 * 3600)
    week_ago = created_at(api, 5 * 86_400)
    month_ago = created_at(api, 30 * 86_400)

    every = ui.get("/admin/events")
    assert every.status_code == 200
    assert set(rows(every.text)) == {hour_ago, day_ago, week_ago, month_ago}
    assert 'type="datetime-local" name="from"' in every.text

    # From and To as the form sends them (UTC), typed straight into the address bar.
    span = ui.get(f"/admin/events?from={local(NOW - 6 * 86_400)}&to={local(NOW - 3600)}")
    assert span.status_code == 200
    assert set(rows(span.text)) == {day_ago, week_ago}
    assert f'value="{local(NOW - 6 * 86_400)}"' in span.text  # the inputs keep what was asked
    # To includes its whole minute: an event created at 12:00:30 is in "To 12:00".
    to_its_minute = ui.get(f"/admin/events?to={local(NOW - 1800)}")
    assert hour_ago in rows(to_its_minute.text)
    only_from = ui.get(f"/admin/events?from={local(NOW - 86_400)}&status=processed")
    assert set(rows(only_from.text)) == {hour_ago, day_ago}
    nothing = ui.get(f"/admin/events?from={local(NOW + 3600)}")
    assert rows(nothing.text) == []
    assert "No events match." in nothing.text

    # The quick links: From that long ago, the other filters kept.
    quick = dict(re.findall(r'<a href="/admin/events\?([^"]+)">([^<]+)</a>', every.text)[:3])
    assert list(quick.values()) == ["last hour", "24 h", "7 days"]
    for query, label in quick.items():
        listed = rows(ui.get("/admin/events?" + html.unescape(query)).text)
        expected = {
            "last hour": {hour_ago},
            "24 h": {hour_ago, day_ago},
            "7 days": {hour_ago, day_ago, week_ago},
        }[label]
        assert set(listed) == expected, label
    typed = ui.get("/admin/events?type=checkout.session.completed&status=processed")
    assert "type=checkout.session.completed" in typed.text.split("last hour")[0]


def test_a_bad_time_is_said_and_left_out(admin: UI) -> None:
    ui, _, api = admin
    one = created_at(api, 60)
    page = ui.get("/admin/events?from=yesterday&to=")
    assert page.status_code == 200
    assert "From: not a date and time" in page.text
    assert rows(page.text) == [one]


def test_the_time_filter_is_kept_on_the_older_events_page(admin: UI) -> None:
    ui, _, api = admin
    inside = [created_at(api, 3600 + i, account=f"user_{i}") for i in range(27)]
    outside = created_at(api, 10 * 86_400)
    query = f"from={local(NOW - 86_400)}"
    first = ui.get(f"/admin/events?{query}")
    older = re.search(r'href="/admin/events\?([^"]+)">Older events', first.text)
    assert older, "no Older events link"
    link = html.unescape(older.group(1))
    assert query.replace(":", "%3A") in link
    second = ui.get("/admin/events?" + link)
    shown = rows(first.text) + rows(second.text)
    assert len(rows(first.text)) == 25
    assert sorted(shown) == sorted(inside)
    assert outside not in shown


def test_the_event_page_shows_the_payload_as_received_and_every_attempt(admin: UI) -> None:
    ui, _, api = admin
    event = se.checkout_session_completed(
        metadata={"billfold_account": "user_1", "billfold_package": "starter"},
        amount_total=499,
        livemode=True,  # billfold runs in test mode: refused, dead, an operator's look
    )
    body = ('{\n\t"zeta" : 1,  ' + json.dumps(event, separators=(",", ":"))[1:]).encode()
    headers = {"Stripe-Signature": signature.sign(body, SECRET)}
    assert api.post("/webhooks/stripe", content=body, headers=headers).json()["status"] == "dead"
    page = ui.get(f"/admin/events/{event['id']}")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf
    retried = ui.post(
        f"/admin/events/{event['id']}/retry",
        data={"csrf": csrf.group(1), "back": f"/admin/events/{event['id']}"},
    )
    assert retried.status_code == 303

    page = ui.get(f"/admin/events/{event['id']}")
    assert page.status_code == 200
    # Verbatim: the odd spacing and key order survive (HTML-escaped only).
    pre = re.search(r'<pre class="payload raw" id="payload">\n(.*?)</pre>', page.text, re.S)
    assert pre
    assert html.unescape(pre.group(1)) == body.decode()
    attempts = re.findall(r'<tr data-attempt="(\d+)">(.*?)</tr>', page.text, re.S)
    assert [n for n, _ in attempts] == ["1", "2"]
    assert "livemode mismatch" in attempts[0][1]
    assert "webhook" in attempts[0][1]
    assert "operator:console" in attempts[1][1]  # signed in without a name
    assert "dead" in attempts[1][1]

    download = ui.get(f"/admin/events/{event['id']}/payload")
    assert download.status_code == 200
    assert download.content == body
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"] == f'attachment; filename="{event["id"]}.json"'
    ui.cookies.clear()
    assert ui.get(f"/admin/events/{event['id']}/payload").status_code == 303


def test_an_event_processed_first_time_says_it_had_no_failed_attempt(admin: UI) -> None:
    ui, _, api = admin
    event_id = created_at(api, 0)
    page = ui.get(f"/admin/events/{event_id}")
    assert "No failed attempts: processed at its first attempt." in page.text
    assert "data-attempt" not in page.text
    missing = ui.get("/admin/events/evt_missing/payload")
    assert missing.status_code == 404

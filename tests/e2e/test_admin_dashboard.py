"""The console's dashboard over the real API, in-process, after the scripted run of
tests/support/dashboard_story.py: the tiles' figures and the charts' words. (The browser test walks
the same page in Chromium.)"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from billfold.entrypoints.http.admin_ui import AdminConfig, create_admin_app
from tests.conftest import FakeClock
from tests.support import dashboard_story as story
from tests.support.app import ADMIN, running_app


@pytest.fixture
def ui(db_url: str) -> Iterator[TestClient]:
    clock = FakeClock()
    with running_app(db_url, clock=clock, **story.SETTINGS) as (api, services):
        story.script(api, services, clock)
        view = create_admin_app(
            AdminConfig(
                api_base_url="http://billfold.test",
                api_transport=httpx.ASGITransport(app=api.app),
                admin_token=ADMIN,
                sessions=services.admin_sessions,
            )
        )
        root = Starlette(routes=[Mount("/admin", app=view)])
        with TestClient(root, base_url="http://testserver", follow_redirects=False) as client:
            assert client.post("/admin/login", data={"token": ADMIN}).status_code == 303
            yield client


def svgs(html: str) -> dict[str, ET.Element]:
    found = {}
    for markup in re.findall(r"<svg .*?</svg>", html, flags=re.S):
        root = ET.fromstring(markup)  # noqa: S314 - the console's own page
        found[root.get("data-chart", "")] = root
    return found


def tile(html: str, name: str) -> str:
    match = re.search(rf'id="tile-{name}".*?</(?:div|a)>', html, flags=re.S)
    assert match, name
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))).strip()


def test_the_home_page_is_the_dashboard_with_its_figures_and_charts(ui: TestClient) -> None:
    page = ui.get("/admin/")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Dashboard</h1>" in html
    assert 'href="/admin/dashboard" aria-current="page">Dashboard</a>' in html
    assert "style=" not in html
    assert "<script" not in html
    assert tile(html, "backlog").startswith(
        'id="tile-backlog"> Backlog 1 waiting, the oldest for 1 min 40 s; 1 failed'
    )
    assert 'href="/admin/attention"' in html
    assert "Needs attention 3 1 order, 1 failed and 1 dead event" in tile(html, "attention")
    assert "Payment to credit 30 s median (p50); p99 2 min; 2 orders" in tile(html, "latency")
    assert "Webhook success 67% 7 events; 2 purchases" in tile(html, "webhooks")

    charts = svgs(html)
    assert set(charts) == {
        "success-rate",
        "events-per-hour",
        "purchases",
        "credits-credits",
        "revenue-package",
        "revenue-plan",
    }
    label = {name: root.get("aria-label", "") for name, root in charts.items()}
    assert label["events-per-hour"] == (
        "Events per hour by outcome, last 24 hours: "
        "2 processed, 1 ignored, 1 received, 1 failed, 1 dead (total 6)"
    )
    assert label["success-rate"].startswith(
        "Webhook success rate per day, last 7 days: 67% overall"
    )
    assert label["purchases"] == "Purchases per day, last 7 days: 2 checkout (total 2)"
    assert label["credits-credits"] == (
        "credits granted per day, last 7 days: 4,000 paid, 500 free (total 4,500)"
    )
    assert label["revenue-package"] == (
        "Revenue by package, last 7 days: professional $29.99 (1 order), starter $4.99 (1 order)"
    )
    assert label["revenue-plan"] == "Revenue by plan, last 7 days: no data yet"


def test_the_window_follows_the_query_and_falls_back_to_a_week(ui: TestClient) -> None:
    one = ui.get("/admin/dashboard?days=1").text
    assert "The last 1 day, in UTC." in one
    assert "Purchases per day, last 1 day: 1 checkout (total 1)" in one
    assert "The last 7 days, in UTC." in ui.get("/admin/dashboard?days=500").text


def test_the_dashboard_needs_a_session(ui: TestClient) -> None:
    ui.cookies.clear()
    for path in ("/admin/", "/admin/dashboard"):
        answer = ui.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/admin/login?next=")

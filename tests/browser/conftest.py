"""Browser tests: a real ``billfold dev`` process, driven through Playwright by Debian's Chromium.

Chromium comes from the system (``apt-get install chromium``: ``make browser`` or ``.ci/run`` does
it), never from a download. Without it the tests are skipped with the reason, except under CI=true,
where they fail (``BILLFOLD_TEST_CHROMIUM`` names another binary). Each step's screenshot goes to
``test-artifacts/screenshots/<test>/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from tests.support.dev_server import DevServer, dev_server
from tests.support.servers import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("BILLFOLD_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser tests need Chromium under CI=true: {reason}")
    pytest.skip(f"no browser: {reason}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _unavailable(
            f"{CHROMIUM} not found; install it with `make browser` (apt-get install chromium)"
        )
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:  # pragma: no cover - a dev dependency
        _unavailable(f"playwright is not installed ({exc}); run `make setup`")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        except Error as exc:
            _unavailable(f"{CHROMIUM} did not start: {exc.message.splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[DevServer]:
    """A fresh ``billfold dev`` (its own database): the demo user starts with nothing."""
    with dev_server(tmp_path) as server:
        yield server


Shot = Callable[["Page", str], Path]


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Shot:
    """``shot(page, "name")`` saves a full-page screenshot, numbered in the order taken."""
    folder = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    taken = [0]

    def take(page: Page, name: str) -> Path:
        taken[0] += 1
        path = folder / f"{taken[0]:02d}-{name}.png"
        # From the top: a sticky header would otherwise be drawn mid-page in a full-page shot.
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def new_page(browser: Browser, *, viewport: dict[str, int] = DESKTOP, **options: object) -> Page:
    context = browser.new_context(viewport=viewport, **options)  # type: ignore[arg-type]
    context.set_default_timeout(20_000)
    page = context.new_page()
    return page


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = new_page(browser)
    yield opened
    opened.context.close()

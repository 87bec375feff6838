"""The TypeScript client's own tests (``clients/typescript/test``) against a live ``billfold dev``:
a pack bought through the simulator grows the balance once, spends and their typed errors, a spend
whose answer is lost retried with its key and counted once, paging, entitlements."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.node.support import CLIENT, node_test
from tests.support.dev_server import dev_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_typescript_client_against_billfold_dev(tmp_path: Path) -> None:
    assert (CLIENT / "dist" / "index.js").is_file(), "run `make typescript` first (builds dist/)"
    with dev_server(tmp_path) as server:
        passed = node_test(CLIENT, server, "test/unit.test.mjs", "test/live.test.mjs")
        failed_events = server.admin("GET", "/v1/events", params={"status": "failed"}).json()
        assert failed_events["data"] == [], failed_events
    assert passed == 16

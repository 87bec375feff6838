"""The Express example's own tests (``examples/express/test``) against a live ``billfold dev`` on
the example's catalog: a token pack bought through the simulator's checkout arrives once, a spend
works and a short balance is refused, the tier-gated route opens after subscribing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.node.support import EXPRESS, node_test
from tests.support.dev_server import dev_env, dev_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_express_token_shop_against_billfold_dev(tmp_path: Path) -> None:
    assert (EXPRESS / "dist" / "app.js").is_file(), "run `make typescript` first (builds dist/)"
    env = dev_env(BILLFOLD_CATALOG=str(EXPRESS / "catalog.toml"))
    with dev_server(tmp_path, env=env) as server:
        assert node_test(EXPRESS, server, "test/shop.test.mjs") == 4
        failed_events = server.admin("GET", "/v1/events", params={"status": "failed"}).json()
        assert failed_events["data"] == [], failed_events

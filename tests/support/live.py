"""A live ``billfold serve`` (a real process) with the Stripe simulator beside it (a thread of the
test process), on one database: what an application's client talks to."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from billfold.simulator import RetryPolicy, SimulatorConfig, create_simulator_app
from tests.support import servers
from tests.support.api import user_token
from tests.support.app import ADMIN, API_KEY, JWT_SECRET

SIM_SECRET = "whsec_live_client"
STRIPE_KEY = "sk_test_live_client"


@dataclass(frozen=True)
class Live:
    url: str
    sim: str
    api_key: str = API_KEY
    admin_token: str = ADMIN

    def user_token(self, account_id: str) -> str:
        return user_token(account_id)

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """A simulator control route (``POST /_sim/...``)."""
        response = httpx.post(f"{self.sim}/_sim/{path}", json=body or {}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def pay(self, session_id: str) -> None:
        """The customer pays on the hosted page; the webhook is delivered and processed."""
        self.control(f"sessions/{session_id}/pay", {"email": "ada@example.com"})
        self.control("flush", {"timeout": 20})

    def wait_for(self, account_id: str, unit: str, expected: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.api_key}"}
        found = None
        while time.monotonic() < deadline:
            response = httpx.get(f"{self.url}/v1/accounts/{account_id}", headers=headers)
            if response.status_code == 200:
                found = response.json()["balances"].get(unit)
                if found == expected:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{account_id} has {found} {unit}, expected {expected}")


@contextmanager
def live_billfold(db_url: str, **env: str) -> Iterator[Live]:
    port = servers.free_port()
    sim = servers.ServerThread(
        create_simulator_app(
            SimulatorConfig(
                webhook_url=f"http://127.0.0.1:{port}/webhooks/stripe",
                webhook_secret=SIM_SECRET,
                api_keys=(STRIPE_KEY,),
                retry=RetryPolicy(base_seconds=0.05, max_seconds=0.5, max_attempts=5),
                async_settle_seconds=None,
            )
        )
    ).start()
    settings = servers.billfold_env(
        db_url,
        BILLFOLD_API_KEYS=API_KEY,
        BILLFOLD_ADMIN_TOKEN=ADMIN,
        BILLFOLD_JWT_SECRET=JWT_SECRET,
        BILLFOLD_STRIPE_SECRET_KEY=STRIPE_KEY,
        BILLFOLD_STRIPE_API_BASE=sim.url,
        BILLFOLD_STRIPE_WEBHOOK_SECRETS=SIM_SECRET,
        BILLFOLD_RATE_LIMIT_CHECKOUT_PER_MINUTE="1000",
        BILLFOLD_LOG_LEVEL="warning",
        **env,
    )
    try:
        with servers.serve(settings, port=port) as url:
            yield Live(url=url, sim=sim.url)
    finally:
        sim.stop()

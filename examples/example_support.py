"""What the examples' tests share (their fixtures are in ``conftest.py``): Stripe's stand-in and a
running billfold.

``stripe_simulator`` is billfold's Stripe simulator on a free port (the ``stripe`` SDK talks to it
as to Stripe; its control routes pay a checkout as a customer would), delivering webhooks to
``webhook_url``. ``billfold_serve`` runs ``billfold serve`` as a real process: what an application
in another process, Flask's or Django's, talks to through ``billfold.client``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import stripe
import uvicorn

from billfold.simulator import RetryPolicy, SimulatorConfig, create_simulator_app

STRIPE_KEY = "sk_test_examples"
WEBHOOK_SECRET = "whsec_examples"
API_KEY = "bf_example_server_key"
ADMIN_TOKEN = "bf_example_admin_token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@contextmanager
def asgi_server(app: Any, port: int) -> Iterator[str]:
    """uvicorn serving ``app`` on ``port`` in a thread of the test process."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Simulator:
    url: str

    def sdk(self) -> stripe.StripeClient:
        """The official SDK, pointed at the simulator."""
        return stripe.StripeClient(
            STRIPE_KEY, base_addresses={"api": self.url}, max_network_retries=0
        )

    def pay(self, session_id: str) -> None:
        """The customer pays on the hosted checkout page; the webhook goes out, and is awaited."""
        for path, body in (
            (f"sessions/{session_id}/pay", {"email": "ada@example.com"}),
            ("flush", {"timeout": 20}),
        ):
            response = httpx.post(f"{self.url}/_sim/{path}", json=body, timeout=60)
            assert response.status_code == 200, response.text


@contextmanager
def stripe_simulator(webhook_url: str) -> Iterator[Simulator]:
    app = create_simulator_app(
        SimulatorConfig(
            webhook_url=webhook_url,
            webhook_secret=WEBHOOK_SECRET,
            api_keys=(STRIPE_KEY,),
            retry=RetryPolicy(base_seconds=0.05, max_seconds=0.5, max_attempts=5),
            async_settle_seconds=None,
        )
    )
    with asgi_server(app, free_port()) as url:
        yield Simulator(url)


def billfold_env(database: Path, catalog: Path, stripe_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLFOLD_")}
    env.update(
        BILLFOLD_DATABASE_URL=f"sqlite:///{database}",
        BILLFOLD_CATALOG=str(catalog),
        BILLFOLD_API_KEYS=API_KEY,
        BILLFOLD_ADMIN_TOKEN=ADMIN_TOKEN,
        BILLFOLD_STRIPE_SECRET_KEY=STRIPE_KEY,
        BILLFOLD_STRIPE_API_BASE=stripe_url,
        BILLFOLD_STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET,
        BILLFOLD_LOG_LEVEL="warning",
    )
    return env


@contextmanager
def billfold_serve(port: int, env: dict[str, str]) -> Iterator[str]:
    """``billfold serve`` on ``port``, stopped at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "billfold", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

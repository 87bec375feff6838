"""Graceful shutdown: ``billfold serve`` on SIGTERM answers the requests in flight and exits 0; a
stopping worker finishes the event at hand and releases the ones it claimed but did not start."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from billfold.entrypoints.worker import Worker
from billfold.simulator import SimulatorConfig, create_simulator_app
from tests.e2e.test_webhooks import paid_session
from tests.support.api import SERVER
from tests.support.app import API_KEY, balances, deliver, running_app
from tests.support.servers import ROOT, ServerThread, billfold_env, free_port, wait_http

SIM_KEY = "sk_test_shutdown"


class SlowCheckout:
    """The simulator, taking ``delay`` seconds to create a checkout session; ``arrived`` is set
    when such a request comes in."""

    def __init__(self, app: ASGIApp, delay: float) -> None:
        self.app = app
        self.delay = delay
        self.arrived = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/checkout/sessions"):
            self.arrived.set()
            await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


@pytest.fixture
def slow_stripe() -> Iterator[tuple[str, SlowCheckout]]:
    slow = SlowCheckout(
        create_simulator_app(
            SimulatorConfig(webhook_url=None, webhook_secret="whsec_shutdown", api_keys=(SIM_KEY,))
        ),
        delay=2.0,
    )
    sim = ServerThread(slow).start()
    try:
        yield sim.url, slow
    finally:
        sim.stop()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_lets_the_request_in_flight_finish_then_serve_exits_0(
    db_url: str, slow_stripe: tuple[str, SlowCheckout]
) -> None:
    stripe_url, slow = slow_stripe
    port = free_port()
    env = billfold_env(
        db_url,
        BILLFOLD_API_KEYS=API_KEY,
        BILLFOLD_STRIPE_SECRET_KEY=SIM_KEY,
        BILLFOLD_STRIPE_API_BASE=stripe_url,
        BILLFOLD_STRIPE_WEBHOOK_SECRETS="whsec_shutdown",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "billfold", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", timeout=60, proc=proc)
        answer: dict[str, Any] = {}

        def checkout() -> None:
            answer["response"] = httpx.post(
                f"{url}/v1/checkout/sessions",
                json={"account_id": "user_1", "package": "starter"},
                headers=SERVER,
                timeout=30,
            )

        caller = threading.Thread(target=checkout)
        caller.start()
        assert slow.arrived.wait(20), "the checkout never reached Stripe"
        proc.send_signal(signal.SIGTERM)  # while billfold waits for Stripe
        caller.join(30)
        code = proc.wait(timeout=30)
        printed = proc.stdout.read().decode() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    response = answer["response"]
    assert response.status_code == 201, response.text
    assert response.json()["id"].startswith("cs_")
    assert code == 0, printed
    assert "Traceback" not in printed
    # And it is gone: nothing answers on its port any more.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)


def test_a_stopping_worker_finishes_the_round_it_began_and_releases_what_it_had_not(
    db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round's events are applied together (one transaction): SIGTERM during the round lets it
    finish, whole; events claimed once the stop was asked for are released at once."""
    # Failed deliveries wait minutes, not seconds: only what the test makes due is (a loaded
    # machine took longer than the default backoff between the deliveries and the first round).
    with running_app(db_url, worker_threads=1, worker_backoff_base_seconds=300) as (
        client,
        services,
    ):
        fulfilment = services.inbox.handlers.fulfilment
        original = fulfilment.fulfil
        broken = {"on": True}

        def fails_while_broken(*args: Any, **kwargs: Any) -> Any:
            if broken["on"]:
                raise RuntimeError("not yet")
            return original(*args, **kwargs)

        monkeypatch.setattr(fulfilment, "fulfil", fails_while_broken)
        events = [paid_session(account=f"user_{i}") for i in range(6)]
        for event in events:
            assert deliver(client, event).status_code == 200
        broken["on"] = False

        def due(chosen: list[dict[str, Any]]) -> None:
            with services.infra.uow() as uow:
                for event in chosen:
                    uow.inbox.retry(event["id"], now=services.clock())
                uow.commit()

        def waiting() -> list[tuple[str, str | None]]:
            with services.infra.uow() as uow:
                records = [uow.inbox.get(e["id"], with_payload=False) for e in events]
            return [(r.status, r.lease_owner) for r in records if r and r.status != "processed"]

        # SIGTERM arrives while the first round is being written: the round finishes.
        due(events[:3])
        worker = Worker(services, name="worker:stopping")
        write_batch = services.inbox._write_batch

        def stop_while_writing(*args: Any, **kwargs: Any) -> Any:
            worker.stop(wait=None)
            return write_batch(*args, **kwargs)

        monkeypatch.setattr(services.inbox, "_write_batch", stop_while_writing)
        assert worker.run_once() == 3
        assert [balances(services, f"user_{i}") for i in range(3)] == [{"credits": 500}] * 3
        monkeypatch.setattr(services.inbox, "_write_batch", write_batch)

        # Claimed after the stop was asked for: given back, not processed.
        due(events[3:])
        assert worker.run_once() == 0
        assert waiting() == [("received", None)] * 3
        # Another worker takes them at once, without waiting for a lease to lapse.
        assert Worker(services, name="worker:next").run_once() == 3
        assert waiting() == []
        for i in range(6):
            assert balances(services, f"user_{i}") == {"credits": 500}

"""The outbox across a crash: a notification committed, a ``billfold worker`` killed with SIGKILL
while it delivers it, and a new worker delivers it (the same ``webhook-id``) once the lease lapses."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import standardwebhooks

from billfold.bootstrap import build
from billfold.service import ledger as L
from tests.support import servers
from tests.support.app import settings_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Endpoint:
    """The application's endpoint on a local port: holds its first request until released."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                endpoint.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if len(endpoint.received) == 1:
                    endpoint.first_arrived.set()
                    endpoint.release.wait(30)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/billfold"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    found = Endpoint()
    yield found
    found.close()


def status_of(db_url: str, notification_id: str) -> str:
    services = build(settings_for(db_url))
    try:
        return services.notifications.get(notification_id).status
    finally:
        services.close()


@pytest.mark.slow
def test_given_a_worker_killed_between_commit_and_delivery_then_another_delivers_it(
    db_url: str, endpoint: Endpoint
) -> None:
    services = build(settings_for(db_url))
    try:
        services.ledger.grant(L.Grant(key="g1", account_id="user_1", unit="credits", amount=500))
        rows, _ = services.notifications.page(type_="credits.granted")
        [note] = rows
    finally:
        services.close()
    env = servers.billfold_env(
        db_url,
        BILLFOLD_NOTIFY_URLS=f"{endpoint.url}|{SECRET}",
        BILLFOLD_WORKER_LEASE_SECONDS="2",
        BILLFOLD_WORKER_POLL_SECONDS="0.1",
        BILLFOLD_STRIPE_WEBHOOK_SECRETS="whsec_unused",
    )
    args = [sys.executable, "-c", "from billfold.entrypoints.cli import main; main()", "worker"]
    with servers.process(args, env) as first:
        assert endpoint.first_arrived.wait(60), "the first worker never delivered"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    assert status_of(db_url, note.id) == "pending"  # the attempt died with the process
    endpoint.release.set()
    with servers.process(args, env):
        deadline = time.monotonic() + 60
        while status_of(db_url, note.id) != "delivered":
            assert time.monotonic() < deadline, "the second worker never delivered"
            time.sleep(0.2)
    assert len(endpoint.received) == 2
    ids = {headers["webhook-id"] for headers, _ in endpoint.received}
    assert ids == {note.id}  # the receiver dedupes by it
    headers, body = endpoint.received[-1]
    payload = standardwebhooks.Webhook(SECRET).verify(body, headers)
    assert payload["data"] == dict(note.data)

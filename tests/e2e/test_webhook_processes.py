"""What only real processes show: two servers on one database, a SIGKILL while a webhook is
handled (before its one commit, and after it but before the answer), and the database going away
mid-traffic."""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from billfold.bootstrap import build
from tests.builders import stripe_events as se
from tests.support import servers
from tests.support.app import SECRET, balances, count, event_status, running_app, settings_for
from tests.support.tcpproxy import TcpProxy


def paid_session(account: str = "user_1") -> Any:
    return se.checkout_session_completed(
        metadata={"billfold_account": account, "billfold_package": "starter"}, amount_total=499
    )


@pytest.mark.slow
def test_given_two_servers_when_one_event_arrives_50_times_concurrently_then_one_grant(
    db_url: str, engine: Any
) -> None:
    env = servers.billfold_env(db_url, BILLFOLD_STRIPE_WEBHOOK_SECRETS=SECRET)
    event = paid_session()
    body, headers = se.signed(event, SECRET)
    with servers.serve(env) as first, servers.serve(env) as second:
        targets = [first, second] * 25

        def post(base: str) -> int:
            return httpx.post(
                f"{base}/webhooks/stripe", content=body, headers=headers, timeout=30
            ).status_code

        with ThreadPoolExecutor(max_workers=25) as pool:
            codes = list(pool.map(post, targets))
    assert codes == [200] * 50
    services = build(settings_for(db_url))
    try:
        assert balances(services, "user_1") == {"credits": 500}
        assert count(services, "grants") == 1
        assert event_status(services, event["id"]) == "processed"
    finally:
        services.close()


CRASHING_SERVER = """
import os, signal, sys
import uvicorn
from billfold.entrypoints.http.app import create_app
from billfold.settings import load_settings

app = create_app(load_settings(), run_worker=False)
inbox = app.state.services.inbox

def crash(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[2] == "before_commit":
    # Mid-processing: the event and its effects are one transaction, never committed.
    inbox.handlers.apply = crash
else:
    # After the commit, before the answer: Stripe sees no 2xx and sends the event again.
    receive = inbox.receive_webhook_async
    async def receive_then_crash(*args, **kwargs):
        await receive(*args, **kwargs)
        crash()
    inbox.receive_webhook_async = receive_then_crash
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before_commit", "after_commit"])
def test_given_a_process_killed_while_handling_a_webhook_then_the_retry_grants_once(
    db_url: str, engine: Any, moment: str
) -> None:
    env = servers.billfold_env(db_url, BILLFOLD_STRIPE_WEBHOOK_SECRETS=SECRET)
    port = servers.free_port()
    event = paid_session()
    body, headers = se.signed(event, SECRET)
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_SERVER, str(port), moment],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        servers.wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        with pytest.raises(httpx.HTTPError):
            httpx.post(
                f"http://127.0.0.1:{port}/webhooks/stripe",
                content=body,
                headers=headers,
                timeout=10,
            )
        assert proc.wait(timeout=10) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
        assert proc.stdout is not None
        proc.stdout.close()
    services = build(settings_for(db_url))
    try:
        with services.infra.uow() as uow:
            record = uow.inbox.get(event["id"])
        if moment == "before_commit":
            assert record is None  # nothing was answered, nothing was stored
            assert balances(services, "user_1") == {}
        else:
            assert record is not None
            assert record.status == "processed"
            assert balances(services, "user_1") == {"credits": 500}
        # Stripe retries the delivery it got no 2xx for.
        with servers.serve(env) as base:
            answer = httpx.post(
                f"{base}/webhooks/stripe", content=body, headers=headers, timeout=10
            )
        assert answer.status_code == 200
        assert answer.json()["duplicate"] is (moment == "after_commit")
        assert balances(services, "user_1") == {"credits": 500}
        assert count(services, "grants") == 1
        assert event_status(services, event["id"]) == "processed"
    finally:
        services.close()


def _through_proxy(db_url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(db_url)
    netloc = (
        f"{parts.username}@127.0.0.1:{proxy.port}"
        if parts.username
        else (f"127.0.0.1:{proxy.port}")
    )
    return urlunsplit(parts._replace(netloc=netloc))


def test_given_the_database_goes_away_then_503_and_the_redelivery_grants_once(
    db_url: str, engine: Any, tmp_path: Path
) -> None:
    event = paid_session()
    if db_url.startswith("sqlite"):
        home = tmp_path / "data"
        home.mkdir()
        path = home / "billfold.db"
        shutil.copy(db_url.removeprefix("sqlite:///"), path)
        url = f"sqlite:///{path}"
        gone = tmp_path / "gone"
        services_box: list[Any] = []

        def cut() -> None:
            home.rename(gone)
            services_box[
                0
            ].infra.database.engine.dispose()  # drop pooled connections: new ones find nothing

        def restore() -> None:
            gone.rename(home)
    else:
        parts = urlsplit(db_url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        url = _through_proxy(db_url, proxy)
        cut, restore = proxy.cut, proxy.restore
    with running_app(url) as (client, services):
        if db_url.startswith("sqlite"):
            services_box.append(services)
        body, headers = se.signed(event, SECRET)
        cut()
        try:
            down = [
                client.post("/webhooks/stripe", content=body, headers=headers) for _ in range(3)
            ]
            assert [r.status_code for r in down] == [503] * 3
            assert client.get("/healthz").status_code == 503
        finally:
            restore()
        # Stripe redelivers after the outage: granted exactly once.
        again = [client.post("/webhooks/stripe", content=body, headers=headers) for _ in range(2)]
        assert [r.status_code for r in again] == [200, 200]
        assert balances(services, "user_1") == {"credits": 500}
        assert count(services, "grants") == 1
    if not db_url.startswith("sqlite"):
        proxy.close()
    if db_url.startswith("sqlite"):
        # the engine fixture audits the original file; audit this one too
        from billfold.adapters.db import engine as db_engine
        from billfold.adapters.db.verify import verify

        eng = db_engine.make_engine(url)
        assert verify(eng) == []
        eng.dispose()

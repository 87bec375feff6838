"""``billfold dev`` as a process: credentials and state that survive a restart, a clean Ctrl+C,
environment keys, and no deadlock when many clients check out at once through its one loop."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.dev_server import DevServer, dev_env, dev_server
from tests.support.servers import ROOT, free_port

pytestmark = pytest.mark.timeout(180)


def buy_and_pay(shop: DevServer, package: str = "starter") -> str:
    created = shop.api(
        "POST",
        "/v1/checkout/sessions",
        json={
            "account_id": "demo_user",
            "package": package,
            "success_url": f"{shop.url}/success",
        },
    )
    assert created.status_code == 201, created.text
    session_id = str(created.json()["id"])
    assert created.json()["url"] == f"{shop.url}/stripe/pay/{session_id}"
    shop.sim(f"/sessions/{session_id}/pay")
    return session_id


def test_a_second_run_picks_up_where_the_first_left_off(tmp_path: Path) -> None:
    port = free_port()
    with dev_server(tmp_path, port=port) as first:
        session_id = buy_and_pay(first)
        first.settle()
        assert first.balance() == 500
        code, printed = first.stop(signal.SIGINT)
    assert code == 0, printed
    assert "Traceback" not in printed
    assert printed.rstrip().endswith("billfold dev stopped.")
    for line in (f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/admin/", "/docs"):
        assert line in printed
    assert first.api_key in printed
    assert first.admin_token in printed
    assert "User token" in printed
    assert "generated now" in printed
    assert (tmp_path / ".shop.json").stat().st_mode & 0o077 == 0

    with dev_server(tmp_path, port=port) as second:
        assert second.credentials == first.credentials
        assert second.balance() == 500
        session = second.stripe("GET", f"/checkout/sessions/{session_id}")
        assert session["payment_status"] == "paid"
        fulfilled = second.api("POST", f"/v1/checkout/sessions/{session_id}/fulfill")
        assert fulfilled.json()["status"] == "fulfilled"
        assert second.balance() == 500
        code, printed = second.stop(signal.SIGTERM)
    assert code == 0, printed
    assert "demo credentials reused" in printed


def test_many_checkouts_and_fulfilments_at_once_do_not_deadlock_the_one_loop(
    tmp_path: Path,
) -> None:
    """Each request calls the simulator through the SDK, over a socket, on the same server."""
    clients = 12
    with dev_server(tmp_path) as shop:
        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            sessions = list(pool.map(lambda _: buy_and_pay(shop), range(clients)))
            answers = list(
                pool.map(
                    lambda sid: shop.api("POST", f"/v1/checkout/sessions/{sid}/fulfill"),
                    sessions,
                )
            )
        assert time.monotonic() - started < 60
        assert [a.json()["status"] for a in answers] == ["fulfilled"] * clients
        shop.settle()
        assert shop.balance() == 500 * clients
        # The server still answers promptly afterwards.
        assert httpx.get(f"{shop.url}/healthz", timeout=5).status_code == 200


def test_keys_and_tokens_set_in_the_environment_are_used(tmp_path: Path) -> None:
    env = dev_env(
        BILLFOLD_API_KEYS="my_own_server_key",
        BILLFOLD_ADMIN_TOKEN="my_own_admin_token",
        BILLFOLD_STRIPE_SECRET_KEY="sk_live_never_sent_anywhere",
        BILLFOLD_DATABASE_URL="postgresql://prod.example.com/billing",
    )
    with dev_server(tmp_path, env=env) as shop:
        assert shop.api("GET", "/v1/catalog", token="my_own_server_key").status_code == 200
        mine = shop.api("GET", "/v1/events", token="my_own_admin_token")
        assert mine.status_code == 200
        generated = shop.api("GET", "/v1/events", token=shop.admin_token)
        assert generated.status_code == 401
        shop.credentials["api_key"] = "my_own_server_key"
        buy_and_pay(shop)  # the simulator accepts the generated test key, not the live one
        shop.credentials["admin_token"] = "my_own_admin_token"
        shop.settle()
        assert shop.balance() == 500
        code, printed = shop.stop()
    assert code == 0
    assert "from BILLFOLD_API_KEYS" in printed
    assert "my_own_admin_token" not in printed
    assert "not a test key" in printed
    assert "BILLFOLD_DATABASE_URL is ignored" in printed
    assert (tmp_path / "shop.db").exists()


def test_a_busy_port_stops_start_up_with_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "billfold",
                "dev",
                "--port",
                str(port),
                "--db",
                str(tmp_path / "shop.db"),
            ],
            env=dev_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_dev_prints_the_notifications_and_the_demo_shows_them(tmp_path: Path) -> None:
    with dev_server(tmp_path) as shop:
        buy_and_pay(shop)
        shop.settle()
        assert shop.balance() == 500
        deadline = time.monotonic() + 30
        while True:
            delivered = shop.admin(
                "GET", "/v1/notifications", params={"status": "delivered"}
            ).json()["data"]
            if {"credits.granted", "order.fulfilled"} <= {n["type"] for n in delivered}:
                break
            assert time.monotonic() < deadline, delivered
            time.sleep(0.2)
        page = httpx.get(f"{shop.url}/", timeout=30)
        assert page.status_code == 200
        assert 'id="notifications-title">Notifications' in page.text
        assert 'data-type="order.fulfilled"' in page.text
        assert 'data-type="credits.granted"' in page.text
        code, printed = shop.stop(signal.SIGINT)
    assert code == 0, printed
    assert "notification order.fulfilled for demo_user" in printed
    assert "notification credits.granted for demo_user" in printed

"""``billfold dev`` as a real process on a free port, and what a test asks of it.

The test talks to it as the outside world would: billfold's API with the demo server key or admin
token (read from the credentials file the process writes beside its database), and the Stripe
simulator's control routes under ``/stripe/_sim``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import ROOT, billfold_env, free_port, wait_http

ACCOUNT = "demo_user"


@dataclass
class DevServer:
    url: str
    db: Path
    proc: subprocess.Popen[bytes]
    credentials: dict[str, str] = field(default_factory=dict)

    @property
    def api_key(self) -> str:
        return self.credentials["api_key"]

    @property
    def admin_token(self) -> str:
        return self.credentials["admin_token"]

    @property
    def stripe_key(self) -> str:
        return self.credentials["stripe_secret_key"]

    def api(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.api_key}"}
        headers.update(kwargs.pop("headers", {}))
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.api(method, path, token=self.admin_token, **kwargs)

    def sim(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """A simulator control route (``POST /stripe/_sim/...``); its JSON answer."""
        response = httpx.post(f"{self.url}/stripe/_sim{path}", json=dict(body or {}), timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def stripe(self, method: str, path: str, data: Mapping[str, str] | None = None) -> Any:
        """The simulator's Stripe API, form-encoded as the SDK sends it."""
        response = httpx.request(
            method,
            f"{self.url}/stripe/v1{path}",
            data=dict(data or {}),
            headers={"Authorization": f"Bearer {self.stripe_key}"},
            timeout=30,
        )
        assert response.is_success, response.text
        return response.json()

    def balances(self, account_id: str = ACCOUNT) -> dict[str, int]:
        response = self.api("GET", f"/v1/accounts/{account_id}")
        if response.status_code == 404:
            return {}
        assert response.status_code == 200, response.text
        return dict(response.json()["balances"])

    def balance(self, unit: str = "credits", account_id: str = ACCOUNT) -> int:
        return self.balances(account_id).get(unit, 0)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the simulator has delivered everything and billfold has processed it."""
        self.sim("/flush", {"timeout": timeout})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = [
                e
                for status in ("received", "failed")
                for e in self.admin("GET", "/v1/events", params={"status": status}).json()["data"]
            ]
            if not waiting:
                return
            time.sleep(0.2)
        raise AssertionError(f"billfold did not process its inbox within {timeout}s: {waiting}")

    def wait_for_balance(self, expected: int, unit: str = "credits", timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while (found := self.balance(unit)) != expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"balance of {unit} is {found}, expected {expected}")
            time.sleep(0.2)

    def orders(self, **params: str) -> list[dict[str, Any]]:
        response = self.admin("GET", "/v1/orders", params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def transactions(self, account_id: str = ACCOUNT) -> list[dict[str, Any]]:
        response = self.api("GET", f"/v1/accounts/{account_id}/transactions", params={"limit": 100})
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> tuple[int, str]:
        """Stop it as Ctrl+C would; its exit code and everything it printed."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        code = self.proc.wait(timeout=timeout)
        out = self.proc.stdout.read().decode() if self.proc.stdout else ""
        return code, out


def dev_env(**extra: str) -> dict[str, str]:
    """The environment without any BILLFOLD_* setting of the machine's, plus ``extra``."""
    env = billfold_env("sqlite:///unused.db", COLUMNS="200")
    env.pop("BILLFOLD_DATABASE_URL")
    env.update(extra)
    return env


@contextmanager
def dev_server(
    directory: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    db_name: str = "shop.db",
) -> Iterator[DevServer]:
    """``billfold dev --port P --db DIR/DB_NAME ARGS...``, stopped (SIGINT) at the end."""
    port = port or free_port()
    db = directory / db_name
    command = [sys.executable, "-m", "billfold", "dev", "--port", str(port), "--db", str(db)]
    proc = subprocess.Popen(
        [*command, *args],
        env=dict(env or dev_env()),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = DevServer(url=f"http://127.0.0.1:{port}", db=db, proc=proc)
    try:
        wait_http(f"{server.url}/healthz", timeout=60, proc=proc)
        server.credentials = json.loads((directory / f".{db.stem}.json").read_text())
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


def run_cli(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    """Another ``billfold`` command against the dev server's database file."""
    env = billfold_env(f"sqlite:///{db}")
    return subprocess.run(
        [sys.executable, "-m", "billfold", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

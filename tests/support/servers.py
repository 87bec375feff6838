"""Real billfold processes for the tests: ``billfold serve`` / ``billfold worker`` on free ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def billfold_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLFOLD_")}
    env.update({"BILLFOLD_DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {out[-2000:]}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


SECRET_SETTINGS = (
    "BILLFOLD_STRIPE_WEBHOOK_SECRETS",
    "BILLFOLD_API_KEYS",
    "BILLFOLD_ADMIN_TOKEN",
    "BILLFOLD_JWT_SECRET",
    "BILLFOLD_STRIPE_SECRET_KEY",
    "BILLFOLD_METRICS_TOKEN",
)


def secrets_of(env: Mapping[str, str], *more: str) -> list[str]:
    """Every secret configured in ``env`` (each of a comma-separated list), and ``more``."""
    found = [part.strip() for name in SECRET_SETTINGS for part in env.get(name, "").split(",")]
    return [s for s in (*found, *more) if s]


def json_log_lines(path: Path, secrets: list[str]) -> list[dict[str, Any]]:
    """Every line a ``serve`` or ``worker`` wrote, each checked to be one JSON object and to
    carry none of ``secrets``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    parsed: list[dict[str, Any]] = []
    for line in lines:
        if not line.strip():
            continue
        for secret in secrets:
            assert secret not in line, f"a configured secret is in a log line: {line[:200]}"
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"a log line that is not JSON: {line[:300]}") from None
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


@contextmanager
def process(
    args: list[str],
    env: Mapping[str, str],
    *,
    wait_url: str | None = None,
    log_path: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` running until the block ends; its output to ``log_path`` when given."""
    log = log_path.open("wb") if log_path is not None else None
    proc = subprocess.Popen(
        args,
        env=dict(env),
        cwd=ROOT,
        stdout=log if log is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if wait_url:
            wait_http(wait_url, proc=proc)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if log is not None:
            log.close()


@contextmanager
def serve(
    env: Mapping[str, str],
    *,
    port: int | None = None,
    workers: int = 1,
    log_path: Path | None = None,
) -> Iterator[str]:
    """``billfold serve`` on a free port. Its output is kept, and checked when it stops: every
    line one JSON object (unless ``BILLFOLD_LOG_FORMAT`` says otherwise), no configured secret."""
    port = port or free_port()
    args = [
        sys.executable,
        "-m",
        "billfold",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with tempfile.TemporaryDirectory(prefix="billfold-serve-") as scratch:
        path = log_path or Path(scratch) / "serve.log"
        with process(args, env, wait_url=f"http://127.0.0.1:{port}/healthz", log_path=path):
            yield f"http://127.0.0.1:{port}"
        if env.get("BILLFOLD_LOG_FORMAT", "json") == "json":
            json_log_lines(path, secrets_of(env))


@contextmanager
def worker(env: Mapping[str, str], *, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``billfold worker``, its output to ``log_path``."""
    with process([sys.executable, "-m", "billfold", "worker"], env, log_path=log_path) as proc:
        yield proc


class ServerThread:
    """uvicorn serving ``app`` on a free port in a background thread."""

    def __init__(self, app: ASGIApp) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", http="h11")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

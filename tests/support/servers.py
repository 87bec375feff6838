"""Real billfold processes for the tests: ``billfold serve`` / ``billfold worker`` on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

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


@contextmanager
def process(
    args: list[str], env: Mapping[str, str], *, wait_url: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args,
        env=dict(env),
        cwd=ROOT,
        stdout=subprocess.PIPE,
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


@contextmanager
def serve(env: Mapping[str, str], *, port: int | None = None, workers: int = 1) -> Iterator[str]:
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
    with process(args, env, wait_url=f"http://127.0.0.1:{port}/healthz"):
        yield f"http://127.0.0.1:{port}"

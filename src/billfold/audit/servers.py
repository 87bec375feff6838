"""The processes an audit starts: the Stripe simulator on a thread of its own (uvicorn, a free
port) and billfold itself as a ``billfold serve`` subprocess, which ``--kill`` ends with SIGKILL
and starts again on the same port and database."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx
import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving ``app`` on ``port`` in a background thread."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port = port
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", ws="none", access_log=False, backlog=2048
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name="billfold-audit-simulator",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Stripe simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self._socket.close()


class BillfoldProcess:
    """``billfold serve`` on ``port`` with ``env``; its output goes to ``log``."""

    def __init__(self, env: Mapping[str, str], port: int, log: Path, *, processes: int = 1):
        self.env = dict(env)
        self.port = port
        self.log = log
        self.processes = processes
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self.kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self._out = self.log.open("ab")
        args = [sys.executable, "-m", "billfold", "serve", "--port", str(self.port)]
        args += ["--workers", str(self.processes)]
        self.proc = subprocess.Popen(  # noqa: S603 - billfold itself, by this interpreter
            args, env=self.env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"billfold serve exited with {self.proc.returncode}; see {self.log}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"billfold serve did not answer within {timeout:g} s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, the whole process group (uvicorn's workers too): no cleanup runs."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.kills += 1
        self._close_log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

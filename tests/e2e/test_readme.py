"""Every command the README shows is run here, as a reader would run it (issue 10).

Shell blocks run line by line: ``export`` lines set the environment (placeholders such as
``sk_live_...`` become test values, the database this test's own, Stripe the simulator), ``billfold``
commands run for real (``serve`` and ``worker`` in the background until they answer, then stopped
with SIGTERM), and ``curl`` lines run against that server. ``make dev`` and ``make test`` are the
two commands CI and ``tests/e2e/test_dev_command.py`` run; here their targets must exist. Python
blocks run in a fresh interpreter with the same environment.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from billfold.simulator import SimulatorConfig, create_simulator_app
from tests.support.servers import ROOT, ServerThread, billfold_env, free_port, wait_http

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
SIM_KEY = "sk_test_readme"
BLOCK = re.compile(r"```(?P<lang>sh|python)\n(?P<body>.*?)```", re.S)


def blocks(lang: str) -> list[str]:
    return [m["body"] for m in BLOCK.finditer(README.read_text()) if m["lang"] == lang]


def commands(body: str) -> list[str]:
    """Logical lines of a shell block, continuations joined, comments dropped."""
    joined = body.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            out.append(shlex.join(words) if words[0] != "curl" else line.split(" #")[0].strip())
    return out


def test_the_readme_shows_the_two_commands_and_the_makefile_has_them() -> None:
    quickstart = commands(blocks("sh")[0])
    assert quickstart == ["make dev", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("dev", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), target


@pytest.fixture
def simulator() -> Iterator[str]:
    sim = ServerThread(
        create_simulator_app(
            SimulatorConfig(webhook_url=None, webhook_secret="whsec_readme", api_keys=(SIM_KEY,))
        )
    ).start()
    try:
        yield sim.url
    finally:
        sim.stop()


class Reader:
    """Runs what the README says, in order, keeping the environment it builds."""

    def __init__(self, db_url: str, simulator: str, stack: ExitStack) -> None:
        self.env = billfold_env(db_url, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        self.env["BILLFOLD_STRIPE_API_BASE"] = simulator
        self.db_url = db_url
        self.port = free_port()
        self.stack = stack
        self.ran: list[str] = []

    def ran_serve(self) -> bool:
        return any(c.startswith("billfold serve") for c in self.ran)

    def placeholder(self, name: str, value: str) -> str:
        if name == "BILLFOLD_DATABASE_URL":
            return self.db_url
        if name == "BILLFOLD_STRIPE_SECRET_KEY":
            return SIM_KEY
        if "..." in value:
            return f"readme_{name.lower()}_value_0123456789"
        return value

    def run(self, command: str) -> None:
        self.ran.append(command)
        words = shlex.split(command)
        if words[0] == "export":
            for pair in words[1:]:
                name, _, value = pair.partition("=")
                self.env[name] = self.placeholder(name, value)
            return
        if words[0] == "make":
            return  # the quickstart; see the test above
        if words[0] == "billfold":
            self.billfold(words)
            return
        if words[0] == "curl":
            self.curl(command)
            return
        raise AssertionError(f"the README shows a command this test cannot run: {command}")

    def billfold(self, words: list[str]) -> None:
        args = [str(BIN / "billfold"), *words[1:]]
        if words[1] in ("serve", "worker"):
            if words[1] == "serve":
                args += ["--port", str(self.port)]
            proc = subprocess.Popen(
                args,
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.stack.callback(_stop, proc)
            if words[1] == "serve":
                wait_http(f"http://127.0.0.1:{self.port}/healthz", proc=proc, timeout=60)
            else:
                time.sleep(1.5)
                assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode()
            return
        done = subprocess.run(args, env=self.env, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"{shlex.join(words)}: {done.stdout}{done.stderr}"

    def curl(self, command: str) -> None:
        line = command.replace("localhost:8000", f"127.0.0.1:{self.port}")
        done = subprocess.run(
            ["bash", "-c", f"{line} --silent --show-error --write-out '\\n%{{http_code}}'"],
            env=self.env,
            capture_output=True,
            text=True,
        )
        body, _, status = done.stdout.rpartition("\n")
        assert done.returncode == 0, done.stderr
        assert status.startswith("2"), f"{command}\n-> {status} {body}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


@pytest.mark.slow
def test_every_shell_command_in_the_readme_runs(db_url: str, engine: Any, simulator: str) -> None:
    with ExitStack() as stack:
        reader = Reader(db_url, simulator, stack)
        for body in blocks("sh")[1:]:
            for command in commands(body):
                if command.startswith("curl") and not reader.ran_serve():
                    reader.run("billfold serve")
                reader.run(command)
        assert any(c.startswith("curl") for c in reader.ran)


def test_every_python_block_in_the_readme_runs(tmp_path: Path, simulator: str) -> None:
    env = billfold_env(f"sqlite:///{tmp_path / 'readme.db'}")
    env.update(
        BILLFOLD_STRIPE_SECRET_KEY=SIM_KEY,
        BILLFOLD_STRIPE_API_BASE=simulator,
        PYTHONPATH=str(ROOT / "src"),
    )
    source = "\n".join(blocks("python"))
    prelude = (
        "from starlette.applications import Starlette\n"
        "app = Starlette()  # the application's own ASGI app, which the README mounts into\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + source],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        httpx.get(
            f"{simulator}/v1/checkout/sessions", headers={"Authorization": f"Bearer {SIM_KEY}"}
        ).status_code
        == 200
    )

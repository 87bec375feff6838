"""compose.yaml and the Dockerfile, without Docker: the services' commands run directly, as the
containers would run them, against a fresh PostgreSQL database: ``db upgrade`` once, then
``serve`` (healthy on /healthz) and ``worker``, both stopped by SIGTERM with status 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from sqlalchemy.engine import make_url

from billfold.settings import Settings
from tests.conftest import postgres_url
from tests.support.servers import ROOT, free_port, wait_http

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
# What a deployment puts in its .env file.
DOT_ENV = {
    "POSTGRES_PASSWORD": "compose-test",
    "BILLFOLD_STRIPE_SECRET_KEY": "sk_test_compose",
    "BILLFOLD_STRIPE_WEBHOOK_SECRETS": "whsec_compose",
    "BILLFOLD_API_KEYS": "bf_compose_key_0123456789",
    "BILLFOLD_ADMIN_TOKEN": "bf_compose_admin_0123456789",
}


def substitute(value: str) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` from DOT_ENV."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3) or ""
        if name in DOT_ENV and DOT_ENV[name] != "":
            return DOT_ENV[name]
        if op == ":?":
            raise AssertionError(f"compose needs {name}: {rest}")
        return rest

    return re.sub(r"\$\{([A-Z_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


def environment(service: str, database_url: str) -> dict[str, str]:
    env = {k: substitute(str(v)) for k, v in SERVICES[service]["environment"].items()}
    assert env["BILLFOLD_DATABASE_URL"].startswith("postgresql://billfold:compose-test@postgres:")
    env["BILLFOLD_DATABASE_URL"] = database_url  # the compose network's host is this machine's
    assert env["BILLFOLD_CATALOG"] == "/etc/billfold/catalog.toml"
    env["BILLFOLD_CATALOG"] = str(ROOT / "src" / "billfold" / "example_catalog.toml")
    return env


def command(service: str) -> list[str]:
    words = [str(w) for w in SERVICES[service]["command"]]
    assert all("$" not in w for w in words)
    return words


@pytest.fixture
def fresh_database() -> Iterator[str]:
    server = postgres_url()
    name = f"billfold_compose_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield str(make_url(server).set(database=name).render_as_string(hide_password=False))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BILLFOLD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "billfold", *args],
        env={**base, **env, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    return code, out


def test_the_services_start_in_order_on_one_database() -> None:
    assert set(SERVICES) == {"postgres", "migrate", "serve", "worker"}
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for service in ("serve", "worker"):
        assert SERVICES[service]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert SERVICES["migrate"]["restart"] == "no"
    assert command("migrate") == ["db", "upgrade"]
    assert command("worker") == ["worker"]
    assert command("serve")[0] == "serve"
    # Every setting compose gives is one billfold reads (a typo would be ignored silently).
    fields = {f"BILLFOLD_{name.upper()}" for name in Settings.model_fields}
    for service in ("migrate", "serve", "worker"):
        assert set(SERVICES[service]["environment"]) <= fields, service


def test_the_dockerfile_runs_billfold_serve_as_a_non_root_user_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim\b", dockerfile, re.M)
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user
    assert user[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["billfold"]' in dockerfile
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    assert command("serve") == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert re.search(r"HEALTHCHECK .*\n.*127\.0\.0\.1:8000/healthz", dockerfile)
    assert "pip install --no-cache-dir ." in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[ignored.index("**") + 1 :][:3] == ["!pyproject.toml", "!README.md", "!src/"]


@pytest.mark.slow
def test_compose_commands_against_a_fresh_postgresql(fresh_database: str) -> None:
    upgrade = run(command("migrate"), environment("migrate", fresh_database))
    code, printed = stop_after_exit(upgrade)
    assert code == 0, printed

    port = free_port()
    serve_args = command("serve")
    serve_args[serve_args.index("--host") + 1] = "127.0.0.1"
    serve_args[serve_args.index("--port") + 1] = str(port)
    serve_env = environment("serve", fresh_database)
    assert serve_env["BILLFOLD_WORKER_IN_PROCESS"] == "false"
    server = run(serve_args, serve_env)
    worker = run(command("worker"), environment("worker", fresh_database))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", timeout=60, proc=server)
        health = httpx.get(f"{url}/healthz", timeout=5)
        assert health.status_code == 200, health.text
        key = DOT_ENV["BILLFOLD_API_KEYS"]
        granted = httpx.post(
            f"{url}/v1/accounts/acct_compose/grants",
            json={"unit": "credits", "amount": 7, "reason": "compose"},
            headers={"Authorization": f"Bearer {DOT_ENV['BILLFOLD_ADMIN_TOKEN']}"},
            timeout=10,
        )
        assert granted.status_code in (200, 201), granted.text
        account = httpx.get(
            f"{url}/v1/accounts/acct_compose",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert account.json()["balances"]["credits"] == 7
        time.sleep(1.0)  # the worker polls the inbox at least once
        assert worker.poll() is None, "the worker stopped on its own"
    finally:
        server_code, server_out = stop(server)
        worker_code, worker_out = stop(worker)
    assert server_code == 0, server_out
    assert worker_code == 0, worker_out
    assert "billfold worker running" in worker_out
    assert "Traceback" not in server_out + worker_out


def stop_after_exit(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, str]:
    code = proc.wait(timeout=timeout)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    return code, out


def test_a_second_upgrade_is_a_no_op(fresh_database: str) -> None:
    for _ in range(2):
        code, printed = stop_after_exit(
            run(command("migrate"), environment("migrate", fresh_database))
        )
        assert code == 0, printed
    check = run(["db", "current"], environment("migrate", fresh_database))
    code, printed = stop_after_exit(check)
    assert code == 0, printed

"""A PostgreSQL server for the tests: the one named by BILLFOLD_TEST_DATABASE_URL, or a throwaway
cluster made with initdb/pg_ctl in a temporary directory (as the ``postgres`` user when run as root,
since initdb refuses root)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def available() -> bool:
    return _pg_bin("initdb") is not None and _pg_bin("pg_ctl") is not None


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a private PostgreSQL on a free port; yield its URL; stop and delete it afterwards."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    assert initdb
    assert pg_ctl
    root = Path(tempfile.mkdtemp(prefix="billfold-pg-"))
    data = root / "data"
    port = _free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run(
        [
            *prefix,
            initdb,
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    opts = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            env=env,
        )
        shutil.rmtree(root, ignore_errors=True)


def wait_ready(url: str, timeout: float = 20.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def database_of_its_own(url: str, worker: str) -> Iterator[str]:
    """A database for one pytest-xdist worker beside the one ``url`` names (``<name>_<worker>``),
    made empty now and dropped afterwards: workers never empty each other's tables."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database or 'postgres'}_{worker}"[:63]
    server = base.set(database="postgres").render_as_string(hide_password=False)
    wait_ready(server)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

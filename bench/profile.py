"""``python -m bench --profile SCENARIO``: one scenario, once, under a sampling profiler.

py-spy (``py-spy record --format raw --gil --nonblocking``) samples the process that does the work
during the measured phase only (the server with ``--workers 1`` for the HTTP scenarios, this
process for the library ones) and the samples are summed by function: the top 25 by own time (the
function at the top of the stack) and by inclusive time (anywhere in the stack), and the shares of
psycopg, SQLAlchemy, the web stack, billfold and the rest. ``--gil``: only the thread holding the
GIL is sampled, so the figures are where the Python CPU goes, not where threads wait. When py-spy
cannot attach (no ptrace permission), the library scenarios fall back to cProfile in this process
(one profiler per worker thread); the HTTP ones stop with the reason.

The report is printed and written to ``bench/results/profile-<scenario>.txt``; py-spy's samples
themselves (collapsed stacks, ``frame;frame;... count``) to ``profile-<scenario>-raw.txt``, for
questions the report does not answer (what one function's time is made of) and for flame graphs.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import pstats
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import ledger, spends, webhooks
from bench.common import Context, Holding, bulk_load
from billfold.adapters.db import engine as db_engine
from billfold.bootstrap import wall_clock

TOP = 25
RATE = 200  # samples per second
# Where a frame's file lives -> the group it counts for (first match wins).
GROUPS: tuple[tuple[str, str], ...] = (
    ("/billfold/entrypoints/cli/", "process entry (cli, typer)"),
    ("/typer/", "process entry (cli, typer)"),
    ("/bin/", "process entry (cli, typer)"),
    ("/billfold/", "billfold"),
    ("/bench/", "bench (load generator)"),
    ("/psycopg", "psycopg"),
    ("/sqlalchemy/", "sqlalchemy"),
    ("/starlette/", "web stack (starlette, fastapi, uvicorn, pydantic, anyio)"),
    ("/fastapi/", "web stack (starlette, fastapi, uvicorn, pydantic, anyio)"),
    ("/uvicorn/", "web stack (starlette, fastapi, uvicorn, pydantic, anyio)"),
    ("/pydantic", "web stack (starlette, fastapi, uvicorn, pydantic, anyio)"),
    ("/anyio/", "web stack (starlette, fastapi, uvicorn, pydantic, anyio)"),
    ("/h11/", "web stack (starlette, fastapi, uvicorn, pydantic, anyio)"),
    ("/httptools/", "web stack (starlette, fastapi, uvicorn, pydantic, anyio)"),
    ("/stripe/", "stripe SDK"),
    ("/httpx/", "httpx/httpcore"),
    ("/httpcore/", "httpx/httpcore"),
    ("/asyncio/", "asyncio"),
    ("/concurrent/", "stdlib threads and queues"),
    ("/threading.py", "stdlib threads and queues"),
    ("/queue.py", "stdlib threads and queues"),
    ("/json/", "json"),
    ("/logging/", "logging"),
    ("/site-packages/", "other libraries"),
)


def group_of(filename: str) -> str:
    for marker, group in GROUPS:
        if marker in filename:
            return group
    return "python stdlib and other"


# --- the scenarios -------------------------------------------------------------------------------

Attach = Callable[[int], contextlib.AbstractContextManager[object]]


def _spends(scenario: str) -> Callable[[Context, str, Attach], None]:
    def go(ctx: Context, database: str, attach: Attach) -> None:
        sizes = spends.QUICK if ctx.quick else spends.FULL
        task = ctx.progress.add_task("profile", total=None)
        with tempfile.TemporaryDirectory(prefix="billfold-bench-profile-") as tmp:
            spends._server_run(
                ctx,
                "billfold",
                database,
                1,
                [scenario],
                sizes,
                0,
                Path(tmp),
                task,
                attach=attach,
            )

    return go


def _webhooks(metadata: bool) -> Callable[[Context, str, Attach], None]:
    def go(ctx: Context, database: str, attach: Attach) -> None:
        task = ctx.progress.add_task("profile", total=None)
        with tempfile.TemporaryDirectory(prefix="billfold-bench-profile-") as tmp:
            webhooks._one(
                ctx,
                "billfold",
                database,
                1,
                max(webhooks.CONCURRENCY),
                Path(tmp),
                random.Random(20261128),
                task,
                metadata=metadata,
                attach=attach,
            )

    return go


def _ledger(scenario: str) -> Callable[[Context, str, Attach], None]:
    def go(ctx: Context, database: str, attach: Attach) -> None:
        sizes = ledger.QUICK if ctx.quick else ledger.FULL
        ops = sizes.spends[16]
        ledger._spend_run(ctx, database, scenario, 16, ops, sizes, 0, None, attach=attach)

    return go


def _ledger_batches(ctx: Context, database: str, attach: Attach) -> None:
    """Batches of 16 spends written one after another by ``batch.run_batch`` in this thread:
    what one batch costs, without threads or HTTP around it."""
    from billfold.adapters.db.uow import SqlUnitOfWork
    from billfold.service.ledger import Spend, batch

    n = 50 if ctx.quick else 300
    accounts = [f"acct_{i:05d}" for i in range(10_000)]
    rng = random.Random(20261128)

    def commands(prefix: str) -> list[Spend]:
        return [
            Spend(key=f"{prefix}-{i}", account_id=rng.choice(accounts), unit="credits", amount=1)
            for i in range(BATCH)
        ]

    with ctx.fresh_database(database) as url:
        bulk_load(url, [Holding(accounts=accounts, grants=1, spends=0, grant_amount=10**12)])
        engine = db_engine.make_engine(url, pool_size=2)
        try:
            uow = lambda: SqlUnitOfWork(engine)  # noqa: E731
            for i in range(20):
                batch.run_batch(uow, commands(f"warm{i}"), wall_clock(), units=None)
            todo = [commands(f"m{i}") for i in range(n)]
            with attach(os.getpid()):
                for cs in todo:
                    batch.run_batch(uow, cs, wall_clock(), units=None)
        finally:
            engine.dispose()


def _webhook_batches(ctx: Context, database: str, attach: Attach) -> None:
    """Batches of 16 checkout.session.completed deliveries (billfold metadata, 10%
    redelivered), stored and processed by the inbox's batch path in this thread."""
    from billfold.adapters.stripe import signature
    from billfold.bootstrap import build
    from billfold.service.inbox import Delivery
    from billfold.settings import Settings

    deliveries = webhooks.plan(400 if ctx.quick else 2_000, random.Random(20261128))
    secret = "whsec_" + "0" * 32
    with ctx.fresh_database(database) as url:
        settings = Settings(
            database_url=url,
            stripe_webhook_secrets=[secret],  # type: ignore[list-item]
            catalog=str(webhooks.CATALOG),
            worker_in_process=False,
        )
        services = build(settings)
        try:
            inbox = services.inbox
            verified = [
                inbox.events.verify(d.body, signature.sign(d.body, secret))
                for d in deliveries.deliveries
            ]
            todo = [Delivery(event=v.event, fact=v.fact) for v in verified]
            warm, measured = todo[: 4 * BATCH], todo[4 * BATCH :]
            for i in range(0, len(warm), BATCH):
                inbox._receive_batch(warm[i : i + BATCH])
            with attach(os.getpid()):
                for i in range(0, len(measured), BATCH):
                    inbox._receive_batch(measured[i : i + BATCH])
        finally:
            services.close()


BATCH = 16

# name -> (what it runs, whether it runs in this process)
SCENARIOS: dict[str, tuple[str, Callable[[Context, str, Attach], None], bool]] = {
    "spends": ("HTTP spends, 10,000 accounts, c=16, serve --workers 1", _spends("spread"), False),
    "spends-hot": ("HTTP spends, 1 hot account, c=16, serve --workers 1", _spends("hot"), False),
    "holds": ("HTTP holds + captures, c=16, serve --workers 1", _spends("holds"), False),
    "webhooks": (
        "webhooks with billfold metadata, c=32 (highest), serve --workers 1",
        _webhooks(True),
        False,
    ),
    "webhooks-nometa": (
        "webhooks without metadata (line items from the Stripe stand-in), c=32, --workers 1",
        _webhooks(False),
        False,
    ),
    "ledger": (
        "library Ledger.spend, 10,000 accounts, c=16 (this process)",
        _ledger("spread"),
        True,
    ),
    "ledger-hot": (
        "library Ledger.spend, 1 hot account, c=16 (this process)",
        _ledger("hot"),
        True,
    ),
    "ledger-batch": (
        "the ledger's batch path alone: batches of 16 spends on 10,000 accounts, one after "
        "another (this thread, cProfile)",
        _ledger_batches,
        True,
    ),
    "webhooks-batch": (
        "the inbox's batch path alone: batches of 16 checkout deliveries with billfold "
        "metadata, one after another (this thread, cProfile)",
        _webhook_batches,
        True,
    ),
}
# Deterministic and single-threaded: cProfile, whose call counts say how many statements an
# operation costs.
CPROFILE = frozenset({"ledger-batch", "webhooks-batch"})


# --- py-spy --------------------------------------------------------------------------------------


def _py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


class PySpy:
    """``py-spy record`` attached to a pid for the duration of a ``with`` block."""

    def __init__(self, out: Path, *, wall: bool = False) -> None:
        self.out = out
        self.wall = wall  # every thread, waiting ones too (--idle) instead of the GIL holder
        self.error: str | None = None

    @contextlib.contextmanager
    def attach(self, pid: int) -> Iterator[None]:
        exe = _py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed (it is in the dev extras)")
        command = [exe, "record", "--pid", str(pid), "--format", "raw", "--output", str(self.out)]
        command += ["--rate", str(RATE), "--idle" if self.wall else "--gil"]
        command += ["--nonblocking", "--full-filenames"]
        command += ["--nolineno"]
        log = self.out.with_suffix(".log")
        with log.open("wb") as err:
            process = subprocess.Popen(command, stdout=err, stderr=subprocess.STDOUT)
        time.sleep(1.0)  # attaching takes a moment
        if process.poll() is not None:
            self.error = log.read_text(errors="replace").strip()[-500:]
            raise PermissionError(f"py-spy could not attach to {pid}: {self.error}")
        try:
            yield
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def parse_raw(text: str) -> tuple[int, Counter[str], Counter[str], dict[str, str], Counter[str]]:
    """(samples, own samples by function, inclusive samples by function, function -> group,
    samples with the group anywhere in the stack by group) from
    py-spy's raw (collapsed stacks) output: ``frame;frame;...;leaf count`` per line, each frame
    ``function (file)``."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    groups: dict[str, str] = {}
    in_group: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        names: list[str] = []
        for frame in frames:
            function, _, where = frame.partition(" (")
            filename = where.rstrip(")")
            name = f"{function} ({_short(filename)})"
            groups[name] = group_of(filename)
            names.append(name)
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
        for group in {groups[name] for name in names}:
            in_group[group] += n
    return total, own, inclusive, groups, in_group


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def report(
    title: str,
    sampled: str,
    total: int,
    own: Counter[str],
    inclusive: Counter[str],
    groups: dict[str, str],
    in_group: Counter[str],
) -> str:
    out = [title, "", f"samples: {total} (at {RATE}/s of {sampled})", ""]
    if not total:
        return "\n".join([*out, "no samples"]) + "\n"
    by_group: Counter[str] = Counter()
    for name, n in own.items():
        by_group[groups[name]] += n
    out.append("own time by group (the function at the top of the stack):")
    for group, n in by_group.most_common():
        out.append(f"  {100 * n / total:5.1f}%  {group}")
    out += [
        "",
        "inclusive time by group (samples with a frame of the group anywhere in the stack; a "
        "middleware or a loop counts all that runs below it):",
    ]
    for group, n in in_group.most_common():
        out.append(f"  {100 * n / total:5.1f}%  {group}")
    out += ["", f"top {TOP} functions by own time:"]
    for name, n in own.most_common(TOP):
        out.append(f"  {100 * n / total:5.1f}%  [{groups[name]}] {name}")
    out += ["", f"top {TOP} functions by inclusive time:"]
    for name, n in inclusive.most_common(TOP):
        out.append(f"  {100 * n / total:5.1f}%  [{groups[name]}] {name}")
    return "\n".join(out) + "\n"


# --- cProfile (fallback for the library scenarios) -------------------------------------------------


class ThreadProfiles:
    """cProfile in every thread started inside the ``with`` block (and in this one)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _start_in_thread(self, *args: Any) -> None:
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread

    @contextlib.contextmanager
    def attach(self, pid: int) -> Iterator[None]:
        here = cProfile.Profile()
        with self._lock:
            self.profiles.append(here)
        threading.setprofile(self._start_in_thread)
        here.enable()
        try:
            yield
        finally:
            here.disable()
            threading.setprofile(None)
            for profile in self.profiles:
                profile.disable()

    def report(self, title: str) -> str:
        if not self.profiles:
            return f"{title}\n\nno samples\n"
        stream = io.StringIO()
        stats = pstats.Stats(self.profiles[0], stream=stream)
        for profile in self.profiles[1:]:
            stats.add(profile)
        stream.write(f"{title}\n\ncProfile (deterministic; its overhead inflates small calls)\n")
        sent, waits, scripts = _round_trips(stats)
        stream.write(
            f"statements sent (psycopg cursor execute/executemany calls): {sent:,}; "
            f"waits on the server (psycopg Connection.wait): {waits:,}; "
            f"batch calls straight to libpq (Raw.script, one round trip each): {scripts:,}\n"
        )
        stats.sort_stats("tottime").print_stats(TOP)
        stats.sort_stats("cumulative").print_stats(TOP)
        return stream.getvalue()


def _round_trips(stats: pstats.Stats) -> tuple[int, int, int]:
    """Statements handed to psycopg, the times the client waited for the server (a pipeline
    sends several statements per wait), and the ledger batches' calls sent to libpq directly."""
    sent = waits = scripts = 0
    for (filename, _line, name), (_cc, calls, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/")
        if path.endswith("psycopg/cursor.py") and name in ("execute", "executemany"):
            sent += calls
        elif path.endswith("psycopg/connection.py") and name == "wait":
            waits += calls
        elif path.endswith("billfold/adapters/db/stores/_raw.py") and name == "script":
            scripts += calls
    return sent, waits, scripts


class _Deterministic(Exception):
    """The scenario is profiled with cProfile, not sampled."""


def _server_cprofile(ctx: Context, database: str, go: Any, title: str, tmp: Path) -> str:
    """The HTTP scenario with its server under cProfile (the whole run: warm-up and loads)."""
    stats_file = tmp / "server.prof"
    os.environ[webhooks.SERVER_CPROFILE] = str(stats_file)
    try:
        go(ctx, database, lambda pid: contextlib.nullcontext())
    finally:
        del os.environ[webhooks.SERVER_CPROFILE]
    if not stats_file.exists():
        return f"{title}\n\nthe server wrote no profile\n"
    stream = io.StringIO()
    stream.write(
        f"{title}\n\ncProfile of the server's main thread (its event loop: the web stack, "
        "routing, dependencies, validation; the combiner's writer threads are not in it), for "
        "the whole run, start-up and warm-up included (without --quick the requests dominate); "
        "cProfile counts each resumption of a coroutine "
        "as a call\n"
    )
    stats = pstats.Stats(str(stats_file), stream=stream)
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    return stream.getvalue()


def run_profile(
    ctx: Context,
    scenario: str,
    results: Path,
    *,
    wall: bool = False,
    server_cprofile: bool = False,
) -> str:
    what, go, in_process = SCENARIOS[scenario]
    database = "postgresql" if "postgresql" in ctx.databases else ctx.databases[0]
    title = f"billfold profile: {scenario}: {what}, {database} ({ctx.database_settings(database)})"
    if server_cprofile:
        if in_process:
            raise SystemExit(f"--profile-cprofile is for the HTTP scenarios, not {scenario}")
        with tempfile.TemporaryDirectory(prefix="billfold-bench-cprofile-") as tmp, ctx.progress:
            text = _server_cprofile(ctx, database, go, title, Path(tmp))
        (results / f"profile-{scenario}-cprofile.txt").write_text(text)
        return text
    with tempfile.TemporaryDirectory(prefix="billfold-bench-pyspy-") as tmp:
        spy = PySpy(Path(tmp) / "samples.txt", wall=wall)
        with ctx.progress:
            try:
                if scenario in CPROFILE:
                    raise _Deterministic
                go(ctx, database, spy.attach)
            except _Deterministic:
                profiles = ThreadProfiles()
                go(ctx, database, profiles.attach)
                text = profiles.report(title)
            except PermissionError as exc:
                if not in_process:
                    raise SystemExit(
                        f"{exc}: py-spy needs ptrace permission for the server"
                    ) from None
                ctx.log(f"{exc}: profiling with cProfile instead")
                profiles = ThreadProfiles()
                go(ctx, database, profiles.attach)
                text = profiles.report(title)
            else:
                raw = spy.out.read_text() if spy.out.exists() else ""
                (results / f"profile-{scenario}{'-wall' if wall else ''}-raw.txt").write_text(raw)
                sampled = (
                    "every thread, waiting ones included: where wall time goes"
                    if wall
                    else "the thread holding the GIL: where the Python CPU goes"
                )
                text = report(title, sampled, *parse_raw(raw))
    (results / f"profile-{scenario}{'-wall' if wall else ''}.txt").write_text(text)
    return text

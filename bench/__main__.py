"""``python -m bench [--only NAME ...] [--runs N] [--quick]``: run billfold's benchmarks.

A benchmark is a module with ``run(ctx: Context) -> list[Record]``, registered below by name. Its
records go to ``bench/results/<name>.json`` and ``bench/results/<name>.md``, and are printed.
A registered module that does not exist yet is skipped with a note (unless asked for by --only).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench import common
from bench.common import Context, Record

# name -> module with ``run(ctx) -> list[Record]``. Add a benchmark by adding a line here.
BENCHMARKS: dict[str, str] = {
    "ledger": "bench.ledger",
    "webhooks": "bench.webhooks",
    "drivers": "bench.drivers",
    "spends": "bench.spends",
    "batch-cost": "bench.batch_cost",
}

RESULTS = Path(__file__).resolve().parent / "results"
PROFILES = (
    "spends",
    "spends-hot",
    "holds",
    "webhooks",
    "webhooks-nometa",
    "ledger",
    "ledger-batch",
    "webhooks-batch",
    "ledger-hot",
)


def _load(name: str) -> Callable[[Context], list[Record]] | None:
    module_name = BENCHMARKS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    run: Callable[[Context], list[Record]] = module.run
    return run


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark ({' | '.join(BENCHMARKS)}); repeatable",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BILLFOLD_BENCH_PG_URL", common.DEFAULT_PG_URL),
        help="PostgreSQL server to create billfold_bench_<random> databases on "
        "(default $BILLFOLD_BENCH_PG_URL or %(default)s); a superuser is best (fast bulk loads)",
    )
    parser.add_argument(
        "--pg-fallback",
        choices=["cluster", "skip", "fail"],
        default="cluster",
        help="when --pg-url cannot be reached: start a throwaway cluster (default), skip "
        "PostgreSQL, or fail",
    )
    parser.add_argument(
        "--pg-synchronous-commit",
        choices=["on", "off", "local", "remote_write"],
        default=None,
        help="set synchronous_commit for the benchmark's connections (default: the server's); "
        "results then go to <name>-synchronous_commit-<value>.json/.md",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        metavar="SCENARIO",
        help="run one scenario once under py-spy and print where the time goes "
        f"({' | '.join(PROFILES)}); PostgreSQL unless --databases sqlite",
    )
    parser.add_argument(
        "--profile-wall",
        action="store_true",
        help="with --profile: sample every thread, waiting ones too (py-spy --idle), to see where "
        "wall time goes, instead of the thread holding the GIL (CPU); -> profile-<scenario>-wall.txt",
    )
    parser.add_argument(
        "--profile-cprofile",
        action="store_true",
        help="with --profile and an HTTP scenario: run the server under cProfile instead of "
        "py-spy (its event-loop thread: routing, dependencies, validation, the web stack; "
        "deterministic call counts); -> profile-<scenario>-cprofile.txt",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    for d in args.databases:
        if d not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {d!r}")
    return args


def _postgres(args: argparse.Namespace, console: Console, stack: contextlib.ExitStack) -> Any:
    why = common.reachable(args.pg_url)
    if why is None:
        server = common.PostgresServer(
            args.pg_url, synchronous_commit=args.pg_synchronous_commit, origin="server"
        )
        stack.callback(server.close)
        return server
    console.print(f"[yellow]PostgreSQL at {common.db_engine.redact(args.pg_url)}: {why}[/]")
    if args.pg_fallback == "fail":
        raise SystemExit("no PostgreSQL server: stopping (--pg-fallback fail)")
    if args.pg_fallback == "skip":
        console.print("[yellow]skipping PostgreSQL[/]")
        return None
    console.print("starting a throwaway PostgreSQL cluster (default settings: fsync on)")
    cluster = common.ThrowawayCluster()
    stack.callback(cluster.close)
    server = common.PostgresServer(
        cluster.url, synchronous_commit=args.pg_synchronous_commit, origin="throwaway cluster"
    )
    stack.callback(server.close)
    return server


def _profile(
    args: argparse.Namespace,
    console: Console,
    databases: list[str],
    server: Any,
    workdir: Path,
    env: dict[str, Any],
) -> int:
    from bench import profile

    if not databases:
        raise SystemExit("no database to profile on")
    ctx = Context(
        runs=1,
        quick=args.quick,
        databases=databases,
        console=console,
        progress=Progress(TextColumn("[bold]{task.description}"), BarColumn(), console=console),
        sqlite=common.SqliteFiles(workdir),
        postgres=server,
        environment=dict(env),
    )
    console.rule(f"profile: {args.profile}")
    text = profile.run_profile(
        ctx,
        args.profile,
        args.results,
        wall=args.profile_wall,
        server_cprofile=args.profile_cprofile,
    )
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    suffix = "-cprofile" if args.profile_cprofile else "-wall" if args.profile_wall else ""
    console.print(f"written: {args.results / f'profile-{args.profile}{suffix}.txt'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    console = Console()
    names = args.only or list(BENCHMARKS)
    suffix = (
        f"-synchronous_commit-{args.pg_synchronous_commit}" if args.pg_synchronous_commit else ""
    )
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="billfold-bench-")))
        databases = list(args.databases)
        env = common.environment()
        server = _postgres(args, console, stack) if "postgresql" in databases else None
        if server is None and "postgresql" in databases:
            databases.remove("postgresql")
        if "sqlite" in databases:
            env["sqlite"] = common.SqliteFiles(workdir).settings()
        if server is not None:
            env["postgresql"] = {
                "origin": server.origin,
                "url": common.db_engine.redact(server.url),
                **server.settings(),
            }
        env["runs"] = args.runs
        env["quick"] = args.quick
        args.results.mkdir(parents=True, exist_ok=True)
        if args.profile:
            return _profile(args, console, databases, server, workdir, env)
        failures = 0
        for name in names:
            run = _load(name)
            if run is None:
                if args.only:
                    console.print(
                        f"[red]benchmark {name!r}: module {BENCHMARKS[name]} not found[/]"
                    )
                    failures += 1
                else:
                    console.print(f"[dim]benchmark {name!r}: not written yet, skipped[/]")
                continue
            progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            ctx = Context(
                runs=args.runs,
                quick=args.quick,
                databases=databases,
                console=console,
                progress=progress,
                sqlite=common.SqliteFiles(workdir),
                postgres=server,
                environment=dict(env),
            )
            console.rule(f"benchmark: {name}")
            started = time.perf_counter()
            with progress:
                records = run(ctx)
            ctx.environment["wall seconds"] = round(time.perf_counter() - started, 1)
            ctx.environment["load average at end"] = [round(x, 2) for x in os.getloadavg()]
            title = f"billfold benchmark: {name}{suffix}"
            (args.results / f"{name}{suffix}.json").write_text(
                json.dumps(
                    {
                        "benchmark": name,
                        "environment": ctx.environment,
                        "notes": ctx.notes,
                        "records": [r.as_json() for r in records],
                    },
                    indent=2,
                    ensure_ascii=False,
                )
                + "\n"
            )
            md = common.markdown(title, records, ctx.environment, ctx.notes)
            (args.results / f"{name}{suffix}.md").write_text(md)
            # Plain markdown: readable at any terminal width, and what the .md file holds.
            console.print(md, markup=False, highlight=False, soft_wrap=True)
            console.print(f"written: {args.results / f'{name}{suffix}.md'} (and .json)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

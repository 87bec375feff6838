"""The house rules that import-linter cannot state: no import cycle, one door, a light CLI.

The layer rules themselves (domain pure, service on ports, entry points without adapters) are the
import-linter contracts in ``pyproject.toml``, run by ``make test``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[2] / "src" / "billfold"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(module: str) -> None:
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.find_modules_directly_imported_by(module)):
            if not target.startswith("billfold"):
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_of_billfold_takes_part_in_an_import_cycle() -> None:
    graph = grimp.build_graph("billfold")
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("billfold.a", "billfold.b", "billfold.c"):
        graph.add_module(name)
    graph.add_import(importer="billfold.a", imported="billfold.b")
    graph.add_import(importer="billfold.b", imported="billfold.a")
    graph.add_import(importer="billfold.b", imported="billfold.c")
    assert _cycles(graph) == [["billfold.a", "billfold.b"]]


ONE_DOOR = re.compile(r"\.infra\b|\buow\(|\.engine\b|\bSqlUnitOfWork\b")


def test_no_entry_point_opens_a_unit_of_work_or_reaches_for_the_adapters() -> None:
    """Entry points call the services' use cases; ``Services.infra`` is for the composition root
    and tests only."""
    offending = []
    for path in [*(SRC / "entrypoints").rglob("*.py"), SRC / "library.py"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ONE_DOOR.search(line):
                offending.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offending == []


def test_billfold_help_imports_neither_sqlalchemy_nor_stripe_nor_the_web_framework() -> None:
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from billfold.entrypoints.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'serve' in result.output and 'verify' in result.output\n"
        "heavy = ('sqlalchemy', 'stripe', 'fastapi', 'starlette', 'psycopg', 'alembic')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"

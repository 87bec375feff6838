"""Node packages of this repository (the TypeScript client, the Express example) run their own
``node --test`` suites against a live ``billfold dev`` that the Python side starts and stops.

``make typescript`` installs and builds them first; without that these tests fail and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.support.dev_server import DevServer
from tests.support.servers import ROOT

CLIENT = ROOT / "clients" / "typescript"
EXPRESS = ROOT / "examples" / "express"


def node_test(package: Path, server: DevServer, *files: str, timeout: float = 240) -> int:
    """``node --test FILES`` in ``package`` with the server's address and keys: every test must
    pass (none skipped); how many passed."""
    node = shutil.which("node")
    assert node is not None, "these tests need Node.js 18 or newer on PATH"
    assert (package / "node_modules").is_dir(), f"run `make typescript` first ({package.name})"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLFOLD_")}
    env.update(
        BILLFOLD_URL=server.url,
        BILLFOLD_API_KEY=server.api_key,
        BILLFOLD_ADMIN_TOKEN=server.admin_token,
        NODE_NO_WARNINGS="1",
    )
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", *files],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped|todo) (\d+)$", output, re.M)}
    assert counts.get("fail") == 0, output
    assert counts.get("skipped") == 0, output
    assert counts.get("todo") == 0, output
    return counts["pass"]

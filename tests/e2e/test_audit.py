"""``billfold audit`` as a command: its tables and exit codes, against a server it starts and against
a running ``billfold dev`` (the audit's runs under chaos and under kills: ``test_audit_chaos.py``,
``test_audit_kill.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.dev_server import dev_env, dev_server
from tests.support.servers import ROOT, billfold_env


def _billfold(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "billfold", *args],
        env=billfold_env("sqlite:///unused.db", COLUMNS="200"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_audit_command_prints_the_tables_and_exits_0_when_clean(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    done = _billfold(
        "audit", "-n", "30", "--renewals", "2", "--seed", "4", "--database-url", f"sqlite:///{db}"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Money to credits" in out
    for package in ("starter", "popular", "professional"):
        assert f"package {package}" in out
    assert "plan pro" in out
    assert "verify: ok" in out
    assert "refunded_not_clawed_back" in out
    assert "CLEAN" in out

    as_json = _billfold(
        "audit", "-n", "12", "--renewals", "0", "--no-chaos", "--seed", "4", "--json"
    )
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["clean"] is True
    assert figures["payments"] == 12
    assert figures["options"]["chaos"] is False
    assert set(figures["drift"]) >= {"paid_not_granted", "refunded_not_clawed_back"}
    assert all(v == 0 for v in figures["drift"].values())


def test_the_audit_command_refuses_kill_against_a_running_server_with_exit_2() -> None:
    done = _billfold("audit", "--url", "http://127.0.0.1:9", "--kill")
    assert done.returncode == 2
    assert "--kill needs a billfold the audit starts itself" in done.stderr


def test_auditing_a_running_dev_server_is_clean_and_a_catalog_that_disagrees_exits_1(
    tmp_path: Path,
) -> None:
    env = dev_env(BILLFOLD_RATE_LIMIT_CHECKOUT_PER_MINUTE="0")
    with dev_server(tmp_path, env=env) as dev:
        common = [
            "audit",
            "--url",
            dev.url,
            "--api-key",
            dev.api_key,
            "--admin-token",
            dev.admin_token,
            "--stripe-key",
            dev.stripe_key,
            "--database-url",
            f"sqlite:///{dev.db}",
            "-n",
            "10",
            "--renewals",
            "0",
            "--seed",
            "2",
        ]
        right = _billfold(*common, "--json")
        assert right.returncode == 0, right.stdout + right.stderr
        figures = json.loads(right.stdout)
        assert figures["clean"] is True
        assert figures["payments"] == 10
        # The audit expects what its catalog says: one that grants 600 credits for the Starter
        # Pack, where the server grants 500, finds every Starter purchase short.
        bundled = (ROOT / "src" / "billfold" / "example_catalog.toml").read_text()
        wrong = tmp_path / "wrong.toml"
        wrong.write_text(
            bundled.replace(
                "price = 499                                   # $4.99\n"
                'grants = [{ unit = "credits", amount = 500 }]',
                'price = 499\ngrants = [{ unit = "credits", amount = 600 }]',
            )
        )
        assert wrong.read_text() != bundled
        disagree = _billfold(*common, "--catalog", str(wrong), "--refund-share", "0")
        # the dev server kept its own chaos settings
        chaos = dev.api("GET", "/stripe/_sim/chaos").json()
    assert disagree.returncode == 1, disagree.stdout + disagree.stderr
    out = disagree.stdout
    assert "NOT CLEAN" in out
    assert "amount_mismatch" in out
    assert "granted 500 credits, the package grants 600" in out
    assert chaos["duplicate_rate"] == 0

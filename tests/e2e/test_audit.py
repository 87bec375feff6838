"""The chaos audit (``billfold audit``) end to end: billfold serve in a subprocess, the Stripe
simulator delivering as badly as Stripe may, purchases, renewals, refunds and disputes driven
through billfold's API and the official SDK; the audit must come out clean, and what it says must
agree with the database read independently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from billfold.adapters.db import engine as db_engine
from billfold.audit.driver import AuditOptions, AuditResult, run
from tests.support.dev_server import dev_env, dev_server
from tests.support.servers import ROOT, billfold_env


def _sql(url: str, query: str, **params: Any) -> list[Any]:
    engine = db_engine.make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(query), params).all())
    finally:
        engine.dispose()


def _assert_books_agree(result: AuditResult, url: str) -> None:
    """A few of the audit's figures, read again from the tables with plain SQL."""
    figures = result.to_json()
    like = f"audit-{result.run_id}-%"
    payments = figures["payments"]
    [(orders, paid, refunded)] = _sql(
        url,
        "SELECT COUNT(*), SUM(amount), SUM(refunded_amount) FROM orders "
        "WHERE account_id LIKE :p AND status IN ('fulfilled', 'refunded')",
        p=like,
    )
    assert orders == payments
    assert paid == sum(g["money_paid"]["expected"] for g in figures["groups"])
    assert refunded == sum(g["money_refunded"]["expected"] for g in figures["groups"])
    for unit, total in figures["totals"].items():
        [(granted,)] = _sql(
            url,
            "SELECT SUM(amount) FROM grants WHERE account_id LIKE :p AND unit = :u",
            p=like,
            u=unit,
        )
        [(balance,)] = _sql(
            url,
            "SELECT SUM(available) FROM balances WHERE account_id LIKE :p AND unit = :u",
            p=like,
            u=unit,
        )
        # Clawbacks are the transactions of kind clawback on the audit's accounts, less restores.
        [(clawed,)] = _sql(
            url,
            "SELECT COALESCE(SUM(l.amount), 0) FROM ledger_lines l "
            "JOIN ledger_transactions t ON t.id = l.transaction_id "
            "WHERE t.kind IN ('clawback', 'restore') AND l.account_id LIKE :p AND l.unit = :u",
            p=like,
            u=unit,
        )
        assert granted == total["granted"]
        assert -clawed == total["clawed_back"]
        assert balance == total["granted"] - total["clawed_back"]
        assert total["held"] == 0
    waiting = _sql(
        url, "SELECT COUNT(*) FROM events WHERE status IN ('received', 'failed', 'dead')"
    )
    assert waiting == [(0,)]


def test_a_500_purchase_audit_under_chaos_is_clean_and_agrees_with_the_database(
    db_url: str, tmp_path: Path
) -> None:
    result = run(
        AuditOptions(
            purchases=500,
            renewals=6,
            refund_share=0.2,
            dispute_share=0.1,
            chaos=True,
            concurrency=8,
            seed=500,
            database_url=db_url,
            chaos_delay_seconds=0.05,
            workdir=tmp_path,
        )
    )
    figures = result.to_json()
    assert figures["problems"] == []
    assert figures["verify"] == []
    assert result.clean
    assert figures["payments"] == 500 + 2 + 6  # each subscription's first invoice and renewals
    kinds = {(g["kind"], g["item"]) for g in figures["groups"]}
    assert {("package", "starter"), ("package", "popular"), ("package", "professional")} <= kinds
    assert {k for k, _ in kinds} == {"package", "plan"}
    # Chaos really happened: more deliveries than events (duplicates), none given up.
    assert figures["deliveries"]["succeeded"] > figures["events"]["processed"] + figures[
        "events"
    ].get("ignored", 0)
    assert figures["deliveries"]["failed"] == 0
    assert sum(g["refunds"] for g in figures["groups"]) > 50
    assert sum(g["disputes"]["lost"] + g["disputes"]["won"] for g in figures["groups"]) > 20
    assert figures["totals"]["credits"]["clawed_back"] > 0
    _assert_books_agree(result, db_url)


@pytest.mark.slow
def test_an_audit_whose_server_is_killed_at_random_moments_is_clean(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    result = run(
        AuditOptions(
            purchases=120,
            renewals=3,
            refund_share=0.25,
            dispute_share=0.15,
            kill=True,
            kill_every_seconds=(0.2, 1.0),  # the run lasts seconds: the first kill comes early
            concurrency=6,
            seed=9,
            database_url=url,
            chaos_delay_seconds=0.05,
            workdir=tmp_path,
        )
    )
    figures = result.to_json()
    assert result.kills >= 1  # how many depends on how fast the machine drives the run
    assert figures["problems"] == []
    assert figures["verify"] == []
    assert result.clean
    _assert_books_agree(result, url)


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

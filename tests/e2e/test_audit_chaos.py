"""The chaos audit (``billfold audit``) end to end: billfold serve in a subprocess, the Stripe
simulator delivering as badly as Stripe may, 500 purchases, renewals, refunds and disputes driven
through billfold's API and the official SDK; the audit must come out clean, and what it says must
agree with the database read independently. (The longest tests of the suite: a file of their own,
so that the test workers run them beside the audit's other tests.)"""

from __future__ import annotations

from pathlib import Path

from billfold.audit.driver import AuditOptions, run
from tests.support.audit_books import assert_books_agree


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
    assert_books_agree(result, db_url)

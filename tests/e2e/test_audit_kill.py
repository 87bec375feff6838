"""The chaos audit with its server killed (``kill -9``) at random moments and started again: the
audit must still come out clean, and agree with the database read independently."""

from __future__ import annotations

from pathlib import Path

import pytest

from billfold.audit.driver import AuditOptions, run
from tests.support.audit_books import assert_books_agree


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
    assert_books_agree(result, url)

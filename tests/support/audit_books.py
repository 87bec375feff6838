"""The books of a chaos audit read again from the tables with plain SQL (the audit's end-to-end
tests: ``tests/e2e/test_audit*.py``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from billfold.adapters.db import engine as db_engine
from billfold.audit.driver import AuditResult


def _sql(url: str, query: str, **params: Any) -> list[Any]:
    engine = db_engine.make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(query), params).all())
    finally:
        engine.dispose()


def assert_books_agree(result: AuditResult, url: str) -> None:
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

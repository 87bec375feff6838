"""Races on one database: concurrent spends, holds and duplicate requests never overdraw, never
double-write and never deadlock (invariants 1-3 under concurrency).

PostgreSQL serialises writers per balance row (``SELECT ... FOR UPDATE``); SQLite has one writer at
a time (``BEGIN IMMEDIATE`` and a busy timeout). Both must give exact results.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from billfold.domain import errors
from billfold.service import ledger as L

T = TypeVar("T")
THREADS = 16
TIMEOUT = 120  # seconds; a deadlock would show as a timeout (or PostgreSQL's deadlock error)


@pytest.fixture
def tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where ``db_url`` puts this module's SQLite files: on tmpfs when the machine has one.

    Locking is under test here, not durability; an fsync per commit would dominate the runtime.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("db")
        return
    path = Path(tempfile.mkdtemp(prefix="billfold-test-", dir=shm))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ledger(uow_factory: Any, clock: Any) -> L.Ledger:
    return L.Ledger(uow_factory, clock, units=frozenset({"credits"}))


def race(threads: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` in ``threads`` threads released at the same moment; return the results."""
    start = threading.Barrier(threads)

    def run(i: int) -> T:
        start.wait(timeout=30)
        return work(i)

    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        futures = [pool.submit(run, i) for i in range(threads)]
        return [f.result(timeout=TIMEOUT) for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def grant(ledger: L.Ledger, account: str, amount: int, key: str) -> None:
    ledger.grant(L.Grant(key=key, account_id=account, unit="credits", amount=amount))


def available(ledger: L.Ledger, account: str) -> tuple[int, int, int]:
    view = ledger.balances(account)["credits"]
    return view.available, view.held, view.debt


def test_given_exactly_500_credits_when_16_threads_race_800_spends_of_1_then_exactly_500_succeed(
    ledger: L.Ledger, engine: Engine
) -> None:
    for i in range(5):
        grant(ledger, "racer", 100, f"g{i}")

    def spend_50(thread: int) -> Counter[str]:
        outcome: Counter[str] = Counter()
        for n in range(50):
            try:
                ledger.spend(
                    L.Spend(key=f"s-{thread}-{n}", account_id="racer", unit="credits", amount=1)
                )
                outcome["spent"] += 1
            except errors.InsufficientBalance as exc:
                outcome[f"refused with {exc.available} available"] += 1
        return outcome

    total = sum(race(THREADS, spend_50), Counter())

    assert total == Counter({"spent": 500, "refused with 0 available": 300})
    assert available(ledger, "racer") == (0, 0, 0)
    assert scalar(engine, "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'spend'") == 500
    assert (
        scalar(
            engine,
            "SELECT COUNT(DISTINCT x.idempotency_key) FROM ledger_transactions x "
            "JOIN ledger_lines l ON l.transaction_id = x.id WHERE x.kind = 'spend'",
        )
        == 500
    )
    assert (
        scalar(engine, "SELECT SUM(amount) FROM ledger_lines WHERE account_id = 'sys:spent'") == 500
    )
    assert scalar(engine, "SELECT SUM(remaining) FROM grants") == 0


def test_given_500_credits_when_threads_race_adjustments_and_spends_then_never_below_zero(
    ledger: L.Ledger, engine: Engine
) -> None:
    for i in range(5):
        grant(ledger, "adjusted", 100, f"g{i}")

    def take_50(thread: int) -> Counter[str]:
        outcome: Counter[str] = Counter()
        for n in range(50):
            key = f"t-{thread}-{n}"
            try:
                if (thread + n) % 2:
                    ledger.adjust(
                        L.Adjust(
                            key=key, account_id="adjusted", unit="credits", amount=1, reason="race"
                        )
                    )
                    outcome["adjusted"] += 1
                else:
                    ledger.spend(L.Spend(key=key, account_id="adjusted", unit="credits", amount=1))
                    outcome["spent"] += 1
            except errors.InsufficientBalance as exc:
                outcome[f"refused with {exc.available} available"] += 1
        return outcome

    total = sum(race(THREADS, take_50), Counter())

    assert total["adjusted"] + total["spent"] == 500
    assert total["refused with 0 available"] == 300
    assert available(ledger, "adjusted") == (0, 0, 0)
    adjustments = scalar(
        engine, "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'adjustment'"
    )
    assert adjustments == total["adjusted"]
    assert (
        scalar(
            engine,
            "SELECT COALESCE(SUM(amount), 0) FROM ledger_lines "
            "WHERE account_id = 'sys:adjustments' AND grant_id IS NOT NULL AND amount > 0",
        )
        == total["adjusted"]
    )
    assert scalar(engine, "SELECT SUM(remaining) FROM grants") == 0


def test_given_one_idempotency_key_when_16_threads_send_it_at_once_then_one_transaction(
    ledger: L.Ledger, engine: Engine
) -> None:
    grant(ledger, "payer", 100, "g")
    spend = L.Spend(key="checkout:cs_1", account_id="payer", unit="credits", amount=7)
    topup = L.Grant(key="invoice:in_1", account_id="payer", unit="credits", amount=40)

    spends = race(THREADS, lambda _: ledger.spend(spend))
    grants = race(THREADS, lambda _: ledger.grant(topup))

    assert all(r == spends[0] for r in spends)
    assert all(r == grants[0] for r in grants)
    for key in ("checkout:cs_1", "invoice:in_1"):
        assert (
            scalar(
                engine, "SELECT COUNT(*) FROM ledger_transactions WHERE idempotency_key = :k", k=key
            )
            == 1
        )
        assert (
            scalar(
                engine,
                "SELECT COUNT(*) FROM ledger_lines l JOIN ledger_transactions x "
                "ON x.id = l.transaction_id WHERE x.idempotency_key = :k",
                k=key,
            )
            == 2
        )
    assert scalar(engine, "SELECT COUNT(*) FROM grants") == 2
    assert available(ledger, "payer") == (133, 0, 0)


def test_given_two_accounts_when_threads_spend_on_them_in_opposite_orders_then_no_deadlock(
    ledger: L.Ledger,
) -> None:
    grant(ledger, "acct_a", 200, "ga")
    grant(ledger, "acct_b", 200, "gb")

    def alternate(thread: int) -> int:
        order = ("acct_a", "acct_b") if thread % 2 == 0 else ("acct_b", "acct_a")
        for n in range(10):
            for account in order:
                ledger.spend(
                    L.Spend(
                        key=f"{account}-{thread}-{n}", account_id=account, unit="credits", amount=1
                    )
                )
        return 20

    assert sum(race(THREADS, alternate)) == 2 * THREADS * 10

    assert available(ledger, "acct_a") == (200 - THREADS * 10, 0, 0)
    assert available(ledger, "acct_b") == (200 - THREADS * 10, 0, 0)


def test_given_concurrent_holds_captures_releases_and_spends_then_never_overdrawn_and_exact(
    ledger: L.Ledger,
) -> None:
    grant(ledger, "busy", 300, "g1")
    grant(ledger, "busy", 200, "g2")
    stop = threading.Event()
    seen: list[tuple[int, int, int]] = []
    broken: list[BaseException] = []

    def watch() -> None:
        try:
            while not stop.is_set():
                seen.append(available(ledger, "busy"))
        except BaseException as exc:  # surfaced by the assertion below
            broken.append(exc)

    def work(thread: int) -> int:
        rng = random.Random(thread)
        used = 0
        for n in range(12):
            amount = rng.randint(1, 40)
            key = f"{thread}-{n}"
            try:
                if rng.random() < 0.25:
                    ledger.spend(
                        L.Spend(key=f"s-{key}", account_id="busy", unit="credits", amount=amount)
                    )
                    used += amount
                    continue
                hold = ledger.hold(
                    L.Hold(
                        key=f"h-{key}",
                        account_id="busy",
                        unit="credits",
                        amount=amount,
                        ttl_seconds=600,
                    )
                )
            except errors.InsufficientBalance:
                continue
            choice = rng.choice(("all", "part", "release"))
            if choice == "release":
                ledger.release(L.Release(key=f"r-{key}", hold_id=hold.hold_id))
                continue
            part = None if choice == "all" else rng.randint(1, amount)
            done = ledger.capture(L.Capture(key=f"c-{key}", hold_id=hold.hold_id, amount=part))
            used += done.captured
        return used

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        used = sum(race(8, work))
    finally:
        stop.set()
        watcher.join(timeout=TIMEOUT)

    assert available(ledger, "busy") == (500 - used, 0, 0)
    assert used > 0
    assert not broken
    assert seen, "the watcher never read a balance"
    assert all(avail >= 0 and held >= 0 and debt == 0 for avail, held, debt in seen)
    assert all(avail + held <= 500 for avail, held, _ in seen)

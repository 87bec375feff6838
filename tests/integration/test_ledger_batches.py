"""Batches of ledger writes on SQLite and PostgreSQL: one batch decides like the same requests made
one after another, a key another transaction takes meanwhile sends the batch back to one-by-one,
concurrent batches never deadlock, and a process killed mid-batch loses nothing it answered."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from billfold.adapters.db.stores._raw import Raw
from billfold.adapters.db.stores.ledger import SqlLedgerStore
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.db.verify import verify
from billfold.domain import errors
from billfold.service import ledger as L
from billfold.service.ledger import batch as B
from tests.conftest import FakeClock
from tests.support.handoff import StagedHandOff

UNIT = "credits"
UNITS = frozenset({UNIT})


def ledger_on(engine: Engine, clock: FakeClock, **kwargs: Any) -> L.Ledger:
    return L.Ledger(lambda: SqlUnitOfWork(engine), clock, units=UNITS, **kwargs)


def grant(ledger: L.Ledger, account: str, amount: int, key: str | None = None) -> None:
    ledger.grant(
        L.Grant(key=key or f"g-{account}-{amount}", account_id=account, unit=UNIT, amount=amount)
    )


@pytest.fixture
def scripts(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What the batches send to PostgreSQL through libpq (``Raw.script``), for asserting."""
    sent: list[bytes] = []
    script = Raw.script

    def spy(self: Raw, sql: bytes, **kwargs: Any) -> Any:
        sent.append(b"BEGIN; " + sql if kwargs.get("begin") else sql)
        return script(self, sql, **kwargs)

    monkeypatch.setattr(Raw, "script", spy)
    return sent


def test_one_batch_decides_as_the_requests_would_one_after_another(
    engine: Engine, clock: FakeClock, scripts: list[bytes]
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "alice", 10)
    grant(ledger, "bob", 5)
    held = ledger.hold(
        L.Hold(key="h0", account_id="bob", unit=UNIT, amount=3, ttl_seconds=60)
    ).hold_id
    spend = L.Spend(key="s1", account_id="alice", unit=UNIT, amount=6)
    commands: list[B.BatchCommand] = [
        spend,
        spend,  # the same request again: the first answer, replayed
        L.Spend(key="s2", account_id="alice", unit=UNIT, amount=6),  # only 4 left: 402
        L.Spend(key="s1", account_id="bob", unit=UNIT, amount=1),  # key reused: 409
        L.Capture(key="c1", hold_id=held, amount=2),
        L.Release(key="r1", hold_id=held),  # captured just before: not active
        L.Spend(key="s3", account_id="alice", unit=UNIT, amount=4),  # the last units
        L.Hold(key="h1", account_id="carol", unit=UNIT, amount=1, ttl_seconds=60),  # no balance
    ]
    outcomes = B.run_batch(lambda: SqlUnitOfWork(engine), commands, clock(), units=UNITS)
    first = outcomes[0]
    assert isinstance(first, L.SpendResult)
    assert first.balance == 4
    assert outcomes[1] == first
    assert isinstance(outcomes[1], L.SpendResult)
    assert outcomes[1].replayed
    assert isinstance(outcomes[2], errors.InsufficientBalance)
    assert outcomes[2].available == 4
    assert isinstance(outcomes[3], errors.IdempotencyConflict)
    assert isinstance(outcomes[4], L.HoldResult)
    assert (outcomes[4].status, outcomes[4].captured) == ("captured", 2)
    assert isinstance(outcomes[5], errors.HoldNotActive)
    assert isinstance(outcomes[6], L.SpendResult)
    assert outcomes[6].balance == 0
    assert isinstance(outcomes[7], errors.InsufficientBalance)
    views = {a: ledger.balances(a)[UNIT] for a in ("alice", "bob")}
    assert (views["alice"].available, views["alice"].held) == (0, 0)
    assert (views["bob"].available, views["bob"].held) == (3, 0)  # 5 - 2 captured
    assert verify(engine) == []
    # Every answer is what a replay gives: the batch wrote what it answered.
    assert ledger.spend(spend) == first
    assert ledger.capture(L.Capture(key="c1", hold_id=held, amount=2)) == outcomes[4]
    if engine.dialect.name == "postgresql":
        # The batch's reads went as one call after BEGIN, its writes as one call before COMMIT:
        # two round trips (the replays after it read and write on their own).
        batch_calls = [s for s in scripts if b"billfold_batch_" in s][:2]
        assert batch_calls[0].startswith(b"BEGIN; SELECT billfold_batch_read(")
        assert batch_calls[1].startswith(b"SELECT billfold_batch_write(")
        assert batch_calls[1].endswith(b"; COMMIT")
    else:
        assert scripts == []


def test_a_batch_that_closes_no_hold_still_releases_the_lapsed_holds_it_meets(
    engine: Engine, clock: FakeClock
) -> None:
    """Spends alone (no capture or release in the batch) read only the lapsed holds of their
    balances (on PostgreSQL a statement of its own): a hold past its time gives its units back
    to the batch, with its allocations, before the sweep has written it."""
    ledger = ledger_on(engine, clock)
    grant(ledger, "dora", 6, key="g-dora-1")
    grant(ledger, "dora", 4, key="g-dora-2")
    lapsing = ledger.hold(L.Hold(key="hd", account_id="dora", unit=UNIT, amount=8, ttl_seconds=60))
    grant(ledger, "erin", 1)
    ledger.hold(L.Hold(key="hd2", account_id="erin", unit=UNIT, amount=1, ttl_seconds=600))
    clock.advance(61)
    commands: list[B.BatchCommand] = [
        L.Spend(key="sd1", account_id="dora", unit=UNIT, amount=5),
        L.Spend(key="sd2", account_id="dora", unit=UNIT, amount=5),
        L.Spend(key="sd3", account_id="dora", unit=UNIT, amount=1),  # nothing left: 402
    ]
    outcomes = B.run_batch(lambda: SqlUnitOfWork(engine), commands, clock(), units=UNITS)
    assert [type(o).__name__ for o in outcomes] == [
        "SpendResult",
        "SpendResult",
        "InsufficientBalance",
    ]
    assert [o.balance for o in outcomes[:2] if isinstance(o, L.SpendResult)] == [5, 0]
    view = ledger.balances("dora")[UNIT]
    assert (view.available, view.held) == (0, 0)
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("SELECT status FROM holds WHERE id = :id"), {"id": lapsing.hold_id}
        ).scalar_one()
    assert status == "expired"
    assert verify(engine) == []


def test_racing_spends_for_the_last_units_get_exactly_them(
    engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "hot", 50)
    gate = threading.Barrier(32)

    def one(n: int) -> bool:
        gate.wait()
        try:
            ledger.spend(L.Spend(key=f"race-{n}", account_id="hot", unit=UNIT, amount=2))
        except errors.InsufficientBalance:
            return False
        return True

    with ThreadPoolExecutor(32) as pool:
        won = sum(pool.map(one, range(32)))
    assert won == 25
    assert ledger.balances("hot")[UNIT].available == 0
    stats = ledger.combiner_stats()
    assert stats is not None
    assert stats.largest > 1
    assert verify(engine) == []


@pytest.mark.postgres
def test_a_key_taken_by_another_transaction_meanwhile_sends_the_batch_one_by_one(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write lock is held from the batch's first read: no one can")
    ledger = ledger_on(engine, clock)
    grant(ledger, "alice", 10)
    grant(ledger, "bob", 10)
    other = ledger_on(engine, clock, batch_max=0)
    original = SqlLedgerStore.load_batch
    taken = {"done": False}

    def load_then_race(self: SqlLedgerStore, read: Any) -> Any:
        snapshot = original(self, read)
        if not taken["done"]:
            taken["done"] = True
            # Another process uses the same key (for bob, whose balance the batch has not
            # locked), and commits first.
            worker = threading.Thread(
                target=other.spend,
                args=(L.Spend(key="contested", account_id="bob", unit=UNIT, amount=3),),
            )
            worker.start()
            worker.join()
        return snapshot

    monkeypatch.setattr(SqlLedgerStore, "load_batch", load_then_race)
    with pytest.raises(errors.IdempotencyConflict):
        ledger.spend(L.Spend(key="contested", account_id="alice", unit=UNIT, amount=3))
    assert ledger.balances("alice")[UNIT].available == 10
    assert ledger.balances("bob")[UNIT].available == 7
    stats = ledger.combiner_stats()
    assert stats is not None
    assert stats.fallbacks == 1
    assert verify(engine) == []


def test_concurrent_batches_over_shared_accounts_never_deadlock(
    engine: Engine, clock: FakeClock
) -> None:
    writers = 1 if engine.dialect.name == "sqlite" else 3
    ledger = ledger_on(engine, clock, writers=writers, batch_max=8)
    accounts = [f"acct_{i}" for i in range(6)]
    for account in accounts:
        grant(ledger, account, 1_000)
    rng = random.Random(7)
    plan = [(n, rng.choice(accounts), rng.choice(accounts)) for n in range(240)]

    def one(item: tuple[int, str, str]) -> None:
        n, a, b = item
        ledger.spend(L.Spend(key=f"dl-{n}-a", account_id=a, unit=UNIT, amount=1))
        held = ledger.hold(
            L.Hold(key=f"dl-{n}-h", account_id=b, unit=UNIT, amount=1, ttl_seconds=60)
        )
        ledger.capture(L.Capture(key=f"dl-{n}-c", hold_id=held.hold_id))

    started = time.monotonic()
    with ThreadPoolExecutor(24) as pool:
        list(pool.map(one, plan))
    assert time.monotonic() - started < 60
    total = sum(ledger.balances(a)[UNIT].available for a in accounts)
    assert total == 6 * 1_000 - 2 * len(plan)
    assert verify(engine) == []


def test_a_batch_begun_while_the_one_before_commits_reads_what_that_one_wrote(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers: the next batch starts when the one before sends its writes and commit. On one
    hot balance its lock (SQLite: its write lock) waits for that commit, then reads its result."""
    ledger = ledger_on(engine, clock, writers=2, batch_max=8)
    grant(ledger, "hot", 100)
    combiner = ledger.combiner
    assert combiner is not None
    staged = StagedHandOff(B.run_batch)
    monkeypatch.setattr(B, "run_batch", staged.wrapper)

    def spend(i: int) -> L.SpendResult:
        return ledger.spend(L.Spend(key=f"hot-{i}", account_id="hot", unit=UNIT, amount=10))

    results = staged.run(combiner, spend, 5)
    assert combiner.stats().handoffs == 1
    assert combiner.stats().fallbacks == 0
    assert staged.calls == [0, 1]
    assert results[0].balance == 90
    assert sorted(r.balance for r in results[1:]) == [50, 60, 70, 80]
    assert ledger.balances("hot")[UNIT].available == 50
    assert verify(engine) == []


KILLED = textwrap.dedent(
    """
    import sys, threading
    from billfold.adapters.db import engine as db_engine
    from billfold.adapters.db.uow import SqlUnitOfWork
    from billfold.bootstrap import wall_clock
    from billfold.service import ledger as L

    engine = db_engine.make_engine(sys.argv[1], pool_size=8)
    ledger = L.Ledger(lambda: SqlUnitOfWork(engine), wall_clock, units=frozenset({"credits"}))
    out = threading.Lock()

    def work(t):
        n = 0
        while True:
            key = f"kill-{t}-{n}"
            answer = ledger.spend(
                L.Spend(key=key, account_id=f"acct_{n % 5}", unit="credits", amount=1)
            )
            with out:
                print(key, answer.transaction_id, flush=True)
            n += 1

    for t in range(8):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.mark.slow
def test_a_process_killed_mid_batch_loses_nothing_it_answered(
    db_url: str, engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    for n in range(5):
        grant(ledger, f"acct_{n}", 1_000_000)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    url = db_url
    name = f"billfold_killed_{os.getpid()}"
    if engine.dialect.name == "postgresql":  # its sessions, to wait for below
        url = (
            sa.make_url(db_url)
            .update_query_dict({"application_name": name})
            .render_as_string(hide_password=False)
        )
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Killed once it has answered a few dozen spends (starting it may take seconds on a busy
    # machine), in the middle of the batches that follow.
    lines: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")))
    reader.start()
    deadline = time.monotonic() + 60
    while len(lines) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=30)
    assert proc.stderr is not None
    with stdout, proc.stderr:
        err = proc.stderr.read()
    # Whole lines only: the kill may cut the last one short.
    answered = dict(
        line.strip().split(" ")
        for line in list(lines)
        if re.fullmatch(r"kill-\d+-\d+ txn_[0-9A-Z]{26}", line.strip())
    )
    assert answered, err
    if engine.dialect.name == "postgresql":
        # A batch whose writes and COMMIT reached the server before the kill still commits (the
        # server runs what it received): wait for the killed process's sessions to end before
        # counting, or that batch lands between the count and the balances.
        deadline = time.monotonic() + 30
        with engine.connect() as conn:
            while conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": name},
            ).scalar_one():
                assert time.monotonic() < deadline, "the killed process's sessions lingered"
                conn.rollback()
                time.sleep(0.05)
    with engine.connect() as conn:
        found: dict[str, str] = dict(
            conn.execute(
                sa.text(
                    "SELECT idempotency_key, id FROM ledger_transactions "
                    "WHERE idempotency_key LIKE 'kill-%'"
                )
            ).all()
        )
    for key, txn_id in answered.items():
        assert found.get(key) == txn_id, f"{key} was answered but is not in the ledger"
    # Written but not answered (killed between the commit and the answer): retried with its key,
    # the client gets that same transaction back.
    for key in set(found) - set(answered):
        number = int(key.split("-")[2])
        again = ledger.spend(L.Spend(key=key, account_id=f"acct_{number % 5}", unit=UNIT, amount=1))
        assert again.replayed
        assert again.transaction_id == found[key]
    spent = sum(1_000_000 - ledger.balances(f"acct_{n}")[UNIT].available for n in range(5))
    assert spent == len(found)
    assert verify(engine) == []


def test_what_a_batch_writes_reads_back_exactly_any_text_and_the_largest_amounts(
    engine: Engine, clock: FakeClock
) -> None:
    """The batch sends its rows as JSON documents on PostgreSQL, quoted as literals by libpq:
    text of any script, quotes and backslashes, SQL in a reason, and balances beyond 2**53
    (which a JSON number read as a float would lose) come back exactly as given."""
    ledger = ledger_on(engine, clock)
    big = 10**15  # the largest amount one request may move
    for n in range(11):
        grant(ledger, "ünïcødé-ácct", big, key=f"g{n}")
    reason = 'café ☕ 𝄞 "quoted" \\back\\slash \' ; -- not sql'
    commands: list[B.BatchCommand] = [
        L.Spend(key="u1", account_id="ünïcødé-ácct", unit=UNIT, amount=big - 7, reason=reason),
        L.Hold(
            key="u2", account_id="ünïcødé-ácct", unit=UNIT, amount=5, ttl_seconds=60, reason=reason
        ),
    ]
    outcomes = B.run_batch(lambda: SqlUnitOfWork(engine), commands, clock(), units=UNITS)
    spent, held = outcomes
    assert isinstance(spent, L.SpendResult)
    assert spent.balance == 10 * big + 7 > 2**53
    assert float(spent.balance) != spent.balance  # not representable as a float
    assert isinstance(held, L.HoldResult)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT idempotency_key, reason, amount FROM ledger_transactions "
                "WHERE idempotency_key IN ('app:u1', 'app:u2', 'u1', 'u2') ORDER BY idempotency_key"
            )
        ).all()
        hold_reason = conn.execute(
            sa.text("SELECT reason FROM holds WHERE id = :id"), {"id": held.hold_id}
        ).scalar_one()
        available = conn.execute(
            sa.text("SELECT available FROM balances WHERE account_id = :a"), {"a": "ünïcødé-ácct"}
        ).scalar_one()
    assert [(r.reason, r.amount) for r in rows] == [(reason, big - 7), (reason, 5)]
    assert hold_reason == reason
    assert available == 10 * big + 2
    again = B.run_batch(lambda: SqlUnitOfWork(engine), commands[:1], clock(), units=UNITS)[0]
    assert isinstance(again, L.SpendResult)
    assert again.replayed
    assert again.balance == 10 * big + 7
    assert verify(engine) == []


def test_a_batch_finds_its_balances_and_grants_by_index_not_by_scanning_them(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the number of accounts, a batch reads its balances and grants through their
    indexes: the plan of every read it makes scans neither table (SQLite once planned the
    batch's ``(account_id, unit) IN (VALUES ...)`` as a scan of both, at every batch).
    PostgreSQL's reads run inside ``billfold_batch_read``: auto_explain hands the plans of the
    statements it runs to the client, as notices."""
    ledger = ledger_on(engine, clock)
    for n in range(40):
        grant(ledger, f"acct_{n:02d}", 10)
    commands: list[B.BatchCommand] = [
        L.Spend(key=f"scan-{n}", account_id=f"acct_{n:02d}", unit=UNIT, amount=1)
        for n in range(0, 40, 7)
    ]
    plans: list[str] = []
    if engine.dialect.name == "postgresql":
        # A connection of its own (the engine's pool keeps one), planning as the batch would.
        explained = sa.create_engine(
            engine.url, poolclass=sa.pool.StaticPool, isolation_level="READ COMMITTED"
        )
        with explained.connect() as conn:
            dbapi: Any = conn.connection.driver_connection
            try:
                conn.exec_driver_sql("LOAD 'auto_explain'")
            except sa.exc.DBAPIError as exc:  # pragma: no cover - needs a superuser
                pytest.skip(f"auto_explain cannot be loaded here: {exc.orig}")
            for setting in (
                "auto_explain.log_min_duration = 0",
                "auto_explain.log_nested_statements = on",
                "auto_explain.log_level = notice",
                "client_min_messages = notice",
            ):
                conn.exec_driver_sql(f"SET {setting}")
            conn.commit()
            dbapi.add_notice_handler(lambda notice: plans.append(str(notice.message_primary)))
            outcomes = B.run_batch(lambda: SqlUnitOfWork(explained), commands, clock(), units=UNITS)
        explained.dispose()
        reads = [p for p in plans if re.search(r"\b(balances|grants)\b", p) and "FOR UPDATE" in p]
        assert reads, plans  # the lock of the balances, at least, was explained
        reads = [p for p in plans if re.search(r"\b(balances|grants)\b", p)]
        assert any("FROM grants" in p for p in reads), reads
        scans = [
            line
            for p in reads
            for line in p.splitlines()
            if re.search(r"Seq Scan on (balances|grants)\b", line)
        ]
    else:
        sent: list[tuple[str, Any]] = []
        send = Raw.send

        def spy(self: Raw, sql: str, params: Any = (), **kwargs: Any) -> Any:
            if sql.lstrip().upper().startswith("SELECT"):
                sent.append((sql, params))
            return send(self, sql, params, **kwargs)

        monkeypatch.setattr(Raw, "send", spy)
        outcomes = B.run_batch(lambda: SqlUnitOfWork(engine), commands, clock(), units=UNITS)
        monkeypatch.undo()
        sqlite_reads = [(q, p) for q, p in sent if re.search(r"\b(balances|grants)\b", q)]
        assert len(sqlite_reads) >= 2
        scans = []
        with engine.connect() as conn:
            cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            for sql, params in sqlite_reads:
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                scans += [
                    r[3]
                    for r in cursor.fetchall()
                    if re.match(r"SCAN (balances|grants|b|g)\b", r[3])
                ]
            conn.rollback()
    assert all(isinstance(o, L.SpendResult) for o in outcomes)
    assert scans == []


def test_a_failed_batch_call_names_its_function_not_the_data_it_carried(engine: Engine) -> None:
    """On PostgreSQL a batch's values travel as literals in its SQL: an error names the call,
    and carries none of them (account ids, keys, reasons are the application's data)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's batches run in process, statement by statement")
    with engine.connect() as conn:
        raw = Raw(conn)
        secret = raw.literal("acct_private@example.com")
        with pytest.raises(sa.exc.DBAPIError) as caught:
            raw.script(b"SELECT billfold_no_such_function(" + secret + b")", begin=True)
        conn.rollback()
    assert caught.value.statement == "BEGIN; SELECT billfold_no_such_function(...)"
    assert "acct_private" not in str(caught.value.statement)

"""A batch of webhook deliveries that meets one needing Stripe: the others are still written
together, and the one that needs Stripe is made on its own, as one delivery is (SQLite and
PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from billfold.adapters.db.stores.ledger import SqlLedgerStore
from billfold.adapters.db.verify import verify
from billfold.adapters.stripe import signature
from billfold.bootstrap import Services, build
from billfold.domain import errors
from billfold.service import inbox as inbox_module
from billfold.service import inbox_batch
from billfold.service.inbox import Delivery, Inbox, WebhookReceipt
from tests.builders import stripe_events as se
from tests.support.app import SECRET, balances, count, event_status, settings_for, use_stripe
from tests.support.handoff import StagedHandOff
from tests.support.memory import CATALOG, FakeStripe, line_item


@pytest.fixture
def services(db_url: str, engine: Any) -> Iterator[Services]:
    built = build(settings_for(db_url))
    try:
        yield built
    finally:
        built.close()


def delivery(services: Services, event: dict[str, Any]) -> Delivery:
    body = json.dumps(event).encode()
    verified = services.inbox.events.verify(body, signature.sign(body, SECRET))
    return Delivery(event=verified.event, fact=verified.fact)


def paid(account: str) -> dict[str, Any]:
    return se.checkout_session_completed(
        metadata={"billfold_account": account, "billfold_package": "starter"}, amount_total=499
    )


def needs_line_items(account: str) -> dict[str, Any]:
    return se.checkout_session_completed(metadata={}, client_reference_id=account)


def count_writes(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[int, int]], list[str]]:
    """Each attempt to write the batch, as (deliveries written, of them stored for the worker),
    and the event ids made on their own."""
    writes: list[tuple[int, int]] = []
    alone: list[str] = []
    write_batch, receive_one = services.inbox._write_batch, services.inbox._receive_one

    def counted(
        deliveries: Any, *, skip: frozenset[int], waiting: frozenset[int] = frozenset(), **kw: Any
    ) -> Any:
        writes.append((len(deliveries) - len(skip), len(waiting)))
        return write_batch(deliveries, skip=skip, waiting=waiting, **kw)

    def one(delivery: Delivery) -> WebhookReceipt:
        alone.append(delivery.event.id)
        return receive_one(delivery)

    monkeypatch.setattr(services.inbox, "_write_batch", counted)
    monkeypatch.setattr(services.inbox, "_receive_one", one)
    return writes, alone


def test_one_delivery_needing_stripe_is_stored_for_the_worker_with_the_rest_of_the_batch(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [paid("alice"), needs_line_items("bob"), paid("carol"), paid("alice")]
    events.append(events[0])  # a redelivery in the same batch
    writes, alone = count_writes(services, monkeypatch)
    receipts = services.inbox._receive_batch([delivery(services, e) for e in events])

    assert all(isinstance(r, WebhookReceipt) for r in receipts)
    assert [(r.status, r.duplicate) for r in receipts if isinstance(r, WebhookReceipt)] == [
        ("processed", False),
        ("received", False),  # left for the worker, as one delivery alone would be
        ("processed", False),
        ("processed", False),
        ("duplicate", True),
    ]
    # Undone once at the delivery needing Stripe, then written with it stored for the worker.
    assert writes == [(5, 0), (5, 1)]
    assert alone == []
    assert balances(services, "alice") == {"credits": 1000}
    assert balances(services, "carol") == {"credits": 500}
    assert balances(services, "bob") == {}
    assert event_status(services, events[1]["id"]) == "received"
    assert count(services, "orders") == 3  # bob's order waits for the worker's line items


def test_deliveries_shaped_like_the_one_needing_stripe_are_stored_for_the_worker_with_it(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    needing = [needs_line_items(f"user_{i}") for i in range(5)]
    writes, alone = count_writes(services, monkeypatch)
    receipts = services.inbox._receive_batch(
        [delivery(services, e) for e in [paid("dan"), *needing]]
    )
    assert writes == [(6, 0), (6, 5)]  # one undone attempt, not one per delivery needing Stripe
    assert alone == []
    assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == [
        "processed",
        *["received"] * 5,
    ]
    assert balances(services, "dan") == {"credits": 500}
    assert all(event_status(services, e["id"]) == "received" for e in needing)


def test_past_the_set_aside_limit_the_batch_writes_nothing_and_the_combiner_takes_each_alone(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "_shape", lambda fact: id(fact))  # every one unlike
    needing = [needs_line_items(f"user_{i}") for i in range(inbox_module.SET_ASIDE + 1)]
    with pytest.raises(inbox_module._OnItsOwn):
        services.inbox._receive_batch([delivery(services, e) for e in [paid("dan"), *needing]])
    assert count(services, "events") == 0
    assert count(services, "orders") == 0


def notification_types(services: Services) -> list[str]:
    with services.infra.database.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT type FROM notifications ORDER BY created, id"))
        return sorted(r[0] for r in rows)


def test_a_batch_of_paid_checkouts_decides_its_grants_together_and_writes_them_once(
    services: Services, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.inbox._receive_batch([delivery(services, paid("alice"))])  # alice has credits
    flushes: list[int] = []
    flush = SqlLedgerStore.flush_batch

    def counted(store: SqlLedgerStore, writes: Any, *, commit: bool = False) -> None:
        flushes.append(len(writes.new_grants))
        flush(store, writes, commit=commit)

    monkeypatch.setattr(SqlLedgerStore, "flush_batch", counted)
    events = [paid("carol"), paid("alice"), paid("bob"), paid("carol")]
    receipts = services.inbox._receive_batch([delivery(services, e) for e in events])

    assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == ["processed"] * 4
    assert flushes == [4]  # four grants, one set of statements
    assert balances(services, "alice") == {"credits": 1000}
    assert balances(services, "bob") == {"credits": 500}
    assert balances(services, "carol") == {"credits": 1000}  # a new balance granted twice
    assert count(services, "grants") == 5
    assert count(services, "ledger_transactions") == 5
    assert count(services, "ledger_lines") == 10
    assert notification_types(services) == sorted(["credits.granted"] * 5 + ["order.fulfilled"] * 5)
    assert verify(engine) == []
    # Each order names its account and customer, as one delivery made alone leaves it.
    with services.infra.uow() as uow:
        orders = uow.orders.list(limit=10, starting_after=None, status=None, account_id=None)
        accounts = {a: uow.accounts.get(a) for a in ("alice", "bob", "carol")}
    assert sorted(o.account_id or "" for o in orders) == ["alice", "alice", "bob", "carol", "carol"]
    assert all(o.status == "fulfilled" for o in orders)
    assert all(a is not None and a.email == "jenny.rosen@example.com" for a in accounts.values())


def test_a_checkout_whose_refund_came_first_is_made_on_its_own_and_the_refund_takes_effect(
    services: Services, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pi = se.new_id("pi")
    refunded = se.charge_refunded(payment_intent=pi, amount=499)
    services.inbox._receive_batch([delivery(services, refunded)])  # before its checkout
    checkout = se.checkout_session_completed(
        metadata={"billfold_account": "alice", "billfold_package": "starter"},
        amount_total=499,
        payment_intent=pi,
    )
    writes, alone = count_writes(services, monkeypatch)
    # Bob pays through a payment intent (shaped unlike the checkout: not set aside with it).
    bob = se.payment_intent_succeeded(
        metadata={"billfold_account": "bob", "billfold_package": "starter"}, amount=499
    )
    receipts = services.inbox._receive_batch([delivery(services, e) for e in [checkout, bob]])

    assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == ["processed"] * 2
    # The refund's clawback reads the ledger beyond the batch: undone, then made alone.
    assert writes == [(2, 0), (1, 0)]
    assert alone == [checkout["id"]]
    assert balances(services, "alice") == {"credits": 0}  # granted, then the refund took it
    assert balances(services, "bob") == {"credits": 500}
    assert verify(engine) == []


def test_a_delivery_naming_a_package_the_catalog_lacks_waits_for_an_operator_in_the_batch(
    services: Services, engine: Any
) -> None:
    # Its metadata names no package the catalog has: no balance is read for it, and its order
    # waits for an operator (no grant), as when made alone.
    odd = se.checkout_session_completed(
        metadata={"billfold_account": "dora", "billfold_package": "no-such-pack"},
        amount_total=499,
    )
    receipts = services.inbox._receive_batch([delivery(services, e) for e in [odd, paid("bob")]])

    assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == ["processed"] * 2
    assert balances(services, "dora") == {}
    assert balances(services, "bob") == {"credits": 500}
    with services.infra.uow() as uow:
        statuses = sorted(
            o.status
            for o in uow.orders.list(limit=10, starting_after=None, status=None, account_id=None)
        )
    assert statuses == ["fulfilled", "needs_attention"]
    assert verify(engine) == []


def test_the_workers_round_reads_line_items_first_and_applies_its_events_in_one_batch(
    db_url: str, engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)  # the starter pack sold at price_starter
    services = build(settings_for(db_url, catalog=str(catalog)))
    try:
        stripe = FakeStripe()
        use_stripe(services, stripe)
        events = [needs_line_items(f"user_{i}") for i in range(4)]
        for event in events:
            stripe.line_items[str(event["data"]["object"]["id"])] = [line_item("price_starter")]
        receipts = services.inbox._receive_batch([delivery(services, e) for e in events])
        assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == ["received"] * 4
        writes, _ = count_writes(services, monkeypatch)
        processed: list[str] = []
        process = services.inbox._processed

        def alone(event_id: str, **kw: Any) -> Any:
            processed.append(event_id)
            return process(event_id, **kw)

        monkeypatch.setattr(services.inbox, "_processed", alone)

        claimed = services.inbox.claim("worker-1", 10)
        outcomes = services.inbox.process_claimed(claimed, threads=2)

        assert [o.status for o in outcomes] == ["processed"] * 4
        assert writes == [(4, 0)]  # one transaction for the round
        assert processed == []  # none on its own
        assert len(stripe.asked) == 4  # each session's line items, once
        assert [balances(services, f"user_{i}") for i in range(4)] == [{"credits": 500}] * 4
        assert all(event_status(services, e["id"]) == "processed" for e in events)
        assert verify(engine) == []
    finally:
        services.close()


def test_concurrent_batches_granting_to_one_new_account_lose_nothing(
    services: Services, db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batches read "newcomer" without a balance row at the same moment and both create it:
    the second is refused by the row's key and writes nothing; read again (once), it finds the
    row and grants on top of the first. Each delivery is granted once."""
    if not db_url.startswith("postgresql"):
        pytest.skip(
            "SQLite's write lock is held from the batch's first read: batches never overlap"
        )
    both_read = threading.Barrier(2, timeout=10)
    load = SqlLedgerStore.load_batch
    reads: list[int] = []

    def read_together(store: SqlLedgerStore, read: Any) -> Any:
        snapshot = load(store, read)
        reads.append(len(read.positions))
        if len(reads) <= 2:  # the batches' first reads meet; the one read again does not wait
            both_read.wait()
        return snapshot

    monkeypatch.setattr(SqlLedgerStore, "load_batch", read_together)
    batches = [[paid("newcomer"), paid("newcomer")], [paid("newcomer")]]
    with ThreadPoolExecutor(2) as pool:
        attempts = [
            pool.submit(services.inbox._receive_batch, [delivery(services, e) for e in batch])
            for batch in batches
        ]
    receipts = [r for a in attempts for r in a.result()]
    assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == ["processed"] * 3
    assert len(reads) == 3  # one batch refused, and read again
    assert balances(services, "newcomer") == {"credits": 500 * 3}
    assert count(services, "grants") == 3
    assert count(services, "balances") == 1
    assert verify(engine) == []


@contextlib.contextmanager
def statements_sent(engine: Any) -> Iterator[list[str]]:
    """The statements billfold sends through SQLAlchemy meanwhile, by their first word (an
    executemany counts once: psycopg sends its rows in one pipeline)."""
    sent: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def test_a_batch_of_paid_checkouts_sends_as_many_statements_whatever_its_size(
    services: Services, engine: Any
) -> None:
    """Gates, orders, reversals, accounts, links and order updates are read and written once per
    batch, not once per delivery (as the ledger's own flush)."""
    services.inbox._receive_batch([delivery(services, paid("warm"))])  # statement caches warm
    sent: dict[int, list[str]] = {}
    for size in (3, 12):
        events = [paid(f"user_{size}_{i}") for i in range(size)]
        with statements_sent(services.infra.database.engine) as sent[size]:
            receipts = services.inbox._receive_batch([delivery(services, e) for e in events])
        assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == ["processed"] * size
        assert all(balances(services, f"user_{size}_{i}") == {"credits": 500} for i in range(size))
    assert sent[3] == sent[12]
    assert count(services, "orders") == 1 + 3 + 12
    assert verify(engine) == []


def test_an_order_a_batch_finds_by_its_key_is_fulfilled_once_whichever_batch_its_events_are_in(
    services: Services, engine: Any
) -> None:
    """A delayed payment: the session completes unpaid (its order is pending), then succeeds.
    The batch reads the order by its key and fulfils it (one update, written at the end); both
    events in one batch make the same order and the same single grant."""
    metadata = {"billfold_account": "delia", "billfold_package": "starter"}
    later = {"session_id": "cs_later", "payment_intent": "pi_later", "metadata": metadata}
    same = {"session_id": "cs_same", "payment_intent": "pi_same", "metadata": metadata}
    services.inbox._receive_batch(
        [delivery(services, se.checkout_session_completed(payment_status="unpaid", **later))]
    )
    receipts = services.inbox._receive_batch(
        [
            delivery(services, se.async_payment_succeeded(**later)),
            delivery(services, se.checkout_session_completed(payment_status="unpaid", **same)),
            delivery(services, se.async_payment_succeeded(**same)),
            delivery(services, se.async_payment_succeeded(**same)),  # a second event, same news
        ]
    )
    assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == ["processed"] * 4
    assert balances(services, "delia") == {"credits": 1000}
    assert count(services, "orders") == 2
    assert count(services, "grants") == 2
    with services.infra.uow() as uow:
        orders = [uow.orders.by_key(f"checkout:{sid}") for sid in ("cs_later", "cs_same")]
        linked = [uow.payments.ensure_locked(pi, now=0) for pi in ("pi_later", "pi_same")]
    assert [o.status if o else None for o in orders] == ["fulfilled", "fulfilled"]
    assert linked == [o.id if o else None for o in orders]
    assert verify(engine) == []


def test_an_order_another_transaction_inserts_while_the_batch_decides_is_found_when_read_again(
    services: Services, db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A free checkout has no payment intent, so no gate: the batch reads its order key, finds
    none, and inserts the order at its flush. When a delivery of the same session made alone
    commits the order first, the batch's insert is refused and it writes nothing; read again, it
    finds the order fulfilled: one grant."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's write lock is held from the batch's first write: nothing interleaves")
    free = {
        "session_id": "cs_free",
        "payment_intent": None,
        "payment_status": "no_payment_required",
        "metadata": {"billfold_account": "frida", "billfold_package": "starter"},
    }
    first, second = se.checkout_session_completed(**free), se.checkout_session_completed(**free)
    flush = inbox_batch.BatchView.flush
    raced: list[WebhookReceipt] = []

    def after_a_rival(view: inbox_batch.BatchView, *, last: bool = False) -> None:
        if view.new_orders and not raced:
            with ThreadPoolExecutor(1) as pool:  # another transaction, committed meanwhile
                raced.append(
                    pool.submit(services.inbox._receive_one, delivery(services, second)).result()
                )
        flush(view, last=last)

    monkeypatch.setattr(inbox_batch.BatchView, "flush", after_a_rival)
    writes, alone = count_writes(services, monkeypatch)
    receipts = services.inbox._receive_batch([delivery(services, first)])
    assert [r.status for r in raced] == ["processed"]
    assert [r.status for r in receipts if isinstance(r, WebhookReceipt)] == ["processed"]
    assert writes == [(1, 0), (1, 0)]  # refused once, then read again
    assert alone == [second["id"]]  # only the rival was made alone
    assert count(services, "orders") == 1
    assert count(services, "grants") == 1
    assert balances(services, "frida") == {"credits": 500}
    assert verify(engine) == []


def test_the_webhook_writers_setting_is_how_many_batches_are_in_flight(db_url: str) -> None:
    built = build(settings_for(db_url, webhook_writers=3, webhook_batch_max=16))
    try:
        assert built.inbox.combiner is not None
        assert built.inbox.combiner.max_batch == 16
        # SQLite has one writer whatever the setting says.
        assert built.inbox.combiner.writers == (3 if db_url.startswith("postgresql") else 1)
    finally:
        built.close()


def test_a_batch_refused_again_when_read_again_is_left_to_the_combiner(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read again once, not forever: a batch refused twice raises, and the combiner makes each
    delivery on its own; any other error is not read again."""
    tries: list[int] = []

    def refused(*args: Any, **kwargs: Any) -> Any:
        tries.append(1)
        raise errors.ConstraintViolation("a row created meanwhile", constraint="pk_balances")

    monkeypatch.setattr(services.inbox, "_write_batch", refused)
    with pytest.raises(errors.ConstraintViolation):
        services.inbox._receive_batch([delivery(services, paid("ann"))])
    assert len(tries) == 2

    def broken(*args: Any, **kwargs: Any) -> Any:
        tries.append(1)
        raise inbox_batch.DeferredWritesFailed("a flush inside a delivery's processing failed")

    tries.clear()
    monkeypatch.setattr(services.inbox, "_write_batch", broken)
    with pytest.raises(inbox_batch.DeferredWritesFailed):
        services.inbox._receive_batch([delivery(services, paid("ann"))])
    assert len(tries) == 1


def test_the_next_webhook_batch_begins_while_the_one_before_commits(
    db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two writers (the default on PostgreSQL), the deliveries that queued while a batch
    was deciding are read and decided while that batch sends its writes and commit; each is
    granted once, on the same account too."""
    writers = 1 if db_url.startswith("sqlite") else 2
    built = build(settings_for(db_url, webhook_writers=2))
    try:
        combiner = built.inbox.combiner
        assert combiner is not None
        assert combiner.writers == writers
        staged = StagedHandOff(Inbox._write_batch, overlapping=writers == 2)
        monkeypatch.setattr(
            Inbox, "_write_batch", lambda inbox, *a, **k: staged.wrapper(inbox, *a, **k)
        )
        bodies = [json.dumps(paid("shared" if i % 2 else f"solo_{i}")).encode() for i in range(5)]

        def receive(i: int) -> WebhookReceipt:
            return built.inbox.receive_webhook(bodies[i], signature.sign(bodies[i], SECRET))

        receipts = staged.run(combiner, receive, 5)
        assert [r.status for r in receipts] == ["processed"] * 5
        assert combiner.stats().handoffs == (1 if writers == 2 else 0)
        assert combiner.stats().fallbacks == 0
        assert staged.calls == [0, 1]
        assert balances(built, "shared") == {"credits": 500 * 2}
        assert all(balances(built, f"solo_{i}") == {"credits": 500} for i in (0, 2, 4))
        assert verify(engine) == []
    finally:
        built.close()

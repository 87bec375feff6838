"""The view a batch of webhooks writes through (service/inbox_batch.py), on the memory adapter:
what it defers is written before any other call reads, a read it answers from the batch's read is
what the store would answer, and a write the store refuses fails the batch, not a delivery."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billfold.adapters.memory import MemoryDatabase
from billfold.adapters.memory.uow import MemoryUnitOfWork
from billfold.service.inbox_batch import BatchView, DeferredWritesFailed
from billfold.service.ports import BatchSnapshot, NewOrder, NewReversal

NOTHING = BatchSnapshot(transactions={}, balances={}, grants={}, holds={}, allocations={})


def new_order(key: str, order_id: str, pi: str | None = None) -> NewOrder:
    return NewOrder(
        id=order_id,
        key=key,
        kind="checkout",
        stripe_id=key.split(":", 1)[1],
        payment_intent_id=pi,
        amount=499,
        currency="usd",
        customer_id=None,
        customer_email="ada@example.com",
        status="pending",
        created=10,
        last_event_id="evt_1",
    )


def refund(pi: str, key: str = "refund:re_1") -> NewReversal:
    return NewReversal(
        id="rev_" + key.rsplit("_", 1)[1],
        key=key,
        kind="refund",
        stripe_id=key.split(":", 1)[1],
        payment_intent_id=pi,
        charge_id=None,
        amount=100,
        currency="usd",
        status="succeeded",
        reason=None,
        stripe_created=5,
        created=5,
    )


@pytest.fixture
def db() -> MemoryDatabase:
    db = MemoryDatabase()
    with db.uow() as uow:
        uow.ledger.ensure_account("ada", 1)
        uow.commit()
    return db


@pytest.fixture
def uow(db: MemoryDatabase) -> Iterator[MemoryUnitOfWork]:
    with db.uow() as uow:
        yield uow


def test_deferred_writes_are_made_before_any_other_call_reads() -> None:
    db = MemoryDatabase()
    with db.uow() as uow:
        view = BatchView(uow, NOTHING)
        view.ledger.ensure_account("ada", 1)  # the overlay's new account: kept for the flush
        view.accounts.fill_email("ada", "ada@example.com", now=2)
        view.accounts.link_customer("ada", "cus_1", now=2)
        assert uow.accounts.get("ada") is None  # nothing written yet
        found = view.accounts.by_email("ada@example.com")  # any other call flushes first
        assert [a.id for a in found] == ["ada"]
        account = uow.accounts.get("ada")
        assert account is not None
        assert (account.email, account.stripe_customer_id) == ("ada@example.com", "cus_1")


def test_a_call_on_any_other_store_writes_what_is_deferred_first(uow: MemoryUnitOfWork) -> None:
    view = BatchView(uow, NOTHING)
    view.accounts.fill_email("ada", "ada@example.com", now=2)
    assert view.inbox.get("evt_none") is None  # the inbox's own answer...
    account = uow.accounts.get("ada")  # ...after the deferred write
    assert account is not None
    assert account.email == "ada@example.com"
    view.accounts.link_customer("ada", "cus_1", now=3)
    assert view.notifications.endpoints() == []
    linked = uow.accounts.get("ada")
    assert linked is not None
    assert linked.stripe_customer_id == "cus_1"


def test_an_order_the_batch_holds_is_answered_as_updated_and_its_update_written_at_the_flush(
    uow: MemoryUnitOfWork,
) -> None:
    view = BatchView(uow, NOTHING)
    order = view.orders.ensure_locked(new_order("checkout:cs_1", "ord_1"))  # not read: inserted
    assert uow.orders.get("ord_1") == order
    fulfilled = view.orders.update("ord_1", status="fulfilled", account_id="ada", updated=11)
    assert view.orders.get("ord_1") == view.orders.lock("ord_1") == fulfilled
    stored = uow.orders.get("ord_1")
    assert stored is not None
    assert stored.status == "pending"
    view.flush()
    assert uow.orders.get("ord_1") == fulfilled


def test_an_order_key_the_batch_read_and_did_not_find_is_inserted_at_the_flush_as_it_ends(
    uow: MemoryUnitOfWork,
) -> None:
    view = BatchView(uow, NOTHING, order_keys=["checkout:cs_1"])
    order = view.orders.ensure_locked(new_order("checkout:cs_1", "ord_1"))
    assert order == new_order("checkout:cs_1", "ord_1").record()
    again = view.orders.ensure_locked(new_order("checkout:cs_1", "ord_other"))
    assert again == order  # one key, one order: as ON CONFLICT answers
    fulfilled = view.orders.update("ord_1", status="fulfilled", updated=11)
    assert uow.orders.get("ord_1") is None
    view.flush()
    assert uow.orders.get("ord_1") == fulfilled
    assert view.created == {"ord_1"}


def test_an_order_the_batch_read_by_its_key_is_the_order_that_stands(
    db: MemoryDatabase,
) -> None:
    with db.uow() as uow:
        existing = uow.orders.ensure_locked(new_order("checkout:cs_1", "ord_1"))
        uow.commit()
    with db.uow() as uow:
        found = uow.orders.lock_many(keys=["checkout:cs_1", "checkout:cs_none"], ids=[])
        assert found == [existing]
        view = BatchView(uow, NOTHING, orders=found, order_keys=["checkout:cs_1"])
        assert view.orders.ensure_locked(new_order("checkout:cs_1", "ord_new")) == existing
        assert view.created == set()


def test_the_reversals_of_an_order_the_batch_inserted_come_from_the_batch_read(
    db: MemoryDatabase,
) -> None:
    with db.uow() as uow:
        uow.payments.ensure_locked("pi_1", now=1)
        kept, _ = uow.reversals.ensure_locked(refund("pi_1"))  # the refund came first
        uow.commit()
    with db.uow() as uow:
        gates = uow.payments.ensure_locked_many(["pi_1"], now=2)
        view = BatchView(
            uow,
            NOTHING,
            gates=gates,
            reversals=uow.reversals.for_payments(["pi_1"]),
            order_keys=["checkout:cs_1"],
        )
        assert view.payments.ensure_locked("pi_1", now=3) is None
        order = view.orders.ensure_locked(new_order("checkout:cs_1", "ord_1", "pi_1"))
        view.payments.link("pi_1", order.id)
        assert view.payments.ensure_locked("pi_1", now=3) == "ord_1"
        assert view.reversals.for_order("ord_1") == [kept]  # the store knows no link yet
        view.flush()
        assert uow.reversals.for_order("ord_1") == [kept]  # the same, once written


def test_once_reversals_are_written_the_batch_reads_them_from_the_store(
    uow: MemoryUnitOfWork,
) -> None:
    gates = uow.payments.ensure_locked_many(["pi_1"], now=2)
    view = BatchView(uow, NOTHING, gates=gates, order_keys=["checkout:cs_1"])
    order = view.orders.ensure_locked(new_order("checkout:cs_1", "ord_1", "pi_1"))
    view.payments.link("pi_1", order.id)
    assert view.reversals.for_order("ord_1") == []
    row, inserted = view.reversals.ensure_locked(refund("pi_1"))
    assert inserted
    assert view.reversals.for_order("ord_1") == [row]


def test_a_payment_the_batch_did_not_lock_sends_its_orders_reversals_to_the_store(
    uow: MemoryUnitOfWork,
) -> None:
    uow.payments.ensure_locked("pi_2", now=1)
    kept, _ = uow.reversals.ensure_locked(refund("pi_2", "refund:re_2"))
    view = BatchView(uow, NOTHING, gates={}, order_keys=["checkout:cs_1"])
    order = view.orders.ensure_locked(new_order("checkout:cs_1", "ord_1"))
    view.payments.link("pi_2", order.id)  # not locked by the batch: linked at once
    assert view.reversals.for_order("ord_1") == [kept]


def test_a_deferred_write_the_store_refuses_fails_the_batch(db: MemoryDatabase) -> None:
    with db.uow() as uow:
        view = BatchView(uow, NOTHING, order_keys=["checkout:cs_1"])
        view.orders.ensure_locked(new_order("checkout:cs_1", "ord_1"))
        # Another transaction's order took the key meanwhile (here: the same one's store).
        uow.orders.ensure_locked(new_order("checkout:cs_1", "ord_rival"))
        with pytest.raises(DeferredWritesFailed, match="deferred writes failed"):
            view.flush()


def test_a_batch_view_is_neither_entered_nor_committed(uow: MemoryUnitOfWork) -> None:
    view = BatchView(uow, NOTHING)
    with pytest.raises(TypeError):
        view.commit()
    with pytest.raises(TypeError), view:
        pass


def test_an_update_the_view_cannot_keep_goes_to_the_store_and_the_order_stays_held(
    uow: MemoryUnitOfWork,
) -> None:
    view = BatchView(uow, NOTHING)
    view.orders.ensure_locked(new_order("checkout:cs_1", "ord_1"))
    view.orders.update("ord_1", status="fulfilled", updated=11)  # deferred
    renamed = view.orders.update("ord_1", key="checkout:cs_2")  # written now, with what waited
    assert (renamed.key, renamed.status) == ("checkout:cs_2", "fulfilled")
    assert uow.orders.get("ord_1") == renamed
    assert view.orders.get("ord_1") == renamed
    assert view.orders.ensure_locked(new_order("checkout:cs_2", "ord_x")) == renamed

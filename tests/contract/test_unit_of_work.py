"""The unit of work: one transaction; ``commit`` keeps it, anything else rolls it back."""

from __future__ import annotations

import threading

import pytest

from billfold.domain import errors
from billfold.domain.ledger import Line
from billfold.service.ports import UnitOfWork
from tests.contract.backends import T0, Backend, attempt, claim, moves, new_order

UNBALANCED_ON_POSTGRES = (
    "PostgreSQL's deferred trigger raises ConstraintViolation('ledger_lines_balanced'): "
    "errors.translated maps only 'not_overdrawn' to InvariantViolation"
)


def test_given_a_commit_then_another_unit_of_work_sees_the_writes(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0, email="a@example.com")
        uow.commit()
    with backend.uow() as uow:
        record = uow.accounts.get("user_1")
    assert record is not None
    assert record.email == "a@example.com"


def test_given_no_commit_when_the_block_ends_then_nothing_was_written(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0)
        assert uow.accounts.get("user_1") is not None  # a transaction sees its own writes
    with backend.uow() as uow:
        assert uow.accounts.get("user_1") is None


def test_given_an_exception_in_the_block_then_it_propagates_and_everything_rolls_back(
    backend: Backend,
) -> None:
    def write_then_fail(uow: UnitOfWork) -> None:
        uow.accounts.upsert("user_1", now=T0)
        uow.orders.ensure_locked(new_order(key="checkout:cs_1"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        attempt(backend, write_then_fail)
    with backend.uow() as uow:
        assert uow.accounts.get("user_1") is None
        assert uow.orders.by_key("checkout:cs_1") is None


def test_given_a_refused_write_then_the_earlier_writes_of_the_transaction_roll_back_too(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0, stripe_customer_id="cus_1")
        uow.commit()

    def two_writes(uow: UnitOfWork) -> None:
        uow.accounts.upsert("user_2", now=T0, email="two@example.com")
        uow.accounts.upsert("user_3", now=T0, stripe_customer_id="cus_1")  # cus_1 is user_1's

    with pytest.raises(errors.ConstraintViolation):
        attempt(backend, two_writes)
    with backend.uow() as uow:
        assert uow.accounts.get("user_2") is None
        assert uow.accounts.get("user_3") is None


def test_given_writes_after_a_commit_then_only_another_commit_keeps_them(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("kept", now=T0)
        uow.commit()
        uow.accounts.upsert("dropped", now=T0)
    with backend.uow() as uow:
        uow.accounts.upsert("second", now=T0)
        uow.commit()
        uow.accounts.upsert("third", now=T0)
        uow.commit()
    with backend.uow() as uow:
        found = {a: uow.accounts.get(a) is not None for a in ("kept", "dropped", "second", "third")}
    assert found == {"kept": True, "dropped": False, "second": True, "third": True}


def test_given_an_uncommitted_write_then_no_other_unit_of_work_ever_sees_it(
    backend: Backend,
) -> None:
    """Another thread's unit of work reads either before the writer ends (PostgreSQL) or after it
    rolled back (memory and SQLite serialise units of work): never the uncommitted row."""
    written = threading.Event()
    seen: list[bool] = []

    def reader() -> None:
        written.wait(5)
        with backend.uow() as uow:
            seen.append(uow.accounts.get("ghost") is not None)

    thread = threading.Thread(target=reader)
    thread.start()
    with backend.uow() as uow:
        uow.accounts.upsert("ghost", now=T0)
        written.set()
        thread.join(0.2)
    thread.join(5)
    assert seen == [False]


def test_given_balanced_lines_then_the_commit_keeps_them(backend: Backend) -> None:
    with backend.uow() as uow:
        txn = claim(uow, "k1")
        uow.ledger.finish_transaction(txn, moves(5, "sys:adjustments", "user_1"), {"ok": True})
        uow.commit()
    with backend.uow() as uow:
        stored = uow.ledger.transaction_by_key("k1")
    assert stored is not None
    assert stored.result == {"ok": True}


def test_given_lines_that_do_not_sum_to_zero_then_the_commit_is_refused_as_an_invariant(
    backend: Backend,
) -> None:
    lines = [
        Line(account_id="sys:adjustments", unit="credits", amount=-5),
        Line(account_id="user_1", unit="credits", amount=4),
    ]
    with pytest.raises(errors.InvariantViolation, match="does not balance: credits sums to -1"):
        attempt(backend, lambda uow: uow.ledger.finish_transaction(claim(uow, "k1"), lines, {}))
    with backend.uow() as uow:
        assert uow.ledger.transaction_by_key("k1") is None


def test_given_hundreds_of_transactions_in_one_commit_then_an_unbalanced_last_one_is_found(
    backend: Backend,
) -> None:
    """SQLite checks the rule for the unit of work's transactions a chunk of ids at a time: the
    one that does not balance is past the first chunk."""
    unbalanced = [
        Line(account_id="sys:adjustments", unit="credits", amount=-5),
        Line(account_id="user_1", unit="credits", amount=4),
    ]

    def many(uow: UnitOfWork) -> None:
        for i in range(700):
            uow.ledger.finish_transaction(
                claim(uow, f"k{i}"), moves(1, "sys:adjustments", "user_1"), {}
            )
        uow.ledger.finish_transaction(claim(uow, "last"), unbalanced, {})

    with pytest.raises(errors.InvariantViolation, match="does not balance: credits sums to -1"):
        attempt(backend, many)
    with backend.uow() as uow:
        assert uow.ledger.transaction_by_key("k0") is None
        assert uow.ledger.transaction_by_key("last") is None


def test_given_a_transaction_that_balances_in_one_unit_but_not_another_then_refused(
    backend: Backend,
) -> None:
    lines = [
        Line(account_id="sys:adjustments", unit="credits", amount=-5),
        Line(account_id="user_1", unit="tokens", amount=5),
    ]
    with pytest.raises(errors.InvariantViolation):
        attempt(backend, lambda uow: uow.ledger.finish_transaction(claim(uow, "k1"), lines, {}))
    with backend.uow() as uow:
        assert uow.ledger.transaction_by_key("k1") is None


def test_given_a_transaction_claimed_earlier_when_finished_unbalanced_then_refused(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        txn = claim(uow, "k1")
        uow.commit()
    lines = [Line(account_id="user_1", unit="credits", amount=5)]
    with pytest.raises((errors.InvariantViolation, errors.ConstraintViolation)):
        attempt(backend, lambda uow: uow.ledger.finish_transaction(txn, lines, {}))

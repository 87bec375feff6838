"""The audit (``billfold verify``): the same findings, in the same words, on every backend.

Damage is done through the ports themselves (a key claimed and never finished, a balance set by
hand), so that it reads the same on memory and on SQL.
"""

from __future__ import annotations

from billfold.service.ports import BalanceRow
from tests.contract.backends import T0, Backend, claim, moves, new_grant


def test_given_an_empty_database_then_the_audit_finds_nothing(backend: Backend) -> None:
    assert backend.verify() == []


def test_given_a_claimed_key_never_finished_then_invariant_5_names_it(backend: Backend) -> None:
    with backend.uow() as uow:
        txn = claim(uow, "k1")
        uow.commit()
    assert backend.verify() == [
        f"invariant 5: transaction {txn} was written with None lines and now has 0"
    ]


def test_given_a_balance_set_by_hand_then_invariants_1_and_2_say_what_disagrees(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.ledger.ensure_account("user_1", T0)
        uow.ledger.ensure_locked_balance("user_1", "credits")
        uow.ledger.set_balance(
            BalanceRow(account_id="user_1", unit="credits", available=5, held=2, debt=0)
        )
        uow.commit()
    assert sorted(backend.verify()) == sorted(
        [
            "invariant 1: balances of all accounts in credits, system accounts included, "
            "sum to 5, not 0",
            "invariant 2: user_1/credits: balance 5 but its ledger lines sum to 0",
            "invariant 2: user_1/credits: balance 5 (debt 0) but live grants hold 0 minus active "
            "holds 0",
            "invariant 2: user_1/credits: 2 recorded as held, grants reserve 0, active holds sum "
            "to 0",
        ]
    )


def test_given_lines_without_a_balance_and_a_grant_reserving_nothing_held_then_reported(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.ledger.ensure_account("user_1", T0)
        txn = claim(uow)
        uow.ledger.finish_transaction(txn, moves(5, "sys:adjustments", "user_1"), {})
        grant = new_grant("user_1", txn, amount=10)
        uow.ledger.insert_grant(grant)
        uow.ledger.update_grants([(grant.id, 10, 4)])
        uow.commit()
    assert sorted(backend.verify()) == sorted(
        [
            "invariant 1: balances of all accounts in credits, system accounts included, "
            "sum to -5, not 0",
            "invariant 2: user_1/credits has ledger lines but no balance",
            f"invariant 2: grant {grant.id} reserves 4 but its holds allocate 0",
        ]
    )


def test_given_an_overdraw_with_debt_then_it_is_no_violation(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.ledger.ensure_account("user_1", T0)
        uow.ledger.ensure_locked_balance("user_1", "credits")
        txn = claim(uow)
        uow.ledger.finish_transaction(txn, moves(5, "user_1", "sys:refunded"), {})
        uow.ledger.set_balance(
            BalanceRow(account_id="user_1", unit="credits", available=-5, held=0, debt=5)
        )
        uow.commit()
    assert backend.verify() == []

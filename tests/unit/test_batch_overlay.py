"""The ledger batch's overlay as the inbox's batches use it (``strict``, with ``accounts``): it
answers only for what it read, creates balance rows and grants, and writes each once, final."""

from __future__ import annotations

import pytest

from billfold.domain.ledger import GrantState
from billfold.service.ledger.batch import NotBatched, Overlay
from billfold.service.ports import BalanceRow, BatchSnapshot, NewGrant

NOW = 1_800_000_000


def snapshot() -> BatchSnapshot:
    """alice's credits were read (a row, one grant); bob's credits were read (no row yet)."""
    alice = BalanceRow(account_id="alice", unit="credits", available=7, held=0, debt=0)
    return BatchSnapshot(
        transactions={},
        balances={("alice", "credits"): alice},
        grants={
            ("alice", "credits"): [
                GrantState(
                    id="gr_1",
                    unit="credits",
                    remaining=7,
                    held=0,
                    priority=0,
                    expires_at=None,
                    created_seq="gr_1",
                    origin=None,
                )
            ],
            ("bob", "credits"): [],
        },
        holds={},
        allocations={},
    )


def new_grant(account: str, grant_id: str, amount: int) -> NewGrant:
    return NewGrant(
        id=grant_id,
        account_id=account,
        unit="credits",
        amount=amount,
        remaining=amount,
        priority=0,
        expires_at=None,
        kind="purchase",
        origin="ord_1",
        reason=None,
        transaction_id="txn_1",
        created=NOW,
    )


def test_what_was_not_read_is_refused_not_guessed() -> None:
    overlay = Overlay(snapshot(), strict=True, accounts=lambda account, now: None)
    with pytest.raises(NotBatched):
        overlay.lock_balance("carol", "credits")
    with pytest.raises(NotBatched):
        overlay.ensure_locked_balance("alice", "tokens")
    with pytest.raises(NotBatched):
        overlay.grant_states("carol", "credits")
    with pytest.raises(NotBatched):
        overlay.get_hold("hold_1")
    with pytest.raises(NotBatched):
        overlay.lapsed_holds(None, NOW, 10)
    with pytest.raises(NotBatched):
        overlay.transaction_by_key("someone-elses-key")
    with pytest.raises(NotBatched):
        overlay.lots("ord_1")


def test_without_strict_an_unread_balance_has_no_row_and_grants_are_refused() -> None:
    overlay = Overlay(snapshot())  # the ledger's own batches: spends, holds
    assert overlay.lock_balance("carol", "credits") is None
    with pytest.raises(NotBatched):
        overlay.ensure_account("carol", NOW)
    with pytest.raises(NotBatched):
        overlay.insert_grant(new_grant("alice", "gr_2", 5))


def test_accounts_are_created_at_once_and_only_when_not_known() -> None:
    created: list[str] = []
    overlay = Overlay(
        snapshot(), strict=True, accounts=lambda account, now: created.append(account)
    )
    overlay.ensure_account("alice", NOW)  # has a balance row: exists
    overlay.ensure_account("bob", NOW)
    overlay.ensure_account("bob", NOW)
    assert created == ["bob"]


def test_a_new_balance_and_new_grants_are_written_once_in_their_final_state() -> None:
    overlay = Overlay(snapshot(), strict=True, accounts=lambda account, now: None)
    row = overlay.ensure_locked_balance("bob", "credits")
    assert (row.available, row.held, row.debt) == (0, 0, 0)
    overlay.insert_grant(new_grant("bob", "gr_b", 10))
    overlay.set_balance(BalanceRow(account_id="bob", unit="credits", available=10, held=0, debt=0))
    overlay.update_grants([("gr_b", 6, 0)])  # drawn later in the same batch
    overlay.insert_grant(new_grant("alice", "gr_a", 3))
    overlay.set_balance(
        BalanceRow(account_id="alice", unit="credits", available=10, held=0, debt=0)
    )
    assert [g.id for g in overlay.grant_states("bob", "credits")] == ["gr_b"]

    writes = overlay.writes()
    assert [(b.account_id, b.available) for b in writes.new_balances] == [("bob", 10)]
    assert [(b.account_id, b.available) for b in writes.balances] == [("alice", 10)]
    assert [(g.id, g.remaining) for g in writes.new_grants] == [("gr_b", 6), ("gr_a", 3)]
    assert writes.grants == {}  # the new grants' final state is their insert


def test_undoing_a_request_forgets_the_balance_and_grant_it_created() -> None:
    overlay = Overlay(snapshot(), strict=True, accounts=lambda account, now: None)
    mark = overlay.mark()
    overlay.ensure_locked_balance("bob", "credits")
    overlay.insert_grant(new_grant("bob", "gr_b", 10))
    overlay.undo(mark)
    writes = overlay.writes()
    assert writes.new_balances == []
    assert writes.new_grants == []
    assert overlay.lock_balance("bob", "credits") is None

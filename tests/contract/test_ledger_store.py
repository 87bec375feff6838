"""The ledger store: transactions and their keys, balances, grants, holds, and what time does."""

from __future__ import annotations

from dataclasses import replace

import pytest

from billfold.domain import errors, ids
from billfold.domain import ledger as rules
from billfold.domain.ledger import HoldStatus, Line
from billfold.service.ports import BalanceRow, BatchWrites, NewTransaction, UnitOfWork
from tests.contract.backends import (
    T0,
    Backend,
    attempt,
    claim,
    disagrees,
    moves,
    new_grant,
    new_hold,
)

FK_NAMES_ON_SQLITE = (
    "SQLite names no foreign key in its error ('FOREIGN KEY constraint failed'), so "
    "errors.constraint_name answers that message instead of the constraint's name"
)


def account_with_balance(
    uow: UnitOfWork, account_id: str = "user_1", unit: str = "credits"
) -> None:
    uow.ledger.ensure_account(account_id, T0)
    uow.ledger.ensure_locked_balance(account_id, unit)


def given_a_balance(backend: Backend) -> str:
    """user_1 with a zero credits balance, committed; the id of a finished transaction."""
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        uow.ledger.finish_transaction(txn, [], {})
        uow.commit()
    return txn


def balance(**values: int) -> BalanceRow:
    data = {"available": 0, "held": 0, "debt": 0} | values
    return BalanceRow(
        account_id="user_1",
        unit="credits",
        available=data["available"],
        held=data["held"],
        debt=data["debt"],
    )


# --- idempotency keys and transactions -----------------------------------------------------------


def test_given_a_new_key_then_claim_stores_it_and_a_repeat_claims_nothing(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        first = uow.ledger.claim_key(
            txn_id="txn_1",
            key="order:1",
            request_hash="h1",
            kind="grant",
            account_id="user_1",
            unit="credits",
            amount=100,
            reason="why",
            created=T0,
        )
        again = uow.ledger.claim_key(
            txn_id="txn_2",
            key="order:1",
            request_hash="h2",
            kind="spend",
            account_id=None,
            unit=None,
            amount=None,
            reason=None,
            created=T0 + 1,
        )
        uow.commit()
    with backend.uow() as uow:
        stored = uow.ledger.transaction_by_key("order:1")
        repeat_after_commit = claim_again(uow, txn_id="txn_3", key="order:1")
    assert (first, again, repeat_after_commit) == (True, False, False)
    assert stored is not None
    assert (stored.id, stored.kind, stored.request_hash, stored.result) == (
        "txn_1",
        "grant",
        "h1",
        None,
    )


def claim_again(uow: UnitOfWork, *, txn_id: str, key: str) -> bool:
    return uow.ledger.claim_key(
        txn_id=txn_id,
        key=key,
        request_hash="h",
        kind="grant",
        account_id=None,
        unit=None,
        amount=None,
        reason=None,
        created=T0,
    )


def test_given_a_used_transaction_id_with_another_key_then_nothing_is_claimed(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        assert claim_again(uow, txn_id="txn_1", key="a") is True
        assert claim_again(uow, txn_id="txn_1", key="b") is False
        assert uow.ledger.transaction_by_key("b") is None


def test_given_no_such_key_then_transaction_by_key_is_none(backend: Backend) -> None:
    with backend.uow() as uow:
        assert uow.ledger.transaction_by_key("never") is None


def test_given_a_finished_transaction_then_its_result_reads_back_as_json(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        txn = claim(uow, "k1")
        uow.ledger.finish_transaction(
            txn,
            moves(7, "sys:adjustments", "user_1"),
            {"draws": [("gr_1", 3), ("gr_2", 4)], "n": 1, "none": None, "nested": {"a": [1]}},
        )
        uow.commit()
    with backend.uow() as uow:
        stored = uow.ledger.transaction_by_key("k1")
    assert stored is not None
    assert stored.result == {
        "draws": [["gr_1", 3], ["gr_2", 4]],
        "n": 1,
        "none": None,
        "nested": {"a": [1]},
    }


def test_given_a_transaction_without_lines_then_finishing_records_only_its_result(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        txn = claim(uow, "k1", account_id="user_1")
        uow.ledger.finish_transaction(txn, [], {"taken": 0})
        uow.commit()
    with backend.uow() as uow:
        stored = uow.ledger.transaction_by_key("k1")
        listed = uow.ledger.list_transactions("user_1", limit=10, starting_after=None)
    assert stored is not None
    assert stored.result == {"taken": 0}
    assert listed == []  # only transactions with a line on the account are listed
    assert backend.verify() == []


@pytest.mark.parametrize("second", ["lines", "no-lines"])
def test_given_a_finished_transaction_when_finished_again_then_refused_as_append_only(
    backend: Backend, second: str
) -> None:
    with backend.uow() as uow:
        txn = claim(uow, "k1")
        uow.ledger.finish_transaction(txn, moves(5, "sys:adjustments", "user_1"), {"n": 1})
        uow.commit()
    again = moves(1, "sys:adjustments", "user_1") if second == "lines" else []
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.finish_transaction(txn, again, {"n": 2}))
    assert refused_.value.constraint == "ledger_append_only"
    with backend.uow() as uow:
        stored = uow.ledger.transaction_by_key("k1")
    assert stored is not None
    assert stored.result == {"n": 1}


def test_given_no_such_transaction_then_finishing_it_without_lines_writes_nothing(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.ledger.finish_transaction("txn_missing", [], {"n": 1})
        uow.commit()
    assert backend.verify() == []


@disagrees("sqlite", reason=FK_NAMES_ON_SQLITE)
def test_given_no_such_transaction_then_its_lines_are_refused_by_the_foreign_key(
    backend: Backend,
) -> None:
    lines = moves(1, "a", "b")
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.finish_transaction("txn_missing", lines, {}))
    assert refused_.value.constraint == "fk_ledger_lines_transaction_id_ledger_transactions"


def test_given_a_zero_line_then_the_check_refuses_it(backend: Backend) -> None:
    zero = Line(account_id="user_1", unit="credits", amount=1)
    object.__setattr__(zero, "amount", 0)  # past the constructor, which refuses it too
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.finish_transaction(claim(uow), [zero], {}))
    assert refused_.value.constraint == "ck_ledger_lines_non_zero"


# --- accounts and balances -----------------------------------------------------------------------


def test_given_an_account_then_ensure_account_is_idempotent_and_keeps_the_first_times(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.ledger.ensure_account("user_1", T0)
        uow.ledger.ensure_account("user_1", T0 + 50)
        uow.commit()
    with backend.uow() as uow:
        record = uow.accounts.get("user_1")
    assert record is not None
    assert (record.created, record.updated, record.email, record.metadata) == (T0, T0, None, {})


def test_given_no_balance_then_ensure_creates_a_zero_row_and_then_returns_the_stored_one(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.ledger.ensure_account("user_1", T0)
        assert uow.ledger.lock_balance("user_1", "credits") is None
        created = uow.ledger.ensure_locked_balance("user_1", "credits")
        uow.ledger.set_balance(balance(available=7, held=2, debt=1))
        again = uow.ledger.ensure_locked_balance("user_1", "credits")
        locked = uow.ledger.lock_balance("user_1", "credits")
        uow.commit()
    assert created == balance()
    assert again == locked == balance(available=7, held=2, debt=1)


@disagrees("sqlite", reason=FK_NAMES_ON_SQLITE)
def test_given_no_account_then_a_balance_row_is_refused_by_the_foreign_key(
    backend: Backend,
) -> None:
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.ensure_locked_balance("nobody", "credits"))
    assert refused_.value.constraint == "fk_balances_account_id_accounts"


def test_given_balances_in_several_units_then_they_are_listed_by_unit(backend: Backend) -> None:
    with backend.uow() as uow:
        for unit in ("usd", "credits", "tokens"):
            account_with_balance(uow, unit=unit)
        account_with_balance(uow, "user_2", "aaa")
        uow.commit()
    with backend.uow() as uow:
        units = [b.unit for b in uow.ledger.balances("user_1")]
        none = uow.ledger.balances("nobody")
    assert (units, none) == (["credits", "tokens", "usd"], [])


def test_given_no_balance_row_then_set_balance_writes_nothing(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.ledger.ensure_account("user_1", T0)
        uow.ledger.set_balance(balance(available=5))
        assert uow.ledger.lock_balance("user_1", "credits") is None


def test_given_debt_then_a_balance_may_go_as_far_below_zero_as_the_debt(backend: Backend) -> None:
    with backend.uow() as uow:
        account_with_balance(uow)
        uow.ledger.set_balance(balance(available=-30, debt=30))
        uow.commit()
    with backend.uow() as uow:
        assert uow.ledger.lock_balance("user_1", "credits") == balance(available=-30, debt=30)


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"held": -1}, "ck_balances_held_non_negative"),
        ({"debt": -1, "available": 5}, "ck_balances_debt_non_negative"),
    ],
    ids=["held", "debt"],
)
def test_given_a_negative_held_or_debt_then_the_balance_check_refuses_it(
    backend: Backend, values: dict[str, int], constraint: str
) -> None:
    given_a_balance(backend)
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.set_balance(balance(**values)))
    assert refused_.value.constraint == constraint


@pytest.mark.parametrize(
    "values", [{"available": -1}, {"available": -31, "debt": 30}], ids=["no-debt", "past-debt"]
)
def test_given_an_overdraw_then_it_is_refused_as_an_invariant_violation(
    backend: Backend, values: dict[str, int]
) -> None:
    given_a_balance(backend)
    with pytest.raises(errors.InvariantViolation, match="ck_balances_not_overdrawn"):
        attempt(backend, lambda uow: uow.ledger.set_balance(balance(**values)))
    with backend.uow() as uow:
        assert uow.ledger.lock_balance("user_1", "credits") == balance()


def test_given_an_amount_past_64_bits_then_it_is_refused_as_a_validation_error(
    backend: Backend,
) -> None:
    given_a_balance(backend)
    with pytest.raises(errors.ValidationError):
        attempt(backend, lambda uow: uow.ledger.set_balance(balance(available=2**63)))


@disagrees("sqlite", reason="SQLite does not enforce VARCHAR lengths")
def test_given_an_idempotency_key_longer_than_its_column_then_refused(backend: Backend) -> None:
    with pytest.raises(errors.ValidationError):
        attempt(backend, lambda uow: claim(uow, "k" * 256))


# --- grants --------------------------------------------------------------------------------------


def test_given_grants_then_grant_states_are_those_with_something_remaining(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        live = new_grant("user_1", txn, amount=100, priority=3, origin="ord_1")
        spent = new_grant("user_1", txn, amount=50, remaining=0)
        other_unit = new_grant("user_1", txn, unit="tokens")
        other_account = new_grant("user_2", txn)
        uow.ledger.ensure_account("user_2", T0)
        for g in (live, spent, other_unit, other_account):
            uow.ledger.insert_grant(g)
        uow.ledger.update_grants([(live.id, 80, 5)])
        states = uow.ledger.grant_states("user_1", "credits")
    assert [(s.id, s.remaining, s.held, s.priority, s.origin, s.created_seq) for s in states] == [
        (live.id, 80, 5, 3, "ord_1", live.id)
    ]


def test_given_an_expiry_time_then_grant_states_are_the_expired_ones_with_free_value(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        expired = new_grant("user_1", txn, expires_at=T0 + 10)
        at_the_second = new_grant("user_1", txn, expires_at=T0 + 20)
        fully_held = new_grant("user_1", txn, expires_at=T0 + 10)
        later = new_grant("user_1", txn, expires_at=T0 + 21)
        forever = new_grant("user_1", txn)
        for g in (expired, at_the_second, fully_held, later, forever):
            uow.ledger.insert_grant(g)
        uow.ledger.update_grants([(fully_held.id, 100, 100)])
        states = uow.ledger.grant_states("user_1", "credits", expired_at=T0 + 20)
    assert sorted(s.id for s in states) == sorted([expired.id, at_the_second.id])


@pytest.mark.parametrize(
    ("amount", "remaining", "constraint"),
    [
        (0, 0, "ck_grants_amount_positive"),
        (10, 11, "ck_grants_remaining_in_range"),
        # Below zero breaks both ranges (held 0 > remaining): the first by name is reported.
        (10, -1, "ck_grants_held_in_range"),
    ],
    ids=["amount-zero", "remaining-above", "remaining-below"],
)
def test_given_a_grant_out_of_range_then_the_grant_checks_refuse_it(
    backend: Backend, amount: int, remaining: int, constraint: str
) -> None:
    txn = given_a_balance(backend)
    grant = new_grant("user_1", txn, amount=amount, remaining=remaining)
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.insert_grant(grant))
    assert refused_.value.constraint == constraint


def test_given_a_grant_id_in_use_then_the_primary_key_refuses_it(backend: Backend) -> None:
    txn = given_a_balance(backend)
    attempt(backend, lambda uow: uow.ledger.insert_grant(new_grant("user_1", txn, grant_id="gr_1")))
    again = new_grant("user_1", txn, grant_id="gr_1", amount=5)
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.insert_grant(again))
    assert refused_.value.constraint == "pk_grants"


@disagrees("sqlite", reason=FK_NAMES_ON_SQLITE)
@pytest.mark.parametrize(
    ("account", "known_txn", "constraint"),
    [
        ("nobody", True, "fk_grants_account_id_accounts"),
        ("user_1", False, "fk_grants_transaction_id_ledger_transactions"),
    ],
    ids=["account", "transaction"],
)
def test_given_a_grant_of_nothing_known_then_the_foreign_keys_refuse_it(
    backend: Backend, account: str, known_txn: bool, constraint: str
) -> None:
    finished = given_a_balance(backend)
    txn = finished if known_txn else "txn_missing"
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.insert_grant(new_grant(account, txn)))
    assert refused_.value.constraint == constraint


@pytest.mark.parametrize(
    ("remaining", "held", "constraint"),
    [
        (101, 0, "ck_grants_remaining_in_range"),
        (-1, 0, "ck_grants_held_in_range"),  # breaks both: the first by name is reported
        (50, 51, "ck_grants_held_in_range"),
        (50, -1, "ck_grants_held_in_range"),
    ],
    ids=["remaining-above", "remaining-below", "held-above", "held-below"],
)
def test_given_a_change_out_of_range_then_update_grants_is_refused_and_changes_nothing(
    backend: Backend, remaining: int, held: int, constraint: str
) -> None:
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        first, second = new_grant("user_1", txn), new_grant("user_1", txn)
        uow.ledger.insert_grant(first)
        uow.ledger.insert_grant(second)
        uow.commit()
    changes = [(first.id, 90, 0), (second.id, remaining, held)]
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.update_grants(changes))
    assert refused_.value.constraint == constraint
    with backend.uow() as uow:
        states = uow.ledger.grant_states("user_1", "credits")
    assert sorted((s.remaining, s.held) for s in states) == [(100, 0), (100, 0)]


def test_given_changes_then_update_grants_sets_each_and_skips_unknown_ids(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        g = new_grant("user_1", txn)
        uow.ledger.insert_grant(g)
        uow.ledger.update_grants([])
        uow.ledger.update_grants([(g.id, 60, 10), ("gr_missing", 1, 0)])
        uow.commit()
    with backend.uow() as uow:
        listed = uow.ledger.list_grants(
            "user_1", limit=10, starting_after=None, live_only=False, now=T0
        )
    assert [(x.id, x.amount, x.remaining, x.held) for x in listed] == [(g.id, 100, 60, 10)]


def test_given_grants_then_list_grants_pages_newest_first(backend: Backend) -> None:
    with backend.uow() as uow:
        account_with_balance(uow)
        uow.ledger.ensure_account("user_2", T0)
        txn = claim(uow)
        made = [new_grant("user_1", txn, amount=10 + i, created=T0 + i) for i in range(5)]
        for g in made:
            uow.ledger.insert_grant(g)
        uow.ledger.insert_grant(new_grant("user_2", txn))
        uow.commit()
    newest_first = [g.id for g in reversed(made)]
    with backend.uow() as uow:
        first = uow.ledger.list_grants(
            "user_1", limit=2, starting_after=None, live_only=False, now=T0
        )
        rest = uow.ledger.list_grants(
            "user_1", limit=10, starting_after=first[-1].id, live_only=False, now=T0
        )
        from_unknown = uow.ledger.list_grants(
            "user_1", limit=10, starting_after="gr_0", live_only=False, now=T0
        )
    assert [g.id for g in first] == newest_first[:2]
    assert [g.id for g in rest] == newest_first[2:]
    assert from_unknown == []  # ids sort after "gr_0": nothing is older
    g = made[0]
    assert rest[-1].amount == 10
    assert (rest[-1].kind, rest[-1].reason, rest[-1].created, rest[-1].account_id) == (
        g.kind,
        g.reason,
        g.created,
        "user_1",
    )


def test_given_spent_and_expired_grants_then_live_only_lists_what_is_live_now(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        live = new_grant("user_1", txn, expires_at=T0 + 11)
        forever = new_grant("user_1", txn)
        expires_now = new_grant("user_1", txn, expires_at=T0 + 10)
        spent = new_grant("user_1", txn, remaining=0)
        for g in (live, forever, expires_now, spent):
            uow.ledger.insert_grant(g)
        uow.commit()
    with backend.uow() as uow:
        listed = uow.ledger.list_grants(
            "user_1", limit=10, starting_after=None, live_only=True, now=T0 + 10
        )
    assert sorted(g.id for g in listed) == sorted([live.id, forever.id])


def test_given_expired_grants_then_their_positions_are_listed_once_each(backend: Backend) -> None:
    with backend.uow() as uow:
        for account in ("user_1", "user_2", "user_3"):
            account_with_balance(uow, account)
        txn = claim(uow)
        for g in (
            new_grant("user_1", txn, expires_at=T0),
            new_grant("user_1", txn, expires_at=T0 - 5),
            new_grant("user_1", txn, unit="tokens", expires_at=T0),
            new_grant("user_2", txn, expires_at=T0 + 1),  # not yet
            new_grant("user_3", txn),  # never
        ):
            uow.ledger.insert_grant(g)
        held = new_grant("user_2", txn, expires_at=T0)
        uow.ledger.insert_grant(held)
        uow.ledger.update_grants([(held.id, 100, 100)])  # nothing free to expire
        uow.commit()
    with backend.uow() as uow:
        positions = uow.ledger.expired_grant_positions(T0, 10)
        one = uow.ledger.expired_grant_positions(T0, 1)
    assert sorted(positions) == [("user_1", "credits"), ("user_1", "tokens")]
    assert len(one) == 1
    assert one[0] in positions


# --- holds ---------------------------------------------------------------------------------------


def test_given_a_hold_then_it_reads_back_active_with_nothing_captured(backend: Backend) -> None:
    hold = new_hold("user_1", amount=25, expires_at=T0 + 60)
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        uow.ledger.insert_hold(hold, txn)
        uow.commit()
    with backend.uow() as uow:
        assert uow.ledger.get_hold(hold.id) == hold
        assert uow.ledger.get_hold("hold_missing") is None


@pytest.mark.parametrize(
    ("amount", "status", "constraint"),
    [(0, "active", "ck_holds_amount_positive"), (5, "frozen", "ck_holds_status_known")],
    ids=["amount", "status"],
)
def test_given_a_hold_out_of_range_then_the_hold_checks_refuse_it(
    backend: Backend, amount: int, status: str, constraint: str
) -> None:
    hold = new_hold("user_1", amount=amount)
    object.__setattr__(hold, "status", status)
    txn = given_a_balance(backend)
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.insert_hold(hold, txn))
    assert refused_.value.constraint == constraint


def test_given_a_hold_id_in_use_then_the_primary_key_refuses_it(backend: Backend) -> None:
    txn = given_a_balance(backend)
    attempt(backend, lambda uow: uow.ledger.insert_hold(new_hold("user_1", hold_id="hold_1"), txn))
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(
            backend, lambda uow: uow.ledger.insert_hold(new_hold("user_1", hold_id="hold_1"), txn)
        )
    assert refused_.value.constraint == "pk_holds"


@disagrees("sqlite", reason=FK_NAMES_ON_SQLITE)
@pytest.mark.parametrize(
    ("account", "known_txn", "constraint"),
    [
        ("nobody", True, "fk_holds_account_id_accounts"),
        ("user_1", False, "fk_holds_transaction_id_ledger_transactions"),
    ],
    ids=["account", "transaction"],
)
def test_given_a_hold_of_nothing_known_then_the_foreign_keys_refuse_it(
    backend: Backend, account: str, known_txn: bool, constraint: str
) -> None:
    finished = given_a_balance(backend)
    txn = finished if known_txn else "txn_missing"
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.insert_hold(new_hold(account), txn))
    assert refused_.value.constraint == constraint


def hold_on_grants(uow: UnitOfWork, grants: int = 3) -> tuple[str, list[str]]:
    """A hold and ``grants`` grants of user_1 for it to allocate."""
    account_with_balance(uow)
    txn = claim(uow)
    made = [new_grant("user_1", txn) for _ in range(grants)]
    for g in made:
        uow.ledger.insert_grant(g)
    hold = new_hold("user_1", amount=30)
    uow.ledger.insert_hold(hold, txn)
    return hold.id, [g.id for g in made]


def given_a_hold_on_grants(backend: Backend) -> tuple[str, list[str]]:
    with backend.uow() as uow:
        made = hold_on_grants(uow)
        uow.commit()
    return made


def test_given_allocations_then_they_read_back_in_the_order_written(backend: Backend) -> None:
    with backend.uow() as uow:
        hold_id, (a, b, c) = hold_on_grants(uow)
        uow.ledger.insert_allocations(hold_id, [(c, 5), (a, 20), (b, 5)])
        uow.commit()
    with backend.uow() as uow:
        assert uow.ledger.hold_allocations(hold_id) == [(c, 5), (a, 20), (b, 5)]
        assert uow.ledger.hold_allocations("hold_missing") == []


def test_given_no_allocations_then_inserting_them_writes_nothing(backend: Backend) -> None:
    with backend.uow() as uow:
        hold_id, _ = hold_on_grants(uow)
        uow.ledger.insert_allocations(hold_id, [])
        assert uow.ledger.hold_allocations(hold_id) == []


def test_given_a_zero_allocation_then_the_check_refuses_it(backend: Backend) -> None:
    hold_id, (a, b, _) = given_a_hold_on_grants(backend)
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.insert_allocations(hold_id, [(a, 5), (b, 0)]))
    assert refused_.value.constraint == "ck_hold_allocations_amount_positive"


def test_given_a_grant_allocated_twice_to_one_hold_then_the_primary_key_refuses_it(
    backend: Backend,
) -> None:
    hold_id, (a, _, _) = given_a_hold_on_grants(backend)
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(backend, lambda uow: uow.ledger.insert_allocations(hold_id, [(a, 5), (a, 5)]))
    assert refused_.value.constraint == "pk_hold_allocations"


def test_given_allocations_written_twice_then_the_sequence_is_refused_as_unique(
    backend: Backend,
) -> None:
    hold_id, (a, b, _) = given_a_hold_on_grants(backend)
    attempt(backend, lambda uow: uow.ledger.insert_allocations(hold_id, [(a, 5)]))
    with pytest.raises(errors.ConstraintViolation) as refused_:  # seq 0 again
        attempt(backend, lambda uow: uow.ledger.insert_allocations(hold_id, [(b, 5)]))
    assert refused_.value.constraint == "uq_hold_allocations_hold_id_seq"


@disagrees("sqlite", reason=FK_NAMES_ON_SQLITE)
@pytest.mark.parametrize(
    ("which", "constraint"),
    [
        ("hold", "fk_hold_allocations_hold_id_holds"),
        ("grant", "fk_hold_allocations_grant_id_grants"),
    ],
)
def test_given_an_allocation_of_nothing_known_then_the_foreign_keys_refuse_it(
    backend: Backend, which: str, constraint: str
) -> None:
    hold_id, (a, _, _) = given_a_hold_on_grants(backend)
    allocation = ("hold_missing", a) if which == "hold" else (hold_id, "gr_missing")
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(
            backend, lambda uow: uow.ledger.insert_allocations(allocation[0], [(allocation[1], 5)])
        )
    assert refused_.value.constraint == constraint


def test_given_an_active_hold_then_close_hold_closes_it_once(backend: Backend) -> None:
    hold = new_hold("user_1", amount=30)
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        uow.ledger.insert_hold(hold, txn)
        uow.ledger.close_hold(hold.id, status="captured", captured=12, transaction_id="txn_c")
        uow.ledger.close_hold(hold.id, status="released", captured=0, transaction_id="txn_r")
        uow.ledger.close_hold("hold_missing", status="released", captured=0, transaction_id="t")
        uow.commit()
    with backend.uow() as uow:
        closed = uow.ledger.get_hold(hold.id)
    assert closed is not None
    assert (closed.status, closed.captured) == ("captured", 12)


@pytest.mark.parametrize(
    ("status", "captured", "constraint"),
    [
        ("captured", 31, "ck_holds_captured_in_range"),
        ("captured", -1, "ck_holds_captured_in_range"),
        ("gone", 0, "ck_holds_status_known"),
    ],
    ids=["captured-above", "captured-below", "status"],
)
def test_given_a_closing_out_of_range_then_the_hold_checks_refuse_it(
    backend: Backend, status: str, captured: int, constraint: str
) -> None:
    hold = new_hold("user_1", amount=30)
    txn = given_a_balance(backend)
    attempt(backend, lambda uow: uow.ledger.insert_hold(hold, txn))
    with pytest.raises(errors.ConstraintViolation) as refused_:
        attempt(
            backend,
            lambda uow: uow.ledger.close_hold(
                hold.id,
                status=status,  # type: ignore[arg-type]  # what the CHECK is for
                captured=captured,
                transaction_id="txn_c",
            ),
        )
    assert refused_.value.constraint == constraint


def test_given_holds_then_lapsed_holds_are_the_active_ones_past_their_time_oldest_first(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        account_with_balance(uow)
        account_with_balance(uow, "user_2")
        txn = claim(uow)
        first = new_hold("user_1", expires_at=T0)
        second = new_hold("user_2", expires_at=T0 - 100)
        third = new_hold("user_1", expires_at=T0 - 1)
        not_yet = new_hold("user_1", expires_at=T0 + 1)
        closed = new_hold("user_1", expires_at=T0 - 1)
        for h in (first, second, third, not_yet, closed):
            uow.ledger.insert_hold(h, txn)
        uow.ledger.close_hold(closed.id, status="released", captured=0, transaction_id=txn)
        uow.commit()
    with backend.uow() as uow:
        every = uow.ledger.lapsed_holds(None, T0, 10)
        two = uow.ledger.lapsed_holds(None, T0, 2)
        mine = uow.ledger.lapsed_holds("user_1", T0, 10)
    assert [h.id for h in every] == [first.id, second.id, third.id]
    assert [h.id for h in two] == [first.id, second.id]
    assert [h.id for h in mine] == [first.id, third.id]


def test_given_expired_grants_and_lapsed_holds_then_pending_expiry_counts_both_per_unit(
    backend: Backend,
) -> None:
    """A lapsed hold's value goes back to its grants; what lands on an expired grant expires too."""
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        expired = new_grant("user_1", txn, amount=100, expires_at=T0 - 1)
        live = new_grant("user_1", txn, amount=50)
        tokens = new_grant("user_1", txn, unit="tokens", amount=9, expires_at=T0)
        for g in (expired, live, tokens):
            uow.ledger.insert_grant(g)
        lapsed = new_hold("user_1", amount=30, expires_at=T0)
        uow.ledger.insert_hold(lapsed, txn)
        uow.ledger.insert_allocations(lapsed.id, [(expired.id, 20), (live.id, 10)])
        uow.ledger.update_grants([(expired.id, 100, 20), (live.id, 50, 10)])
        active = new_hold("user_1", amount=5, expires_at=T0 + 60)
        uow.ledger.insert_hold(active, txn)
        uow.ledger.insert_allocations(active.id, [(live.id, 5)])
        uow.ledger.update_grants([(live.id, 50, 15)])
        uow.commit()
    with backend.uow() as uow:
        pending = uow.ledger.pending_expiry("user_1", T0)
        before = uow.ledger.pending_expiry("user_1", T0 - 2)
        nobody = uow.ledger.pending_expiry("nobody", T0)
    # credits: 80 free on the expired grant + 20 returning onto it; one lapsed hold of 30.
    assert pending == {"credits": (100, 30), "tokens": (9, 0)}
    assert before == {}
    assert nobody == {}


# --- the ledger's history ------------------------------------------------------------------------


def test_given_transactions_then_list_transactions_pages_those_touching_the_account(
    backend: Backend,
) -> None:
    made: list[str] = []
    with backend.uow() as uow:
        for i in range(4):
            txn = claim(uow, kind="grant", account_id="user_1", amount=i + 1, created=T0 + i)
            uow.ledger.finish_transaction(txn, moves(i + 1, "sys:adjustments", "user_1"), {})
            made.append(txn)
        other = claim(uow)
        uow.ledger.finish_transaction(other, moves(3, "sys:adjustments", "user_2"), {})
        spend = claim(uow, kind="spend")
        lines = [
            Line(account_id="user_1", unit="credits", amount=-2, grant_id="gr_a"),
            Line(account_id="sys:spent", unit="credits", amount=2, grant_id="gr_a"),
            Line(account_id="user_1", unit="credits", amount=-1, grant_id="gr_b"),
            Line(account_id="sys:spent", unit="credits", amount=1, grant_id="gr_b"),
        ]
        uow.ledger.finish_transaction(spend, lines, {})
        made.append(spend)
        uow.commit()
    newest_first = list(reversed(made))
    with backend.uow() as uow:
        first = uow.ledger.list_transactions("user_1", limit=2, starting_after=None)
        rest = uow.ledger.list_transactions("user_1", limit=10, starting_after=first[-1].id)
        system = uow.ledger.list_transactions("sys:spent", limit=10, starting_after=None)
    assert [x.id for x in first] == newest_first[:2]
    assert [x.id for x in rest] == newest_first[2:]
    assert first[0].lines == tuple(lines)  # in the order written
    assert first[0].net_for("user_1") == -3
    oldest = rest[-1]
    assert (oldest.kind, oldest.account_id, oldest.amount, oldest.created, oldest.reason) == (
        "grant",
        "user_1",
        1,
        T0,
        None,
    )
    assert [x.id for x in system] == [spend]


def test_given_a_spent_grant_then_its_state_lists_no_more(backend: Backend) -> None:
    """A grant drawn to zero leaves grant_states, but not list_grants without live_only."""
    with backend.uow() as uow:
        account_with_balance(uow)
        txn = claim(uow)
        g = new_grant("user_1", txn, amount=5)
        uow.ledger.insert_grant(g)
        uow.ledger.update_grants([(g.id, 0, 0)])
        states = uow.ledger.grant_states("user_1", "credits")
        listed = uow.ledger.list_grants(
            "user_1", limit=5, starting_after=None, live_only=False, now=T0
        )
    assert states == []
    assert [x.remaining for x in listed] == [0]


def test_given_holds_then_they_list_newest_first_per_account_filtered_as_they_stand(
    backend: Backend,
) -> None:
    active = new_hold("user_1", hold_id="hold_01", expires_at=T0 + 60)
    lapsed = new_hold("user_1", hold_id="hold_02", expires_at=T0 + 10)
    captured = new_hold("user_1", hold_id="hold_03", expires_at=T0 + 60)
    written = new_hold("user_1", hold_id="hold_04", status="expired", expires_at=T0 + 5)
    theirs = new_hold("user_2", hold_id="hold_05")
    with backend.uow() as uow:
        account_with_balance(uow)
        account_with_balance(uow, "user_2")
        txn = claim(uow)
        for hold in (active, lapsed, captured, written, theirs):
            uow.ledger.insert_hold(hold, txn)
        uow.ledger.close_hold("hold_03", status="captured", captured=10, transaction_id=txn)
        uow.commit()

    def listed(
        status: HoldStatus | None, *, limit: int = 10, after: str | None = None
    ) -> list[str]:
        with backend.uow() as uow:
            rows = uow.ledger.list_holds(
                "user_1", status=status, now=T0 + 30, limit=limit, starting_after=after
            )
        return [h.id for h in rows]

    assert listed(None) == ["hold_04", "hold_03", "hold_02", "hold_01"]
    assert listed("active") == ["hold_01"]
    assert listed("expired") == ["hold_04", "hold_02"]  # lapsed counts before the sweep
    assert listed("captured") == ["hold_03"]
    assert listed("released") == []
    assert listed(None, limit=2) == ["hold_04", "hold_03"]
    assert listed(None, limit=2, after="hold_03") == ["hold_02", "hold_01"]
    with backend.uow() as uow:
        [row] = uow.ledger.list_holds(
            "user_1", status="captured", now=T0 + 30, limit=5, starting_after=None
        )
    assert (row.status, row.captured) == ("captured", 10)


# --- a batch's new balance rows and grants (the inbox's batches) -----------------------------------


def _batch_of_one_grant(account_id: str, *, amount: int = 40) -> BatchWrites:
    txn = ids.new_id("txn")
    grant = new_grant(account_id, txn, amount=amount, remaining=amount - 15)
    return BatchWrites(
        transactions=[
            NewTransaction(
                id=txn,
                key=f"key-{txn}",
                request_hash="hash",
                kind="grant",
                account_id=account_id,
                unit="credits",
                amount=amount,
                reason=None,
                created=T0,
                lines=(
                    Line(
                        account_id=rules.system_account(rules.STRIPE),
                        unit="credits",
                        amount=-amount,
                    ),
                    Line(account_id=account_id, unit="credits", amount=amount, grant_id=grant.id),
                ),
                result={"transaction_id": txn},
            )
        ],
        grants={},
        balances=[],
        holds=[],
        allocations=[],
        closed_holds=[],
        new_balances=[
            BalanceRow(
                account_id=account_id,
                unit="credits",
                available=amount - 15,
                held=0,
                debt=0,
                low_balance=7,
                low_alert=True,
            )
        ],
        new_grants=[grant],
    )


def test_given_a_batch_creating_a_balance_and_a_grant_then_both_are_written_as_final(
    backend: Backend,
) -> None:
    writes = _batch_of_one_grant("user_1")
    with backend.uow() as uow:
        uow.ledger.ensure_account("user_1", T0)
        uow.ledger.flush_batch(writes)
        uow.commit()
    with backend.uow() as uow:
        row = uow.ledger.lock_balance("user_1", "credits")
        grants = uow.ledger.grant_states("user_1", "credits")
    assert row == writes.new_balances[0]
    assert [(g.id, g.remaining, g.held) for g in grants] == [(writes.new_grants[0].id, 25, 0)]


def test_given_a_batch_creating_a_grant_that_also_holds_units_then_the_update_finds_the_new_row(
    backend: Backend,
) -> None:
    """A batch's writes go in order: the update of a grant the same batch creates (its units
    held at once) lands on the new row, not on nothing."""
    writes = _batch_of_one_grant("user_1")
    grant = writes.new_grants[0]
    writes = replace(writes, grants={grant.id: (grant.remaining, 5)})
    with backend.uow() as uow:
        uow.ledger.ensure_account("user_1", T0)
        uow.ledger.flush_batch(writes)
        uow.commit()
    with backend.uow() as uow:
        grants = uow.ledger.grant_states("user_1", "credits")
    assert [(g.id, g.remaining, g.held) for g in grants] == [(grant.id, 25, 5)]


def test_given_a_balance_row_created_meanwhile_then_the_batch_creating_it_is_refused(
    backend: Backend,
) -> None:
    given_a_balance(backend)  # user_1's credits row exists
    writes = _batch_of_one_grant("user_1")
    with pytest.raises(errors.ConstraintViolation), backend.uow() as uow:
        uow.ledger.flush_batch(writes)
    with backend.uow() as uow:
        assert uow.ledger.grant_states("user_1", "credits") == []

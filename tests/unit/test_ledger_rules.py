"""The ledger's pure rules: amounts, journal entries, draw order, clawback plans, splits, ids."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billfold.domain import errors, ids
from billfold.domain import ledger as rules
from billfold.domain.ledger import Allocation, GrantState, Line

NOW = 1_800_000_000


def grant(
    gid: str,
    remaining: int,
    *,
    priority: int = 0,
    expires_at: int | None = None,
    held: int = 0,
    origin: str | None = None,
    seq: str | None = None,
) -> GrantState:
    return GrantState(
        id=gid,
        unit="credits",
        remaining=remaining,
        priority=priority,
        expires_at=expires_at,
        created_seq=seq or gid,
        origin=origin,
        held=held,
    )


# --- amounts and other inputs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [0, -1, -(10**15), 1.5, 1.0, "10", True, False, None, 10**15 + 1, 10**16, 2**63],
    ids=repr,
)
def test_given_a_bad_amount_when_checked_then_it_is_a_validation_error(amount: object) -> None:
    with pytest.raises(errors.ValidationError) as info:
        rules.check_amount(amount)

    assert info.value.details["param"] == "amount"


@pytest.mark.parametrize("amount", [1, 7, rules.MAX_AMOUNT])
def test_given_a_positive_integer_within_bounds_when_checked_then_it_is_returned(
    amount: int,
) -> None:
    assert rules.check_amount(amount) == amount


@pytest.mark.parametrize(
    "account_id",
    ["", "   ", "x" * 201, "sys:spent", "sys:", "a\x00b", "tab\there", None, 42],
    ids=repr,
)
def test_given_a_bad_account_id_when_checked_then_it_is_a_validation_error(
    account_id: object,
) -> None:
    with pytest.raises(errors.ValidationError):
        rules.check_account_id(account_id)


def test_given_the_longest_allowed_account_id_when_checked_then_it_passes() -> None:
    assert rules.check_account_id("u" * 200) == "u" * 200


@pytest.mark.parametrize("key", ["", "k" * 256, None, 5, "sys:expire:gr_1:100"], ids=repr)
def test_given_a_bad_idempotency_key_when_checked_then_it_is_a_validation_error(
    key: object,
) -> None:
    with pytest.raises(errors.ValidationError):
        rules.check_key(key)


@pytest.mark.parametrize(
    "priority", [True, 1.5, "1", rules.MAX_PRIORITY + 1, -rules.MAX_PRIORITY - 1]
)
def test_given_a_bad_priority_when_checked_then_it_is_a_validation_error(
    priority: object,
) -> None:
    with pytest.raises(errors.ValidationError):
        rules.check_priority(priority)


# --- journal entries -----------------------------------------------------------------------------


def test_given_lines_that_do_not_sum_to_zero_when_building_an_entry_then_it_cannot_exist() -> None:
    lines = (
        Line(account_id="user_1", unit="credits", amount=5),
        Line(account_id="sys:spent", unit="credits", amount=-4),
    )

    with pytest.raises(errors.InvariantViolation, match="does not balance"):
        rules.JournalEntry(kind="spend", lines=lines)


def test_given_lines_balanced_in_total_but_not_per_unit_then_the_entry_cannot_exist() -> None:
    lines = (
        Line(account_id="user_1", unit="credits", amount=5),
        Line(account_id="sys:spent", unit="tokens", amount=-5),
    )

    with pytest.raises(errors.InvariantViolation):
        rules.JournalEntry(kind="spend", lines=lines)


@pytest.mark.parametrize("amount", [0, 1.5, True])
def test_given_a_zero_or_non_integer_amount_when_building_a_line_then_it_cannot_exist(
    amount: object,
) -> None:
    with pytest.raises(errors.ValidationError):
        Line(account_id="user_1", unit="credits", amount=amount)  # type: ignore[arg-type]


def test_given_no_lines_when_building_an_entry_then_it_cannot_exist() -> None:
    with pytest.raises(errors.ValidationError):
        rules.JournalEntry(kind="spend", lines=())


@given(amount=st.integers(1, rules.MAX_AMOUNT))
def test_a_transfer_always_balances(amount: int) -> None:
    lines = rules.transfer(source="user_1", target="sys:spent", unit="credits", amount=amount)

    entry = rules.JournalEntry(kind="spend", lines=lines)

    assert rules.sums_by_unit(entry.lines) == {"credits": 0}
    assert [ln.amount for ln in lines] == [-amount, amount]


# --- draw order ----------------------------------------------------------------------------------


def test_given_grants_of_different_priority_when_drawing_then_the_lowest_priority_goes_first() -> (
    None
):
    grants = [
        grant("g1", 10, priority=5),
        grant("g2", 10, priority=0),
        grant("g3", 10, priority=-1),
    ]

    assert rules.plan_draw(grants, 25, NOW, unit="credits") == [("g3", 10), ("g2", 10), ("g1", 5)]


def test_given_equal_priority_when_drawing_then_soonest_expiry_first_and_no_expiry_last() -> None:
    grants = [
        grant("g1", 10),
        grant("g2", 10, expires_at=NOW + 200),
        grant("g3", 10, expires_at=NOW + 100),
    ]

    assert rules.plan_draw(grants, 30, NOW, unit="credits") == [
        ("g3", 10),
        ("g2", 10),
        ("g1", 10),
    ]


def test_given_equal_priority_and_expiry_when_drawing_then_the_oldest_goes_first() -> None:
    grants = [grant("g2", 10, seq="b"), grant("g1", 10, seq="a"), grant("g3", 10, seq="c")]

    assert rules.plan_draw(grants, 15, NOW, unit="credits") == [("g1", 10), ("g2", 5)]


def test_given_an_expired_grant_when_drawing_then_it_is_never_used() -> None:
    grants = [grant("old", 100, expires_at=NOW), grant("live", 10)]

    with pytest.raises(errors.InsufficientBalance) as info:
        rules.plan_draw(grants, 11, NOW, unit="credits")

    assert (info.value.available, info.value.requested, info.value.unit) == (10, 11, "credits")
    assert rules.plan_draw(grants, 10, NOW, unit="credits") == [("live", 10)]


def test_given_held_parts_when_drawing_then_only_the_free_part_is_spendable() -> None:
    grants = [grant("g1", 10, held=7), grant("g2", 10, held=10)]

    assert rules.spendable(grants, NOW) == 3
    assert rules.plan_draw(grants, 3, NOW, unit="credits") == [("g1", 3)]


grant_lists = st.lists(
    st.builds(
        grant,
        gid=st.uuids().map(str),
        remaining=st.integers(1, 100),
        priority=st.integers(-2, 2),
        expires_at=st.none() | st.integers(NOW - 5, NOW + 5),
        held=st.just(0),
    ),
    max_size=8,
    unique_by=lambda g: g.id,
)


@given(grants=grant_lists, amount=st.integers(1, 500))
def test_a_draw_takes_exactly_the_amount_in_draw_order_from_live_grants_only(
    grants: list[GrantState], amount: int
) -> None:
    live = sorted((g for g in grants if g.is_live(NOW)), key=rules.draw_order_key)
    if amount > sum(g.free for g in live):
        with pytest.raises(errors.InsufficientBalance):
            rules.plan_draw(grants, amount, NOW, unit="credits")
        return

    plan = rules.plan_draw(grants, amount, NOW, unit="credits")

    assert sum(take for _, take in plan) == amount
    # A prefix of the live grants in draw order: every grant but the last is drained.
    assert [gid for gid, _ in plan] == [g.id for g in live[: len(plan)]]
    by_id = {g.id: g for g in grants}
    assert all(take == by_id[gid].free for gid, take in plan[:-1])
    assert all(0 < take <= by_id[gid].free for gid, take in plan)


# --- clawback ------------------------------------------------------------------------------------


def test_given_floor_when_clawing_back_past_the_origin_then_the_rest_is_unrecovered() -> None:
    grants = [grant("a", 30, origin="order_1"), grant("b", 100, origin="order_2")]

    plan = rules.plan_clawback(grants, 50, NOW, origin="order_1", policy="floor")

    assert plan.takes == (("a", 30),)
    assert (plan.taken, plan.debt, plan.unrecovered) == (30, 0, 20)


def test_given_debt_when_clawing_back_past_the_origin_then_other_grants_then_debt() -> None:
    grants = [grant("a", 30, origin="order_1"), grant("b", 10, origin="order_2", held=4)]

    plan = rules.plan_clawback(grants, 50, NOW, origin="order_1", policy="debt")

    assert plan.takes == (("a", 30), ("b", 6))
    assert (plan.taken, plan.debt, plan.unrecovered) == (36, 14, 0)


def test_given_an_expired_grant_of_the_origin_when_clawing_back_then_it_is_not_taken() -> None:
    grants = [grant("a", 30, origin="order_1", expires_at=NOW)]

    plan = rules.plan_clawback(grants, 10, NOW, origin="order_1", policy="floor")

    assert (plan.takes, plan.unrecovered) == ((), 10)


@given(
    grants=st.lists(
        st.builds(
            grant,
            gid=st.uuids().map(str),
            remaining=st.integers(1, 50),
            origin=st.sampled_from(["o1", "o2", None]),
            expires_at=st.none() | st.integers(NOW - 5, NOW + 5),
        ),
        max_size=6,
        unique_by=lambda g: g.id,
    ),
    amount=st.integers(1, 200),
    policy=st.sampled_from(["floor", "debt"]),
)
def test_a_clawback_plan_accounts_for_every_unit_requested(
    grants: list[GrantState], amount: int, policy: rules.RefundPolicy
) -> None:
    plan = rules.plan_clawback(grants, amount, NOW, origin="o1", policy=policy)

    by_id = {g.id: g for g in grants}
    assert plan.taken + plan.debt + plan.unrecovered == amount
    assert all(by_id[gid].is_live(NOW) and 0 < take <= by_id[gid].free for gid, take in plan.takes)
    if policy == "floor":
        assert plan.debt == 0
        assert all(by_id[gid].origin == "o1" for gid, _ in plan.takes)
    else:
        assert plan.unrecovered == 0
        if plan.debt:  # debt only once every live grant is drained
            assert plan.taken == rules.spendable(grants, NOW)


def test_given_debt_when_a_grant_arrives_then_it_repays_the_debt_first() -> None:
    assert rules.repay_debt(30, 100) == rules.DebtRepayment(repaid=30, remaining_grant=70)
    assert rules.repay_debt(300, 100) == rules.DebtRepayment(repaid=100, remaining_grant=0)
    assert rules.repay_debt(0, 100) == rules.DebtRepayment(repaid=0, remaining_grant=100)


# --- holds ---------------------------------------------------------------------------------------


def test_given_a_hold_on_two_grants_when_captured_in_part_then_allocations_go_in_order() -> None:
    allocations = [Allocation(grant_id="a", amount=30), Allocation(grant_id="b", amount=20)]

    plan = rules.plan_capture(allocations, 40)

    assert plan.consumed == (
        Allocation(grant_id="a", amount=30),
        Allocation(grant_id="b", amount=10),
    )
    assert plan.returned == 10


def test_given_a_hold_when_capturing_more_than_it_reserves_then_it_is_a_validation_error() -> None:
    with pytest.raises(errors.ValidationError):
        rules.plan_capture([Allocation(grant_id="a", amount=30)], 31)


def test_given_expired_grants_and_lapsed_holds_then_the_pending_adjustment_counts_both() -> None:
    grants = [grant("a", 30, expires_at=NOW, held=10), grant("b", 5)]

    assert rules.pending_adjustment(grants, {"h1": 10, "h2": 4}, NOW) == (20, 14)


# --- splits --------------------------------------------------------------------------------------


def test_given_three_equal_weights_when_splitting_100_then_the_remainder_goes_to_the_first() -> (
    None
):
    assert rules.split_largest_remainder(100, [1, 1, 1]) == [34, 33, 33]


def test_given_weights_that_sum_to_zero_when_splitting_then_it_is_a_validation_error() -> None:
    with pytest.raises(errors.ValidationError):
        rules.split_largest_remainder(10, [0, 0])


@given(
    total=st.integers(0, 10**12),
    weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=10).filter(lambda w: sum(w) > 0),
)
def test_a_split_sums_to_the_total_and_each_share_is_within_one_of_its_exact_part(
    total: int, weights: list[int]
) -> None:
    shares = rules.split_largest_remainder(total, weights)

    assert sum(shares) == total
    for share, weight in zip(shares, weights, strict=True):
        exact_times_sum = total * weight
        assert abs(share * sum(weights) - exact_times_sum) < sum(weights)


# --- age: the draw order's last key is the grant's time-ordered id ----------------------------


def test_given_ids_made_one_after_another_then_their_order_is_their_age() -> None:
    """Draw order falls back to age via ``created_seq`` = the grant id. Ids made within the same
    millisecond must still sort in creation order, or two grants written back to back are drawn
    in a random order."""
    made = [ids.new_id("gr") for _ in range(2_000)]

    assert sorted(made) == made
    assert len(set(made)) == len(made)


def test_a_grant_with_new_amounts_keeps_every_other_field() -> None:
    """``with_amounts`` spells ``dataclasses.replace`` out: every field, set to a value of its
    own here, survives it (a field added to GrantState and not copied fails this)."""
    values: dict[str, object] = {}
    for n, field in enumerate(dataclasses.fields(GrantState)):
        values[field.name] = f"value-{n}" if "str" in str(field.type) else 1000 + n
    grant = GrantState(**values)  # type: ignore[arg-type]

    changed = grant.with_amounts(5, 2)

    assert changed == dataclasses.replace(grant, remaining=5, held=2)
    assert len(values) > 6  # every field was given a value

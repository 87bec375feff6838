"""Payments (the gate row of a payment intent), reversals, the console's sessions and operators'
actions: the same on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from billfold.domain import errors
from billfold.domain.actions import OperatorAction, SessionRecord
from billfold.service.ports import NewReversal
from tests.contract.backends import T0, Backend, new_order


def reversal(key: str = "refund:re_1", *, amount: int = 400, created: int = T0) -> NewReversal:
    kind, _, stripe_id = key.partition(":")
    return NewReversal(
        id=f"rev_{stripe_id}",
        key=key,
        kind="refund" if kind == "refund" else "dispute",
        stripe_id=stripe_id,
        payment_intent_id="pi_1",
        charge_id="ch_1",
        amount=amount,
        currency="usd",
        status="succeeded",
        reason=None,
        stripe_created=T0,
        created=created,
    )


def test_given_a_payment_intent_then_its_gate_row_is_made_once_and_names_its_order(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        assert uow.payments.ensure_locked("pi_1", now=T0) is None
        assert uow.payments.ensure_locked("pi_1", now=T0 + 1) is None
        uow.orders.ensure_locked(new_order(order_id="ord_1", payment_intent_id="pi_1"))
        uow.payments.link("pi_1", "ord_1")
        uow.commit()
    with backend.uow() as uow:
        assert uow.payments.ensure_locked("pi_1", now=T0 + 2) == "ord_1"
        uow.orders.ensure_locked(new_order(key="k2", order_id="ord_2"))
        uow.payments.link("pi_1", "ord_2")  # a payment keeps its first order
        assert uow.payments.ensure_locked("pi_1", now=T0 + 3) == "ord_1"
        assert uow.payments.of_order("ord_1") == ["pi_1"]
        assert uow.payments.of_order("ord_2") == []


def test_given_a_reversal_key_then_it_is_inserted_once_and_found_by_its_payment(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        first, inserted = uow.reversals.ensure_locked(reversal())
        assert inserted
        again, inserted_again = uow.reversals.ensure_locked(reversal(amount=999))
        assert not inserted_again
        assert again == first
        assert (first.state, first.effect, first.amount) == ("pending", None, 400)
        uow.reversals.ensure_locked(reversal("dispute:dp_1", amount=999, created=T0 + 5))
        uow.commit()
    with backend.uow() as uow:
        found = uow.reversals.for_payments(["pi_1", "pi_other"])
        assert [r.key for r in found] == ["refund:re_1", "dispute:dp_1"]
        assert uow.reversals.for_payments([]) == []


def test_given_an_order_then_for_order_reads_the_reversals_of_every_payment_naming_it(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.reversals.ensure_locked(reversal("dispute:dp_1", created=T0 + 5))
        uow.reversals.ensure_locked(reversal())
        assert uow.reversals.for_order("ord_1") == []  # no payment names it yet
        uow.payments.ensure_locked("pi_1", now=T0)
        uow.orders.ensure_locked(new_order(order_id="ord_1", payment_intent_id="pi_1"))
        uow.payments.link("pi_1", "ord_1")
        uow.commit()
    with backend.uow() as uow:
        assert [r.key for r in uow.reversals.for_order("ord_1")] == ["refund:re_1", "dispute:dp_1"]
        assert uow.reversals.for_order("ord_other") == []


def test_given_a_reversal_then_update_keeps_its_effect_as_json(backend: Backend) -> None:
    effect = {"units": {"credits": {"lots": {"gr_1": [10, 7]}, "debt": 3}}, "generation": 1}
    with backend.uow() as uow:
        row, _ = uow.reversals.ensure_locked(reversal())
        updated = uow.reversals.update(row.id, state="applied", effect=effect, updated=T0 + 1)
        uow.commit()
    assert updated.state == "applied"
    assert updated.effect == effect
    with backend.uow() as uow:
        assert uow.reversals.for_payments(["pi_1"])[0].effect == effect


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"state": "undone"}, "ck_reversals_state_known"),
        ({"amount": -1}, "ck_reversals_amount_non_negative"),
    ],
)
def test_given_a_reversal_then_its_checks_refuse_what_it_cannot_be(
    backend: Backend, change: dict[str, object], constraint: str
) -> None:
    def write() -> None:
        with backend.uow() as uow:
            row, _ = uow.reversals.ensure_locked(reversal())
            uow.reversals.update(row.id, **change)
            uow.commit()

    with pytest.raises(errors.ConstraintViolation) as refused:
        write()
    assert refused.value.constraint == constraint


def test_given_an_admin_session_then_it_is_found_until_revoked(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.admin_sessions.insert("s" * 64, created=T0, expires_at=T0 + 60)
        uow.admin_sessions.insert("n" * 64, created=T0, expires_at=T0 + 60, operator="Ada")
        uow.commit()
    with backend.uow() as uow:
        assert uow.admin_sessions.get("s" * 64) == SessionRecord(
            expires_at=T0 + 60, revoked_at=None
        )
        assert uow.admin_sessions.get("n" * 64) == SessionRecord(
            expires_at=T0 + 60, revoked_at=None, operator="Ada"
        )
        assert uow.admin_sessions.get("nobody") is None
        uow.admin_sessions.revoke("s" * 64, now=T0 + 5)
        uow.admin_sessions.revoke("s" * 64, now=T0 + 9)  # revoked once: the first time stays
        uow.commit()
    with backend.uow() as uow:
        assert uow.admin_sessions.get("s" * 64) == SessionRecord(
            expires_at=T0 + 60, revoked_at=T0 + 5
        )


def action(n: int, *, target_id: str = "evt_1", reason: str = "why") -> OperatorAction:
    return OperatorAction(
        id=f"oa_{n:04d}",
        created=T0 + n,
        actor="Ada",
        action="retry",
        target_type="event",
        target_id=target_id,
        reason=reason,
        outcome="processed" if n % 2 else None,
    )


def test_given_operator_actions_then_they_list_newest_first_by_target_and_page(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        for n in range(1, 6):
            uow.admin_sessions.record_action(action(n, target_id="evt_a" if n % 2 else "evt_b"))
        uow.commit()
    with backend.uow() as uow:
        store = uow.admin_sessions

        def ids(**kw: object) -> list[str]:
            query = {"target_type": None, "target_id": None, "limit": 10, "starting_after": None}
            return [a.id for a in store.actions(**{**query, **kw})]  # type: ignore[arg-type]

        assert ids() == ["oa_0005", "oa_0004", "oa_0003", "oa_0002", "oa_0001"]
        assert ids(target_id="evt_a") == ["oa_0005", "oa_0003", "oa_0001"]
        assert ids(target_type="order") == []
        assert ids(limit=2, starting_after="oa_0004") == ["oa_0003", "oa_0002"]
        assert store.actions(
            target_type="event", target_id="evt_b", limit=1, starting_after=None
        ) == [action(4, target_id="evt_b")]


@pytest.mark.parametrize(
    ("bad", "constraint"),
    [
        (action(1, reason=""), "ck_operator_actions_reason_given"),
        (action(1), "pk_operator_actions"),
    ],
)
def test_given_an_action_without_a_reason_or_twice_then_it_is_refused(
    backend: Backend, bad: OperatorAction, constraint: str
) -> None:
    with backend.uow() as uow:
        uow.admin_sessions.record_action(action(1))
        uow.commit()
    with pytest.raises(errors.ConstraintViolation) as refused, backend.uow() as uow:
        uow.admin_sessions.record_action(bad)
    assert refused.value.constraint == constraint
    with backend.uow() as uow:
        assert (
            len(
                uow.admin_sessions.actions(
                    target_type=None, target_id=None, limit=10, starting_after=None
                )
            )
            == 1
        )


def test_given_reversals_settled_on_two_accounts_orders_then_each_account_sees_its_own(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        for order_id, account_id in (("ord_a", "user_a"), ("ord_b", "user_b")):
            uow.orders.ensure_locked(new_order(order_id=order_id))
            uow.orders.update(order_id, account_id=account_id)
        late, _ = uow.reversals.ensure_locked(reversal("refund:re_2", created=T0 + 9))
        first, _ = uow.reversals.ensure_locked(reversal("dispute:dp_1"))
        other, _ = uow.reversals.ensure_locked(reversal("refund:re_3"))
        uow.reversals.ensure_locked(reversal("refund:re_kept"))  # not settled: no order yet
        uow.reversals.update(late.id, order_id="ord_a")
        uow.reversals.update(first.id, order_id="ord_a")
        uow.reversals.update(other.id, order_id="ord_b")
        uow.commit()
    with backend.uow() as uow:
        assert [r.key for r in uow.reversals.of_account("user_a")] == [
            "dispute:dp_1",
            "refund:re_2",
        ]
        assert [r.key for r in uow.reversals.of_account("user_b")] == ["refund:re_3"]
        assert uow.reversals.of_account("nobody") == []


def test_given_many_payment_intents_then_their_gates_are_made_once_and_name_their_orders(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.payments.ensure_locked("pi_2", now=T0)
        uow.orders.ensure_locked(new_order(order_id="ord_2", payment_intent_id="pi_2"))
        uow.payments.link("pi_2", "ord_2")
        uow.commit()
    with backend.uow() as uow:
        gates = uow.payments.ensure_locked_many(["pi_1", "pi_2", "pi_3", "pi_1"], now=T0 + 1)
        assert gates == {"pi_1": None, "pi_2": "ord_2", "pi_3": None}
        assert uow.payments.ensure_locked_many([], now=T0) == {}
        uow.orders.ensure_locked(new_order(order_id="ord_1", payment_intent_id="pi_1"))
        uow.orders.ensure_locked(new_order(order_id="ord_3", key="k3"))
        uow.payments.link_many([("pi_1", "ord_1"), ("pi_2", "ord_1"), ("pi_3", "ord_3")])
        uow.payments.link_many([])
        uow.commit()
    with backend.uow() as uow:
        assert uow.payments.ensure_locked_many(["pi_1", "pi_2", "pi_3"], now=T0 + 2) == {
            "pi_1": "ord_1",
            "pi_2": "ord_2",  # a payment keeps its first order
            "pi_3": "ord_3",
        }

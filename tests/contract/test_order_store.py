"""Orders: one per payment key, locked while fulfilled, listed newest first."""

from __future__ import annotations

from dataclasses import replace

import pytest

from billfold.domain import errors
from billfold.domain.orders import OrderRecord
from tests.contract.backends import T0, Backend, attempt, new_order


def test_given_a_new_key_then_ensure_locked_inserts_the_order_with_its_defaults(
    backend: Backend,
) -> None:
    order = new_order(key="checkout:cs_1", order_id="ord_1", payment_intent_id="pi_1")
    with backend.uow() as uow:
        created = uow.orders.ensure_locked(order)
        uow.commit()
    assert created == OrderRecord(
        id="ord_1",
        key="checkout:cs_1",
        kind="checkout",
        stripe_id="cs_ord_1",
        payment_intent_id="pi_1",
        account_id=None,
        package=None,
        plan=None,
        amount=499,
        currency="usd",
        customer_id="cus_1",
        customer_email="jenny@example.com",
        status="pending",
        status_reason=None,
        payment_error=None,
        refunded_amount=0,
        disputed_amount=0,
        resolved_by=None,
        last_event_id="evt_first",
        created=T0,
        updated=T0,
        fulfilled_at=None,
    )
    with backend.uow() as uow:
        assert uow.orders.get("ord_1") == created
        assert uow.orders.by_key("checkout:cs_1") == created
        assert uow.orders.lock_by_key("checkout:cs_1") == created


def test_given_an_order_with_the_key_then_ensure_locked_returns_it_unchanged(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        first = uow.orders.ensure_locked(new_order(key="checkout:cs_1", order_id="ord_1"))
        uow.orders.update("ord_1", status="fulfilled", account_id="user_1", updated=T0 + 5)
        uow.commit()
    with backend.uow() as uow:
        again = uow.orders.ensure_locked(
            new_order(key="checkout:cs_1", order_id="ord_2", amount=1, created=T0 + 9)
        )
        uow.commit()
    assert (again.id, again.status, again.account_id, again.amount, again.created) == (
        first.id,
        "fulfilled",
        "user_1",
        499,
        T0,
    )
    with backend.uow() as uow:
        assert uow.orders.get("ord_2") is None


def test_given_an_order_id_in_use_with_another_key_then_the_primary_key_refuses_it(
    backend: Backend,
) -> None:
    attempt(backend, lambda uow: uow.orders.ensure_locked(new_order(order_id="ord_1")))
    taken = new_order(key="checkout:cs_2", order_id="ord_1")
    with pytest.raises(errors.ConstraintViolation) as refused:
        attempt(backend, lambda uow: uow.orders.ensure_locked(taken))
    assert refused.value.constraint == "pk_orders"


def test_given_no_such_order_then_the_readers_answer_none(backend: Backend) -> None:
    with backend.uow() as uow:
        assert uow.orders.get("ord_x") is None
        assert uow.orders.by_key("checkout:x") is None
        assert uow.orders.lock_by_key("checkout:x") is None
        assert uow.orders.by_payment_intent("pi_x") is None


def test_given_an_order_with_a_payment_intent_then_it_is_found_by_it(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.orders.ensure_locked(new_order(order_id="ord_b", payment_intent_id="pi_1"))
        uow.orders.ensure_locked(new_order(order_id="ord_0", payment_intent_id="pi_2"))
        found = uow.orders.by_payment_intent("pi_1")
    assert found is not None
    assert found.id == "ord_b"


def test_given_a_payment_intent_of_one_order_then_a_second_order_cannot_claim_it(
    backend: Backend,
) -> None:
    """One payment, one order (issue 10): the database refuses a second order of one intent."""

    def second_claim() -> None:
        with backend.uow() as uow:
            uow.orders.ensure_locked(
                new_order(order_id="ord_b", key="k1", payment_intent_id="pi_1")
            )
            uow.orders.ensure_locked(
                new_order(order_id="ord_a", key="k2", payment_intent_id="pi_1")
            )
            uow.commit()

    with pytest.raises(errors.ConstraintViolation) as refused:
        second_claim()
    assert refused.value.constraint == "uq_orders_payment_intent_id"
    with backend.uow() as uow:
        assert uow.orders.get("ord_b") is None  # nothing of the refused transaction was kept


def test_given_values_then_update_writes_them_and_answers_the_order(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.orders.ensure_locked(new_order(order_id="ord_1"))
        updated = uow.orders.update(
            "ord_1",
            status="refunded",
            refunded_amount=499,
            disputed_amount=100,
            package="starter",
            resolved_by="admin",
            fulfilled_at=T0 + 1,
            updated=T0 + 2,
        )
        same = uow.orders.update("ord_1")
        uow.commit()
    with backend.uow() as uow:
        assert uow.orders.get("ord_1") == updated == same
    assert (updated.status, updated.refunded_amount, updated.package, updated.updated) == (
        "refunded",
        499,
        "starter",
        T0 + 2,
    )


def test_given_a_field_orders_do_not_have_then_update_refuses_it(backend: Backend) -> None:
    attempt(backend, lambda uow: uow.orders.ensure_locked(new_order(order_id="ord_1")))
    with pytest.raises(AssertionError):
        attempt(backend, lambda uow: uow.orders.update("ord_1", colour="red"))


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"status": "lost"}, "ck_orders_status_known"),
        ({"refunded_amount": -1}, "ck_orders_refunded_non_negative"),
    ],
    ids=["status", "refunded"],
)
def test_given_a_value_out_of_range_then_the_order_checks_refuse_it(
    backend: Backend, values: dict[str, object], constraint: str
) -> None:
    attempt(backend, lambda uow: uow.orders.ensure_locked(new_order(order_id="ord_1")))
    with pytest.raises(errors.ConstraintViolation) as refused:
        attempt(backend, lambda uow: uow.orders.update("ord_1", **values))
    assert refused.value.constraint == constraint


def test_given_another_order_s_key_then_update_is_refused_as_unique(backend: Backend) -> None:
    second = new_order(key="checkout:cs_2")
    with backend.uow() as uow:
        uow.orders.ensure_locked(new_order(key="checkout:cs_1"))
        uow.orders.ensure_locked(second)
        uow.commit()
    with pytest.raises(errors.ConstraintViolation) as refused:
        attempt(backend, lambda uow: uow.orders.update(second.id, key="checkout:cs_1"))
    assert refused.value.constraint == "uq_orders_key"


def test_given_no_such_order_then_update_raises_order_not_found(backend: Backend) -> None:
    with pytest.raises(errors.OrderNotFound):
        attempt(backend, lambda uow: uow.orders.update("ord_x", status="failed"))


def test_given_orders_then_list_pages_newest_first_by_status_and_account(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        for n in range(5):
            uow.orders.ensure_locked(new_order(order_id=f"ord_{n}"))
        uow.orders.update("ord_1", status="needs_attention", account_id="user_1")
        uow.orders.update("ord_3", status="needs_attention")
        uow.orders.update("ord_4", account_id="user_1")
        uow.commit()
    with backend.uow() as uow:
        every = uow.orders.list(status=None, account_id=None, limit=10, starting_after=None)
        first = uow.orders.list(status=None, account_id=None, limit=2, starting_after=None)
        rest = uow.orders.list(status=None, account_id=None, limit=10, starting_after="ord_3")
        attention = uow.orders.list(
            status="needs_attention", account_id=None, limit=10, starting_after=None
        )
        mine = uow.orders.list(status=None, account_id="user_1", limit=10, starting_after=None)
        both = uow.orders.list(
            status="needs_attention", account_id="user_1", limit=10, starting_after=None
        )
    assert [o.id for o in every] == ["ord_4", "ord_3", "ord_2", "ord_1", "ord_0"]
    assert [o.id for o in first] == ["ord_4", "ord_3"]
    assert [o.id for o in rest] == ["ord_2", "ord_1", "ord_0"]
    assert [o.id for o in attention] == ["ord_3", "ord_1"]
    assert [o.id for o in mine] == ["ord_4", "ord_1"]
    assert [o.id for o in both] == ["ord_1"]


def test_given_keys_and_ids_then_lock_many_answers_the_orders_there_in_id_order(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        b = uow.orders.ensure_locked(new_order(order_id="ord_b", key="checkout:cs_b"))
        a = uow.orders.ensure_locked(new_order(order_id="ord_a", key="checkout:cs_a"))
        c = uow.orders.ensure_locked(new_order(order_id="ord_c", key="checkout:cs_c"))
        uow.commit()
    with backend.uow() as uow:
        found = uow.orders.lock_many(
            keys=["checkout:cs_b", "checkout:cs_none"], ids=["ord_c", "ord_a"]
        )
        assert found == [a, b, c]
        assert uow.orders.lock_many(keys=["checkout:cs_b"], ids=["ord_b"]) == [b]
        assert uow.orders.lock_many(keys=[], ids=[]) == []


def test_given_new_orders_then_insert_many_stores_them_as_they_are(backend: Backend) -> None:
    first = new_order(order_id="ord_1").record()
    fulfilled = replace(
        new_order(order_id="ord_2", payment_intent_id="pi_2").record(),
        status="fulfilled",
        account_id="acct_1",
        package="starter",
        fulfilled_at=T0 + 5,
        updated=T0 + 5,
    )
    with backend.uow() as uow:
        uow.orders.insert_many([first, fulfilled])
        uow.orders.insert_many([])
        uow.commit()
    with backend.uow() as uow:
        assert uow.orders.get("ord_1") == first
        assert uow.orders.get("ord_2") == fulfilled
        # The same as ensure_locked would have inserted.
        assert uow.orders.ensure_locked(new_order(order_id="ord_x", key=first.key)) == first


@pytest.mark.parametrize(
    ("key", "payment_intent_id", "constraint"),
    [
        ("checkout:cs_taken", None, "uq_orders_key"),
        ("checkout:cs_free", "pi_taken", "uq_orders_payment_intent_id"),
    ],
)
def test_given_a_key_or_payment_intent_taken_then_insert_many_is_refused(
    backend: Backend, key: str, payment_intent_id: str | None, constraint: str
) -> None:
    with backend.uow() as uow:
        uow.orders.ensure_locked(
            new_order(order_id="ord_1", key="checkout:cs_taken", payment_intent_id="pi_taken")
        )
        uow.commit()
    record = new_order(order_id="ord_2", key=key, payment_intent_id=payment_intent_id).record()
    with pytest.raises(errors.ConstraintViolation) as refused:
        attempt(backend, lambda uow: uow.orders.insert_many([record]))
    assert refused.value.constraint == constraint


def test_given_changes_then_update_many_writes_each_as_update_would(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.orders.ensure_locked(new_order(order_id="ord_1"))
        uow.orders.ensure_locked(new_order(order_id="ord_2"))
        uow.commit()
    with backend.uow() as uow:
        uow.orders.update_many(
            [
                ("ord_1", {"status": "fulfilled", "account_id": "acct_1", "updated": T0 + 1}),
                ("ord_2", {"status": "expired", "updated": T0 + 2}),
                ("ord_1", {"package": "starter"}),
                ("ord_2", {}),
            ]
        )
        uow.commit()
    with backend.uow() as uow:
        one, two = uow.orders.get("ord_1"), uow.orders.get("ord_2")
    assert one is not None
    assert two is not None
    assert (one.status, one.account_id, one.package, one.updated) == (
        "fulfilled",
        "acct_1",
        "starter",
        T0 + 1,
    )
    assert (two.status, two.updated) == ("expired", T0 + 2)

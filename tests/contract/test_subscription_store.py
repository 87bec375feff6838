"""Subscriptions and the accounts a sync walks: the same on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from billfold.domain import errors
from tests.contract.backends import T0, Backend, disagrees

TOO_LONG = disagrees("sqlite", reason="SQLite does not enforce VARCHAR lengths")


def test_given_a_new_subscription_id_then_an_empty_copy_is_made_once(backend: Backend) -> None:
    with backend.uow() as uow:
        first = uow.subscriptions.ensure_locked("sub_1", now=T0)
        assert (first.status, first.plan, first.state_created, first.quantity) == (None, None, 0, 1)
        again = uow.subscriptions.ensure_locked("sub_1", now=T0 + 5)
        assert again == first
        uow.commit()
    with backend.uow() as uow:
        assert uow.subscriptions.get("sub_1") == first
        assert uow.subscriptions.get("sub_missing") is None


def test_given_an_update_then_every_field_reads_back_as_written(backend: Backend) -> None:
    values = {
        "account_id": "user_1",
        "customer_id": "cus_1",
        "plan": "pro",
        "status": "past_due",
        "item_id": "si_1",
        "price_ids": ("price_pro", "price_extra"),
        "quantity": 3,
        "current_period_start": T0,
        "current_period_end": T0 + 30 * 86_400,
        "cancel_at_period_end": True,
        "cancel_at": T0 + 99,
        "canceled_at": T0 + 9,
        "ended_at": None,
        "trial_start": T0 - 5,
        "trial_end": T0,
        "pause_behavior": "keep_as_draft",
        "pause_resumes_at": T0 + 7,
        "pending_update": True,
        "livemode": True,
        "state_created": T0 + 11,
        "past_due_since": T0 + 12,
        "grace_invoice_id": "in_1",
        "grace_lapse_notified": T0 + 3 * 86_400,
        "note": "trial_will_end at 1800000000",
        "updated": T0 + 13,
    }
    with backend.uow() as uow:
        uow.subscriptions.ensure_locked("sub_1", now=T0)
        written = uow.subscriptions.update("sub_1", **values)
        uow.commit()
    with backend.uow() as uow:
        found = uow.subscriptions.get("sub_1")
    assert found == written
    assert found is not None
    assert {k: getattr(found, k) for k in values} == values


def test_given_accounts_and_customers_then_the_lists_are_as_the_port_says(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        for n, (sub, account, customer, status) in enumerate(
            [
                ("sub_a", "user_1", "cus_1", "active"),
                ("sub_b", "user_1", "cus_1", "canceled"),
                ("sub_c", "user_2", "cus_2", "active"),
            ]
        ):
            uow.subscriptions.ensure_locked(sub, now=T0 + n)
            uow.subscriptions.update(
                sub, account_id=account, customer_id=customer, status=status, updated=T0 + n
            )
        uow.commit()
    with backend.uow() as uow:
        assert [s.id for s in uow.subscriptions.of_account("user_1")] == ["sub_b", "sub_a"]
        assert [s.id for s in uow.subscriptions.of_customer("cus_2")] == ["sub_c"]
        assert uow.subscriptions.of_account("user_none") == []
        listed = uow.subscriptions.list(status=None, account_id=None, limit=10, starting_after=None)
        assert [s.id for s in listed] == ["sub_c", "sub_b", "sub_a"]
        active = uow.subscriptions.list(
            status="active", account_id=None, limit=10, starting_after=None
        )
        assert [s.id for s in active] == ["sub_c", "sub_a"]
        page = uow.subscriptions.list(
            status=None, account_id="user_1", limit=1, starting_after="sub_b"
        )
        assert [s.id for s in page] == ["sub_a"]


def test_given_accounts_then_those_with_a_customer_are_walked_in_id_order(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        for account, customer in [("u_3", "cus_3"), ("u_1", "cus_1"), ("u_2", None)]:
            uow.accounts.upsert(account, now=T0)
            if customer:
                uow.accounts.link_customer(account, customer, now=T0)
        uow.commit()
    with backend.uow() as uow:
        first = uow.accounts.with_customers(limit=1, starting_after=None)
        rest = uow.accounts.with_customers(limit=10, starting_after=first[-1].id)
    assert [a.id for a in first + rest] == ["u_1", "u_3"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("status", "x" * 33, marks=TOO_LONG),
        pytest.param("plan", "p" * 129, marks=TOO_LONG),
        ("quantity", -1),
        ("state_created", 2**63),
    ],
)
def test_given_a_value_out_of_range_then_the_update_is_refused(
    backend: Backend, field: str, value: object
) -> None:
    with backend.uow() as uow:
        uow.subscriptions.ensure_locked("sub_1", now=T0)
        uow.commit()
    # A store's own error surfaces as billfold's when its transaction ends.
    refused = (errors.ValidationError, errors.ConstraintViolation)
    with pytest.raises(refused), backend.uow() as uow:
        uow.subscriptions.update("sub_1", **{field: value})
    with backend.uow() as uow:
        found = uow.subscriptions.get("sub_1")
    assert found is not None
    assert (found.status, found.plan, found.quantity) == (None, None, 1)

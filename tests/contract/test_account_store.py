"""Accounts: created on first reference; one Stripe customer each; found by customer or e-mail."""

from __future__ import annotations

import pytest

from billfold.domain import errors
from billfold.domain.records import AccountRecord
from tests.contract.backends import T0, Backend, attempt


def account(backend: Backend, account_id: str) -> AccountRecord:
    with backend.uow() as uow:
        record = uow.accounts.get(account_id)
    assert record is not None, account_id
    return record


def test_given_an_upsert_then_the_account_exists_with_its_values(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert(
            "user_1",
            now=T0,
            email="a@example.com",
            stripe_customer_id="cus_1",
            metadata={"plan": "pro", "n": [1, 2]},
        )
        uow.commit()
    assert account(backend, "user_1") == AccountRecord(
        id="user_1",
        email="a@example.com",
        stripe_customer_id="cus_1",
        metadata={"plan": "pro", "n": [1, 2]},
        created=T0,
        updated=T0,
    )
    with backend.uow() as uow:
        assert uow.accounts.get("nobody") is None


def test_given_an_existing_account_then_upsert_changes_only_the_values_given(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0, email="a@example.com", metadata={"a": 1})
        uow.accounts.upsert("user_1", now=T0 + 5)
        uow.accounts.upsert("user_1", now=T0 + 9, email=None, metadata={"b": 2})
        uow.commit()
    record = account(backend, "user_1")
    assert (record.email, record.metadata, record.created, record.updated) == (
        None,
        {"b": 2},
        T0,
        T0 + 9,
    )


def test_given_a_metadata_map_then_a_reader_gets_its_own_copy(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0, metadata={"a": 1})
        first = uow.accounts.get("user_1")
        assert first is not None
        first.metadata["a"] = 2  # type: ignore[index]  # a Mapping, but a dict at run time
        uow.commit()
    assert account(backend, "user_1").metadata == {"a": 1}


def test_given_a_customer_linked_to_one_account_then_another_cannot_take_it(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0, stripe_customer_id="cus_1")
        uow.commit()
    with pytest.raises(errors.ConstraintViolation) as refused:
        attempt(
            backend, lambda uow: uow.accounts.upsert("user_2", now=T0, stripe_customer_id="cus_1")
        )
    assert refused.value.constraint == "uq_accounts_stripe_customer_id"
    with backend.uow() as uow:
        found = uow.accounts.by_stripe_customer("cus_1")
        assert uow.accounts.by_stripe_customer("cus_x") is None
    assert found is not None
    assert found.id == "user_1"


def test_given_an_account_then_its_own_customer_may_be_set_again(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0, stripe_customer_id="cus_1")
        uow.accounts.upsert("user_1", now=T0 + 1, stripe_customer_id="cus_1")
        uow.accounts.upsert("user_2", now=T0, stripe_customer_id=None)
        uow.accounts.upsert("user_3", now=T0, stripe_customer_id=None)
        uow.commit()
    assert account(backend, "user_1").stripe_customer_id == "cus_1"


def test_given_link_customer_then_it_links_once_and_never_steals(backend: Backend) -> None:
    with backend.uow() as uow:
        for account_id in ("user_1", "user_2", "user_3"):
            uow.accounts.upsert(account_id, now=T0)
        uow.accounts.link_customer("user_1", "cus_1", now=T0 + 1)
        uow.accounts.link_customer("user_1", "cus_2", now=T0 + 2)  # keeps its first
        uow.accounts.link_customer("user_2", "cus_1", now=T0 + 3)  # cus_1 is user_1's
        uow.accounts.link_customer("user_3", "cus_3", now=T0 + 4)
        uow.accounts.link_customer("nobody", "cus_4", now=T0 + 5)
        uow.commit()
    linked = {a: account(backend, a) for a in ("user_1", "user_2", "user_3")}
    assert {a: (r.stripe_customer_id, r.updated) for a, r in linked.items()} == {
        "user_1": ("cus_1", T0 + 1),
        "user_2": (None, T0),
        "user_3": ("cus_3", T0 + 4),
    }
    with backend.uow() as uow:
        assert uow.accounts.get("nobody") is None


def test_given_fill_email_then_it_sets_an_email_only_where_there_is_none(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0)
        uow.accounts.upsert("user_2", now=T0, email="two@example.com")
        uow.accounts.fill_email("user_1", "one@example.com", now=T0 + 1)
        uow.accounts.fill_email("user_1", "other@example.com", now=T0 + 2)
        uow.accounts.fill_email("user_2", "other@example.com", now=T0 + 3)
        uow.accounts.fill_email("nobody", "x@example.com", now=T0 + 4)
        uow.commit()
    one, two = account(backend, "user_1"), account(backend, "user_2")
    assert (one.email, one.updated) == ("one@example.com", T0 + 1)
    assert (two.email, two.updated) == ("two@example.com", T0)


def test_given_emails_in_any_case_then_by_email_finds_them_and_at_most_two(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0, email="Jenny@Example.com")
        uow.accounts.upsert("user_2", now=T0, email="sam@example.com")
        uow.accounts.upsert("user_3", now=T0, email="SAM@example.com")
        uow.accounts.upsert("user_4", now=T0, email="Sam@Example.COM")
        uow.accounts.upsert("user_5", now=T0)
        uow.commit()
    with backend.uow() as uow:
        jenny = [a.id for a in uow.accounts.by_email("jenny@example.com")]
        jenny_upper = [a.id for a in uow.accounts.by_email("JENNY@EXAMPLE.COM")]
        sam = uow.accounts.by_email("sam@example.com")
        nobody = uow.accounts.by_email("nobody@example.com")
    assert jenny == jenny_upper == ["user_1"]
    assert len(sam) == 2
    assert {a.id for a in sam} <= {"user_2", "user_3", "user_4"}
    assert nobody == []


def test_given_a_non_ascii_email_then_by_email_is_case_insensitive_too(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.accounts.upsert("user_1", now=T0, email="ÉMILE@Example.com")
        uow.commit()
    with backend.uow() as uow:
        found = [a.id for a in uow.accounts.by_email("émile@example.com")]
    assert found == ["user_1"]


# --- search (``GET /v1/accounts``) -----------------------------------------------------------------


def given_accounts_to_search(backend: Backend) -> None:
    """Five accounts created a second apart (two in the same second), oldest first."""
    with backend.uow() as uow:
        uow.accounts.upsert("acme", now=T0, email="Ops@Acme.example", stripe_customer_id="cus_A1")
        uow.accounts.upsert("acme_eu", now=T0 + 1, email="eu@acme.example")
        uow.accounts.upsert("bob", now=T0 + 2, email="ops@acme.example", stripe_customer_id="cus_B")
        uow.accounts.upsert("carol", now=T0 + 2, stripe_customer_id="cus_C")
        uow.accounts.upsert("dave", now=T0 + 3, email="acme")
        uow.commit()


def searched(backend: Backend, **filters: object) -> list[str]:
    with backend.uow() as uow:
        return [a.id for a in uow.accounts.search(limit=100, **filters)]  # type: ignore[arg-type]


def test_given_accounts_then_search_lists_them_newest_first_by_created_then_id(
    backend: Backend,
) -> None:
    given_accounts_to_search(backend)
    assert searched(backend) == ["dave", "carol", "bob", "acme_eu", "acme"]


def test_given_accounts_then_search_filters_by_email_ignoring_case_and_by_customer_exactly(
    backend: Backend,
) -> None:
    given_accounts_to_search(backend)
    assert searched(backend, email="OPS@acme.example") == ["bob", "acme"]
    assert searched(backend, email="ops@acme") == []
    assert searched(backend, stripe_customer_id="cus_C") == ["carol"]
    assert searched(backend, stripe_customer_id="cus_c") == []
    assert searched(backend, stripe_customer_id="cus_A") == []
    assert searched(backend, email="ops@acme.example", stripe_customer_id="cus_B") == ["bob"]


def test_given_accounts_then_a_query_matches_an_id_prefix_an_email_or_a_customer(
    backend: Backend,
) -> None:
    given_accounts_to_search(backend)
    assert searched(backend, query="acme") == ["dave", "acme_eu", "acme"]  # prefix, e-mail
    assert searched(backend, query="acme_") == ["acme_eu"]
    assert searched(backend, query="ACME") == ["dave"]  # an id prefix is case-sensitive
    assert searched(backend, query="eu@ACME.example") == ["acme_eu"]
    assert searched(backend, query="cus_B") == ["bob"]
    assert searched(backend, query="cus_") == []  # no customer id prefix
    assert searched(backend, query="a%") == []  # no wildcards
    assert searched(backend, query="_") == []
    assert searched(backend, query="nobody") == []


def test_given_accounts_then_search_pages_after_a_cursor_and_up_to_a_limit(
    backend: Backend,
) -> None:
    given_accounts_to_search(backend)
    with backend.uow() as uow:
        first = uow.accounts.search(limit=2)
        assert [a.id for a in first] == ["dave", "carol"]
        last = first[-1]
        second = uow.accounts.search(limit=2, starting_after=(last.created, last.id))
        assert [a.id for a in second] == ["bob", "acme_eu"]
        assert [a.id for a in uow.accounts.search(limit=2, starting_after=(T0, "acme"))] == []
    assert first[0] == account(backend, "dave")


def test_given_many_links_and_emails_then_each_is_made_in_order_as_one_would_be(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.ledger.ensure_accounts([("acct_a", T0), ("acct_b", T0), ("acct_a", T0 + 9)])
        uow.ledger.ensure_accounts([])
        uow.accounts.link_customers(
            [("acct_a", "cus_1", T0 + 1), ("acct_b", "cus_1", T0 + 1), ("acct_b", "cus_2", T0 + 2)]
        )
        uow.accounts.fill_emails(
            [("acct_a", "a@example.com", T0 + 3), ("acct_a", "x@example.com", T0 + 4)]
        )
        uow.accounts.link_customers([])
        uow.accounts.fill_emails([])
        uow.commit()
    a, b = account(backend, "acct_a"), account(backend, "acct_b")
    assert (a.stripe_customer_id, a.email, a.created) == ("cus_1", "a@example.com", T0)
    assert (b.stripe_customer_id, b.email) == ("cus_2", None)  # cus_1 was acct_a's already

"""Accounts in memory (implements ``service.ports.AccountStore``, as ``SqlAccountStore``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from billfold.adapters.memory import _tables as t
from billfold.adapters.memory._tables import AccountRow, Work, refuse
from billfold.domain.records import AccountRecord

MAX_BY_EMAIL: Final = 2
"""``by_email`` reads two rows at most: one is a match, two are ambiguous."""
_COLUMNS: Final = frozenset({"email", "stripe_customer_id", "metadata", "created"})
"""What ``upsert`` may set (the id names the row; ``updated`` is ``now``)."""


class MemoryAccountStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def get(self, account_id: str) -> AccountRecord | None:
        row = self._work.tables.accounts.get(account_id)
        return None if row is None else _account(row)

    def by_stripe_customer(self, customer_id: str) -> AccountRecord | None:
        for row in self._work.tables.accounts.values():
            if row.stripe_customer_id == customer_id:
                return _account(row)
        return None

    def by_email(self, email: str) -> list[AccountRecord]:
        wanted = email.lower()
        found = [
            _account(row)
            for row in self._work.tables.accounts.values()
            if row.email is not None and row.email.lower() == wanted
        ]
        return found[:MAX_BY_EMAIL]

    def upsert(self, account_id: str, *, now: int, **values: Any) -> None:
        unknown = set(values) - _COLUMNS
        assert not unknown, unknown
        t.varchar((account_id, t.ACCOUNT))
        t.bigint(now)
        accounts = self._work.tables.accounts
        current = accounts.get(account_id) or AccountRow(
            id=account_id,
            email=None,
            stripe_customer_id=None,
            metadata="{}",
            created=now,
            updated=now,
        )
        accounts[account_id] = current  # INSERT ... ON CONFLICT DO NOTHING
        if not values:
            return
        changes = dict(values)
        if "metadata" in changes:
            changes["metadata"] = json.dumps(changes["metadata"])
        row = replace(current, updated=now, **changes)
        self._check(row, current)
        accounts[account_id] = row

    def link_customer(self, account_id: str, customer_id: str, *, now: int) -> None:
        """Link once: an account keeps the first Stripe customer it was linked to, and a customer
        belongs to one account."""
        accounts = self._work.tables.accounts
        row = accounts.get(account_id)
        if row is None or row.stripe_customer_id is not None:
            return
        if any(other.stripe_customer_id == customer_id for other in accounts.values()):
            return
        updated = replace(row, stripe_customer_id=customer_id, updated=now)
        self._check(updated, row)
        accounts[account_id] = updated

    def link_customers(self, links: Sequence[tuple[str, str, int]]) -> None:
        for account_id, customer_id, now in links:
            self.link_customer(account_id, customer_id, now=now)

    def fill_emails(self, fills: Sequence[tuple[str, str, int]]) -> None:
        for account_id, email, now in fills:
            self.fill_email(account_id, email, now=now)

    def with_customers(self, *, limit: int, starting_after: str | None) -> list[AccountRecord]:
        rows = sorted(
            (
                row
                for row in self._work.tables.accounts.values()
                if row.stripe_customer_id is not None
                and (starting_after is None or row.id > starting_after)
            ),
            key=lambda row: row.id,
        )
        return [_account(row) for row in rows[:limit]]

    def search(
        self,
        *,
        email: str | None = None,
        stripe_customer_id: str | None = None,
        query: str | None = None,
        limit: int,
        starting_after: tuple[int, str] | None = None,
    ) -> list[AccountRecord]:
        def lower(value: str | None) -> str | None:
            return None if value is None else value.lower()

        def matches(row: AccountRow) -> bool:
            if email is not None and lower(row.email) != email.lower():
                return False
            if stripe_customer_id is not None and row.stripe_customer_id != stripe_customer_id:
                return False
            if query is not None and not (
                row.id.startswith(query)
                or lower(row.email) == query.lower()
                or row.stripe_customer_id == query
            ):
                return False
            return starting_after is None or (row.created, row.id) < starting_after

        rows = sorted(
            (row for row in self._work.tables.accounts.values() if matches(row)),
            key=lambda row: (row.created, row.id),
            reverse=True,
        )
        return [_account(row) for row in rows[:limit]]

    def fill_email(self, account_id: str, email: str, *, now: int) -> None:
        """Record an e-mail on an account that has none."""
        accounts = self._work.tables.accounts
        row = accounts.get(account_id)
        if row is None or row.email is not None:
            return
        updated = replace(row, email=email, updated=now)
        self._check(updated, row)
        accounts[account_id] = updated

    def _check(self, row: AccountRow, before: AccountRow) -> None:
        t.varchar((row.id, t.ACCOUNT), (row.email, t.EMAIL), (row.stripe_customer_id, 255))
        t.bigint(row.created, row.updated)
        accounts = self._work.tables.accounts
        customer = row.stripe_customer_id
        if customer is not None and any(
            other.stripe_customer_id == customer
            for other in accounts.values()
            if other.id != before.id
        ):
            refuse(t.UQ_ACCOUNTS_STRIPE_CUSTOMER_ID)


def _account(row: AccountRow) -> AccountRecord:
    return AccountRecord(
        id=row.id,
        email=row.email,
        stripe_customer_id=row.stripe_customer_id,
        metadata=dict(json.loads(row.metadata) or {}),
        created=row.created,
        updated=row.updated,
    )

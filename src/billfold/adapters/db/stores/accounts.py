"""Accounts in SQL (implements ``service.ports.AccountStore``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.adapters.db.stores._raw import Raw
from billfold.adapters.db.stores._sql import P, insert_for, is_pg, per_dialect
from billfold.domain.records import AccountRecord

PG_FILL_EMAILS = (
    "UPDATE accounts AS c SET email = v.e, updated = v.n FROM json_to_recordset(%s::json) AS "
    "v(a varchar, e varchar, n bigint) WHERE c.id = v.a AND c.email IS NULL"
)


class _Statements:
    def __init__(self, pg: bool) -> None:
        ac = t.accounts.c
        self.get = sa.select(t.accounts).where(ac.id == P("w_id"))
        self.by_customer = sa.select(t.accounts).where(ac.stripe_customer_id == P("w_customer"))
        self.by_email = (
            sa.select(t.accounts).where(sa.func.lower(ac.email) == P("w_email")).limit(2)
        )
        self.ensure = insert_for(pg)(t.accounts).on_conflict_do_nothing()
        other = t.accounts.alias("other")
        taken = sa.exists().where(other.c.stripe_customer_id == P("w_customer"))
        self.link_customer = (
            t.accounts.update()
            .where(ac.id == P("w_id"), ac.stripe_customer_id.is_(None), ~taken)
            .values(stripe_customer_id=P("w_customer"), updated=P("updated"))
        )
        self.fill_email = (
            t.accounts.update()
            .where(ac.id == P("w_id"), ac.email.is_(None))
            .values(email=P("email"), updated=P("updated"))
        )


statements = per_dialect(_Statements)


class SqlAccountStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.pg = is_pg(conn)
        self.sql = statements(self.pg)

    def get(self, account_id: str) -> AccountRecord | None:
        row = self.conn.execute(self.sql.get, {"w_id": account_id}).first()
        return None if row is None else _account(row)

    def by_stripe_customer(self, customer_id: str) -> AccountRecord | None:
        row = self.conn.execute(self.sql.by_customer, {"w_customer": customer_id}).first()
        return None if row is None else _account(row)

    def by_email(self, email: str) -> list[AccountRecord]:
        rows = self.conn.execute(self.sql.by_email, {"w_email": email.lower()})
        return [_account(r) for r in rows]

    def upsert(self, account_id: str, *, now: int, **values: Any) -> None:
        c = t.accounts.c
        self.conn.execute(
            self.sql.ensure, {"id": account_id, "metadata": {}, "created": now, "updated": now}
        )
        if values:
            self.conn.execute(
                t.accounts.update().where(c.id == account_id).values(updated=now, **values)
            )

    def link_customer(self, account_id: str, customer_id: str, *, now: int) -> None:
        """Link once: an account keeps the first Stripe customer it was linked to, and a customer
        belongs to one account."""
        self.conn.execute(
            self.sql.link_customer, {"w_id": account_id, "w_customer": customer_id, "updated": now}
        )

    def link_customers(self, links: Sequence[tuple[str, str, int]]) -> None:
        """One statement, its rows sent at once, each decided after the one before."""
        if links:
            self.conn.execute(
                self.sql.link_customer,
                [{"w_id": a, "w_customer": c, "updated": now} for a, c, now in links],
            )

    def with_customers(self, *, limit: int, starting_after: str | None) -> list[AccountRecord]:
        c = t.accounts.c
        stmt = sa.select(t.accounts).where(c.stripe_customer_id.is_not(None))
        if starting_after:
            stmt = stmt.where(c.id > starting_after)
        return [_account(r) for r in self.conn.execute(stmt.order_by(c.id).limit(limit))]

    def search(
        self,
        *,
        email: str | None = None,
        stripe_customer_id: str | None = None,
        query: str | None = None,
        limit: int,
        starting_after: tuple[int, str] | None = None,
    ) -> list[AccountRecord]:
        c = t.accounts.c
        stmt = sa.select(t.accounts)
        if email is not None:
            stmt = stmt.where(sa.func.lower(c.email) == email.lower())
        if stripe_customer_id is not None:
            stmt = stmt.where(c.stripe_customer_id == stripe_customer_id)
        if query is not None:
            # substr, not LIKE: exact and case-sensitive on both dialects, no wildcards to escape.
            stmt = stmt.where(
                sa.or_(
                    sa.func.substr(c.id, 1, len(query)) == query,
                    sa.func.lower(c.email) == query.lower(),
                    c.stripe_customer_id == query,
                )
            )
        if starting_after is not None:
            created, last_id = starting_after
            stmt = stmt.where(
                sa.or_(c.created < created, sa.and_(c.created == created, c.id < last_id))
            )
        stmt = stmt.order_by(c.created.desc(), c.id.desc()).limit(limit)
        return [_account(r) for r in self.conn.execute(stmt)]

    def fill_email(self, account_id: str, email: str, *, now: int) -> None:
        """Record an e-mail on an account that has none."""
        self.conn.execute(self.sql.fill_email, {"w_id": account_id, "email": email, "updated": now})

    def fill_emails(self, fills: Sequence[tuple[str, str, int]]) -> None:
        """An account takes the first e-mail it is given: one statement."""
        if not fills:
            return
        if self.pg:
            first: dict[str, tuple[str, int]] = {}
            for account_id, email, now in fills:
                first.setdefault(account_id, (email, now))
            document = json.dumps([{"a": a, "e": e, "n": n} for a, (e, n) in first.items()])
            Raw(self.conn).send(PG_FILL_EMAILS, (document,)).count()
            return
        self.conn.execute(
            self.sql.fill_email,
            [{"w_id": a, "email": email, "updated": now} for a, email, now in fills],
        )


def _account(row: Any) -> AccountRecord:
    m = row._mapping
    return AccountRecord(
        id=m["id"],
        email=m["email"],
        stripe_customer_id=m["stripe_customer_id"],
        metadata=dict(m["metadata"] or {}),
        created=m["created"],
        updated=m["updated"],
    )

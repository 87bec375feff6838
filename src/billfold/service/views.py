"""The read side: what the API, the CLI and the pages show, as records and pages.

Each query runs in its own unit of work and writes nothing. Lists answer newest first, a page at a
time (``limit`` plus one row is read to know whether there is more).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from billfold.domain import catalog as cat
from billfold.domain import errors
from billfold.domain import ledger as rules
from billfold.domain.ledger import HoldStatus
from billfold.domain.orders import OrderRecord, OrderStatus
from billfold.domain.records import (
    AccountRecord,
    EventAttempt,
    EventRecord,
    EventStatus,
    GrantRecord,
    HoldRecord,
    Page,
    TimeRange,
    TransactionRecord,
)
from billfold.service import explain as explaining
from billfold.service.ledger import expiry
from billfold.service.ledger.movement import check_unit
from billfold.service.ports import BalanceRow, Clock, UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Balances:
    """Per unit: what can be spent now, what holds reserve, what is owed. Every catalog unit is
    listed, with 0 where nothing was ever granted."""

    available: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    debt: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountView:
    account_id: str
    record: AccountRecord | None
    """None for an account nothing has referenced yet."""
    balances: Balances
    low_balance: dict[str, int] = field(default_factory=dict)
    """Per unit with a threshold: the account's own, else the catalog's."""
    low_alerts: dict[str, bool] = field(default_factory=dict)
    """Per unit with a threshold: whether ``balance.low`` was sent and not yet restored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Operations:
    """The inbox as operators watch it: events waiting per status, when the oldest waiting one
    arrived, and the latest worker heartbeat (billfold's clock, seconds)."""

    now: int
    backlog: dict[str, int]
    oldest_waiting: int | None
    last_heartbeat: int | None

    @property
    def oldest_waiting_age(self) -> int:
        return 0 if self.oldest_waiting is None else max(0, self.now - self.oldest_waiting)

    @property
    def heartbeat_age(self) -> int | None:
        return None if self.last_heartbeat is None else max(0, self.now - self.last_heartbeat)


def page(rows: list[T], limit: int) -> Page[T]:
    return Page(data=tuple(rows[:limit]), has_more=len(rows) > limit)


def _as_of(hold: HoldRecord, now: int) -> HoldRecord:
    status = hold.status_at(now)
    return hold if status == hold.status else replace(hold, status=status)


class Views:
    def __init__(self, uow_factory: UnitOfWorkFactory, catalog: cat.Catalog, clock: Clock) -> None:
        self._uow = uow_factory
        self.catalog = catalog
        self._clock = clock

    # --- accounts ------------------------------------------------------------------------------

    def balances(self, account_id: str) -> Balances:
        now = self._clock()
        with self._uow() as uow:
            return self._balances(uow, account_id, now)

    def _balances(self, uow: UnitOfWork, account_id: str, now: int) -> Balances:
        views = expiry.balance_views(uow.ledger, account_id, now)
        names = [u.name for u in self.catalog.units]
        names += sorted(set(views) - set(names))
        zero = rules.BalanceView(unit="", available=0)
        return Balances(
            available={u: views.get(u, zero).available for u in names},
            held={u: views.get(u, zero).held for u in names},
            debt={u: views.get(u, zero).debt for u in names},
        )

    def account(self, account_id: str, *, must_exist: bool) -> AccountView:
        """The account and its balances; AccountNotFound for one nothing has referenced when
        ``must_exist`` (an end user's own account always exists for them, if empty)."""
        rules.check_account_id(account_id)
        now = self._clock()
        with self._uow() as uow:
            record = self._must(uow, account_id, must_exist)
            return self._account(uow, account_id, record, now)

    def _account(
        self, uow: UnitOfWork, account_id: str, record: AccountRecord | None, now: int
    ) -> AccountView:
        rows = uow.ledger.balances(account_id)
        return AccountView(
            account_id=account_id,
            record=record,
            balances=self._balances(uow, account_id, now),
            **self._alerts(rows),
        )

    def accounts(
        self,
        *,
        email: str | None = None,
        stripe_customer_id: str | None = None,
        query: str | None = None,
        limit: int = 10,
        starting_after: str | None = None,
    ) -> Page[AccountView]:
        """Accounts newest first, each with its balances; every filter given narrows (see
        ``AccountStore.search``). ``starting_after`` is an account id."""
        now = self._clock()
        with self._uow() as uow:
            after = None
            if starting_after:
                cursor = uow.accounts.get(starting_after)
                if cursor is None:
                    raise errors.CursorNotFound(starting_after)
                after = (cursor.created, cursor.id)
            rows = uow.accounts.search(
                email=email,
                stripe_customer_id=stripe_customer_id,
                query=query,
                limit=limit + 1,
                starting_after=after,
            )
            found = page(rows, limit)
            return Page(
                data=tuple(self._account(uow, r.id, r, now) for r in found.data),
                has_more=found.has_more,
            )

    def explain(
        self, account_id: str, unit: str | None = None, *, must_exist: bool
    ) -> explaining.Explanation:
        """What the balance of ``account_id`` in ``unit`` (default: the catalog's first unit) is
        made of; see :mod:`billfold.service.explain`."""
        rules.check_account_id(account_id)
        names = frozenset(u.name for u in self.catalog.units) or None
        if unit is None:
            if not self.catalog.units:
                raise errors.ValidationError("unit is required.", param="unit")
            unit = self.catalog.units[0].name
        check_unit(unit, names)
        now = self._clock()
        with self._uow() as uow:
            self._must(uow, account_id, must_exist)
            return explaining.explain(uow, account_id, unit, now)

    def _alerts(self, rows: list[BalanceRow]) -> dict[str, Any]:
        thresholds = dict(self.catalog.low_balances())
        alerts = dict.fromkeys(thresholds, False)
        for row in rows:
            if row.low_balance is not None:
                thresholds[row.unit] = row.low_balance
            if row.unit in thresholds:
                alerts[row.unit] = row.low_alert
        return {"low_balance": thresholds, "low_alerts": alerts}

    def grants(
        self,
        account_id: str,
        *,
        must_exist: bool,
        limit: int,
        starting_after: str | None,
        live_only: bool,
    ) -> Page[GrantRecord]:
        now = self._clock()
        with self._uow() as uow:
            self._must(uow, account_id, must_exist)
            if starting_after and not uow.ledger.has_grant(account_id, starting_after):
                raise errors.CursorNotFound(starting_after)
            rows = uow.ledger.list_grants(
                account_id,
                limit=limit + 1,
                starting_after=starting_after,
                live_only=live_only,
                now=now,
            )
        return page(rows, limit)

    def transactions(
        self, account_id: str, *, must_exist: bool, limit: int, starting_after: str | None
    ) -> Page[TransactionRecord]:
        with self._uow() as uow:
            self._must(uow, account_id, must_exist)
            if starting_after and not uow.ledger.has_transaction(account_id, starting_after):
                raise errors.CursorNotFound(starting_after)
            rows = uow.ledger.list_transactions(
                account_id, limit=limit + 1, starting_after=starting_after
            )
        return page(rows, limit)

    def hold(self, hold_id: str) -> HoldRecord:
        """A hold as it stands now: a lapsed hold shows ``expired`` before the sweep writes it."""
        now = self._clock()
        with self._uow() as uow:
            found = uow.ledger.get_hold(hold_id)
        if found is None:
            raise errors.HoldNotFound(f"No hold {hold_id!r}.")
        return _as_of(found, now)

    def holds(
        self,
        account_id: str,
        *,
        must_exist: bool,
        status: HoldStatus | None = None,
        limit: int = 10,
        starting_after: str | None = None,
    ) -> Page[HoldRecord]:
        """The account's holds, newest first, each as it stands now (``status`` filters on that:
        a lapsed hold is ``expired``). ``starting_after`` is a hold id of this account."""
        rules.check_account_id(account_id)
        now = self._clock()
        with self._uow() as uow:
            self._must(uow, account_id, must_exist)
            if starting_after:
                cursor = uow.ledger.get_hold(starting_after)
                if cursor is None or cursor.account_id != account_id:
                    raise errors.CursorNotFound(starting_after)
            rows = uow.ledger.list_holds(
                account_id,
                status=status,
                now=now,
                limit=limit + 1,
                starting_after=starting_after,
            )
        return page([_as_of(h, now) for h in rows], limit)

    @staticmethod
    def _must(uow: UnitOfWork, account_id: str, must_exist: bool) -> AccountRecord | None:
        record = uow.accounts.get(account_id)
        if record is None and must_exist:
            raise errors.AccountNotFound(f"No account {account_id!r}.", account_id=account_id)
        return record

    # --- the inbox and orders ------------------------------------------------------------------

    def events(
        self,
        *,
        status: EventStatus | None = None,
        type_: str | None = None,
        limit: int = 10,
        starting_after: str | None = None,
        created: TimeRange | None = None,
    ) -> Page[EventRecord]:
        """The inbox, newest received first. ``created`` bounds the event's time at Stripe (its
        ``created``), or, for an event that carries none, the time billfold received it."""
        with self._uow() as uow:
            if starting_after and uow.inbox.get(starting_after, with_payload=False) is None:
                raise errors.CursorNotFound(starting_after)
            rows = uow.inbox.list(
                status=status,
                type_=type_,
                limit=limit + 1,
                starting_after=starting_after,
                created=created,
            )
        return page(rows, limit)

    def event(self, event_id: str) -> EventRecord:
        """One event, with its payload exactly as Stripe sent it."""
        with self._uow() as uow:
            record = uow.inbox.get(event_id)
        if record is None:
            raise errors.EventNotFound(f"No event {event_id!r} in the inbox.")
        return record

    def event_with_attempts(self, event_id: str) -> tuple[EventRecord, list[EventAttempt]]:
        """One event and its attempt history (failures, operators' retries), oldest first."""
        with self._uow() as uow:
            record = uow.inbox.get(event_id)
            history = uow.inbox.attempt_history(event_id) if record is not None else []
        if record is None:
            raise errors.EventNotFound(f"No event {event_id!r} in the inbox.")
        return record, history

    def orders(
        self,
        *,
        status: OrderStatus | None = None,
        account_id: str | None = None,
        limit: int = 10,
        starting_after: str | None = None,
    ) -> Page[OrderRecord]:
        with self._uow() as uow:
            if starting_after and uow.orders.get(starting_after) is None:
                raise errors.CursorNotFound(starting_after)
            rows = uow.orders.list(
                status=status, account_id=account_id, limit=limit + 1, starting_after=starting_after
            )
        return page(rows, limit)

    def order(self, order_id: str) -> OrderRecord:
        with self._uow() as uow:
            found = uow.orders.get(order_id)
        if found is None:
            raise errors.OrderNotFound(f"No order {order_id!r}.")
        return found

    def operations(self) -> Operations:
        """The inbox's state for readiness and metrics, in one short read."""
        with self._uow() as uow:
            return Operations(
                now=self._clock(),
                backlog=uow.inbox.backlog(),
                oldest_waiting=uow.inbox.oldest_waiting(),
                last_heartbeat=uow.inbox.last_beat(),
            )

    def backlog(self) -> dict[str, int]:
        """Events waiting per status (received, failed, dead)."""
        with self._uow() as uow:
            return uow.inbox.backlog()

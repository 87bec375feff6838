"""What the handlers of a batch of webhooks write to: a view of the batch's unit of work.

A batch of paid checkouts used to cost each delivery seven statements outside the ledger, one
after another (its payment's gate, its order's insert, the payment's link to the order, the
account's row, Stripe customer and e-mail, the order's update to fulfilled, the read of its
reversals). The view answers those from what the batch read at once, and keeps the writes that
answer nothing until the batch ends:

- **Payments' gates** are locked together before anything else, in payment intent order
  (``PaymentStore.ensure_locked_many``), then **their orders** (by the keys the batch's payments
  give their orders, and those the gates name: ``OrderStore.lock_many``), with one read of their
  reversals; a gate or an order the batch did not predict is locked when asked for.
- **New orders** are inserted at the flush in the state they end in (one multi-row insert): an
  order key the batch read and did not find has no order (another transaction inserting it
  meanwhile makes the insert fail, and the batch is made again one delivery at a time).
- **Deferred writes**: a new account's row, a payment's link to its order, an account's customer
  and e-mail, and an order's updates (its new state is known: this transaction holds the order's
  lock) are written at :meth:`BatchView.flush`, one statement per kind, their rows sent at once.
- **Reads stay exact.** Any other call, on any store, first writes what is deferred, so every read
  sees every write before it, as one delivery at a time would. The reversals of an order are
  answered from the batch's read only for an order this batch inserted (no payment the batch did
  not lock can name it) while nothing has written reversals.

The ledger is the batch's overlay (:mod:`.ledger.batch`), which keeps its own writes the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from types import TracebackType
from typing import Any, Final, Self, TypeVar, cast

from billfold.domain import errors
from billfold.domain.orders import OrderRecord, OrderStatus
from billfold.domain.records import AccountRecord
from billfold.domain.reversals import ReversalRecord
from billfold.service.ledger.batch import Overlay
from billfold.service.ports import (
    AccountStore,
    AdminSessionStore,
    BatchSnapshot,
    DashboardStore,
    InboxStore,
    LedgerStore,
    NewOrder,
    NewReversal,
    NotificationStore,
    OrderStore,
    PaymentStore,
    ReconciliationStore,
    ReversalStore,
    SubscriptionStore,
    UnitOfWork,
)

ORDER_FIELDS: Final = frozenset(f.name for f in fields(OrderRecord))
T = TypeVar("T")


class DeferredWritesFailed(Exception):
    """Writing what the batch deferred failed: the batch as a whole, not the delivery that was
    being applied when the writes were sent."""


class BatchView:
    """A unit of work for the handlers of one batch (see the module's docstring). ``snapshot``:
    the balances the batch read (its ledger is an overlay of them); ``gates``: the payments
    locked at the batch's start, with their orders; ``reversals``: theirs; ``orders``: the
    orders with ``order_keys`` or linked to those payments, locked."""

    def __init__(
        self,
        uow: UnitOfWork,
        snapshot: BatchSnapshot,
        *,
        gates: Mapping[str, str | None] | None = None,
        reversals: Sequence[ReversalRecord] = (),
        orders: Sequence[OrderRecord] = (),
        order_keys: Sequence[str] = (),
    ) -> None:
        self._uow = uow
        self.overlay = Overlay(snapshot, strict=True, accounts=self._new_account)
        """The batch's ledger: what it read, and what it would write."""
        self.new_accounts: list[tuple[str, int]] = []
        self.gates: dict[str, str | None] = dict(gates or {})
        """Payments this transaction holds locked, and their orders as they are now."""
        self._read = frozenset(self.gates)
        self._reversals: dict[str, list[ReversalRecord]] = {}
        for row in reversals:
            if row.payment_intent_id is not None:
                self._reversals.setdefault(row.payment_intent_id, []).append(row)
        self.reversals_current = True
        """False once anything may have written reversals: they are read from the store again."""
        self.created: set[str] = set()
        """Orders this batch inserted."""
        self.linked_elsewhere: set[str] = set()
        """Orders a payment the batch did not lock was linked to (their reversals are read)."""
        self.orders_held: dict[str, OrderRecord] = {}
        """Orders this transaction holds locked, as they are with the deferred writes."""
        self.held_by_key: dict[str, str] = {}
        self.keys_read: set[str] = set(order_keys)
        """Order keys the batch read (locked): where none was found, no order has the key."""
        for order in orders:
            self.hold(order)
        self.new_orders: list[str] = []
        """Orders this batch inserts at the flush, as they are then."""
        self.order_changes: dict[str, dict[str, Any]] = {}
        self.changed_keys: set[str] = set()
        self.links: list[tuple[str, str]] = []
        self.customers: list[tuple[str, str, int]] = []
        self.emails: list[tuple[str, str, int]] = []
        self._payments = _Payments(self, uow.payments)
        self._orders = _Orders(self, uow.orders)
        self._accounts = _Accounts(self, uow.accounts)
        self._reversal_view = _Reversals(self, uow.reversals)

    # --- the unit of work ----------------------------------------------------------------------

    @property
    def ledger(self) -> LedgerStore:
        return self.overlay

    @property
    def payments(self) -> PaymentStore:
        return self._payments

    @property
    def orders(self) -> OrderStore:
        return self._orders

    @property
    def accounts(self) -> AccountStore:
        return self._accounts

    @property
    def reversals(self) -> ReversalStore:
        return self._reversal_view

    @property
    def inbox(self) -> InboxStore:
        return cast(InboxStore, _Flushing(self, self._uow.inbox))

    @property
    def admin_sessions(self) -> AdminSessionStore:
        return cast(AdminSessionStore, _Flushing(self, self._uow.admin_sessions))

    @property
    def subscriptions(self) -> SubscriptionStore:
        return cast(SubscriptionStore, _Flushing(self, self._uow.subscriptions))

    @property
    def reconciliation(self) -> ReconciliationStore:
        return cast(ReconciliationStore, _Flushing(self, self._uow.reconciliation))

    @property
    def notifications(self) -> NotificationStore:
        return cast(NotificationStore, _Flushing(self, self._uow.notifications))

    @property
    def dashboard(self) -> DashboardStore:
        return cast(DashboardStore, _Flushing(self, self._uow.dashboard))

    def __enter__(self) -> Self:
        raise TypeError("a batch's view of a unit of work is not entered; its unit of work is")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise TypeError("a batch's view of a unit of work is not entered; its unit of work is")

    def commit(self) -> None:
        raise TypeError("a batch commits once, after its last delivery")

    # --- deferred writes -----------------------------------------------------------------------

    def hold(self, order: OrderRecord) -> None:
        """``order`` is locked by this transaction: its reads are answered from here."""
        self.orders_held[order.id] = order
        self.held_by_key[order.key] = order.id
        self.keys_read.add(order.key)

    def _new_account(self, account_id: str, now: int) -> None:
        """The overlay's new account: its row is written first at the flush (before the
        orders, customers and balances that name it)."""
        self.new_accounts.append((account_id, now))

    def flush(self, *, last: bool = False) -> None:
        """Write what is deferred (one statement per kind; the new accounts first). A write that
        fails raises DeferredWritesFailed (StorageUnavailable as itself): a flush a read asked
        for runs inside some delivery's processing, and the failure is not that delivery's.
        ``last``: the batch's own flush, after every delivery: the failure goes as it is (the
        unit of work tells a refused constraint from the rest)."""
        accounts, links, changes = self.new_accounts, self.links, self.order_changes
        customers, emails, new_orders = self.customers, self.emails, self.new_orders
        if not (accounts or new_orders or links or changes or customers or emails):
            return
        self.new_accounts, self.new_orders, self.links, self.order_changes = [], [], [], {}
        self.customers, self.emails = [], []
        self.changed_keys = set()
        uow = self._uow
        try:
            if accounts:
                uow.ledger.ensure_accounts(accounts)
            if new_orders:
                uow.orders.insert_many([self.orders_held[i] for i in new_orders])
            if links:
                uow.payments.link_many(links)
            if changes:
                uow.orders.update_many(list(changes.items()))
            if customers:
                uow.accounts.link_customers(customers)
            if emails:
                uow.accounts.fill_emails(emails)
        except errors.StorageUnavailable:
            raise
        except Exception as exc:
            if last:
                raise
            raise DeferredWritesFailed(f"the batch's deferred writes failed: {exc}") from exc

    def reversals_of(self, order_id: str) -> list[ReversalRecord] | None:
        """The reversals of an order this batch inserted, from the batch's read (None: read
        them from the store)."""
        if not self.reversals_current or order_id not in self.created:
            return None
        if order_id in self.linked_elsewhere:
            return None
        payments = [pi for pi, linked in self.gates.items() if linked == order_id]
        if any(pi not in self._read for pi in payments):
            return None
        rows = [row for pi in payments for row in self._reversals.get(pi, ())]
        return sorted(rows, key=lambda row: (row.created, row.id))


class _Flushing:
    """A store whose every call first writes what the batch deferred."""

    def __init__(self, view: BatchView, store: object) -> None:
        self._view = view
        self._store = store

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found
        view = self._view

        def call(*args: Any, **kwargs: Any) -> Any:
            view.flush()
            return found(*args, **kwargs)

        return call


def _flushed(view: BatchView, call: Callable[[], T]) -> T:
    view.flush()
    return call()


class _Payments:
    def __init__(self, view: BatchView, store: PaymentStore) -> None:
        self._view = view
        self._store = store

    def ensure_locked(self, payment_intent_id: str, *, now: int) -> str | None:
        gates = self._view.gates
        if payment_intent_id not in gates:  # a gate the batch did not predict
            gates[payment_intent_id] = self._store.ensure_locked(payment_intent_id, now=now)
        return gates[payment_intent_id]

    def link(self, payment_intent_id: str, order_id: str) -> None:
        view = self._view
        if payment_intent_id not in view.gates:  # not locked here: linked as it stands
            view.linked_elsewhere.add(order_id)
            _flushed(view, lambda: self._store.link(payment_intent_id, order_id))
            return
        if view.gates[payment_intent_id] is None:  # only where it has none
            view.gates[payment_intent_id] = order_id
            view.links.append((payment_intent_id, order_id))

    def ensure_locked_many(
        self, payment_intent_ids: Sequence[str], *, now: int
    ) -> dict[str, str | None]:
        return {pi: self.ensure_locked(pi, now=now) for pi in payment_intent_ids}

    def link_many(self, links: Sequence[tuple[str, str]]) -> None:
        for payment_intent_id, order_id in links:
            self.link(payment_intent_id, order_id)

    def of_order(self, order_id: str) -> list[str]:
        return _flushed(self._view, lambda: self._store.of_order(order_id))


class _Orders:
    def __init__(self, view: BatchView, store: OrderStore) -> None:
        self._view = view
        self._store = store

    def _held(self, order: OrderRecord | None) -> OrderRecord | None:
        if order is not None:
            self._view.hold(order)
        return order

    def ensure_locked(self, order: NewOrder) -> OrderRecord:
        view = self._view
        if order.key in view.keys_read:
            found = view.held_by_key.get(order.key)
            if found is not None:
                return view.orders_held[found]
            # No order had the key when the batch read it: inserted at the flush, as it is then.
            record = order.record()
            view.hold(record)
            view.created.add(record.id)
            view.new_orders.append(record.id)
            return record
        if order.key in view.changed_keys:
            view.flush()
        inserted = self._store.ensure_locked(order)
        if inserted.id == order.id:
            view.created.add(inserted.id)
        view.hold(inserted)
        return inserted

    def lock(self, order_id: str) -> OrderRecord | None:
        held = self._view.orders_held.get(order_id)
        if held is not None:
            return held
        return self._held(_flushed(self._view, lambda: self._store.lock(order_id)))

    def get(self, order_id: str) -> OrderRecord | None:
        held = self._view.orders_held.get(order_id)
        if held is not None:
            return held
        return _flushed(self._view, lambda: self._store.get(order_id))

    def update(self, order_id: str, **values: Any) -> OrderRecord:
        view = self._view
        held = view.orders_held.get(order_id)
        if held is None or not set(values) <= ORDER_FIELDS or "key" in values:
            updated = _flushed(view, lambda: self._store.update(order_id, **values))
            if held is not None:  # a new key (no handler does this): held as it is now
                view.held_by_key.pop(held.key, None)
                view.hold(updated)
            return updated
        if not values:
            return held
        updated = replace(held, **values)
        view.orders_held[order_id] = updated
        if order_id not in view.new_orders:  # a new order is inserted as it ends
            view.order_changes.setdefault(order_id, {}).update(values)
            view.changed_keys.add(held.key)
        return updated

    def lock_by_key(self, key: str) -> OrderRecord | None:
        return self._held(_flushed(self._view, lambda: self._store.lock_by_key(key)))

    def by_key(self, key: str) -> OrderRecord | None:
        return _flushed(self._view, lambda: self._store.by_key(key))

    def by_payment_intent(self, payment_intent_id: str) -> OrderRecord | None:
        return _flushed(self._view, lambda: self._store.by_payment_intent(payment_intent_id))

    def lock_many(self, *, keys: Sequence[str], ids: Sequence[str]) -> list[OrderRecord]:
        found = _flushed(self._view, lambda: self._store.lock_many(keys=keys, ids=ids))
        for order in found:
            self._view.hold(order)
        return found

    def insert_many(self, orders: Sequence[OrderRecord]) -> None:
        _flushed(self._view, lambda: self._store.insert_many(orders))

    def update_many(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        for order_id, values in changes:
            self.update(order_id, **values)

    def list(
        self,
        *,
        status: OrderStatus | None,
        account_id: str | None,
        limit: int,
        starting_after: str | None,
    ) -> list[OrderRecord]:
        return _flushed(
            self._view,
            lambda: self._store.list(
                status=status, account_id=account_id, limit=limit, starting_after=starting_after
            ),
        )


class _Accounts:
    def __init__(self, view: BatchView, store: AccountStore) -> None:
        self._view = view
        self._store = store

    def link_customer(self, account_id: str, customer_id: str, *, now: int) -> None:
        self._view.customers.append((account_id, customer_id, now))

    def fill_email(self, account_id: str, email: str, *, now: int) -> None:
        self._view.emails.append((account_id, email, now))

    def link_customers(self, links: Sequence[tuple[str, str, int]]) -> None:
        self._view.customers.extend(links)

    def fill_emails(self, fills: Sequence[tuple[str, str, int]]) -> None:
        self._view.emails.extend(fills)

    def get(self, account_id: str) -> AccountRecord | None:
        return _flushed(self._view, lambda: self._store.get(account_id))

    def by_stripe_customer(self, customer_id: str) -> AccountRecord | None:
        return _flushed(self._view, lambda: self._store.by_stripe_customer(customer_id))

    def by_email(self, email: str) -> list[AccountRecord]:
        return _flushed(self._view, lambda: self._store.by_email(email))

    def upsert(self, account_id: str, *, now: int, **values: Any) -> None:
        _flushed(self._view, lambda: self._store.upsert(account_id, now=now, **values))

    def with_customers(self, *, limit: int, starting_after: str | None) -> list[AccountRecord]:
        return _flushed(
            self._view,
            lambda: self._store.with_customers(limit=limit, starting_after=starting_after),
        )

    def search(
        self,
        *,
        email: str | None = None,
        stripe_customer_id: str | None = None,
        query: str | None = None,
        limit: int,
        starting_after: tuple[int, str] | None = None,
    ) -> list[AccountRecord]:
        return _flushed(
            self._view,
            lambda: self._store.search(
                email=email,
                stripe_customer_id=stripe_customer_id,
                query=query,
                limit=limit,
                starting_after=starting_after,
            ),
        )


class _Reversals:
    def __init__(self, view: BatchView, store: ReversalStore) -> None:
        self._view = view
        self._store = store

    def for_order(self, order_id: str) -> list[ReversalRecord]:
        known = self._view.reversals_of(order_id)
        if known is not None:
            return known
        return _flushed(self._view, lambda: self._store.for_order(order_id))

    def ensure_locked(self, new: NewReversal) -> tuple[ReversalRecord, bool]:
        self._view.reversals_current = False
        return _flushed(self._view, lambda: self._store.ensure_locked(new))

    def update(self, reversal_id: str, **values: Any) -> ReversalRecord:
        self._view.reversals_current = False
        return _flushed(self._view, lambda: self._store.update(reversal_id, **values))

    def for_payments(self, payment_intent_ids: Sequence[str]) -> list[ReversalRecord]:
        return _flushed(self._view, lambda: self._store.for_payments(payment_intent_ids))

    def of_account(self, account_id: str) -> list[ReversalRecord]:
        return _flushed(self._view, lambda: self._store.of_account(account_id))

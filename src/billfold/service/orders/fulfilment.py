"""``fulfil``: the one way a payment becomes grants, inside the caller's transaction.

``fulfil`` inserts the order row if it is new (the insert is the gate), locks it, and grants the
package only while the order is not yet fulfilled; the grants' own idempotency keys
(``<order key>:grant:<n>``) are a second, database-enforced guard. The webhook, the success page, the
worker's retries and an operator's resolution all call it, and at most one of them grants.

What to grant is decided by :func:`billfold.domain.orders.decide`; when it answers
``NeedsLineItems`` this returns that value and writes nothing worth keeping: the caller rolls the
transaction back, asks Stripe outside any transaction, and calls again with the line items.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from billfold.domain import catalog as cat
from billfold.domain import errors, ids
from billfold.domain import facts as f
from billfold.domain import ledger as rules
from billfold.domain.orders import (
    AccountHints,
    Fulfil,
    LineItem,
    NeedsAttention,
    NeedsLineItems,
    OrderRecord,
    OrderStatus,
    Payment,
    Resolution,
    decide,
    resolve_account,
    storable_amount,
)
from billfold.service import outbox
from billfold.service.ledger import movement
from billfold.service.ledger.commands import Grant
from billfold.service.orders.reversals import Reversals
from billfold.service.ports import NewOrder, UnitOfWork

DAY = 86_400


class Fulfilment:
    def __init__(
        self, catalog: cat.Catalog, reversals: Reversals, *, units: frozenset[str] | None = None
    ) -> None:
        self.catalog = catalog
        self.low = catalog.low_balances()
        self.reversals = reversals
        self.units = units

    # --- recording -----------------------------------------------------------------------------

    def ensure(self, uow: UnitOfWork, payment: Payment, now: int) -> OrderRecord:
        """The payment's order, inserted if new and locked for this transaction.

        One payment, one order, whatever object announces it: the payment intent's row is the gate
        (locked first, by every handler of this payment). When it already names an order, that is
        the order, whatever key this object would give it (a checkout session and its payment
        intent are one payment)."""
        pi = payment.payment_intent_id
        if pi is not None:
            linked = uow.payments.ensure_locked(pi, now=now)
            found = uow.orders.lock(linked) if linked is not None else None
            if found is not None:
                return self._fill(uow, found, payment, now)
        order = uow.orders.ensure_locked(
            NewOrder(
                id=ids.new_id("ord"),
                key=payment.key,
                kind=payment.kind,
                stripe_id=payment.stripe_id,
                payment_intent_id=payment.payment_intent_id,
                amount=_storable(payment),
                currency=_fits(payment.currency, 16),
                customer_id=_fits(payment.customer_id, 255),
                customer_email=_fits(payment.customer_email, 320),
                status="pending",
                created=now,
                last_event_id=payment.event_id,
            )
        )
        if pi is not None and order.payment_intent_id in (None, pi):
            uow.payments.link(pi, order.id)
        return self._fill(uow, order, payment, now)

    def _fill(self, uow: UnitOfWork, order: OrderRecord, payment: Payment, now: int) -> OrderRecord:
        """What the payment says that the order does not know yet."""
        changes: dict[str, object] = {}
        known = {
            "payment_intent_id": payment.payment_intent_id,
            "amount": _storable(payment),
            "currency": _fits(payment.currency, 16),
            "customer_id": _fits(payment.customer_id, 255),
            "customer_email": _fits(payment.customer_email, 320),
        }
        for name, value in known.items():
            if value is not None and getattr(order, name) is None:
                changes[name] = value
        if payment.event_id and not order.is_final and order.last_event_id != payment.event_id:
            changes["last_event_id"] = payment.event_id
        if changes:
            order = uow.orders.update(order.id, updated=now, **changes)
        return order

    def mark(
        self,
        uow: UnitOfWork,
        payment: Payment,
        status: OrderStatus,
        now: int,
        *,
        reason: str | None = None,
    ) -> OrderRecord:
        """Record a non-paying outcome (pending, failed, expired); a fulfilled order keeps its state."""
        order = self.ensure(uow, payment, now)
        if order.is_final or order.status == status:
            return order
        if status == "pending" and order.status != "pending":
            return order  # a late "unpaid" never undoes a later outcome
        marked = uow.orders.update(order.id, status=status, status_reason=reason, updated=now)
        if status == "failed":
            _notify(uow, "payment.failed", marked, now)
        return marked

    def record_payment_error(
        self, uow: UnitOfWork, payment_intent_id: str, message: str | None, now: int
    ) -> OrderRecord | None:
        order = uow.orders.by_payment_intent(payment_intent_id)
        if order is None:
            return None
        return uow.orders.update(
            order.id, payment_error=message or "the payment failed", updated=now
        )

    def positions(
        self, fact: f.Fact, line_items: Sequence[LineItem] | None = None
    ) -> tuple[tuple[str, str], ...]:
        """The balances (account, unit) a payment would be granted to, where the payment names
        its account and its package (in its metadata, or by the one catalog price of its
        ``line_items``): what a batch reads and locks before deciding. A guess, never a rule (an
        order that grants elsewhere is made on its own)."""
        if isinstance(fact, f.CheckoutCompleted | f.CheckoutAsyncSucceeded):
            if fact.mode != "payment":
                return ()
            account = fact.metadata_account or fact.client_reference_id
        elif isinstance(fact, f.PaymentIntentSucceeded):
            account = fact.metadata_account
        else:
            return ()
        package: cat.Package | None = None
        try:
            if fact.metadata_package:
                package = self.catalog.package(fact.metadata_package)
            elif line_items is not None and len(line_items) == 1:
                package = self.catalog.package_for_price(line_items[0].price_id or "")
            if not account or package is None:
                return ()
            rules.check_account_id(account)
        except errors.BillfoldError:
            return ()
        return tuple(dict.fromkeys((account, g.unit) for g in package.grants))

    @staticmethod
    def payment(fact: f.Fact) -> Payment | None:
        """The payment applying ``fact`` records through :meth:`ensure` (a checkout in payment
        mode, a payment intent that names its account and package): its gate and its order's key
        are what a batch locks before anything else. A guess, never a rule (a gate or an order
        nobody predicted is locked when asked for)."""
        match fact:
            case (
                f.CheckoutCompleted()
                | f.CheckoutAsyncSucceeded()
                | f.CheckoutAsyncFailed()
                | f.CheckoutExpired()
            ) if fact.mode == "payment":
                return Payment.of_checkout(fact)
            case f.PaymentIntentSucceeded() if fact.metadata_account and fact.metadata_package:
                return Payment.of_payment_intent(fact)
            case _:
                return None

    @staticmethod
    def evident_needs(fact: f.Fact) -> NeedsLineItems | None:
        """A paid checkout that names no package needs its line items to know what was bought
        (unless its order is settled already: a guess, asked ahead of the transaction)."""
        if not isinstance(fact, f.CheckoutCompleted | f.CheckoutAsyncSucceeded):
            return None
        payment = Payment.of_checkout(fact)
        if fact.mode != "payment" or not payment.paid or payment.metadata_package:
            return None
        return NeedsLineItems(session_id=payment.stripe_id)

    # --- fulfilment ----------------------------------------------------------------------------

    def fulfil(
        self,
        uow: UnitOfWork,
        payment: Payment,
        now: int,
        *,
        line_items: Sequence[LineItem] | None,
        resolution: Resolution | None = None,
    ) -> OrderRecord | NeedsLineItems:
        """Grant what ``payment`` bought, once. The caller's unit of work commits.

        ``line_items`` are the session's, read from Stripe before the transaction began (never
        while it holds locks); None when nobody read them.
        """
        order = self.ensure(uow, payment, now)
        if order.is_final or not payment.paid:
            return order
        decision = decide(
            payment,
            order,
            self.catalog,
            hints=self._hints(uow, payment, order, resolution),
            line_items=line_items,
            resolution=resolution,
        )
        match decision:
            case NeedsLineItems():
                return decision
            case NeedsAttention():
                changes: dict[str, object] = {}
                if decision.account_id is not None:
                    changes["account_id"] = decision.account_id
                if decision.package is not None:
                    changes["package"] = decision.package
                updated = uow.orders.update(
                    order.id,
                    status="needs_attention",
                    status_reason=decision.reason,
                    updated=now,
                    **changes,
                )
                if order.status != "needs_attention":
                    _notify(uow, "order.needs_attention", updated, now)
                return updated
            case Fulfil():
                return self._grant(uow, order, payment, decision, now, resolution)
            case _:
                assert_never(decision)

    def _hints(
        self,
        uow: UnitOfWork,
        payment: Payment,
        order: OrderRecord,
        resolution: Resolution | None,
    ) -> AccountHints:
        """What the stores know of the customer, read only when the payment names no account."""
        if (resolution and resolution.account_id) or order.account_id:
            return AccountHints()
        if resolve_account(payment, AccountHints()) is not None:
            return AccountHints()
        linked = None
        if payment.customer_id:
            found = uow.accounts.by_stripe_customer(payment.customer_id)
            linked = found.id if found else None
        by_email: tuple[str, ...] = ()
        if linked is None and payment.customer_email:
            by_email = tuple(a.id for a in uow.accounts.by_email(payment.customer_email))
        return AccountHints(linked=linked, by_email=by_email)

    def _grant(
        self,
        uow: UnitOfWork,
        order: OrderRecord,
        payment: Payment,
        decision: Fulfil,
        now: int,
        resolution: Resolution | None,
    ) -> OrderRecord:
        package = decision.package
        for index, spec in enumerate(decision.grants()):
            movement.grant(
                uow.ledger,
                Grant(
                    key=f"{order.key}:grant:{index}",
                    account_id=decision.account_id,
                    unit=spec.unit,
                    amount=spec.amount,
                    priority=spec.priority,
                    expires_at=now + spec.expires_in_days * DAY if spec.expires_in_days else None,
                    kind=spec.kind,
                    origin=order.id,
                    reason=package.title,
                    source=rules.STRIPE,
                ),
                now,
                units=self.units,
                low=self.low,
            )
        # The grants created the account; link what Stripe told us about the customer.
        if payment.customer_id:
            uow.accounts.link_customer(decision.account_id, payment.customer_id, now=now)
        if payment.customer_email:
            uow.accounts.fill_email(decision.account_id, payment.customer_email, now=now)
        fulfilled = uow.orders.update(
            order.id,
            status="fulfilled",
            status_reason=None,
            account_id=decision.account_id,
            package=package.id,
            amount=decision.amount,
            fulfilled_at=now,
            updated=now,
            resolved_by=resolution.by if resolution else None,
        )
        _notify(uow, "order.fulfilled", fulfilled, now)
        # Refunds and disputes that arrived before the order was fulfilled take effect now.
        if self.reversals.settle(uow, fulfilled, now).untouched:
            return fulfilled
        locked = uow.orders.get(fulfilled.id)
        assert locked is not None
        return locked

    # --- an operator's resolution --------------------------------------------------------------

    def resolve(
        self,
        uow: UnitOfWork,
        order_id: str,
        resolution: Resolution,
        now: int,
        *,
        line_items: Sequence[LineItem] | None = None,
    ) -> OrderRecord | NeedsLineItems:
        order = uow.orders.get(order_id)
        if order is None:
            raise errors.OrderNotFound(f"No order {order_id!r}.", order_id=order_id)
        if order.is_final:
            return order
        if order.status != "needs_attention":
            raise errors.OrderNotResolvable(
                f"Order {order_id} is {order.status}; only orders in needs_attention can be "
                "resolved.",
                order_id=order_id,
                status=order.status,
            )
        if resolution.package is not None:
            self.catalog.package(resolution.package)  # UnknownPackage: a clear 400
        if resolution.account_id is not None:
            rules.check_account_id(resolution.account_id)
        result = self.fulfil(
            uow, Payment.of_order(order), now, line_items=line_items, resolution=resolution
        )
        if isinstance(result, OrderRecord) and not result.is_final:
            raise errors.OrderNotResolvable(
                f"Order {order_id} still cannot be fulfilled: {result.status_reason}. Name the "
                "account_id and package to grant.",
                order_id=order_id,
            )
        return result


def _storable(payment: Payment) -> int | None:
    """The paid amount if the books can hold it (else the order keeps none, and needs attention)."""
    amount = payment.amount
    return amount if amount is not None and storable_amount(amount) else None


def _fits(value: str | None, length: int) -> str | None:
    """What Stripe said, if it fits the column: the same on every database."""
    return value if value is not None and len(value) <= length else None


def _notify(uow: UnitOfWork, type_: str, order: OrderRecord, now: int) -> None:
    """An order's notification, in the transaction that changed it."""
    outbox.emit(
        uow.ledger,
        type_,
        account_id=order.account_id,
        data={
            "order_id": order.id,
            "status": order.status,
            "reason": order.status_reason,
            "package": order.package,
            "plan": order.plan,
            "amount": order.amount,
            "currency": order.currency,
            "customer_email": order.customer_email,
            "stripe": {
                ("checkout_session" if order.kind == "checkout" else order.kind): order.stripe_id,
                "payment_intent": order.payment_intent_id,
                "customer": order.customer_id,
            },
        },
        now=now,
    )

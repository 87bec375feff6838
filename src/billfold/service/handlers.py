"""What each billing fact does, inside the transaction that also records the event's outcome.

One ``match`` over the fact types, ending in ``assert_never``: mypy flags a fact nobody handles.
A handler answers :class:`Applied` (the event's status and a note for the inbox) or
``NeedsLineItems``, in which case the caller rolls back, asks Stripe, and applies the fact again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias, assert_never

from billfold.domain import facts as f
from billfold.domain.orders import LineItem, NeedsLineItems, OrderRecord, OrderStatus, Payment
from billfold.domain.reversals import FundsMoved, NeedsRefunds, ReversalEvent
from billfold.domain.subscriptions import (
    NeedsInvoice,
    NeedsInvoicePayments,
    NeedsPrices,
    NeedsSubscription,
)
from billfold.service.orders.fulfilment import Fulfilment
from billfold.service.orders.reversals import Reversals
from billfold.service.ports import UnitOfWork
from billfold.service.subscriptions import SubscriptionBook

Needs: TypeAlias = (
    NeedsLineItems
    | NeedsRefunds
    | NeedsSubscription
    | NeedsInvoicePayments
    | NeedsInvoice
    | NeedsPrices
)
"""What a fact may need from Stripe before it can be applied (asked outside any transaction)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetched:
    """What was read from Stripe for one event, so far."""

    line_items: tuple[LineItem, ...] | None = None
    refunds: tuple[f.RefundInfo, ...] | None = None
    subscription: f.SubscriptionFact | None = None
    invoice_payment_intents: tuple[str, ...] | None = None
    invoice: f.InvoicePaid | None = None
    """The invoice re-read with all its lines (the event's copy was truncated)."""
    price_lookup_keys: Mapping[str, str | None] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    status: Literal["processed", "ignored"]
    note: str


def _order_note(order: OrderRecord) -> Applied:
    return Applied(status="processed", note=f"order {order.id} {order.status}")


class EventHandlers:
    def __init__(
        self, fulfilment: Fulfilment, reversals: Reversals, subscriptions: SubscriptionBook
    ) -> None:
        self.fulfilment = fulfilment
        self.reversals = reversals
        self.subscriptions = subscriptions

    def positions(
        self, fact: f.Fact, line_items: Sequence[LineItem] | None = None
    ) -> tuple[tuple[str, str], ...]:
        """The balances applying ``fact`` would grant to, where it says (see ``Fulfilment``)."""
        return self.fulfilment.positions(fact, line_items)

    def payment(self, fact: f.Fact) -> Payment | None:
        """The payment applying ``fact`` records, where the fact says (see ``Fulfilment``)."""
        return self.fulfilment.payment(fact)

    def evident_needs(self, fact: f.Fact) -> NeedsLineItems | None:
        """What applying ``fact`` will ask Stripe for, where the fact alone says so (see
        ``Fulfilment``)."""
        return self.fulfilment.evident_needs(fact)

    def apply(
        self,
        uow: UnitOfWork,
        fact: f.Fact,
        event_id: str,
        now: int,
        fetched: Fetched,
    ) -> Applied | Needs:
        orders = self.fulfilment
        line_items = fetched.line_items
        match fact:
            case f.CheckoutCompleted() | f.CheckoutAsyncSucceeded() if fact.mode == "payment":
                payment = Payment.of_checkout(fact, event_id)
                if not payment.paid:
                    return _order_note(orders.mark(uow, payment, "pending", now))
                done = orders.fulfil(uow, payment, now, line_items=line_items)
                return done if isinstance(done, NeedsLineItems) else _order_note(done)
            case f.CheckoutCompleted() if fact.mode == "subscription":
                return _noted(self.subscriptions.link_checkout(uow, fact, now))
            case f.CheckoutCompleted() | f.CheckoutAsyncSucceeded():
                return Applied(
                    status="ignored", note=f"checkout in {fact.mode} mode moves no value"
                )
            case f.CheckoutAsyncFailed() | f.CheckoutExpired():
                if fact.mode != "payment":
                    return Applied(
                        status="ignored", note=f"checkout in {fact.mode} mode moves no value"
                    )
                status: OrderStatus = (
                    "failed" if isinstance(fact, f.CheckoutAsyncFailed) else "expired"
                )
                return _order_note(
                    orders.mark(uow, Payment.of_checkout(fact, event_id), status, now)
                )
            case f.PaymentIntentSucceeded():
                if fact.metadata_account and fact.metadata_package:
                    payment = Payment.of_payment_intent(fact, event_id)
                    done = orders.fulfil(uow, payment, now, line_items=line_items)
                    return done if isinstance(done, NeedsLineItems) else _order_note(done)
                found = uow.orders.by_payment_intent(fact.payment_intent_id)
                if found is None:
                    return Applied(
                        status="processed",
                        note="recorded: no billfold order uses this payment intent",
                    )
                return Applied(status="processed", note=f"recorded on order {found.id}")
            case f.PaymentIntentFailed():
                order = orders.record_payment_error(
                    uow, fact.payment_intent_id, fact.last_error_message, now
                )
                if order is None:
                    return Applied(
                        status="processed",
                        note="recorded: no billfold order uses this payment intent",
                    )
                return Applied(
                    status="processed", note=f"payment error recorded on order {order.id}"
                )
            case f.ChargeRefunded():
                refunds = fetched.refunds
                if refunds is None:
                    if not fact.refunds_complete:
                        return NeedsRefunds(charge_id=fact.charge_id)
                    refunds = fact.refunds
                notes = [
                    self.reversals.record(
                        uow,
                        ReversalEvent(
                            kind="refund",
                            stripe_id=r.refund_id,
                            payment_intent_id=fact.payment_intent_id,
                            charge_id=fact.charge_id,
                            amount=r.amount,
                            currency=fact.currency,
                            status=r.status,
                        ),
                        now,
                    ).describe()
                    for r in refunds
                ]
                return Applied(status="processed", note="; ".join(notes) or "no refunds listed")
            case f.RefundChanged():
                return self._reversal(
                    uow,
                    ReversalEvent(
                        kind="refund",
                        stripe_id=fact.refund_id,
                        payment_intent_id=fact.payment_intent_id,
                        charge_id=fact.charge_id,
                        amount=fact.amount,
                        currency=fact.currency,
                        status=fact.status,
                        reason=fact.failure_reason or fact.reason,
                        stripe_created=fact.created,
                    ),
                    now,
                )
            case f.DisputeOpened() | f.DisputeClosed() | f.DisputeNoted():
                return self._reversal(
                    uow,
                    ReversalEvent(
                        kind="dispute",
                        stripe_id=fact.dispute_id,
                        payment_intent_id=fact.payment_intent_id,
                        charge_id=fact.charge_id,
                        amount=fact.amount,
                        currency=fact.currency,
                        status=fact.status,
                        reason=fact.reason,
                        funds=_funds(fact) if isinstance(fact, f.DisputeNoted) else (),
                    ),
                    now,
                )
            case f.SubscriptionChanged() | f.SubscriptionNoted():
                book = self.subscriptions
                if fetched.subscription is not None:
                    return _noted(
                        book.apply_state(uow, fetched.subscription, now, authoritative=True)
                    )
                return _noted(book.apply_state(uow, fact, now))
            case f.InvoicePaid():
                if not fact.lines_complete:
                    if fetched.invoice is None:
                        return NeedsInvoice(invoice_id=fact.invoice_id)
                    # Stripe's full copy, said as of this event.
                    fact = replace(
                        fetched.invoice,
                        event_type=fact.event_type,
                        event_created=fact.event_created,
                    )
                if fetched.subscription is not None:
                    self.subscriptions.apply_state(
                        uow, fetched.subscription, now, authoritative=True
                    )
                return _noted(
                    self.subscriptions.apply_invoice_paid(
                        uow,
                        fact,
                        event_id,
                        now,
                        payment_intents=fetched.invoice_payment_intents,
                        refetched=fetched.subscription is not None,
                        price_lookup_keys=fetched.price_lookup_keys,
                    )
                )
            case f.InvoicePaymentFailed():
                return _noted(self.subscriptions.apply_payment_failed(uow, fact, now))
            case f.InvoiceNoted():
                return Applied(status="processed", note=f"invoice {fact.invoice_id}: {fact.kind}")
            case f.Ignored():
                return Applied(status="ignored", note=fact.reason)
            case _:
                assert_never(fact)

    def _reversal(self, uow: UnitOfWork, event: ReversalEvent, now: int) -> Applied:
        return Applied(status="processed", note=self.reversals.record(uow, event, now).describe())


def _funds(fact: f.DisputeNoted) -> tuple[FundsMoved, ...]:
    """The fund movements a ``funds_withdrawn`` / ``funds_reinstated`` event reports (one
    without its balance transactions is recorded as the event alone)."""
    if fact.kind == "updated":
        return ()
    moved = tuple(
        FundsMoved(
            event=fact.kind,
            balance_transaction=txn.balance_transaction_id,
            amount=txn.amount,
            fee=txn.fee,
            currency=txn.currency,
        )
        for txn in fact.balance_transactions
    )
    if moved:
        return moved
    return (FundsMoved(event=fact.kind, balance_transaction=None, amount=0, fee=0, currency=None),)


def _noted(done: str | Needs) -> Applied | Needs:
    return Applied(status="processed", note=done) if isinstance(done, str) else done

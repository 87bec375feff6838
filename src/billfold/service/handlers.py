"""What each billing fact does, inside the transaction that also records the event's outcome.

One ``match`` over the fact types, ending in ``assert_never``: mypy flags a fact nobody handles.
A handler answers :class:`Applied` (the event's status and a note for the inbox) or
``NeedsLineItems``, in which case the caller rolls back, asks Stripe, and applies the fact again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, assert_never

from billfold.domain import facts as f
from billfold.domain.orders import LineItem, NeedsLineItems, OrderRecord, OrderStatus, Payment
from billfold.service.orders.fulfilment import Fulfilment
from billfold.service.orders.reversals import Reversals
from billfold.service.ports import UnitOfWork


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    status: Literal["processed", "ignored"]
    note: str


def _order_note(order: OrderRecord) -> Applied:
    return Applied(status="processed", note=f"order {order.id} {order.status}")


class EventHandlers:
    def __init__(self, fulfilment: Fulfilment, reversals: Reversals) -> None:
        self.fulfilment = fulfilment
        self.reversals = reversals

    def apply(
        self,
        uow: UnitOfWork,
        fact: f.Fact,
        event_id: str,
        now: int,
        line_items: Sequence[LineItem] | None,
    ) -> Applied | NeedsLineItems:
        orders = self.fulfilment
        match fact:
            case f.CheckoutCompleted() | f.CheckoutAsyncSucceeded() if fact.mode == "payment":
                payment = Payment.of_checkout(fact, event_id)
                if not payment.paid:
                    return _order_note(orders.mark(uow, payment, "pending", now))
                done = orders.fulfil(uow, payment, now, line_items=line_items)
                return done if isinstance(done, NeedsLineItems) else _order_note(done)
            case f.CheckoutCompleted() if fact.mode == "subscription":
                account = fact.metadata_account or fact.client_reference_id
                if account and fact.customer_id:
                    uow.accounts.upsert(account, now=now)
                    uow.accounts.link_customer(account, fact.customer_id, now=now)
                    return Applied(
                        status="processed", note=f"account {account} linked to {fact.customer_id}"
                    )
                return Applied(
                    status="processed", note="subscription checkout without an account to link"
                )
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
                if fact.payment_intent_id is None:
                    return Applied(status="processed", note="refunded charge has no payment intent")
                reversal = self.reversals.refund(
                    uow, fact.payment_intent_id, fact.amount_refunded, now, charge_id=fact.charge_id
                )
                return Applied(status="processed", note=reversal.describe())
            case f.DisputeOpened():
                if fact.payment_intent_id is None:
                    return Applied(status="processed", note="disputed charge has no payment intent")
                reversal = self.reversals.dispute_opened(
                    uow, fact.dispute_id, fact.payment_intent_id, fact.amount, now
                )
                return Applied(status="processed", note=reversal.describe())
            case f.DisputeClosed():
                if fact.payment_intent_id is None:
                    return Applied(status="processed", note="disputed charge has no payment intent")
                reversal = self.reversals.dispute_closed(
                    uow,
                    fact.dispute_id,
                    fact.payment_intent_id,
                    fact.amount,
                    fact.status == "lost",
                    now,
                )
                return Applied(status="processed", note=reversal.describe())
            case (
                f.SubscriptionChanged()
                | f.SubscriptionNoted()
                | f.InvoicePaid()
                | f.InvoicePaymentFailed()
                | f.InvoiceNoted()
            ):
                return Applied(
                    status="ignored",
                    note="subscriptions and invoices are not handled by this release",
                )
            case f.RefundChanged():
                return Applied(
                    status="ignored", note="refunds are clawed back from charge.refunded"
                )
            case f.DisputeNoted():
                return Applied(status="ignored", note=f"dispute {fact.dispute_id}: {fact.kind}")
            case f.Ignored():
                return Applied(status="ignored", note=fact.reason)
            case _:
                assert_never(fact)

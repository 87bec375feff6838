"""The event inbox: receive, process, retry.

``receive`` commits an event to the inbox (the insert on Stripe's event id is the gate) and nothing
else; only after that may the webhook answer 2xx. ``process`` then runs in its own transaction, in
which the ledger writes and the event's status commit together. Inside the webhook request it runs
without a Stripe client: an event that needs one (a session without billfold metadata, whose line
items must be fetched) is handed to the worker, which has one. A failure is recorded on the event,
retried with exponential backoff, and marked ``dead`` after the last attempt.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from billfold.domain import errors
from billfold.domain import facts as f
from billfold.service.orders import NeedsStripe, Orders, Payment, checkout_key, payment_intent_key
from billfold.service.ports import EventRecord, LineItem, StripeGateway, UnitOfWork

log = logging.getLogger("billfold.events")

Translate = Callable[[Mapping[str, Any]], f.Fact]

HANDLED_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
)
MAX_ERROR = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    event_id: str
    stored: bool  # False: the inbox already had it


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    event_id: str
    status: str  # processed, ignored, failed, dead, received (handed to the worker), skipped
    note: str | None = None


class EventProcessor:
    def __init__(
        self,
        *,
        uow_factory: Callable[[], UnitOfWork],
        orders: Orders,
        translate: Translate,
        clock: Callable[[], int],
        max_attempts: int = 8,
        backoff_base: float = 2.0,
        lease_seconds: int = 60,
    ) -> None:
        self._uow = uow_factory
        self.orders = orders
        self._translate = translate
        self._clock = clock
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.lease_seconds = lease_seconds

    # --- inbox ---------------------------------------------------------------------------------

    def receive(self, event: Mapping[str, Any], raw: bytes, *, lease_owner: str | None) -> Received:
        """Commit the event verbatim; lease it to ``lease_owner`` for processing right away."""
        now = self._clock()
        obj = event.get("data", {}).get("object", {})
        event_id = str(event["id"])
        row = {
            "id": event_id,
            "type": str(event["type"]),
            "livemode": bool(event.get("livemode", False)),
            "api_version": _str_or_none(event.get("api_version")),
            "stripe_created": event.get("created")
            if isinstance(event.get("created"), int)
            else None,
            "object_id": _str_or_none(obj.get("id")) if isinstance(obj, Mapping) else None,
            "payload": raw.decode("utf-8"),
            "status": "received",
            "attempts": 0,
            "received_at": now,
            "next_attempt_at": now,
            "lease_owner": lease_owner,
            "lease_expires_at": now + self.lease_seconds if lease_owner else None,
        }
        with self._uow() as uow:
            stored = uow.inbox.insert(row)
            uow.commit()
        return Received(event_id=event_id, stored=stored)

    # --- processing ----------------------------------------------------------------------------

    def process(
        self,
        event_id: str,
        *,
        stripe: StripeGateway | None,
        event: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Process one event in one transaction: ledger writes and the event status together."""
        try:
            return self._process(event_id, event, line_items=None)
        except NeedsStripe as needs:
            if stripe is None:
                now = self._clock()
                with self._uow() as uow:
                    uow.inbox.release(
                        event_id, now=now, note="waiting for the worker: needs Stripe"
                    )
                    uow.commit()
                return Outcome(event_id=event_id, status="received", note="needs Stripe")
            session_id = str(needs.args[0])
        try:
            # The call to Stripe happens here, between transactions, never while holding a lock.
            items = stripe.checkout_line_items(session_id)
        except Exception as exc:
            return self._failed(event_id, exc, self._clock())
        return self._process(event_id, event, line_items=items)

    def _process(
        self,
        event_id: str,
        event: Mapping[str, Any] | None,
        *,
        line_items: Sequence[LineItem] | None,
    ) -> Outcome:
        now = self._clock()
        try:
            with self._uow() as uow:
                if event is None:
                    record = uow.inbox.lock(event_id)
                    if record is None:
                        raise errors.EventNotFound(f"No event {event_id!r} in the inbox.")
                    if record.status in ("processed", "ignored"):
                        return Outcome(event_id=event_id, status="skipped", note=record.status)
                    event = json.loads(record.payload or "{}")
                    assert event is not None
                fact = self._translate(event)
                status, note = self._apply(uow, fact, event_id, now, line_items)
                if not uow.inbox.finish(
                    event_id,
                    status=status,
                    outcome=note,
                    now=now,
                    from_statuses=("received", "failed", "dead"),
                ):
                    return Outcome(event_id=event_id, status="skipped", note="already processed")
                uow.commit()
                return Outcome(event_id=event_id, status=status, note=note)
        except (NeedsStripe, errors.StorageUnavailable):
            raise
        except Exception as exc:
            return self._failed(event_id, exc, now)

    def _failed(self, event_id: str, exc: Exception, now: int) -> Outcome:
        message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        log.warning("event %s failed: %s", event_id, message)
        with self._uow() as uow:
            record = uow.inbox.get(event_id, with_payload=False)
            attempts = (record.attempts if record else 0) + 1
            dead = attempts >= self.max_attempts
            delay = self.backoff(attempts)
            uow.inbox.fail(
                event_id,
                error=message,
                now=now,
                next_attempt_at=None if dead else now + delay,
                dead=dead,
            )
            uow.commit()
        return Outcome(event_id=event_id, status="dead" if dead else "failed", note=message)

    def backoff(self, attempts: int) -> int:
        """Seconds before attempt ``attempts + 1``: exponential, capped at an hour, with jitter."""
        base = min(3600.0, self.backoff_base * 2 ** max(attempts - 1, 0))
        return max(1, int(base * random.uniform(0.8, 1.2)))

    def _apply(
        self,
        uow: UnitOfWork,
        fact: f.Fact,
        event_id: str,
        now: int,
        line_items: Sequence[LineItem] | None,
    ) -> tuple[str, str | None]:
        orders = self.orders
        match fact:
            case f.CheckoutCompleted() | f.CheckoutAsyncSucceeded() if fact.mode == "payment":
                payment = _checkout_payment(fact, event_id)
                if payment.paid:
                    order = orders.fulfill(uow, payment, now, line_items=line_items)
                else:
                    order = orders.mark(uow, payment, "pending", now)
                return "processed", f"order {order.id} {order.status}"
            case f.CheckoutCompleted() if fact.mode == "subscription":
                account = fact.metadata_account or fact.client_reference_id
                if account and fact.customer_id:
                    uow.accounts.upsert(account, now=now)
                    uow.accounts.link_customer(account, fact.customer_id, now=now)
                    return "processed", f"account {account} linked to {fact.customer_id}"
                return "processed", "subscription checkout without an account to link"
            case f.CheckoutCompleted() | f.CheckoutAsyncSucceeded():
                return "ignored", f"checkout in {fact.mode} mode moves no value"
            case f.CheckoutAsyncFailed() | f.CheckoutExpired():
                if fact.mode != "payment":
                    return "ignored", f"checkout in {fact.mode} mode moves no value"
                status = "failed" if isinstance(fact, f.CheckoutAsyncFailed) else "expired"
                order = orders.mark(uow, _checkout_payment(fact, event_id), status, now)
                return "processed", f"order {order.id} {order.status}"
            case f.PaymentIntentSucceeded():
                if fact.metadata_account and fact.metadata_package:
                    payment = Payment(
                        key=payment_intent_key(fact.payment_intent_id),
                        kind="payment_intent",
                        stripe_id=fact.payment_intent_id,
                        paid=True,
                        payment_intent_id=fact.payment_intent_id,
                        amount=fact.amount_received,
                        currency=fact.currency,
                        metadata_account=fact.metadata_account,
                        metadata_package=fact.metadata_package,
                        customer_id=fact.customer_id,
                        event_id=event_id,
                    )
                    order = orders.fulfill(uow, payment, now, line_items=line_items)
                    return "processed", f"order {order.id} {order.status}"
                found = uow.orders.by_payment_intent(fact.payment_intent_id)
                if found is None:
                    return "processed", "recorded: no billfold order uses this payment intent"
                return "processed", f"recorded on order {found.id}"
            case f.PaymentIntentFailed():
                order_or_none = orders.record_payment_error(
                    uow, fact.payment_intent_id, fact.last_error_message, now
                )
                if order_or_none is None:
                    return "processed", "recorded: no billfold order uses this payment intent"
                return "processed", f"payment error recorded on order {order_or_none.id}"
            case f.ChargeRefunded():
                if fact.payment_intent_id is None:
                    return "processed", "refunded charge has no payment intent"
                note = orders.refund(
                    uow,
                    fact.payment_intent_id,
                    fact.amount_refunded,
                    now,
                    charge_id=fact.charge_id,
                )
                return "processed", note
            case f.DisputeOpened():
                if fact.payment_intent_id is None:
                    return "processed", "disputed charge has no payment intent"
                return "processed", orders.dispute_opened(
                    uow, fact.dispute_id, fact.payment_intent_id, fact.amount, now
                )
            case f.DisputeClosed():
                if fact.payment_intent_id is None:
                    return "processed", "disputed charge has no payment intent"
                return "processed", orders.dispute_closed(
                    uow,
                    fact.dispute_id,
                    fact.payment_intent_id,
                    fact.amount,
                    fact.status == "lost",
                    now,
                )
            case (
                f.SubscriptionChanged()
                | f.SubscriptionNoted()
                | f.InvoicePaid()
                | f.InvoicePaymentFailed()
                | f.InvoiceNoted()
                | f.RefundChanged()
                | f.DisputeNoted()
            ):
                return "ignored", "subscriptions and invoices are not handled by this release"
            case f.Ignored():
                return "ignored", fact.reason
            case _:
                assert_never(fact)

    # --- the worker's side -----------------------------------------------------------------------

    def claim(self, owner: str, limit: int) -> list[str]:
        now = self._clock()
        with self._uow() as uow:
            claimed = uow.inbox.claim(
                owner=owner, now=now, lease_seconds=self.lease_seconds, limit=limit
            )
            uow.commit()
        return claimed

    def reconcile(
        self, stripe: StripeGateway, *, since: int, progress: Callable[[str], None] | None = None
    ) -> dict[str, int]:
        """Fetch Stripe's events since ``since`` and take in every one the inbox lacks.

        For webhooks that never arrived (an outage longer than Stripe's retries, a misconfigured
        endpoint). Events already in the inbox are left as they are; new ones are processed.
        """
        counts = {"seen": 0, "missing": 0, "processed": 0, "failed": 0}
        for event in stripe.list_events(created_gte=since, types=HANDLED_TYPES):
            counts["seen"] += 1
            raw = json.dumps(event, separators=(",", ":")).encode()
            received = self.receive(event, raw, lease_owner=None)
            if progress is not None:
                progress(received.event_id)
            if not received.stored:
                continue
            counts["missing"] += 1
            outcome = self.process(received.event_id, stripe=stripe)
            counts["processed" if outcome.status in ("processed", "ignored") else "failed"] += 1
        return counts

    def replay(self, event_id: str, *, stripe: StripeGateway | None) -> Outcome:
        """Process an event again, whatever its status. Every effect is keyed, so a replay of an
        event that was processed changes nothing; one that was not is completed."""
        now = self._clock()
        with self._uow() as uow:
            record = uow.inbox.get(event_id, with_payload=False)
            if record is None:
                raise errors.EventNotFound(f"No event {event_id!r} in the inbox.")
            uow.inbox.reopen(event_id, now=now)
            uow.commit()
        return self.process(event_id, stripe=stripe)

    def retry(self, event_id: str, *, stripe: StripeGateway | None) -> tuple[EventRecord, Outcome]:
        """An operator's retry: process the event now, whatever its attempts so far."""
        now = self._clock()
        with self._uow() as uow:
            record = uow.inbox.get(event_id, with_payload=False)
            if record is None:
                raise errors.EventNotFound(f"No event {event_id!r} in the inbox.")
            if record.status in ("processed", "ignored"):
                raise errors.Conflict(
                    f"Event {event_id} is already {record.status}; there is nothing to retry.",
                    status=record.status,
                )
            uow.inbox.retry(event_id, now=now)
            uow.commit()
        outcome = self.process(event_id, stripe=stripe)
        with self._uow() as uow:
            after = uow.inbox.get(event_id, with_payload=False)
        assert after is not None
        return after, outcome


def _checkout_payment(fact: f.CheckoutSessionFact, event_id: str | None) -> Payment:
    return Payment(
        key=checkout_key(fact.session_id),
        kind="checkout",
        stripe_id=fact.session_id,
        paid=fact.payment_status in ("paid", "no_payment_required"),
        payment_intent_id=fact.payment_intent_id,
        amount=fact.amount_total,
        currency=fact.currency,
        metadata_account=fact.metadata_account,
        metadata_package=fact.metadata_package,
        client_reference_id=fact.client_reference_id,
        customer_id=fact.customer_id,
        customer_email=fact.customer_email,
        event_id=event_id,
    )


def checkout_payment(fact: f.CheckoutSessionFact) -> Payment:
    """The payment a checkout session describes (for the success page)."""
    return _checkout_payment(fact, None)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None

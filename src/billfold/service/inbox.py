"""The event inbox: receive, process, retry.

``receive_webhook`` verifies a delivery over its raw bytes, then inserts the event into the inbox
(the insert on Stripe's event id is the gate) and processes it in the same transaction: the ledger
writes and the event's status commit together, and the answer follows that one commit. Inside the
webhook request it never calls Stripe: an event that needs Stripe (a session without billfold metadata, whose line items must be
read) is handed to the worker, which asks Stripe between transactions and applies the fact again. A
failure is recorded on the event, retried with exponential backoff, and marked ``dead`` after the
last attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias, assert_never

from billfold.domain import errors
from billfold.domain import facts as f
from billfold.domain.orders import NeedsLineItems
from billfold.domain.records import DONE_EVENT_STATUSES, EventRecord, EventStatus, InboundEvent
from billfold.domain.reversals import NeedsRefunds
from billfold.domain.subscriptions import (
    NeedsInvoice,
    NeedsInvoicePayments,
    NeedsPrices,
    NeedsSubscription,
)
from billfold.service.combining import Combiner
from billfold.service.handlers import Applied, EventHandlers, Fetched, Needs
from billfold.service.inbox_batch import BatchView, DeferredWritesFailed
from billfold.service.ledger.batch import NotBatched
from billfold.service.observe import PAYMENT_EVENTS, NullObserver, Observer
from billfold.service.ports import (
    BatchRead,
    BatchSnapshot,
    Clock,
    StripeEvents,
    StripeGateway,
    StripeSubscriptions,
    UnitOfWork,
    UnitOfWorkFactory,
)
from billfold.service.threads import KeptThreads

log = logging.getLogger("billfold.events")

MAX_ERROR = 2000
MAX_WORKER = 200  # event_attempts.worker
WEBHOOK = "webhook"  # the attempt made inside the webhook request
OPERATOR = "operator"  # an operator's retry or replay, when no name is given

OutcomeStatus = Literal["processed", "ignored", "failed", "dead", "received", "skipped"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    event_id: str
    stored: bool  # False: the inbox already had it


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What processing did: ``received`` means handed to the worker (it needs Stripe); ``skipped``
    that another process had already done it."""

    event_id: str
    status: OutcomeStatus
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookReceipt:
    """The answer to a delivery: a duplicate, or stored and (perhaps) processed."""

    event_id: str
    duplicate: bool
    status: OutcomeStatus | Literal["duplicate"]
    note: str | None = None
    """What processing said (the event's outcome), when it ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A verified webhook delivery: the event as received and what it says."""

    event: InboundEvent
    fact: f.Fact


Receipt: TypeAlias = WebhookReceipt | errors.BillfoldError


def _lock_order(fact: f.Fact) -> tuple[int, str]:
    """The account a fact's processing locks (where it says), for a consistent lock order."""
    account = getattr(fact, "metadata_account", None) or getattr(fact, "client_reference_id", None)
    return (0, account) if isinstance(account, str) else (1, "")


class _OnItsOwn(Exception):
    """A delivery a shared transaction cannot take: the batch is written again without it.
    ``for_worker``: it needs Stripe, and the batch stores it for the worker; otherwise (refused,
    or beyond what the batch read) it is made on its own."""

    def __init__(
        self,
        index: int,
        why: str,
        *,
        for_worker: bool = False,
        failure: Exception | None = None,
    ) -> None:
        super().__init__(why)
        self.index = index
        self.for_worker = for_worker
        self.failure = failure
        """What processing it raised (the worker's batches): recorded as its failed attempt."""


def _inbound(record: EventRecord) -> InboundEvent:
    """An event of the inbox as it was received."""
    return InboundEvent(
        id=record.id,
        type=record.type,
        livemode=record.livemode,
        api_version=record.api_version,
        created=record.stripe_created,
        object_id=record.object_id,
        payload=record.payload or "",
    )


_NOTHING_READ = BatchSnapshot(transactions={}, balances={}, grants={}, holds={}, allocations={})

SET_ASIDE = 3
"""Times a batch is written again without what it set aside, before the combiner makes each
delivery on its own."""
FOR_WORKER = "waiting for the worker: needs Stripe"
"""The outcome note of an event stored for the worker because it needs Stripe."""


def _shape(fact: f.Fact) -> tuple[str, object, bool]:
    """What tells deliveries that are likely handled alike apart (a batch's guess, never a rule:
    a delivery set aside is made on its own, with every rule)."""
    metadata = bool(
        getattr(fact, "metadata_account", None) and getattr(fact, "metadata_package", None)
    )
    return (type(fact).__name__, getattr(fact, "mode", None), metadata)


@dataclass(frozen=True, slots=True, kw_only=True)
class Retried:
    event: EventRecord
    outcome: Outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class Imported:
    """What taking Stripe's event list in did."""

    seen: int = 0
    missing: int = 0
    processed: int = 0
    failed: int = 0


class Inbox:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        events: StripeEvents,
        handlers: EventHandlers,
        stripe: StripeGateway | None,
        clock: Clock,
        max_attempts: int = 8,
        backoff_base: float = 2.0,
        lease_seconds: int = 60,
        livemode: bool | None = None,
        stripe_subscriptions: StripeSubscriptions | None = None,
        batch_max: int = 0,
        writers: int = 1,
        observer: Observer | None = None,
    ) -> None:
        self._uow = uow_factory
        self.observer: Observer = observer or NullObserver()
        self.combiner: Combiner[Delivery, WebhookReceipt] | None = (
            Combiner(
                self._receive_batch,
                self._receive_one,
                max_batch=batch_max,
                writers=writers,
                name="webhooks",
            )
            if batch_max > 0
            else None
        )
        self.stripe_subscriptions = stripe_subscriptions
        self.livemode = livemode
        """The mode of the configured Stripe key (None: no key, every event is taken)."""
        self.events = events
        self.handlers = handlers
        self.stripe = stripe
        self._clock = clock
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.lease_seconds = lease_seconds
        self._askers = KeptThreads("billfold-stripe")
        """The threads that ask Stripe ahead of a worker's round."""

    @property
    def handled_types(self) -> frozenset[str]:
        return self.events.handled_types

    # --- receiving -----------------------------------------------------------------------------

    def receive_webhook(self, raw: bytes, signature: str | None) -> WebhookReceipt:
        """Verify a delivery, then store and process it in one transaction. Raises
        InvalidSignature or InvalidEvent (nothing stored) and StorageUnavailable (nothing stored:
        Stripe retries). Concurrent deliveries share transactions through the combiner; a batch
        that cannot be written whole (one of them needs Stripe, or fails) is made again one
        delivery at a time, as below.

        The insert of the event is the gate (a concurrent duplicate waits for it, then finds it);
        the event's effects and its ``processed`` status commit together, and the answer is sent
        after that one commit. When processing fails, or needs Stripe (which is never called
        inside a request), that transaction is rolled back and the event is committed alone, as
        ``failed`` (retried with backoff) or ``received`` (for the worker): two commits, only on
        those paths."""
        delivery, started = self._delivery(raw, signature)
        if self.combiner is None:
            receipt = self._receive_one(delivery)
        else:
            receipt = self.combiner.submit(delivery)
        return self._received(delivery, receipt, started)

    def close(self) -> None:
        if self.combiner is not None:
            self.combiner.close()
        self._askers.close()

    async def receive_webhook_async(self, raw: bytes, signature: str | None) -> WebhookReceipt:
        """``receive_webhook`` for a caller on an event loop: the check of the signature and
        the parse run here (microseconds), the transaction on the combiner's writer threads, and
        the loop is never blocked on the database."""
        if self.combiner is None:
            return await asyncio.to_thread(self.receive_webhook, raw, signature)
        delivery, started = self._delivery(raw, signature)
        receipt = await self.combiner.submit_async(delivery)
        return self._received(delivery, receipt, started)

    def _delivery(self, raw: bytes, signature: str | None) -> tuple[Delivery, float]:
        """The delivery, once its signature is checked and its event read; when it began."""
        verified = self.events.verify(raw, signature)
        return Delivery(event=verified.event, fact=verified.fact), time.perf_counter()

    def _received(
        self, delivery: Delivery, receipt: WebhookReceipt, started: float
    ) -> WebhookReceipt:
        self._observe(
            delivery.event.type, delivery.event.created, receipt.status, started, received=True
        )
        return receipt

    def _observe(
        self,
        event_type: str,
        created: int | None,
        status: str,
        started: float,
        *,
        received: bool = False,
    ) -> None:
        """Tell the observer what became of an event (after its commit)."""
        observer = self.observer
        if received:
            observer.event_received(event_type, duplicate=status == "duplicate")
        if status in ("duplicate", "skipped"):
            return
        outcome = "deferred" if status == "received" else status  # left for the worker
        observer.event_processed(event_type, outcome, time.perf_counter() - started)
        if status == "processed" and created is not None and event_type in PAYMENT_EVENTS:
            observer.payment_credited(max(0.0, time.time() - created))

    def _receive_batch(
        self, deliveries: Sequence[Delivery], committing: Callable[[], None] | None = None
    ) -> list[Receipt]:
        """Store and process ``deliveries`` in one transaction. A delivery the transaction cannot
        take undoes it, and so does every delivery of the batch of the same shape (event type,
        mode, whether billfold's metadata is there: most likely in the same case); the batch is
        written again, with those that need Stripe stored for the worker (answered ``received``,
        as one delivery alone would be) and without the others (refused, or beyond what the batch
        read), each then made on its own, exactly as ``receive_webhook`` makes one. Concurrent
        deliveries have no order among themselves (the batch already goes in account order); one
        that needs Stripe changes nothing but its own event before the worker takes it. Past
        ``SET_ASIDE`` retries this raises, having written nothing, and the combiner makes each
        delivery on its own."""
        aside: set[int] = set()
        waiting: set[int] = set()
        retries = 0
        raced = False
        while True:
            try:
                answered = (
                    self._write_batch(
                        deliveries,
                        skip=frozenset(aside),
                        waiting=frozenset(waiting),
                        committing=committing,
                    )
                    if len(aside) < len(deliveries)
                    else {}
                )
                break
            except errors.ConstraintViolation as exc:
                # Most likely a row the batch read as absent (an account's first balance, a free
                # checkout's order) that a concurrent transaction created meanwhile: read again,
                # once, before the combiner makes each delivery on its own.
                if raced:
                    raise
                raced = True
                log.info("a batch of %d webhooks is read again: %s", len(deliveries), exc)
            except _OnItsOwn as exc:
                retries += 1
                if retries > SET_ASIDE:
                    raise
                like = _shape(deliveries[exc.index].fact)
                alike = {exc.index} | {
                    i for i, d in enumerate(deliveries) if _shape(d.fact) == like
                }
                (waiting if exc.for_worker else aside).update(alike - aside - waiting)
        for index in sorted(aside):
            try:
                answered[index] = self._receive_one(deliveries[index])
            except errors.BillfoldError as exc:  # the database gone: this delivery's answer
                answered[index] = exc
        return [answered[i] for i in range(len(deliveries))]

    def _write_batch(
        self,
        deliveries: Sequence[Delivery],
        *,
        skip: frozenset[int],
        waiting: frozenset[int] = frozenset(),
        stored: bool = False,
        fetched: Mapping[int, Fetched] | None = None,
        committing: Callable[[], None] | None = None,
    ) -> dict[int, Receipt]:
        """``skip``: deliveries left out; ``waiting``: stored, unprocessed, for the worker.
        ``stored``: the events are in the inbox already (the worker's batch, with what was
        ``fetched`` from Stripe for each): locked, not inserted, and a settled one is answered as
        a duplicate; what processing one raises sends it out of the batch with its failure."""
        now = self._clock()
        answered: dict[int, Receipt] = {}
        # In account order: concurrent batches then lock the same balances in the same order.
        order = sorted(
            (i for i in range(len(deliveries)) if i not in skip),
            key=lambda i: _lock_order(deliveries[i].fact),
        )
        positions = sorted(
            {
                pos
                for i in order
                if i not in waiting
                for pos in self.handlers.positions(
                    deliveries[i].fact, fetched[i].line_items if fetched and i in fetched else None
                )
            }
        )
        payments = [
            payment
            for i in order
            if i not in waiting and (payment := self.handlers.payment(deliveries[i].fact))
        ]
        gates = sorted({p.payment_intent_id for p in payments if p.payment_intent_id})
        keys = sorted({p.key for p in payments})
        with self._uow() as uow:
            ledger = uow.ledger
            # The payments' gates first, in payment intent order, then their orders, in id
            # order (as one delivery locks its gate, then its order, then its balances), with
            # their reversals: three statements.
            locked = uow.payments.ensure_locked_many(gates, now=now) if gates else {}
            linked = sorted({o for o in locked.values() if o is not None})
            orders = uow.orders.lock_many(keys=keys, ids=linked) if keys or linked else []
            reversals = uow.reversals.for_payments(gates) if gates else []
            # The balances the batch grants to, locked in (account, unit) order and read at
            # once; every ledger write of the batch is decided against that snapshot and written
            # at the end in a fixed number of statements (as the ledger's own batches).
            read = BatchRead(keys=(), hold_ids=(), positions=tuple(positions), now=now)
            snapshot = ledger.load_batch(read) if positions else _NOTHING_READ
            # What the handlers write to: an overlay of that snapshot as its ledger, the gates
            # and reversals read above, and the writes that answer nothing kept for the end
            # (inbox_batch).
            view = BatchView(
                uow, snapshot, gates=locked, reversals=reversals, orders=orders, order_keys=keys
            )
            overlay = view.overlay
            # Every event of the batch stored in one statement: the id is still the gate (a
            # redelivery in the same batch is a duplicate of the first).
            unique = {deliveries[i].event.id: deliveries[i].event for i in order}
            if stored:
                fresh = {
                    found.id
                    for found in uow.inbox.lock_many(list(unique))
                    if found.status not in DONE_EVENT_STATUSES
                }
            else:
                fresh = uow.inbox.insert_many(list(unique.values()), now=now)
            outcomes: list[tuple[str, EventStatus, str | None]] = []
            for_worker: list[str] = []
            for index in order:
                delivery = deliveries[index]
                event, fact = delivery.event, delivery.fact
                if event.id not in fresh:
                    answered[index] = WebhookReceipt(
                        event_id=event.id, duplicate=True, status="duplicate"
                    )
                    continue
                fresh.discard(event.id)
                if self._mode_mismatch(fact) is not None:
                    raise _OnItsOwn(index, "a livemode mismatch")
                if index in waiting:
                    for_worker.append(event.id)
                    answered[index] = WebhookReceipt(
                        event_id=event.id, duplicate=False, status="received"
                    )
                    continue
                got = fetched.get(index, Fetched()) if fetched else Fetched()
                try:
                    applied = self.handlers.apply(view, fact, event.id, now, got)
                except NotBatched as exc:
                    raise _OnItsOwn(index, str(exc)) from exc
                except (errors.StorageUnavailable, DeferredWritesFailed):
                    raise  # the batch's, not this delivery's
                except Exception as exc:
                    if not stored:
                        raise
                    raise _OnItsOwn(index, "processing raised", failure=exc) from exc
                if not isinstance(applied, Applied):
                    raise _OnItsOwn(index, "needs Stripe", for_worker=True)
                outcomes.append((event.id, applied.status, applied.note))
                answered[index] = WebhookReceipt(
                    event_id=event.id, duplicate=False, status=applied.status, note=applied.note
                )
            if committing is not None:
                committing()  # all is decided: the next batch may start
            view.flush(last=True)
            uow.inbox.release_many(for_worker, now=now, note=FOR_WORKER)
            # The worker's events may have failed before; a webhook's were stored just now.
            uow.inbox.finish_many(
                outcomes,
                now=now,
                from_statuses=("received", "failed", "dead") if stored else ("received",),
            )
            writes = overlay.writes()
            if writes.transactions or writes.new_balances or writes.balances or writes.grants:
                ledger.flush_batch(writes)
            for account_id, unit, alert in writes.alerts:
                ledger.set_low_alert(account_id, unit, alert)
            for notification in writes.notifications:
                ledger.add_notification(notification)
            uow.commit()
        return answered

    def _receive_one(self, delivery: Delivery) -> WebhookReceipt:
        event, fact = delivery.event, delivery.fact
        now = self._clock()
        failure: Exception | None = None
        try:
            with self._uow() as uow:
                if not uow.inbox.insert(event, now=now, lease=None):
                    return WebhookReceipt(event_id=event.id, duplicate=True, status="duplicate")
                mismatch = self._mode_mismatch(fact)
                if mismatch is not None:
                    uow.inbox.fail(
                        event.id,
                        error=mismatch,
                        now=now,
                        next_attempt_at=None,
                        dead=True,
                        worker=WEBHOOK,
                    )
                    uow.commit()
                    log.warning(
                        "event %s refused: %s", event.id, mismatch, extra={"event_id": event.id}
                    )
                    return WebhookReceipt(event_id=event.id, duplicate=False, status="dead")
                applied = self.handlers.apply(uow, fact, event.id, now, Fetched())
                if isinstance(applied, Applied):
                    self._finish(uow, event.id, applied, now)
                    uow.commit()
                    return WebhookReceipt(event_id=event.id, duplicate=False, status=applied.status)
                # Needs Stripe: leaving without commit rolls back; the worker asks Stripe.
        except errors.StorageUnavailable:
            raise
        except Exception as exc:
            failure = exc
        return self._store_alone(event, now, failure)

    def _store_alone(
        self, event: InboundEvent, now: int, failure: Exception | None
    ) -> WebhookReceipt:
        """Commit the event without its effects: failed (to retry), or received (for the
        worker, because it needs Stripe)."""
        with self._uow() as uow:
            if not uow.inbox.insert(event, now=now, lease=None):
                return WebhookReceipt(event_id=event.id, duplicate=True, status="duplicate")
            if failure is None:
                uow.inbox.release(event.id, now=now, note=FOR_WORKER)
                status: OutcomeStatus = "received"
            else:
                message = f"{type(failure).__name__}: {failure}"[:MAX_ERROR]
                log.warning("event %s failed: %s", event.id, message, extra={"event_id": event.id})
                dead = self.max_attempts <= 1
                uow.inbox.fail(
                    event.id,
                    error=message,
                    now=now,
                    next_attempt_at=None if dead else now + self.backoff(1),
                    dead=dead,
                    worker=WEBHOOK,
                )
                status = "dead" if dead else "failed"
            uow.commit()
        return WebhookReceipt(event_id=event.id, duplicate=False, status=status)

    def receive(self, event: InboundEvent, *, lease_owner: str | None) -> Received:
        """Commit the event verbatim; lease it to ``lease_owner`` for processing right away."""
        now = self._clock()
        lease = (lease_owner, now + self.lease_seconds) if lease_owner else None
        with self._uow() as uow:
            stored = uow.inbox.insert(event, now=now, lease=lease)
            uow.commit()
        return Received(event_id=event.id, stored=stored)

    # --- processing ----------------------------------------------------------------------------

    def process(
        self,
        event_id: str,
        *,
        call_stripe: bool = True,
        fact: f.Fact | None = None,
        by: str | None = None,
    ) -> Outcome:
        """Process one event in one transaction: ledger writes and the event status together.

        When the fact needs something from Stripe, the transaction is rolled back, Stripe is asked
        outside it, and the fact applied again; without ``call_stripe`` the event is left to the
        worker. A failure is recorded in the event's attempt history (``worker``: ``by``, else
        the lease owner); a success is not (its status and ``processed_at`` say it), unless
        ``by`` names the operator who asked for it."""
        return self._processed(event_id, call_stripe=call_stripe, fact=fact, by=by, asked=None)

    def _processed(
        self,
        event_id: str,
        *,
        call_stripe: bool,
        fact: f.Fact | None,
        by: str | None,
        asked: Fetched | None,
    ) -> Outcome:
        """``process``; ``asked``: what was read from Stripe for it already (the worker's round),
        else what it evidently needs is asked first."""
        started = time.perf_counter()
        seen: list[EventRecord] = []
        by = by[:MAX_WORKER] if by else None
        outcome = self._process_fetching(event_id, fact, call_stripe, seen, by, asked)
        if seen:
            self._observe(seen[0].type, seen[0].stripe_created, outcome.status, started)
        return outcome

    def _process_fetching(
        self,
        event_id: str,
        fact: f.Fact | None,
        call_stripe: bool,
        seen: list[EventRecord],
        by: str | None,
        asked: Fetched | None,
    ) -> Outcome:
        fetched = asked if asked is not None else Fetched()
        if asked is None and call_stripe and self.stripe is not None:
            fetched = self._look_ahead(event_id, fact)
        while True:
            done = self._process(event_id, fact, fetched, seen, by)
            if isinstance(done, Outcome):
                return done
            if not call_stripe or self.stripe is None:
                return self._leave_for_worker(event_id)
            try:
                # The call to Stripe happens here, between transactions, never while holding a lock.
                fetched = self._fetch(done, fetched)
            except Exception as exc:
                return self._failed(event_id, exc, self._clock(), by)

    def _look_ahead(self, event_id: str, fact: f.Fact | None) -> Fetched:
        """What the event evidently needs from Stripe (a paid checkout that names no package needs
        its line items), asked before the first transaction: that transaction then applies it
        instead of finding out and rolling back. A guess: whatever else is needed is asked for
        as always, and a call that fails here is made again there (where its failure counts)."""
        if fact is None:
            with self._uow() as uow:
                record = uow.inbox.get(event_id)
            if record is None or record.status in DONE_EVENT_STATUSES:
                return Fetched()
            try:
                fact = self.events.read(record.payload or "")
            except errors.BillfoldError:
                return Fetched()
        needs = self.handlers.evident_needs(fact)
        if needs is None:
            return Fetched()
        try:
            return self._fetch(needs, Fetched())
        except Exception:  # asked again, and recorded, when it is needed
            return Fetched()

    def _fetch(self, needs: Needs, fetched: Fetched) -> Fetched:
        stripe = self.stripe
        assert stripe is not None
        match needs:
            case NeedsLineItems():
                if fetched.line_items is not None:  # pragma: no cover - decide never asks twice
                    raise errors.InvariantViolation("line items were asked for twice")
                return replace(
                    fetched, line_items=tuple(stripe.checkout_line_items(needs.session_id))
                )
            case NeedsRefunds():
                if fetched.refunds is not None:  # pragma: no cover - asked once per charge
                    raise errors.InvariantViolation("refunds were asked for twice")
                return replace(fetched, refunds=tuple(stripe.list_refunds(needs.charge_id)))
            case NeedsSubscription():
                if fetched.subscription is not None:  # pragma: no cover - read once per event
                    raise errors.InvariantViolation("the subscription was asked for twice")
                return replace(
                    fetched,
                    subscription=self._subscriptions().retrieve_subscription(needs.subscription_id),
                )
            case NeedsInvoice():
                if fetched.invoice is not None:  # pragma: no cover - read once per event
                    raise errors.InvariantViolation("the invoice was asked for twice")
                invoice = self._subscriptions().retrieve_invoice(needs.invoice_id)
                return replace(fetched, invoice=invoice)
            case NeedsInvoicePayments():
                if fetched.invoice_payment_intents is not None:  # pragma: no cover
                    raise errors.InvariantViolation("the invoice's payments were asked for twice")
                intents = self._subscriptions().invoice_payment_intents(needs.invoice_id)
                return replace(fetched, invoice_payment_intents=tuple(intents))
            case NeedsPrices():
                if fetched.price_lookup_keys is not None:  # pragma: no cover
                    raise errors.InvariantViolation("the invoice's prices were asked for twice")
                keys = self._subscriptions().price_lookup_keys(needs.price_ids)
                return replace(fetched, price_lookup_keys=keys)
            case _:
                assert_never(needs)

    def _process(
        self,
        event_id: str,
        fact: f.Fact | None,
        fetched: Fetched,
        seen: list[EventRecord] | None = None,
        by: str | None = None,
    ) -> Outcome | Needs:
        now = self._clock()
        try:
            with self._uow() as uow:
                worker = by
                if fact is None:
                    record = uow.inbox.lock(event_id)
                    if record is None:
                        raise errors.EventNotFound(f"No event {event_id!r} in the inbox.")
                    if record.status in DONE_EVENT_STATUSES:
                        return Outcome(event_id=event_id, status="skipped", note=record.status)
                    if seen is not None and not seen:
                        seen.append(record)
                    worker = by or record.lease_owner
                    fact = self.events.read(record.payload or "")
                mismatch = self._mode_mismatch(fact)
                if mismatch is not None:
                    # Not retried: an operator looks at it (it is listed with the dead events).
                    uow.inbox.fail(
                        event_id,
                        error=mismatch,
                        now=now,
                        next_attempt_at=None,
                        dead=True,
                        worker=worker,
                    )
                    uow.commit()
                    log.warning(
                        "event %s refused: %s", event_id, mismatch, extra={"event_id": event_id}
                    )
                    return Outcome(event_id=event_id, status="dead", note=mismatch)
                applied = self.handlers.apply(uow, fact, event_id, now, fetched)
                if not isinstance(applied, Applied):
                    return applied  # leaving without commit rolls back
                if not self._finish(uow, event_id, applied, now):
                    return Outcome(event_id=event_id, status="skipped", note="already processed")
                if by is not None:  # an operator's retry or replay: never the worker's success
                    uow.inbox.record_attempt(
                        event_id, outcome=applied.status, now=now, error=None, worker=by
                    )
                uow.commit()
                return Outcome(event_id=event_id, status=applied.status, note=applied.note)
        except errors.StorageUnavailable:
            raise
        except Exception as exc:
            return self._failed(event_id, exc, now, by)

    def _mode_mismatch(self, fact: f.Fact) -> str | None:
        """Why a live event must not move value in a test setup (or the reverse), if it must not."""
        if self.livemode is None or isinstance(fact, f.Ignored) or fact.livemode == self.livemode:
            return None
        event_mode, key_mode = ("live", "test") if fact.livemode else ("test", "live")
        return (
            f"livemode mismatch: a {event_mode}-mode event, but billfold is configured with a "
            f"{key_mode}-mode Stripe key; nothing was granted. Check the webhook endpoint and "
            "BILLFOLD_STRIPE_SECRET_KEY."
        )

    @staticmethod
    def _finish(uow: UnitOfWork, event_id: str, applied: Applied, now: int) -> bool:
        """Record the outcome, unless another process finished the event meanwhile."""
        return uow.inbox.finish(
            event_id,
            status=applied.status,
            outcome=applied.note,
            now=now,
            from_statuses=("received", "failed", "dead"),
        )

    def _leave_for_worker(self, event_id: str) -> Outcome:
        with self._uow() as uow:
            uow.inbox.release(event_id, now=self._clock(), note=FOR_WORKER)
            uow.commit()
        return Outcome(event_id=event_id, status="received", note="needs Stripe")

    def _failed(self, event_id: str, exc: Exception, now: int, by: str | None) -> Outcome:
        message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        log.warning("event %s failed: %s", event_id, message, extra={"event_id": event_id})
        with self._uow() as uow:
            record = uow.inbox.get(event_id, with_payload=False)
            attempts = (record.attempts if record else 0) + 1
            dead = attempts >= self.max_attempts
            uow.inbox.fail(
                event_id,
                error=message,
                now=now,
                next_attempt_at=None if dead else now + self.backoff(attempts),
                dead=dead,
                worker=by or (record.lease_owner if record else None),
            )
            uow.commit()
        return Outcome(event_id=event_id, status="dead" if dead else "failed", note=message)

    def backoff(self, attempts: int) -> int:
        """Seconds before attempt ``attempts + 1``: exponential, capped at an hour, with jitter."""
        base = min(3600.0, self.backoff_base * 2 ** max(attempts - 1, 0))
        return max(1, int(base * random.uniform(0.8, 1.2)))

    # --- the worker's side ---------------------------------------------------------------------

    def process_claimed(self, event_ids: Sequence[str], *, threads: int = 1) -> list[Outcome]:
        """The worker's round over the events it claimed: read them at once, ask Stripe for what
        each evidently needs (``threads`` calls at a time, outside any transaction), then apply
        them together in one transaction through the batch path (one snapshot of the balances
        they grant to). One that needs more from Stripe, or reads the ledger beyond the batch,
        is processed on its own afterwards (``process``, as before); one whose processing raises
        records that failed attempt, as ``process`` would, and the batch goes on without it."""
        started = time.perf_counter()
        outcomes: dict[str, Outcome] = {}
        with self._uow() as uow:
            records = uow.inbox.get_many(event_ids)  # one gone (an operator's purge) is not there
        items: list[tuple[Delivery, EventRecord]] = []
        alone: list[str] = []
        for record in records:
            if record.status in DONE_EVENT_STATUSES:
                outcomes[record.id] = Outcome(
                    event_id=record.id, status="skipped", note=record.status
                )
                continue
            try:
                fact = self.events.read(record.payload or "")
            except errors.BillfoldError:
                alone.append(record.id)  # process records why
                continue
            items.append((Delivery(event=_inbound(record), fact=fact), record))
        deliveries = [d for d, _ in items]
        fetched = dict(enumerate(self._look_ahead_all([d.fact for d in deliveries], threads)))
        aside: set[int] = set()
        failed: dict[int, Exception] = {}
        answered: dict[int, Receipt] = {}
        for _ in range(SET_ASIDE + 1):
            left_out = frozenset(aside | set(failed))
            if len(left_out) == len(deliveries):
                break
            try:
                answered = self._write_batch(
                    deliveries, skip=left_out, stored=True, fetched=fetched
                )
                break
            except _OnItsOwn as exc:
                if exc.failure is not None:
                    failed[exc.index] = exc.failure
                else:
                    aside.add(exc.index)
            except Exception as exc:  # the batch as a whole (a row created meanwhile, a deadlock)
                log.info("the worker's batch goes one by one: %s", exc)
                aside = set(range(len(deliveries))) - set(failed)
                answered = {}
                break
        else:  # still refused past the retries: each on its own
            aside = set(range(len(deliveries))) - set(failed)
            answered = {}
        now = self._clock()
        for index, failure in failed.items():
            record = items[index][1]
            outcome = self._failed(record.id, failure, now, None)
            outcomes[record.id] = outcome
            self._observe(record.type, record.stripe_created, outcome.status, started)
        for index, receipt in answered.items():
            if isinstance(receipt, WebhookReceipt):
                event, record = deliveries[index].event, items[index][1]
                if receipt.duplicate:
                    outcomes[event.id] = Outcome(
                        event_id=event.id, status="skipped", note="already processed"
                    )
                    continue
                status = receipt.status
                assert status != "duplicate"
                outcomes[event.id] = Outcome(event_id=event.id, status=status, note=receipt.note)
                self._observe(record.type, record.stripe_created, status, started)
        # On its own, with what was read from Stripe for it (not asked again).
        asked: dict[str, Fetched | None] = dict.fromkeys(alone)
        asked.update((deliveries[i].event.id, fetched[i]) for i in sorted(aside))
        if asked:

            def one(event_id: str) -> Outcome:
                return self._processed(
                    event_id, call_stripe=True, fact=None, by=None, asked=asked[event_id]
                )

            with ThreadPoolExecutor(
                max(1, min(threads, len(asked))), thread_name_prefix="billfold-event"
            ) as pool:
                for event_id, outcome in zip(asked, pool.map(one, asked), strict=True):
                    outcomes[event_id] = outcome
        return [outcomes[e] for e in dict.fromkeys(event_ids) if e in outcomes]

    def _look_ahead_all(self, facts: Sequence[f.Fact], threads: int) -> list[Fetched]:
        if self.stripe is None:
            return [Fetched() for _ in facts]
        needing = [i for i, fact in enumerate(facts) if self.handlers.evident_needs(fact)]
        found = [Fetched() for _ in facts]
        if not needing:
            return found
        if threads <= 1 or len(needing) == 1:
            answers = [self._look_ahead("", facts[i]) for i in needing]
        else:
            pool = self._askers.get(threads)
            answers = list(pool.map(lambda i: self._look_ahead("", facts[i]), needing))
        for index, got in zip(needing, answers, strict=True):
            found[index] = got
        return found

    def claim(self, owner: str, limit: int) -> list[str]:
        now = self._clock()
        with self._uow() as uow:
            claimed = uow.inbox.claim(
                owner=owner, now=now, lease_seconds=self.lease_seconds, limit=limit
            )
            uow.commit()
        return claimed

    def heartbeat(self, owner: str) -> None:
        """A worker says it is alive (``/readyz`` and the metrics report the latest)."""
        with self._uow() as uow:
            uow.inbox.beat(owner, now=self._clock())
            uow.commit()

    def unclaim(self, event_id: str, owner: str) -> bool:
        """A stopping worker gives back an event it claimed but did not start."""
        with self._uow() as uow:
            done = uow.inbox.unlease(event_id, owner=owner)
            uow.commit()
        return done

    def import_from_stripe(
        self, *, since: int, progress: Callable[[str], None] | None = None
    ) -> Imported:
        """Take in every event Stripe has since ``since`` that the inbox lacks, and process it.

        For webhooks that never arrived (an outage longer than Stripe's retries, a misconfigured
        endpoint). Events already in the inbox are left as they are."""
        stripe = self._require_stripe()
        seen = missing = processed = failed = 0
        for event in stripe.list_events(created_gte=since, types=sorted(self.handled_types)):
            seen += 1
            received = self.receive(event, lease_owner=None)
            if progress is not None:
                progress(received.event_id)
            if not received.stored:
                continue
            missing += 1
            outcome = self.process(received.event_id)
            if outcome.status in ("processed", "ignored"):
                processed += 1
            else:
                failed += 1
        return Imported(seen=seen, missing=missing, processed=processed, failed=failed)

    def replay(self, event_id: str, *, by: str = OPERATOR) -> Outcome:
        """Process an event again, whatever its status. Every effect is keyed, so a replay of an
        event that was processed changes nothing; one that was not is completed. Its outcome is
        recorded in the event's attempt history, ``by`` the operator."""
        now = self._clock()
        with self._uow() as uow:
            if uow.inbox.get(event_id, with_payload=False) is None:
                raise errors.EventNotFound(f"No event {event_id!r} in the inbox.")
            uow.inbox.reopen(event_id, now=now)
            uow.commit()
        return self.process(event_id, by=by)

    def retry(self, event_id: str, *, by: str = OPERATOR) -> Retried:
        """An operator's retry: process the event now, whatever its attempts so far. Its outcome
        is recorded in the event's attempt history, ``by`` the operator."""
        now = self._clock()
        with self._uow() as uow:
            record = uow.inbox.get(event_id, with_payload=False)
            if record is None:
                raise errors.EventNotFound(f"No event {event_id!r} in the inbox.")
            if record.status in DONE_EVENT_STATUSES:
                raise errors.EventNotRetryable(
                    f"Event {event_id} is already {record.status}; there is nothing to retry.",
                    status=record.status,
                )
            uow.inbox.retry(event_id, now=now)
            uow.commit()
        outcome = self.process(event_id, by=by)
        with self._uow() as uow:
            after = uow.inbox.get(event_id, with_payload=False)
        assert after is not None
        return Retried(event=after, outcome=outcome)

    def _subscriptions(self) -> StripeSubscriptions:
        if self.stripe_subscriptions is None:
            raise errors.StripeUnavailable("Stripe's subscriptions API is not configured.")
        return self.stripe_subscriptions

    def _require_stripe(self) -> StripeGateway:
        if self.stripe is None:
            raise errors.ConfigurationError(
                "BILLFOLD_STRIPE_SECRET_KEY is not set: billfold cannot call Stripe."
            )
        return self.stripe

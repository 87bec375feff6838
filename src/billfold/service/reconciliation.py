"""Reconciliation with Stripe: a run, on a schedule (the worker), on demand (``billfold reconcile``,
``POST /v1/reconciliation/runs``) and at the end of ``billfold audit``.

A run, one at a time across every process (a lease in the database, renewed as it goes):

1. **Money, as Stripe has it**: the paid checkout sessions, paid invoices, refunds and disputes
   created in the window (default the last three days), and every subscription; each one's effect
   is checked in billfold (an order fulfilled for the right amount, a refund clawed back, a
   dispute held, the subscription's status). What is missing is drift, of one class.
2. **Events**: Stripe's Events API is paged from the stored cursor (on demand: from the window's
   start, back to the 30 days Stripe keeps) and every event the inbox lacks is put into it and
   processed as usual. Then the drift found in 1 is healed where the events can heal it: the
   events of its objects not yet processed are processed; a subscription's state that still
   differs is re-read through the subscription sync. Nothing is ever granted without a Stripe
   object proving the payment, and nothing else is written: what the events cannot heal is
   reported, open, for an operator.
3. **Billfold against Stripe**: billfold's fulfilled orders created in the window are checked
   against Stripe (``granted_without_payment``), with their amounts (``amount_mismatch``).

The run's record (counts per class, items with Stripe's and billfold's ids and amounts) is written
when it ends, in the same transaction as the lease's release and every completion hook
(:attr:`Reconciliation.completion_hooks`: a ``reconciliation.drift`` notification goes there, in
the transaction that completes the run). A run whose process died keeps ``running`` until its lease
lapses; the next run then marks it ``failed`` and starts over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from billfold.domain import errors, ids
from billfold.domain import reconciliation as rc
from billfold.domain.orders import FINAL, OrderRecord, checkout_key, invoice_key
from billfold.domain.records import DONE_EVENT_STATUSES, InboundEvent, Page
from billfold.service.billing import Billing
from billfold.service.inbox import Inbox
from billfold.service.outbox import reconciliation_drift
from billfold.service.ports import Clock, StripeGateway, StripeLedger, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("billfold.reconciliation")

Progress = Callable[[str, int], None]
"""``progress(stage, done)``: what a run is reading (``events``, ``checkout sessions``, ...) and
how many of it so far."""

CompletionHook = Callable[[UnitOfWork, rc.RunRecord], None]
"""Called with the unit of work that completes a run (commit is the caller's), and the run."""

ORDERS_PAGE = 500
EVENTS_BATCH = 200
MAX_ERROR = 2000
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Started:
    """What :meth:`Reconciliation.start` did: made ``run`` (``created``), or found it running."""

    run: rc.RunRecord
    created: bool


@dataclass(slots=True)
class _Finding:
    """A drift item while the run still works on it."""

    drift_class: rc.DriftClass
    stripe_ids: tuple[str, ...]
    billfold_ids: tuple[str, ...]
    amount: int | None
    currency: str | None
    note: str
    objects: tuple[str, ...]
    """The Stripe objects whose events may heal it."""
    recheck: Callable[[UnitOfWork], _Finding | None] | None
    created: int = 0
    healed: bool = False

    def item(self) -> rc.DriftItem:
        return rc.DriftItem(
            drift_class=self.drift_class,
            stripe_ids=self.stripe_ids,
            billfold_ids=self.billfold_ids,
            amount=self.amount,
            currency=self.currency,
            healed=self.healed,
            note=self.note,
        )


@dataclass(slots=True)
class _Work:
    run: rc.RunRecord
    progress: Progress | None
    findings: list[_Finding] = field(default_factory=list)
    events_imported: int = 0
    events_by_object: dict[str, list[str]] = field(default_factory=dict)
    sessions: dict[str, rc.StripeSession] = field(default_factory=dict)
    invoices: dict[str, rc.StripeInvoice] = field(default_factory=dict)
    last_beat: float = 0.0


class LeaseLost(errors.BillfoldError):
    """Another process took the reconciliation lease: this run stopped."""

    code = "reconciliation_lease_lost"


class Reconciliation:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        inbox: Inbox,
        billing: Billing,
        stripe: StripeLedger | None,
        events: StripeGateway | None,
        clock: Clock,
        lease_seconds: int = 60,
        owner: str | None = None,
    ) -> None:
        self._uow = uow_factory
        self.inbox = inbox
        self.billing = billing
        self.stripe = stripe
        self.events = events
        self._clock = clock
        self.lease_seconds = lease_seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._background: list[threading.Thread] = []
        self.completion_hooks: list[CompletionHook] = [notify_drift]
        """Run inside the transaction that completes a run: a ``reconciliation.drift``
        notification for the application when drift stays open, and any others added."""

    # --- reading runs --------------------------------------------------------------------------

    def get(self, run_id: str) -> rc.RunRecord:
        with self._uow() as uow:
            run = uow.reconciliation.get_run(run_id)
        if run is None:
            raise errors.ReconciliationRunNotFound(
                f"No reconciliation run {run_id!r}.", run_id=run_id
            )
        return run

    def list(self, *, limit: int = 10, starting_after: str | None = None) -> Page[rc.RunRecord]:
        """Runs, newest first."""
        with self._uow() as uow:
            if starting_after is not None and uow.reconciliation.get_run(starting_after) is None:
                raise errors.CursorNotFound(starting_after)
            runs = uow.reconciliation.list_runs(limit=limit + 1, starting_after=starting_after)
        return Page(data=tuple(runs[:limit]), has_more=len(runs) > limit)

    # --- starting and running ------------------------------------------------------------------

    def window(self, since: int | None, until: int | None) -> tuple[int, int]:
        """The money check's window: ``[since, until]``, by default the last three days."""
        now = self._clock()
        until = now if until is None else until
        since = until - rc.DEFAULT_WINDOW_SECONDS if since is None else since
        if since < 0 or until < 0:
            raise errors.ValidationError("since and until are Unix times in seconds.")
        if since > until:
            raise errors.ValidationError("since must not be after until.", param="since")
        return since, until

    def start(
        self, *, since: int | None = None, until: int | None = None, trigger: str = "api"
    ) -> Started:
        """Make a run and take the lease for it. While another run holds a live lease, that run
        is answered instead (one run at a time); a run whose lease lapsed (its process died) is
        marked ``failed`` first."""
        self._require_stripe()
        since, until = self.window(since, until)
        now = self._clock()
        with self._uow() as uow:
            store = uow.reconciliation
            lease = store.lease()
            if lease.run_id is not None and lease.until > now:
                running = store.get_run(lease.run_id)
                if running is not None and running.status == "running":
                    return Started(run=running, created=False)
            for stale in store.running_runs():
                store.update_run(
                    stale.id,
                    status="failed",
                    events_imported=stale.events_imported,
                    items=stale.items,
                    error="abandoned: the process running it stopped before it finished "
                    "(its lease lapsed); a later run started over",
                    finished=now,
                )
            run = rc.RunRecord(
                id=ids.new_id("rcn"),
                status="running",
                trigger=trigger,
                since=since,
                until=until,
                events_imported=0,
                items=(),
                error=None,
                started=now,
                finished=None,
            )
            store.insert_run(run)
            store.set_lease(run_id=run.id, owner=self.owner, until=now + self.lease_seconds)
            uow.commit()
        log.info("reconciliation run %s started (%s)", run.id, trigger)
        return Started(run=run, created=True)

    def run(
        self,
        *,
        since: int | None = None,
        until: int | None = None,
        trigger: str = "cli",
        progress: Progress | None = None,
        wait_seconds: float | None = None,
    ) -> rc.RunRecord:
        """Start a run and carry it out here; answers the finished run. While another run holds
        the lease, wait for it to end (or lapse) up to ``wait_seconds`` (default: twice the
        lease), then start this one."""
        deadline = time.monotonic() + (
            2 * self.lease_seconds + 5 if wait_seconds is None else wait_seconds
        )
        while True:
            started = self.start(since=since, until=until, trigger=trigger)
            if started.created:
                return self.execute(started.run.id, progress=progress)
            if time.monotonic() >= deadline:
                raise errors.ReconciliationRunning(
                    f"Reconciliation run {started.run.id} is still running.",
                    run_id=started.run.id,
                )
            if progress is not None:
                progress(f"waiting for run {started.run.id}", 0)
            time.sleep(0.5)

    def start_in_background(
        self, *, since: int | None = None, until: int | None = None, trigger: str = "api"
    ) -> Started:
        """Start a run and carry it out in a thread of this process (the HTTP API's 202)."""
        started = self.start(since=since, until=until, trigger=trigger)
        if started.created:
            thread = threading.Thread(
                target=self._execute_quietly,
                args=(started.run.id,),
                name=f"billfold-reconcile-{started.run.id}",
                daemon=True,
            )
            self._background = [t for t in self._background if t.is_alive()] + [thread]
            thread.start()
        return started

    def wait_idle(self, timeout: float) -> bool:
        """Wait for the runs this process carries out in the background; False on timeout."""
        deadline = time.monotonic() + timeout
        for thread in list(self._background):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._background)

    def _execute_quietly(self, run_id: str) -> None:
        try:
            self.execute(run_id)
        except BaseException:  # a thread has nobody to raise to: the lease lapses, a rerun fails it
            log.exception("reconciliation run %s stopped", run_id)

    def due(self, every_seconds: int) -> bool:
        """Whether a scheduled run is due: none started in the last ``every_seconds``."""
        with self._uow() as uow:
            last = uow.reconciliation.list_runs(limit=1, starting_after=None)
        return not last or self._clock() - last[0].started >= every_seconds

    def run_scheduled(self, every_seconds: int) -> rc.RunRecord | None:
        """The worker's run: one when due and no other is running; None otherwise."""
        if self.stripe is None or not self.due(every_seconds):
            return None
        started = self.start(trigger="schedule")
        if not started.created:
            return None
        return self.execute(started.run.id, full_events=False)

    def execute(
        self, run_id: str, *, progress: Progress | None = None, full_events: bool = True
    ) -> rc.RunRecord:
        """Carry out a started run to its end, and answer it ``completed`` or ``failed``.

        ``full_events``: page the Events API from the window's start (or the cursor, if older),
        as an operator's run does; otherwise from the cursor (the schedule)."""
        run = self.get(run_id)
        work = _Work(run=run, progress=progress, last_beat=time.monotonic())
        try:
            self._reconcile(work, full_events=full_events)
        except Exception as exc:
            message = (
                exc.message if isinstance(exc, errors.BillfoldError) else f"{type(exc).__name__}"
            )
            log.warning("reconciliation run %s failed: %s", run_id, message)
            if not isinstance(exc, errors.BillfoldError):
                log.exception("reconciliation run %s", run_id)
            return self._finish(work, status="failed", error=message[:MAX_ERROR])
        return self._finish(work, status="completed", error=None)

    # --- the run -------------------------------------------------------------------------------

    def _reconcile(self, work: _Work, *, full_events: bool) -> None:
        stripe = self._require_stripe()
        since, until = work.run.since, work.run.until
        # 1. Stripe's money over the window, each checked against billfold.
        window = {"since": since, "until": until}
        for session in self._paged(
            work, "checkout sessions", stripe.paid_checkout_sessions(**window)
        ):
            work.sessions[session.id] = session
            self._check(work, partial(self._session_drift, session=session), session.created)
        for invoice in self._paged(work, "invoices", stripe.paid_invoices(**window)):
            work.invoices[invoice.id] = invoice
            self._check(work, partial(self._invoice_drift, invoice=invoice), invoice.created)
        for refund in self._paged(work, "refunds", stripe.refunds(**window)):
            self._check(work, partial(self._reversal_drift, seen=refund), refund.created)
        for dispute in self._paged(work, "disputes", stripe.disputes(**window)):
            self._check(work, partial(self._reversal_drift, seen=dispute), dispute.created)
        for state in self._paged(work, "subscriptions", stripe.subscription_states()):
            self._check(work, partial(self._subscription_drift, state=state), state.created)
        # 2. Events: every event the inbox lacks goes in; then what they can heal is healed.
        self._import_events(work, self._events_since(work, full_events))
        self._heal(work)
        # 3. What billfold granted, against Stripe.
        self._check_orders(work)

    def _paged(self, work: _Work, stage: str, items: Iterable[T]) -> Iterator[T]:
        for done, item in enumerate(items, start=1):
            self._beat(work)
            if work.progress is not None:
                work.progress(stage, done)
            yield item

    def _check(
        self, work: _Work, check: Callable[[UnitOfWork], _Finding | None], created: int
    ) -> None:
        with self._uow() as uow:
            finding = check(uow)
        if finding is not None:
            finding.recheck = check
            finding.created = created
            work.findings.append(finding)

    def _events_since(self, work: _Work, full: bool) -> int:
        now = self._clock()
        oldest = now - rc.EVENTS_RETENTION_SECONDS
        with self._uow() as uow:
            cursor = uow.reconciliation.events_cursor()
        from_cursor = None if cursor is None else cursor - rc.CURSOR_OVERLAP_SECONDS
        if full or from_cursor is None:
            start = work.run.since if from_cursor is None else min(work.run.since, from_cursor)
        else:
            start = from_cursor
        return max(oldest, start)

    def _import_events(self, work: _Work, since: int) -> None:
        """Every event since ``since`` that the inbox lacks, received and processed as usual;
        remembers which events speak of which object (to heal with them)."""
        events = self._require_events()
        newest: int | None = None
        types = sorted(self.inbox.handled_types)
        batch: list[InboundEvent] = []
        listed = events.list_events(created_gte=since, types=types)
        for event in self._paged(work, "events", listed):
            if event.object_id is not None:
                work.events_by_object.setdefault(event.object_id, []).append(event.id)
            if event.created is not None and (newest is None or event.created > newest):
                newest = event.created
            batch.append(event)
            if len(batch) >= EVENTS_BATCH:
                self._take_in(work, batch)
                batch = []
        self._take_in(work, batch)
        if newest is not None:
            with self._uow() as uow:
                # Never past billfold's now: events stamped by a test clock ahead of it would
                # otherwise carry the cursor past events still to come.
                uow.reconciliation.advance_events_cursor(min(newest, self._clock()))
                uow.commit()

    def _take_in(self, work: _Work, batch: Sequence[InboundEvent]) -> None:
        """Receive and process the events of ``batch`` the inbox lacks (one read for them all)."""
        if not batch:
            return
        with self._uow() as uow:
            known = uow.reconciliation.known_events([e.id for e in batch])
        for event in batch:
            if event.id in known:
                continue
            if self.inbox.receive(event, lease_owner=None).stored:
                work.events_imported += 1
                self.inbox.process(event.id)

    def _heal(self, work: _Work) -> None:
        """Process the events of each finding's objects that are not done (failed, waiting for
        the worker), then look again; a subscription's state that still differs is re-read."""
        unindexed = [
            f for f in work.findings if not any(o in work.events_by_object for o in f.objects)
        ]
        if unindexed:
            # Their events are older than this run read: read back to them (within 30 days).
            oldest = min(f.created for f in unindexed) - rc.CURSOR_OVERLAP_SECONDS
            self._import_events(work, max(oldest, self._clock() - rc.EVENTS_RETENTION_SECONDS))
        for finding in work.findings:
            self._beat(work)
            for object_id in finding.objects:
                for event_id in work.events_by_object.get(object_id, []):
                    with self._uow() as uow:
                        record = uow.inbox.get(event_id, with_payload=False)
                    if record is not None and record.status not in DONE_EVENT_STATUSES:
                        self.inbox.process(event_id)
            if self._settled(finding):
                continue
            if finding.drift_class == "subscription_state_drift":
                self._resync(finding)
                self._settled(finding)

    def _settled(self, finding: _Finding) -> bool:
        assert finding.recheck is not None
        with self._uow() as uow:
            again = finding.recheck(uow)
        finding.healed = again is None
        return finding.healed

    def _resync(self, finding: _Finding) -> None:
        """The subscription sync, for the account of a subscription whose state differs."""
        account = finding.billfold_ids[0] if finding.billfold_ids else None
        if account is None or self.billing.stripe is None:
            return
        try:
            self.billing.sync(account)
        except errors.BillfoldError as exc:
            finding.note += f"; the subscription sync failed: {exc.message}"

    def _check_orders(self, work: _Work) -> None:
        stripe = self._require_stripe()
        reported = {i for f in work.findings for i in f.billfold_ids}
        after: str | None = None
        done = 0
        while True:
            with self._uow() as uow:
                orders = uow.reconciliation.fulfilled_orders(
                    since=work.run.since,
                    until=work.run.until,
                    limit=ORDERS_PAGE,
                    starting_after=after,
                )
            if not orders:
                return
            after = orders[-1].id
            for order in orders:
                done += 1
                self._beat(work)
                if work.progress is not None:
                    work.progress("orders", done)
                if order.id in reported:
                    continue
                finding = self._order_drift(order, work, stripe)
                if finding is not None:
                    work.findings.append(finding)

    def _order_drift(
        self, order: OrderRecord, work: _Work, stripe: StripeLedger
    ) -> _Finding | None:
        seen: rc.StripeSession | rc.StripeInvoice | None = (
            work.sessions.get(order.stripe_id)
            if order.kind == "checkout"
            else work.invoices.get(order.stripe_id)
            if order.kind == "invoice"
            else None
        )
        if seen is not None:
            return None  # listed as paid, and its amount checked with it
        payment = stripe.payment(order.kind, order.stripe_id)
        ids_ = _ids(order.stripe_id, order.payment_intent_id)
        if payment is None or not payment.paid:
            why = "Stripe does not know it" if payment is None else "Stripe says it is not paid"
            return _found(
                "granted_without_payment",
                ids_,
                (order.id,),
                order.amount,
                order.currency,
                f"order {order.id} is {order.status}, but {why}",
            )
        if not _same_money(order.amount, order.currency, payment.amount, payment.currency):
            return _found(
                "amount_mismatch",
                ids_,
                (order.id,),
                payment.amount,
                payment.currency,
                f"Stripe took {payment.amount} {payment.currency}; order {order.id} says "
                f"{order.amount} {order.currency}",
            )
        return None

    # --- the checks (each reads billfold in one unit of work) ----------------------------------

    @staticmethod
    def _session_drift(uow: UnitOfWork, session: rc.StripeSession) -> _Finding | None:
        order = uow.orders.by_key(checkout_key(session.id))
        if order is None and session.payment_intent_id is not None:
            order = uow.reconciliation.order_of_payment(session.payment_intent_id)
        return _payment_drift(
            order,
            _ids(session.id, session.payment_intent_id),
            session.amount,
            session.currency,
            what=f"checkout session {session.id}",
            objects=_ids(session.id, session.payment_intent_id),
        )

    @staticmethod
    def _invoice_drift(uow: UnitOfWork, invoice: rc.StripeInvoice) -> _Finding | None:
        order = uow.orders.by_key(invoice_key(invoice.id))
        return _payment_drift(
            order,
            _ids(invoice.id, *invoice.payment_intent_ids),
            invoice.amount,
            invoice.currency,
            what=f"invoice {invoice.id}",
            objects=(invoice.id,),
        )

    @staticmethod
    def _reversal_drift(uow: UnitOfWork, seen: rc.StripeReversal) -> _Finding | None:
        if seen.payment_intent_id is None:
            return None
        order = uow.reconciliation.order_of_payment(seen.payment_intent_id)
        if order is None or order.status not in FINAL:
            return None  # nothing was granted for it: nothing to take back
        reversal = uow.reconciliation.reversal_by_key(f"{seen.kind}:{seen.id}")
        state = None if reversal is None else reversal.state
        if seen.kind == "refund":
            drift_class: rc.DriftClass = "refunded_not_clawed_back"
            wanted = (
                {"applied"}
                if seen.status in rc.REFUND_ACTIVE
                else {"restored", "void", "pending", None}  # failed or canceled: nothing taken
            )
        else:
            drift_class = "disputed_not_held"
            if seen.status in rc.DISPUTE_OPEN:
                wanted = {"held", "void"}
            elif seen.status == "lost":
                wanted = {"applied", "void"}
            else:
                wanted = {"released", "void", "pending", None}
        if state in wanted:
            return None
        billfold = (order.id,) if reversal is None else (order.id, reversal.id)
        return _found(
            drift_class,
            _ids(seen.id, seen.charge_id, seen.payment_intent_id),
            billfold,
            seen.amount,
            seen.currency,
            f"Stripe's {seen.kind} {seen.id} is {seen.status}; billfold's is {state or 'missing'}",
            objects=_ids(seen.id, seen.charge_id),
        )

    @staticmethod
    def _subscription_drift(uow: UnitOfWork, state: rc.StripeSubscriptionState) -> _Finding | None:
        copy = uow.subscriptions.get(state.id)
        account_id = copy.account_id if copy is not None else None
        if account_id is None and state.customer_id is not None:
            account = uow.accounts.by_stripe_customer(state.customer_id)
            account_id = None if account is None else account.id
        if copy is None and account_id is None:
            return None  # a subscription billfold has nothing to do with
        status = None if copy is None else copy.status
        if status == state.status:
            return None
        return _found(
            "subscription_state_drift",
            _ids(state.id, state.customer_id),
            _ids(account_id),
            None,
            None,
            f"Stripe says {state.status}; billfold says {status or 'nothing'}",
            objects=(state.id,),
        )

    # --- the lease and the record --------------------------------------------------------------

    def _beat(self, work: _Work) -> None:
        """Renew the lease now and then; stop the run if another process took it."""
        if time.monotonic() - work.last_beat < max(1.0, self.lease_seconds / 3):
            return
        work.last_beat = time.monotonic()
        with self._uow() as uow:
            held = uow.reconciliation.renew_lease(
                work.run.id, until=self._clock() + self.lease_seconds
            )
            uow.commit()
        if not held:
            raise LeaseLost(f"Run {work.run.id} lost its lease to another process.")

    def _finish(self, work: _Work, *, status: rc.RunStatus, error: str | None) -> rc.RunRecord:
        now = self._clock()
        items = tuple(f.item() for f in work.findings)
        with self._uow() as uow:
            store = uow.reconciliation
            current = store.get_run(work.run.id)
            if current is not None and current.status != "running":
                return current  # marked failed by another process meanwhile: it stays so
            store.update_run(
                work.run.id,
                status=status,
                events_imported=work.events_imported,
                items=items,
                error=error,
                finished=now,
            )
            if store.lease().run_id == work.run.id:
                store.set_lease(run_id=None, owner=None, until=0)
            finished = store.get_run(work.run.id)
            assert finished is not None
            if status == "completed":
                for hook in self.completion_hooks:
                    hook(uow, finished)
            uow.commit()
        log.info(
            "reconciliation run %s %s: %d event(s) imported, %d drift item(s), %d open",
            finished.id,
            status,
            finished.events_imported,
            len(finished.items),
            finished.open,
        )
        return finished

    def _require_stripe(self) -> StripeLedger:
        if self.stripe is None:
            raise errors.StripeUnavailable(
                "Stripe is not configured: set BILLFOLD_STRIPE_SECRET_KEY to reconcile."
            )
        return self.stripe

    def _require_events(self) -> StripeGateway:
        if self.events is None:
            raise errors.StripeUnavailable(
                "Stripe is not configured: set BILLFOLD_STRIPE_SECRET_KEY to reconcile."
            )
        return self.events


def _ids(*values: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _found(
    drift_class: rc.DriftClass,
    stripe_ids: tuple[str, ...],
    billfold_ids: tuple[str, ...],
    amount: int | None,
    currency: str | None,
    note: str,
    *,
    objects: tuple[str, ...] = (),
) -> _Finding:
    return _Finding(
        drift_class=drift_class,
        stripe_ids=stripe_ids,
        billfold_ids=billfold_ids,
        amount=amount,
        currency=currency,
        note=note,
        objects=objects or stripe_ids,
        recheck=None,
    )


def _same_money(
    amount: int | None, currency: str | None, paid: int | None, paid_currency: str | None
) -> bool:
    if amount is None or paid is None:
        return True  # nothing to compare
    return amount == paid and (currency or "").lower() == (paid_currency or "").lower()


def _payment_drift(
    order: OrderRecord | None,
    stripe_ids: tuple[str, ...],
    amount: int,
    currency: str,
    *,
    what: str,
    objects: tuple[str, ...],
) -> _Finding | None:
    if order is None or order.status not in FINAL:
        state = "no order" if order is None else f"order {order.id} is {order.status}"
        return _found(
            "paid_not_granted",
            stripe_ids,
            () if order is None else (order.id,),
            amount,
            currency,
            f"{what} is paid; billfold has {state}",
            objects=objects,
        )
    if not _same_money(order.amount, order.currency, amount, currency):
        return _found(
            "amount_mismatch",
            stripe_ids,
            (order.id,),
            amount,
            currency,
            f"Stripe took {amount} {currency}; order {order.id} says {order.amount} "
            f"{order.currency}",
            objects=objects,
        )
    return None


def notify_drift(uow: UnitOfWork, run: rc.RunRecord) -> None:
    """Tell the application about drift a completed run left open (written with the run)."""
    reconciliation_drift(
        uow.ledger,
        run_id=run.id,
        drift={
            name: {"found": c.found, "healed": c.healed, "open": c.open}
            for name, c in run.drift.items()
        },
        items=[item.to_json() for item in run.items if not item.healed],
        now=run.finished or run.started,
    )

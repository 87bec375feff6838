"""The worker: claim events with a lease and process them together (``Inbox.process_claimed``:
their calls to Stripe ``worker_threads`` at a time, then one transaction), retry with backoff;
sweep expiry and tell lapsed grace periods (``entitlements.updated``), every
``BILLFOLD_SWEEP_INTERVAL_SECONDS``; sync subscriptions from Stripe on a schedule
(``BILLFOLD_SUBSCRIPTION_SYNC_SECONDS``, 0 turns it off), in a thread of its own so a long sync
never holds up the events; reconcile with Stripe on a schedule (``BILLFOLD_RECONCILE_SECONDS``,
0 turns it off), in another thread: one run at a time across every process (a lease in the
database), and none while a run started in the last interval, whoever started it.

Runs in-process under ``billfold serve`` (a background thread) and as ``billfold worker`` processes.
Claims use ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of workers share the
inbox; a lease that expires (a crashed process) is claimed again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid

from billfold.bootstrap import Services
from billfold.domain import errors

log = logging.getLogger("billfold.worker")

HEARTBEAT_SECONDS = 10.0
"""How often a worker writes its heartbeat (``/readyz`` reports the latest)."""


class Worker:
    def __init__(self, services: Services, *, batch: int = 20, name: str | None = None) -> None:
        self.services = services
        self.batch = batch
        self.owner = name or f"worker:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._last_sweep = 0.0
        self._last_beat = -HEARTBEAT_SECONDS  # the first round beats
        self._last_sync = time.monotonic()  # the first sync runs one interval after start
        self._sync_thread: threading.Thread | None = None
        self._last_reconcile = time.monotonic()  # the first run one interval after start
        self._reconcile_thread: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._notify_thread: threading.Thread | None = None
        self.stop_event = threading.Event()

    def run_once(self) -> int:
        """Claim a batch of due events (``SKIP LOCKED``: other workers take others) and process
        them together: their calls to Stripe overlap (``worker_threads`` at a time, outside any
        transaction), then one transaction applies them; then sweep expiry when it is time."""
        claimed = self.services.inbox.claim(self.owner, self.batch)
        processed = 0
        if claimed and self.stop_event.is_set():
            for event_id in claimed:
                self._give_back(event_id)
        elif claimed:
            outcomes = self.services.inbox.process_claimed(
                claimed, threads=self.services.settings.worker_threads
            )
            for outcome in outcomes:
                log.info(
                    "event %s: %s %s",
                    outcome.event_id,
                    outcome.status,
                    outcome.note or "",
                    extra={"event_id": outcome.event_id, "status": outcome.status},
                )
            processed = len(outcomes)
        if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
            self._last_beat = time.monotonic()
            self.services.inbox.heartbeat(self.owner)
        interval = self.services.settings.sweep_interval_seconds
        if time.monotonic() - self._last_sweep >= interval:
            self._last_sweep = time.monotonic()
            self.services.ledger.sweep()
            self.notify_grace_lapses()
        self._maybe_sync()
        self._maybe_reconcile()
        return processed

    def _give_back(self, event_id: str) -> None:
        """Stopping: an event claimed but not started is released at once for another worker
        (without it, its lease would lapse after ``worker_lease_seconds``)."""
        try:
            self.services.inbox.unclaim(event_id, self.owner)
        except errors.BillfoldError as exc:
            log.warning("event %s stays leased until its lease lapses: %s", event_id, exc.message)

    def _maybe_sync(self) -> None:
        every = self.services.settings.subscription_sync_seconds
        if not every or self.services.billing.stripe is None:
            return
        if self._sync_thread is not None and self._sync_thread.is_alive():
            return
        if time.monotonic() - self._last_sync < every:
            return
        self._last_sync = time.monotonic()
        self._sync_thread = threading.Thread(
            target=self.sync_subscriptions, name="billfold-subscription-sync", daemon=True
        )
        self._sync_thread.start()

    def _maybe_reconcile(self) -> None:
        every = self.services.settings.reconcile_seconds
        if not every or not self.services.stripe_configured:
            return
        if self._reconcile_thread is not None and self._reconcile_thread.is_alive():
            return
        if time.monotonic() - self._last_reconcile < min(every, 60):
            return  # asks the database at most once a minute whether a run is due
        self._last_reconcile = time.monotonic()
        self._reconcile_thread = threading.Thread(
            target=self.reconcile, name="billfold-reconcile", daemon=True
        )
        self._reconcile_thread.start()

    def reconcile(self) -> None:
        """One scheduled reconciliation, when due; its open drift is logged."""
        try:
            run = self.services.reconciliation.run_scheduled(
                self.services.settings.reconcile_seconds
            )
        except Exception:
            log.exception("scheduled reconciliation failed")
            return
        if run is None:
            return
        for item in run.items:
            if not item.healed:
                log.warning(
                    "reconciliation drift %s: stripe %s, billfold %s, %s %s: %s",
                    item.drift_class,
                    ",".join(item.stripe_ids),
                    ",".join(item.billfold_ids),
                    item.amount,
                    item.currency or "",
                    item.note,
                )

    def sync_subscriptions(self) -> None:
        """One scheduled sync: every account with a Stripe customer; drift repaired is logged."""
        try:
            report = self.services.billing.sync_all()
        except Exception:
            log.exception("subscription sync failed")
            return
        for change in report.changes:
            log.warning(
                "subscription drift repaired: account %s, subscription %s: %s",
                change.account_id,
                change.subscription_id,
                change.what,
            )
        for failure in report.failures:
            log.warning("subscription sync could not repair %s", failure)
        log.info(
            "subscription sync: %d account(s), %d subscription(s), %d repaired, %d failed",
            report.accounts,
            report.subscriptions,
            len(report.changes),
            len(report.failures),
        )

    def notify_grace_lapses(self) -> int:
        """Tell the application about grace periods that ended (no Stripe event does): each once,
        whichever worker sees it first."""
        try:
            written = self.services.billing.notify_grace_lapses()
        except errors.StorageUnavailable:
            raise
        except Exception:
            log.exception("grace period check failed")
            return 0
        if written:
            log.info("grace periods ended: %d entitlements.updated written", written)
        return written

    def deliver_notifications(self) -> int:
        """One round of the outbox: what was due, delivered or rescheduled."""
        report = self.services.notifications.deliver_due(self.owner)
        if report.claimed:
            log.info(
                "notifications: %d delivered, %d to retry, %d dead",
                report.delivered,
                report.failed,
                report.dead,
            )
        return report.claimed

    def _deliver_forever(self) -> None:
        """The outbox in a thread of its own: a slow endpoint never holds up the events."""
        poll = self.services.settings.worker_poll_seconds
        while not self.stop_event.is_set():
            try:
                busy = self.deliver_notifications()
            except errors.StorageUnavailable as exc:
                log.warning("database unavailable: %s", exc.message)
                busy = 0
                self.stop_event.wait(min(5.0, poll * 4))
            except Exception:
                log.exception("notification delivery error")
                busy = 0
            if not busy:
                self.stop_event.wait(poll)

    def _start_delivery(self) -> None:
        if self._notify_thread is None or not self._notify_thread.is_alive():
            self._notify_thread = threading.Thread(
                target=self._deliver_forever, name="billfold-notify", daemon=True
            )
            self._notify_thread.start()

    def run(self) -> None:
        poll = self.services.settings.worker_poll_seconds
        self._start_delivery()
        while not self.stop_event.is_set():
            try:
                busy = self.run_once()
            except errors.StorageUnavailable as exc:
                log.warning("database unavailable: %s", exc.message)
                busy = 0
                self.stop_event.wait(min(5.0, poll * 4))
            except Exception:
                log.exception("worker loop error")
                busy = 0
                self.stop_event.wait(poll)
            if not busy:
                self.stop_event.wait(poll)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="billfold-worker", daemon=True)
        thread.start()
        self._thread = thread
        return thread

    def stop(self, wait: float | None = 60.0) -> None:
        """Stop claiming; the events being processed are finished, those claimed but not started
        are released. With ``wait``, block until the worker thread is done (at most that long)."""
        self.stop_event.set()
        thread = self._thread
        if wait is not None and thread is not None and thread is not threading.current_thread():
            thread.join(wait)


def run_forever(services: Services, *, batch: int = 20) -> None:
    """``billfold worker``: run until SIGTERM or SIGINT, finishing the event at hand."""
    worker = Worker(services, batch=batch)

    def _stop(_signum: int, _frame: object) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run()

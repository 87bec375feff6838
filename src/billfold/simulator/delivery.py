"""Signed webhook delivery in the background, with Stripe's retries and, if asked, its misbehaviour.

Each event becomes one ``Delivery`` (two when chaos duplicates it; both copies are sent at once). A
single worker task, started lazily inside whichever event loop first needs it (the simulator may be
mounted in another app whose lifespan never reaches it), takes deliveries as they fall due from a
heap and sends them, at most ``delivery_concurrency`` at a time, so that with the default of one the
receiver sees events in the order they happened unless chaos says otherwise. A non-2xx answer or a
connection error is retried with exponential backoff until ``retry.max_attempts``; every attempt is
recorded. Chaos draws all come from one ``random.Random(seed)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from billfold.adapters.stripe import signature
from billfold.simulator.config import ChaosSettings, SimulatorConfig
from billfold.simulator.objects import Obj
from billfold.simulator.state import Attempt, Delivery, State

log = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
DROPPED = "chaos: dropped for good; the event is only in the Events API"


@dataclass(order=True, slots=True)
class _Job:
    due: float
    seq: int
    delivery_ids: tuple[str, ...] = field(compare=False)


class Deliverer:
    def __init__(
        self,
        *,
        config: SimulatorConfig,
        state: State,
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._state = state
        self._on_change = on_change
        self._clock = clock
        self._chaos = config.chaos
        self._rng = random.Random(self._chaos.seed)
        self._by_id: dict[str, Delivery] = {}
        self._by_event: dict[str, list[Delivery]] = {}
        self._heap: list[_Job] = []
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.reindex()

    @property
    def enabled(self) -> bool:
        return self._config.webhook_url is not None

    @property
    def chaos(self) -> ChaosSettings:
        return self._chaos

    def set_chaos(self, chaos: ChaosSettings) -> None:
        """Replace the chaos settings; the random draws restart from the (new) seed."""
        self._chaos = chaos
        self._rng = random.Random(chaos.seed)

    def reindex(self) -> None:
        """Rebuild the lookups from the state (after loading or resetting it)."""
        self._by_id = {d.id: d for d in self._state.deliveries}
        self._by_event = {}
        for delivery in self._state.deliveries:
            self._by_event.setdefault(delivery.event_id, []).append(delivery)
        self._heap = []
        self._schedule_pending()

    # -- what the API and the control routes ask -----------------------------------------------

    def for_event(self, event_id: str) -> list[Delivery]:
        return list(self._by_event.get(event_id, []))

    def pending_count(self, event_id: str) -> int:
        return sum(1 for d in self._by_event.get(event_id, []) if d.status == "pending")

    def succeeded(self, event_id: str) -> bool:
        return any(d.status == "succeeded" for d in self._by_event.get(event_id, []))

    def counts(self) -> dict[str, int]:
        counts = {"pending": 0, "succeeded": 0, "failed": 0}
        for delivery in self._state.deliveries:
            counts[delivery.status] += 1
        return counts

    def enqueue(self, event: Obj, *, chaos: bool = True) -> list[Delivery]:
        """Record the deliveries of ``event`` and wake the worker; nothing when no webhook URL."""
        if not self.enabled:
            return []
        settings = self._chaos if chaos else ChaosSettings()
        copies = 2 if self._draw() < settings.duplicate_rate else 1
        # Drawn only when asked for, so that seeded runs without it draw as they always did.
        dropped = settings.drop_rate > 0 and self._draw() < settings.drop_rate
        low, high = settings.delay_seconds
        delay = self._rng.uniform(low, high) if high > 0 else 0.0
        if settings.reorder:
            delay += settings.reorder_window_seconds
        now = self._clock()
        created = []
        for copy in range(copies):
            delivery = Delivery(
                id=f"whd_{self._state.next_number('delivery'):06d}",
                event_id=event["id"],
                event_type=event["type"],
                copy=copy,
                next_attempt_at=now + delay,
                created=now,
            )
            if dropped:
                delivery.status = "failed"
                delivery.next_attempt_at = None
                delivery.attempts.append(
                    Attempt(at=now, status_code=None, error=DROPPED, duration_ms=0)
                )
            self._state.deliveries.append(delivery)
            self._by_id[delivery.id] = delivery
            self._by_event.setdefault(delivery.event_id, []).append(delivery)
            created.append(delivery)
        if not dropped:
            self._push(now + delay, tuple(d.id for d in created))
        return created

    async def flush(self, timeout: float) -> bool:
        """Wait until no delivery is pending; False when ``timeout`` passed first."""
        self.ensure_running()
        deadline = time.monotonic() + timeout
        checked = time.monotonic()
        while any(d.status == "pending" for d in self._state.deliveries):
            if time.monotonic() >= deadline:
                return False
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                self._resend_overdue()
            await asyncio.sleep(0.01)
        return True

    def _resend_overdue(self) -> None:
        """A pending delivery long past due with no attempt answered (its attempt lost, as when
        the endpoint's process was killed mid-request) is sent again, as Stripe retries: at
        worst the endpoint sees it twice."""
        limit = self._clock() - self._config.retry.timeout_seconds - 5.0
        queued = {i for job in self._heap for i in job.delivery_ids}
        overdue = tuple(
            d.id
            for d in self._state.deliveries
            if d.status == "pending"
            and d.next_attempt_at is not None
            and d.next_attempt_at < limit
            and d.id not in queued
        )
        if overdue:
            log.warning("sending %d overdue deliveries again", len(overdue))
            self._push(self._clock(), overdue)

    # -- the worker ----------------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Start the worker in the running loop, unless it already runs there."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        self._loop = loop
        self._wake = asyncio.Event()
        self._sending = set()
        # A client from another (finished) loop cannot be reused or closed from this one.
        self._client = httpx.AsyncClient(transport=self._config.webhook_transport)
        self._heap = []
        self._schedule_pending()
        self._task = loop.create_task(self._run(), name="billfold-simulator-delivery")

    async def aclose(self) -> None:
        """Stop the worker; deliveries still pending stay recorded (and saved) as pending."""
        # A worker from another loop died with that loop: nothing of it can be awaited here.
        if self._loop is asyncio.get_running_loop():
            tasks = [t for t in (self._task, *self._sending) if t is not None]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._client is not None:
                await self._client.aclose()
        self._task = None
        self._sending = set()
        self._client = None
        self._loop = None

    def _schedule_pending(self) -> None:
        now = self._clock()
        for delivery in self._state.deliveries:
            if delivery.status == "pending":
                self._push(max(now, delivery.next_attempt_at or now), (delivery.id,))

    def _push(self, due: float, delivery_ids: tuple[str, ...]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, _Job(due, self._seq, delivery_ids))
        if self._wake is not None:
            self._wake.set()

    def _draw(self) -> float:
        return self._rng.random()

    async def _run(self) -> None:
        assert self._wake is not None
        semaphore = asyncio.Semaphore(self._config.delivery_concurrency)
        while True:
            self._wake.clear()
            if not self._heap:
                await self._wake.wait()
                continue
            wait = self._heap[0].due - self._clock()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            for job in self._take_due():
                await semaphore.acquire()
                task = asyncio.get_running_loop().create_task(self._send_job(job, semaphore))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    def _take_due(self) -> list[_Job]:
        chaos = self._chaos
        # With reorder on, everything falling due within one window travels as one shuffled batch.
        horizon = self._clock() + (chaos.reorder_window_seconds if chaos.reorder else 0.0)
        batch: list[_Job] = []
        while self._heap and self._heap[0].due <= horizon:
            batch.append(heapq.heappop(self._heap))
        if chaos.reorder and len(batch) > 1:
            original = list(batch)
            self._rng.shuffle(batch)
            if batch == original:
                batch.reverse()
        return batch

    async def _send_job(self, job: _Job, semaphore: asyncio.Semaphore) -> None:
        try:
            deliveries = [self._by_id[i] for i in job.delivery_ids if i in self._by_id]
            await asyncio.gather(*(self._attempt(d) for d in deliveries if d.status == "pending"))
        finally:
            semaphore.release()

    async def _attempt(self, delivery: Delivery) -> None:
        event = self._state.events.get(delivery.event_id)
        if event is None:  # the state was reset under us
            return
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        first = not delivery.attempts
        if first and self._draw() < self._chaos.drop_first_attempt_rate:
            error = "chaos: the first attempt was dropped and never reached the endpoint"
        else:
            status_code, error = await self._post(event)
        attempt = Attempt(
            at=self._clock(),
            status_code=status_code,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        delivery.attempts.append(attempt)
        if attempt.succeeded:
            delivery.status = "succeeded"
            delivery.next_attempt_at = None
        elif len(delivery.attempts) >= self._config.retry.max_attempts:
            delivery.status = "failed"
            delivery.next_attempt_at = None
            log.warning("gave up delivering %s (%s)", delivery.event_id, delivery.event_type)
        else:
            due = self._clock() + self._config.retry.backoff(len(delivery.attempts))
            delivery.next_attempt_at = due
            self._push(due, (delivery.id,))
        self._on_change()

    async def _post(self, event: Obj) -> tuple[int | None, str | None]:
        assert self._client is not None
        assert self._config.webhook_url is not None
        payload = json.dumps(event, indent=2).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature.sign(payload, self._config.webhook_secret),
            "User-Agent": USER_AGENT,
            "Accept": "*/*; q=0.5, application/xml",
            "Cache-Control": "no-cache",
        }
        try:
            response = await self._client.post(
                self._config.webhook_url,
                content=payload,
                headers=headers,
                timeout=self._config.retry.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, response.text[:200] or None

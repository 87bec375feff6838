"""The combiner: concurrent requests that write share transactions (group commit in the
application). The ledger's spends, holds, captures and releases use it, and so do webhooks.

Requests queue; a waiting thread at a time is a writer. A writer takes everything queued (up to
``max_batch``), decides and writes it in one transaction (:mod:`.batch`), hands each request its
own answer, and passes the writer's role to the next request in the queue. With nothing being
written, a request is written at once by its own thread: low load keeps its latency, high load
shares commits.

A batch's last round trip (its writes and the commit, the database's flush to disk) needs no
more of the writer's work: when it is sent (``run_batch`` calls the ``committing`` callback it is
given), the role passes on at once, and the next batch reads and decides while this one commits,
up to ``writers`` batches in flight. One batch decides at a time: a batch that ends passes the
role on when none is deciding, even while another is still committing (waiting for that one's
end left the requests queued meanwhile idle: measured). A batch the next one depends on (the
same balance) is ordered by the database: the next one's row locks wait for the commit, then read
what it wrote. Batches lock balances in the same (account, unit) order, so they never deadlock.
(A second writer that started whenever one was busy, rather than at the commit, made batches of
one or two beside the big one: more transactions for the same work, and slower; measured on the
bench. So did one that started whenever none was deciding.)

Callers on an event loop (the HTTP routes) ``await submit_async(command)``: the request queues
the same way, and the loop is never blocked: a writer's role that falls to an awaiting request is
taken by one of the combiner's own threads (at most ``writers``), which goes on writing batches
while the queue's head is an awaiting request, and the answers reach their loops in one wake-up
per loop and batch. No thread is parked per request: a thousand awaiting requests cost a thousand
futures, not a thousand threads.

When a batch cannot be written as a whole (a database error, a key another process took
meanwhile), its requests are made again one by one, each in its own transaction, so one bad
request never fails another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from billfold.domain import errors
from billfold.service.threads import KeptThreads

log = logging.getLogger("billfold.combining")

C = TypeVar("C")
R = TypeVar("R")


class _Wake:
    """A one-shot wake-up for a waiting thread: ``wait`` blocks until ``set`` (called once).
    A bare lock: an ``Event`` waits through a ``Condition``, more locks and a list (measured, the
    combiner alone at 16 threads: 37 µs of CPU per request with an ``Event``, 29 with this)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wait(self) -> None:
        self._lock.acquire()

    def set(self) -> None:
        self._lock.release()


@dataclass(slots=True)
class _Request(Generic[C, R]):
    command: C
    ready: _Wake | None = None
    """A thread's request: set when answered, or when its thread is to write the next batch."""
    future: asyncio.Future[None] | None = None
    """An event loop's request: done when answered."""
    lead: bool = False
    """Set with ``ready`` when this request's thread is to write the next batch."""
    outcome: R | errors.BillfoldError | None = None
    failure: BaseException | None = None

    def answer(self) -> R:
        if self.failure is not None:
            raise self.failure
        if isinstance(self.outcome, errors.BillfoldError):
            raise self.outcome
        assert self.outcome is not None
        return self.outcome


def _settle(futures: list[asyncio.Future[None]]) -> None:
    """On the futures' loop: wake their awaiting requests (a request given up meanwhile is
    skipped; its write stands, as a thread's would)."""
    for future in futures:
        if not future.done():
            future.set_result(None)


@dataclass(frozen=True, slots=True)
class CombinerStats:
    batches: int
    requests: int
    largest: int
    fallbacks: int
    handoffs: int
    """Batches begun while the one before was committing."""
    queued: int
    """Requests waiting for the next batch now."""


class Combiner(Generic[C, R]):
    """``run_batch(commands, committing)`` answers each command (a result, or the billfold error
    that is its answer) in one transaction, and calls ``committing()`` when it sends its last
    writes and the commit (or never: the role then passes when it returns); ``run_one(command)``
    makes one on its own."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[C], Callable[[], None]], list[R | errors.BillfoldError]],
        run_one: Callable[[C], R],
        *,
        max_batch: int = 256,
        writers: int = 1,
        name: str = "writes",
    ) -> None:
        if max_batch < 1 or writers < 1:
            raise ValueError("max_batch and writers must be at least 1")
        self._run_batch = run_batch
        self._run_one = run_one
        self.max_batch = max_batch
        self.writers = writers
        self._lock = threading.Lock()
        self.name = name
        self._queue: list[_Request[C, R]] = []
        self._writing = 0
        self._deciding = 0
        """Batches in flight that have not sent their writes yet (at most one)."""
        self._threads = KeptThreads(f"billfold {name}")
        self._batches = self._requests = self._largest = self._fallbacks = self._handoffs = 0

    def submit(self, command: C) -> R:
        request: _Request[C, R] = _Request(command, ready=_Wake())
        if not self._leads(request):
            assert request.ready is not None
            request.ready.wait()
            if not request.lead:
                return request.answer()
        following = self._write_one_batch(request)
        if following is not None:
            self._writer_pool().submit(self._write_batches, following)
        return request.answer()

    async def submit_async(self, command: C) -> R:
        """``submit`` for a caller on an event loop: the loop is not blocked while the batch is
        written (one of the combiner's threads writes it)."""
        loop = asyncio.get_running_loop()
        request: _Request[C, R] = _Request(command, future=loop.create_future())
        if self._leads(request):
            self._writer_pool().submit(self._write_batches, request)
        assert request.future is not None
        await asyncio.shield(request.future)
        return request.answer()

    def _leads(self, request: _Request[C, R]) -> bool:
        """Whether ``request`` takes a writer's role now (nothing is being written); else it is
        queued for the next batch."""
        with self._lock:
            if self._writing == 0:
                self._writing = self._deciding = 1
                return True
            self._queue.append(request)
            return False

    def close(self) -> None:
        """Let the writer threads go (they finish what they are writing first)."""
        self._threads.close()

    def _writer_pool(self) -> ThreadPoolExecutor:
        return self._threads.get(self.writers)

    def _write_batches(self, request: _Request[C, R] | None) -> None:
        """A writer thread of the combiner's own: batch after batch while the next writer's
        role falls to an awaiting request."""
        while request is not None:
            request = self._write_one_batch(request)

    def stats(self) -> CombinerStats:
        with self._lock:
            return CombinerStats(
                batches=self._batches,
                requests=self._requests,
                largest=self._largest,
                fallbacks=self._fallbacks,
                handoffs=self._handoffs,
                queued=len(self._queue),
            )

    def _write_one_batch(self, own: _Request[C, R]) -> _Request[C, R] | None:
        """Write ``own`` and what is queued (up to ``max_batch`` in all); answer them. Then the
        writer's role passes on: to the next queued thread (woken to write), or, when the next
        queued request is awaited on a loop, back to the caller as the request to write next."""
        with self._lock:
            batch = [own, *self._queue[: self.max_batch - 1]]
            del self._queue[: self.max_batch - 1]
        decided = False
        sent = False

        def committing() -> None:
            """This batch's last round trip is on its way: the next queued request writes the
            next batch now (if ``writers`` allows one more in flight)."""
            nonlocal sent
            with self._lock:
                if sent:
                    return
                sent = True
                self._deciding -= 1
                following = self._next_writer()
                if following is None:
                    return
                self._handoffs += 1
            self._start(following)

        try:
            self._decide(batch, committing)
            decided = True
        finally:
            with self._lock:
                self._batches += 1
                self._requests += len(batch)
                self._largest = max(self._largest, len(batch))
                if not sent:
                    self._deciding -= 1
                self._writing -= 1
                following = self._next_writer()
            loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for request in batch:
                if request.outcome is None and request.failure is None:  # pragma: no cover
                    request.failure = errors.InvariantViolation("a batched write got no answer")
                if request.future is not None:
                    loops.setdefault(request.future.get_loop(), []).append(request.future)
                elif request is not own:  # the writer's own thread is not waiting
                    assert request.ready is not None
                    request.ready.set()
            for loop, futures in loops.items():
                with contextlib.suppress(RuntimeError):  # its loop closed while we wrote
                    loop.call_soon_threadsafe(_settle, futures)
            if following is not None and following.ready is not None:
                following.ready.set()
                following = None
            elif following is not None and not decided:  # pragma: no cover - interrupted
                self._writer_pool().submit(self._write_batches, following)
                following = None
        return following

    def _next_writer(self) -> _Request[C, R] | None:
        """Under the lock: the queued request that writes the next batch now, if any (none
        while a batch is still deciding: it takes the queue when it commits; none with
        ``writers`` batches in flight)."""
        if not self._queue or self._deciding or self._writing >= self.writers:
            return None
        following = self._queue.pop(0)
        following.lead = True
        self._writing += 1
        self._deciding += 1
        return following

    def _start(self, writer: _Request[C, R]) -> None:
        """Wake ``writer``'s thread to write the next batch, or give it to one of the combiner's
        threads when it is awaited on a loop."""
        if writer.ready is not None:
            writer.ready.set()
        else:
            self._writer_pool().submit(self._write_batches, writer)

    def _decide(self, batch: list[_Request[C, R]], committing: Callable[[], None]) -> None:
        try:
            outcomes = self._run_batch([r.command for r in batch], committing)
        except errors.StorageUnavailable as exc:
            for request in batch:
                request.failure = exc
            return
        except Exception as exc:  # the batch as a whole: each request on its own
            log.info("a batch of %d %s is made one by one: %s", len(batch), self.name, exc)
            with self._lock:
                self._fallbacks += 1
            for request in batch:
                try:
                    request.outcome = self._run_one(request.command)
                except errors.BillfoldError as error:
                    request.outcome = error
                except BaseException as error:
                    request.failure = error
            return
        except BaseException as exc:
            for request in batch:
                request.failure = exc
            raise
        for request, outcome in zip(batch, outcomes, strict=True):
            request.outcome = outcome

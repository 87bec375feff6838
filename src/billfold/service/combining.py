"""The combiner: concurrent requests that write share transactions (group commit in the
application). The ledger's spends, holds, captures and releases use it, and so do webhooks.

Requests queue; a waiting thread at a time is a writer (up to ``writers`` of them at once). A
writer takes everything queued (up to ``max_batch``), decides and writes it in one transaction
(:mod:`.batch`), hands each request its own answer, and passes the writer's role to the next
request in the queue. With nothing queued, a request is written at once by its own thread: low
load keeps its latency, high load shares commits. Two writers let one batch's round trips overlap
the next one's work; their batches lock balances in the same (account, unit) order, so they
never deadlock, and the database orders two batches that touch the same balance.

When a batch cannot be written as a whole (a database error, a key another process took
meanwhile), its requests are made again one by one, each in its own transaction, so one bad
request never fails another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from billfold.domain import errors

log = logging.getLogger("billfold.combining")

C = TypeVar("C")
R = TypeVar("R")


@dataclass(slots=True)
class _Request(Generic[C, R]):
    command: C
    ready: threading.Event = field(default_factory=threading.Event)
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


@dataclass(frozen=True, slots=True)
class CombinerStats:
    batches: int
    requests: int
    largest: int
    fallbacks: int


class Combiner(Generic[C, R]):
    """``run_batch(commands)`` answers each command (a result, or the billfold error that is its
    answer) in one transaction; ``run_one(command)`` makes one on its own."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[C]], list[R | errors.BillfoldError]],
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
        self._batches = self._requests = self._largest = self._fallbacks = 0

    def submit(self, command: C) -> R:
        request: _Request[C, R] = _Request(command)
        with self._lock:
            leads = self._writing < self.writers
            if leads:
                self._writing += 1
            else:
                self._queue.append(request)
        if not leads:
            request.ready.wait()
            if not request.lead:
                return request.answer()
        self._write_one_batch(request)
        return request.answer()

    def stats(self) -> CombinerStats:
        with self._lock:
            return CombinerStats(
                batches=self._batches,
                requests=self._requests,
                largest=self._largest,
                fallbacks=self._fallbacks,
            )

    def _write_one_batch(self, own: _Request[C, R]) -> None:
        """Write ``own`` and what is queued (up to ``max_batch`` in all)."""
        with self._lock:
            batch = [own, *self._queue[: self.max_batch - 1]]
            del self._queue[: self.max_batch - 1]
        try:
            self._decide(batch)
        finally:
            with self._lock:
                self._batches += 1
                self._requests += len(batch)
                self._largest = max(self._largest, len(batch))
                following = self._queue.pop(0) if self._queue else None
                if following is None:
                    self._writing -= 1
                else:
                    following.lead = True
            for request in batch:
                if request.outcome is None and request.failure is None:  # pragma: no cover
                    request.failure = errors.InvariantViolation("a batched write got no answer")
                request.ready.set()
            if following is not None:
                following.ready.set()

    def _decide(self, batch: list[_Request[C, R]]) -> None:
        try:
            outcomes = self._run_batch([r.command for r in batch])
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

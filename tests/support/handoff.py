"""Staging a combiner's hand-off at the commit, for the tests of both batch paths (the ledger's and
the webhooks'): the first batch waits until the other requests have queued behind it; when it
hands the writer's role on (``committing()``), it waits until the next batch has begun before its
own writes go out. A test then sees two batches in flight, in that order, every time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from billfold.service.combining import Combiner

R = TypeVar("R")


class StagedHandOff:
    """Wraps ``original`` (a batch writer taking ``committing=``); set ``wrapper`` in its place."""

    def __init__(self, original: Callable[..., Any], *, overlapping: bool = True) -> None:
        self.original = original
        self.overlapping = overlapping
        """Whether the next batch is to begin before the first one's writes (False: one writer)."""
        self.calls: list[int] = []
        self._queued = threading.Event()
        self._second_began = threading.Event()

    def wrapper(self, *args: Any, committing: Any = None, **kwargs: Any) -> Any:
        n = len(self.calls)
        self.calls.append(n)
        if n == 0:
            assert self._queued.wait(10)
        if n == 1:
            self._second_began.set()

        def hand_on() -> None:
            committing()
            if n == 0 and self.overlapping:  # the next batch began before these writes went out
                assert self._second_began.wait(10)

        return self.original(*args, committing=hand_on if committing else None, **kwargs)

    def run(self, combiner: Combiner[Any, Any], submit: Callable[[int], R], n: int) -> list[R]:
        """``submit(0)`` first; once its batch has begun, ``submit(1..n-1)``, queued behind it;
        then the first batch goes on. The answers, in order."""
        with ThreadPoolExecutor(n) as pool:
            first = pool.submit(submit, 0)
            while not self.calls:
                time.sleep(0.001)
            rest = [pool.submit(submit, i) for i in range(1, n)]
            while combiner.stats().queued < n - 1:
                time.sleep(0.001)
            self._queued.set()
            return [first.result(timeout=30), *(r.result(timeout=30) for r in rest)]

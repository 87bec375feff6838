"""Threads kept from one round of work to the next: the combiner's writers, the notification
senders, the worker's Stripe askers. Starting a pool for every round (eight threads for fifty
notifications) cost a tenth of a round's CPU; these start on first use and go at ``close``."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


class KeptThreads:
    """A thread pool started on first use and kept until ``close``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0

    def get(self, threads: int) -> ThreadPoolExecutor:
        """The pool of ``threads`` threads (started afresh when a different number is asked for:
        the old one finishes its work and goes)."""
        with self._lock:
            if self._pool is None or self._size != threads:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(threads, thread_name_prefix=self.name)
                self._size = threads
            return self._pool

    def close(self) -> None:
        """Let the threads go, once they have finished what they are doing."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

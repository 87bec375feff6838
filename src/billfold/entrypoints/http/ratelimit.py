"""Per-credential rate limits: a token bucket per caller, in this process's memory.

Each process counts on its own: behind a load balancer with N ``billfold serve`` processes a caller
may get up to N times the limit. That is what these limits are for (a runaway client loop, a
browser hammering checkout), not a quota; correctness never rests on them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from billfold.domain import errors

MAX_TRACKED = 100_000


class RateLimiter:
    """``per_minute`` requests per caller, refilled evenly; bursts up to ``per_minute``. 0: off."""

    def __init__(
        self, per_minute: int, *, what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.what = what
        self._clock = clock
        self._rate = per_minute / 60.0  # tokens per second
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, last refill)
        self._lock = threading.Lock()

    def hit(self, caller: str) -> None:
        """Take one token for ``caller``, or raise RateLimited saying when to come back."""
        if self.per_minute <= 0:
            return
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(caller, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * self._rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                retry_after = max(1, math.ceil((1.0 - tokens) / self._rate))
                raise errors.RateLimited(
                    f"Too many {self.what} requests: at most {self.per_minute} a minute. Retry "
                    f"in {retry_after} s.",
                    retry_after=retry_after,
                )
            self._buckets[caller] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_TRACKED:
                self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        """Drop callers whose bucket has refilled: forgetting them changes nothing."""
        full = float(self.per_minute)
        for caller, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self._rate >= full:
                del self._buckets[caller]

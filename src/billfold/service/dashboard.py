"""The operator's dashboard: how webhooks, purchases, credits and revenue went over the last days.

One unit of work reads every figure (writing nothing). The window is ``since = now - days * 86400``
to ``now``; series are per UTC day (``ts - ts % 86400``) from the day of ``since`` to today, and
per hour over the last 24 hours, every bucket present (zeros where nothing happened). Money stays
in integer minor units with its currency; latency percentiles are nearest-rank, in whole seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from billfold.domain import errors
from billfold.service.ports import BucketCount, Clock, RevenueRow, UnitOfWorkFactory

DAY: Final = 86_400
HOUR: Final = 3_600
MAX_DAYS: Final = 90
LATENCY_SAMPLE: Final = 5_000
"""The newest fulfilled orders whose payment-to-credit latency the percentiles are taken over."""

STATUSES: Final = ("received", "processed", "ignored", "failed", "dead")
SUCCEEDED: Final = ("processed", "ignored")
FINISHED: Final = ("processed", "ignored", "failed", "dead")
PAID_KINDS: Final = ("purchase", "allowance")
"""Grants that were paid for (a package, a plan's allowance); the others are given away."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventBucket:
    """Events received in one bucket (``start`` to ``start + width``), per status (now)."""

    start: int
    counts: Mapping[str, int]

    @property
    def succeeded(self) -> int:
        return sum(self.counts[s] for s in SUCCEEDED)

    @property
    def finished(self) -> int:
        return sum(self.counts[s] for s in FINISHED)

    @property
    def success_rate(self) -> float | None:
        """Processed or ignored, of those finished (failed and dead are not); None if none."""
        return rate(self.succeeded, self.finished)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Sale:
    """Orders of one kind fulfilled in one currency: how many, and what they came to."""

    kind: str
    currency: str | None
    count: int
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DayPurchases:
    day: int
    sales: tuple[Sale, ...]

    @property
    def count(self) -> int:
        return sum(s.count for s in self.sales)


@dataclass(frozen=True, slots=True, kw_only=True)
class DayCredits:
    """Per unit, what grants created on ``day`` granted: ``paid`` (purchases and plans'
    allowances) and ``free`` (bonuses, promotions, manual grants)."""

    day: int
    paid: Mapping[str, int]
    free: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Revenue:
    """Fulfilled orders of one package or plan in one currency."""

    name: str
    currency: str | None
    count: int
    amount: int
    refunded: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """Seconds from Stripe creating the payment's first event to billfold granting for it."""

    count: int
    p50: int | None
    p99: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Backlog:
    received: int
    """Events waiting to be processed."""
    oldest_age: int | None
    """Seconds the oldest of them has waited."""
    failed: int
    """Events that failed and wait for a retry."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionCounts:
    """What needs a person: orders in ``needs_attention``, events ``failed`` and ``dead``."""

    orders: int
    failed_events: int
    dead_events: int

    @property
    def count(self) -> int:
        return self.orders + self.failed_events + self.dead_events


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardFigures:
    now: int
    days: int
    since: int
    events_per_day: tuple[EventBucket, ...]
    events_per_hour: tuple[EventBucket, ...]
    purchases_per_day: tuple[DayPurchases, ...]
    credits_per_day: tuple[DayCredits, ...]
    units: tuple[str, ...]
    """Every unit of the catalog, then any other unit granted in the window."""
    revenue_by_package: tuple[Revenue, ...]
    revenue_by_plan: tuple[Revenue, ...]
    latency: Latency
    backlog: Backlog
    attention: AttentionCounts

    @property
    def events(self) -> EventBucket:
        """Every event received in the window."""
        totals = {s: sum(b.counts[s] for b in self.events_per_day) for s in STATUSES}
        return EventBucket(start=self.since, counts=totals)


def rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def nearest_rank(sorted_values: Sequence[int], percent: int) -> int | None:
    """The nearest-rank percentile of ascending values: the ``ceil(percent/100 * n)``-th."""
    n = len(sorted_values)
    if n == 0:
        return None
    rank = max(1, -(-percent * n // 100))
    return sorted_values[rank - 1]


def buckets(since: int, now: int, width: int) -> range:
    """The starts of every bucket of ``width`` seconds from the one holding ``since`` to the one
    holding ``now``."""
    return range(since - since % width, now - now % width + 1, width)


def check_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise errors.ValidationError(f"days must be 1 to {MAX_DAYS}.", param="days")
    return days


class Dashboard:
    def __init__(
        self, uow_factory: UnitOfWorkFactory, clock: Clock, *, units: Iterable[str] = ()
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._units = tuple(units)

    def figures(self, days: int = 7) -> DashboardFigures:
        """Every figure of the last ``days`` days (1 to 90)."""
        check_days(days)
        now = self._clock()
        since = now - days * DAY
        hour_since = now - DAY
        with self._uow() as uow:
            store = uow.dashboard
            per_day = store.events(since=since, width=DAY)
            per_hour = store.events(since=hour_since, width=HOUR)
            purchases = store.purchases(since=since)
            grants = store.grants(since=since)
            by_package = store.revenue(since=since, by="package")
            by_plan = store.revenue(since=since, by="plan")
            latencies = store.latencies(since=since, limit=LATENCY_SAMPLE)
            backlog = store.backlog()
        days_range = buckets(since, now, DAY)

        sales: dict[int, list[Sale]] = defaultdict(list)
        for p in sorted(purchases, key=lambda p: (p.day, p.kind, p.currency or "")):
            sales[p.day].append(
                Sale(kind=p.kind, currency=p.currency, count=p.count, amount=p.amount)
            )
        units = list(self._units)
        units += sorted({g.unit for g in grants} - set(units))
        paid: dict[int, dict[str, int]] = defaultdict(dict)
        free: dict[int, dict[str, int]] = defaultdict(dict)
        for g in grants:
            into = paid if g.kind in PAID_KINDS else free
            into[g.day][g.unit] = into[g.day].get(g.unit, 0) + g.amount

        seconds = sorted(max(0, s) for s in latencies)
        return DashboardFigures(
            now=now,
            days=days,
            since=since,
            events_per_day=_series(per_day, days_range),
            events_per_hour=_series(per_hour, buckets(hour_since, now, HOUR)),
            purchases_per_day=tuple(
                DayPurchases(day=d, sales=tuple(sales.get(d, ()))) for d in days_range
            ),
            credits_per_day=tuple(
                DayCredits(
                    day=d,
                    paid={u: paid[d].get(u, 0) for u in units},
                    free={u: free[d].get(u, 0) for u in units},
                )
                for d in days_range
            ),
            units=tuple(units),
            revenue_by_package=_revenue(by_package),
            revenue_by_plan=_revenue(by_plan),
            latency=Latency(
                count=len(seconds), p50=nearest_rank(seconds, 50), p99=nearest_rank(seconds, 99)
            ),
            backlog=Backlog(
                received=backlog.received,
                oldest_age=None
                if backlog.oldest_received_at is None
                else max(0, now - backlog.oldest_received_at),
                failed=backlog.failed,
            ),
            attention=AttentionCounts(
                orders=backlog.needs_attention_orders,
                failed_events=backlog.failed,
                dead_events=backlog.dead,
            ),
        )


def _series(rows: Iterable[BucketCount], starts: range) -> tuple[EventBucket, ...]:
    counts: dict[int, dict[str, int]] = {b: dict.fromkeys(STATUSES, 0) for b in starts}
    for row in rows:
        if row.bucket in counts and row.key in STATUSES:
            counts[row.bucket][row.key] += row.count
    return tuple(EventBucket(start=b, counts=counts[b]) for b in starts)


def _revenue(rows: Iterable[RevenueRow]) -> tuple[Revenue, ...]:
    """Largest first (then by name and currency)."""
    ordered = sorted(rows, key=lambda r: (-r.amount, r.name, r.currency or ""))
    return tuple(
        Revenue(
            name=r.name, currency=r.currency, count=r.count, amount=r.amount, refunded=r.refunded
        )
        for r in ordered
    )

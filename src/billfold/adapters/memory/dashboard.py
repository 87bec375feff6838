"""The dashboard's aggregates in memory (implements ``service.ports.DashboardStore``, as
``SqlDashboardStore``): reads only."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Final

from billfold.adapters.memory._tables import Work
from billfold.service.ports import BacklogRow, BucketCount, GrantSum, PurchaseRow, RevenueRow

DAY: Final = 86_400


class MemoryDashboardStore:
    def __init__(self, work: Work) -> None:
        self._work = work

    def events(self, *, since: int, width: int) -> list[BucketCount]:
        counts = Counter(
            (e.received_at - e.received_at % width, e.status)
            for e in self._work.tables.events.values()
            if e.received_at >= since
        )
        return [BucketCount(bucket=b, key=s, count=n) for (b, s), n in counts.items()]

    def purchases(self, *, since: int) -> list[PurchaseRow]:
        sums: dict[tuple[int, str, str | None], list[int]] = defaultdict(lambda: [0, 0])
        for o in self._work.tables.orders.values():
            if o.fulfilled_at is not None and o.fulfilled_at >= since:
                row = sums[(o.fulfilled_at - o.fulfilled_at % DAY, o.kind, o.currency)]
                row[0] += 1
                row[1] += o.amount or 0
        return [
            PurchaseRow(day=d, kind=k, currency=c, count=n, amount=a)
            for (d, k, c), (n, a) in sums.items()
        ]

    def grants(self, *, since: int) -> list[GrantSum]:
        sums: Counter[tuple[int, str, str]] = Counter()
        for g in self._work.tables.grants.values():
            if g.created >= since:
                sums[(g.created - g.created % DAY, g.kind, g.unit)] += g.amount
        return [GrantSum(day=d, kind=k, unit=u, amount=a) for (d, k, u), a in sums.items()]

    def revenue(self, *, since: int, by: str) -> list[RevenueRow]:
        sums: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0, 0, 0])
        for o in self._work.tables.orders.values():
            name = o.package if by == "package" else o.plan
            if name is not None and o.fulfilled_at is not None and o.fulfilled_at >= since:
                row = sums[(name, o.currency)]
                row[0] += 1
                row[1] += o.amount or 0
                row[2] += o.refunded_amount
        return [
            RevenueRow(name=name, currency=c, count=n, amount=a, refunded=r)
            for (name, c), (n, a, r) in sums.items()
        ]

    def latencies(self, *, since: int, limit: int) -> list[int]:
        first: dict[str, int] = {}
        for e in self._work.tables.events.values():
            if e.object_id is not None and e.stripe_created is not None:
                known = first.get(e.object_id)
                first[e.object_id] = (
                    e.stripe_created if known is None else min(known, e.stripe_created)
                )
        fulfilled = sorted(
            (
                (o.fulfilled_at, o.id, o.fulfilled_at - first[o.stripe_id])
                for o in self._work.tables.orders.values()
                if o.fulfilled_at is not None and o.fulfilled_at >= since and o.stripe_id in first
            ),
            reverse=True,
        )
        return [seconds for _, _, seconds in fulfilled[:limit]]

    def backlog(self) -> BacklogRow:
        events = self._work.tables.events.values()
        received = [e.received_at for e in events if e.status == "received"]
        statuses = Counter(e.status for e in events)
        return BacklogRow(
            received=len(received),
            oldest_received_at=min(received, default=None),
            failed=statuses["failed"],
            dead=statuses["dead"],
            needs_attention_orders=sum(
                1 for o in self._work.tables.orders.values() if o.status == "needs_attention"
            ),
        )

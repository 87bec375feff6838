"""The operator's dashboard (admin token): webhooks, purchases, credits, revenue, latency, backlog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from billfold import schemas as s
from billfold.entrypoints.http.access import AdminDep
from billfold.entrypoints.http.deps import ServicesDep
from billfold.entrypoints.http.openapi import errors_of
from billfold.service import dashboard as dash

router = APIRouter(prefix="/v1", tags=["admin"])


@router.get("/dashboard", response_model=s.DashboardResponse, responses=errors_of(401, 403))
def get_dashboard(
    services: ServicesDep,
    _admin: AdminDep,
    days: Annotated[
        int, Query(ge=1, le=dash.MAX_DAYS, description="The window in days, 1 to 90.")
    ] = 7,
) -> s.DashboardResponse:
    """Figures of the last ``days`` days, per UTC day (and per hour over the last 24 hours)."""
    return present(services.dashboard.figures(days))


def _counts(bucket: dash.EventBucket) -> s.EventCountsResponse:
    return s.EventCountsResponse(
        start=bucket.start, success_rate=bucket.success_rate, **dict(bucket.counts)
    )


def _revenue(rows: tuple[dash.Revenue, ...]) -> list[s.RevenueResponse]:
    return [
        s.RevenueResponse(
            name=r.name, currency=r.currency, count=r.count, amount=r.amount, refunded=r.refunded
        )
        for r in rows
    ]


def present(f: dash.DashboardFigures) -> s.DashboardResponse:
    total = f.events
    return s.DashboardResponse(
        days=f.days,
        since=f.since,
        until=f.now,
        webhooks=s.WebhookFiguresResponse(
            success_rate=total.success_rate,
            per_day=[_counts(b) for b in f.events_per_day],
            per_hour=[_counts(b) for b in f.events_per_hour],
            **dict(total.counts),
        ),
        purchases_per_day=[
            s.DayPurchasesResponse(
                day=d.day,
                count=d.count,
                sales=[
                    s.SaleResponse(kind=x.kind, currency=x.currency, count=x.count, amount=x.amount)
                    for x in d.sales
                ],
            )
            for d in f.purchases_per_day
        ],
        credits_per_day=[
            s.DayCreditsResponse(day=c.day, paid=dict(c.paid), free=dict(c.free))
            for c in f.credits_per_day
        ],
        revenue=s.RevenueFiguresResponse(
            by_package=_revenue(f.revenue_by_package), by_plan=_revenue(f.revenue_by_plan)
        ),
        latency=s.LatencyResponse(count=f.latency.count, p50=f.latency.p50, p99=f.latency.p99),
        backlog=s.BacklogResponse(
            received=f.backlog.received, oldest_age=f.backlog.oldest_age, failed=f.backlog.failed
        ),
        needs_attention=s.AttentionCountsResponse(
            count=f.attention.count,
            orders=f.attention.orders,
            failed_events=f.attention.failed_events,
            dead_events=f.attention.dead_events,
        ),
    )

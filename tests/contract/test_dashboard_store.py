"""The dashboard's aggregates: the same rows give the same figures on memory, SQLite and PostgreSQL,
and the service turns them into continuous series, percentiles and the backlog."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from billfold.domain.ledger import GrantKind
from billfold.domain.records import EventStatus
from billfold.service.dashboard import Dashboard
from billfold.service.ports import (
    BacklogRow,
    BucketCount,
    GrantSum,
    PurchaseRow,
    RevenueRow,
    UnitOfWork,
)
from tests.contract.backends import T0, Backend, claim, inbound, new_grant, new_order

DAY: Final = 86_400
D0: Final = T0 - T0 % DAY
D1: Final = D0 + DAY
SINCE: Final = T0 - 3 * DAY
OLD: Final = T0 - 10 * DAY


def _event(
    uow: UnitOfWork,
    event_id: str,
    *,
    at: int,
    status: EventStatus,
    object_id: str = "cs_other",
    created: int | None = None,
) -> None:
    event = replace(inbound(event_id, created=created), object_id=object_id)
    assert uow.inbox.insert(event, now=at, lease=None)
    if status in ("processed", "ignored"):
        assert uow.inbox.finish(
            event_id, status=status, outcome="done", now=at, from_statuses=("received",)
        )
    elif status in ("failed", "dead"):
        uow.inbox.fail(
            event_id, error="boom", now=at, next_attempt_at=at + 60, dead=status == "dead"
        )


def _order(uow: UnitOfWork, order_id: str, **values: Any) -> None:
    kind = values.pop("kind", "checkout")
    stripe_id = values.pop("stripe_id", f"cs_{order_id}")
    new = replace(
        new_order(order_id=order_id, amount=values.pop("amount", 499)),
        kind=kind,
        stripe_id=stripe_id,
        currency=values.pop("currency", "usd"),
    )
    uow.orders.ensure_locked(new)
    uow.orders.update(order_id, **values)


def _grant(
    uow: UnitOfWork, kind: GrantKind, amount: int, *, at: int, unit: str = "credits"
) -> None:
    uow.ledger.ensure_account("acct_1", at)
    txn = claim(uow, account_id="acct_1", amount=amount, created=at)
    grant = new_grant("acct_1", txn, unit=unit, amount=amount, created=at)
    uow.ledger.insert_grant(replace(grant, kind=kind))


def seed(backend: Backend) -> None:
    with backend.uow() as uow:
        _event(uow, "evt_1", at=T0, status="processed", object_id="cs_a", created=T0 - 10)
        _event(uow, "evt_2", at=T0 + 100, status="ignored", object_id="cs_a", created=T0 - 5)
        _event(uow, "evt_3", at=T0 + DAY, status="failed", object_id="cs_b", created=T0 + DAY)
        _event(uow, "evt_4", at=T0 + DAY + 3_600, status="dead")
        _event(uow, "evt_5", at=T0 + DAY + 7_200, status="received")
        _event(uow, "evt_old", at=OLD, status="processed", object_id="cs_old", created=OLD)
        _order(
            uow,
            "ord_a",
            stripe_id="cs_a",
            status="fulfilled",
            package="starter",
            fulfilled_at=T0 + 30,
        )
        _order(
            uow,
            "ord_b",
            stripe_id="cs_b",
            amount=1999,
            status="refunded",
            package="pro",
            refunded_amount=500,
            fulfilled_at=T0 + DAY + 50,
        )
        _order(
            uow,
            "ord_c",
            kind="invoice",
            stripe_id="in_c",
            amount=1000,
            currency="eur",
            status="fulfilled",
            plan="team",
            fulfilled_at=T0 + 200,
        )
        _order(uow, "ord_d", status="needs_attention")
        _order(
            uow,
            "ord_old",
            stripe_id="cs_old",
            status="fulfilled",
            package="starter",
            fulfilled_at=OLD + 5,
        )
        _grant(uow, "purchase", 500, at=T0)
        _grant(uow, "bonus", 50, at=T0 + 10)
        _grant(uow, "allowance", 1000, at=T0 + DAY)
        _grant(uow, "manual", 7, at=T0 + DAY, unit="usd")
        _grant(uow, "purchase", 999, at=OLD)
        uow.commit()


def _sorted(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=repr)


def test_the_same_rows_give_the_same_figures_on_every_backend(backend: Backend) -> None:
    seed(backend)
    with backend.uow() as uow:
        store = uow.dashboard
        assert _sorted(store.events(since=SINCE, width=DAY)) == _sorted(
            [
                BucketCount(bucket=D0, key="processed", count=1),
                BucketCount(bucket=D0, key="ignored", count=1),
                BucketCount(bucket=D1, key="failed", count=1),
                BucketCount(bucket=D1, key="dead", count=1),
                BucketCount(bucket=D1, key="received", count=1),
            ]
        )
        hour0 = T0 - T0 % 3_600
        assert _sorted(store.events(since=T0 + 50, width=3_600)) == _sorted(
            [
                BucketCount(bucket=hour0, key="ignored", count=1),
                BucketCount(bucket=hour0 + DAY, key="failed", count=1),
                BucketCount(bucket=hour0 + DAY + 3_600, key="dead", count=1),
                BucketCount(bucket=hour0 + DAY + 7_200, key="received", count=1),
            ]
        )
        assert _sorted(store.purchases(since=SINCE)) == _sorted(
            [
                PurchaseRow(day=D0, kind="checkout", currency="usd", count=1, amount=499),
                PurchaseRow(day=D0, kind="invoice", currency="eur", count=1, amount=1000),
                PurchaseRow(day=D1, kind="checkout", currency="usd", count=1, amount=1999),
            ]
        )
        assert _sorted(store.grants(since=SINCE)) == _sorted(
            [
                GrantSum(day=D0, kind="purchase", unit="credits", amount=500),
                GrantSum(day=D0, kind="bonus", unit="credits", amount=50),
                GrantSum(day=D1, kind="allowance", unit="credits", amount=1000),
                GrantSum(day=D1, kind="manual", unit="usd", amount=7),
            ]
        )
        assert _sorted(store.revenue(since=SINCE, by="package")) == _sorted(
            [
                RevenueRow(name="starter", currency="usd", count=1, amount=499, refunded=0),
                RevenueRow(name="pro", currency="usd", count=1, amount=1999, refunded=500),
            ]
        )
        assert store.revenue(since=SINCE, by="plan") == [
            RevenueRow(name="team", currency="eur", count=1, amount=1000, refunded=0)
        ]
        # newest first: ord_b (50 s after cs_b's event), ord_a (40 s after cs_a's first event)
        assert store.latencies(since=SINCE, limit=10) == [50, 40]
        assert store.latencies(since=SINCE, limit=1) == [50]
        assert store.latencies(since=OLD, limit=10) == [50, 40, 5]
        assert store.backlog() == BacklogRow(
            received=1,
            oldest_received_at=T0 + DAY + 7_200,
            failed=1,
            dead=1,
            needs_attention_orders=1,
        )


def test_an_empty_database_has_no_figures(backend: Backend) -> None:
    with backend.uow() as uow:
        store = uow.dashboard
        assert store.events(since=0, width=DAY) == []
        assert store.purchases(since=0) == []
        assert store.grants(since=0) == []
        assert store.revenue(since=0, by="package") == []
        assert store.latencies(since=0, limit=10) == []
        assert store.backlog() == BacklogRow(
            received=0, oldest_received_at=None, failed=0, dead=0, needs_attention_orders=0
        )


def test_the_service_fills_every_day_and_hour_and_takes_percentiles(backend: Backend) -> None:
    seed(backend)
    now = T0 + DAY + 7_200 + 60
    figures = Dashboard(backend.uow, lambda: now, units=["credits"]).figures(days=2)
    since = now - 2 * DAY
    assert figures.since == since
    days = [b.start for b in figures.events_per_day]
    assert days == [since - since % DAY + i * DAY for i in range(3)]
    assert days[-1] == D1
    assert len(figures.events_per_hour) == 25
    assert figures.events_per_hour[-1].start == now - now % 3_600
    by_day = {b.start: dict(b.counts) for b in figures.events_per_day}
    assert by_day[D0] == {"received": 0, "processed": 1, "ignored": 1, "failed": 0, "dead": 0}
    assert by_day[D1] == {"received": 1, "processed": 0, "ignored": 0, "failed": 1, "dead": 1}
    assert figures.events_per_day[0].success_rate is None  # nothing that day
    assert figures.events_per_day[1].success_rate == 1.0
    assert figures.events_per_day[2].success_rate == 0.0
    assert figures.events.success_rate == 0.5
    assert [p.count for p in figures.purchases_per_day] == [0, 2, 1]
    assert figures.units == ("credits", "usd")
    credits = {c.day: (dict(c.paid), dict(c.free)) for c in figures.credits_per_day}
    assert credits[D0] == ({"credits": 500, "usd": 0}, {"credits": 50, "usd": 0})
    assert credits[D1] == ({"credits": 1000, "usd": 0}, {"credits": 0, "usd": 7})
    assert [(r.name, r.amount, r.refunded) for r in figures.revenue_by_package] == [
        ("pro", 1999, 500),
        ("starter", 499, 0),
    ]
    assert (figures.latency.count, figures.latency.p50, figures.latency.p99) == (2, 40, 50)
    assert (figures.backlog.received, figures.backlog.oldest_age, figures.backlog.failed) == (
        1,
        60,
        1,
    )
    assert figures.attention.count == 3

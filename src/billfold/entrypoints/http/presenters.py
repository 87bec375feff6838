"""billfold's records and results as the API's response bodies (``billfold.schemas``)."""

from __future__ import annotations

from typing import Any

from billfold import schemas as s
from billfold.domain import catalog as cat
from billfold.domain import entitlements as ent
from billfold.domain import errors
from billfold.domain.actions import OperatorAction
from billfold.domain.notifications import EndpointRecord, NotificationRecord
from billfold.domain.orders import OrderRecord
from billfold.domain.reconciliation import RunRecord
from billfold.domain.records import (
    EventAttempt,
    EventRecord,
    GrantRecord,
    HoldRecord,
    TransactionRecord,
)
from billfold.domain.subscriptions import SubscriptionRecord
from billfold.service import dashboard as dash
from billfold.service import explain as explaining
from billfold.service.attention import Queue
from billfold.service.billing import SyncReport
from billfold.service.checkout import Fulfillment
from billfold.service.ledger import AdjustmentResult, GrantResult, HoldResult, SpendResult
from billfold.service.views import AccountView


def event(e: EventRecord, *, payload: dict[str, Any] | None = None) -> s.EventResponse:
    return s.EventResponse(
        id=e.id,
        type=e.type,
        livemode=e.livemode,
        status=e.status,
        attempts=e.attempts,
        last_error=e.last_error,
        outcome=e.outcome,
        received_at=e.received_at,
        processed_at=e.processed_at,
        next_attempt_at=e.next_attempt_at,
        stripe_created=e.stripe_created,
        object_id=e.object_id,
        payload=payload,
    )


def event_detail(
    e: EventRecord, history: list[EventAttempt], *, payload: dict[str, Any] | None
) -> s.EventDetailResponse:
    return s.EventDetailResponse(
        **event(e, payload=payload).model_dump(),
        attempt_history=[
            s.EventAttemptResponse(
                attempt=a.attempt, at=a.at, outcome=a.outcome, error=a.error, worker=a.worker
            )
            for a in history
        ],
    )


def order(o: OrderRecord) -> s.OrderResponse:
    return s.OrderResponse(
        id=o.id,
        status=o.status,
        status_reason=o.status_reason,
        key=o.key,
        kind=o.kind,
        stripe_id=o.stripe_id,
        payment_intent_id=o.payment_intent_id,
        account_id=o.account_id,
        package=o.package,
        plan=o.plan,
        amount=o.amount,
        currency=o.currency,
        customer_email=o.customer_email,
        payment_error=o.payment_error,
        refunded_amount=o.refunded_amount,
        disputed_amount=o.disputed_amount,
        resolved_by=o.resolved_by,
        created=o.created,
        updated=o.updated,
        fulfilled_at=o.fulfilled_at,
    )


def grant(g: GrantRecord) -> s.GrantResponse:
    return s.GrantResponse(
        id=g.id,
        account_id=g.account_id,
        unit=g.unit,
        amount=g.amount,
        remaining=g.remaining,
        held=g.held,
        priority=g.priority,
        expires_at=g.expires_at,
        kind=g.kind,
        origin=g.origin,
        reason=g.reason,
        created=g.created,
    )


def transaction(x: TransactionRecord, account_id: str) -> s.TransactionResponse:
    return s.TransactionResponse(
        id=x.id,
        kind=x.kind,
        account_id=x.account_id,
        unit=x.unit,
        amount=x.amount,
        net=x.net_for(account_id),
        reason=x.reason,
        created=x.created,
        lines=[
            s.LineResponse(
                account_id=line.account_id,
                unit=line.unit,
                amount=line.amount,
                grant_id=line.grant_id,
                hold_id=line.hold_id,
            )
            for line in x.lines
        ],
    )


def account(view: AccountView) -> s.AccountResponse:
    record = view.record
    return s.AccountResponse(
        id=view.account_id,
        email=record.email if record else None,
        stripe_customer_id=record.stripe_customer_id if record else None,
        metadata=dict(record.metadata) if record else {},
        balances=view.balances.available,
        held=view.balances.held,
        debt=view.balances.debt,
        created=record.created if record else None,
        updated=record.updated if record else None,
        low_balance=view.low_balance,
        low_balance_alerts=view.low_alerts,
    )


def notification(record: NotificationRecord) -> s.NotificationResponse:
    return s.NotificationResponse(
        id=record.id,
        type=record.type,
        account_id=record.account_id,
        status=record.status,
        attempts=record.attempts,
        next_attempt_at=record.next_attempt_at,
        last_error=record.last_error,
        created=record.created,
        body=record.body(),
    )


def endpoint(
    record: EndpointRecord, *, secret: str | None = None
) -> s.NotificationEndpointResponse:
    return s.NotificationEndpointResponse(
        id=record.id,
        url=record.url,
        types=list(record.types),
        source="settings" if record.id.startswith("env_") else "api",
        created=record.created,
        secret=secret,
    )


def spend(done: SpendResult) -> s.SpendResponse:
    return s.SpendResponse(
        transaction_id=done.transaction_id,
        account_id=done.account_id,
        unit=done.unit,
        amount=done.amount,
        balance=done.balance,
        draws=[s.DrawResponse(grant_id=g, amount=a) for g, a in done.draws],
    )


def adjusted(done: AdjustmentResult) -> s.AdjustmentResponse:
    return s.AdjustmentResponse(
        transaction_id=done.transaction_id,
        account_id=done.account_id,
        unit=done.unit,
        amount=done.amount,
        reason=done.reason,
        balance=done.balance,
        draws=[s.DrawResponse(grant_id=g, amount=a) for g, a in done.draws],
        created=done.created,
    )


def hold(row: HoldRecord) -> s.HoldResponse:
    """A hold as it stands."""
    return s.HoldResponse(
        id=row.id,
        account_id=row.account_id,
        unit=row.unit,
        amount=row.amount,
        captured=row.captured,
        status=row.status,
        expires_at=row.expires_at,
        reason=row.reason,
        created=row.created,
    )


def hold_moved(result: HoldResult) -> s.HoldResponse:
    """A hold as the request that placed, captured or released it left it."""
    return s.HoldResponse(
        id=result.hold_id,
        account_id=result.account_id,
        unit=result.unit,
        amount=result.amount,
        captured=result.captured,
        status=result.status,
        expires_at=result.expires_at,
        reason=result.reason,
        created=result.created,
        transaction_id=result.transaction_id,
        balance=result.balance,
    )


def granted(done: GrantResult) -> s.GrantCreatedResponse:
    return s.GrantCreatedResponse(
        id=done.grant_id,
        transaction_id=done.transaction_id,
        account_id=done.account_id,
        unit=done.unit,
        amount=done.amount,
        expires_at=done.expires_at,
        debt_repaid=done.debt_repaid,
        balance=done.balance,
    )


def fulfillment(done: Fulfillment) -> s.FulfillmentResponse:
    return s.FulfillmentResponse(
        session_id=done.session_id,
        session_status=done.session_status,
        payment_status=done.payment_status,
        status=done.status,
        order=order(done.order) if done.order else None,
        account_id=done.account_id,
        balances=done.balances,
        mode=done.mode,
        subscription_id=done.subscription_id,
        plan=done.plan,
        entitlements=entitlements(done.entitlements) if done.entitlements else None,
    )


def entitlements(e: ent.Entitlements) -> s.EntitlementsResponse:
    return s.EntitlementsResponse(
        account_id=e.account_id,
        plan=e.plan,
        source=e.source,
        status=e.status,
        features=e.features,
        limits=e.limits,
        current_period_end=e.current_period_end,
        grace_until=e.grace_until,
        subscription_id=e.subscription_id,
    )


def check(c: ent.Check) -> s.CheckResponse:
    return s.CheckResponse(
        allowed=c.allowed,
        reasons=[s.CheckReason(code=r.code, message=r.message) for r in c.reasons],
        plan=c.plan,
        balance=c.balance,
    )


def subscription(sub: SubscriptionRecord, catalog: cat.Catalog) -> s.SubscriptionResponse:
    grace = None
    if sub.plan is not None and sub.past_due_since is not None:
        try:
            grace = ent.grace_until(sub, catalog.plan(sub.plan))
        except errors.UnknownPlan:
            grace = None
    return s.SubscriptionResponse(
        id=sub.id,
        account_id=sub.account_id,
        customer_id=sub.customer_id,
        plan=sub.plan,
        status=sub.status,
        quantity=sub.quantity,
        current_period_start=sub.current_period_start,
        current_period_end=sub.current_period_end,
        cancel_at=sub.cancel_at,
        cancel_at_period_end=sub.cancel_at_period_end,
        canceled_at=sub.canceled_at,
        ended_at=sub.ended_at,
        trial_end=sub.trial_end,
        pause_collection=sub.pause_behavior,
        past_due_since=sub.past_due_since,
        grace_until=grace,
        note=sub.note,
        livemode=sub.livemode,
        created=sub.created,
        updated=sub.updated,
    )


def sync(report: SyncReport) -> s.SyncResponse:
    return s.SyncResponse(
        accounts=report.accounts,
        subscriptions=report.subscriptions,
        changes=[
            s.SyncChange(account_id=c.account_id, subscription_id=c.subscription_id, what=c.what)
            for c in report.changes
        ],
        failures=report.failures,
    )


def catalog(c: cat.Catalog) -> s.CatalogResponse:
    """What ``GET /v1/catalog`` shows a browser: without internal policies."""
    return s.CatalogResponse(
        units=[s.UnitResponse(name=u.name, decimals=u.decimals) for u in c.units],
        packages=[_package(p) for p in c.packages],
        plans=[_plan(p, c) for p in c.plans],
    )


def _grant_spec(g: cat.GrantSpec) -> s.CatalogGrantResponse:
    return s.CatalogGrantResponse(
        unit=g.unit, amount=g.amount, expires_in_days=g.expires_in_days, kind=g.kind
    )


def _package(p: cat.Package) -> s.PackageResponse:
    custom = p.custom_amount
    return s.PackageResponse(
        id=p.id,
        title=p.title,
        currency=p.currency,
        price=p.price,
        custom_amount=None
        if custom is None
        else s.CustomAmountResponse(min=custom.min, max=custom.max),
        stripe_price_id=p.stripe_price_id,
        grants=[_grant_spec(g) for g in p.grants],
    )


def _plan(p: cat.Plan, c: cat.Catalog) -> s.PlanResponse:
    return s.PlanResponse(
        id=p.id,
        title=p.title,
        default=p.default,
        rank=c.plan_rank(p)[0],
        stripe_price_ids=list(p.stripe_price_ids),
        price=p.price,
        currency=p.currency,
        interval=p.interval,
        features=dict(p.features),
        limits=dict(p.limits),
        allowance=[_grant_spec(g) for g in p.allowance],
        grace_period_days=p.grace_period_days,
    )


def reconciliation_run(run: RunRecord) -> s.ReconciliationRunResponse:
    return s.ReconciliationRunResponse(
        id=run.id,
        status=run.status,
        trigger=run.trigger,
        window=s.ReconciliationWindow(since=run.since, until=run.until),
        events_imported=run.events_imported,
        drift={
            name: s.DriftCountResponse(found=c.found, healed=c.healed, open=c.open)
            for name, c in run.drift.items()
        },
        items=[
            s.DriftItemResponse(
                drift_class=i.drift_class,
                stripe_ids=list(i.stripe_ids),
                billfold_ids=list(i.billfold_ids),
                amount=i.amount,
                currency=i.currency,
                healed=i.healed,
            )
            for i in run.items
        ],
        error=run.error,
        started=run.started,
        finished=run.finished,
    )


def explanation(x: explaining.Explanation) -> s.BalanceExplainResponse:
    return s.BalanceExplainResponse(
        account_id=x.account_id,
        unit=x.unit,
        balance=x.balance,
        held=x.held,
        debt=x.debt,
        lots=[
            s.LotResponse(
                grant_id=lot.grant_id,
                kind=lot.kind,
                amount=lot.amount,
                remaining=lot.remaining,
                held=lot.held,
                priority=lot.priority,
                expires_at=lot.expires_at,
                created=lot.created,
                reason=lot.reason,
                origin=s.LotOriginResponse(
                    type=lot.origin.type,
                    order_id=lot.origin.order_id,
                    stripe=s.StripeIdsResponse(
                        checkout_session=lot.origin.stripe.checkout_session,
                        payment_intent=lot.origin.stripe.payment_intent,
                        invoice=lot.origin.stripe.invoice,
                        charge=lot.origin.stripe.charge,
                    ),
                ),
                draws=[
                    s.LotDrawResponse(
                        transaction_id=d.transaction_id,
                        kind=d.kind,
                        amount=d.amount,
                        created=d.created,
                    )
                    for d in lot.draws
                ],
            )
            for lot in x.lots
        ],
        holds=[
            s.ExplainedHoldResponse(
                hold_id=h.hold_id,
                amount=h.amount,
                expires_at=h.expires_at,
                reason=h.reason,
                created=h.created,
            )
            for h in x.holds
        ],
        reversals=[_reversal(r) for r in x.reversals],
    )


def _reversal(
    r: explaining.ExplainedReversal,
) -> s.RefundExplainedResponse | s.DisputeExplainedResponse:
    common: dict[str, Any] = {
        "order_id": r.order_id,
        "status": r.status,
        "state": r.state,
        "amount": r.amount,
        "currency": r.currency,
        "recovered": r.recovered,
        "taken": r.taken,
        "debt": r.debt,
        "unrecovered": r.unrecovered,
        "held": r.held,
    }
    if r.kind == "refund":
        return s.RefundExplainedResponse.model_validate(common | {"refund": r.stripe_id})
    funds = [
        {
            "event": f.event,
            "balance_transaction": f.balance_transaction,
            "amount": f.amount,
            "fee": f.fee,
            "currency": f.currency,
        }
        for f in r.funds
    ]
    return s.DisputeExplainedResponse.model_validate(
        common | {"dispute": r.stripe_id, "funds": funds}
    )


def operator_action(a: OperatorAction) -> s.OperatorActionResponse:
    return s.OperatorActionResponse(
        id=a.id,
        created=a.created,
        operator=a.actor,
        action=a.action,
        target_type=a.target_type,
        target_id=a.target_id,
        reason=a.reason,
        outcome=a.outcome,
    )


def attention(q: Queue) -> s.AttentionResponse:
    return s.AttentionResponse(
        count=q.counts.count,
        orders=[order(o) for o in q.orders],
        orders_count=q.counts.orders,
        orders_has_more=q.counts.orders > len(q.orders),
        failed_events=[event(e) for e in q.failed],
        failed_count=q.counts.failed_events,
        dead_events=[event(e) for e in q.dead],
        dead_count=q.counts.dead_events,
    )


def _event_counts(bucket: dash.EventBucket) -> s.EventCountsResponse:
    return s.EventCountsResponse(
        start=bucket.start, success_rate=bucket.success_rate, **dict(bucket.counts)
    )


def _revenue_rows(rows: tuple[dash.Revenue, ...]) -> list[s.RevenueResponse]:
    return [
        s.RevenueResponse(
            name=r.name, currency=r.currency, count=r.count, amount=r.amount, refunded=r.refunded
        )
        for r in rows
    ]


def dashboard(f: dash.DashboardFigures) -> s.DashboardResponse:
    total = f.events
    return s.DashboardResponse(
        days=f.days,
        since=f.since,
        until=f.now,
        webhooks=s.WebhookFiguresResponse(
            success_rate=total.success_rate,
            per_day=[_event_counts(b) for b in f.events_per_day],
            per_hour=[_event_counts(b) for b in f.events_per_hour],
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
            by_package=_revenue_rows(f.revenue_by_package), by_plan=_revenue_rows(f.revenue_by_plan)
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

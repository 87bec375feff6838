"""Entitlements: what an account may do now, from its subscriptions, the catalog and the clock.

Evaluated as of ``now``, never by a sweep: a grace period ends, and a scheduled cancellation takes
effect, the moment its time passes.

- ``active`` and ``trialing`` give the plan, until a scheduled end (``ended_at``, else ``cancel_at``,
  else the period end with ``cancel_at_period_end``) has passed;
- ``past_due`` gives the plan until ``grace_period_days`` after the first failed payment of the
  period (``source: "grace"``), then the default plan (``status`` stays ``past_due``, and
  ``grace_until`` says when it ended);
- ``unpaid``, ``canceled``, ``incomplete``, ``incomplete_expired`` and ``paused`` give the default.

With several subscriptions the highest plan wins (catalog order, or ``rank``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from billfold.domain import catalog as cat
from billfold.domain import errors
from billfold.domain.subscriptions import LIVE, SubscriptionRecord

DAY = 86_400

Source: TypeAlias = Literal["subscription", "grace", "default", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Entitlements:
    account_id: str
    plan: str | None
    source: Source
    status: str | None
    """The status of the subscription that decided (None without one)."""
    features: dict[str, bool] = field(default_factory=dict)
    limits: dict[str, int | None] = field(default_factory=dict)
    current_period_end: int | None = None
    grace_until: int | None = None
    subscription_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Candidate:
    plan: cat.Plan
    source: Source
    subscription: SubscriptionRecord
    grace_until: int | None


def grace_until(sub: SubscriptionRecord, plan: cat.Plan) -> int | None:
    if sub.past_due_since is None:
        return None
    return sub.past_due_since + plan.grace_period_days * DAY


def _grace_end(sub: SubscriptionRecord, plan: cat.Plan) -> int:
    until = grace_until(sub, plan)
    if until is None:
        # No failed payment recorded yet (the invoice event is late): the grace clock starts
        # at the earliest at the period start.
        start = sub.current_period_start or sub.state_created
        until = start + plan.grace_period_days * DAY
    return until


def grace_end(sub: SubscriptionRecord, catalog: cat.Catalog) -> int | None:
    """When a ``past_due`` subscription's grace period ends (its plan gives way to the default
    then); None for any other subscription, or one whose plan the catalog no longer has."""
    if sub.status != "past_due" or sub.plan is None:
        return None
    try:
        plan = catalog.plan(sub.plan)
    except errors.UnknownPlan:
        return None
    return _grace_end(sub, plan)


def _candidate(
    sub: SubscriptionRecord, catalog: cat.Catalog, now: int
) -> tuple[_Candidate | None, int | None]:
    """What one subscription gives now (None: nothing beyond the default), and its grace end."""
    if sub.plan is None or sub.status is None:
        return None, None
    try:
        plan = catalog.plan(sub.plan)
    except errors.UnknownPlan:  # a plan the catalog no longer has
        return None, None
    ends = sub.ends_at()
    if ends is not None and ends <= now:
        return None, None
    if sub.status in LIVE:
        return _Candidate(
            plan=plan, source="subscription", subscription=sub, grace_until=None
        ), None
    if sub.status == "past_due":
        until = _grace_end(sub, plan)
        if now < until:
            return _Candidate(plan=plan, source="grace", subscription=sub, grace_until=until), until
        return None, until
    return None, None


def evaluate(
    account_id: str,
    subscriptions: Sequence[SubscriptionRecord],
    catalog: cat.Catalog,
    now: int,
) -> Entitlements:
    best: _Candidate | None = None
    lapsed: tuple[SubscriptionRecord, int] | None = None
    for sub in subscriptions:
        found, until = _candidate(sub, catalog, now)
        if found is None:
            if until is not None and (lapsed is None or until > lapsed[1]):
                lapsed = (sub, until)
            continue
        if best is None or catalog.plan_rank(found.plan) > catalog.plan_rank(best.plan):
            best = found
    if best is not None:
        return _of(account_id, best.plan, best.source, best.subscription, best.grace_until)
    default = catalog.default_plan()
    decided = lapsed[0] if lapsed else _latest(subscriptions)
    if default is None:
        return Entitlements(
            account_id=account_id,
            plan=None,
            source="none",
            status=decided.status if decided else None,
            subscription_id=decided.id if decided else None,
            grace_until=lapsed[1] if lapsed else None,
        )
    return _of(account_id, default, "default", decided, lapsed[1] if lapsed else None)


def _latest(subscriptions: Sequence[SubscriptionRecord]) -> SubscriptionRecord | None:
    known = [s for s in subscriptions if s.status is not None]
    return max(known, key=lambda s: (s.state_created, s.id), default=None)


def _of(
    account_id: str,
    plan: cat.Plan,
    source: Source,
    sub: SubscriptionRecord | None,
    grace: int | None,
) -> Entitlements:
    return Entitlements(
        account_id=account_id,
        plan=plan.id,
        source=source,
        status=sub.status if sub else None,
        features=dict(plan.features),
        limits=dict(plan.limits),
        current_period_end=sub.current_period_end if sub and source != "default" else None,
        grace_until=grace,
        subscription_id=sub.id if sub else None,
    )


# --- check: may the account do this? ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    allowed: bool
    reasons: tuple[Reason, ...]
    plan: str | None
    balance: int | None


def check(
    entitlements: Entitlements,
    *,
    feature: str | None = None,
    limit: str | None = None,
    usage: int | None = None,
    unit: str | None = None,
    amount: int | None = None,
    available: int | None = None,
    known_features: Mapping[str, bool] | None = None,
    known_limits: Mapping[str, int | None] | None = None,
) -> Check:
    """Every reason the account may not: use ``feature``; add one more against ``limit`` at
    ``usage`` (a ``None`` limit is unlimited); spend ``amount`` of ``unit`` (``available``)."""
    reasons: list[Reason] = []
    features = entitlements.features
    if feature is not None:
        if feature not in features and (known_features is None or feature not in known_features):
            reasons.append(
                Reason(code="unknown_feature", message=f"No plan has a feature {feature!r}.")
            )
        elif not features.get(feature, False):
            reasons.append(
                Reason(
                    code="feature_not_in_plan",
                    message=f"The {entitlements.plan or 'current'} plan does not include "
                    f"{feature!r}.",
                )
            )
    if limit is not None:
        limits = entitlements.limits
        if limit not in limits and (known_limits is None or limit not in known_limits):
            reasons.append(Reason(code="unknown_limit", message=f"No plan has a limit {limit!r}."))
        else:
            cap = limits.get(limit)
            if cap is not None and (usage or 0) >= cap:
                reasons.append(
                    Reason(
                        code="limit_reached",
                        message=f"{limit} is at its limit of {cap} on the "
                        f"{entitlements.plan or 'current'} plan.",
                    )
                )
    if unit is not None and amount is not None and (available or 0) < amount:
        reasons.append(
            Reason(
                code="insufficient_balance",
                message=f"Needs {amount} {unit}; {max(available or 0, 0)} available.",
            )
        )
    return Check(
        allowed=not reasons,
        reasons=tuple(reasons),
        plan=entitlements.plan,
        balance=available if unit is not None else None,
    )

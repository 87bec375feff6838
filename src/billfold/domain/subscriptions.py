"""Subscriptions: billfold's copy of a Stripe subscription's state, and the rule that only moves it
forward.

State facts (``customer.subscription.*``) replace the stored state only when they are newer
(:func:`compare`): the event's ``created`` first, then the period end, then a status rank in which
``canceled`` and ``incomplete_expired`` are terminal. Same-second events with the same period and
rank but different states cannot be ordered by what they say: the caller re-fetches the subscription
from Stripe and applies what Stripe says now. Money facts (invoices) never write the status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from billfold.domain import catalog as cat
from billfold.domain import facts

Order: TypeAlias = Literal["newer", "older", "same", "undecided"]

STATUS_RANK: Final = {
    "incomplete": 0,
    "trialing": 1,
    "active": 2,
    "past_due": 3,
    "unpaid": 4,
    "paused": 4,
    "incomplete_expired": 9,
    "canceled": 9,
}
"""Where a status stands in a subscription's life; ``canceled`` and ``incomplete_expired`` are
terminal: nothing comes after them."""
TERMINAL: Final = frozenset({"canceled", "incomplete_expired"})
LIVE: Final = frozenset({"active", "trialing"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionState:
    """What a state fact says, resolved against the catalog."""

    subscription_id: str
    customer_id: str | None
    status: str
    plan: str | None
    """The plan its items' prices sell (the highest, with several); None when no plan sells them."""
    item_id: str | None
    price_ids: tuple[str, ...]
    quantity: int
    current_period_start: int | None
    current_period_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None
    ended_at: int | None
    trial_start: int | None
    trial_end: int | None
    pause_behavior: str | None
    pause_resumes_at: int | None
    pending_update: bool
    metadata_account: str | None
    livemode: bool
    event_created: int

    def same_state(self, other: SubscriptionRecord) -> bool:
        return (
            self.status == other.status
            and self.plan == other.plan
            and self.quantity == other.quantity
            and self.current_period_start == other.current_period_start
            and self.current_period_end == other.current_period_end
            and self.cancel_at_period_end == other.cancel_at_period_end
            and self.cancel_at == other.cancel_at
            and self.ended_at == other.ended_at
            and self.trial_end == other.trial_end
            and self.pause_behavior == other.pause_behavior
            and self.pending_update == other.pending_update
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionRecord:
    """A subscription as billfold keeps it (``status`` None: only money facts seen so far)."""

    id: str
    account_id: str | None
    customer_id: str | None
    plan: str | None
    status: str | None
    item_id: str | None
    price_ids: tuple[str, ...]
    quantity: int
    current_period_start: int | None
    current_period_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None
    ended_at: int | None
    trial_start: int | None
    trial_end: int | None
    pause_behavior: str | None
    pause_resumes_at: int | None
    pending_update: bool
    livemode: bool
    state_created: int
    """``created`` of the state fact stored (0 before any)."""
    past_due_since: int | None
    """When the first payment of the period failed (Stripe's time): the grace clock."""
    grace_invoice_id: str | None
    grace_lapse_notified: int | None = None
    """The grace end (``entitlements.grace_end``) whose lapse has been notified: a later grace
    period, with another end, is notified again."""
    note: str | None
    created: int
    updated: int

    def ends_at(self) -> int | None:
        """When access ends, if it is scheduled to: ``ended_at``, else ``cancel_at``, else the
        period end when ``cancel_at_period_end``."""
        if self.ended_at is not None:
            return self.ended_at
        if self.cancel_at is not None:
            return self.cancel_at
        if self.cancel_at_period_end:
            return self.current_period_end
        return None


def state_of(fact: facts.SubscriptionFact, catalog: cat.Catalog) -> SubscriptionState:
    """A state fact resolved against the catalog: the plan, and the item whose price sells it."""
    best: tuple[cat.Plan, facts.SubscriptionItemFact] | None = None
    for item in fact.items:
        plan = catalog.plan_for_price(item.price_id, item.price_lookup_key)
        if plan is not None and (
            best is None or catalog.plan_rank(plan) > catalog.plan_rank(best[0])
        ):
            best = (plan, item)
    chosen = best[1] if best else (fact.items[0] if len(fact.items) == 1 else None)
    start = chosen.current_period_start if chosen else fact.current_period_start
    end = chosen.current_period_end if chosen else fact.current_period_end
    pause = fact.pause_collection
    return SubscriptionState(
        subscription_id=fact.subscription_id,
        customer_id=fact.customer_id,
        status=fact.status,
        plan=best[0].id if best else None,
        item_id=chosen.item_id if chosen else None,
        price_ids=fact.price_ids,
        quantity=(chosen.quantity if chosen and chosen.quantity else fact.quantity) or 1,
        current_period_start=start if start is not None else fact.current_period_start,
        current_period_end=end if end is not None else fact.current_period_end,
        cancel_at_period_end=fact.cancel_at_period_end,
        cancel_at=fact.cancel_at,
        canceled_at=fact.canceled_at,
        ended_at=fact.ended_at,
        trial_start=fact.trial_start,
        trial_end=fact.trial_end,
        pause_behavior=pause.behavior if pause else None,
        pause_resumes_at=pause.resumes_at if pause else None,
        pending_update=fact.pending_update,
        metadata_account=fact.metadata_account,
        livemode=fact.livemode,
        event_created=fact.event_created,
    )


def compare(incoming: SubscriptionState, stored: SubscriptionRecord) -> Order:
    """Whether ``incoming`` is newer than what is stored (only then does it replace it)."""
    if stored.status is None:
        return "newer"
    if stored.status in TERMINAL and incoming.status not in TERMINAL:
        return "older"  # nothing comes after the end
    if incoming.same_state(stored):
        return "same"
    if incoming.event_created != stored.state_created:
        return "newer" if incoming.event_created > stored.state_created else "older"
    in_end, st_end = incoming.current_period_end or 0, stored.current_period_end or 0
    if in_end != st_end:
        return "newer" if in_end > st_end else "older"
    in_rank = STATUS_RANK.get(incoming.status, 0)
    st_rank = STATUS_RANK.get(stored.status, 0)
    if in_rank != st_rank:
        return "newer" if in_rank > st_rank else "older"
    return "undecided"


def highest(plans: Sequence[cat.Plan], catalog: cat.Catalog) -> cat.Plan | None:
    return max(plans, key=catalog.plan_rank, default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedsSubscription:
    """The subscription must be read from Stripe: its events cannot be ordered by what they say,
    or an invoice names a subscription billfold has never seen."""

    subscription_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedsInvoice:
    """The invoice must be read from Stripe with all its lines: the event's copy lists only the
    first few (``has_more``), and every line may grant."""

    invoice_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedsPrices:
    """Invoice lines name prices billfold cannot place: a basil-or-later line names its price by
    id only, and the price of a plan sold inline is known by its lookup key, which must be read
    from Stripe (an upgrade's credit line names the old plan's price, no longer the
    subscription's)."""

    price_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedsInvoicePayments:
    """A paid invoice's payment intents must be listed from Stripe (basil webhooks leave them out),
    so that a later refund finds its invoice."""

    invoice_id: str

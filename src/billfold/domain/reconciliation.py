"""Reconciliation with Stripe, as values: the drift classes, a run's items and counts, and the Stripe
objects a run compares with billfold's effects (read by the Stripe adapter, in billfold's terms).

A run pages Stripe's Events API into the inbox, then lists what Stripe says was paid, refunded and
disputed over a window and checks each one's effect in billfold. What it finds is a
:class:`DriftItem` of one class; ``healed`` says whether the run made billfold right (only ever by
feeding Stripe's own events to the inbox, or by the subscription sync for a subscription's state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, get_args

DriftClass: TypeAlias = Literal[
    "paid_not_granted",
    "granted_without_payment",
    "refunded_not_clawed_back",
    "disputed_not_held",
    "subscription_state_drift",
    "amount_mismatch",
]
DRIFT_CLASSES: Final[tuple[DriftClass, ...]] = get_args(DriftClass)

RunStatus: TypeAlias = Literal["running", "completed", "failed"]
RUN_STATUSES: Final[tuple[str, ...]] = get_args(RunStatus)

DEFAULT_WINDOW_SECONDS: Final = 3 * 86_400
"""The money check's window when none is given: the last three days."""

EVENTS_RETENTION_SECONDS: Final = 30 * 86_400
"""How far back Stripe's Events API goes."""

CURSOR_OVERLAP_SECONDS: Final = 300
"""The events cursor is read again from this far back: events written in the same second, or
listed a little late, are never skipped (events the inbox has are simply passed over)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftItem:
    """One difference between Stripe and billfold. ``amount`` in minor units of ``currency``."""

    drift_class: DriftClass
    stripe_ids: tuple[str, ...]
    billfold_ids: tuple[str, ...]
    amount: int | None
    currency: str | None
    healed: bool
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.drift_class,
            "stripe_ids": list(self.stripe_ids),
            "billfold_ids": list(self.billfold_ids),
            "amount": self.amount,
            "currency": self.currency,
            "healed": self.healed,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftItem:
        drift_class = data["class"]
        assert drift_class in DRIFT_CLASSES, drift_class
        return cls(
            drift_class=drift_class,
            stripe_ids=tuple(data.get("stripe_ids") or ()),
            billfold_ids=tuple(data.get("billfold_ids") or ()),
            amount=data.get("amount"),
            currency=data.get("currency"),
            healed=bool(data.get("healed")),
            note=str(data.get("note") or ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftCount:
    found: int
    healed: int
    open: int


def count_drift(items: Sequence[DriftItem]) -> dict[DriftClass, DriftCount]:
    """Per class (every class, zeros included): found, healed and still open."""
    out: dict[DriftClass, DriftCount] = {}
    for drift_class in DRIFT_CLASSES:
        mine = [i for i in items if i.drift_class == drift_class]
        healed = sum(1 for i in mine if i.healed)
        out[drift_class] = DriftCount(found=len(mine), healed=healed, open=len(mine) - healed)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """A reconciliation run as stored. ``since``/``until`` bound the money check's window."""

    id: str
    status: RunStatus
    trigger: str
    since: int
    until: int
    events_imported: int
    items: tuple[DriftItem, ...]
    error: str | None
    started: int
    finished: int | None

    @property
    def drift(self) -> dict[DriftClass, DriftCount]:
        return count_drift(self.items)

    @property
    def open(self) -> int:
        """Drift items nobody has made right yet."""
        return sum(1 for i in self.items if not i.healed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """Who runs reconciliation now: one run at a time, across processes."""

    run_id: str | None
    owner: str | None
    until: int


# --- Stripe's objects, as a run reads them -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StripeSession:
    """A paid checkout session in ``payment`` mode."""

    id: str
    payment_intent_id: str | None
    amount: int
    currency: str
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StripeInvoice:
    """A paid invoice that is billfold's to grant: a subscription's, or one naming a package."""

    id: str
    subscription_id: str | None
    payment_intent_ids: tuple[str, ...]
    amount: int
    currency: str
    created: int


ReversalSeenKind: TypeAlias = Literal["refund", "dispute"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StripeReversal:
    """A refund or a dispute. ``status`` is Stripe's (``succeeded``, ``needs_response``, ...)."""

    kind: ReversalSeenKind
    id: str
    charge_id: str | None
    payment_intent_id: str | None
    amount: int
    currency: str
    status: str
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StripeSubscriptionState:
    id: str
    customer_id: str | None
    status: str
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StripePayment:
    """What Stripe says of the object behind an order: paid or not, and for how much."""

    id: str
    paid: bool
    amount: int | None
    currency: str | None


REFUND_ACTIVE: Final = frozenset({"pending", "succeeded", "requires_action"})
DISPUTE_OPEN: Final = frozenset(
    {"needs_response", "under_review", "warning_needs_response", "warning_under_review"}
)

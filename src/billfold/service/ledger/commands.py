"""The ledger's commands and their results.

A command names an idempotency ``key``: the first request with a key writes; a later one with the
same key and the same command gets the first result back (``replayed=True``) and writes nothing;
one with another command gets IdempotencyConflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from billfold.domain import ledger as rules
from billfold.domain.ledger import GrantKind, HoldStatus

SOURCES: Final = frozenset({rules.STRIPE, rules.ADJUSTMENTS, rules.PROMOTIONS})
MAX_HOLD_TTL: Final = 366 * 86_400
MAX_TIMESTAMP: Final = 253_402_300_799  # 9999-12-31T23:59:59Z


# --- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    key: str
    account_id: str
    unit: str
    amount: int
    priority: int = 0
    expires_at: int | None = None
    kind: GrantKind = "manual"
    origin: str | None = None
    reason: str | None = None
    source: str = rules.ADJUSTMENTS


@dataclass(frozen=True, slots=True, kw_only=True)
class Spend:
    key: str
    account_id: str
    unit: str
    amount: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Adjust:
    """An operator takes value away (a negative adjustment): ``amount`` leaves the available
    balance, drawn from the live grants as a spend is, into ``sys:adjustments``. The reason is
    required; the balance never goes below zero (no debt is recorded)."""

    key: str
    account_id: str
    unit: str
    amount: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    key: str
    account_id: str
    unit: str
    amount: int
    ttl_seconds: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Capture:
    key: str
    hold_id: str
    amount: int | None = None  # None: the whole hold


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    key: str
    hold_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Clawback:
    key: str
    account_id: str
    unit: str
    amount: int
    origin: str
    policy: rules.RefundPolicy = "floor"
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClawLots:
    """Take back what a reversal wants of specific lots (the grants of one payment): each lot gives
    at most what it holds free; the rest is debt (``debt``) or unrecovered (``floor``)."""

    key: str
    account_id: str
    unit: str
    wants: tuple[tuple[str, int], ...]  # (grant id, amount)
    policy: rules.RefundPolicy
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreLots:
    """Give back exactly what a reversal took: ``lots`` into the grants they came from, and
    ``debt`` it recorded (cleared, or granted anew where later grants repaid it meanwhile)."""

    key: str
    account_id: str
    unit: str
    origin: str
    """Whose lots these are (the payment's order): they are restored into its grants only."""
    lots: tuple[tuple[str, int], ...]
    debt: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldLots:
    """Reserve what a reversal wants of specific lots (an open dispute), at most what each holds
    free."""

    key: str
    account_id: str
    unit: str
    wants: tuple[tuple[str, int], ...]
    ttl_seconds: int
    reason: str | None = None


LedgerCommand = (
    Grant | Spend | Adjust | Hold | Capture | Release | Clawback | ClawLots | RestoreLots | HoldLots
)


# --- results -------------------------------------------------------------------------------------
#
# ``replayed`` says whether the answer is the first request's, given again for a repeated key. It is
# not part of what was recorded, and two results of one request compare equal either way.


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantResult:
    transaction_id: str
    grant_id: str
    account_id: str
    unit: str
    amount: int
    debt_repaid: int
    expires_at: int | None
    balance: int
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendResult:
    transaction_id: str
    account_id: str
    unit: str
    amount: int
    balance: int
    draws: list[tuple[str, int]] = field(default_factory=list)
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdjustmentResult:
    transaction_id: str
    account_id: str
    unit: str
    amount: int
    reason: str
    balance: int
    draws: list[tuple[str, int]] = field(default_factory=list)
    created: int = 0
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldResult:
    hold_id: str
    transaction_id: str
    account_id: str
    unit: str
    amount: int
    captured: int
    status: HoldStatus
    expires_at: int
    balance: int
    reason: str | None = None
    created: int | None = None
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClawbackResult:
    transaction_id: str | None
    account_id: str
    unit: str
    requested: int
    taken: int
    debt: int
    unrecovered: int
    balance: int
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClawLotsResult:
    transaction_id: str
    account_id: str
    unit: str
    takes: list[tuple[str, int, int]] = field(default_factory=list)  # (grant id, wanted, taken)
    debt: int = 0
    unrecovered: int = 0
    balance: int = 0
    replayed: bool = field(default=False, compare=False)

    @property
    def taken(self) -> int:
        return sum(taken for _, _, taken in self.takes)


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreLotsResult:
    transaction_id: str
    account_id: str
    unit: str
    restored: int
    debt_cleared: int
    granted: int
    """Debt that later grants had repaid meanwhile, given back as a new grant."""
    grant_id: str | None
    balance: int
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldLotsResult:
    transaction_id: str
    account_id: str
    unit: str
    hold_id: str | None
    """None when the lots held nothing free: nothing was reserved."""
    amount: int
    allocations: list[tuple[str, int]] = field(default_factory=list)
    balance: int = 0
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepResult:
    grants_expired: int
    amount_expired: int
    holds_expired: int


LedgerResult = (
    GrantResult
    | SpendResult
    | AdjustmentResult
    | HoldResult
    | ClawbackResult
    | ClawLotsResult
    | RestoreLotsResult
    | HoldLotsResult
)

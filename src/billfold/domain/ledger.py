"""The ledger's rules, as pure functions over plain values.

Nothing here touches a database: the service layer loads grants and holds, asks these functions what
to do, and writes the answer. Amounts are integers in minor units of a unit; a :class:`JournalEntry`
that does not balance per unit cannot be constructed.

System accounts (``SYSTEM_ACCOUNTS``) are the other side of every movement:

- ``stripe``: where purchased value comes from;
- ``adjustments``: manual grants, and what operators' negative adjustments take back;
- ``promotions``: free grants;
- ``spent``: what customers used;
- ``held``: reserved by active holds;
- ``expired``: grants that ran out;
- ``refunded``: taken back after a refund or a lost dispute.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

from billfold.domain import errors

# A single amount never exceeds this; balances are 64-bit integers in the database, so this keeps
# any realistic sum far from overflow while allowing a quadrillion minor units per operation.
MAX_AMOUNT = 10**15
MAX_PRIORITY = 1_000_000
MAX_TEXT = 500

STRIPE = "stripe"
ADJUSTMENTS = "adjustments"
PROMOTIONS = "promotions"
SPENT = "spent"
HELD = "held"
EXPIRED = "expired"
REFUNDED = "refunded"
SYSTEM_ACCOUNTS = frozenset({STRIPE, ADJUSTMENTS, PROMOTIONS, SPENT, HELD, EXPIRED, REFUNDED})
SYSTEM_PREFIX = "sys:"

RefundPolicy: TypeAlias = Literal["debt", "floor"]
"""What a refund or a lost dispute takes back: ``floor`` takes only what is left of the grants;
``debt`` takes the full share, letting the balance go below zero."""
REFUND_POLICIES: Final[tuple[str, ...]] = get_args(RefundPolicy)

GrantKind: TypeAlias = Literal["purchase", "bonus", "allowance", "promotion", "manual"]
"""Where a grant came from: a package's grants (purchase, bonus), a plan's allowance, a promotion,
or an operator's manual grant."""
GRANT_KINDS: Final[tuple[str, ...]] = get_args(GrantKind)

HoldStatus: TypeAlias = Literal["active", "captured", "released", "expired"]

TransactionKind: TypeAlias = Literal[
    "grant",
    "spend",
    "adjustment",
    "hold",
    "capture",
    "release",
    "clawback",
    "expire",
    "hold_expire",
]


def system_account(name: str) -> str:
    """The account id of a system account: ``sys:spent``. Customer ids cannot start with ``sys:``."""
    assert name in SYSTEM_ACCOUNTS, name
    return SYSTEM_PREFIX + name


def check_amount(amount: object, *, what: str = "amount") -> int:
    """Return ``amount`` if it is a positive integer within bounds, else raise ValidationError."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise errors.ValidationError(
            f"{what} must be an integer number of minor units, got {type(amount).__name__}.",
            param=what,
        )
    if amount <= 0:
        raise errors.ValidationError(f"{what} must be positive, got {amount}.", param=what)
    if amount > MAX_AMOUNT:
        raise errors.ValidationError(
            f"{what} must be at most {MAX_AMOUNT}, got {amount}.", param=what
        )
    return amount


_CONTROL = re.compile("[\x00-\x1f]")
"""A control character (below 32): refused in an account id."""


def check_account_id(account_id: object) -> str:
    if not isinstance(account_id, str) or not account_id.strip():
        raise errors.ValidationError("account id must be a non-empty string.", param="account_id")
    if len(account_id) > 200:
        raise errors.ValidationError(
            "account id is longer than 200 characters.", param="account_id"
        )
    if account_id.startswith(SYSTEM_PREFIX):
        raise errors.ValidationError(
            f"account ids starting with {SYSTEM_PREFIX!r} are reserved.", param="account_id"
        )
    if _CONTROL.search(account_id):
        raise errors.ValidationError("account id contains control characters.", param="account_id")
    return account_id


INTERNAL_KEY_PREFIX = "sys:"  # keys of the ledger's own transactions (expiry); no caller's


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > 255:
        raise errors.ValidationError(
            "idempotency key must be a string of 1 to 255 characters.", param="idempotency_key"
        )
    if key.startswith(INTERNAL_KEY_PREFIX):
        raise errors.ValidationError(
            f"idempotency keys starting with {INTERNAL_KEY_PREFIX!r} are reserved.",
            param="idempotency_key",
        )
    return key


def check_priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise errors.ValidationError("priority must be an integer.", param="priority")
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise errors.ValidationError(
            f"priority must be between {-MAX_PRIORITY} and {MAX_PRIORITY}.", param="priority"
        )
    return priority


def check_text(value: object, *, what: str, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise errors.ValidationError(f"{what} is required.", param=what)
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise errors.ValidationError(f"{what} must be a non-empty string.", param=what)
    if len(value) > MAX_TEXT:
        raise errors.ValidationError(f"{what} is longer than {MAX_TEXT} characters.", param=what)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One movement of ``amount`` of ``unit`` into (positive) or out of (negative) an account."""

    account_id: str
    unit: str
    amount: int
    grant_id: str | None = None
    hold_id: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount == 0:
            raise errors.ValidationError("a ledger line moves a non-zero integer amount.")


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """A balanced set of lines: per unit, they sum to zero."""

    kind: str
    lines: tuple[Line, ...]

    def __post_init__(self) -> None:
        if not self.lines:
            raise errors.ValidationError("a journal entry needs at least one line.")
        for unit, total in sums_by_unit(self.lines).items():
            if total != 0:
                raise errors.InvariantViolation(
                    f"journal entry {self.kind!r} does not balance: {unit} sums to {total}."
                )


def sums_by_unit(lines: Iterable[Line]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[line.unit] += line.amount
    return dict(totals)


def transfer(
    *,
    source: str,
    target: str,
    unit: str,
    amount: int,
    grant_id: str | None = None,
    hold_id: str | None = None,
) -> tuple[Line, Line]:
    """Two lines moving ``amount`` from ``source`` to ``target``."""
    return (
        Line(account_id=source, unit=unit, amount=-amount, grant_id=grant_id, hold_id=hold_id),
        Line(account_id=target, unit=unit, amount=amount, grant_id=grant_id, hold_id=hold_id),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantState:
    """What the rules need to know about one grant."""

    id: str
    unit: str
    remaining: int
    priority: int
    expires_at: int | None
    created_seq: str  # sorts by age: the grant's time-ordered id
    origin: str | None = None
    held: int = 0  # part of ``remaining`` reserved by active holds

    @property
    def free(self) -> int:
        return self.remaining - self.held

    def with_amounts(self, remaining: int, held: int) -> GrantState:
        """This grant with new ``remaining`` and ``held``: ``dataclasses.replace`` spelled out
        (a batch makes one per draw; replace costs three times as much). Copies every field."""
        return GrantState(
            id=self.id,
            unit=self.unit,
            remaining=remaining,
            priority=self.priority,
            expires_at=self.expires_at,
            created_seq=self.created_seq,
            origin=self.origin,
            held=held,
        )

    def is_live(self, now: int) -> bool:
        return self.expires_at is None or self.expires_at > now


def draw_order_key(grant: GrantState) -> tuple[int, int, int, str]:
    """Priority (lower first), then soonest expiry (none last), then oldest."""
    no_expiry = 1 if grant.expires_at is None else 0
    return (grant.priority, no_expiry, grant.expires_at or 0, grant.created_seq)


def spendable(grants: Iterable[GrantState], now: int) -> int:
    return sum(g.free for g in grants if g.is_live(now) and g.free > 0)


def plan_draw(
    grants: Sequence[GrantState], amount: int, now: int, *, unit: str
) -> list[tuple[str, int]]:
    """Which grants pay ``amount``: ``[(grant_id, take), ...]`` in draw order.

    Raises InsufficientBalance naming what is available when the live, unheld remainders fall short.
    """
    live = sorted((g for g in grants if g.is_live(now) and g.free > 0), key=draw_order_key)
    available = sum(g.free for g in live)
    if available < amount:
        raise errors.InsufficientBalance(unit=unit, requested=amount, available=available)
    plan: list[tuple[str, int]] = []
    left = amount
    for grant in live:
        if left == 0:
            break
        take = min(grant.free, left)
        plan.append((grant.id, take))
        left -= take
    return plan


@dataclass(frozen=True, slots=True, kw_only=True)
class ClawbackPlan:
    """How a clawback of ``requested`` is carried out."""

    takes: tuple[tuple[str, int], ...]  # (grant_id, amount) taken from grants
    debt: int  # recorded as debt (policy "debt")
    unrecovered: int  # given up (policy "floor")

    @property
    def taken(self) -> int:
        return sum(take for _, take in self.takes)


def plan_clawback(
    grants: Sequence[GrantState],
    amount: int,
    now: int,
    *,
    origin: str,
    policy: RefundPolicy,
) -> ClawbackPlan:
    """Take ``amount`` back: first from the live grants of ``origin``.

    ``floor``: take only what is left of that origin's grants; the rest is unrecovered.
    ``debt``: take the origin's grants, then the account's other live grants in draw order; what is
    still missing becomes debt, repaid first by the next grants.
    """
    ordered = sorted(
        (g for g in grants if g.is_live(now) and g.free > 0),
        key=lambda g: (g.origin != origin, *draw_order_key(g)),
    )
    takes: list[tuple[str, int]] = []
    left = amount
    for grant in ordered:
        if left == 0:
            break
        if grant.origin != origin and policy == "floor":
            break
        take = min(grant.free, left)
        takes.append((grant.id, take))
        left -= take
    if policy == "debt":
        return ClawbackPlan(takes=tuple(takes), debt=left, unrecovered=0)
    return ClawbackPlan(takes=tuple(takes), debt=0, unrecovered=left)


def split_largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` with integers that sum exactly to ``total``."""
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise errors.ValidationError("cannot split by weights that sum to zero.")
    quotients = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    short = total - sum(quotients)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:short]:
        quotients[index] += 1
    return quotients


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceView:
    """An account's position in one unit."""

    unit: str
    available: int  # what can be spent now
    held: int = 0  # reserved by active holds
    debt: int = 0  # owed after a clawback under the "debt" policy


def pending_adjustment(
    grants: Iterable[GrantState], expired_holds: Mapping[str, int], now: int
) -> tuple[int, int]:
    """Value the sweep has not yet written: (expired free remainders, amounts of lapsed holds).

    A read adds the lapsed holds back and takes the expired remainders off, so that what it shows
    already counts expiry that the sweep has not written yet.
    """
    expired_free = sum(g.free for g in grants if not g.is_live(now) and g.free > 0)
    return expired_free, sum(expired_holds.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class DebtRepayment:
    repaid: int
    remaining_grant: int


def repay_debt(debt: int, amount: int) -> DebtRepayment:
    """A new grant first repays debt; what is left becomes the grant's remainder."""
    repaid = min(debt, amount)
    return DebtRepayment(repaid=repaid, remaining_grant=amount - repaid)


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    grant_id: str
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CapturePlan:
    consumed: tuple[Allocation, ...]  # taken from grants for good
    returned: int  # released back to the account


def plan_capture(allocations: Sequence[Allocation], amount: int) -> CapturePlan:
    """Capture ``amount`` of a hold: consume its allocations in order, release the rest."""
    total = sum(a.amount for a in allocations)
    if amount > total:
        raise errors.ValidationError(
            f"cannot capture {amount}: the hold reserves only {total}.", param="amount"
        )
    consumed: list[Allocation] = []
    left = amount
    for alloc in allocations:
        if left == 0:
            break
        take = min(alloc.amount, left)
        consumed.append(Allocation(grant_id=alloc.grant_id, amount=take))
        left -= take
    return CapturePlan(consumed=tuple(consumed), returned=total - amount)

"""The catalog: the units balances count, the packages one payment buys, and the subscription plans.

Pure values, checked when they are built: a ``Package`` with a float price, a grant of a unit nobody
declared or two default plans cannot exist. Every check raises :class:`errors.CatalogError` whose
``details`` carry ``path`` (the key path of the offending value) and ``problem`` (what is wrong
with it), so that the TOML loader can name the file and the full key path in one line. All
amounts are integers in minor units; there is no float anywhere here.

    Catalog
    ├── units     Unit(name, decimals)
    ├── packages  Package(id, title, currency, price | custom_amount, grants: GrantSpec...)
    └── plans     Plan(id, default, stripe_price_ids, features, limits, allowance: GrantSpec...)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, TypeAlias, TypeVar, get_args

from billfold.domain import errors
from billfold.domain.catalog_text import format_key, invalid, show
from billfold.domain.ledger import MAX_AMOUNT, MAX_PRIORITY, RefundPolicy
from billfold.domain.money import currency_decimals

__all__ = ["MAX_PRIORITY", "RefundPolicy", "currency_decimals"]

_T = TypeVar("_T")

CatalogGrantKind: TypeAlias = Literal["purchase", "bonus", "allowance", "promotion"]
"""The kinds of grant a package or plan may give (a ``manual`` grant is an operator's)."""
PaidAmount: TypeAlias = Literal["paid"]
Rollover: TypeAlias = Literal["none", "all"] | int
Interval: TypeAlias = Literal["day", "week", "month", "year"]
INTERVALS: Final[tuple[str, ...]] = ("day", "week", "month", "year")

PAID: Final[PaidAmount] = "paid"
REFUND_POLICIES: Final[tuple[str, ...]] = get_args(RefundPolicy)
GRANT_KINDS: Final[tuple[str, ...]] = get_args(CatalogGrantKind)

# Stripe's largest amount for one charge (8 digits of minor units).
MAX_PRICE: Final = 99_999_999
MAX_GRANT_AMOUNT: Final = MAX_AMOUNT
MAX_EXPIRES_IN_DAYS: Final = 36_500
MAX_GRACE_PERIOD_DAYS: Final = 365
MAX_DECIMALS: Final = 18
MAX_LIMIT: Final = 10**15

_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_CURRENCY = re.compile(r"[a-z]{3}")
MAX_TITLE_LENGTH: Final = 200
MAX_PRICE_ID_LENGTH: Final = 255


def _is_int(value: object) -> bool:
    # bool is an int in Python, and `true` is never a number in a catalog.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(
    where: str, name: str, value: object, *, low: int, high: int, what: str = "an integer"
) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise invalid(where, name, f"must be {what} from {low} to {high}, got {show(value)}")


def _check_positive(where: str, name: str, value: object, *, high: int, what: str) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 < value <= high):
        raise invalid(where, name, f"must be a positive integer {what}, got {show(value)}")


def _check_text(where: str, name: str, value: object, *, max_length: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise invalid(where, name, f"must be a non-empty string, got {show(value)}")
    if len(value) > max_length or any(ch < " " or ch == "\x7f" for ch in value):
        raise invalid(
            where,
            name,
            f"must be at most {max_length} characters without control characters",
        )


def _check_price_id(where: str, name: str, value: object) -> None:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_PRICE_ID_LENGTH
        or any(ch.isspace() or ch < " " for ch in value)
    ):
        raise invalid(
            where, name, f'must be a Stripe price id such as "price_123", got {show(value)}'
        )


def _check_refund_policy(where: str, name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if value not in REFUND_POLICIES or not isinstance(value, str):
        raise invalid(where, name, f'must be "debt" or "floor", got {show(value)}')


def _freeze_tuple(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if isinstance(value, list):
        object.__setattr__(obj, name, tuple(value))


def _freeze_mapping(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if isinstance(value, Mapping) and not isinstance(value, MappingProxyType):
        object.__setattr__(obj, name, MappingProxyType(dict(value)))


MAX_LOW_BALANCE: Final = 2**62


@dataclass(frozen=True, slots=True, kw_only=True)
class Unit:
    """What a balance counts: ``credits``, ``tokens``, or a money wallet such as ``usd``.

    ``decimals`` says how an integer amount is displayed (``usd`` with 2: 1999 is 19.99); amounts
    themselves are always integers in the smallest step.
    """

    name: str
    decimals: int = 0
    low_balance: int | None = None
    """Below this balance the application hears ``balance.low`` (None: never)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise invalid(
                "units",
                format_key(str(self.name)),
                "a unit name must be lowercase letters, digits and _, starting with a letter, "
                "at most 32 characters",
            )
        _check_int(f"units.{self.name}", "decimals", self.decimals, low=0, high=MAX_DECIMALS)
        if self.low_balance is not None:
            _check_int(
                f"units.{self.name}", "low_balance", self.low_balance, low=0, high=MAX_LOW_BALANCE
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantSpec:
    """One grant a package (or a plan's allowance) gives: ``amount`` of ``unit``.

    ``amount = "paid"`` grants the amount actually paid, in minor units of the package's currency.
    Lower ``priority`` is spent first; ``expires_in_days`` counts from the moment of the grant.
    """

    unit: str
    amount: int | PaidAmount
    priority: int = 0
    expires_in_days: int | None = None
    kind: CatalogGrantKind = "purchase"
    rollover: Rollover = "none"
    """A plan's allowance only: what of it carries into the next period (``"none"``, ``"all"``,
    or at most that many)."""

    def __post_init__(self) -> None:
        if not isinstance(self.unit, str) or not _NAME.fullmatch(self.unit):
            raise invalid("", "unit", f"must be the name of a declared unit, got {show(self.unit)}")
        if not self.is_paid:
            _check_positive(
                "",
                "amount",
                self.amount,
                high=MAX_GRANT_AMOUNT,
                what=f'of {self.unit} (at most {MAX_GRANT_AMOUNT}) or "paid"',
            )
        _check_int("", "priority", self.priority, low=-MAX_PRIORITY, high=MAX_PRIORITY)
        if self.expires_in_days is not None:
            _check_int(
                "",
                "expires_in_days",
                self.expires_in_days,
                low=1,
                high=MAX_EXPIRES_IN_DAYS,
                what="a whole number of days",
            )
        if not (
            self.rollover in ("none", "all")
            or (_is_int(self.rollover) and 0 < int(self.rollover) <= MAX_GRANT_AMOUNT)
        ):
            raise invalid(
                "",
                "rollover",
                f'must be "none", "all" or a positive integer, got {show(self.rollover)}',
            )
        if self.kind not in GRANT_KINDS or not isinstance(self.kind, str):
            raise invalid(
                "",
                "kind",
                f"must be one of {', '.join(map(show, GRANT_KINDS))}, got {show(self.kind)}",
            )

    @property
    def is_paid(self) -> bool:
        """True when this grant gives the amount actually paid rather than a fixed amount."""
        return self.amount == PAID


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomAmount:
    """The range a customer may choose to pay, in minor units of the package's currency."""

    min: int
    max: int

    def __post_init__(self) -> None:
        _check_positive("", "min", self.min, high=MAX_PRICE, what=f"at most {MAX_PRICE}")
        _check_positive("", "max", self.max, high=MAX_PRICE, what=f"at most {MAX_PRICE}")
        if self.min > self.max:
            raise invalid(
                "", "max", f"must not be less than min ({self.min}), got {show(self.max)}"
            )

    def contains(self, amount: int) -> bool:
        return self.min <= amount <= self.max


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedGrant:
    """A grant to write for one fulfilment: every amount is a concrete integer."""

    unit: str
    amount: int
    priority: int
    expires_in_days: int | None
    kind: CatalogGrantKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Package:
    """What one payment buys: a fixed ``price`` or a ``custom_amount`` range, and its grants."""

    id: str
    title: str
    currency: str
    grants: tuple[GrantSpec, ...]
    price: int | None = None
    stripe_price_id: str | None = None
    custom_amount: CustomAmount | None = None
    refund_policy: RefundPolicy | None = None

    def __post_init__(self) -> None:
        _freeze_tuple(self, "grants")
        for index, grant in enumerate(self.grants):
            if isinstance(grant, GrantSpec) and grant.rollover != "none":
                raise invalid(
                    f"packages.{self.id}",
                    f"grants[{index}].rollover",
                    "only a plan's allowance rolls over; a package's grants expire as they say",
                )
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise invalid(
                f"packages.{format_key(str(self.id))}",
                "",
                "a package id must be letters, digits, _ and -, at most 64 characters",
            )
        where = f"packages.{self.id}"
        _check_text(where, "title", self.title, max_length=MAX_TITLE_LENGTH)
        if not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency):
            raise invalid(
                where,
                "currency",
                f'must be a lowercase ISO currency code such as "usd", got {show(self.currency)}',
            )
        if self.price is None and self.custom_amount is None:
            raise invalid(where, "price", "is required (or custom_amount, for a top-up)")
        if self.price is not None and self.custom_amount is not None:
            raise invalid(where, "custom_amount", "cannot be given together with price; choose one")
        if self.price is not None:
            _check_positive(
                where,
                "price",
                self.price,
                high=MAX_PRICE,
                what=f"in minor units of {self.currency}",
            )
        if self.custom_amount is not None and not isinstance(self.custom_amount, CustomAmount):
            raise invalid(
                where, "custom_amount", f"must be {{ min, max }}, got {show(self.custom_amount)}"
            )
        if self.stripe_price_id is not None:
            _check_price_id(where, "stripe_price_id", self.stripe_price_id)
        _check_refund_policy(where, "refund_policy", self.refund_policy, optional=True)
        if not isinstance(self.grants, tuple) or not self.grants:
            raise invalid(where, "grants", "must list at least one grant")
        for index, grant in enumerate(self.grants):
            if not isinstance(grant, GrantSpec):
                raise invalid(where, f"grants[{index}]", f"must be a grant, got {show(grant)}")
        if self.custom_amount is not None and not any(g.is_paid for g in self.grants):
            raise invalid(
                where,
                "grants",
                'a custom-amount package needs a grant with amount = "paid", '
                "or every customer would get the same whatever they paid",
            )

    def amount_matches(self, amount_paid: int, currency: str) -> bool:
        """Whether ``amount_paid`` minor units of ``currency`` pays for this package."""
        if not _is_int(amount_paid) or not isinstance(currency, str):
            return False
        if currency.lower() != self.currency:
            return False
        if self.custom_amount is not None:
            return self.custom_amount.contains(amount_paid)
        return amount_paid == self.price

    def grants_for(self, amount_paid: int) -> tuple[ResolvedGrant, ...]:
        """The grants one fulfilment writes, with ``"paid"`` resolved to ``amount_paid``.

        Fixed grants do not depend on ``amount_paid`` (an operator may resolve an order whose amount
        did not match); check :meth:`amount_matches` first when that matters.
        """
        if not _is_int(amount_paid) or amount_paid < 0:
            raise errors.ValidationError(
                f"The amount paid must be a non-negative integer, got {show(amount_paid)}."
            )
        resolved = []
        for grant in self.grants:
            if grant.amount == PAID:
                if amount_paid == 0:
                    raise errors.ValidationError(
                        f"Package {self.id!r} grants the amount paid, and nothing was paid."
                    )
                amount = amount_paid
            else:
                amount = grant.amount
            resolved.append(
                ResolvedGrant(
                    unit=grant.unit,
                    amount=amount,
                    priority=grant.priority,
                    expires_in_days=grant.expires_in_days,
                    kind=grant.kind,
                )
            )
        return tuple(resolved)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A subscription tier: on/off features, numeric limits and a per-period allowance.

    The default plan is what an account without a live subscription gets. ``grace_period_days``
    keeps a ``past_due`` subscription's entitlements for that long before falling back to it.
    """

    id: str
    title: str | None = None
    default: bool = False
    rank: int | None = None
    stripe_price_ids: tuple[str, ...] = ()
    price: int | None = None
    currency: str | None = None
    interval: Interval | None = None
    features: Mapping[str, bool] = field(default_factory=dict, hash=False)
    limits: Mapping[str, int | None] = field(default_factory=dict, hash=False)
    """``None``: unlimited (``"unlimited"`` in the catalog file)."""
    allowance: tuple[GrantSpec, ...] = ()
    grace_period_days: int = 0
    refund_policy: RefundPolicy | None = None

    @property
    def lookup_key(self) -> str:
        """The ``lookup_key`` of the Stripe price billfold makes for a plan sold inline."""
        return f"billfold_plan_{self.id}"

    @property
    def sells_inline(self) -> bool:
        return self.price is not None

    def __post_init__(self) -> None:
        _freeze_tuple(self, "stripe_price_ids")
        _freeze_tuple(self, "allowance")
        _freeze_mapping(self, "features")
        _freeze_mapping(self, "limits")
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise invalid(
                f"plans.{format_key(str(self.id))}",
                "",
                "a plan id must be letters, digits, _ and -, at most 64 characters",
            )
        where = f"plans.{self.id}"
        if self.title is not None:
            _check_text(where, "title", self.title, max_length=MAX_TITLE_LENGTH)
        if not isinstance(self.default, bool):
            raise invalid(where, "default", f"must be true or false, got {show(self.default)}")
        if not isinstance(self.stripe_price_ids, tuple):
            raise invalid(where, "stripe_price_ids", "must be an array of Stripe price ids")
        for index, price_id in enumerate(self.stripe_price_ids):
            _check_price_id(where, f"stripe_price_ids[{index}]", price_id)
            if price_id in self.stripe_price_ids[:index]:
                raise invalid(where, f"stripe_price_ids[{index}]", f"{show(price_id)} is repeated")
        self._check_names("features", self.features)
        for name, on in self.features.items():
            if not isinstance(on, bool):
                raise invalid(where, f"features.{name}", f"must be true or false, got {show(on)}")
        self._check_names("limits", self.limits)
        for name, limit in self.limits.items():
            if limit is not None:
                _check_int(
                    where,
                    f"limits.{name}",
                    limit,
                    low=0,
                    high=MAX_LIMIT,
                    what='"unlimited" or an integer',
                )
        if not isinstance(self.allowance, tuple):
            raise invalid(where, "allowance", "must be an array of grants")
        for index, grant in enumerate(self.allowance):
            at = f"allowance[{index}]"
            if not isinstance(grant, GrantSpec):
                raise invalid(where, at, f"must be a grant, got {show(grant)}")
            if grant.is_paid and grant.rollover != "none":
                raise invalid(
                    where,
                    f"{at}.rollover",
                    'a "paid" allowance is money in a wallet: it does not expire, so it has no '
                    "rollover",
                )
            if grant.expires_in_days is not None:
                raise invalid(
                    where,
                    f"{at}.expires_in_days",
                    "an allowance expires at the end of the paid period; remove expires_in_days",
                )
        _check_int(
            where, "grace_period_days", self.grace_period_days, low=0, high=MAX_GRACE_PERIOD_DAYS
        )
        _check_refund_policy(where, "refund_policy", self.refund_policy, optional=True)
        if self.default and self.stripe_price_ids:
            raise invalid(
                where,
                "stripe_price_ids",
                "the default plan is what accounts without a subscription get; "
                "it cannot have Stripe prices",
            )
        if self.default and self.allowance:
            raise invalid(
                where,
                "allowance",
                "an allowance is granted per paid invoice, and the default plan has none",
            )
        if self.rank is not None:
            _check_int(where, "rank", self.rank, low=-MAX_PRIORITY, high=MAX_PRIORITY)
        inline = (self.price, self.currency, self.interval)
        if any(v is not None for v in inline):
            if self.default:
                raise invalid(where, "price", "the default plan is free: it has no price")
            if self.price is None:
                raise invalid(where, "price", "is required with currency and interval")
            _check_positive(where, "price", self.price, high=MAX_PRICE, what="in minor units")
            if not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency):
                raise invalid(
                    where,
                    "currency",
                    f'must be a lowercase ISO currency code such as "usd", got {show(self.currency)}',
                )
            if self.interval not in INTERVALS:
                raise invalid(
                    where,
                    "interval",
                    f"must be one of {', '.join(map(show, INTERVALS))}, got {show(self.interval)}",
                )
        if not self.default and not self.stripe_price_ids and self.price is None:
            raise invalid(
                where,
                "stripe_price_ids",
                "a plan other than the default needs a Stripe price id, or a price, currency and "
                "interval to sell it with",
            )

    def _check_names(self, what: str, table: object) -> None:
        where = f"plans.{self.id}"
        if not isinstance(table, Mapping):
            raise invalid(where, what, f"must be a table, got {show(table)}")
        for name in table:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise invalid(
                    where,
                    f"{what}.{format_key(str(name))}",
                    "a name must be lowercase letters, digits and _, starting with a letter",
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    """Everything billfold sells, checked as a whole: references resolve, lookups are unique."""

    units: tuple[Unit, ...] = ()
    packages: tuple[Package, ...] = ()
    plans: tuple[Plan, ...] = ()
    refund_policy: RefundPolicy = "floor"

    _units: Mapping[str, Unit] = field(init=False, repr=False, compare=False, hash=False)
    _packages: Mapping[str, Package] = field(init=False, repr=False, compare=False, hash=False)
    _plans: Mapping[str, Plan] = field(init=False, repr=False, compare=False, hash=False)
    _by_price: Mapping[str, Package | Plan] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _custom_by_currency: Mapping[str, Package] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        for name in ("units", "packages", "plans"):
            _freeze_tuple(self, name)
        _check_refund_policy("policy", "refund", self.refund_policy, optional=False)
        units = _index("units", self.units, Unit, lambda u: u.name)
        packages = _index("packages", self.packages, Package, lambda p: p.id)
        plans = _index("plans", self.plans, Plan, lambda p: p.id)
        package_currencies = {p.currency for p in self.packages}

        by_price: dict[str, Package | Plan] = {}
        custom: dict[str, Package] = {}

        def claim_price(price_id: str, owner: Package | Plan, at: str) -> None:
            other = by_price.get(price_id)
            if other is not None:
                kind = "packages" if isinstance(other, Package) else "plans"
                raise invalid(
                    at,
                    "",
                    f"{show(price_id)} is already the price of {kind}.{other.id}; "
                    "a Stripe price must buy exactly one thing",
                )
            by_price[price_id] = owner

        for package in self.packages:
            where = f"packages.{package.id}"
            if package.stripe_price_id is not None:
                claim_price(package.stripe_price_id, package, f"{where}.stripe_price_id")
            if package.custom_amount is not None:
                other_package = custom.get(package.currency)
                if other_package is not None:
                    raise invalid(
                        where,
                        "custom_amount",
                        f"packages.{other_package.id} is already the custom-amount package "
                        f"for {package.currency}; a payment of any amount must resolve to one",
                    )
                custom[package.currency] = package
            for index, grant in enumerate(package.grants):
                at = f"{where}.grants[{index}]"
                unit = _known_unit(units, grant.unit, at)
                if grant.is_paid:
                    _check_paid_grant(package, unit, at, package_currencies)

        defaults = [plan for plan in self.plans if plan.default]
        if len(defaults) > 1:
            raise invalid(
                f"plans.{defaults[1].id}",
                "default",
                f"plans.{defaults[0].id} is already the default plan; only one may be",
            )
        for plan in self.plans:
            where = f"plans.{plan.id}"
            for index, price_id in enumerate(plan.stripe_price_ids):
                claim_price(price_id, plan, f"{where}.stripe_price_ids[{index}]")
            for index, grant in enumerate(plan.allowance):
                unit = _known_unit(units, grant.unit, f"{where}.allowance[{index}]")
                if grant.is_paid and not (
                    _CURRENCY.fullmatch(unit.name) and unit.decimals == currency_decimals(unit.name)
                ):
                    raise invalid(
                        f"{where}.allowance[{index}]",
                        "unit",
                        f'a "paid" allowance adds the amount paid to a money wallet; '
                        f"{unit.name} is not one (a unit named like a currency, with its decimals)",
                    )
        _check_same_names(self.plans)

        object.__setattr__(self, "_units", MappingProxyType(units))
        object.__setattr__(self, "_packages", MappingProxyType(packages))
        object.__setattr__(self, "_plans", MappingProxyType(plans))
        object.__setattr__(self, "_by_price", MappingProxyType(by_price))
        object.__setattr__(self, "_custom_by_currency", MappingProxyType(custom))

    # -- lookups -------------------------------------------------------------------------------

    def low_balances(self) -> dict[str, int]:
        """The low-balance threshold of each unit that has one."""
        return {u.name: u.low_balance for u in self.units if u.low_balance is not None}

    def unit(self, name: str) -> Unit:
        try:
            return self._units[name]
        except (KeyError, TypeError):
            raise errors.UnknownUnit(f"Unknown unit {name!r}.", unit=name) from None

    def package(self, package_id: str) -> Package:
        try:
            return self._packages[package_id]
        except (KeyError, TypeError):
            raise errors.UnknownPackage(
                f"Unknown package {package_id!r}.", package=package_id
            ) from None

    def plan(self, plan_id: str) -> Plan:
        try:
            return self._plans[plan_id]
        except (KeyError, TypeError):
            raise errors.UnknownPlan(f"Unknown plan {plan_id!r}.", plan=plan_id) from None

    def package_for_price(self, price_id: str) -> Package | None:
        found = self._by_price.get(price_id)
        return found if isinstance(found, Package) else None

    def plan_for_price(self, price_id: str | None, lookup_key: str | None = None) -> Plan | None:
        """The plan a Stripe price sells: by the catalog's price ids, or by the lookup key of a
        price billfold made for a plan sold inline."""
        found = self._by_price.get(price_id or "")
        if isinstance(found, Plan):
            return found
        if lookup_key and lookup_key.startswith("billfold_plan_"):
            plan = self._plans.get(lookup_key.removeprefix("billfold_plan_"))
            if plan is not None and plan.sells_inline:
                return plan
        return None

    def plan_rank(self, plan: Plan) -> tuple[int, int]:
        """How plans compare ("the highest plan wins"): ``rank`` when a plan sets it, else its
        place in the catalog (later is higher)."""
        index = self.plans.index(plan)
        return (plan.rank if plan.rank is not None else index, index)

    def custom_package_for_currency(self, currency: str) -> Package | None:
        return self._custom_by_currency.get(currency.lower())

    def default_plan(self) -> Plan | None:
        return next((plan for plan in self.plans if plan.default), None)

    def refund_policy_for(self, item: Package | Plan) -> RefundPolicy:
        """The item's own refund policy, else the catalog's."""
        return item.refund_policy or self.refund_policy


def _index(section: str, items: object, kind: type[_T], key: Callable[[_T], str]) -> dict[str, _T]:
    if not isinstance(items, tuple):
        raise invalid(section, "", f"must be a tuple of {kind.__name__}, got {show(items)}")
    found: dict[str, _T] = {}
    for item in items:
        if not isinstance(item, kind):
            raise invalid(section, "", f"must hold {kind.__name__} values, got {show(item)}")
        name = key(item)
        if name in found:
            raise invalid(section, format_key(name), "is declared twice")
        found[name] = item
    return found


def _known_unit(units: Mapping[str, Unit], name: str, at: str) -> Unit:
    unit = units.get(name)
    if unit is None:
        declared = ", ".join(units) or "none"
        raise invalid(at, "unit", f"unknown unit {show(name)}; declared units: {declared}")
    return unit


def _check_paid_grant(package: Package, unit: Unit, at: str, currencies: set[str]) -> None:
    """A "paid" grant credits minor units of the package's currency; they must mean the same."""
    decimals = currency_decimals(package.currency)
    if unit.name == package.currency:
        if unit.decimals != decimals:
            raise invalid(
                at,
                "unit",
                f"units.{unit.name} has decimals = {unit.decimals}, but {package.currency} is "
                f"paid in minor units with {decimals} decimals",
            )
        return
    if unit.name in currencies or (_CURRENCY.fullmatch(unit.name) and unit.decimals > 0):
        raise invalid(
            at,
            "unit",
            f'a "paid" grant cannot credit {unit.name} for a payment in {package.currency}',
        )
    if package.custom_amount is None:
        raise invalid(
            at,
            "amount",
            f'"paid" on a fixed-price package can only credit the {package.currency} wallet; '
            f"give the amount of {unit.name} instead",
        )


def _check_same_names(plans: Iterable[Plan]) -> None:
    """Every plan declares the same features and limits, so a misspelt name cannot pass."""
    plans = tuple(plans)
    if len(plans) < 2:
        return
    first = plans[0]
    for plan in plans[1:]:
        for what in ("features", "limits"):
            mine, theirs = getattr(plan, what), getattr(first, what)
            missing = [name for name in theirs if name not in mine]
            extra = [name for name in mine if name not in theirs]
            if missing:
                raise invalid(
                    f"plans.{plan.id}",
                    what,
                    f"missing {show(missing[0])}, which plans.{first.id} declares; "
                    f"every plan must declare the same {what}",
                )
            if extra:
                raise invalid(
                    f"plans.{plan.id}",
                    f"{what}.{format_key(extra[0])}",
                    f"plans.{first.id} does not declare it; every plan must declare the same "
                    f"{what}",
                )

"""Orders: what one payment buys, its states, and how a payment resolves to an account and a package.

An order is keyed by the Stripe object that carries the payment (``checkout:<session id>``,
``pi:<payment intent id>``). Resolution is a pure function of the payment, the order as stored, the
catalog and what the stores could tell about the customer: it answers :class:`Fulfil` (grant this
package to this account), :class:`NeedsAttention` (keep it for an operator, with the reason) or
:class:`NeedsLineItems` (the session's line items must be read from Stripe first; the caller asks
Stripe outside any transaction and decides again). That last answer is the one place that says
whether a payment needs Stripe.

Resolution, in the design's order: the account from ``metadata.billfold_account``, else
``client_reference_id``, else the account linked to the Stripe customer, else the one account with the
customer's e-mail; the package from ``metadata.billfold_package``, else the session's line items'
price ids, else a custom-amount package in the paid currency. What cannot be resolved, or whose amount
or currency does not match, needs attention: never lost, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

from billfold.domain import catalog as cat
from billfold.domain import errors, facts
from billfold.domain import ledger as rules

OrderStatus: TypeAlias = Literal[
    "pending", "fulfilled", "failed", "expired", "needs_attention", "refunded"
]
ORDER_STATUSES: Final[tuple[str, ...]] = get_args(OrderStatus)
FINAL: Final[frozenset[str]] = frozenset({"fulfilled", "refunded"})
"""An order in one of these has granted what it bought; nothing grants for it again."""

OrderKind: TypeAlias = Literal["checkout", "payment_intent", "invoice"]


def checkout_key(session_id: str) -> str:
    return f"checkout:{session_id}"


def payment_intent_key(payment_intent_id: str) -> str:
    return f"pi:{payment_intent_id}"


def invoice_key(invoice_id: str) -> str:
    return f"invoice:{invoice_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    id: str
    key: str
    kind: OrderKind
    stripe_id: str
    payment_intent_id: str | None
    account_id: str | None
    package: str | None
    plan: str | None
    """For a subscription invoice's order: the plan whose allowance it granted."""
    amount: int | None
    currency: str | None
    customer_id: str | None
    customer_email: str | None
    status: OrderStatus
    status_reason: str | None
    payment_error: str | None
    refunded_amount: int
    disputed_amount: int
    resolved_by: str | None
    last_event_id: str | None
    created: int
    updated: int
    fulfilled_at: int | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True, slots=True, kw_only=True)
class Payment:
    """What one Stripe object says about a payment, in the terms resolution needs."""

    key: str
    kind: OrderKind
    stripe_id: str
    paid: bool
    payment_intent_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    metadata_account: str | None = None
    metadata_package: str | None = None
    client_reference_id: str | None = None
    customer_id: str | None = None
    customer_email: str | None = None
    event_id: str | None = None

    @classmethod
    def of_checkout(cls, fact: facts.CheckoutSessionFact, event_id: str | None = None) -> Payment:
        """The payment a checkout session describes (paid or free: ``no_payment_required``)."""
        return cls(
            key=checkout_key(fact.session_id),
            kind="checkout",
            stripe_id=fact.session_id,
            paid=fact.payment_status in ("paid", "no_payment_required"),
            payment_intent_id=fact.payment_intent_id,
            amount=fact.amount_total,
            currency=fact.currency,
            metadata_account=fact.metadata_account,
            metadata_package=fact.metadata_package,
            client_reference_id=fact.client_reference_id,
            customer_id=fact.customer_id,
            customer_email=fact.customer_email,
            event_id=event_id,
        )

    @classmethod
    def of_payment_intent(
        cls, fact: facts.PaymentIntentSucceeded, event_id: str | None = None
    ) -> Payment:
        """A succeeded payment intent, as a payment of what it received."""
        return cls(
            key=payment_intent_key(fact.payment_intent_id),
            kind="payment_intent",
            stripe_id=fact.payment_intent_id,
            paid=True,
            payment_intent_id=fact.payment_intent_id,
            amount=fact.amount_received,
            currency=fact.currency,
            metadata_account=fact.metadata_account,
            metadata_package=fact.metadata_package,
            customer_id=fact.customer_id,
            event_id=event_id,
        )

    @classmethod
    def of_order(cls, order: OrderRecord) -> Payment:
        """The payment as an order recorded it (for an operator's resolution): paid."""
        return cls(
            key=order.key,
            kind=order.kind,
            stripe_id=order.stripe_id,
            paid=True,
            payment_intent_id=order.payment_intent_id,
            amount=order.amount,
            currency=order.currency,
            customer_id=order.customer_id,
            customer_email=order.customer_email,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    """An operator's decision for an order in ``needs_attention``."""

    account_id: str | None = None
    package: str | None = None
    by: str = "admin"


@dataclass(frozen=True, slots=True, kw_only=True)
class LineItem:
    """One line of a checkout session, as Stripe lists it: the price it names and what it cost."""

    price_id: str | None
    quantity: int
    amount_total: int
    currency: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountHints:
    """What the stores know about the payment's customer, for the last two resolution steps."""

    linked: str | None = None
    """The account linked to the payment's Stripe customer."""
    by_email: tuple[str, ...] = ()
    """Accounts with the payment's e-mail (read up to two: one is a match, two are ambiguous)."""


# --- what resolution decides ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Fulfil:
    account_id: str
    package: cat.Package
    amount: int
    """What was paid, in minor units of the package's currency (0 when unknown or free)."""

    def grants(self) -> tuple[cat.ResolvedGrant, ...]:
        """What to grant: a "paid" grant counts the paid amount, else the package's price."""
        return self.package.grants_for(self.amount or self.package.price or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedsAttention:
    """Keep the order for an operator; ``account_id`` and ``package`` are what could be resolved
    (None: leave the order's own as they are)."""

    reason: str
    account_id: str | None
    package: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedsLineItems:
    """The session's line items must be read from Stripe before the package can be known."""

    session_id: str


Decision: TypeAlias = Fulfil | NeedsAttention | NeedsLineItems

NO_ACCOUNT: Final = (
    "no account: the payment names no billfold_account, client_reference_id, linked Stripe "
    "customer or e-mail of exactly one account"
)


def decide(
    payment: Payment,
    order: OrderRecord,
    catalog: cat.Catalog,
    *,
    hints: AccountHints,
    line_items: Sequence[LineItem] | None,
    resolution: Resolution | None = None,
) -> Decision:
    """Resolve a paid ``payment`` (whose order is ``order``) to what to grant, and to whom."""
    account_id = (resolution and resolution.account_id) or order.account_id
    if account_id is None:
        account_id = resolve_account(payment, hints)
    account_problem = None
    if account_id is not None:
        try:
            rules.check_account_id(account_id)
        except errors.ValidationError as exc:
            account_problem, account_id = f"account: {exc.message}", None
    if payment.amount is not None and not storable_amount(payment.amount):
        return NeedsAttention(
            reason=f"the paid amount {payment.amount} is out of range",
            account_id=account_id,
            package=None,
        )
    found = resolve_package(payment, order, catalog, line_items, resolution)
    if isinstance(found, NeedsLineItems):
        return found
    package, problem = found
    problem = "; ".join(p for p in (problem, account_problem) if p) or None
    if problem is None and account_id is None:
        problem = NO_ACCOUNT
    if problem is not None or package is None or account_id is None:
        return NeedsAttention(
            reason=problem or NO_ACCOUNT,
            account_id=account_id,
            package=package.id if package else order.package,
        )
    amount = payment.amount if payment.amount is not None else (order.amount or 0)
    return Fulfil(account_id=account_id, package=package, amount=amount)


def storable_amount(amount: int) -> bool:
    """Whether a paid amount is one the books can hold (0 to ``MAX_AMOUNT`` minor units)."""
    return 0 <= amount <= rules.MAX_AMOUNT


def resolve_account(payment: Payment, hints: AccountHints) -> str | None:
    for candidate in (payment.metadata_account, payment.client_reference_id):
        if candidate:
            return candidate
    if hints.linked is not None:
        return hints.linked
    if len(hints.by_email) == 1:
        return hints.by_email[0]
    return None


def resolve_package(
    payment: Payment,
    order: OrderRecord,
    catalog: cat.Catalog,
    line_items: Sequence[LineItem] | None,
    resolution: Resolution | None,
) -> tuple[cat.Package | None, str | None] | NeedsLineItems:
    """(the package, what is wrong) or NeedsLineItems."""
    if resolution and resolution.package:
        # The operator decided: their package stands even where the amount did not match.
        return catalog.package(resolution.package), None
    wanted = payment.metadata_package or (order.package if resolution else None)
    package: cat.Package | None = None
    if wanted:
        try:
            package = catalog.package(wanted)
        except errors.UnknownPackage:
            return None, f"unknown package {wanted!r} in the payment's metadata"
    elif payment.kind == "checkout":
        if line_items is None:
            return NeedsLineItems(session_id=payment.stripe_id)
        items = list(line_items)
        matched = [(catalog.package_for_price(i.price_id), i) for i in items if i.price_id]
        found = [(p, i) for p, i in matched if p is not None]
        if len(found) == 1 and len(items) == 1 and found[0][1].quantity == 1:
            package = found[0][0]
        elif len(found) > 1 or (found and found[0][1].quantity != 1):
            return None, "the session buys several packages or more than one of a package"
    if package is None and payment.currency:
        package = catalog.custom_package_for_currency(payment.currency)
    if package is None:
        return None, (
            "no package: no billfold_package metadata, no line item with a catalog price and "
            f"no custom-amount package in {payment.currency or 'an unknown currency'}"
        )
    if payment.amount is None or payment.currency is None:
        return package, "the payment carries no amount or currency to check"
    if not package.amount_matches(payment.amount, payment.currency):
        expected = (
            f"{package.custom_amount.min}..{package.custom_amount.max}"
            if package.custom_amount
            else str(package.price)
        )
        return package, (
            f"amount mismatch: paid {payment.amount} {payment.currency}, package "
            f"{package.id!r} costs {expected} {package.currency}"
        )
    return package, None


# --- reversal arithmetic -------------------------------------------------------------------------


def share(amount: int, part: int, whole: int) -> int:
    """The part of ``amount`` that ``part`` of ``whole`` stands for, rounded down."""
    if whole <= 0:
        return amount if part > 0 else 0
    return min(amount, amount * part // whole)


def unit_shares(specs: Sequence[cat.ResolvedGrant], part: int, whole: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for spec in specs:
        out[spec.unit] = out.get(spec.unit, 0) + share(spec.amount, part, whole)
    return out

"""Orders and ``fulfill``: the one way a payment becomes grants.

An order is keyed by the Stripe object that carries the payment (``checkout:<session id>``,
``pi:<payment intent id>``). ``fulfill`` inserts the order row if it is new (the insert is the gate),
locks it, and grants the package only while the order is not yet fulfilled; the grants' own
idempotency keys (``<order key>:grant:<n>``) are a second, database-enforced guard. The webhook, the
success page, the worker's retries and an operator's resolution all call it, and at most one of them
grants.

Resolution, in the design's order: the account from ``metadata.billfold_account``, else
``client_reference_id``, else the account linked to the Stripe customer, else the one account with the
customer's e-mail; the package from ``metadata.billfold_package``, else the session's line items'
price ids (a call to Stripe, so never inside a webhook request), else a custom-amount package in the
paid currency. What cannot be resolved, or whose amount or currency does not match, is kept as an order
in ``needs_attention`` for an operator: never lost, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from billfold.domain import catalog as cat
from billfold.domain import errors, ids
from billfold.domain import ledger as rules
from billfold.service.ledger import Clawback, Grant, Hold, Ledger, Release
from billfold.service.ports import LineItem, OrderRecord, UnitOfWork

DAY = 86_400
DISPUTE_HOLD_TTL = 366 * DAY
FINAL = frozenset({"fulfilled", "refunded"})


class NeedsStripe(Exception):
    """Resolving this payment needs a call to Stripe, which the webhook request never makes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Payment:
    """What one Stripe object says about a payment, in the terms ``fulfill`` needs."""

    key: str
    kind: Literal["checkout", "payment_intent"]
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    """An operator's decision for an order in ``needs_attention``."""

    account_id: str | None = None
    package: str | None = None
    by: str = "admin"


def checkout_key(session_id: str) -> str:
    return f"checkout:{session_id}"


def payment_intent_key(payment_intent_id: str) -> str:
    return f"pi:{payment_intent_id}"


class Orders:
    def __init__(self, ledger: Ledger, catalog: cat.Catalog) -> None:
        self.ledger = ledger
        self.catalog = catalog

    # --- recording ---------------------------------------------------------------------------

    def _ensure(self, uow: UnitOfWork, payment: Payment, now: int) -> OrderRecord:
        """The payment's order, inserted if new and locked for this transaction."""
        order = uow.orders.ensure_locked(
            {
                "id": ids.new_id("ord"),
                "key": payment.key,
                "kind": payment.kind,
                "stripe_id": payment.stripe_id,
                "payment_intent_id": payment.payment_intent_id,
                "amount": payment.amount,
                "currency": payment.currency,
                "customer_id": payment.customer_id,
                "customer_email": payment.customer_email,
                "status": "pending",
                "created": now,
                "updated": now,
                "last_event_id": payment.event_id,
            }
        )
        changes: dict[str, object] = {}
        for name in ("payment_intent_id", "amount", "currency", "customer_id", "customer_email"):
            value = getattr(payment, name)
            if value is not None and getattr(order, name) is None:
                changes[name] = value
        if (
            payment.event_id
            and order.status not in FINAL
            and order.last_event_id != payment.event_id
        ):
            changes["last_event_id"] = payment.event_id
        if changes:
            order = uow.orders.update(order.id, updated=now, **changes)
        return order

    def mark(
        self, uow: UnitOfWork, payment: Payment, status: str, now: int, *, reason: str | None = None
    ) -> OrderRecord:
        """Record a non-paying outcome (pending, failed, expired); a fulfilled order keeps its state."""
        order = self._ensure(uow, payment, now)
        if order.status in FINAL or order.status == status:
            return order
        if status == "pending" and order.status != "pending":
            return order  # a late "unpaid" never undoes a later outcome
        return uow.orders.update(order.id, status=status, status_reason=reason, updated=now)

    def record_payment_error(
        self, uow: UnitOfWork, payment_intent_id: str, message: str | None, now: int
    ) -> OrderRecord | None:
        order = uow.orders.by_payment_intent(payment_intent_id)
        if order is None:
            return None
        return uow.orders.update(
            order.id, payment_error=message or "the payment failed", updated=now
        )

    # --- fulfilment ----------------------------------------------------------------------------

    def fulfill(
        self,
        uow: UnitOfWork,
        payment: Payment,
        now: int,
        *,
        line_items: Sequence[LineItem] | None,
        resolution: Resolution | None = None,
    ) -> OrderRecord:
        """Grant what ``payment`` bought, once. The caller's unit of work commits.

        ``line_items`` are the session's, fetched from Stripe before the transaction began (never
        while it holds locks); None when nobody fetched them, in which case a session that needs
        them raises NeedsStripe.
        """
        order = self._ensure(uow, payment, now)
        if order.status in FINAL:
            return order
        if not payment.paid:
            return order
        account_id = (resolution and resolution.account_id) or order.account_id
        if account_id is None:
            account_id = self._resolve_account(uow, payment)
        package, problem = self._resolve_package(payment, order, line_items, resolution)
        if account_id is None:
            problem = (
                "no account: the payment names no billfold_account, client_reference_id, "
                "linked Stripe customer or e-mail of exactly one account"
            )
        if problem is not None or package is None or account_id is None:
            return uow.orders.update(
                order.id,
                status="needs_attention",
                status_reason=problem,
                account_id=account_id,
                package=package.id if package else order.package,
                updated=now,
            )
        try:
            rules.check_account_id(account_id)
        except errors.ValidationError as exc:
            return uow.orders.update(
                order.id,
                status="needs_attention",
                status_reason=f"account: {exc.message}",
                updated=now,
            )
        amount = payment.amount if payment.amount is not None else (order.amount or 0)
        for index, spec in enumerate(package.grants_for(amount or package.price or 0)):
            self.ledger.grant_in(
                uow.ledger,
                Grant(
                    key=f"{order.key}:grant:{index}",
                    account_id=account_id,
                    unit=spec.unit,
                    amount=spec.amount,
                    priority=spec.priority,
                    expires_at=now + spec.expires_in_days * DAY if spec.expires_in_days else None,
                    kind=spec.kind,
                    origin=order.id,
                    reason=package.title,
                    source=rules.STRIPE,
                ),
                now,
            )
        # The grants created the account; link what Stripe told us about the customer.
        if payment.customer_id:
            uow.accounts.link_customer(account_id, payment.customer_id, now=now)
        if payment.customer_email:
            uow.accounts.fill_email(account_id, payment.customer_email, now=now)
        return uow.orders.update(
            order.id,
            status="fulfilled",
            status_reason=None,
            account_id=account_id,
            package=package.id,
            amount=amount,
            fulfilled_at=now,
            updated=now,
            resolved_by=resolution.by if resolution else None,
        )

    def _resolve_account(self, uow: UnitOfWork, payment: Payment) -> str | None:
        for candidate in (payment.metadata_account, payment.client_reference_id):
            if candidate:
                return candidate
        if payment.customer_id:
            linked = uow.accounts.by_stripe_customer(payment.customer_id)
            if linked is not None:
                return linked.id
        if payment.customer_email:
            matches = uow.accounts.by_email(payment.customer_email)
            if len(matches) == 1:
                return matches[0].id
        return None

    def _resolve_package(
        self,
        payment: Payment,
        order: OrderRecord,
        line_items: Sequence[LineItem] | None,
        resolution: Resolution | None,
    ) -> tuple[cat.Package | None, str | None]:
        if resolution and resolution.package:
            # The operator decided: their package stands even where the amount did not match.
            return self.catalog.package(resolution.package), None
        wanted = payment.metadata_package or (order.package if resolution else None)
        package: cat.Package | None = None
        if wanted:
            try:
                package = self.catalog.package(wanted)
            except errors.UnknownPackage:
                return None, f"unknown package {wanted!r} in the payment's metadata"
        elif payment.kind == "checkout":
            if line_items is None:
                raise NeedsStripe(payment.stripe_id)
            items = list(line_items)
            matched = [(self.catalog.package_for_price(i.price_id), i) for i in items if i.price_id]
            found = [(p, i) for p, i in matched if p is not None]
            if len(found) == 1 and len(items) == 1 and found[0][1].quantity == 1:
                package = found[0][0]
            elif len(found) > 1 or (found and found[0][1].quantity != 1):
                return None, "the session buys several packages or more than one of a package"
        if package is None and payment.currency:
            package = self.catalog.custom_package_for_currency(payment.currency)
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

    # --- refunds and disputes ------------------------------------------------------------------

    def refund(
        self,
        uow: UnitOfWork,
        payment_intent_id: str,
        refunded_total: int,
        now: int,
        *,
        charge_id: str,
    ) -> str:
        """Claw back the refunded share of the order's grants, up to ``refunded_total`` so far."""
        found = uow.orders.by_payment_intent(payment_intent_id)
        if found is None:
            return f"no order for payment intent {payment_intent_id}"
        order = uow.orders.lock_by_key(found.key)
        assert order is not None
        if order.status not in FINAL:
            uow.orders.update(
                order.id, refunded_amount=max(refunded_total, order.refunded_amount), updated=now
            )
            return f"order {order.id} was not fulfilled ({order.status}); nothing to claw back"
        previous = order.refunded_amount
        if refunded_total <= previous:
            return f"refund of {refunded_total} already applied to order {order.id}"
        package, specs = self._order_grants(order)
        paid = order.amount or 0
        policy = package.refund_policy or self.catalog.refund_policy
        taken = []
        for index, spec in enumerate(specs):
            share = _share(spec.amount, refunded_total, paid) - _share(spec.amount, previous, paid)
            if share <= 0 or order.account_id is None:
                continue
            result = self.ledger.clawback_in(
                uow.ledger,
                Clawback(
                    key=f"refund:{charge_id}:{refunded_total}:{index}",
                    account_id=order.account_id,
                    unit=spec.unit,
                    amount=share,
                    origin=order.id,
                    policy=policy,
                    reason=f"refund of order {order.id}",
                ),
                now,
            )
            taken.append(f"{result.taken + result.debt} {spec.unit}")
        status = "refunded" if refunded_total >= paid else order.status
        uow.orders.update(order.id, refunded_amount=refunded_total, status=status, updated=now)
        return f"clawed back {', '.join(taken) or 'nothing'} from order {order.id}"

    def dispute_opened(
        self, uow: UnitOfWork, dispute_id: str, payment_intent_id: str, amount: int, now: int
    ) -> str:
        order = self._locked_by_pi(uow, payment_intent_id)
        if order is None or order.status not in FINAL or order.account_id is None:
            return "no fulfilled order for this charge; nothing to hold"
        _, specs = self._order_grants(order)
        held = []
        for unit, share in _unit_shares(specs, amount, order.amount or 0).items():
            available = self.ledger.balance_in(uow.ledger, order.account_id, unit, now)
            reserve = min(share, max(available, 0))
            if reserve <= 0:
                continue
            self.ledger.hold_in(
                uow.ledger,
                Hold(
                    key=f"dispute:{dispute_id}:hold:{unit}",
                    account_id=order.account_id,
                    unit=unit,
                    amount=reserve,
                    ttl_seconds=DISPUTE_HOLD_TTL,
                    reason=f"dispute {dispute_id}",
                ),
                now,
            )
            held.append(f"{reserve} {unit}")
        uow.orders.update(order.id, disputed_amount=amount, updated=now)
        return f"held {', '.join(held) or 'nothing'} for dispute {dispute_id}"

    def dispute_closed(
        self,
        uow: UnitOfWork,
        dispute_id: str,
        payment_intent_id: str,
        amount: int,
        lost: bool,
        now: int,
    ) -> str:
        order = self._locked_by_pi(uow, payment_intent_id)
        if order is None or order.account_id is None:
            return "no order for this charge"
        _, specs = self._order_grants(order)
        for unit in sorted({s.unit for s in specs}):
            stored = uow.ledger.transaction_by_key(f"dispute:{dispute_id}:hold:{unit}")
            if stored is None or not stored.result:
                continue
            hold = uow.ledger.get_hold(str(stored.result["hold_id"]))
            if hold is not None and hold.status == "active":
                self.ledger.release_in(
                    uow.ledger,
                    Release(key=f"dispute:{dispute_id}:release:{unit}", hold_id=hold.id),
                    now,
                )
        if not lost:
            uow.orders.update(order.id, disputed_amount=0, updated=now)
            return f"dispute {dispute_id} won: hold released"
        package, _ = self._order_grants(order)
        policy = package.refund_policy or self.catalog.refund_policy
        for index, spec in enumerate(specs):
            share = _share(spec.amount, amount, order.amount or 0)
            if share > 0:
                self.ledger.clawback_in(
                    uow.ledger,
                    Clawback(
                        key=f"dispute:{dispute_id}:lost:{index}",
                        account_id=order.account_id,
                        unit=spec.unit,
                        amount=share,
                        origin=order.id,
                        policy=policy,
                        reason=f"dispute {dispute_id} lost",
                    ),
                    now,
                )
        return f"dispute {dispute_id} lost: disputed share clawed back"

    def _locked_by_pi(self, uow: UnitOfWork, payment_intent_id: str) -> OrderRecord | None:
        found = uow.orders.by_payment_intent(payment_intent_id)
        return None if found is None else uow.orders.lock_by_key(found.key)

    def _order_grants(
        self, order: OrderRecord
    ) -> tuple[cat.Package, tuple[cat.ResolvedGrant, ...]]:
        package = self.catalog.package(order.package or "")
        return package, package.grants_for(order.amount or package.price or 0)

    # --- operator ------------------------------------------------------------------------------

    def resolve(
        self,
        uow: UnitOfWork,
        order_id: str,
        resolution: Resolution,
        now: int,
        *,
        line_items: Sequence[LineItem] | None = None,
    ) -> OrderRecord:
        order = uow.orders.get(order_id)
        if order is None:
            raise errors.OrderNotFound(f"No order {order_id!r}.", order_id=order_id)
        if order.status in FINAL:
            return order
        if order.status != "needs_attention":
            raise errors.OrderNotResolvable(
                f"Order {order_id} is {order.status}; only orders in needs_attention can be "
                "resolved.",
                order_id=order_id,
                status=order.status,
            )
        if resolution.package is not None:
            self.catalog.package(resolution.package)  # UnknownPackage: a clear 400
        if resolution.account_id is not None:
            rules.check_account_id(resolution.account_id)
        payment = Payment(
            key=order.key,
            kind="checkout" if order.kind == "checkout" else "payment_intent",
            stripe_id=order.stripe_id,
            paid=True,
            payment_intent_id=order.payment_intent_id,
            amount=order.amount,
            currency=order.currency,
            customer_id=order.customer_id,
            customer_email=order.customer_email,
        )
        result = self.fulfill(uow, payment, now, line_items=line_items, resolution=resolution)
        if result.status != "fulfilled":
            raise errors.OrderNotResolvable(
                f"Order {order_id} still cannot be fulfilled: {result.status_reason}. Name the "
                "account_id and package to grant.",
                order_id=order_id,
            )
        return result


def _share(amount: int, part: int, whole: int) -> int:
    if whole <= 0:
        return amount if part > 0 else 0
    return min(amount, amount * part // whole)


def _unit_shares(specs: tuple[cat.ResolvedGrant, ...], part: int, whole: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for spec in specs:
        out[spec.unit] = out.get(spec.unit, 0) + _share(spec.amount, part, whole)
    return out

"""Stripe Checkout: create a session that buys a package, and fulfil it from the success page.

Creating writes nothing in billfold (the order appears with the payment). The success page's
fulfilment runs the webhook's ``fulfil``, so whichever comes first grants and the other finds it
done. Calls to Stripe happen between transactions, never inside one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import urlsplit

from billfold.domain import catalog as cat
from billfold.domain import errors, facts
from billfold.domain import ledger as rules
from billfold.domain.checkout import CheckoutRequest, CreatedSession, success_url_with_placeholder
from billfold.domain.entitlements import Entitlements
from billfold.domain.orders import LineItem, NeedsLineItems, OrderRecord, Payment, checkout_key
from billfold.service import keys
from billfold.service.billing import Billing
from billfold.service.orders.fulfilment import Fulfilment
from billfold.service.ports import Clock, StripeGateway, UnitOfWorkFactory
from billfold.service.views import Views

SESSION_ID: Final = re.compile(r"^cs_[A-Za-z0-9_]{1,250}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateCheckoutSession:
    """A session that buys ``package``, or subscribes to ``plan`` (exactly one of them)."""

    account_id: str
    package: str | None
    success_url: str
    amount: int | None = None
    cancel_url: str | None = None
    idempotency_key: str | None = None
    namespace: str = keys.APPLICATION
    """Whose ``idempotency_key`` it is (see :mod:`billfold.service.keys`)."""
    plan: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutSession:
    id: str
    url: str
    account_id: str
    package: str | None
    plan: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FulfillCheckoutSession:
    session_id: str
    as_account: str | None = None
    """An end user's account: a session bought for someone else is answered as not found."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fulfillment:
    """What the success page shows: the order's status and, once granted, the new balances."""

    session_id: str
    session_status: str | None
    payment_status: str | None
    status: str
    order: OrderRecord | None
    account_id: str | None
    balances: dict[str, int]
    mode: str = "payment"
    subscription_id: str | None = None
    plan: str | None = None
    entitlements: Entitlements | None = None


class Checkout:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        catalog: cat.Catalog,
        fulfilment: Fulfilment,
        views: Views,
        stripe: StripeGateway | None,
        clock: Clock,
        billing: Billing,
    ) -> None:
        self._uow = uow_factory
        self.catalog = catalog
        self.fulfilment = fulfilment
        self.views = views
        self.stripe = stripe
        self._clock = clock
        self.billing = billing

    def create(self, cmd: CreateCheckoutSession) -> CheckoutSession:
        """A Stripe Checkout Session that buys ``package`` (or subscribes to ``plan``) for
        ``account_id``. Writes nothing.

        With an ``idempotency_key`` (the caller's, scoped by ``namespace``), Stripe creates one
        session however often the request is repeated, and refuses the key with other parameters.
        """
        stripe_key = keys.stripe_key(cmd.namespace, cmd.idempotency_key)
        rules.check_account_id(cmd.account_id)
        if (cmd.package is None) == (cmd.plan is None):
            raise errors.ValidationError(
                "Name a package to buy or a plan to subscribe to (one of them).", param="package"
            )
        _check_url(cmd.success_url, "success_url")
        if cmd.cancel_url is not None:
            _check_url(cmd.cancel_url, "cancel_url")
        if cmd.plan is not None:
            request = self._plan_request(cmd)
        else:
            assert cmd.package is not None
            request = self._package_request(cmd, self.catalog.package(cmd.package))
        with self._uow() as uow:
            account = uow.accounts.get(cmd.account_id)
        request = replace(
            request,
            customer_id=account.stripe_customer_id if account else None,
            customer_email=account.email if account and not account.stripe_customer_id else None,
        )
        created = self._create_session(request, stripe_key, account.email if account else None)
        return CheckoutSession(
            id=created.id,
            url=created.url,
            account_id=cmd.account_id,
            package=request.package_id,
            plan=request.plan_id,
        )

    def _package_request(self, cmd: CreateCheckoutSession, package: cat.Package) -> CheckoutRequest:
        return CheckoutRequest(
            account_id=cmd.account_id,
            package_id=package.id,
            title=package.title,
            currency=package.currency,
            unit_amount=_charge(package, cmd.amount),
            stripe_price_id=package.stripe_price_id if package.custom_amount is None else None,
            success_url=success_url_with_placeholder(cmd.success_url),
            cancel_url=cmd.cancel_url,
        )

    def _create_session(
        self, request: CheckoutRequest, stripe_key: str | None, email: str | None
    ) -> CreatedSession:
        """Stripe's session for ``request``. When Stripe refuses the key because it was used with
        other parameters, the difference may be only the account's: a retry whose first answer was
        lost, made after a payment gave the account an e-mail or a Stripe customer. Accounts only
        gain those, so the request is tried again as the account was before (no customer, then no
        e-mail either): the first session comes back, as an idempotent retry should answer. A
        request that differs otherwise (another package, other URLs) is still refused."""
        stripe = self._stripe()
        try:
            return stripe.create_checkout_session(request, idempotency_key=stripe_key)
        except errors.IdempotencyConflict:
            if stripe_key is None:
                raise
            earlier: list[CheckoutRequest] = []
            if request.customer_id is not None and email is not None:
                earlier.append(replace(request, customer_id=None, customer_email=email))
            if request.customer_id is not None or request.customer_email is not None:
                earlier.append(replace(request, customer_id=None, customer_email=None))
            for before in earlier:
                with contextlib.suppress(errors.IdempotencyConflict):
                    return stripe.create_checkout_session(before, idempotency_key=stripe_key)
            raise

    def _plan_request(self, cmd: CreateCheckoutSession) -> CheckoutRequest:
        assert cmd.plan is not None
        plan = self.catalog.plan(cmd.plan)
        if plan.default:
            raise errors.ValidationError(
                f"{plan.id!r} is the default plan: every account has it without paying.",
                param="plan",
            )
        if cmd.amount is not None:
            raise errors.ValidationError(
                "amount is only for custom-amount packages.", param="amount"
            )
        price = self.billing.plan_price(plan)
        return CheckoutRequest(
            account_id=cmd.account_id,
            package_id=None,
            plan_id=plan.id,
            title=plan.title or plan.id,
            currency=plan.currency or "",
            unit_amount=plan.price or 0,
            stripe_price_id=price,
            success_url=success_url_with_placeholder(cmd.success_url),
            cancel_url=cmd.cancel_url,
        )

    def fulfil(self, cmd: FulfillCheckoutSession) -> Fulfillment:
        """Fulfil the session's order now, as the webhook would: at most one of them grants.

        The session (and, when it lacks billfold's metadata, its line items) is read from Stripe
        before the transaction starts.
        """
        if not SESSION_ID.match(cmd.session_id):
            raise errors.ValidationError(
                "This is not a Checkout Session id (cs_...).", param="session_id"
            )
        stripe = self._stripe()
        retrieved = stripe.retrieve_checkout_session(cmd.session_id)
        fact = retrieved.fact
        if isinstance(fact, facts.Ignored):
            raise errors.CheckoutNotFulfillable(
                f"This checkout session cannot be fulfilled: {fact.reason}."
            )
        owner = fact.metadata_account or fact.client_reference_id
        if cmd.as_account is not None and owner != cmd.as_account:
            raise errors.NotFound(f"No checkout session {cmd.session_id!r} for this account.")
        if fact.mode == "subscription":
            return self._subscribe(cmd, fact, retrieved.status)
        if fact.mode != "payment":
            raise errors.CheckoutNotFulfillable(
                f"Checkout session {cmd.session_id} is in {fact.mode} mode; only payment and "
                "subscription sessions are fulfilled here."
            )
        payment = Payment.of_checkout(fact)
        complete = retrieved.status in (None, "complete")
        order = self._record(payment, retrieved.status, complete, stripe)
        account_id = (order.account_id if order else None) or cmd.as_account or owner
        if account_id is not None and not _valid_account(account_id):
            account_id = None
        return Fulfillment(
            session_id=cmd.session_id,
            session_status=retrieved.status,
            payment_status=fact.payment_status,
            status=order.status if order else "pending",
            order=order,
            account_id=account_id,
            balances=self.views.balances(account_id).available if account_id else {},
        )

    def _subscribe(
        self, cmd: FulfillCheckoutSession, fact: facts.CheckoutSessionFact, status: str | None
    ) -> Fulfillment:
        """A subscription session: link account, customer and subscription, then apply the
        subscription's state and its first invoice's allowance as the webhooks would (the same
        keys: whichever comes first grants)."""
        owner = fact.metadata_account or fact.client_reference_id
        if status in (None, "complete"):
            self.billing.apply_checkout(fact)
        account_id = cmd.as_account or owner
        if account_id is not None and not _valid_account(account_id):
            account_id = None
        entitlements = self.billing.entitlements(account_id) if account_id else None
        return Fulfillment(
            session_id=cmd.session_id,
            session_status=status,
            payment_status=fact.payment_status,
            status="fulfilled" if status == "complete" else "pending",
            order=None,
            account_id=account_id,
            balances=self.views.balances(account_id).available if account_id else {},
            mode="subscription",
            subscription_id=fact.subscription_id,
            plan=entitlements.plan if entitlements else None,
            entitlements=entitlements,
        )

    def _record(
        self, payment: Payment, status: str | None, complete: bool, stripe: StripeGateway
    ) -> OrderRecord | None:
        line_items: Sequence[LineItem] | None = None
        while True:
            now = self._clock()
            with self._uow() as uow:
                if status == "expired":
                    order: OrderRecord | None = self.fulfilment.mark(uow, payment, "expired", now)
                elif not complete:
                    order = uow.orders.by_key(checkout_key(payment.stripe_id))  # open: nothing yet
                elif payment.paid:
                    done = self.fulfilment.fulfil(uow, payment, now, line_items=line_items)
                    order = None if isinstance(done, NeedsLineItems) else done
                else:
                    order = self.fulfilment.mark(uow, payment, "pending", now)
                if order is not None or not complete or not payment.paid:
                    uow.commit()
                    return order
            if line_items is not None:  # pragma: no cover - decide never asks twice
                raise errors.InvariantViolation("line items were asked for twice")
            # Outside the transaction (rolled back): ask Stripe, then decide again.
            line_items = stripe.checkout_line_items(payment.stripe_id)

    def _stripe(self) -> StripeGateway:
        if self.stripe is None:
            raise errors.StripeUnavailable(
                "Stripe is not configured: set BILLFOLD_STRIPE_SECRET_KEY to use checkout."
            )
        return self.stripe


def _charge(package: cat.Package, amount: int | None) -> int:
    """What the customer pays for ``package``: its price, or a custom amount in its range."""
    if package.custom_amount is not None:
        if amount is None:
            raise errors.ValidationError(
                f"amount is required for {package.id!r}: from {package.custom_amount.min} to "
                f"{package.custom_amount.max} (minor units of {package.currency}).",
                param="amount",
            )
        rules.check_amount(amount)
        if not package.custom_amount.contains(amount):
            raise errors.ValidationError(
                f"amount must be from {package.custom_amount.min} to {package.custom_amount.max} "
                f"(minor units of {package.currency}) for {package.id!r}, got {amount}.",
                param="amount",
            )
        return amount
    if amount is not None:
        raise errors.ValidationError(
            f"{package.id!r} has a fixed price; amount is only for custom-amount packages.",
            param="amount",
        )
    assert package.price is not None
    return package.price


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.ValidationError(f"{what} must be an http(s) URL.", param=what)
    return url


def _valid_account(account_id: str) -> bool:
    try:
        rules.check_account_id(account_id)
    except errors.ValidationError:
        return False
    return True

"""The operations the HTTP API and the library facade share, over the composed services.

- ``ledger_key``: a caller's idempotency key, namespaced by caller, as the ledger's key;
- ``create_checkout_session`` / ``fulfill_checkout_session``: Stripe Checkout for a package, and the
  success page's fulfilment, which runs the webhook's ``fulfill`` and so never grants twice;
- ``entitlements``: what an account may do now.

Calls to Stripe happen between transactions, never inside one: no lock is held across the network.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from billfold.adapters.stripe import translate
from billfold.bootstrap import Services
from billfold.domain import errors, facts
from billfold.domain import ledger as rules
from billfold.domain.catalog import Package
from billfold.service.events import checkout_payment
from billfold.service.orders import checkout_key
from billfold.service.ports import AccountRecord, LineItem, OrderRecord, StripeGateway

SESSION_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
ACCOUNT_METADATA = "billfold_account"
PACKAGE_METADATA = "billfold_package"
SESSION_ID = re.compile(r"^cs_[A-Za-z0-9_]{1,250}$")
# The namespace of keys sent by the application (any server API key, or the library in-process):
# keys are the application's, not one API key's, so a retry after a key rotation still replays.
APPLICATION = "server"


# --- idempotency ---------------------------------------------------------------------------------


def ledger_key(namespace: str, idempotency_key: str | None) -> str:
    """The ledger key for a caller's ``Idempotency-Key``; a fresh one (no dedupe) when absent.

    Not scoped by route or account: the ledger hashes the whole command, so the same key sent with
    another body, to another account or to another route answers 409, as Stripe's keys do.
    """
    if idempotency_key is None:
        return f"once:{uuid.uuid4().hex}"
    return f"idem:{_scoped(namespace, idempotency_key)}"


def _scoped(namespace: str, idempotency_key: str) -> str:
    """A caller's key made unique to the caller: two callers' "k" never meet."""
    return hashlib.sha256(f"{namespace}\x00{idempotency_key}".encode()).hexdigest()


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 255 or not value.isprintable() or not value.isascii():
        raise errors.ValidationError(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            param="Idempotency-Key",
        )
    return value


# --- accounts ------------------------------------------------------------------------------------


def unit_names(services: Services) -> list[str]:
    return [u.name for u in services.catalog.units]


def balance_maps(
    services: Services, account_id: str
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """(available, held, debt) per unit: every catalog unit, zero where nothing was ever granted."""
    views = services.ledger.balances(account_id)
    names = unit_names(services) + sorted(set(views) - set(unit_names(services)))
    zero = rules.BalanceView(unit="", available=0)
    available = {u: views.get(u, zero).available for u in names}
    held = {u: views.get(u, zero).held for u in names}
    debt = {u: views.get(u, zero).debt for u in names}
    return available, held, debt


def balances(services: Services, account_id: str) -> dict[str, int]:
    return balance_maps(services, account_id)[0]


# --- entitlements --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Entitlements:
    """What an account may do now.

    Subscriptions are not tracked yet, so every account gets the catalog's default plan
    (``source="default"``), or nothing when the catalog has none (``source="none"``).
    """

    account_id: str
    plan: str | None
    source: Literal["default", "none"]
    features: dict[str, bool] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)


def entitlements(services: Services, account_id: str) -> Entitlements:
    rules.check_account_id(account_id)
    plan = services.catalog.default_plan()
    if plan is None:
        return Entitlements(account_id=account_id, plan=None, source="none")
    return Entitlements(
        account_id=account_id,
        plan=plan.id,
        source="default",
        features=dict(plan.features),
        limits=dict(plan.limits),
    )


# --- checkout: create ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutSession:
    id: str
    url: str
    account_id: str
    package: str


def success_url_with_placeholder(url: str) -> str:
    """``url`` carrying ``{CHECKOUT_SESSION_ID}``: appended as ``session_id=`` when absent."""
    if SESSION_PLACEHOLDER in url:
        return url
    base, hash_, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return f"{base}{separator}session_id={SESSION_PLACEHOLDER}{hash_}{fragment}"


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.ValidationError(f"{what} must be an http(s) URL.", param=what)
    return url


def checkout_params(
    package: Package,
    *,
    account_id: str,
    account: AccountRecord | None,
    amount: int | None,
    success_url: str,
    cancel_url: str | None,
) -> dict[str, Any]:
    """The Checkout Session to create: payment mode, one line item, billfold's metadata."""
    if package.stripe_price_id is not None and package.custom_amount is None:
        line_item: dict[str, Any] = {"price": package.stripe_price_id, "quantity": 1}
    else:
        line_item = {
            "quantity": 1,
            "price_data": {
                "currency": package.currency,
                "unit_amount": amount if amount is not None else package.price,
                "product_data": {"name": package.title},
            },
        }
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [line_item],
        "client_reference_id": account_id,
        "metadata": {ACCOUNT_METADATA: account_id, PACKAGE_METADATA: package.id},
        "success_url": success_url_with_placeholder(success_url),
    }
    # No payment_intent_data.metadata: a payment intent carrying billfold's metadata is fulfilled
    # under its own key (pi:...), and this payment must have exactly one, checkout:<session id>.
    if cancel_url is not None:
        params["cancel_url"] = cancel_url
    if account is not None and account.stripe_customer_id:
        params["customer"] = account.stripe_customer_id
    elif account is not None and account.email:
        params["customer_email"] = account.email
    return params


def create_checkout_session(
    services: Services,
    *,
    account_id: str,
    package: str,
    success_url: str,
    amount: int | None = None,
    cancel_url: str | None = None,
    idempotency_key: str | None = None,
    namespace: str = APPLICATION,
) -> CheckoutSession:
    """Create a Stripe Checkout Session that buys ``package`` for ``account_id``. Writes nothing.

    With an ``idempotency_key`` (the caller's, scoped by ``namespace``), Stripe creates one session
    however often the request is repeated, and refuses the key with other parameters."""
    given = check_idempotency_key(idempotency_key)
    rules.check_account_id(account_id)
    found = services.catalog.package(package)
    if found.custom_amount is not None:
        if amount is None:
            raise errors.ValidationError(
                f"amount is required for {found.id!r}: from {found.custom_amount.min} to "
                f"{found.custom_amount.max} (minor units of {found.currency}).",
                param="amount",
            )
        rules.check_amount(amount)
        if not found.custom_amount.contains(amount):
            raise errors.ValidationError(
                f"amount must be from {found.custom_amount.min} to {found.custom_amount.max} "
                f"(minor units of {found.currency}) for {found.id!r}, got {amount}.",
                param="amount",
            )
    elif amount is not None:
        raise errors.ValidationError(
            f"{found.id!r} has a fixed price; amount is only for custom-amount packages.",
            param="amount",
        )
    _check_url(success_url, "success_url")
    if cancel_url is not None:
        _check_url(cancel_url, "cancel_url")
    stripe = _stripe(services)
    with services.uow() as uow:
        account = uow.accounts.get(account_id)
    params = checkout_params(
        found,
        account_id=account_id,
        account=account,
        amount=amount,
        success_url=success_url,
        cancel_url=cancel_url,
    )
    stripe_key = None if given is None else f"billfold-checkout-{_scoped(namespace, given)}"
    session = stripe.create_checkout_session(params, idempotency_key=stripe_key)
    session_id, url = session.get("id"), session.get("url")
    if not isinstance(session_id, str) or not isinstance(url, str):
        raise errors.StripeUnavailable("Stripe created a checkout session without an id or url.")
    return CheckoutSession(id=session_id, url=url, account_id=account_id, package=found.id)


def _valid_account(account_id: str) -> str | None:
    try:
        return rules.check_account_id(account_id)
    except errors.ValidationError:
        return None


# --- checkout: fulfil ----------------------------------------------------------------------------


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


EVENT_FOR_STATUS = {
    "complete": "checkout.session.completed",
    "expired": "checkout.session.expired",
}


def _stripe(services: Services) -> StripeGateway:
    if services.stripe is None:
        raise errors.StripeUnavailable(
            "Stripe is not configured: set BILLFOLD_STRIPE_SECRET_KEY to use checkout."
        )
    return services.stripe


def _as_event(session: Mapping[str, Any], event_type: str) -> dict[str, Any]:
    """A retrieved session in an event's envelope, so the one translator reads it."""
    created = session.get("created")
    return {
        "id": f"evt_billfold_fulfill_{session.get('id')}",
        "object": "event",
        "type": event_type,
        "created": created if isinstance(created, int) else 0,
        "livemode": bool(session.get("livemode", False)),
        "data": {"object": dict(session)},
    }


def _text(session: Mapping[str, Any], name: str) -> str | None:
    value = session.get(name)
    return value if isinstance(value, str) else None


def fulfill_checkout_session(
    services: Services, session_id: str, *, as_account: str | None = None
) -> Fulfillment:
    """Fulfil the session's order now, as the webhook would: at most one of them grants.

    ``as_account`` is an end user's account: a session bought for someone else is answered as
    not found. The session (and, when it lacks billfold's metadata, its line items) is read from
    Stripe before the transaction starts.
    """
    if not SESSION_ID.match(session_id):
        raise errors.ValidationError(
            "This is not a Checkout Session id (cs_...).", param="session_id"
        )
    stripe = _stripe(services)
    session = stripe.retrieve_checkout_session(session_id)
    session_status = _text(session, "status")
    event_type = EVENT_FOR_STATUS.get(session_status or "", "checkout.session.completed")
    fact = translate.translate(_as_event(session, event_type))
    if not isinstance(fact, facts.CheckoutSessionFact):
        reason = fact.reason if isinstance(fact, facts.Ignored) else type(fact).__name__
        raise errors.Conflict(f"This checkout session cannot be fulfilled: {reason}.")
    owner = fact.metadata_account or fact.client_reference_id
    if as_account is not None and owner != as_account:
        raise errors.NotFound(f"No checkout session {session_id!r} for this account.")
    if fact.mode != "payment":
        raise errors.Conflict(
            f"Checkout session {session_id} is in {fact.mode} mode; only payment sessions are "
            "fulfilled here."
        )
    payment = checkout_payment(fact)
    line_items: list[LineItem] | None = None
    complete = session_status in (None, "complete")
    if complete and payment.paid and not fact.metadata_package:
        line_items = stripe.checkout_line_items(session_id)
    now = services.clock()
    with services.uow() as uow:
        if session_status == "expired":
            order: OrderRecord | None = services.orders.mark(uow, payment, "expired", now)
        elif not complete:
            order = uow.orders.by_key(checkout_key(session_id))  # open: nothing to record yet
        elif payment.paid:
            order = services.orders.fulfill(uow, payment, now, line_items=line_items)
        else:
            order = services.orders.mark(uow, payment, "pending", now)
        uow.commit()
    account_id = (order.account_id if order else None) or as_account or owner
    if account_id is not None and _valid_account(account_id) is None:
        account_id = None
    return Fulfillment(
        session_id=session_id,
        session_status=session_status,
        payment_status=fact.payment_status,
        status=order.status if order else "pending",
        order=order,
        account_id=account_id,
        balances=balances(services, account_id) if account_id else {},
    )

"""Stripe Checkout in billfold's terms: the session billfold asks for, and a session read back.

The Stripe adapter turns a :class:`CheckoutRequest` into Stripe's request schema (line items,
metadata, redirect URLs) and a retrieved session into a :class:`RetrievedSession`; nothing else
knows Stripe's field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from billfold.domain import facts

SESSION_PLACEHOLDER: Final = "{CHECKOUT_SESSION_ID}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutRequest:
    """A Checkout Session for one account: a payment that buys one package, or (``plan_id``) a
    subscription to a plan at ``stripe_price_id``."""

    account_id: str
    package_id: str | None
    title: str
    currency: str
    unit_amount: int
    """What the customer pays, in minor units of ``currency``: the price, or a custom amount."""
    stripe_price_id: str | None
    """Sell through this Stripe price instead of an inline price (fixed-price packages only)."""
    success_url: str
    cancel_url: str | None
    customer_id: str | None = None
    customer_email: str | None = None
    plan_id: str | None = None

    @property
    def mode(self) -> str:
        return "subscription" if self.plan_id is not None else "payment"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedSession:
    id: str
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievedSession:
    """A session read from Stripe: its ``status`` (``open``, ``complete``, ``expired``) and what it
    says about the payment, or why it cannot be read."""

    session_id: str
    status: str | None
    fact: facts.CheckoutSessionFact | facts.Ignored


def success_url_with_placeholder(url: str) -> str:
    """``url`` carrying ``{CHECKOUT_SESSION_ID}``: appended as ``session_id=`` when absent."""
    if SESSION_PLACEHOLDER in url:
        return url
    base, hash_, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return f"{base}{separator}session_id={SESSION_PLACEHOLDER}{hash_}{fragment}"

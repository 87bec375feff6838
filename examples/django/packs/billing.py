"""billfold, as this site sees it: a client, the account id of a user, and the packs for sale."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from billfold.client import Client


def client() -> Client:
    return Client(settings.BILLFOLD_URL, api_key=settings.BILLFOLD_API_KEY)


def account_id(user: object) -> str:
    """billfold's account for a Django user: the application's own, stable id."""
    return f"user_{user.pk}"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Pack:
    price_id: str
    package: str
    title: str
    price: int  # cents
    credits: int


def packs(billfold: Client) -> dict[str, Pack]:
    """The packs of billfold's catalog, by Stripe price id (those sold at a Stripe price)."""
    found = {}
    for package in billfold.get_catalog().packages:
        if package.stripe_price_id and package.price is not None:
            credits = sum(
                g.amount for g in package.grants if g.unit == "credits" and g.amount != "paid"
            )
            found[package.stripe_price_id] = Pack(
                price_id=package.stripe_price_id,
                package=package.id,
                title=package.title,
                price=package.price,
                credits=int(credits),
            )
    return found

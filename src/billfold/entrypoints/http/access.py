"""Who may call which route, and how often: the credential kinds each route accepts, the account
an end user may touch, per-credential rate limits, and whose idempotency keys a request carries.

    route                                      server key   user token        admin token
    GET  /v1/catalog                           public: no credentials needed
    POST /v1/checkout/sessions                 any account  own account       403
    POST /v1/checkout/sessions/{id}/fulfill    any session  own session(404)  403
    GET  /v1/accounts (search)                 403          403               yes
    GET  /v1/accounts/{id}                     yes          own account       yes
    PUT  /v1/accounts/{id}                     yes          403               403
    GET  /v1/accounts/{id}/grants              yes          own account       yes
    GET  /v1/accounts/{id}/holds               yes          own account       yes
    GET  /v1/accounts/{id}/transactions        yes          own account       yes
    GET  /v1/accounts/{id}/entitlements        yes          own account       yes
    POST /v1/accounts/{id}/check               yes          own account       yes
    GET  /v1/accounts/{id}/subscriptions       yes          own account       yes
    POST /v1/accounts/{id}/subscription        yes          own account       403
    DELETE /v1/accounts/{id}/subscription      yes          own account       403
    POST /v1/accounts/{id}/billing-portal      yes          own account       403
    POST /v1/accounts/{id}/sync                yes          own account       403
    POST /v1/accounts/{id}/spend               yes          403               403
    POST /v1/accounts/{id}/holds               yes          403               403
    GET  /v1/holds/{id}                        yes          own hold (404)    yes
    POST /v1/holds/{id}/capture, /release      yes          403               403
    POST /v1/accounts/{id}/grants              403          403               yes (reason required)
    POST /v1/accounts/{id}/adjustments         403          403               yes (reason required)
    /v1/events..., /v1/orders...               403          403               yes
    GET  /v1/subscriptions, POST .../sync      403          403               yes

The admin token reads accounts (an operator looks before granting) but moves value only through
manual grants and adjustments (both with a reason); spending and holding are the application's, with its server key. Changing a
subscription goes through Stripe on the customer's behalf: the application's, or the customer's
own (those calls count against the checkout rate limit, as they reach Stripe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from billfold.domain import ledger as rules
from billfold.entrypoints.http.auth import Principal, require, require_account
from billfold.entrypoints.http.deps import get_principal
from billfold.entrypoints.http.ratelimit import RateLimiter
from billfold.service import keys
from billfold.settings import Settings


@dataclass(frozen=True, slots=True)
class RateLimits:
    checkout: RateLimiter
    spend: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            checkout=RateLimiter(settings.rate_limit_checkout_per_minute, what="checkout"),
            spend=RateLimiter(settings.rate_limit_spend_per_minute, what="spend"),
        )


def _limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


async def _server(request: Request) -> Principal:
    return require(await get_principal(request), "server")


async def _server_spending(request: Request) -> Principal:
    principal = require(await get_principal(request), "server")
    _limits(request).spend.hit(principal.credential_id)
    return principal


async def _buyer(request: Request) -> Principal:
    principal = require(await get_principal(request), "server", "user")
    _limits(request).checkout.hit(principal.credential_id)
    return principal


async def _subscriber(request: Request) -> Principal:
    principal = require(await get_principal(request), "server", "user")
    _limits(request).checkout.hit(principal.credential_id)
    return principal


async def _fulfiller(request: Request) -> Principal:
    return require(await get_principal(request), "server", "user")


async def _reader(request: Request) -> Principal:
    return require(await get_principal(request), "server", "user", "admin")


async def _admin(request: Request) -> Principal:
    return require(await get_principal(request), "admin")


# Each is one dependency that authenticates and checks in one call (a dependency of a dependency
# costs FastAPI a second resolution on every request).
ServerDep = Annotated[Principal, Depends(_server)]
SpenderDep = Annotated[Principal, Depends(_server_spending)]
BuyerDep = Annotated[Principal, Depends(_buyer)]
SubscriberDep = Annotated[Principal, Depends(_subscriber)]
FulfillerDep = Annotated[Principal, Depends(_fulfiller)]
ReaderDep = Annotated[Principal, Depends(_reader)]
AdminDep = Annotated[Principal, Depends(_admin)]


def namespace(principal: Principal) -> str:
    """Whose idempotency keys these are: the application's (every server key shares one
    namespace with the library), each user's own, or the admin's."""
    if principal.kind == "server":
        return keys.APPLICATION
    if principal.kind == "user":
        return f"user:{principal.account_id}"
    return "admin"


def own_account(principal: Principal, account_id: str) -> None:
    rules.check_account_id(account_id)
    require_account(principal, account_id)


def must_exist(principal: Principal) -> bool:
    """Server keys and the admin get 404 for an account nothing has referenced; a user's own
    account always exists for them, if empty."""
    return principal.kind != "user"


def ledger_key(principal: Principal, idempotency_key: str | None) -> str:
    return keys.ledger_key(namespace(principal), idempotency_key)


def idempotency_headers(idempotency_key: str | None, *, replayed: bool) -> dict[str, str]:
    """Echo the caller's key; say when the answer is the first request's, given again."""
    if idempotency_key is None:
        return {}
    if replayed:
        return {"Idempotency-Key": idempotency_key, "Idempotent-Replayed": "true"}
    return {"Idempotency-Key": idempotency_key}


def mark_idempotent(response: Response, idempotency_key: str | None, *, replayed: bool) -> None:
    response.headers.update(idempotency_headers(idempotency_key, replayed=replayed))

"""The application API under ``/v1``: catalog, checkout, accounts, grants, spends and holds.

Who may do what (401: no valid credentials; 403: the wrong kind, or another user's account):

    route                                      server key   user token        admin token
    GET  /v1/catalog                           public: no credentials needed
    POST /v1/checkout/sessions                 any account  own account       403
    POST /v1/checkout/sessions/{id}/fulfill    any session  own session(404)  403
    GET  /v1/accounts/{id}                     yes          own account       yes
    PUT  /v1/accounts/{id}                     yes          403               403
    GET  /v1/accounts/{id}/grants              yes          own account       yes
    GET  /v1/accounts/{id}/transactions        yes          own account       yes
    GET  /v1/accounts/{id}/entitlements        yes          own account       yes
    POST /v1/accounts/{id}/spend               yes          403               403
    POST /v1/accounts/{id}/holds               yes          403               403
    GET  /v1/holds/{id}                        yes          own hold (404)    yes
    POST /v1/holds/{id}/capture, /release      yes          403               403
    POST /v1/accounts/{id}/grants              403          403               yes (reason required)

The admin token reads accounts (an operator looks before granting) but moves value only through
manual grants; spending and holding are the application's, with its server key.

Writes that move value take an optional ``Idempotency-Key`` header, as Stripe's do: the same key
with the same body answers the first answer again (``Idempotent-Replayed: true``), with another
body 409. Without one, every request is new. Keys belong to the caller: all server keys (and the
library) share one namespace; each user, and the admin, has their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.domain import ledger as rules
from billfold.entrypoints import operations as ops
from billfold.entrypoints.http.auth import Principal, require, require_account
from billfold.entrypoints.http.deps import Limit, PrincipalDep, ServicesDep, StartingAfter
from billfold.entrypoints.http.ratelimit import RateLimiter
from billfold.entrypoints.http.schemas import (
    AccountResponse,
    CaptureRequest,
    CatalogResponse,
    CheckoutSessionRequest,
    CheckoutSessionResponse,
    DrawResponse,
    EntitlementsResponse,
    ErrorResponse,
    FulfillmentResponse,
    GrantCreatedResponse,
    GrantResponse,
    HoldRequest,
    HoldResponse,
    ListResponse,
    ManualGrantRequest,
    OrderResponse,
    SpendRequest,
    SpendResponse,
    TransactionResponse,
    UpdateAccountRequest,
)
from billfold.service.ledger import Capture, Grant, Hold, HoldResult, Release, Spend
from billfold.service.ports import AccountRecord, HoldRow, UnitOfWork
from billfold.settings import Settings

R = TypeVar("R")

router = APIRouter(prefix="/v1")

_DESCRIPTIONS = {
    400: "Invalid request: the message names the field; nothing was written.",
    401: "Missing, malformed, expired or forged credentials.",
    402: "Insufficient balance: `error.available` says what can be spent.",
    403: "These credentials may not do this, or not for this account.",
    404: "No such object (or not one these credentials may see).",
    409: "Conflict: the idempotency key was used with another request, or the state forbids it.",
    429: "Rate limited: retry after `Retry-After` seconds.",
    502: "Stripe could not be reached, refused, or is not configured.",
    503: "The database is unavailable; try again.",
}


def errors_of(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]}
        for code in (400, *codes, 503)
    }


AccountId = Annotated[str, Path(min_length=1, max_length=200, description="Your account id.")]
HoldId = Annotated[str, Path(min_length=1, max_length=64)]
SessionId = Annotated[str, Path(min_length=1, max_length=255)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry safely: the same key and body answer the first answer again.",
    ),
]
GRANT_CURSOR = re.compile(r"^gr_[0-9A-Z]{26}$")
TRANSACTION_CURSOR = re.compile(r"^txn_[0-9A-Z]{26}$")


# --- rate limits ---------------------------------------------------------------------------------


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


# --- who may call --------------------------------------------------------------------------------


def _server(principal: PrincipalDep) -> Principal:
    return require(principal, "server")


def _server_spending(request: Request, principal: PrincipalDep) -> Principal:
    require(principal, "server")
    _limits(request).spend.hit(principal.credential_id)
    return principal


def _buyer(request: Request, principal: PrincipalDep) -> Principal:
    require(principal, "server", "user")
    _limits(request).checkout.hit(principal.credential_id)
    return principal


def _fulfiller(principal: PrincipalDep) -> Principal:
    return require(principal, "server", "user")


def _reader(principal: PrincipalDep) -> Principal:
    return require(principal, "server", "user", "admin")


def _admin(principal: PrincipalDep) -> Principal:
    return require(principal, "admin")


ServerDep = Annotated[Principal, Depends(_server)]
SpenderDep = Annotated[Principal, Depends(_server_spending)]
BuyerDep = Annotated[Principal, Depends(_buyer)]
FulfillerDep = Annotated[Principal, Depends(_fulfiller)]
ReaderDep = Annotated[Principal, Depends(_reader)]
AdminDep = Annotated[Principal, Depends(_admin)]


def namespace(principal: Principal) -> str:
    """Whose idempotency keys these are (see the module docstring)."""
    if principal.kind == "server":
        return ops.APPLICATION
    if principal.kind == "user":
        return f"user:{principal.account_id}"
    return "admin"


def _own_account(principal: Principal, account_id: str) -> None:
    rules.check_account_id(account_id)
    require_account(principal, account_id)


def _account_must_exist(uow: UnitOfWork, principal: Principal, account_id: str) -> None:
    """Server keys and the admin get 404 for an account nothing has referenced; a user's own
    account always exists for them, if empty."""
    if principal.kind != "user" and uow.accounts.get(account_id) is None:
        raise errors.AccountNotFound(f"No account {account_id!r}.", account_id=account_id)


def _idempotent(
    services: Services,
    response: Response,
    principal: Principal,
    idempotency_key: str | None,
    write: Callable[[UnitOfWork, str, int], R],
) -> R:
    """Run ``write`` in one unit of work under the caller's key; mark replays in the headers."""
    given = ops.check_idempotency_key(idempotency_key)
    key = ops.ledger_key(namespace(principal), given)
    now = services.clock()
    with services.uow() as uow:
        replayed = uow.ledger.transaction_by_key(key) is not None
        result = write(uow, key, now)
        uow.commit()
    if given is not None:
        response.headers["Idempotency-Key"] = given
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
    return result


# --- catalog -------------------------------------------------------------------------------------


@router.get("/catalog", response_model=CatalogResponse, tags=["catalog"])
def get_catalog(services: ServicesDep) -> CatalogResponse:
    """What is for sale: units, packages and plans. Public: a pricing page needs no login."""
    return CatalogResponse.model_validate(services.catalog.to_public_dict())


# --- checkout ------------------------------------------------------------------------------------


@router.post(
    "/checkout/sessions",
    status_code=201,
    response_model=CheckoutSessionResponse,
    tags=["checkout"],
    responses=errors_of(401, 403, 409, 429, 502),
)
async def create_checkout_session(
    body: CheckoutSessionRequest,
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: BuyerDep,
    idempotency_key: IdempotencyKey = None,
) -> CheckoutSessionResponse:
    """Create a Stripe Checkout Session that buys ``package`` for ``account_id``; send the customer
    to ``url``. Without ``success_url``, Stripe returns them to ``/success`` on this server.

    With an ``Idempotency-Key``, a retried request answers the same session (Stripe keeps the key
    for 24 hours); the key with another body answers 409."""
    _own_account(principal, body.account_id)
    success_url = body.success_url or f"{str(request.base_url).rstrip('/')}/success"
    session = await run_in_threadpool(
        lambda: ops.create_checkout_session(
            services,
            account_id=body.account_id,
            package=body.package,
            amount=body.amount,
            success_url=success_url,
            cancel_url=body.cancel_url,
            idempotency_key=idempotency_key,
            namespace=namespace(principal),
        )
    )
    if idempotency_key is not None:
        response.headers["Idempotency-Key"] = idempotency_key
    return CheckoutSessionResponse(
        id=session.id, url=session.url, account_id=session.account_id, package=session.package
    )


@router.post(
    "/checkout/sessions/{session_id}/fulfill",
    response_model=FulfillmentResponse,
    tags=["checkout"],
    responses=errors_of(401, 403, 404, 409, 502),
)
async def fulfill_checkout_session(
    session_id: SessionId, services: ServicesDep, principal: FulfillerDep
) -> FulfillmentResponse:
    """The success page: fulfil the session's order now if Stripe says it is paid, and show the
    balances. The webhook does the same; whichever comes first grants, the other finds it done."""
    as_account = principal.account_id if principal.kind == "user" else None
    done = await run_in_threadpool(
        lambda: ops.fulfill_checkout_session(services, session_id, as_account=as_account)
    )
    return FulfillmentResponse(
        session_id=done.session_id,
        session_status=done.session_status,
        payment_status=done.payment_status,
        status=done.status,
        order=OrderResponse.of(done.order) if done.order else None,
        account_id=done.account_id,
        balances=done.balances,
    )


# --- accounts ------------------------------------------------------------------------------------


def _account_response(
    services: Services, account_id: str, record: AccountRecord | None
) -> AccountResponse:
    # Balances are read in their own unit of work: never nest one inside another (on SQLite each
    # holds the write lock).
    available, held, debt = ops.balance_maps(services, account_id)
    return AccountResponse(
        id=account_id,
        email=record.email if record else None,
        stripe_customer_id=record.stripe_customer_id if record else None,
        metadata=dict(record.metadata) if record else {},
        balances=available,
        held=held,
        debt=debt,
        created=record.created if record else None,
        updated=record.updated if record else None,
    )


@router.get(
    "/accounts/{account_id}",
    response_model=AccountResponse,
    tags=["accounts"],
    responses=errors_of(401, 403, 404),
)
def get_account(
    account_id: AccountId, services: ServicesDep, principal: ReaderDep
) -> AccountResponse:
    """The account and its balances per unit (every catalog unit; 0 where nothing was granted)."""
    _own_account(principal, account_id)
    with services.uow() as uow:
        _account_must_exist(uow, principal, account_id)
        record = uow.accounts.get(account_id)
    return _account_response(services, account_id, record)


@router.put(
    "/accounts/{account_id}",
    response_model=AccountResponse,
    tags=["accounts"],
    responses=errors_of(401, 403, 409),
)
def update_account(
    account_id: AccountId,
    body: UpdateAccountRequest,
    services: ServicesDep,
    _principal: ServerDep,
) -> AccountResponse:
    """Create or update the account: e-mail, Stripe customer id, metadata. Fields left out stay
    as they are, ``null`` clears one, ``metadata`` replaces the whole map."""
    rules.check_account_id(account_id)
    values: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        values[name] = ({} if value is None else dict(value)) if name == "metadata" else value
    customer = values.get("stripe_customer_id")
    now = services.clock()
    try:
        with services.uow() as uow:
            if customer is not None:
                linked = uow.accounts.by_stripe_customer(customer)
                if linked is not None and linked.id != account_id:
                    raise errors.Conflict(
                        f"Stripe customer {customer} is already linked to another account.",
                        param="stripe_customer_id",
                    )
            uow.accounts.upsert(account_id, now=now, **values)
            uow.commit()
    except errors.InvariantViolation as exc:
        # Two requests linking the same customer at once: the UNIQUE constraint decided.
        if "stripe_customer_id" not in str(exc.__cause__ or exc):
            raise
        raise errors.Conflict(
            f"Stripe customer {customer} is already linked to another account.",
            param="stripe_customer_id",
        ) from exc
    with services.uow() as uow:
        record = uow.accounts.get(account_id)
    return _account_response(services, account_id, record)


@router.get(
    "/accounts/{account_id}/grants",
    response_model=ListResponse[GrantResponse],
    tags=["accounts"],
    responses=errors_of(401, 403, 404),
)
def list_grants(
    account_id: AccountId,
    services: ServicesDep,
    principal: ReaderDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    live: bool = False,
) -> ListResponse[GrantResponse]:
    """The account's grants, newest first; ``live=true`` keeps those with something left to spend.
    ``starting_after`` is a grant id: the page holds the grants created before it."""
    _own_account(principal, account_id)
    _check_cursor(starting_after, GRANT_CURSOR, "a grant id (gr_...)")
    now = services.clock()
    with services.uow() as uow:
        _account_must_exist(uow, principal, account_id)
        rows = uow.ledger.list_grants(
            account_id, limit=limit + 1, starting_after=starting_after, live_only=live, now=now
        )
    return ListResponse(
        data=[GrantResponse.of(g) for g in rows[:limit]], has_more=len(rows) > limit
    )


@router.get(
    "/accounts/{account_id}/transactions",
    response_model=ListResponse[TransactionResponse],
    tags=["accounts"],
    responses=errors_of(401, 403, 404),
)
def list_transactions(
    account_id: AccountId,
    services: ServicesDep,
    principal: ReaderDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
) -> ListResponse[TransactionResponse]:
    """Every ledger transaction that moved this account's balance, newest first, with its lines.
    ``starting_after`` is a transaction id: the page holds the transactions before it."""
    _own_account(principal, account_id)
    _check_cursor(starting_after, TRANSACTION_CURSOR, "a transaction id (txn_...)")
    with services.uow() as uow:
        _account_must_exist(uow, principal, account_id)
        rows = uow.ledger.list_transactions(
            account_id, limit=limit + 1, starting_after=starting_after
        )
    return ListResponse(
        data=[TransactionResponse.of(x, account_id) for x in rows[:limit]],
        has_more=len(rows) > limit,
    )


def _check_cursor(cursor: str | None, pattern: re.Pattern[str], what: str) -> None:
    if cursor is not None and not pattern.match(cursor):
        raise errors.ValidationError(f"starting_after must be {what}.", param="starting_after")


@router.get(
    "/accounts/{account_id}/entitlements",
    response_model=EntitlementsResponse,
    tags=["accounts"],
    responses=errors_of(401, 403),
)
def get_entitlements(
    account_id: AccountId, services: ServicesDep, principal: ReaderDep
) -> EntitlementsResponse:
    """What the account may do now. Subscriptions are not tracked yet: every account, known or
    not, is on the catalog's default plan (``source: "default"``)."""
    _own_account(principal, account_id)
    found = ops.entitlements(services, account_id)
    return EntitlementsResponse(
        account_id=found.account_id,
        plan=found.plan,
        source=found.source,
        features=found.features,
        limits=found.limits,
    )


# --- moving value --------------------------------------------------------------------------------


@router.post(
    "/accounts/{account_id}/spend",
    response_model=SpendResponse,
    tags=["spending"],
    responses=errors_of(401, 402, 403, 409, 429),
)
def spend(
    account_id: AccountId,
    body: SpendRequest,
    response: Response,
    services: ServicesDep,
    principal: SpenderDep,
    idempotency_key: IdempotencyKey = None,
) -> SpendResponse:
    """Spend ``amount`` of ``unit`` now, from the grants spent first (priority, then soonest
    expiry). 402 ``insufficient_balance`` when the balance is short; nothing is taken then."""

    def write(uow: UnitOfWork, key: str, now: int) -> SpendResponse:
        cmd = Spend(
            key=key,
            account_id=account_id,
            unit=body.unit,
            amount=body.amount,
            reason=body.reason,
        )
        done = services.ledger.spend_in(uow.ledger, cmd, now)
        return SpendResponse(
            transaction_id=done.transaction_id,
            account_id=done.account_id,
            unit=done.unit,
            amount=done.amount,
            balance=done.balance,
            draws=[DrawResponse(grant_id=g, amount=a) for g, a in done.draws],
        )

    return _idempotent(services, response, principal, idempotency_key, write)


def _hold_response(result: HoldResult, row: HoldRow | None) -> HoldResponse:
    return HoldResponse(
        id=result.hold_id,
        account_id=result.account_id,
        unit=result.unit,
        amount=result.amount,
        captured=result.captured,
        status=result.status,
        expires_at=result.expires_at,
        reason=row.reason if row else None,
        created=row.created if row else None,
        transaction_id=result.transaction_id,
        balance=result.balance,
    )


@router.post(
    "/accounts/{account_id}/holds",
    status_code=201,
    response_model=HoldResponse,
    tags=["spending"],
    responses=errors_of(401, 402, 403, 409, 429),
)
def create_hold(
    account_id: AccountId,
    body: HoldRequest,
    response: Response,
    services: ServicesDep,
    principal: SpenderDep,
    idempotency_key: IdempotencyKey = None,
) -> HoldResponse:
    """Reserve ``amount`` of ``unit`` for work that finishes later; capture or release it before
    ``expires_at`` (``ttl_seconds``, default ``BILLFOLD_HOLD_TTL_SECONDS``), or it releases
    itself."""
    ttl = body.ttl_seconds or services.settings.hold_ttl_seconds

    def write(uow: UnitOfWork, key: str, now: int) -> HoldResponse:
        cmd = Hold(
            key=key,
            account_id=account_id,
            unit=body.unit,
            amount=body.amount,
            ttl_seconds=ttl,
            reason=body.reason,
        )
        done = services.ledger.hold_in(uow.ledger, cmd, now)
        return _hold_response(done, uow.ledger.get_hold(done.hold_id))

    return _idempotent(services, response, principal, idempotency_key, write)


@router.get(
    "/holds/{hold_id}",
    response_model=HoldResponse,
    tags=["spending"],
    responses=errors_of(401, 403, 404),
)
def get_hold(hold_id: HoldId, services: ServicesDep, principal: ReaderDep) -> HoldResponse:
    """A hold as it stands now (a lapsed hold shows ``expired`` even before the sweep writes it)."""
    now = services.clock()
    with services.uow() as uow:
        row = uow.ledger.get_hold(hold_id)
    if row is None or not principal.may_see(row.account_id):
        raise errors.HoldNotFound(f"No hold {hold_id!r}.")
    status = "expired" if row.status == "active" and row.expires_at <= now else row.status
    return HoldResponse(
        id=row.id,
        account_id=row.account_id,
        unit=row.unit,
        amount=row.amount,
        captured=row.captured,
        status=status,
        expires_at=row.expires_at,
        reason=row.reason,
        created=row.created,
    )


@router.post(
    "/holds/{hold_id}/capture",
    response_model=HoldResponse,
    tags=["spending"],
    responses=errors_of(401, 403, 404, 409),
)
def capture_hold(
    hold_id: HoldId,
    response: Response,
    services: ServicesDep,
    principal: ServerDep,
    idempotency_key: IdempotencyKey = None,
    body: CaptureRequest | None = None,
) -> HoldResponse:
    """Spend the hold: all of it, or ``amount`` of it and release the rest. 409 when the hold is
    no longer active (captured, released or expired)."""
    amount = body.amount if body else None

    def write(uow: UnitOfWork, key: str, now: int) -> HoldResponse:
        done = services.ledger.capture_in(
            uow.ledger, Capture(key=key, hold_id=hold_id, amount=amount), now
        )
        return _hold_response(done, uow.ledger.get_hold(hold_id))

    return _idempotent(services, response, principal, idempotency_key, write)


@router.post(
    "/holds/{hold_id}/release",
    response_model=HoldResponse,
    tags=["spending"],
    responses=errors_of(401, 403, 404, 409),
)
def release_hold(
    hold_id: HoldId,
    response: Response,
    services: ServicesDep,
    principal: ServerDep,
    idempotency_key: IdempotencyKey = None,
) -> HoldResponse:
    """Give the whole hold back to the balance. 409 when it is no longer active."""

    def write(uow: UnitOfWork, key: str, now: int) -> HoldResponse:
        done = services.ledger.release_in(uow.ledger, Release(key=key, hold_id=hold_id), now)
        return _hold_response(done, uow.ledger.get_hold(hold_id))

    return _idempotent(services, response, principal, idempotency_key, write)


@router.post(
    "/accounts/{account_id}/grants",
    status_code=201,
    response_model=GrantCreatedResponse,
    tags=["admin"],
    responses=errors_of(401, 403, 409),
)
def create_grant(
    account_id: AccountId,
    body: ManualGrantRequest,
    response: Response,
    services: ServicesDep,
    principal: AdminDep,
    idempotency_key: IdempotencyKey = None,
) -> GrantCreatedResponse:
    """A manual grant by an operator (or a promotion): ``reason`` is required and recorded on the
    grant and its ledger transaction. It repays recorded debt first."""

    def write(uow: UnitOfWork, key: str, now: int) -> GrantCreatedResponse:
        cmd = Grant(
            key=key,
            account_id=account_id,
            unit=body.unit,
            amount=body.amount,
            priority=body.priority,
            expires_at=body.expires_at,
            kind=body.kind,
            reason=body.reason,
            source=rules.PROMOTIONS if body.kind == "promotion" else rules.ADJUSTMENTS,
        )
        done = services.ledger.grant_in(uow.ledger, cmd, now)
        return GrantCreatedResponse(
            id=done.grant_id,
            transaction_id=done.transaction_id,
            account_id=done.account_id,
            unit=done.unit,
            amount=done.amount,
            expires_at=done.expires_at,
            debt_repaid=done.debt_repaid,
            balance=done.balance,
        )

    return _idempotent(services, response, principal, idempotency_key, write)


# --- wiring --------------------------------------------------------------------------------------


def install(app: FastAPI, settings: Settings) -> None:
    """Add the routes and the rate limiters, and describe the API's errors and credentials in the
    OpenAPI document (FastAPI's 422 never happens here: invalid input answers 400)."""
    app.state.rate_limits = RateLimits.from_settings(settings)
    app.include_router(router)
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build_openapi()
        _describe_errors(schema)
        services: Services = app.state.services
        _describe_catalog(schema, services)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


PUBLIC = {("/v1/catalog", "get"), ("/healthz", "get"), ("/webhooks/stripe", "post")}


def _describe_errors(schema: dict[str, Any]) -> None:
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    components = schema.setdefault("components", {})
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {
                    "description": _DESCRIPTIONS[400],
                    "content": {"application/json": {"schema": error_ref}},
                }
            if (path, method) not in PUBLIC:
                operation["security"] = [{"bearer": []}]
    schemas = components.setdefault("schemas", {})
    if "ErrorResponse" not in schemas:  # pragma: no cover - api routes always declare it
        return
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A server API key, an end user's token (JWT) or the admin token.",
    }


def _describe_catalog(schema: dict[str, Any], services: Services) -> None:
    """Name the catalog's units and packages in the document, so clients (and fuzzers) see them."""
    units = [u.name for u in services.catalog.units]
    packages = [p.id for p in services.catalog.packages]
    models = schema.get("components", {}).get("schemas", {})
    for name in ("SpendRequest", "HoldRequest", "ManualGrantRequest"):
        unit = models.get(name, {}).get("properties", {}).get("unit")
        if unit is not None and units:
            unit["enum"] = units
    package = models.get("CheckoutSessionRequest", {}).get("properties", {}).get("package")
    if package is not None and packages:
        package["enum"] = packages

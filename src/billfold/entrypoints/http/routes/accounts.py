"""Accounts: search, details and balances, grants, holds, transactions, manual grants and
adjustments."""

from __future__ import annotations

import re
from typing import Annotated, Final, cast

from fastapi import APIRouter, Path, Query, Response

from billfold.domain import errors
from billfold.domain import ledger as rules
from billfold.domain.ledger import HoldStatus
from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import (
    AdminDep,
    ReaderDep,
    ServerDep,
    ledger_key,
    mark_idempotent,
    must_exist,
    own_account,
)
from billfold.entrypoints.http.deps import IdempotencyKey, Limit, ServicesDep, StartingAfter
from billfold.entrypoints.http.openapi import errors_of
from billfold.schemas import (
    AccountResponse,
    AdjustmentRequest,
    AdjustmentResponse,
    BalanceExplainResponse,
    GrantCreatedResponse,
    GrantResponse,
    HoldResponse,
    ListResponse,
    ManualGrantRequest,
    TransactionResponse,
    UpdateAccountRequest,
)
from billfold.service.accounts import UpdateAccount
from billfold.service.attention import Who
from billfold.service.ledger import Adjust, Grant

router = APIRouter(prefix="/v1", tags=["accounts"])

AccountId = Annotated[str, Path(min_length=1, max_length=200, description="Your account id.")]
GRANT_CURSOR: Final = re.compile(r"^gr_[0-9A-Z]{26}$")
TRANSACTION_CURSOR: Final = re.compile(r"^txn_[0-9A-Z]{26}$")
HOLD_CURSOR: Final = re.compile(r"^hold_[0-9A-Z]{26}$")
HOLD_STATUSES: Final = ("active", "captured", "released", "expired")


def _search_text(query: str | None) -> str | None:
    if query is None:
        return None
    if not query.strip():
        raise errors.ValidationError("query must not be blank.", param="query")
    return query.strip()


def _check_cursor(cursor: str | None, pattern: re.Pattern[str], what: str) -> None:
    if cursor is not None and not pattern.match(cursor):
        raise errors.ValidationError(f"starting_after must be {what}.", param="starting_after")


@router.get(
    "/accounts",
    response_model=ListResponse[AccountResponse],
    tags=["admin"],
    responses=errors_of(400, 401, 403),
)
def list_accounts(
    services: ServicesDep,
    _admin: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    email: Annotated[
        str | None,
        Query(min_length=1, max_length=320, description="Exactly, ignoring case."),
    ] = None,
    stripe_customer_id: Annotated[
        str | None, Query(min_length=1, max_length=255, description="Exactly (cus_...).")
    ] = None,
    query: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=320,
            description="An account id prefix, an e-mail (ignoring case) or a Stripe customer id.",
        ),
    ] = None,
) -> ListResponse[AccountResponse]:
    """Accounts, newest first, each as ``GET /v1/accounts/{id}`` answers it; every filter given
    narrows the list. ``starting_after`` is an account id."""
    page = services.views.accounts(
        email=email,
        stripe_customer_id=stripe_customer_id,
        query=_search_text(query),
        limit=limit,
        starting_after=starting_after,
    )
    return ListResponse(data=[presenters.account(a) for a in page.data], has_more=page.has_more)


@router.get(
    "/accounts/{account_id}",
    response_model=AccountResponse,
    responses=errors_of(401, 403, 404),
)
def get_account(
    account_id: AccountId, services: ServicesDep, principal: ReaderDep
) -> AccountResponse:
    """The account and its balances per unit (every catalog unit; 0 where nothing was granted)."""
    own_account(principal, account_id)
    return presenters.account(services.views.account(account_id, must_exist=must_exist(principal)))


@router.put(
    "/accounts/{account_id}",
    response_model=AccountResponse,
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
    values = {name: getattr(body, name) for name in body.model_fields_set}
    services.accounts.update(UpdateAccount(account_id=account_id, values=values))
    return presenters.account(services.views.account(account_id, must_exist=False))


@router.get(
    "/accounts/{account_id}/balance/explain",
    response_model=BalanceExplainResponse,
    responses=errors_of(400, 401, 403, 404),
)
def explain_balance(
    account_id: AccountId,
    services: ServicesDep,
    principal: ReaderDep,
    unit: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="The unit (default: the catalog's first)."),
    ] = None,
) -> BalanceExplainResponse:
    """What the balance in one unit is made of: every lot (grant) with something left, where it
    came from (the order or invoice and the Stripe objects behind it, or a manual grant), what drew
    on it; the holds and the debt against it; what refunds and disputes took back. The amounts
    add up: ``balance == sum(lots.remaining) - held - debt``."""
    own_account(principal, account_id)
    return presenters.explanation(
        services.views.explain(account_id, unit, must_exist=must_exist(principal))
    )


@router.get(
    "/accounts/{account_id}/grants",
    response_model=ListResponse[GrantResponse],
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
    own_account(principal, account_id)
    _check_cursor(starting_after, GRANT_CURSOR, "a grant id (gr_...)")
    page = services.views.grants(
        account_id,
        must_exist=must_exist(principal),
        limit=limit,
        starting_after=starting_after,
        live_only=live,
    )
    return ListResponse(data=[presenters.grant(g) for g in page.data], has_more=page.has_more)


@router.get(
    "/accounts/{account_id}/holds",
    response_model=ListResponse[HoldResponse],
    responses=errors_of(400, 401, 403, 404),
)
def list_holds(
    account_id: AccountId,
    services: ServicesDep,
    principal: ReaderDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    status: Annotated[str | None, Query(description=", ".join(HOLD_STATUSES))] = None,
) -> ListResponse[HoldResponse]:
    """The account's holds, newest first, each as it stands now: a hold whose time ran out is
    ``expired`` (and ``status=active`` leaves it out) before the sweep writes it.
    ``starting_after`` is a hold id."""
    own_account(principal, account_id)
    _check_cursor(starting_after, HOLD_CURSOR, "a hold id (hold_...)")
    if status is not None and status not in HOLD_STATUSES:
        raise errors.ValidationError(
            f"status must be one of {', '.join(HOLD_STATUSES)}.", param="status"
        )
    page = services.views.holds(
        account_id,
        must_exist=must_exist(principal),
        status=cast(HoldStatus | None, status),
        limit=limit,
        starting_after=starting_after,
    )
    return ListResponse(data=[presenters.hold(h) for h in page.data], has_more=page.has_more)


@router.get(
    "/accounts/{account_id}/transactions",
    response_model=ListResponse[TransactionResponse],
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
    own_account(principal, account_id)
    _check_cursor(starting_after, TRANSACTION_CURSOR, "a transaction id (txn_...)")
    page = services.views.transactions(
        account_id, must_exist=must_exist(principal), limit=limit, starting_after=starting_after
    )
    return ListResponse(
        data=[presenters.transaction(x, account_id) for x in page.data], has_more=page.has_more
    )


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
    done = services.ledger.grant(
        Grant(
            key=ledger_key(principal, idempotency_key),
            account_id=account_id,
            unit=body.unit,
            amount=body.amount,
            priority=body.priority,
            expires_at=body.expires_at,
            kind=body.kind,
            reason=body.reason,
            source=rules.PROMOTIONS if body.kind == "promotion" else rules.ADJUSTMENTS,
        )
    )
    mark_idempotent(response, idempotency_key, replayed=done.replayed)
    if not done.replayed:
        services.attention.record(
            "grant",
            "account",
            account_id,
            Who(actor=body.operator, reason=body.reason),
            outcome=f"granted {done.amount} {done.unit} ({done.transaction_id})",
        )
    return presenters.granted(done)


@router.post(
    "/accounts/{account_id}/adjustments",
    status_code=201,
    response_model=AdjustmentResponse,
    tags=["admin"],
    responses=errors_of(400, 401, 402, 403, 409),
)
def create_adjustment(
    account_id: AccountId,
    body: AdjustmentRequest,
    response: Response,
    services: ServicesDep,
    principal: AdminDep,
    idempotency_key: IdempotencyKey = None,
) -> AdjustmentResponse:
    """A negative adjustment by an operator: ``amount`` leaves the available balance (drawn from
    the lots as a spend is) in a ledger transaction of kind ``adjustment``; ``reason`` is
    required and recorded on it. 402 ``insufficient_balance`` when the available balance is
    short: an adjustment never records debt."""
    done = services.ledger.adjust(
        Adjust(
            key=ledger_key(principal, idempotency_key),
            account_id=account_id,
            unit=body.unit,
            amount=body.amount,
            reason=body.reason,
        )
    )
    mark_idempotent(response, idempotency_key, replayed=done.replayed)
    if not done.replayed:
        services.attention.record(
            "adjust",
            "account",
            account_id,
            Who(actor=body.operator, reason=body.reason),
            outcome=f"took {done.amount} {done.unit} ({done.transaction_id})",
        )
    return presenters.adjusted(done)

"""Subscriptions and entitlements: what an account may do, its subscriptions, and the changes it
may ask Stripe for (change plan, cancel, the customer portal, a sync)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import (
    AdminDep,
    ReaderDep,
    SubscriberDep,
    own_account,
)
from billfold.entrypoints.http.deps import Limit, ServicesDep, StartingAfter
from billfold.entrypoints.http.openapi import errors_of
from billfold.schemas import (
    BillingPortalRequest,
    BillingPortalResponse,
    ChangePlanRequest,
    CheckRequest,
    CheckResponse,
    EntitlementsResponse,
    ListResponse,
    SubscriptionResponse,
    SyncResponse,
)
from billfold.service.billing import Cancel, ChangePlan
from billfold.service.billing import CheckRequest as Check

router = APIRouter(prefix="/v1", tags=["subscriptions"])

AccountId = Annotated[str, Path(min_length=1, max_length=200, description="Your account id.")]


@router.get(
    "/accounts/{account_id}/entitlements",
    response_model=EntitlementsResponse,
    responses=errors_of(401, 403),
)
def get_entitlements(
    account_id: AccountId, services: ServicesDep, principal: ReaderDep
) -> EntitlementsResponse:
    """What the account may do now: its plan, where it comes from (``subscription``, ``grace``
    after a failed renewal, or the catalog's ``default``), the plan's features and limits.
    Evaluated as of now: a grace period or a scheduled cancellation ends the moment it passes.
    An account billfold never saw has the default plan."""
    own_account(principal, account_id)
    return presenters.entitlements(services.billing.entitlements(account_id))


@router.post(
    "/accounts/{account_id}/check",
    response_model=CheckResponse,
    responses=errors_of(400, 401, 403),
)
def check(
    account_id: AccountId, body: CheckRequest, services: ServicesDep, principal: ReaderDep
) -> CheckResponse:
    """May the account use ``feature``, add one more against ``limit`` at ``usage``, and afford
    ``amount`` of ``unit``? ``allowed`` with every reason it may not (nothing is spent)."""
    own_account(principal, account_id)
    found = services.billing.check(
        Check(
            account_id=account_id,
            feature=body.feature,
            limit=body.limit,
            usage=body.usage,
            unit=body.unit,
            amount=body.amount,
        )
    )
    return presenters.check(found)


@router.get(
    "/accounts/{account_id}/subscriptions",
    response_model=ListResponse[SubscriptionResponse],
    responses=errors_of(400, 401, 403),
)
def list_subscriptions(
    account_id: AccountId,
    services: ServicesDep,
    principal: ReaderDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
) -> ListResponse[SubscriptionResponse]:
    """The account's subscriptions as billfold keeps them, newest first (empty for an account
    billfold never saw). ``starting_after`` is a subscription id (``sub_...``)."""
    own_account(principal, account_id)
    found = services.billing.subscriptions(account_id, limit=limit, starting_after=starting_after)
    catalog = services.catalog
    return ListResponse(
        data=[presenters.subscription(x, catalog) for x in found.data], has_more=found.has_more
    )


@router.post(
    "/accounts/{account_id}/subscription",
    response_model=SubscriptionResponse,
    responses=errors_of(400, 401, 403, 404, 409, 429, 502),
)
async def change_plan(
    account_id: AccountId,
    body: ChangePlanRequest,
    services: ServicesDep,
    principal: SubscriberDep,
) -> SubscriptionResponse:
    """Move the account's subscription to ``plan`` in Stripe, with Stripe's ``proration``
    behaviour. Features and limits change at once; an upgrade billed now grants the prorated
    difference of the allowance when its invoice is paid."""
    own_account(principal, account_id)
    command = ChangePlan(account_id=account_id, plan=body.plan, proration=body.proration)
    changed = await run_in_threadpool(services.billing.change_plan, command)
    return presenters.subscription(changed, services.catalog)


@router.delete(
    "/accounts/{account_id}/subscription",
    response_model=SubscriptionResponse,
    responses=errors_of(400, 401, 403, 404, 429, 502),
)
async def cancel_subscription(
    account_id: AccountId,
    services: ServicesDep,
    principal: SubscriberDep,
    at_period_end: Annotated[
        bool,
        Query(description="false: end it now; by default it ends when the paid period does."),
    ] = True,
) -> SubscriptionResponse:
    """Cancel the account's subscription: at the end of the paid period (the plan stays until
    then), or now with ``?at_period_end=false``. Allowances already granted keep their expiry."""
    own_account(principal, account_id)
    command = Cancel(account_id=account_id, at_period_end=at_period_end)
    canceled = await run_in_threadpool(services.billing.cancel, command)
    return presenters.subscription(canceled, services.catalog)


@router.post(
    "/accounts/{account_id}/billing-portal",
    response_model=BillingPortalResponse,
    responses=errors_of(400, 401, 403, 409, 429, 502),
)
async def billing_portal(
    account_id: AccountId,
    services: ServicesDep,
    principal: SubscriberDep,
    body: BillingPortalRequest | None = None,
) -> BillingPortalResponse:
    """A Stripe customer-portal session for the account's customer: send them to ``url`` to
    switch plan, cancel or update their card; Stripe returns them to ``return_url``."""
    own_account(principal, account_id)
    return_url = body.return_url if body else None
    url = await run_in_threadpool(services.billing.portal_url, account_id, return_url)
    return BillingPortalResponse(url=url)


@router.post(
    "/accounts/{account_id}/sync",
    response_model=SyncResponse,
    responses=errors_of(400, 401, 403, 429, 502),
)
async def sync_account(
    account_id: AccountId, services: ServicesDep, principal: SubscriberDep
) -> SyncResponse:
    """Re-read the account's subscriptions and latest paid invoices from Stripe and repair
    billfold's copy (through the webhooks' path, with their keys: nothing is granted twice)."""
    own_account(principal, account_id)
    report = await run_in_threadpool(services.billing.sync, account_id)
    return presenters.sync(report)


@router.get(
    "/subscriptions",
    response_model=ListResponse[SubscriptionResponse],
    responses=errors_of(400, 401, 403),
)
def list_all_subscriptions(
    services: ServicesDep,
    _principal: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
    status: Annotated[
        str | None, Query(max_length=32, description="Only subscriptions in this status.")
    ] = None,
) -> ListResponse[SubscriptionResponse]:
    """Every subscription billfold keeps (admin), with its account and grace state."""
    found = services.billing.list_all(status=status, limit=limit, starting_after=starting_after)
    catalog = services.catalog
    return ListResponse(
        data=[presenters.subscription(x, catalog) for x in found.data], has_more=found.has_more
    )


@router.post(
    "/subscriptions/sync",
    response_model=SyncResponse,
    responses=errors_of(401, 403, 502),
)
async def sync_everyone(services: ServicesDep, _principal: AdminDep) -> SyncResponse:
    """Sync every account with a Stripe customer (admin): what the scheduled sync does."""
    report = await run_in_threadpool(services.billing.sync_all)
    return presenters.sync(report)

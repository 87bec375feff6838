"""``billfold.client.AsyncClient``: billfold's HTTP API from asyncio code.

The same methods as ``Client`` (``_sync.py``), awaited, with async iterators for the lists; keep
the two in step (a test compares their signatures).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal

import httpx
from pydantic import BaseModel

from billfold import schemas as s
from billfold.client import _core
from billfold.client._core import Call, M, body, moving
from billfold.client._paths import UNSET, Item, P, Unset, account_fields


class AsyncClient:
    """billfold's HTTP API: typed answers, idempotency keys, retries and billfold's exceptions.

    Credentials: ``api_key`` (the application's backend: everything but admin), ``user_token``
    (an end user's token: their own account only) or ``admin_token`` (operators). Value-moving
    calls send an ``Idempotency-Key`` (yours, or a new UUID4) that every retry of the call reuses.
    Connection errors, 5xx and 429 are retried ``max_retries`` times with exponential backoff and
    jitter, honouring ``Retry-After``. Errors raise the exceptions of ``billfold.domain.errors``
    (``InsufficientBalance`` with ``available``, ``NotFound``, ``Forbidden``, ...), and
    ``APIConnectionError`` when billfold cannot be reached."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        user_token: str | None = None,
        admin_token: str | None = None,
        timeout: float = _core.DEFAULT_TIMEOUT,
        max_retries: int = _core.DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.max_retries = max_retries
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": _core.auth_header(api_key, user_token, admin_token),
                "User-Agent": _core.USER_AGENT,
            },
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- sending -------------------------------------------------------------------------------

    async def _send(self, call: Call[M]) -> M:
        return _core.parse(call, await self._respond(call))

    async def _respond(self, call: Call[M]) -> httpx.Response:
        """The successful answer to ``call``, retried as the class says; or billfold's error."""
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.query(),
                    json=call.body,
                    headers=call.headers(),
                )
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise _core.APIConnectionError(
                        f"billfold could not be reached: {type(exc).__name__}."
                    ) from exc
                delay = _core.backoff(attempt)
            else:
                if response.is_success:
                    return response
                wait = _core.retry_delay(response, attempt)
                if wait is None or attempt >= self.max_retries:
                    raise _core.exception_for(response)
                delay = wait
            attempt += 1
            await self._sleep(delay)

    async def _pages(self, call: Call[s.ListResponse[Item]]) -> AsyncIterator[Item]:
        while True:
            page = await self._send(call)
            for item in page.data:
                yield item
            if not page.has_more or not page.data:
                return
            call = dataclasses.replace(
                call, params={**call.params, "starting_after": page.data[-1].id}
            )

    # --- the catalog and health ------------------------------------------------------------------

    async def health(self) -> s.HealthResponse:
        """``GET /healthz``: the database, the webhook secret and the inbox backlog."""
        return await self._send(Call("GET", "/healthz", s.HealthResponse))

    async def get_catalog(self) -> s.CatalogResponse:
        """``GET /v1/catalog``: units, packages and plans."""
        return await self._send(Call("GET", "/v1/catalog", s.CatalogResponse))

    # --- accounts ------------------------------------------------------------------------------

    def list_accounts(
        self,
        *,
        email: str | None = None,
        stripe_customer_id: str | None = None,
        query: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncIterator[s.AccountResponse]:
        """``GET /v1/accounts`` (admin token): accounts newest first, every page; ``email``
        (ignoring case), ``stripe_customer_id``, or ``query`` (an id prefix, an e-mail or a
        Stripe customer id) narrow it."""
        params: dict[str, Any] = {"email": email, "stripe_customer_id": stripe_customer_id}
        params |= {"query": query, "limit": limit, "starting_after": starting_after}
        return self._pages(Call("GET", "/v1/accounts", s.ListResponse[s.AccountResponse], params))

    async def get_account(self, account_id: str) -> s.AccountResponse:
        """``GET /v1/accounts/{id}``: the account and its balances, held amounts and debt."""
        return await self._send(Call("GET", P.account(account_id), s.AccountResponse))

    async def update_account(
        self,
        account_id: str,
        *,
        email: str | Unset | None = UNSET,
        stripe_customer_id: str | Unset | None = UNSET,
        metadata: Mapping[str, str] | Unset | None = UNSET,
    ) -> s.AccountResponse:
        """``PUT /v1/accounts/{id}``: create or update; fields left out stay, ``None`` clears."""
        fields = account_fields(email, stripe_customer_id, metadata)
        return await self._send(Call("PUT", P.account(account_id), s.AccountResponse, body=fields))

    def list_grants(
        self,
        account_id: str,
        *,
        live: bool = False,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncIterator[s.GrantResponse]:
        """``GET /v1/accounts/{id}/grants``, newest first, every page (``limit`` per request)."""
        params = {"live": live, "limit": limit, "starting_after": starting_after}
        return self._pages(
            Call("GET", P.account(account_id, "grants"), s.ListResponse[s.GrantResponse], params)
        )

    def list_transactions(
        self, account_id: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncIterator[s.TransactionResponse]:
        """``GET /v1/accounts/{id}/transactions``, newest first, every page."""
        params = {"limit": limit, "starting_after": starting_after}
        model = s.ListResponse[s.TransactionResponse]
        return self._pages(Call("GET", P.account(account_id, "transactions"), model, params))

    def list_holds(
        self,
        account_id: str,
        *,
        status: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncIterator[s.HoldResponse]:
        """``GET /v1/accounts/{id}/holds``, newest first, every page; ``status`` (active,
        captured, released, expired) as the holds stand now."""
        params = {"status": status, "limit": limit, "starting_after": starting_after}
        return self._pages(
            Call("GET", P.account(account_id, "holds"), s.ListResponse[s.HoldResponse], params)
        )

    async def create_grant(
        self,
        account_id: str,
        unit: str,
        amount: int,
        *,
        reason: str,
        expires_at: int | None = None,
        priority: int | None = None,
        kind: Literal["manual", "promotion"] | None = None,
        operator: str | None = None,
        idempotency_key: str | None = None,
    ) -> s.GrantCreatedResponse:
        """``POST /v1/accounts/{id}/grants`` (admin token): a manual grant or a promotion."""
        fields = body(
            unit=unit,
            amount=amount,
            reason=reason,
            expires_at=expires_at,
            priority=priority,
            kind=kind,
            operator=operator,
        )
        return await self._send(
            Call(
                "POST",
                P.account(account_id, "grants"),
                s.GrantCreatedResponse,
                body=fields,
                idempotency_key=moving(idempotency_key),
            )
        )

    async def create_adjustment(
        self,
        account_id: str,
        unit: str,
        amount: int,
        *,
        reason: str,
        operator: str | None = None,
        idempotency_key: str | None = None,
    ) -> s.AdjustmentResponse:
        """``POST /v1/accounts/{id}/adjustments`` (admin token): take ``amount`` away, with a
        reason; ``InsufficientBalance`` (402) when the available balance is short."""
        return await self._send(
            Call(
                "POST",
                P.account(account_id, "adjustments"),
                s.AdjustmentResponse,
                body=body(unit=unit, amount=amount, reason=reason, operator=operator),
                idempotency_key=moving(idempotency_key),
            )
        )

    # --- spending ------------------------------------------------------------------------------

    async def spend(
        self,
        account_id: str,
        unit: str,
        amount: int,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> s.SpendResponse:
        """``POST /v1/accounts/{id}/spend``; ``InsufficientBalance`` (402) when short."""
        return await self._send(
            Call(
                "POST",
                P.account(account_id, "spend"),
                s.SpendResponse,
                body=body(unit=unit, amount=amount, reason=reason),
                idempotency_key=moving(idempotency_key),
            )
        )

    async def create_hold(
        self,
        account_id: str,
        unit: str,
        amount: int,
        *,
        reason: str | None = None,
        ttl_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> s.HoldResponse:
        """``POST /v1/accounts/{id}/holds``: reserve ``amount`` until captured or released."""
        return await self._send(
            Call(
                "POST",
                P.account(account_id, "holds"),
                s.HoldResponse,
                body=body(unit=unit, amount=amount, reason=reason, ttl_seconds=ttl_seconds),
                idempotency_key=moving(idempotency_key),
            )
        )

    async def get_hold(self, hold_id: str) -> s.HoldResponse:
        """``GET /v1/holds/{id}``."""
        return await self._send(Call("GET", P.hold(hold_id), s.HoldResponse))

    async def capture_hold(
        self, hold_id: str, *, amount: int | None = None, idempotency_key: str | None = None
    ) -> s.HoldResponse:
        """``POST /v1/holds/{id}/capture``: all of it, or ``amount`` and release the rest."""
        return await self._send(
            Call(
                "POST",
                P.hold(hold_id, "capture"),
                s.HoldResponse,
                body=body(amount=amount),
                idempotency_key=moving(idempotency_key),
            )
        )

    async def release_hold(
        self, hold_id: str, *, idempotency_key: str | None = None
    ) -> s.HoldResponse:
        """``POST /v1/holds/{id}/release``: give the whole hold back."""
        return await self._send(
            Call(
                "POST",
                P.hold(hold_id, "release"),
                s.HoldResponse,
                idempotency_key=moving(idempotency_key),
            )
        )

    # --- checkout ------------------------------------------------------------------------------

    async def create_checkout_session(
        self,
        account_id: str,
        *,
        package: str | None = None,
        plan: str | None = None,
        amount: int | None = None,
        success_url: str | None = None,
        cancel_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> s.CheckoutSessionResponse:
        """``POST /v1/checkout/sessions``: a Stripe Checkout for a package (or a plan); send the
        customer to ``.url``. ``success_url`` may carry ``{CHECKOUT_SESSION_ID}``."""
        fields = body(
            account_id=account_id,
            package=package,
            plan=plan,
            amount=amount,
            success_url=success_url,
            cancel_url=cancel_url,
        )
        return await self._send(
            Call(
                "POST",
                "/v1/checkout/sessions",
                s.CheckoutSessionResponse,
                body=fields,
                idempotency_key=moving(idempotency_key),
            )
        )

    async def fulfill_checkout_session(self, session_id: str) -> s.FulfillmentResponse:
        """``POST /v1/checkout/sessions/{id}/fulfill`` (the success page): grants once, whoever
        asks first, the webhook or this call."""
        return await self._send(Call("POST", P.session(session_id), s.FulfillmentResponse))

    # --- subscriptions and entitlements ------------------------------------------------------

    async def get_entitlements(self, account_id: str) -> s.EntitlementsResponse:
        """``GET /v1/accounts/{id}/entitlements``: the plan, features and limits as of now."""
        return await self._send(
            Call("GET", P.account(account_id, "entitlements"), s.EntitlementsResponse)
        )

    async def check(
        self,
        account_id: str,
        *,
        feature: str | None = None,
        limit: str | None = None,
        usage: int | None = None,
        unit: str | None = None,
        amount: int | None = None,
    ) -> s.CheckResponse:
        """``POST /v1/accounts/{id}/check``: allowed, and every reason why not (spends nothing)."""
        fields = body(feature=feature, limit=limit, usage=usage, unit=unit, amount=amount)
        return await self._send(
            Call("POST", P.account(account_id, "check"), s.CheckResponse, body=fields)
        )

    def list_subscriptions(
        self, account_id: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncIterator[s.SubscriptionResponse]:
        """``GET /v1/accounts/{id}/subscriptions``, newest first, every page."""
        params = {"limit": limit, "starting_after": starting_after}
        model = s.ListResponse[s.SubscriptionResponse]
        return self._pages(Call("GET", P.account(account_id, "subscriptions"), model, params))

    async def change_plan(
        self,
        account_id: str,
        plan: str,
        *,
        proration: Literal["create_prorations", "always_invoice", "none"] | None = None,
    ) -> s.SubscriptionResponse:
        """``POST /v1/accounts/{id}/subscription``: move the subscription to ``plan``."""
        return await self._send(
            Call(
                "POST",
                P.account(account_id, "subscription"),
                s.SubscriptionResponse,
                body=body(plan=plan, proration=proration),
            )
        )

    async def cancel_subscription(
        self, account_id: str, *, at_period_end: bool = True
    ) -> s.SubscriptionResponse:
        """``DELETE /v1/accounts/{id}/subscription``: at the period's end, or now."""
        return await self._send(
            Call(
                "DELETE",
                P.account(account_id, "subscription"),
                s.SubscriptionResponse,
                params={"at_period_end": at_period_end},
            )
        )

    async def billing_portal(
        self, account_id: str, *, return_url: str | None = None
    ) -> s.BillingPortalResponse:
        """``POST /v1/accounts/{id}/billing-portal``: a customer-portal URL."""
        return await self._send(
            Call(
                "POST",
                P.account(account_id, "billing-portal"),
                s.BillingPortalResponse,
                body=body(return_url=return_url),
            )
        )

    async def sync_account(self, account_id: str) -> s.SyncResponse:
        """``POST /v1/accounts/{id}/sync``: re-read the account's subscriptions from Stripe."""
        return await self._send(Call("POST", P.account(account_id, "sync"), s.SyncResponse))

    def list_all_subscriptions(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncIterator[s.SubscriptionResponse]:
        """``GET /v1/subscriptions`` (admin token): every subscription billfold keeps."""
        params = {"status": status, "limit": limit, "starting_after": starting_after}
        model = s.ListResponse[s.SubscriptionResponse]
        return self._pages(Call("GET", "/v1/subscriptions", model, params))

    async def sync_all_subscriptions(self) -> s.SyncResponse:
        """``POST /v1/subscriptions/sync`` (admin token): sync every account with Stripe."""
        return await self._send(Call("POST", "/v1/subscriptions/sync", s.SyncResponse))

    # --- operators: events and orders (admin token) -----------------------------------------

    def list_events(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        created: Mapping[str, int] | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncIterator[s.EventResponse]:
        """``GET /v1/events``: the Stripe event inbox, newest received first. ``created`` as
        Stripe's: ``{"gte": t0, "lt": t1}`` (Unix seconds; ``gt``, ``gte``, ``lt``, ``lte``)."""
        params: dict[str, Any] = {"status": status, "type": type, "limit": limit}
        params.update(_core.bounds("created", created))
        params["starting_after"] = starting_after
        return self._pages(Call("GET", "/v1/events", s.ListResponse[s.EventResponse], params))

    async def get_event(self, event_id: str) -> s.EventDetailResponse:
        """``GET /v1/events/{id}``, with the payload and the attempt history."""
        return await self._send(Call("GET", P.event(event_id), s.EventDetailResponse))

    async def get_event_payload(self, event_id: str) -> bytes:
        """``GET /v1/events/{id}/payload``: the body exactly as it was received."""
        call = Call("GET", P.event(event_id, "payload"), BaseModel)
        return (await self._respond(call)).content

    async def retry_event(
        self, event_id: str, *, reason: str | None = None, operator: str | None = None
    ) -> s.EventResponse:
        """``POST /v1/events/{id}/retry``: process a failed or dead event again, now (who and why
        are recorded with the action)."""
        return await self._send(
            Call(
                "POST",
                P.event(event_id, "retry"),
                s.EventResponse,
                body=body(reason=reason, operator=operator),
            )
        )

    async def replay_event(
        self, event_id: str, *, reason: str, operator: str | None = None
    ) -> s.EventResponse:
        """``POST /v1/events/{id}/replay``: process any event again (every effect is keyed, so
        what was done is not done twice); the reason is required and recorded."""
        return await self._send(
            Call(
                "POST",
                P.event(event_id, "replay"),
                s.EventResponse,
                body=body(reason=reason, operator=operator),
            )
        )

    async def needs_attention(self) -> s.AttentionResponse:
        """``GET /v1/attention``: orders billfold could not resolve, failed and dead events."""
        return await self._send(Call("GET", "/v1/attention", s.AttentionResponse))

    def list_operator_actions(
        self,
        *,
        target_type: str | None = None,
        target_id: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncIterator[s.OperatorActionResponse]:
        """``GET /v1/operator-actions``: what operators did, with who and why, newest first."""
        params: dict[str, Any] = {"target_type": target_type, "target_id": target_id}
        params |= {"limit": limit, "starting_after": starting_after}
        return self._pages(
            Call("GET", "/v1/operator-actions", s.ListResponse[s.OperatorActionResponse], params)
        )

    async def dashboard(self, days: int = 7) -> s.DashboardResponse:
        """``GET /v1/dashboard``: the figures of the last ``days`` days (1 to 90)."""
        return await self._send(Call("GET", "/v1/dashboard", s.DashboardResponse, {"days": days}))

    def list_orders(
        self,
        *,
        status: str | None = None,
        account_id: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncIterator[s.OrderResponse]:
        """``GET /v1/orders``, newest first; ``status="needs_attention"`` for the queue."""
        params: dict[str, Any] = {"status": status, "account_id": account_id, "limit": limit}
        params["starting_after"] = starting_after
        return self._pages(Call("GET", "/v1/orders", s.ListResponse[s.OrderResponse], params))

    async def get_order(self, order_id: str) -> s.OrderResponse:
        """``GET /v1/orders/{id}``."""
        return await self._send(Call("GET", P.order(order_id), s.OrderResponse))

    async def resolve_order(
        self,
        order_id: str,
        *,
        account_id: str | None = None,
        package: str | None = None,
        reason: str | None = None,
        operator: str | None = None,
    ) -> s.OrderResponse:
        """``POST /v1/orders/{id}/resolve``: fulfil an order that needs attention (who and why
        are recorded with the action)."""
        return await self._send(
            Call(
                "POST",
                P.order(order_id, "resolve"),
                s.OrderResponse,
                body=body(account_id=account_id, package=package, reason=reason, operator=operator),
            )
        )

    async def explain_balance(
        self, account_id: str, *, unit: str | None = None
    ) -> s.BalanceExplainResponse:
        """``GET /v1/accounts/{id}/balance/explain``: the lots that make up a balance, with their
        provenance and what drew from them, holds, debt and reversals (they sum to the balance)."""
        return await self._send(
            Call(
                "GET",
                P.account(account_id, "balance/explain"),
                s.BalanceExplainResponse,
                {"unit": unit},
            )
        )

    async def create_notification_endpoint(
        self,
        url: str | None = None,
        *,
        types: list[str] | None = None,
        secret: str | None = None,
        rotate: str | None = None,
    ) -> s.NotificationEndpointResponse:
        """``POST /v1/notification-endpoints`` (admin): register an endpoint of the application
        (its ``whsec_`` secret is answered once), or ``rotate=<endpoint id>`` for a new secret."""
        fields = body(url=url, types=types, secret=secret, rotate=rotate)
        return await self._send(
            Call("POST", "/v1/notification-endpoints", s.NotificationEndpointResponse, body=fields)
        )

    def list_notification_endpoints(self) -> AsyncIterator[s.NotificationEndpointResponse]:
        """``GET /v1/notification-endpoints`` (admin): the configured and registered endpoints."""
        return self._pages(
            Call(
                "GET",
                "/v1/notification-endpoints",
                s.ListResponse[s.NotificationEndpointResponse],
            )
        )

    def list_notifications(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        account_id: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncIterator[s.NotificationResponse]:
        """``GET /v1/notifications`` (admin): the outbox, newest first, every page."""
        params: dict[str, Any] = {"status": status, "type": type, "account_id": account_id}
        params.update(limit=limit, starting_after=starting_after)
        return self._pages(
            Call("GET", "/v1/notifications", s.ListResponse[s.NotificationResponse], params)
        )

    async def get_notification(self, notification_id: str) -> s.NotificationResponse:
        """``GET /v1/notifications/{id}`` (admin), with the body billfold POSTs."""
        return await self._send(
            Call("GET", P.notification(notification_id), s.NotificationResponse)
        )

    async def redeliver_notification(self, notification_id: str) -> s.NotificationResponse:
        """``POST /v1/notifications/{id}/redeliver`` (admin): send it again, from the first
        attempt of the retry schedule."""
        return await self._send(
            Call("POST", P.notification(notification_id, "redeliver"), s.NotificationResponse)
        )

    async def start_reconciliation(
        self, *, since: int | None = None, until: int | None = None
    ) -> s.ReconciliationRunCreated:
        """``POST /v1/reconciliation/runs`` (admin): start a run against Stripe (or get the one
        already running); read it with :meth:`get_reconciliation_run`."""
        return await self._send(
            Call(
                "POST",
                "/v1/reconciliation/runs",
                s.ReconciliationRunCreated,
                body=body(since=since, until=until),
            )
        )

    def list_reconciliation_runs(
        self, *, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncIterator[s.ReconciliationRunResponse]:
        """``GET /v1/reconciliation/runs`` (admin), newest first, every page."""
        params: dict[str, Any] = {"limit": limit, "starting_after": starting_after}
        return self._pages(
            Call(
                "GET",
                "/v1/reconciliation/runs",
                s.ListResponse[s.ReconciliationRunResponse],
                params,
            )
        )

    async def get_reconciliation_run(self, run_id: str) -> s.ReconciliationRunResponse:
        """``GET /v1/reconciliation/runs/{id}`` (admin): status, drift per class and items."""
        return await self._send(
            Call("GET", P.reconciliation_run(run_id), s.ReconciliationRunResponse)
        )

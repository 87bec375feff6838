"""``billfold.Billfold``: the HTTP API's operations in-process, for a Python application.

    from billfold import Billfold

    with Billfold() as wallet:  # settings from BILLFOLD_* variables, or Billfold(settings)
        wallet.grant("user_123", "credits", 100, reason="welcome bonus")
        wallet.spend("user_123", "credits", 20, idempotency_key="job-42")
        wallet.balances("user_123")  # {"credits": 80, ...}
        wallet.entitlements("user_123").features  # {"auto_trading": True, ...}
        wallet.check("user_123", feature="auto_trading").allowed

Idempotency keys share the namespace of the server API keys: a spend made here with key ``k`` and
retried over HTTP with ``Idempotency-Key: k`` (or the other way round) is written once. Without a
key, every call is new. Errors are billfold's own (``billfold.domain.errors``):
``InsufficientBalance`` carries ``available``; ``IdempotencyConflict`` is a reused key.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billfold.bootstrap import Services, build
from billfold.domain import errors
from billfold.domain import ledger as rules
from billfold.domain.entitlements import Check, Entitlements
from billfold.domain.ledger import GrantKind
from billfold.domain.records import Page
from billfold.domain.subscriptions import SubscriptionRecord
from billfold.service import keys
from billfold.service.billing import (
    Cancel,
    ChangePlan,
    CheckRequest,
    Proration,
    SyncReport,
)
from billfold.service.checkout import (
    CheckoutSession,
    CreateCheckoutSession,
    FulfillCheckoutSession,
    Fulfillment,
)
from billfold.service.explain import Explanation
from billfold.service.ledger import (
    Capture,
    Grant,
    GrantResult,
    Hold,
    HoldResult,
    Release,
    Spend,
    SpendResult,
)
from billfold.settings import Settings, load_settings

if TYPE_CHECKING:
    from billfold.service.ports import StripeGateway

__all__ = [
    "Billfold",
    "Check",
    "CheckoutSession",
    "Entitlements",
    "Explanation",
    "Fulfillment",
    "GrantResult",
    "HoldResult",
    "SpendResult",
    "SubscriptionRecord",
    "SyncReport",
]


class Billfold:
    """billfold in-process: the same database, catalog and rules as ``billfold serve``.

    ``settings`` default to the ``BILLFOLD_*`` environment. Close it (or use ``with``) to release
    the database connections.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], int] | None = None,
        stripe: StripeGateway | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.services: Services = build(self.settings, clock=clock, stripe=stripe)

    # --- reads ---------------------------------------------------------------------------------

    def balances(self, account_id: str) -> dict[str, int]:
        """What the account can spend now, per unit (every catalog unit; 0 where none)."""
        rules.check_account_id(account_id)
        return self.services.views.balances(account_id).available

    def explain(self, account_id: str, unit: str | None = None) -> Explanation:
        """What the balance in ``unit`` (default: the catalog's first unit) is made of: its lots
        with their provenance and draws, the holds and debt against it, and what refunds and
        disputes took back; ``balance == sum(lot.remaining for lot in lots) - held - debt``.
        An account billfold never saw explains an empty balance."""
        return self.services.views.explain(account_id, unit, must_exist=False)

    def entitlements(self, account_id: str) -> Entitlements:
        """What the account may do now: plan, ``source`` (subscription, grace or default),
        features and limits. An account billfold never saw has the default plan."""
        return self.services.billing.entitlements(account_id)

    def check(
        self,
        account_id: str,
        *,
        feature: str | None = None,
        limit: str | None = None,
        usage: int | None = None,
        unit: str | None = None,
        amount: int | None = None,
    ) -> Check:
        """May the account use ``feature``, add one more against ``limit`` at ``usage``, and
        afford ``amount`` of ``unit``? ``allowed`` and every reason it may not."""
        return self.services.billing.check(
            CheckRequest(
                account_id=account_id,
                feature=feature,
                limit=limit,
                usage=usage,
                unit=unit,
                amount=amount,
            )
        )

    def subscriptions(
        self, account_id: str, *, limit: int = 10, starting_after: str | None = None
    ) -> Page[SubscriptionRecord]:
        """The account's subscriptions as billfold keeps them, newest first."""
        return self.services.billing.subscriptions(
            account_id, limit=limit, starting_after=starting_after
        )

    # --- subscriptions, through Stripe ---------------------------------------------------------

    def change_plan(
        self, account_id: str, plan: str, *, proration: Proration = "create_prorations"
    ) -> SubscriptionRecord:
        """Move the account's subscription to ``plan`` in Stripe (``proration`` is Stripe's
        ``proration_behavior``); features and limits change at once."""
        return self.services.billing.change_plan(
            ChangePlan(account_id=account_id, plan=plan, proration=proration)
        )

    def cancel(self, account_id: str, *, at_period_end: bool = True) -> SubscriptionRecord:
        """Cancel the account's subscription at the end of its paid period (or now)."""
        return self.services.billing.cancel(
            Cancel(account_id=account_id, at_period_end=at_period_end)
        )

    def billing_portal_url(self, account_id: str, *, return_url: str | None = None) -> str:
        """A Stripe customer-portal session for the account's customer."""
        return self.services.billing.portal_url(account_id, return_url)

    def sync(self, account_id: str | None = None) -> SyncReport:
        """Re-read subscriptions and latest invoices from Stripe and repair billfold's copy: one
        account's, or (without ``account_id``) every account with a Stripe customer."""
        if account_id is None:
            return self.services.billing.sync_all()
        return self.services.billing.sync(account_id)

    # --- moving value --------------------------------------------------------------------------

    def spend(
        self,
        account_id: str,
        unit: str,
        amount: int,
        *,
        idempotency_key: str | None = None,
        reason: str | None = None,
    ) -> SpendResult:
        """Spend now; raises ``errors.InsufficientBalance`` (and takes nothing) when short."""
        return self.services.ledger.spend(
            Spend(
                key=self._key(idempotency_key),
                account_id=account_id,
                unit=unit,
                amount=amount,
                reason=reason,
            )
        )

    def grant(
        self,
        account_id: str,
        unit: str,
        amount: int,
        *,
        reason: str,
        idempotency_key: str | None = None,
        expires_at: int | None = None,
        priority: int = 0,
        kind: GrantKind = "manual",
    ) -> GrantResult:
        """A manual grant (``kind="promotion"`` for a promotion); ``reason`` is recorded."""
        rules.check_text(reason, what="reason", required=True)
        return self.services.ledger.grant(
            Grant(
                key=self._key(idempotency_key),
                account_id=account_id,
                unit=unit,
                amount=amount,
                reason=reason,
                expires_at=expires_at,
                priority=priority,
                kind=kind,
                source=rules.PROMOTIONS if kind == "promotion" else rules.ADJUSTMENTS,
            )
        )

    def hold(
        self,
        account_id: str,
        unit: str,
        amount: int,
        *,
        ttl_seconds: int | None = None,
        idempotency_key: str | None = None,
        reason: str | None = None,
    ) -> HoldResult:
        """Reserve ``amount``; it releases itself after ``ttl_seconds`` (default from settings)."""
        return self.services.ledger.hold(
            Hold(
                key=self._key(idempotency_key),
                account_id=account_id,
                unit=unit,
                amount=amount,
                ttl_seconds=ttl_seconds or self.settings.hold_ttl_seconds,
                reason=reason,
            )
        )

    def capture(
        self, hold_id: str, amount: int | None = None, *, idempotency_key: str | None = None
    ) -> HoldResult:
        """Spend the hold (or ``amount`` of it, releasing the rest)."""
        return self.services.ledger.capture(
            Capture(key=self._key(idempotency_key), hold_id=hold_id, amount=amount)
        )

    def release(self, hold_id: str, *, idempotency_key: str | None = None) -> HoldResult:
        return self.services.ledger.release(
            Release(key=self._key(idempotency_key), hold_id=hold_id)
        )

    # --- checkout ------------------------------------------------------------------------------

    def create_checkout_session(
        self,
        account_id: str,
        package: str | None = None,
        *,
        plan: str | None = None,
        success_url: str,
        cancel_url: str | None = None,
        amount: int | None = None,
        idempotency_key: str | None = None,
    ) -> CheckoutSession:
        """A Stripe Checkout Session buying ``package`` (or subscribing to ``plan``); send the
        customer to its ``url``. The same ``idempotency_key`` again gives the same session."""
        return self.services.checkout.create(
            CreateCheckoutSession(
                account_id=account_id,
                package=package,
                plan=plan,
                success_url=success_url,
                cancel_url=cancel_url,
                amount=amount,
                idempotency_key=idempotency_key,
            )
        )

    def fulfill_checkout(self, session_id: str) -> Fulfillment:
        """The success page's call: fulfil the session's order now if it is paid (at most once,
        whatever the webhook does), and return its status and the account's balances."""
        return self.services.checkout.fulfil(FulfillCheckoutSession(session_id=session_id))

    # --- mounting ------------------------------------------------------------------------------

    def webhook_app(self) -> Starlette:
        """An ASGI app serving only ``POST /webhooks/stripe``, to mount in the application's app.

        It verifies, stores and processes events exactly as ``billfold serve`` does. Events that
        need a call to Stripe wait for a worker (``billfold worker``).
        """
        from billfold.entrypoints.http import errors as http_errors
        from billfold.entrypoints.http import webhooks

        async def answer(_request: Request, exc: Exception) -> Response:
            assert isinstance(exc, errors.BillfoldError)
            return http_errors.response_for(exc)

        app = Starlette(
            routes=[Route("/webhooks/stripe", webhooks.stripe_webhook, methods=["POST"])],
            exception_handlers={errors.BillfoldError: answer},
        )
        app.state.services = self.services
        return app

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        self.services.close()

    def __enter__(self) -> Billfold:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _key(self, idempotency_key: str | None) -> str:
        return keys.ledger_key(keys.APPLICATION, idempotency_key)

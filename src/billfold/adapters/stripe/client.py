"""The Stripe gateway: the official ``stripe`` SDK, and nothing else talks to Stripe.

SDK errors are translated at this boundary into ``errors.StripeUnavailable`` (network trouble,
Stripe's 5xx, timeouts, bad keys) or ``errors.NotFound`` (an id Stripe does not know), keeping the
SDK's message and never the API key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import stripe

from billfold.adapters.stripe import translate, webhooks
from billfold.domain import errors, facts
from billfold.domain.checkout import CheckoutRequest, CreatedSession, RetrievedSession
from billfold.domain.orders import LineItem
from billfold.domain.records import InboundEvent

MAX_EVENT_TYPES = 20
"""Stripe's limit on ``types`` in one list request."""


class SdkStripeGateway:
    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        timeout: float = 10.0,
        max_network_retries: int = 1,
    ) -> None:
        addresses: Any = {"api": api_base.rstrip("/")} if api_base else None
        self._http = stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True)
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=addresses,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    def close(self) -> None:
        self._http.close()

    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        with _translated("list the checkout session's line items"):
            page = self.client.v1.checkout.sessions.line_items.list(
                session_id, params={"limit": 100}
            )
            items = []
            for obj in page.auto_paging_iter():
                item = obj.to_dict()
                price = item.get("price")
                price_id = price.get("id") if isinstance(price, Mapping) else price
                items.append(
                    LineItem(
                        price_id=price_id if isinstance(price_id, str) else None,
                        quantity=int(item.get("quantity") or 1),
                        amount_total=int(item.get("amount_total") or 0),
                        currency=str(item.get("currency") or ""),
                    )
                )
            return items

    def list_refunds(self, charge_id: str) -> list[facts.RefundInfo]:
        with _translated("list the charge's refunds"):
            page = self.client.v1.refunds.list(params={"charge": charge_id, "limit": 100})
            found = [translate.refund_info(r.to_dict()) for r in page.auto_paging_iter()]
        return [r for r in found if r is not None]

    def retrieve_checkout_session(self, session_id: str) -> RetrievedSession:
        with _translated("retrieve the checkout session"):
            session = self.client.v1.checkout.sessions.retrieve(session_id).to_dict()
        status = session.get("status")
        return RetrievedSession(
            session_id=session_id,
            status=status if isinstance(status, str) else None,
            fact=translate.read_session(session),
        )

    def create_checkout_session(
        self, request: CheckoutRequest, *, idempotency_key: str | None = None
    ) -> CreatedSession:
        with _translated("create a checkout session"):
            options: stripe.RequestOptions = {}
            if idempotency_key is not None:
                options["idempotency_key"] = idempotency_key
            session = self.client.v1.checkout.sessions.create(
                params=checkout_params(request),
                options=options,
            ).to_dict()
        session_id, url = session.get("id"), session.get("url")
        if not isinstance(session_id, str) or not isinstance(url, str):
            raise errors.StripeUnavailable(
                "Stripe created a checkout session without an id or url."
            )
        return CreatedSession(id=session_id, url=url)

    def list_events(self, *, created_gte: int, types: Sequence[str]) -> Iterator[InboundEvent]:
        """Stripe's events since ``created_gte``, oldest first. Stripe filters by at most 20
        types per request, so more types are asked for in groups and merged."""
        wanted = sorted(set(types))
        groups = [wanted[i : i + MAX_EVENT_TYPES] for i in range(0, len(wanted), MAX_EVENT_TYPES)]
        events: dict[str, dict[str, Any]] = {}
        with _translated("list events"):
            for group in groups or [[]]:
                params: dict[str, Any] = {"created": {"gte": created_gte}, "limit": 100}
                if group:
                    params["types"] = group
                page = self.client.v1.events.list(params=params)
                for found in page.auto_paging_iter():
                    event = found.to_dict()
                    events[str(event.get("id"))] = event
        # Stripe lists newest first; reconciliation wants them in the order they happened.
        for event in sorted(events.values(), key=lambda e: (e.get("created") or 0, str(e["id"]))):
            payload = json.dumps(event, separators=(",", ":"))
            try:
                yield webhooks.envelope(event, payload)
            except errors.InvalidEvent:  # pragma: no cover - Stripe lists only events
                continue


def checkout_params(request: CheckoutRequest) -> dict[str, Any]:
    """The Checkout Session to create: payment mode, one line item, billfold's metadata."""
    if request.stripe_price_id is not None:
        line_item: dict[str, Any] = {"price": request.stripe_price_id, "quantity": 1}
    else:
        line_item = {
            "quantity": 1,
            "price_data": {
                "currency": request.currency,
                "unit_amount": request.unit_amount,
                "product_data": {"name": request.title},
            },
        }
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [line_item],
        "client_reference_id": request.account_id,
        "metadata": {
            translate.ACCOUNT_METADATA_KEY: request.account_id,
            translate.PACKAGE_METADATA_KEY: request.package_id,
        },
        "success_url": request.success_url,
    }
    # No payment_intent_data.metadata: a payment intent carrying billfold's metadata is fulfilled
    # under its own key (pi:...), and this payment must have exactly one, checkout:<session id>.
    if request.cancel_url is not None:
        params["cancel_url"] = request.cancel_url
    if request.customer_id:
        params["customer"] = request.customer_id
    elif request.customer_email:
        params["customer_email"] = request.customer_email
    return params


class _translated:
    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, stripe.StripeError):
            return
        message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
        if isinstance(exc, stripe.IdempotencyError):
            raise errors.IdempotencyConflict(
                f"Stripe refused to {self.doing}: this Idempotency-Key was already used with "
                "other parameters; use a new key for a new request."
            ) from exc
        if isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404:
            raise errors.NotFound(f"Stripe does not know this object: {message}") from exc
        if isinstance(exc, stripe.InvalidRequestError):
            raise errors.StripeUnavailable(
                f"Stripe refused to {self.doing}: {message}", status=exc.http_status
            ) from exc
        raise errors.StripeUnavailable(
            f"Could not {self.doing}: Stripe did not answer properly ({type(exc).__name__}: "
            f"{message}). Try again.",
        ) from exc

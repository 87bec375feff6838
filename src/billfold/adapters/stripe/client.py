"""The Stripe gateway: the official ``stripe`` SDK, and nothing else talks to Stripe.

SDK errors are translated at this boundary into ``errors.StripeUnavailable`` (network trouble,
Stripe's 5xx, timeouts, bad keys) or ``errors.NotFound`` (an id Stripe does not know), keeping the
SDK's message and never the API key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import stripe

from billfold.adapters.stripe import translate, webhooks
from billfold.adapters.stripe.transport import PooledHTTPClient
from billfold.domain import errors, facts
from billfold.domain import reconciliation as rc
from billfold.domain.catalog import Plan
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
        self._http = PooledHTTPClient(timeout)
        self._plan_prices: dict[str, str] = {}
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=addresses,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    def close(self) -> None:
        self._http.close()

    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        """The session's line items, every page. The worker asks this for each paid session
        without billfold metadata, so the pages are read as the SDK's parsed JSON (its raw
        request: the same headers, retries and errors) without building a ``StripeObject`` for
        each: 0.25 ms of CPU less per call (``transport.py``'s measurement)."""
        path = f"/v1/checkout/sessions/{quote(session_id, safe='')}/line_items"
        params: dict[str, Any] = {"limit": 100}
        items: list[LineItem] = []
        with _translated("list the checkout session's line items"):
            while True:
                page = self.client.raw_request("get", path, **params).data
                data = page.get("data") if isinstance(page, Mapping) else None
                if not isinstance(data, list):
                    raise stripe.APIError("Stripe answered a line item list without its data")
                items.extend(_line_item(item) for item in data if isinstance(item, Mapping))
                if not page.get("has_more"):
                    return items
                last = data[-1].get("id") if data and isinstance(data[-1], Mapping) else None
                if not isinstance(last, str):  # never a part of the items taken for the whole
                    raise stripe.APIError("Stripe said more line items follow but gave no cursor")
                params["starting_after"] = last

    # --- subscriptions (the StripeSubscriptions port) ---

    def retrieve_subscription(self, subscription_id: str) -> facts.SubscriptionChanged:
        with _translated("retrieve the subscription"):
            found = self.client.v1.subscriptions.retrieve(subscription_id).to_dict()
        return _subscription(found, self._now())

    def list_subscriptions(self, customer_id: str) -> list[facts.SubscriptionChanged]:
        with _translated("list the customer's subscriptions"):
            page = self.client.v1.subscriptions.list(
                params={"customer": customer_id, "status": "all", "limit": 100}
            )
            found = [s.to_dict() for s in page.auto_paging_iter()]
        now = self._now()
        return [_subscription(s, now) for s in found]

    def list_paid_invoices(self, subscription_id: str, *, limit: int) -> list[facts.InvoicePaid]:
        with _translated("list the subscription's invoices"):
            page = self.client.v1.invoices.list(
                params={
                    "subscription": subscription_id,
                    "status": "paid",
                    "limit": max(1, min(limit, 100)),
                    "expand": ["data.payments"],
                }
            )
            found = [i.to_dict() for i in page.data]
        out = []
        for invoice in found:
            invoice = self._with_all_lines(invoice)
            fact = translate.invoice_fact(invoice, event_created=self._now())
            if isinstance(fact, facts.InvoicePaid) and fact.paid:
                out.append(fact)
        return out

    def invoice_payment_intents(self, invoice_id: str) -> list[str]:
        with _translated("list the invoice's payments"):
            page = self.client.v1.invoice_payments.list(
                params={"invoice": invoice_id, "limit": 100}
            )
            found = [p.to_dict() for p in page.auto_paging_iter()]
        intents = []
        for payment in found:
            inner = payment.get("payment")
            pi = _id_of(inner.get("payment_intent")) if isinstance(inner, Mapping) else None
            if pi is not None and pi not in intents:
                intents.append(pi)
        return intents

    def price_lookup_keys(self, price_ids: Sequence[str]) -> dict[str, str | None]:
        keys: dict[str, str | None] = {}
        with _translated("retrieve the invoice's prices"):
            for price_id in price_ids:
                found = self.client.v1.prices.retrieve(price_id).to_dict()
                key = found.get("lookup_key")
                keys[price_id] = key if isinstance(key, str) else None
        return keys

    def plan_price(self, plan: Plan) -> str:
        if plan.stripe_price_ids:
            return plan.stripe_price_ids[0]
        if plan.price is None or plan.currency is None or plan.interval is None:
            raise errors.ConfigurationError(f"plans.{plan.id} has no price to sell it with.")
        cached = self._plan_prices.get(plan.id)
        if cached is not None:
            return cached
        with _translated("find the plan's price"):
            listed = self.client.v1.prices.list(
                params={"lookup_keys": [plan.lookup_key], "active": True, "limit": 10}
            ).data
            matching = [
                found
                for found in (p.to_dict() for p in listed)
                if found.get("unit_amount") == plan.price and found.get("currency") == plan.currency
            ]
            if matching:
                price_id = str(matching[0]["id"])
            else:
                created = self.client.v1.prices.create(
                    params={
                        "unit_amount": plan.price,
                        "currency": plan.currency,
                        "recurring": {"interval": plan.interval},
                        "product_data": {"name": plan.title or plan.id},
                        "lookup_key": plan.lookup_key,
                        "transfer_lookup_key": True,
                    },
                    options={"idempotency_key": f"billfold-plan-{plan.lookup_key}-{plan.price}"},
                )
                price_id = str(created.id)
        self._plan_prices[plan.id] = price_id
        return price_id

    def change_plan(
        self, subscription_id: str, *, item_id: str, price_id: str, proration: str
    ) -> facts.SubscriptionChanged:
        with _translated("change the subscription's plan"):
            found = self.client.v1.subscriptions.update(
                subscription_id,
                params={
                    "items": [{"id": item_id, "price": price_id}],
                    "proration_behavior": proration,
                },
            ).to_dict()
        return _subscription(found, self._now())

    def cancel(self, subscription_id: str, *, at_period_end: bool) -> facts.SubscriptionChanged:
        with _translated("cancel the subscription"):
            if at_period_end:
                found = self.client.v1.subscriptions.update(
                    subscription_id, params={"cancel_at_period_end": True}
                ).to_dict()
            else:
                found = self.client.v1.subscriptions.cancel(subscription_id).to_dict()
        return _subscription(found, self._now())

    def retrieve_invoice(self, invoice_id: str) -> facts.InvoicePaid:
        with _translated("retrieve the invoice"):
            found = self.client.v1.invoices.retrieve(
                invoice_id, params={"expand": ["payments"]}
            ).to_dict()
        found = self._with_all_lines(found)
        fact = translate.invoice_fact(found, event_created=self._now())
        if not isinstance(fact, facts.InvoicePaid):
            reason = fact.reason if isinstance(fact, facts.Ignored) else type(fact).__name__
            raise errors.StripeUnavailable(
                f"Stripe answered an invoice billfold cannot read: {reason}"
            )
        return fact

    def _with_all_lines(self, invoice: dict[str, Any]) -> dict[str, Any]:
        """The invoice with every line: Stripe embeds the first few and says ``has_more``."""
        lines = invoice.get("lines")
        if not isinstance(lines, Mapping) or not lines.get("has_more"):
            return invoice
        with _translated("list the invoice's lines"):
            page = self.client.v1.invoices.line_items.list(
                str(invoice["id"]), params={"limit": 100}
            )
            every = [line.to_dict() for line in page.auto_paging_iter()]
        return {**invoice, "lines": {**lines, "data": every, "has_more": False}}

    def portal_url(self, customer_id: str, *, return_url: str | None) -> str:
        params: dict[str, Any] = {"customer": customer_id}
        if return_url is not None:
            params["return_url"] = return_url
        with _translated("open the customer portal"):
            session = self.client.v1.billing_portal.sessions.create(params=params).to_dict()
        url = session.get("url")
        if not isinstance(url, str):
            raise errors.StripeUnavailable("Stripe opened a portal session without a url.")
        return url

    @staticmethod
    def _now() -> int:
        return int(time.time())

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

    # --- reconciliation (the StripeLedger port) ---

    def _listed(
        self, doing: str, resource: Any, since: int, until: int, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Every object of a list whose ``created`` is in ``[since, until]``, page after page."""
        with _translated(doing):
            page = resource.list(
                params={"created": {"gte": since, "lte": until}, "limit": 100, **params}
            )
            for found in page.auto_paging_iter():
                yield found.to_dict()

    def paid_checkout_sessions(self, *, since: int, until: int) -> Iterator[rc.StripeSession]:
        sessions = self.client.v1.checkout.sessions
        for session in self._listed("list checkout sessions", sessions, since, until):
            if session.get("mode") != "payment" or session.get("status") != "complete":
                continue
            if session.get("payment_status") not in ("paid", "no_payment_required"):
                continue
            yield rc.StripeSession(
                id=str(session["id"]),
                payment_intent_id=_id_of(session.get("payment_intent")),
                amount=_int(session.get("amount_total")),
                currency=str(session.get("currency") or ""),
                created=_int(session.get("created")),
            )

    def paid_invoices(self, *, since: int, until: int) -> Iterator[rc.StripeInvoice]:
        invoices = self.client.v1.invoices
        for found in self._listed(
            "list invoices", invoices, since, until, status="paid", expand=["data.payments"]
        ):
            fact = translate.invoice_fact(found, event_created=self._now())
            if not isinstance(fact, facts.InvoicePaid) or not fact.paid:
                continue
            if fact.subscription_id is None and fact.metadata_package is None:
                continue  # not billfold's to grant
            yield rc.StripeInvoice(
                id=fact.invoice_id,
                subscription_id=fact.subscription_id,
                payment_intent_ids=fact.payment_intent_ids,
                amount=fact.amount_paid,
                currency=fact.currency,
                created=fact.created,
            )

    def refunds(self, *, since: int, until: int) -> Iterator[rc.StripeReversal]:
        for refund in self._listed("list refunds", self.client.v1.refunds, since, until):
            yield _reversal("refund", refund)

    def disputes(self, *, since: int, until: int) -> Iterator[rc.StripeReversal]:
        for dispute in self._listed("list disputes", self.client.v1.disputes, since, until):
            yield _reversal("dispute", dispute)

    def subscription_states(self) -> Iterator[rc.StripeSubscriptionState]:
        with _translated("list subscriptions"):
            page = self.client.v1.subscriptions.list(params={"status": "all", "limit": 100})
            for found in page.auto_paging_iter():
                sub = found.to_dict()
                yield rc.StripeSubscriptionState(
                    id=str(sub["id"]),
                    customer_id=_id_of(sub.get("customer")),
                    status=str(sub.get("status") or ""),
                    created=_int(sub.get("created")),
                )

    def payment(self, kind: str, stripe_id: str) -> rc.StripePayment | None:
        try:
            with _translated("read the payment behind an order"):
                if kind == "checkout":
                    obj = self.client.v1.checkout.sessions.retrieve(stripe_id).to_dict()
                    paid = obj.get("status") == "complete" and obj.get("payment_status") in (
                        "paid",
                        "no_payment_required",
                    )
                    amount = obj.get("amount_total")
                elif kind == "invoice":
                    obj = self.client.v1.invoices.retrieve(stripe_id).to_dict()
                    paid, amount = obj.get("status") == "paid", obj.get("amount_paid")
                else:
                    obj = self.client.v1.payment_intents.retrieve(stripe_id).to_dict()
                    paid, amount = obj.get("status") == "succeeded", obj.get("amount_received")
        except errors.NotFound:
            return None
        currency = obj.get("currency")
        return rc.StripePayment(
            id=stripe_id,
            paid=paid,
            amount=amount if isinstance(amount, int) else None,
            currency=currency if isinstance(currency, str) else None,
        )

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
            payload = json.dumps(event, separators=(",", ":"), default=_wire)
            try:
                yield webhooks.envelope(event, payload)
            except errors.InvalidEvent:  # pragma: no cover - Stripe lists only events
                continue


def _line_item(item: Mapping[str, Any]) -> LineItem:
    price = item.get("price")
    price_id = price.get("id") if isinstance(price, Mapping) else price
    return LineItem(
        price_id=price_id if isinstance(price_id, str) else None,
        quantity=int(item.get("quantity") or 1),
        amount_total=int(item.get("amount_total") or 0),
        currency=str(item.get("currency") or ""),
    )


def _wire(value: object) -> object:
    """Stripe's decimal strings (``unit_amount_decimal``), which the SDK reads as Decimal, as
    Stripe sends them: strings."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _id_of(value: object) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _reversal(kind: rc.ReversalSeenKind, obj: Mapping[str, Any]) -> rc.StripeReversal:
    return rc.StripeReversal(
        kind=kind,
        id=str(obj["id"]),
        charge_id=_id_of(obj.get("charge")),
        payment_intent_id=_id_of(obj.get("payment_intent")),
        amount=_int(obj.get("amount")),
        currency=str(obj.get("currency") or ""),
        status=str(obj.get("status") or ""),
        created=_int(obj.get("created")),
    )


def _subscription(found: Mapping[str, Any], now: int) -> facts.SubscriptionChanged:
    fact = translate.subscription_fact(found, event_created=now)
    if not isinstance(fact, facts.SubscriptionChanged):
        reason = fact.reason if isinstance(fact, facts.Ignored) else type(fact).__name__
        raise errors.StripeUnavailable(
            f"Stripe answered a subscription billfold cannot read: {reason}"
        )
    return fact


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
    if request.plan_id is not None:
        # Every later invoice carries the subscription's metadata (a snapshot taken at
        # finalization): the account is known even when invoice.paid arrives first.
        metadata = {
            translate.ACCOUNT_METADATA_KEY: request.account_id,
            translate.PLAN_METADATA_KEY: request.plan_id,
        }
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [line_item],
            "client_reference_id": request.account_id,
            "metadata": metadata,
            "subscription_data": {"metadata": dict(metadata)},
            "success_url": request.success_url,
        }
    else:
        params = {
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

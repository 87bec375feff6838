"""Callers of the application API (server key, user tokens, admin) and a Stripe gateway fake."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi.testclient import TestClient

from billfold.adapters.stripe.client import checkout_params
from billfold.adapters.stripe.translate import read_session
from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.domain.checkout import CheckoutRequest, CreatedSession, RetrievedSession
from billfold.domain.facts import RefundInfo
from billfold.domain.orders import LineItem
from billfold.domain.records import InboundEvent
from tests.support.app import ADMIN, API_KEY, JWT_SECRET, running_app

SECOND_API_KEY = "sk_billfold_test_rotated"


def user_token(
    sub: str,
    *,
    expires_in: int = 3600,
    secret: str = JWT_SECRET,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    payload: dict[str, Any] = {"sub": sub, "exp": int(time.time()) + expires_in, **claims}
    return jwt.encode(payload, secret, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


SERVER = bearer(API_KEY)
ROTATED_SERVER = bearer(SECOND_API_KEY)
ADMIN_AUTH = bearer(ADMIN)


def as_user(sub: str) -> dict[str, str]:
    return bearer(user_token(sub))


def keyed(headers: Mapping[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


@dataclass
class FakeStripe:
    """The StripeGateway port, in memory: sessions created here can be paid by the test."""

    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)
    line_items: dict[str, list[LineItem]] = field(default_factory=dict)
    refunds: dict[str, list[RefundInfo]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    idempotency_keys: list[str | None] = field(default_factory=list)
    fail_with: errors.BillfoldError | None = None

    def _maybe_fail(self, call: str) -> None:
        self.calls.append(call)
        if self.fail_with is not None:
            raise self.fail_with

    def create_checkout_session(
        self, request: CheckoutRequest, *, idempotency_key: str | None = None
    ) -> CreatedSession:
        self._maybe_fail("create")
        self.idempotency_keys.append(idempotency_key)
        # What would reach Stripe: the adapter's own rendering of the request.
        params = checkout_params(request)
        self.created.append(params)
        session_id = f"cs_test_{len(self.created):04d}"
        line = params["line_items"][0]
        amount = line.get("price_data", {}).get("unit_amount", 499)
        self.sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": params["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": amount,
            "currency": line.get("price_data", {}).get("currency", "usd"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": dict(params.get("metadata", {})),
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "customer_details": None,
            "payment_intent": None,
            "created": 1_800_000_000,
            "livemode": False,
            "url": f"https://checkout.example/pay/{session_id}",
        }
        return CreatedSession(id=session_id, url=self.sessions[session_id]["url"])

    def retrieve_checkout_session(self, session_id: str) -> RetrievedSession:
        self._maybe_fail("retrieve")
        if session_id not in self.sessions:
            raise errors.NotFound(f"Stripe does not know this object: {session_id}")
        session = self.sessions[session_id]
        return RetrievedSession(
            session_id=session_id, status=session["status"], fact=read_session(session)
        )

    def list_events(self, *, created_gte: int, types: Sequence[str]) -> Iterator[InboundEvent]:
        """No events: this fake knows only checkout (reconciliation runs against the simulator)."""
        self._maybe_fail("events")
        return iter(())

    def list_refunds(self, charge_id: str) -> list[RefundInfo]:
        self._maybe_fail("refunds")
        return list(self.refunds.get(charge_id, []))

    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        self._maybe_fail("line_items")
        return self.line_items.get(session_id, [])

    def complete(self, session_id: str, *, paid: bool = True, **changes: Any) -> None:
        """The customer finished checkout (paid, or with a delayed method still pending)."""
        self.sessions[session_id].update(
            status="complete",
            payment_status="paid" if paid else "unpaid",
            payment_intent=f"pi_{session_id}",
            **changes,
        )


@contextmanager
def api_client(
    db_url: str, *, clock: Any = None, stripe: Any = None, **overrides: Any
) -> Iterator[tuple[TestClient, Services]]:
    """The app with two server keys, an admin token and a JWT secret; no background worker."""
    overrides.setdefault("api_keys", f"{API_KEY},{SECOND_API_KEY}")
    with running_app(db_url, clock=clock, stripe=stripe, **overrides) as (client, services):
        yield client, services


def grant(client: TestClient, account: str, amount: int, unit: str = "credits", **body: Any) -> Any:
    response = client.post(
        f"/v1/accounts/{account}/grants",
        json={"unit": unit, "amount": amount, "reason": "test grant", **body},
        headers=ADMIN_AUTH,
    )
    assert response.status_code == 201, response.text
    return response.json()

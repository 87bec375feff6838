"""What a customer and a card network do in Stripe's test mode, through the official SDK: test
clocks and customers on them, refunds, a subscription's paid invoices. ``billfold audit`` drives
the Stripe simulator (or a test-mode account) with it; billfold itself never calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe

from billfold.adapters.stripe.client import _id_of, _translated
from billfold.adapters.stripe.transport import PooledHTTPClient


@dataclass(frozen=True, slots=True, kw_only=True)
class PaidInvoice:
    id: str
    amount_paid: int
    currency: str
    payment_intent: str | None


class TestModeStripe:
    """The SDK pointed at ``api_base`` with a test key; errors become billfold's."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, api_key: str, *, api_base: str | None = None, timeout: float = 30.0):
        if not api_key.startswith(("sk_test_", "rk_test_")):
            raise ValueError("the audit drives Stripe's test mode only: give a sk_test_ key")
        addresses: Any = {"api": api_base.rstrip("/")} if api_base else None
        self._http = PooledHTTPClient(timeout)
        self.client = stripe.StripeClient(
            api_key, base_addresses=addresses, max_network_retries=3, http_client=self._http
        )

    def close(self) -> None:
        self._http.close()

    def create_clock(self, frozen_time: int, name: str) -> str:
        with _translated("create a test clock"):
            clock = self.client.v1.test_helpers.test_clocks.create(
                params={"frozen_time": frozen_time, "name": name}
            )
        return str(clock.id)

    def clock(self, clock_id: str) -> tuple[str, int]:
        """(status, frozen_time) of a test clock."""
        with _translated("retrieve a test clock"):
            clock = self.client.v1.test_helpers.test_clocks.retrieve(clock_id)
        return str(clock.status), int(clock.frozen_time)

    def advance_clock(self, clock_id: str, to: int) -> None:
        with _translated("advance a test clock"):
            self.client.v1.test_helpers.test_clocks.advance(clock_id, params={"frozen_time": to})

    def create_customer(self, *, email: str, clock_id: str | None, key: str) -> str:
        params: dict[str, Any] = {"email": email}
        if clock_id is not None:
            params["test_clock"] = clock_id
        with _translated("create a customer"):
            customer = self.client.v1.customers.create(
                params=params, options={"idempotency_key": key}
            )
        return str(customer.id)

    def refund(self, payment_intent: str, amount: int, *, key: str) -> str:
        """Refund ``amount`` of a payment; the refund's id."""
        with _translated("refund a payment"):
            refund = self.client.v1.refunds.create(
                params={"payment_intent": payment_intent, "amount": amount},
                options={"idempotency_key": key},
            )
        return str(refund.id)

    def checkout_session(self, session_id: str) -> tuple[str, str | None]:
        """(status, payment intent) of a Checkout Session: ``complete`` once paid."""
        with _translated("retrieve a checkout session"):
            session = self.client.v1.checkout.sessions.retrieve(session_id).to_dict()
        return str(session.get("status")), _id_of(session.get("payment_intent"))

    def disputes(self, payment_intent: str) -> list[tuple[str, str]]:
        """(id, status) of each dispute of a payment, newest first."""
        with _translated("list a payment's disputes"):
            page = self.client.v1.disputes.list(
                params={"payment_intent": payment_intent, "limit": 100}
            )
            return [(str(d.id), str(d.status)) for d in page.auto_paging_iter()]

    def dispute_status(self, dispute_id: str) -> str:
        with _translated("retrieve a dispute"):
            return str(self.client.v1.disputes.retrieve(dispute_id).status)

    def paid_invoices(self, subscription_id: str) -> list[PaidInvoice]:
        """A subscription's paid invoices, oldest first, each with the payment intent that paid
        it (from the invoice's payments: basil and later name no ``payment_intent`` on it)."""
        with _translated("list the subscription's invoices"):
            page = self.client.v1.invoices.list(
                params={"subscription": subscription_id, "status": "paid", "limit": 100}
            )
            found = [i.to_dict() for i in page.auto_paging_iter()]
        out = []
        for invoice in sorted(found, key=lambda i: (i.get("created") or 0, str(i["id"]))):
            intent = _id_of(invoice.get("payment_intent"))
            if intent is None:
                intent = self._invoice_intent(str(invoice["id"]))
            out.append(
                PaidInvoice(
                    id=str(invoice["id"]),
                    amount_paid=int(invoice.get("amount_paid") or 0),
                    currency=str(invoice.get("currency") or ""),
                    payment_intent=intent,
                )
            )
        return out

    def _invoice_intent(self, invoice_id: str) -> str | None:
        with _translated("list the invoice's payments"):
            page = self.client.v1.invoice_payments.list(params={"invoice": invoice_id, "limit": 10})
            found = [p.to_dict() for p in page.auto_paging_iter()]
        for payment in found:
            inner = payment.get("payment")
            intent = _id_of(inner.get("payment_intent")) if isinstance(inner, Mapping) else None
            if intent is not None:
                return intent
        return None

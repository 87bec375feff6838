"""The audit's requests that must not be made twice (a payment, a dispute opened or closed): when
the answer is lost on the way, the audit asks Stripe whether the request was made, and sends it
again only if it was not. A lost answer once failed a whole 500-purchase audit (a connection reset
on a pay, in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import httpx
import pytest
from tests.simulator.conftest import API_KEY

from billfold.adapters.stripe.testmode import TestModeStripe
from billfold.audit import driver as audit
from billfold.audit.report import Payment

if TYPE_CHECKING:
    from tests.simulator.conftest import Sim

Break = Literal["before", "after"]


class BreakingTransport(httpx.BaseTransport):
    """Forwards to the simulator, except that the next ``times`` requests whose path ends with
    ``suffix`` lose their connection: ``before`` they reach the server, or ``after`` it answered
    (the answer never reaches the caller)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.suffix = ""
        self.when: Break = "after"
        self.times = 0
        self.forwarded: list[str] = []

    def breaks(self, suffix: str, when: Break, times: int = 1) -> None:
        self.suffix, self.when, self.times = suffix, when, times

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        broken = self.times > 0 and request.url.path.endswith(self.suffix)
        if broken:
            self.times -= 1
            if self.when == "before":
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        self.forwarded.append(f"{request.method} {request.url.path}")
        response = self.inner.handle_request(request)
        if broken:
            response.read()
            response.close()
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def transport() -> BreakingTransport:
    return BreakingTransport()


@pytest.fixture
def driver(sim: Sim, transport: BreakingTransport) -> Iterator[audit._Driver]:
    http = audit._Http(patience=5.0)
    http.client.close()
    http.client = httpx.Client(transport=transport, timeout=10.0)
    stripe = TestModeStripe(API_KEY, api_base=sim.url)
    target = audit._Target(
        billfold="http://127.0.0.1:9",  # never called here
        stripe_api_base=sim.url,
        api_key="unused",
        admin_token="unused",
        stripe_key=API_KEY,
        database_url="sqlite://",
    )
    yield audit._Driver(target, http, stripe, "t-", lambda phase, done, total: None)
    http.close()
    stripe.close()


def _pays(transport: BreakingTransport) -> int:
    return sum(1 for r in transport.forwarded if r.endswith("/pay"))


def _succeeded_charges(sim: Sim, intent: str) -> int:
    charges = sim.stripe.v1.charges.list(params={"payment_intent": intent})
    return sum(1 for c in charges.data if c.status == "succeeded")


def test_a_pay_whose_answer_is_lost_is_not_paid_again(
    sim: Sim, driver: audit._Driver, transport: BreakingTransport
) -> None:
    session = sim.session()
    transport.breaks("/pay", "after")

    intent = driver.pay(session.id, "payer@example.com")

    assert _pays(transport) == 1
    paid = sim.stripe.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert intent is not None
    assert intent == paid.payment_intent
    assert _succeeded_charges(sim, intent) == 1


def test_a_pay_that_never_reached_stripe_is_sent_again(
    sim: Sim, driver: audit._Driver, transport: BreakingTransport
) -> None:
    session = sim.session()
    transport.breaks("/pay", "before", times=2)

    intent = driver.pay(session.id, "payer@example.com")

    assert _pays(transport) == 1
    assert intent == sim.stripe.v1.checkout.sessions.retrieve(session.id).payment_intent
    assert intent is not None
    assert _succeeded_charges(sim, intent) == 1


def test_a_dispute_opened_and_closed_with_their_answers_lost_is_one_dispute_closed_once(
    sim: Sim, driver: audit._Driver, transport: BreakingTransport
) -> None:
    session = sim.session()
    intent = driver.pay(session.id, "payer@example.com")
    payment = Payment(
        stripe_id=session.id,
        item_kind="package",
        item="starter",
        account_id="user_123",
        paid=499,
        currency="usd",
        grants={},
        payment_intent=intent,
        dispute=499,
        dispute_outcome="lost",
    )

    transport.breaks("/_sim/disputes", "after")
    driver.open_dispute(payment)
    transport.breaks("/close", "after")
    driver.close_dispute(payment)

    disputes = sim.stripe.v1.disputes.list(params={"payment_intent": intent}).data
    assert [(d.id, d.status, d.amount) for d in disputes] == [(payment.dispute_id, "lost", 499)]
    assert sum(1 for r in transport.forwarded if r == "POST /_sim/disputes") == 1
    assert sum(1 for r in transport.forwarded if r.endswith("/close")) == 1


def test_a_pay_that_never_gets_through_fails_the_audit_with_the_reason(
    sim: Sim, driver: audit._Driver, transport: BreakingTransport
) -> None:
    session = sim.session()
    transport.breaks("/pay", "before", times=driver.SEND_ATTEMPTS)

    with pytest.raises(audit.AuditError, match=r"/pay: ConnectError: .*Connection refused"):
        driver.pay(session.id, "payer@example.com")

    assert _pays(transport) == 0
    assert sim.stripe.v1.checkout.sessions.retrieve(session.id).status == "open"

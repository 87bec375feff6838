"""The hosted checkout page, driven with plain form posts, as a browser without JavaScript would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from billfold.simulator import SimulatorConfig, create_simulator_app
from billfold.simulator.checkout_page import format_amount

if TYPE_CHECKING:
    from tests.simulator.conftest import MakeSim, Receiver, Sdk, Serve, Sim, WaitUntil


def test_the_page_shows_items_total_and_three_buttons(sim: Sim) -> None:
    session = sim.session(
        line_items=[
            {
                "quantity": 2,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1499,
                    "product_data": {"name": "Credit Pack <1,500>"},
                },
            }
        ],
        customer_email="jenny@example.com",
    )

    page = sim.http.get(session.url)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<meta name="viewport"' in html
    assert "Credit Pack &lt;1,500&gt;" in html  # escaped, never raw
    assert "$29.98" in html
    assert "$14.99" in html
    assert 'value="pay"' in html
    assert 'value="decline"' in html
    assert 'value="delay"' in html
    assert 'value="jenny@example.com"' in html
    assert "<script" not in html
    assert 'href="https://shop.example/cancel"' in html


def test_pay_completes_the_session_redirects_and_emits_the_events(
    sim: Sim, receiver: Receiver
) -> None:
    session = sim.session(payment_intent_data={"metadata": {"order": "o-1"}})

    response = sim.http.post(
        session.url, data={"action": "pay", "email": "payer@example.com", "name": "Pat"}
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"https://shop.example/thanks?session={session.id}"
    paid = sim.stripe.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    assert paid.status == "complete"
    assert paid.payment_status == "paid"
    assert paid.customer_details.email == "payer@example.com"
    intent = paid.payment_intent
    assert intent.status == "succeeded"
    assert intent.amount_received == 499
    assert intent.metadata.to_dict() == {"order": "o-1"}
    charge = intent.latest_charge
    assert charge.status == "succeeded"
    assert charge.paid is True
    assert charge.amount_captured == 499
    assert charge.payment_intent == intent.id
    sim.flush()
    assert receiver.types() == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    completed = receiver.of_type("checkout.session.completed")[0]["data"]["object"]
    assert completed["id"] == session.id
    assert completed["payment_status"] == "paid"
    assert completed["metadata"]["billfold_account"] == "user_123"
    assert completed["payment_intent"] == intent.id
    assert receiver.rejected == 0


def test_a_decline_shows_on_the_page_and_the_payer_may_try_again(
    sim: Sim, receiver: Receiver
) -> None:
    session = sim.session()

    declined = sim.http.post(session.url, data={"action": "decline", "email": "a@example.com"})
    still_open = sim.stripe.v1.checkout.sessions.retrieve(session.id)
    retried = sim.http.post(session.url, data={"action": "pay", "email": "a@example.com"})

    assert declined.status_code == 200
    assert "declined" in declined.text
    assert 'value="pay"' in declined.text
    assert still_open.status == "open"
    assert still_open.payment_status == "unpaid"
    assert retried.status_code == 303
    sim.flush()
    failed = receiver.of_type("payment_intent.payment_failed")
    assert len(failed) == 1
    error = failed[0]["data"]["object"]["last_payment_error"]
    assert error["code"] == "card_declined"
    assert error["type"] == "card_error"
    succeeded = receiver.of_type("payment_intent.succeeded")
    # The same payment intent carries the failed and the successful attempt.
    assert succeeded[0]["data"]["object"]["id"] == failed[0]["data"]["object"]["id"]
    assert receiver.types().count("checkout.session.completed") == 1


def test_a_delayed_method_completes_unpaid_then_succeeds_when_settled(
    sim: Sim, receiver: Receiver
) -> None:
    session = sim.session()

    response = sim.http.post(session.url, data={"action": "delay", "email": "d@example.com"})
    pending = sim.stripe.v1.checkout.sessions.retrieve(session.id)
    page = sim.http.get(session.url)
    sim.flush()
    before_settling = receiver.types()
    sim.control(f"sessions/{session.id}/settle")
    sim.flush()

    assert response.status_code == 303
    assert pending.status == "complete"
    assert pending.payment_status == "unpaid"
    assert "processing" in page.text
    assert before_settling[-1] == "checkout.session.completed"
    completed = receiver.of_type("checkout.session.completed")[0]["data"]["object"]
    assert completed["payment_status"] == "unpaid"
    async_paid = receiver.of_type("checkout.session.async_payment_succeeded")
    assert len(async_paid) == 1
    assert async_paid[0]["data"]["object"]["payment_status"] == "paid"
    assert async_paid[0]["data"]["previous_attributes"] == {"payment_status": "unpaid"}
    settled = sim.stripe.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent"]}
    )
    assert settled.payment_status == "paid"
    assert settled.payment_intent.status == "succeeded"


def test_a_delayed_method_can_fail(sim: Sim, receiver: Receiver) -> None:
    session = sim.session()

    sim.http.post(session.url, data={"action": "delay", "delayed_outcome": "failed"})
    sim.control(f"sessions/{session.id}/settle")
    sim.flush()

    failed = receiver.of_type("checkout.session.async_payment_failed")
    assert len(failed) == 1
    assert failed[0]["data"]["object"]["payment_status"] == "unpaid"
    assert receiver.of_type("checkout.session.async_payment_succeeded") == []
    assert "failed" in sim.http.get(session.url).text


def test_a_delayed_payment_settles_by_itself_after_the_configured_delay(
    make_sim: MakeSim, receiver: Receiver, wait_until: WaitUntil
) -> None:
    sim = make_sim(async_settle_seconds=0.05)
    session = sim.session()

    sim.control(f"sessions/{session.id}/delay")

    wait_until(lambda: "checkout.session.async_payment_succeeded" in receiver.types())
    assert sim.stripe.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_the_control_routes_pay_and_decline_without_a_browser(sim: Sim, receiver: Receiver) -> None:
    first, second = sim.session(), sim.session()

    declined = sim.control(f"sessions/{first.id}/decline")
    paid = sim.control(f"sessions/{second.id}/pay", {"email": "bot@example.com"})
    manual = sim.session()
    delayed = sim.control(f"sessions/{manual.id}/delay", {"manual": True, "outcome": "failed"})
    settled = sim.control(f"sessions/{manual.id}/settle", {"outcome": "succeeded"})

    assert declined["session"]["status"] == "open"
    assert declined["payment_intent"]["status"] == "requires_payment_method"
    assert paid["session"]["payment_status"] == "paid"
    assert paid["redirect_url"] == f"https://shop.example/thanks?session={second.id}"
    assert delayed["session"]["payment_status"] == "unpaid"
    assert settled["session"]["payment_status"] == "paid"  # the override wins


def test_a_session_cannot_be_paid_twice_or_after_it_expired(sim: Sim) -> None:
    paid, expired = sim.session(), sim.session()
    sim.control(f"sessions/{paid.id}/pay")
    sim.stripe.v1.checkout.sessions.expire(expired.id)

    again = sim.http.post(paid.url, data={"action": "pay"})
    late = sim.http.post(expired.url, data={"action": "pay"})
    by_control = sim.http.post(f"{sim.url}/_sim/sessions/{paid.id}/pay", json={})

    assert again.status_code == 409
    assert "Payment complete" in again.text
    assert late.status_code == 409
    assert "expired" in late.text
    assert by_control.status_code == 400
    assert by_control.json()["error"]["type"] == "invalid_request_error"


def test_without_a_success_url_the_page_says_the_payment_is_complete(sim: Sim) -> None:
    session = sim.session(success_url=None)

    response = sim.http.post(session.url, data={"action": "pay"})

    assert response.status_code == 200
    assert "Payment complete" in response.text


def test_an_unknown_session_page_is_a_404(sim: Sim) -> None:
    response = sim.http.get(f"{sim.url}/pay/cs_test_missing")

    assert response.status_code == 404
    assert "does not exist" in response.text


def test_amounts_are_formatted_from_integers_per_currency() -> None:
    assert format_amount(499, "usd") == "$4.99"
    assert format_amount(123456789, "eur") == "€1,234,567.89"
    assert format_amount(500, "jpy") == "¥500"
    assert format_amount(1005, "kwd") == "1.005 KWD"
    assert format_amount(-5, "usd") == "-$0.05"
    assert format_amount(7, "chf") == "0.07 CHF"


def test_mounted_under_a_prefix_every_url_keeps_the_prefix(
    receiver: Receiver, serve: Serve, sdk: Sdk, webhook_secret: str
) -> None:
    simulator = create_simulator_app(
        SimulatorConfig(webhook_url=receiver.url, webhook_secret=webhook_secret)
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await simulator.state.simulator.aclose()

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("billfold")

    host = Starlette(routes=[Route("/", home), Mount("/stripe", app=simulator)], lifespan=lifespan)
    server = serve(host)
    client = sdk(f"{server.url}/stripe")
    try:
        with httpx.Client() as http:
            session = client.v1.checkout.sessions.create(
                params={
                    "mode": "payment",
                    "success_url": "https://shop.example/ok?id={CHECKOUT_SESSION_ID}",
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": "usd",
                                "unit_amount": 100,
                                "product_data": {"name": "Token"},
                            },
                        }
                    ],
                }
            )
            page = http.get(session.url)
            paid = http.post(session.url, data={"action": "pay"})
            flushed = http.post(f"{server.url}/stripe/_sim/flush", json={})
            unknown = http.get(f"{server.url}/stripe/v1/nope", auth=("sk_test_1", ""))
    finally:
        server.stop()

    assert session.url == f"{server.url}/stripe/pay/{session.id}"
    assert page.status_code == 200
    assert 'action=""' in page.text  # posts back to itself, prefix and all
    assert paid.status_code == 303
    assert flushed.json()["settled"] is True
    assert "checkout.session.completed" in receiver.types()
    assert unknown.status_code == 404
    assert "(GET: /v1/nope)" in unknown.json()["error"]["message"]


def test_a_configured_public_base_url_is_used_for_the_session_url(make_sim: MakeSim) -> None:
    sim = make_sim(public_base_url="https://dev.example/stripe/")

    session = sim.session()

    assert session.url == f"https://dev.example/stripe/pay/{session.id}"


def test_customer_creation_always_makes_a_customer_for_the_payer(
    sim: Sim, receiver: Receiver
) -> None:
    session = sim.session(customer_creation="always")

    paid = sim.control(f"sessions/{session.id}/pay", {"email": "new@example.com", "name": "New"})
    sim.flush()

    customer_id = paid["session"]["customer"]
    assert customer_id.startswith("cus_")
    assert sim.stripe.v1.customers.retrieve(customer_id).email == "new@example.com"
    intent = sim.stripe.v1.payment_intents.retrieve(paid["session"]["payment_intent"])
    assert intent.customer == customer_id
    assert receiver.types()[:2] == ["payment_intent.created", "customer.created"]


def test_a_declined_subscription_checkout_stays_open_without_a_payment_intent(sim: Sim) -> None:
    price = sim.stripe.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 900,
            "product_data": {"name": "Plus"},
            "recurring": {"interval": "month"},
        }
    )
    session = sim.session(mode="subscription", line_items=[{"price": price.id, "quantity": 1}])

    declined = sim.http.post(session.url, data={"action": "decline"})
    delayed = sim.http.post(session.url, data={"action": "delay"})
    after = sim.stripe.v1.checkout.sessions.retrieve(session.id)

    assert "declined" in declined.text
    assert "per month" in declined.text
    assert 'value="delay"' not in declined.text  # no delayed methods for subscriptions here
    assert delayed.status_code == 409
    assert after.status == "open"
    assert after.payment_intent is None

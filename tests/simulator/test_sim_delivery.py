"""Signed webhook delivery: retries, give-ups, and chaos (duplicates, delays, reordering, drops)."""

from __future__ import annotations

import json
import socket
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

from billfold.simulator import RetryPolicy

if TYPE_CHECKING:
    from tests.simulator.conftest import MakeSim, Receiver, Sim


def event_example() -> dict[str, Any]:
    text = resources.files("billfold.simulator").joinpath("fixtures.json").read_text()
    data: dict[str, Any] = json.loads(text)["resources"]["event"]
    return data


def test_events_arrive_signed_in_stripes_envelope(sim: Sim, receiver: Receiver) -> None:
    session = sim.session()

    sim.control(f"sessions/{session.id}/pay")
    sim.flush()

    assert receiver.rejected == 0
    completed = receiver.of_type("checkout.session.completed")[0]
    assert set(event_example()) <= set(completed)
    assert completed["id"].startswith("evt_")
    assert completed["object"] == "event"
    assert completed["livemode"] is False
    assert completed["api_version"]
    assert completed["pending_webhooks"] == 1
    assert completed["request"] == {"id": None, "idempotency_key": None}
    # data.object is the whole session as it was, not a stub.
    assert completed["data"]["object"]["amount_total"] == 499
    assert completed["data"]["object"]["status"] == "complete"
    headers = receiver.headers[0]
    assert headers["content-type"].startswith("application/json")
    assert headers["user-agent"].startswith("Stripe/")
    assert headers["stripe-signature"].startswith("t=")


def test_a_failing_endpoint_gets_retries_with_every_attempt_recorded(
    sim: Sim, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    customer = sim.stripe.v1.customers.create(params={"email": "retry@example.com"})

    sim.flush()

    [delivery] = sim.deliveries(type="customer.created")
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert receiver.of_type("customer.created")[0]["data"]["object"]["id"] == customer.id
    event = sim.stripe.v1.events.retrieve(delivery["event_id"])
    assert event.pending_webhooks == 0
    delivered = sim.stripe.v1.events.list(params={"delivery_success": True})
    assert [e.id for e in delivered.data] == [event.id]


def test_delivery_gives_up_after_the_last_attempt(sim: Sim, receiver: Receiver) -> None:
    receiver.fail_always = True
    sim.stripe.v1.customers.create(params={"email": "never@example.com"})

    answer = sim.flush()

    [delivery] = sim.deliveries()
    assert delivery["status"] == "failed"
    assert len(delivery["attempts"]) == 5  # the suite's max_attempts
    assert answer["counts"] == {"pending": 0, "succeeded": 0, "failed": 1}
    undelivered = sim.stripe.v1.events.list(params={"delivery_success": False})
    assert [e.id for e in undelivered.data] == [delivery["event_id"]]
    assert undelivered.data[0].pending_webhooks == 0


def test_connection_errors_are_retried_and_recorded(make_sim: MakeSim) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sim = make_sim(
        webhook_url=f"http://127.0.0.1:{closed_port}/webhooks",
        retry=RetryPolicy(base_seconds=0.01, max_seconds=0.02, max_attempts=3),
    )
    sim.stripe.v1.customers.create(params={"email": "x@example.com"})

    sim.flush()

    [delivery] = sim.deliveries()
    assert delivery["status"] == "failed"
    assert [a["status_code"] for a in delivery["attempts"]] == [None, None, None]
    assert all("ConnectError" in a["error"] for a in delivery["attempts"])


def test_a_timed_out_flush_answers_504(make_sim: MakeSim, receiver: Receiver) -> None:
    sim = make_sim(retry=RetryPolicy(base_seconds=5, max_attempts=3))
    receiver.fail_always = True
    sim.stripe.v1.customers.create(params={"email": "slow@example.com"})

    response = sim.http.post(f"{sim.url}/_sim/flush", json={"timeout": 0.2})

    assert response.status_code == 504
    assert response.json()["settled"] is False
    assert response.json()["counts"]["pending"] == 1


def test_chaos_duplicates_deliver_each_event_twice_at_once(sim: Sim, receiver: Receiver) -> None:
    sim.control("chaos", {"duplicate_rate": 1.0, "seed": 7})
    receiver.delay = 0.05
    session = sim.session()

    sim.control(f"sessions/{session.id}/pay")
    sim.flush()

    completed = receiver.of_type("checkout.session.completed")
    assert len(completed) == 2
    assert completed[0]["id"] == completed[1]["id"]
    assert receiver.max_in_flight == 2
    copies = sorted(d["copy"] for d in sim.deliveries(type="checkout.session.completed"))
    assert copies == [0, 1]


def test_chaos_reorder_delivers_out_of_the_order_of_events(sim: Sim, receiver: Receiver) -> None:
    late_completion_seen = False
    for seed in range(1, 7):  # seeded, so the same seeds give the same orders every run
        sim.control("reset")
        receiver.reset()
        sim.control("chaos", {"reorder": True, "reorder_window_seconds": 0.1, "seed": seed})
        session = sim.session()

        sim.control(f"sessions/{session.id}/delay", {"settle_after_seconds": 0})
        sim.flush()

        emitted = [e.type for e in reversed(sim.stripe.v1.events.list(params={"limit": 20}).data)]
        received = receiver.types()
        assert sorted(received) == sorted(emitted)
        assert received != emitted
        late_completion_seen = received.index("checkout.session.completed") > received.index(
            "checkout.session.async_payment_succeeded"
        )
        if late_completion_seen:
            break
    assert late_completion_seen


def test_chaos_can_drop_first_attempts_so_events_arrive_with_a_retry(
    sim: Sim, receiver: Receiver
) -> None:
    sim.control("chaos", {"drop_first_attempt_rate": 1.0})
    session = sim.session()

    sim.control(f"sessions/{session.id}/pay")
    sim.flush()

    deliveries = sim.deliveries()
    assert deliveries
    for delivery in deliveries:
        assert delivery["status"] == "succeeded"
        first, second = delivery["attempts"]
        assert first["status_code"] is None
        assert "chaos" in first["error"]
        assert second["status_code"] == 200
    assert len(receiver.events) == len(deliveries)  # a dropped attempt never arrived


def test_chaos_can_drop_events_for_good_leaving_them_to_the_events_api(
    sim: Sim, receiver: Receiver
) -> None:
    sim.control("chaos", {"drop_rate": 1.0})
    assert sim.control("chaos", {})["drop_rate"] == 1.0
    session = sim.session()

    sim.control(f"sessions/{session.id}/pay")
    sim.flush()

    deliveries = sim.deliveries()
    assert deliveries
    for delivery in deliveries:
        assert delivery["status"] == "failed"
        [attempt] = delivery["attempts"]
        assert attempt["status_code"] is None
        assert "dropped for good" in attempt["error"]
    assert receiver.events == []
    undelivered = sim.stripe.v1.events.list(params={"delivery_success": False, "limit": 100})
    assert {e.id for e in undelivered.data} == {d["event_id"] for d in deliveries}


def test_chaos_delay_holds_events_back(sim: Sim, receiver: Receiver) -> None:
    sim.control("chaos", {"delay_seconds": [0.3, 0.3]})
    session = sim.session()
    started = time.monotonic()

    sim.control(f"sessions/{session.id}/pay")
    early = list(receiver.events)
    sim.flush()

    assert early == []
    assert time.monotonic() - started >= 0.3
    assert "checkout.session.completed" in receiver.types()
    for delivery in sim.deliveries():
        assert delivery["attempts"][0]["at"] >= delivery["created"] + 0.3


def test_chaos_settings_are_validated_and_reported(sim: Sim) -> None:
    bad = sim.http.post(f"{sim.url}/_sim/chaos", json={"duplicate_rate": 2})
    unknown = sim.http.post(f"{sim.url}/_sim/chaos", json={"gremlins": True})
    current = sim.http.get(f"{sim.url}/_sim/chaos").json()

    assert bad.status_code == 400
    assert "duplicate_rate" in bad.json()["error"]["message"]
    assert unknown.status_code == 400
    assert current["duplicate_rate"] == 0.0
    assert current["reorder"] is False


def test_an_event_can_be_resent(sim: Sim, receiver: Receiver) -> None:
    sim.stripe.v1.customers.create(params={"email": "again@example.com"})
    sim.flush()
    event_id = receiver.events[0]["id"]

    resent = sim.control(f"events/{event_id}/resend")
    sim.flush()

    assert len(resent["data"]) == 1
    assert [e["id"] for e in receiver.events] == [event_id, event_id]


def test_without_a_webhook_url_events_are_kept_but_not_delivered(make_sim: MakeSim) -> None:
    sim = make_sim(webhook_url=None)
    sim.stripe.v1.customers.create(params={"email": "quiet@example.com"})

    events = sim.stripe.v1.events.list()
    undelivered = sim.stripe.v1.events.list(params={"delivery_success": False})

    assert [e.type for e in events.data] == ["customer.created"]
    assert events.data[0].pending_webhooks == 0
    assert sim.deliveries() == []
    assert len(undelivered.data) == 1


def test_a_delivery_whose_attempt_was_lost_is_sent_again_by_a_flush(
    sim: Sim, receiver: Receiver
) -> None:
    """A pending delivery long past due that nothing is sending (its attempt lost, as when the
    endpoint's process dies mid-request) does not stall ``flush``: it is sent again."""
    deliverer = sim.app.state.simulator.deliverer
    sim.control("chaos", {"delay_seconds": [30, 30]})  # queued, not sent yet
    customer = sim.stripe.v1.customers.create(params={"email": "lost@example.com"})
    sim.control("chaos", {"delay_seconds": [0, 0]})
    deliverer._heap.clear()  # its job is gone: nothing would send it
    limit = deliverer._config.retry.timeout_seconds + 5.0
    for delivery in deliverer._state.deliveries:
        delivery.next_attempt_at -= 30 + limit + 1  # and it fell due long ago

    answer = sim.flush(timeout=5.0)

    assert answer["counts"]["pending"] == 0
    assert [d["status"] for d in sim.deliveries(type="customer.created")] == ["succeeded"]
    [received] = receiver.of_type("customer.created")
    assert received["data"]["object"]["id"] == customer.id

"""Saved state survives a restart; the standalone runner builds the configuration it is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from billfold.simulator import RetryPolicy
from billfold.simulator.__main__ import config_from_args, parse_args

if TYPE_CHECKING:
    from tests.simulator.conftest import MakeSim, Receiver, WaitUntil


def test_a_restarted_simulator_keeps_its_sessions_and_events(
    make_sim: MakeSim, receiver: Receiver, tmp_path: Path
) -> None:
    state = tmp_path / "simulator.json"
    first = make_sim(state_path=state)
    session = first.session(client_reference_id="user_9")
    first.control(f"sessions/{session.id}/pay")
    first.flush()
    first.stop()

    second = make_sim(state_path=state)
    restored = second.stripe.v1.checkout.sessions.retrieve(session.id)
    events = second.stripe.v1.events.list(params={"limit": 100})
    page = second.http.get(f"{second.url}/pay/{session.id}")

    assert restored.status == "complete"
    assert restored.client_reference_id == "user_9"
    assert "checkout.session.completed" in [e.type for e in events.data]
    assert page.status_code == 200
    assert json.loads(state.read_text())["format"] == 1
    assert [d["status"] for d in second.deliveries()] == ["succeeded"] * 4


def test_pending_deliveries_and_delayed_payments_resume_after_a_restart(
    make_sim: MakeSim, receiver: Receiver, tmp_path: Path, wait_until: WaitUntil
) -> None:
    state = tmp_path / "simulator.json"
    receiver.fail_always = True
    first = make_sim(state_path=state, retry=RetryPolicy(base_seconds=0.5, max_attempts=5))
    session = first.session()
    first.control(f"sessions/{session.id}/delay", {"settle_after_seconds": 0.3})
    first.stop()  # before the payment settled, with deliveries still failing

    receiver.fail_always = False
    second = make_sim(state_path=state)
    second.flush()  # the failed first attempts are retried by the new process

    assert "checkout.session.completed" in receiver.types()
    wait_until(lambda: "checkout.session.async_payment_succeeded" in receiver.types())


def test_the_runner_turns_flags_into_a_configuration(tmp_path: Path) -> None:
    args = parse_args(
        [
            "--port",
            "12111",
            "--webhook-url",
            "http://127.0.0.1:8000/webhooks/stripe",
            "--webhook-secret",
            "whsec_dev",
            "--state-path",
            str(tmp_path / "s.json"),
            "--duplicate-rate",
            "0.5",
            "--delay",
            "0.1",
            "0.4",
            "--reorder",
            "--seed",
            "3",
            "--async-settle-seconds",
            "-1",
            "--api-version",
            "2024-06-20",
            "--same-second",
            "--dunning-retry-days",
            "1",
            "2",
            "--dunning-final-status",
            "unpaid",
        ]
    )

    config = config_from_args(args)

    assert args.port == 12111
    assert config.webhook_url == "http://127.0.0.1:8000/webhooks/stripe"
    assert config.webhook_secret == "whsec_dev"
    assert config.state_path == tmp_path / "s.json"
    assert config.chaos.duplicate_rate == 0.5
    assert config.chaos.delay_seconds == (0.1, 0.4)
    assert config.chaos.reorder is True
    assert config.chaos.seed == 3
    assert config.async_settle_seconds is None
    assert config.api_version == "2024-06-20"
    assert config.chaos.same_second is True
    assert config.dunning.retry_after_days == (1, 2)
    assert config.dunning.subscription_status == "unpaid"


def test_clocks_subscriptions_and_an_unfinished_advance_survive_a_restart(
    make_sim: MakeSim, receiver: Receiver, tmp_path: Path
) -> None:
    from tests.simulator.billing_support import FEB_1, on_clock

    state = tmp_path / "simulator.json"
    first = make_sim(state_path=state, clock_advance_seconds=0.3)
    clock_id, customer_id, subscription = on_clock(first)
    first.control(f"customers/{customer_id}/fail_next_payment", {"count": 1})
    first.stripe.v1.test_helpers.test_clocks.advance(clock_id, params={"frozen_time": FEB_1 + 1})
    first.stop()  # before the clock was done advancing

    second = make_sim(state_path=state)
    second.flush()
    clock = second.stripe.v1.test_helpers.test_clocks.retrieve(clock_id)
    renewed = second.stripe.v1.subscriptions.retrieve(subscription.id)

    assert clock.status == "ready"
    assert clock.frozen_time == FEB_1 + 1
    assert renewed.status == "past_due"  # the forced failure was remembered too
    assert renewed["items"].data[0].current_period_start == FEB_1
    invoices = second.stripe.v1.invoices.list(params={"customer": customer_id})
    assert [i.status for i in invoices.data] == ["open", "paid"]
    assert invoices.data[0].next_payment_attempt == FEB_1 + 3 * 24 * 60 * 60
    assert "test_helpers.test_clock.ready" in receiver.types()

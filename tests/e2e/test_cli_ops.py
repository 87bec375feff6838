"""The operator's command line: events, orders, grants, balances, and reconciliation with Stripe's
Events API (against the simulator, through the real SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from typer.testing import CliRunner

from billfold.entrypoints.cli import app
from billfold.simulator import SimulatorConfig, create_simulator_app
from tests.builders import stripe_events as se
from tests.support.app import SECRET, balances, deliver, running_app
from tests.support.servers import ServerThread

runner = CliRunner()
STRIPE_KEY = "sk_test_cli_reconcile"


def run(db_url: str, *args: str, **env: str) -> Any:
    result = runner.invoke(
        app, list(args), env={"BILLFOLD_DATABASE_URL": db_url, "COLUMNS": "250", **env}
    )
    return result


@pytest.fixture
def simulator() -> Iterator[str]:
    # No webhook URL: Stripe "could not deliver", so only the Events API has these events.
    sim = ServerThread(
        create_simulator_app(SimulatorConfig(webhook_url=None, webhook_secret=SECRET))
    ).start()
    try:
        yield sim.url
    finally:
        sim.stop()


def test_given_missed_webhooks_when_reconciling_then_each_purchase_is_granted_once(
    db_url: str, engine: Any, simulator: str
) -> None:
    http = stripe.HTTPXClient(allow_sync_methods=True)
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": simulator}, http_client=http)
    sessions = []
    for account in ("user_a", "user_b"):
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "success_url": "https://shop.example/ok?session_id={CHECKOUT_SESSION_ID}",
                "client_reference_id": account,
                "metadata": {"billfold_account": account, "billfold_package": "starter"},
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 499,
                            "product_data": {"name": "Starter"},
                        },
                    }
                ],
            }
        )
        httpx.post(f"{simulator}/_sim/sessions/{session.id}/pay", json={}, timeout=10)
        sessions.append(session.id)
    http.close()
    env = {"BILLFOLD_STRIPE_SECRET_KEY": STRIPE_KEY, "BILLFOLD_STRIPE_API_BASE": simulator}
    first = run(db_url, "reconcile", "--since", "1h", **env)
    assert first.exit_code == 0, first.output
    assert "completed" in first.output
    assert "no drift left open" in first.output
    imported = int(first.output.split(" events imported")[0].rsplit(" ", 1)[-1])
    assert imported > 0
    second = run(db_url, "reconcile", "--since", "1h", **env)
    assert second.exit_code == 0, second.output
    assert ", 0 events imported" in second.output
    balance = run(db_url, "balance", "user_a")
    assert "500" in balance.output
    listed = run(db_url, "orders", "list")
    assert sessions[0] in listed.output
    assert "fulfilled" in listed.output


def test_given_an_event_when_listing_showing_and_replaying_then_it_is_granted_once(
    db_url: str, engine: Any
) -> None:
    event = se.checkout_session_completed(
        metadata={"billfold_account": "user_1", "billfold_package": "starter"}
    )
    with running_app(db_url) as (client, services):
        deliver(client, event)
        listed = run(db_url, "events", "list")
        assert event["id"] in listed.output
        shown = run(db_url, "events", "show", event["id"])
        assert shown.exit_code == 0
        assert "checkout.session.completed" in shown.output
        replayed = run(db_url, "events", "replay", event["id"])
        assert replayed.exit_code == 0, replayed.output
        assert balances(services, "user_1") == {"credits": 500}
        # The replay is in the event's attempt history: the second attempt, by the CLI.
        with services.infra.uow() as uow:
            history = uow.inbox.attempt_history(event["id"])
        assert [(a.attempt, a.outcome, a.error, a.worker) for a in history] == [
            (2, "processed", None, "operator:cli")
        ]
        missing = run(db_url, "events", "show", "evt_missing")
        assert missing.exit_code == 1
        assert "no event" in missing.output


def test_given_an_order_needing_attention_when_resolved_from_the_cli_then_granted(
    db_url: str, engine: Any
) -> None:
    event = se.checkout_session_completed(
        metadata={"billfold_account": "user_1", "billfold_package": "starter"}, amount_total=1
    )
    with running_app(db_url) as (client, services):
        deliver(client, event)
        with services.infra.uow() as uow:
            order = uow.orders.list(
                status="needs_attention", account_id=None, limit=1, starting_after=None
            )[0]
        result = run(db_url, "orders", "resolve", order.id, "--package", "starter")
        assert result.exit_code == 0, result.output
        assert balances(services, "user_1") == {"credits": 500}


def test_given_an_order_whose_package_is_unknown_when_resolved_without_one_then_one_clear_line(
    db_url: str, engine: Any
) -> None:
    """Resolving it needs the session's line items from Stripe, and no Stripe key is set: the
    operator is told to name the package, in one line, and nothing is granted."""
    event = se.checkout_session_completed(
        metadata={"billfold_account": "user_1", "billfold_package": "no_such_pack"}
    )
    with running_app(db_url) as (client, services):
        deliver(client, event)
        page = services.views.orders(status="needs_attention")
        assert len(page.data) == 1
        order = page.data[0]
        result = run(db_url, "orders", "resolve", order.id, "--account", "user_1")
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith("error: ")
        assert "name the package" in lines[0]
        assert balances(services, "user_1") == {}
        assert services.views.order(order.id).status == "needs_attention"
        fixed = run(db_url, "orders", "resolve", order.id, "--package", "starter")
        assert fixed.exit_code == 0, fixed.output
        assert balances(services, "user_1") == {"credits": 500}


def test_given_a_manual_grant_then_it_needs_a_reason_and_shows_in_the_balance(
    db_url: str, engine: Any
) -> None:
    without = run(db_url, "grant", "user_1", "credits", "25")
    assert without.exit_code != 0
    granted = run(db_url, "grant", "user_1", "credits", "25", "--reason", "goodwill")
    assert granted.exit_code == 0, granted.output
    assert "balance 25" in granted.output
    bad = run(db_url, "grant", "user_1", "nope", "25", "--reason", "x")
    assert bad.exit_code == 1
    assert "Unknown unit" in bad.output


def test_given_subscriptions_the_cli_lists_shows_and_syncs_them_from_stripe(
    db_url: str, engine: Any, simulator: str
) -> None:
    http = stripe.HTTPXClient(allow_sync_methods=True)
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": simulator}, http_client=http)
    price = client.v1.prices.create(
        params={
            "unit_amount": 1900,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
            "lookup_key": "billfold_plan_pro",
        }
    )
    customer = client.v1.customers.create(
        params={"email": "sub@example.com", "payment_method": "pm_card_visa"}
    )
    client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "metadata": {"billfold_account": "user_sub"},
            "default_payment_method": "pm_card_visa",
        }
    )
    http.close()
    env = {"BILLFOLD_STRIPE_SECRET_KEY": STRIPE_KEY, "BILLFOLD_STRIPE_API_BASE": simulator}
    with running_app(db_url) as (api, _):
        linked = api.put(
            "/v1/accounts/user_sub",
            json={"stripe_customer_id": customer.id},
            headers={"Authorization": "Bearer sk_billfold_test_server"},
        )
        assert linked.status_code == 200, linked.text
    assert "no subscriptions" in run(db_url, "subscriptions", "list").output
    refused = run(db_url, "subscriptions", "sync", **env)
    assert refused.exit_code != 0
    assert "--account ID, or --all" in refused.output
    synced = run(db_url, "subscriptions", "sync", "--all", **env)
    assert synced.exit_code == 0, synced.output
    assert "synced 1 account(s), 1 subscription(s)" in synced.output
    assert "state unknown -> active (pro)" in synced.output
    again = run(db_url, "subscriptions", "sync", "--account", "user_sub", **env)
    assert again.exit_code == 0, again.output
    assert "0 change(s)" in again.output
    listed = run(db_url, "subscriptions", "list", "--status", "active")
    assert "user_sub" in listed.output
    assert "pro" in listed.output
    shown = run(db_url, "subscriptions", "show", "user_sub")
    assert "plan pro from a subscription" in shown.output
    assert "auto_trading=on" in shown.output
    assert "credits" in run(db_url, "balance", "user_sub").output


def test_given_a_purchase_spent_held_and_partly_refunded_then_balance_explain_adds_it_up(
    db_url: str, engine: Any
) -> None:
    from billfold.service.ledger import Hold, Spend

    with running_app(db_url) as (client, services):
        bought = se.checkout_session_completed(
            session_id="cs_test_cli_explain",
            payment_intent="pi_cli_explain",
            amount_total=499,
            metadata={"billfold_account": "user_x", "billfold_package": "starter"},
        )
        assert deliver(client, bought).status_code == 200
        services.ledger.spend(Spend(key="cli-s", account_id="user_x", unit="credits", amount=100))
        services.ledger.hold(
            Hold(
                key="cli-h",
                account_id="user_x",
                unit="credits",
                amount=50,
                ttl_seconds=600,
                reason="export job",
            )
        )
        refunded = se.refund_event(
            "refund.created",
            refund_id="re_cli_explain",
            amount=100,
            charge="ch_cli_explain",
            payment_intent="pi_cli_explain",
            status="succeeded",
        )
        assert deliver(client, refunded).status_code == 200
        expected = services.views.balances("user_x").available["credits"]
    assert expected == 500 - 100 - 50 - 100

    shown = run(db_url, "balance", "user_x", "--explain", "--unit", "credits")
    assert shown.exit_code == 0, shown.output
    out = shown.output
    for seen in ("cs_test_cli_explain", "pi_cli_explain", "ch_cli_explain", "re_cli_explain"):
        assert seen in out
    assert "spend" in out
    assert "clawback" in out
    assert "export job" in out
    assert f"lots 300 - held 50 - debt 0 = balance {expected} credits" in out

    unknown = run(db_url, "balance", "nobody", "--explain")
    assert unknown.exit_code == 1
    assert "No account" in unknown.output


def test_notifications_are_listed_shown_and_redelivered_from_the_cli(
    db_url: str, engine: Any
) -> None:
    granted = run(db_url, "grant", "user_1", "credits", "25", "--reason", "goodwill")
    assert granted.exit_code == 0, granted.output
    listed = run(db_url, "notifications", "list", "--type", "credits.granted")
    assert listed.exit_code == 0, listed.output
    assert "credits.granted" in listed.output
    assert "user_1" in listed.output
    assert "pending" in listed.output
    [message_id] = [w for w in listed.output.split() if w.startswith("msg_")]
    shown = run(db_url, "notifications", "show", message_id)
    assert shown.exit_code == 0, shown.output
    assert '"amount": 25' in shown.output
    assert '"type": "credits.granted"' in shown.output
    again = run(db_url, "notifications", "redeliver", message_id)
    assert again.exit_code == 0, again.output
    assert f"{message_id}: pending" in again.output
    missing = run(db_url, "notifications", "show", "msg_nothing")
    assert missing.exit_code == 1
    assert "no notification" in missing.output
    wrong = run(db_url, "notifications", "list", "--status", "lost")
    assert wrong.exit_code != 0
    empty = run(db_url, "notifications", "list", "--account", "user_9")
    assert "no notifications" in empty.output

"""Reconciliation with Stripe end to end: billfold and the simulator on real ports, the official SDK
between them, on SQLite and PostgreSQL.

A tenth of the webhooks never arrive (dropped for good, as when an endpoint was down longer than
Stripe retries): one run takes in what Stripe's Events API has and nothing stays open. Each drift
class is then made on purpose (a payment billfold cannot grant, a damaged database, a forged order)
and reported with its Stripe and billfold ids and amounts; the API starts runs (202) for the admin
only, and ``billfold reconcile`` exits 1 while drift stays open.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import stripe
from starlette.types import ASGIApp
from typer.testing import CliRunner

from billfold.bootstrap import Services, build
from billfold.domain import reconciliation as rc
from billfold.entrypoints.cli import app as cli
from billfold.entrypoints.http.app import create_app
from billfold.entrypoints.worker import Worker
from billfold.simulator import ChaosSettings, RetryPolicy, SimulatorConfig, create_simulator_app
from tests.support.api import ADMIN_AUTH, SERVER, as_user
from tests.support.app import settings_for
from tests.support.faultproxy import FaultProxy
from tests.support.servers import ServerThread, billfold_env, process
from tests.support.subscription_story import drain

pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)

SIM_SECRET = "whsec_reconciliation"
STRIPE_KEY = "sk_test_reconciliation"
STARTER = 499  # the starter pack's price, which grants 500 credits


class _Late:
    """An ASGI app set after the server's port is known (the simulator needs billfold's URL)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@dataclass
class Shop:
    billfold: str
    sim: str
    http: httpx.Client
    sdk: stripe.StripeClient
    services: Services
    db_url: str

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", SERVER)
        return self.http.request(method, f"{self.billfold}{path}", **kwargs)

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.http.post(f"{self.sim}/_sim/{path}", json=body or {})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def chaos(self, **settings: Any) -> None:
        self.control("chaos", settings)

    def buy(self, account: str, package: str = "starter") -> str:
        """Checkout through billfold, paid on the simulator: the session id."""
        created = self.api(
            "POST",
            "/v1/checkout/sessions",
            json={"account_id": account, "package": package},
            headers=as_user(account),
        )
        assert created.status_code == 201, created.text
        session_id = str(created.json()["id"])
        self.control(f"sessions/{session_id}/pay")
        return session_id

    def intent(self, session_id: str) -> str:
        return str(self.sdk.v1.checkout.sessions.retrieve(session_id).payment_intent)

    def settle(self) -> None:
        """Every delivery made (or dropped), and what billfold left for its worker processed."""
        self.control("flush", {"timeout": 30})
        drain(self.services)

    def credits(self, account: str) -> int:
        answer = self.api("GET", f"/v1/accounts/{account}")
        if answer.status_code == 404:
            return 0  # billfold has never heard of the account
        return int(answer.json()["balances"].get("credits", 0))

    def sql(self, statement: str, **params: Any) -> Any:
        engine = sa.create_engine(self.db_url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.begin() as conn:
                return conn.execute(sa.text(statement), params)
        finally:
            engine.dispose()

    def dropped_events(self) -> set[str]:
        deliveries = self.http.get(f"{self.sim}/_sim/deliveries").json()["data"]
        return {d["event_id"] for d in deliveries if d["status"] == "failed"}

    def reconcile(self, **kwargs: Any) -> rc.RunRecord:
        return self.services.reconciliation.run(trigger="cli", **kwargs)


MakeShop = Callable[..., Shop]


@pytest.fixture
def make_shop(db_url: str, engine: Any) -> Iterator[MakeShop]:
    started: list[tuple[ServerThread, ServerThread, httpx.Client, Services, Any]] = []

    def make(*, chaos: ChaosSettings | None = None, **overrides: Any) -> Shop:
        late = _Late()
        billfold = ServerThread(late)
        sim = ServerThread(
            create_simulator_app(
                SimulatorConfig(
                    webhook_url=f"{billfold.url}/webhooks/stripe",
                    webhook_secret=SIM_SECRET,
                    api_keys=(STRIPE_KEY,),
                    retry=RetryPolicy(base_seconds=0.02, max_seconds=0.2, max_attempts=5),
                    async_settle_seconds=None,
                    chaos=chaos or ChaosSettings(),
                )
            )
        ).start()
        services = build(
            settings_for(
                db_url,
                stripe_secret_key=STRIPE_KEY,
                stripe_api_base=sim.url,
                stripe_webhook_secrets=SIM_SECRET,
                **{"reconcile_seconds": 0, **overrides},
            )
        )
        late.app = create_app(services=services, run_worker=False)
        billfold.start()
        http = httpx.Client(timeout=30)
        sdk_http = stripe.HTTPXClient(timeout=30, allow_sync_methods=True)
        sdk = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": sim.url}, http_client=sdk_http)
        started.append((billfold, sim, http, services, sdk_http))
        return Shop(
            billfold=billfold.url,
            sim=sim.url,
            http=http,
            sdk=sdk,
            services=services,
            db_url=db_url,
        )

    yield make
    for billfold, sim, http, services, sdk_http in started:
        http.close()
        sdk_http.close()
        billfold.stop()
        sim.stop()
        services.close()


def by_class(run: rc.RunRecord, drift_class: str) -> list[rc.DriftItem]:
    return [i for i in run.items if i.drift_class == drift_class]


def test_given_a_tenth_of_the_webhooks_dropped_for_good_one_run_recovers_everything(
    make_shop: MakeShop,
) -> None:
    shop = make_shop(chaos=ChaosSettings(drop_rate=0.1, seed=13))
    accounts = [f"user_{n}" for n in range(6)]
    sessions = {account: [shop.buy(account) for _ in range(4)] for account in accounts}
    # Refunds (one full, one partial) and a dispute that is lost: their events may be dropped too.
    refunded = shop.sdk.v1.refunds.create(
        params={"payment_intent": shop.intent(sessions["user_0"][0])}
    )
    partial = shop.sdk.v1.refunds.create(
        params={"payment_intent": shop.intent(sessions["user_1"][0]), "amount": 250}
    )
    dispute = shop.control("disputes", {"payment_intent": shop.intent(sessions["user_2"][0])})
    shop.control(f"disputes/{dispute['id']}/close", {"status": "lost"})
    shop.settle()
    # Which events a tenth is depends on the order deliveries are made in; so that the drops lose
    # something that moves a balance whatever that order, one more purchase loses all its events.
    shop.chaos(drop_rate=1.0)
    sessions["user_5"].append(shop.buy("user_5"))
    shop.settle()
    shop.chaos(drop_rate=0.1)
    dropped = shop.dropped_events()
    assert len(dropped) >= 5, "the seed drops too little to prove anything"
    before = {a: shop.credits(a) for a in accounts}
    expected = dict.fromkeys(accounts, 4 * 500)
    expected["user_5"] += 500  # the purchase whose every event was lost
    expected["user_0"] -= 500  # refunded in full
    expected["user_1"] -= 250  # floor(500 * 250 / 499)
    expected["user_2"] -= 500  # dispute lost
    assert before != expected  # the drops did lose something

    run = shop.reconcile()

    assert run.status == "completed", run.error
    assert run.open == 0, [i for i in run.items if not i.healed]
    handled = shop.services.inbox.handled_types
    types = {
        e.id: e.type for e in shop.sdk.v1.events.list(params={"limit": 100}).auto_paging_iter()
    }
    missing = {e for e in dropped if types.get(e) in handled}
    assert run.events_imported == len(missing)
    assert {a: shop.credits(a) for a in accounts} == expected
    assert all(i.healed for i in run.items)
    assert sum(c.found for c in run.drift.values()) == len(run.items)
    for account, paid in sessions.items():
        listed = shop.api(
            "GET", "/v1/orders", params={"account_id": account, "limit": 100}, headers=ADMIN_AUTH
        ).json()["data"]
        assert sorted(o["stripe_id"] for o in listed) == sorted(paid)
    assert refunded.status == partial.status == "succeeded"
    # A second run finds nothing to import and nothing to report.
    again = shop.reconcile()
    assert (again.status, again.events_imported, again.items) == ("completed", 0, ())
    assert {a: shop.credits(a) for a in accounts} == expected


def test_each_drift_class_made_on_purpose_is_reported_with_its_ids_and_amounts(
    make_shop: MakeShop,
) -> None:
    shop = make_shop()
    # paid_not_granted, healed: every event of this purchase is lost in transit.
    shop.chaos(drop_rate=1.0)
    lost = shop.buy("user_lost")
    shop.settle()
    shop.chaos(drop_rate=0.0)
    assert shop.credits("user_lost") == 0
    # paid_not_granted, open: paid for less than the package costs (needs attention).
    cheap = shop.sdk.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "https://shop.example/ok",
            "metadata": {"billfold_account": "user_cheap", "billfold_package": "starter"},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 1,
                        "product_data": {"name": "Starter"},
                    },
                }
            ],
        }
    )
    shop.control(f"sessions/{cheap.id}/pay")
    # refunded_not_clawed_back and disputed_not_held: their records lost from billfold's database.
    refunded_session = shop.buy("user_refund")
    refund = shop.sdk.v1.refunds.create(
        params={"payment_intent": shop.intent(refunded_session), "amount": 200}
    )
    disputed_session = shop.buy("user_dispute")
    dispute = shop.control("disputes", {"payment_intent": shop.intent(disputed_session)})
    # amount_mismatch: billfold's order says another amount than Stripe took.
    mismatched = shop.buy("user_mismatch")
    # subscription_state_drift: billfold's copy says canceled while Stripe says active.
    subscribed = shop.api(
        "POST",
        "/v1/checkout/sessions",
        json={"account_id": "user_sub", "plan": "pro"},
        headers=as_user("user_sub"),
    )
    assert subscribed.status_code == 201, subscribed.text
    shop.control(f"sessions/{subscribed.json()['id']}/pay")
    shop.settle()
    subscription_id = shop.sdk.v1.checkout.sessions.retrieve(subscribed.json()["id"]).subscription
    assert isinstance(subscription_id, str)
    shop.sql("DELETE FROM reversals WHERE key = :key", key=f"refund:{refund.id}")
    shop.sql("DELETE FROM reversals WHERE key = :key", key=f"dispute:{dispute['id']}")
    shop.sql("UPDATE orders SET amount = 999 WHERE key = :key", key=f"checkout:{mismatched}")
    shop.sql("UPDATE subscriptions SET status = 'canceled' WHERE id = :id", id=subscription_id)
    # granted_without_payment: an order fulfilled for a session Stripe never had.
    forged = shop.services.clock()
    shop.sql(
        "INSERT INTO orders (id, key, kind, stripe_id, account_id, package, amount, currency,"
        " status, refunded_amount, disputed_amount, created, updated, fulfilled_at)"
        " VALUES ('ord_forged', 'checkout:cs_test_forged', 'checkout', 'cs_test_forged',"
        " 'user_forged', 'starter', 499, 'usd', 'fulfilled', 0, 0, :t, :t, :t)",
        t=forged,
    )

    run = shop.reconcile()

    assert run.status == "completed", run.error
    paid_not_granted = {i.stripe_ids[0]: i for i in by_class(run, "paid_not_granted")}
    assert set(paid_not_granted) == {lost, cheap.id}
    healed, stuck = paid_not_granted[lost], paid_not_granted[cheap.id]
    assert (healed.healed, healed.amount, healed.currency) == (True, STARTER, "usd")
    assert (stuck.healed, stuck.amount, stuck.currency) == (False, 1, "usd")
    [order] = shop.api(
        "GET", "/v1/orders", params={"account_id": "user_cheap"}, headers=ADMIN_AUTH
    ).json()["data"]
    assert order["status"] == "needs_attention"
    assert stuck.billfold_ids == (order["id"],)
    assert shop.credits("user_lost") == 500

    [refund_item] = by_class(run, "refunded_not_clawed_back")
    assert refund_item.stripe_ids[0] == refund.id
    assert (refund_item.amount, refund_item.currency, refund_item.healed) == (200, "usd", False)
    [dispute_item] = by_class(run, "disputed_not_held")
    assert dispute_item.stripe_ids[0] == dispute["id"]
    assert (dispute_item.amount, dispute_item.healed) == (STARTER, False)
    [mismatch] = by_class(run, "amount_mismatch")
    assert mismatch.stripe_ids[0] == mismatched
    assert (mismatch.amount, mismatch.currency, mismatch.healed) == (STARTER, "usd", False)
    assert "999" in mismatch.note
    [drifted] = by_class(run, "subscription_state_drift")
    assert drifted.stripe_ids[0] == subscription_id
    assert drifted.billfold_ids == ("user_sub",)
    assert drifted.healed  # the subscription sync read it again
    [copy] = shop.api("GET", "/v1/accounts/user_sub/subscriptions").json()["data"]
    assert (copy["id"], copy["status"]) == (subscription_id, "active")
    [forged_item] = by_class(run, "granted_without_payment")
    assert forged_item.billfold_ids == ("ord_forged",)
    assert (forged_item.stripe_ids, forged_item.amount, forged_item.healed) == (
        ("cs_test_forged",),
        STARTER,
        False,
    )
    assert run.drift["paid_not_granted"] == rc.DriftCount(found=2, healed=1, open=1)
    assert run.drift["subscription_state_drift"] == rc.DriftCount(found=1, healed=1, open=0)
    assert run.open == 5

    # The same through the API and the command line.
    body = shop.api("GET", f"/v1/reconciliation/runs/{run.id}", headers=ADMIN_AUTH).json()
    assert body["status"] == "completed"
    assert body["window"] == {"since": run.since, "until": run.until}
    assert body["drift"]["amount_mismatch"] == {"found": 1, "healed": 0, "open": 1}
    assert {"class": "granted_without_payment", "billfold_ids": ["ord_forged"]}.items() <= {
        k: v
        for item in body["items"]
        if item["class"] == "granted_without_payment"
        for k, v in item.items()
    }.items()
    env = {
        "BILLFOLD_DATABASE_URL": shop.db_url,
        "BILLFOLD_STRIPE_SECRET_KEY": STRIPE_KEY,
        "BILLFOLD_STRIPE_API_BASE": shop.sim,
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(cli, ["reconcile", "--since", "1d"], env=env)
    assert result.exit_code == 1, result.output
    assert "5 drift item(s) open" in result.output
    assert "cs_test_forged" in result.output
    assert "ord_forged" in result.output


def test_a_clean_shop_reconciles_with_exit_code_zero(make_shop: MakeShop) -> None:
    shop = make_shop()
    shop.buy("user_1")
    shop.settle()
    env = {
        "BILLFOLD_DATABASE_URL": shop.db_url,
        "BILLFOLD_STRIPE_SECRET_KEY": STRIPE_KEY,
        "BILLFOLD_STRIPE_API_BASE": shop.sim,
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(cli, ["reconcile"], env=env)
    assert result.exit_code == 0, result.output
    assert "no drift left open" in result.output
    bad = CliRunner().invoke(cli, ["reconcile", "--since", "yesterday-ish"], env=env)
    assert bad.exit_code == 2
    assert "not a duration" in bad.output


def test_the_api_starts_a_run_for_the_admin_only_and_reports_it(make_shop: MakeShop) -> None:
    shop = make_shop()
    shop.chaos(drop_rate=1.0)
    session_id = shop.buy("user_api")
    shop.settle()

    for headers, status in ((SERVER, 403), (as_user("user_api"), 403), ({}, 401)):
        refused = shop.api("POST", "/v1/reconciliation/runs", json={}, headers=headers)
        assert refused.status_code == status, refused.text
        listed = shop.api("GET", "/v1/reconciliation/runs", headers=headers)
        assert listed.status_code == status
    assert shop.api("GET", "/v1/reconciliation/runs", headers=ADMIN_AUTH).json() == {
        "object": "list",
        "data": [],
        "has_more": False,
    }
    bad = shop.api(
        "POST",
        "/v1/reconciliation/runs",
        json={"since": 2_000_000_000, "until": 1_000_000_000},
        headers=ADMIN_AUTH,
    )
    assert bad.status_code == 400, bad.text

    now = shop.services.clock()
    started = shop.api(
        "POST",
        "/v1/reconciliation/runs",
        json={"since": now - 3600, "until": now + 60},
        headers=ADMIN_AUTH,
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running"
    assert set(started.json()) == {"id", "status"}
    run_id = started.json()["id"]
    deadline = time.monotonic() + 30
    while True:
        body = shop.api("GET", f"/v1/reconciliation/runs/{run_id}", headers=ADMIN_AUTH).json()
        if body["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert body["status"] == "completed", body
    assert body["window"] == {"since": now - 3600, "until": now + 60}
    assert body["events_imported"] > 0
    assert set(body["drift"]) == set(rc.DRIFT_CLASSES)
    assert body["drift"]["paid_not_granted"] == {"found": 1, "healed": 1, "open": 0}
    [item] = body["items"]
    assert set(item) == {"class", "stripe_ids", "billfold_ids", "amount", "currency", "healed"}
    assert (item["class"], item["amount"], item["currency"], item["healed"]) == (
        "paid_not_granted",
        STARTER,
        "usd",
        True,
    )
    assert item["stripe_ids"][0] == session_id
    assert shop.credits("user_api") == 500

    second = shop.api("POST", "/v1/reconciliation/runs", headers=ADMIN_AUTH)
    assert second.status_code == 202
    listed = shop.api("GET", "/v1/reconciliation/runs", params={"limit": 1}, headers=ADMIN_AUTH)
    page = listed.json()
    assert page["object"] == "list"
    assert page["has_more"] is True
    assert [r["id"] for r in page["data"]] == [second.json()["id"]]  # newest first
    rest = shop.api(
        "GET",
        "/v1/reconciliation/runs",
        params={"starting_after": second.json()["id"]},
        headers=ADMIN_AUTH,
    ).json()
    assert [r["id"] for r in rest["data"]] == [run_id]
    missing = shop.api("GET", "/v1/reconciliation/runs/rcn_unknown", headers=ADMIN_AUTH)
    assert missing.status_code == 404
    assert missing.json()["code"] == "reconciliation_run_not_found"
    # The background run finishes before the test leaves (it uses the database).
    deadline = time.monotonic() + 30
    while shop.services.reconciliation.get(second.json()["id"]).status == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_run_killed_mid_way_is_marked_failed_and_a_rerun_converges(
    make_shop: MakeShop,
) -> None:
    shop = make_shop(worker_lease_seconds=2)
    shop.chaos(drop_rate=1.0)  # nothing arrives: the run has every event to take in
    accounts = [f"user_{n}" for n in range(5)]
    for account in accounts:
        for _ in range(4):
            shop.buy(account)
    shop.settle()
    # Stripe a quarter of a second away: the run is still listing when it is killed.
    slow = FaultProxy(shop.sim, delay=0.25)
    env = billfold_env(
        shop.db_url,
        BILLFOLD_STRIPE_SECRET_KEY=STRIPE_KEY,
        BILLFOLD_STRIPE_API_BASE=slow.url,
        BILLFOLD_WORKER_LEASE_SECONDS="2",
        COLUMNS="250",
    )
    with (
        contextlib.closing(slow),
        process([sys.executable, "-m", "billfold", "reconcile"], env) as proc,
    ):
        deadline = time.monotonic() + 60
        while not shop.services.reconciliation.list(limit=1).data:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # well into the run
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    [killed] = shop.services.reconciliation.list(limit=10).data
    assert killed.status == "running"  # nobody could say otherwise
    granted_before = sum(shop.credits(a) for a in accounts)
    assert granted_before < 5 * 4 * 500

    rerun = shop.reconcile()  # waits for the dead run's lease to lapse, then starts over

    assert rerun.status == "completed", rerun.error
    assert rerun.open == 0
    stale = shop.services.reconciliation.get(killed.id)
    assert stale.status == "failed"
    assert stale.error is not None
    assert "abandoned" in stale.error
    assert stale.finished is not None
    assert {a: shop.credits(a) for a in accounts} == dict.fromkeys(accounts, 4 * 500)
    again = shop.reconcile()
    assert (again.status, again.events_imported, again.items) == ("completed", 0, ())


def test_the_worker_reconciles_on_its_schedule_once_per_interval(make_shop: MakeShop) -> None:
    shop = make_shop(reconcile_seconds=3600)
    shop.chaos(drop_rate=1.0)
    shop.buy("user_scheduled")
    shop.settle()
    worker = Worker(shop.services, name="test-worker")

    worker.reconcile()
    worker.reconcile()  # less than an hour after the first: nothing

    [run] = shop.services.reconciliation.list(limit=10).data
    assert (run.trigger, run.status, run.open) == ("schedule", "completed", 0)
    assert run.events_imported > 0
    assert shop.credits("user_scheduled") == 500

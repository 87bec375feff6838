"""Subscriptions end to end: billfold and the Stripe simulator on real ports, the official SDK
between them, time moved by Stripe's test clocks.

A customer on a test clock subscribes through billfold's checkout, pays on the simulator's hosted
page, and the webhooks arrive; then the clock moves a month at a time and the renewal chain runs
as Stripe runs it. billfold's own clock follows the test clock (what a month later looks like is
what billfold answers), on SQLite and PostgreSQL, with events in a basil-or-later payload and in
``2024-06-20``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stripe
from starlette.types import ASGIApp

from billfold.bootstrap import Services, build
from billfold.entrypoints.http.app import create_app
from billfold.simulator import ChaosSettings, RetryPolicy, SimulatorConfig, create_simulator_app
from billfold.simulator.config import API_VERSION, OLD_API_VERSION
from tests.support.api import ADMIN_AUTH, SERVER, as_user
from tests.support.app import settings_for
from tests.support.servers import ServerThread
from tests.support.subscription_story import drain

pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)

SIM_SECRET = "whsec_subscription_flow"
STRIPE_KEY = "sk_test_subscription_flow"
ACCOUNT = "user_sub"
DAY = 24 * 60 * 60
T0 = 1_893_456_000  # 2030-01-01T00:00:00Z: far from the wall clock, so clock time is visible
FEB_1 = 1_896_134_400
MAR_1 = 1_898_553_600
APR_1 = 1_901_232_000


class _Late:
    """An ASGI app set after the server's port is known (the simulator needs billfold's URL)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


class SimTime:
    """billfold's clock: the test clock's time, moved with it."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class World:
    billfold: str
    sim: str
    http: httpx.Client
    sdk: stripe.StripeClient
    services: Services
    time: SimTime
    api_version: str
    clock_id: str = ""
    customer_id: str = ""

    # --- billfold's API ---------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", SERVER)
        return self.http.request(method, f"{self.billfold}{path}", **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.api(method, path, **kwargs)
        assert answer.is_success, answer.text
        return answer.json()

    def entitlements(self) -> dict[str, Any]:
        found: dict[str, Any] = self.ok("GET", f"/v1/accounts/{ACCOUNT}/entitlements")
        return found

    def subscriptions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.ok("GET", f"/v1/accounts/{ACCOUNT}/subscriptions")[
            "data"
        ]
        return found

    def credits(self) -> int:
        return int(self.ok("GET", f"/v1/accounts/{ACCOUNT}")["balances"]["credits"])

    def grants(self, *, live: bool) -> list[dict[str, Any]]:
        params = {"limit": 100, "live": "true" if live else "false"}
        found: list[dict[str, Any]] = self.ok(
            "GET", f"/v1/accounts/{ACCOUNT}/grants", params=params
        )["data"]
        return found

    def events(self, status: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.ok(
            "GET", "/v1/events", params={"status": status, "limit": 100}, headers=ADMIN_AUTH
        )["data"]
        return found

    def assert_converged(self, *, duplicates: bool = False) -> None:
        """Every event billfold received is settled, in the simulator's API version, and the
        simulator delivered each (more than once when asked to)."""
        for status in ("received", "failed", "dead"):
            assert self.events(status) == [], status
        processed = self.events("processed")
        assert processed
        one = self.ok("GET", f"/v1/events/{processed[0]['id']}", headers=ADMIN_AUTH)
        assert one["payload"]["api_version"] == self.api_version
        deliveries = self.http.get(f"{self.sim}/_sim/deliveries").json()["data"]
        assert {d["status"] for d in deliveries} == {"succeeded"}
        per_event = [d["event_id"] for d in deliveries]
        assert (len(per_event) > len(set(per_event))) is duplicates

    # --- the simulator ------------------------------------------------------------------------

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.http.post(f"{self.sim}/_sim/{path}", json=body or {})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def settle(self) -> None:
        """Every delivery made, and every event billfold left for its worker processed."""
        self.control("flush", {"timeout": 20})
        drain(self.services)

    def advance(self, to: int) -> None:
        """Move the test clock (and billfold's clock with it), and let the chain run."""
        self.time.now = to
        self.sdk.v1.test_helpers.test_clocks.advance(self.clock_id, params={"frozen_time": to})
        self.settle()
        ready = self.sdk.v1.test_helpers.test_clocks.retrieve(self.clock_id)
        assert (ready.status, ready.frozen_time) == ("ready", to)

    # --- a customer's story ---------------------------------------------------------------------

    def customer_on_clock(self, start: int = T0) -> None:
        """A test clock, and a Stripe customer on it linked to the account before checkout."""
        self.time.now = start
        clock = self.sdk.v1.test_helpers.test_clocks.create(
            params={"frozen_time": start, "name": "subscription flow"}
        )
        customer = self.sdk.v1.customers.create(
            params={"email": "ada@example.com", "name": "Ada", "test_clock": clock.id}
        )
        self.clock_id, self.customer_id = clock.id, customer.id
        self.ok("PUT", f"/v1/accounts/{ACCOUNT}", json={"stripe_customer_id": customer.id})

    def checkout(self, plan: str = "pro") -> dict[str, Any]:
        """Subscribe through billfold's checkout, pay on the hosted page, and fulfil."""
        created = self.ok(
            "POST",
            "/v1/checkout/sessions",
            json={"account_id": ACCOUNT, "plan": plan, "success_url": "https://app.example/ok"},
            headers=as_user(ACCOUNT),
        )
        page = self.http.get(created["url"])
        assert page.status_code == 200, page.text
        paid = self.http.post(created["url"], data={"action": "pay"})
        assert paid.status_code == 303, paid.text
        assert paid.headers["location"].endswith(f"session_id={created['id']}")
        fulfilled: dict[str, Any] = self.ok(
            "POST", f"/v1/checkout/sessions/{created['id']}/fulfill", headers=as_user(ACCOUNT)
        )
        return fulfilled


MakeWorld = Callable[..., World]


@pytest.fixture(params=[API_VERSION, OLD_API_VERSION], ids=["basil", "legacy"])
def api_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_world(db_url: str, engine: Any, api_version: str) -> Iterator[MakeWorld]:
    started: list[tuple[ServerThread, ServerThread, httpx.Client, Services, Any]] = []

    def make(*, chaos: ChaosSettings | None = None, webhooks: bool = True) -> World:
        late = _Late()
        billfold = ServerThread(late)
        sim = ServerThread(
            create_simulator_app(
                SimulatorConfig(
                    webhook_url=f"{billfold.url}/webhooks/stripe" if webhooks else None,
                    webhook_secret=SIM_SECRET,
                    api_keys=(STRIPE_KEY,),
                    retry=RetryPolicy(base_seconds=0.02, max_seconds=0.2, max_attempts=5),
                    async_settle_seconds=None,
                    clock_advance_seconds=0.0,
                    api_version=api_version,
                    chaos=chaos or ChaosSettings(),
                )
            )
        ).start()
        time = SimTime(T0)
        services = build(
            settings_for(
                db_url,
                stripe_secret_key=STRIPE_KEY,
                stripe_api_base=sim.url,
                stripe_webhook_secrets=SIM_SECRET,
            ),
            clock=time,
        )
        late.app = create_app(services=services, run_worker=False)
        billfold.start()
        http = httpx.Client(timeout=30)
        sdk_http = stripe.HTTPXClient(timeout=30, allow_sync_methods=True)
        sdk = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": sim.url}, http_client=sdk_http)
        started.append((billfold, sim, http, services, sdk_http))
        return World(
            billfold=billfold.url,
            sim=sim.url,
            http=http,
            sdk=sdk,
            services=services,
            time=time,
            api_version=api_version,
        )

    yield make
    for billfold, sim, http, services, sdk_http in started:
        http.close()
        sdk_http.close()
        billfold.stop()
        sim.stop()
        services.close()


def allowances(world: World, *, live: bool) -> list[tuple[int, int, int | None]]:
    """The account's allowance grants: (amount, remaining, expires_at), oldest first."""
    found = [g for g in world.grants(live=live) if g["kind"] == "allowance"]
    return sorted((g["amount"], g["remaining"], g["expires_at"]) for g in found)


# Stripe at its worst: half the events twice, every burst shuffled and in one second.
CHAOS = ChaosSettings(duplicate_rate=0.5, reorder=True, same_second=True, seed=11)


@pytest.mark.parametrize("chaos", [None, CHAOS], ids=["calm", "chaos"])
def test_subscribe_renew_fail_grace_default_and_recover(
    make_world: MakeWorld, chaos: ChaosSettings | None
) -> None:
    world = make_world(chaos=chaos)
    world.customer_on_clock()

    # Subscribe: the success page answers the plan before any webhook is looked at.
    fulfilled = world.checkout("pro")
    assert fulfilled["mode"] == "subscription"
    assert fulfilled["status"] == "fulfilled"
    assert fulfilled["plan"] == "pro"
    assert fulfilled["entitlements"]["source"] == "subscription"
    assert fulfilled["entitlements"]["features"] == {
        "auto_trading": True,
        "priority_support": False,
    }
    assert fulfilled["balances"]["credits"] == 1000
    world.settle()
    pro = world.entitlements()
    assert (pro["plan"], pro["source"], pro["status"]) == ("pro", "subscription", "active")
    assert pro["limits"] == {"max_positions": 50}
    assert pro["current_period_end"] == FEB_1
    [sub] = world.subscriptions()
    assert sub["id"] == fulfilled["subscription_id"]
    assert sub["customer_id"] == world.customer_id
    assert (sub["current_period_start"], sub["current_period_end"]) == (T0, FEB_1)
    # Pro's 1000 credits: 800 for January, and up to 200 unused carried one period further
    # (a lot that expires one period's length, January's 31 days, after January ends).
    assert allowances(world, live=True) == [(200, 200, FEB_1 + 31 * DAY), (800, 800, FEB_1)]
    assert world.credits() == 1000

    # A month later: February's allowance, and January's expired.
    world.advance(FEB_1 + 60)
    assert world.entitlements()["current_period_end"] == MAR_1
    assert allowances(world, live=False) == [
        (200, 200, FEB_1 + 31 * DAY),
        (200, 200, MAR_1 + 28 * DAY),
        (800, 0, FEB_1),
        (800, 800, MAR_1),
    ]
    assert world.credits() == 1200  # 800 + 200 for February, and January's 200 carried

    # The next renewal fails (and so does the first retry, three days later).
    world.control(f"customers/{world.customer_id}/fail_next_payment", {"count": 2})
    world.advance(MAR_1 + 60)
    grace = world.entitlements()
    assert (grace["plan"], grace["source"], grace["status"]) == ("pro", "grace", "past_due")
    assert grace["grace_until"] == MAR_1 + 3 * DAY  # from Stripe's time of the first failure
    assert grace["features"]["auto_trading"] is True
    [sub] = world.subscriptions()
    assert (sub["status"], sub["past_due_since"]) == ("past_due", MAR_1)
    # Nothing for March until it is paid; February's 800 expired, the two carried 200s live.
    assert world.credits() == 400

    # After the grace period: the default plan, though Stripe still says past_due.
    world.advance(MAR_1 + 3 * DAY + 3600)
    lapsed = world.entitlements()
    assert (lapsed["plan"], lapsed["source"], lapsed["status"]) == ("free", "default", "past_due")
    assert lapsed["grace_until"] == MAR_1 + 3 * DAY
    assert lapsed["features"] == {"auto_trading": False, "priority_support": False}
    assert lapsed["limits"] == {"max_positions": 5}
    assert world.credits() == 200  # January's carried 200 ran out on March 4

    # Recover: the customer pays the open invoice with a new card.
    [open_invoice] = world.sdk.v1.invoices.list(
        params={"subscription": sub["id"], "status": "open"}
    ).data
    assert open_invoice.attempt_count == 2
    world.sdk.v1.invoices.pay(open_invoice.id, params={"payment_method": "pm_card_visa"})
    world.settle()
    back = world.entitlements()
    assert (back["plan"], back["source"], back["status"]) == ("pro", "subscription", "active")
    assert back["grace_until"] is None
    [sub] = world.subscriptions()
    assert (sub["status"], sub["past_due_since"]) == ("active", None)
    assert allowances(world, live=True)[-2:] == [(200, 200, APR_1 + 31 * DAY), (800, 800, APR_1)]
    assert world.credits() == 1200
    world.assert_converged(duplicates=chaos is not None)

    # What the application heard, in the outbox: each written with the change it reports.
    sent = notifications(world)
    kinds = {n["type"] for n in sent}
    assert {
        "credits.granted",
        "subscription.updated",
        "entitlements.updated",
        "payment.failed",
    } <= kinds
    for n in sent:
        assert n["body"]["data"]["account_id"] == ACCOUNT
        assert n["body"]["type"] == n["type"]
    failed = [n["body"]["data"] for n in sent if n["type"] == "payment.failed"]
    assert failed[0]["stripe"]["invoice"] == open_invoice.id
    assert failed[0]["stripe"]["subscription"] == sub["id"]
    assert failed[0]["amount"] == open_invoice.amount_due
    statuses = [
        n["body"]["data"]["status"] for n in reversed(sent) if n["type"] == "subscription.updated"
    ]
    assert "past_due" in statuses
    assert statuses[-1] == "active"
    plans = [
        n["body"]["data"]["plan"] for n in reversed(sent) if n["type"] == "entitlements.updated"
    ]
    assert plans[0] == "pro"
    # No spend took the balance below the catalog's 100: the account shows no alert.
    account = world.http.get(f"{world.billfold}/v1/accounts/{ACCOUNT}", headers=SERVER).json()
    assert account["low_balance"] == {"credits": 100}
    assert account["low_balance_alerts"] == {"credits": False}


def notifications(world: World) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"account_id": ACCOUNT, "limit": 100}
        if after:
            params["starting_after"] = after
        page = world.http.get(
            f"{world.billfold}/v1/notifications", params=params, headers=ADMIN_AUTH
        ).json()
        found += page["data"]
        if not page["has_more"]:
            return found
        after = page["data"][-1]["id"]


def test_an_upgrade_billed_at_once_grants_the_prorated_difference(make_world: MakeWorld) -> None:
    world = make_world()
    world.customer_on_clock()
    world.checkout("pro")
    world.settle()
    mid = T0 + 15 * DAY  # 16 of January's 31 days are left
    world.advance(mid)

    changed = world.ok(
        "POST",
        f"/v1/accounts/{ACCOUNT}/subscription",
        json={"plan": "elite", "proration": "always_invoice"},
        headers=as_user(ACCOUNT),  # the account's own user may change its plan
    )
    assert changed["plan"] == "elite"
    elite = world.entitlements()  # at once, before any webhook
    assert (elite["plan"], elite["source"]) == ("elite", "subscription")
    assert elite["features"] == {"auto_trading": True, "priority_support": True}
    world.settle()

    [invoice] = world.sdk.v1.invoices.list(
        params={"subscription": changed["id"], "status": "paid", "limit": 1}
    ).data
    assert invoice.billing_reason == "subscription_update"
    assert invoice.amount_paid > 0
    left, length = FEB_1 - mid, FEB_1 - T0
    upgrade = [
        (g["unit"], g["amount"], g["expires_at"])
        for g in world.grants(live=True)
        if g["created"] >= mid
    ]
    # Elite's 5000 credits and 100 tokens less Pro's 1000 credits, for 16 days of 31, rounded down.
    assert sorted(upgrade) == [
        ("credits", (5000 - 1000) * left // length, FEB_1),
        ("tokens", 100 * left // length, FEB_1),
    ]
    assert sorted(upgrade)[0][1] == 2064

    # February is billed at Elite's price, and grants Elite's allowance.
    world.advance(FEB_1 + 60)
    renewal = [(g["unit"], g["amount"]) for g in world.grants(live=True) if g["created"] > FEB_1]
    assert sorted(renewal) == [("credits", 5000), ("tokens", 100)]
    world.assert_converged()


def test_cancel_at_period_end_keeps_the_plan_until_then_and_cancel_now_ends_it(
    make_world: MakeWorld,
) -> None:
    world = make_world()
    world.customer_on_clock()
    world.checkout("pro")
    world.settle()

    ending = world.ok("DELETE", f"/v1/accounts/{ACCOUNT}/subscription", headers=as_user(ACCOUNT))
    assert (ending["status"], ending["cancel_at_period_end"]) == ("active", True)
    world.settle()
    still = world.entitlements()
    assert (still["plan"], still["source"], still["current_period_end"]) == (
        "pro",
        "subscription",
        FEB_1,
    )
    world.advance(FEB_1 + 60)
    ended = world.entitlements()
    assert (ended["plan"], ended["source"], ended["status"]) == ("free", "default", "canceled")
    [sub] = world.subscriptions()
    assert (sub["status"], sub["ended_at"]) == ("canceled", FEB_1)
    # No February allowance; January's carried 200 keeps its expiry.
    assert allowances(world, live=True) == [(200, 200, FEB_1 + 31 * DAY)]

    # Subscribe again, and cancel that one now: the default plan at once.
    world.checkout("pro")
    world.settle()
    assert world.entitlements()["plan"] == "pro"
    now = world.ok(
        "DELETE", f"/v1/accounts/{ACCOUNT}/subscription", params={"at_period_end": "false"}
    )
    assert now["status"] == "canceled"
    assert world.entitlements()["plan"] == "free"
    world.settle()
    assert [s["status"] for s in world.subscriptions()] == ["canceled", "canceled"]
    assert world.entitlements()["source"] == "default"
    # The allowance already granted is kept until its own expiry (only a refund takes it back).
    assert world.credits() == 1200
    world.assert_converged()


def test_the_billing_portal_opens_and_its_cancellation_reaches_billfold(
    make_world: MakeWorld,
) -> None:
    world = make_world()
    world.customer_on_clock()
    sub_id = world.checkout("pro")["subscription_id"]
    world.settle()

    portal = world.ok(
        "POST",
        f"/v1/accounts/{ACCOUNT}/billing-portal",
        json={"return_url": "https://app.example/account"},
        headers=as_user(ACCOUNT),
    )
    assert portal["url"].startswith(f"{world.sim}/portal/bps_")
    page = world.http.get(portal["url"])
    assert page.status_code == 200
    assert "Pro" in page.text
    assert "https://app.example/account" in page.text

    # The customer cancels on the portal: Stripe's portal sets cancel_at, not
    # cancel_at_period_end, and billfold keeps the plan until then.
    done = world.http.post(portal["url"], data={"action": "cancel", "subscription": sub_id})
    assert done.status_code == 200, done.text
    world.settle()
    [sub] = world.subscriptions()
    assert (sub["cancel_at"], sub["cancel_at_period_end"]) == (FEB_1, False)
    assert world.entitlements()["plan"] == "pro"
    world.advance(FEB_1 + 60)
    assert world.entitlements()["plan"] == "free"
    world.assert_converged()


def test_sync_repairs_a_subscription_whose_webhooks_never_came(make_world: MakeWorld) -> None:
    world = make_world(webhooks=False)
    world.customer_on_clock()
    created = world.ok(
        "POST",
        "/v1/checkout/sessions",
        json={"account_id": ACCOUNT, "plan": "pro", "success_url": "https://app.example/ok"},
    )
    # Paid, but the customer never came back to the success page and no webhook arrives.
    assert world.http.post(created["url"], data={"action": "pay"}).status_code == 303
    assert world.entitlements()["source"] == "default"
    assert world.subscriptions() == []

    report = world.ok("POST", f"/v1/accounts/{ACCOUNT}/sync", headers=as_user(ACCOUNT))
    assert report["subscriptions"] == 1
    assert report["failures"] == []
    assert any("active" in c["what"] for c in report["changes"])
    pro = world.entitlements()
    assert (pro["plan"], pro["source"], pro["current_period_end"]) == (
        "pro",
        "subscription",
        FEB_1,
    )
    assert world.credits() == 1000

    # A month goes by, still without a webhook: billfold's copy is a period behind...
    world.advance(FEB_1 + 60)
    assert world.subscriptions()[0]["current_period_end"] == FEB_1
    assert world.credits() == 200
    # ... until a sync: February's period and allowance, once however often it runs.
    world.ok("POST", f"/v1/accounts/{ACCOUNT}/sync")
    again = world.ok("POST", f"/v1/accounts/{ACCOUNT}/sync")
    assert again["changes"] == []
    assert world.subscriptions()[0]["current_period_end"] == MAR_1
    assert world.credits() == 1200
    assert allowances(world, live=True) == [
        (200, 200, FEB_1 + 31 * DAY),
        (200, 200, MAR_1 + 28 * DAY),
        (800, 800, MAR_1),
    ]

    # An upgrade billed at once, its webhooks dropped too: the sync grants its prorated share.
    world.ok(
        "POST",
        f"/v1/accounts/{ACCOUNT}/subscription",
        json={"plan": "elite", "proration": "always_invoice"},
    )
    world.ok("POST", f"/v1/accounts/{ACCOUNT}/sync")
    left, length = MAR_1 - (FEB_1 + 60), MAR_1 - FEB_1
    upgrade = sorted(
        (g["unit"], g["amount"])
        for g in world.grants(live=True)
        if g["reason"] == "Elite allowance"
    )
    assert upgrade == [("credits", 4000 * left // length), ("tokens", 100 * left // length)]

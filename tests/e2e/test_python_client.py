"""billfold.client against a live ``billfold serve`` (a real process, with the Stripe simulator
beside it), on SQLite and on PostgreSQL: every operation, typed answers and errors, paging, and
retries through a proxy that drops connections and answers 503 and 429."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from billfold import schemas
from billfold.client import APIConnectionError, AsyncClient, Client
from billfold.domain import errors
from tests.conftest import assert_ledger_invariants, postgres_url, truncate_all
from tests.support import aio
from tests.support.faultproxy import FaultProxy
from tests.support.live import Live, live_billfold
from tests.support.servers import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
    ),
]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path
) -> Iterator[Live]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("client") / "billfold.db"
        shutil.copy(_sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        truncate_all(request.getfixturevalue("_pg_engine"))
        url = postgres_url()
    with live_billfold(url) as server:
        yield server
    assert_ledger_invariants(url)


@pytest.fixture
def account() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app(live: Live) -> Iterator[Client]:
    with Client(live.url, api_key=live.api_key) as client:
        yield client


@pytest.fixture
def admin(live: Live) -> Iterator[Client]:
    with Client(live.url, admin_token=live.admin_token) as client:
        yield client


def test_catalog_health_and_accounts(live: Live, app: Client, account: str) -> None:
    assert app.health().database == "ok"
    catalog = app.get_catalog()
    assert isinstance(catalog, schemas.CatalogResponse)
    assert "starter" in [p.id for p in catalog.packages]
    with pytest.raises(errors.AccountNotFound):
        app.get_account(account)
    created = app.update_account(account, email="ada@example.com", metadata={"tier": "gold"})
    assert (created.email, created.metadata) == ("ada@example.com", {"tier": "gold"})
    kept = app.update_account(account, metadata={"tier": "silver"})
    assert kept.email == "ada@example.com"  # left out: unchanged
    cleared = app.update_account(account, email=None)
    assert cleared.email is None
    assert cleared.metadata == {"tier": "silver"}
    assert app.get_account(account).balances["credits"] == 0


def test_grant_spend_hold_capture_release_and_typed_errors(
    app: Client, admin: Client, account: str
) -> None:
    granted = admin.create_grant(account, "credits", 100, reason="welcome")
    assert (granted.amount, granted.balance) == (100, 100)
    spent = app.spend(account, "credits", 30, reason="report")
    assert isinstance(spent, schemas.SpendResponse)
    assert spent.balance == 70
    with pytest.raises(errors.InsufficientBalance) as short:
        app.spend(account, "credits", 71)
    assert (short.value.available, short.value.requested) == (70, 71)
    hold = app.create_hold(account, "credits", 50, reason="render", ttl_seconds=600)
    assert (hold.status, hold.balance) == ("active", 20)
    assert app.get_hold(hold.id).status == "active"
    captured = app.capture_hold(hold.id, amount=20)
    assert (captured.status, captured.captured, captured.balance) == ("captured", 20, 50)
    with pytest.raises(errors.HoldNotActive):
        app.capture_hold(hold.id)
    second = app.create_hold(account, "credits", 10)
    released = app.release_hold(second.id)
    assert (released.status, released.balance) == ("released", 50)
    with pytest.raises(errors.HoldNotActive):
        app.release_hold(second.id)
    with pytest.raises(errors.NotFound):
        app.get_hold("hold_does_not_exist")
    with pytest.raises(errors.UnknownUnit):
        app.spend(account, "gold_bars", 1)
    assert app.get_account(account).balances["credits"] == 50


def test_idempotency_keys_replay_and_conflict(app: Client, admin: Client, account: str) -> None:
    admin.create_grant(account, "credits", 100, reason="welcome", idempotency_key=f"{account}-g")
    again = admin.create_grant(
        account, "credits", 100, reason="welcome", idempotency_key=f"{account}-g"
    )
    assert again.balance == 100  # the first answer, given again: nothing granted twice
    first = app.spend(account, "credits", 10, idempotency_key=f"{account}-s")
    replay = app.spend(account, "credits", 10, idempotency_key=f"{account}-s")
    assert replay.transaction_id == first.transaction_id
    with pytest.raises(errors.IdempotencyConflict):
        app.spend(account, "credits", 11, idempotency_key=f"{account}-s")
    assert app.get_account(account).balances["credits"] == 90


def test_lists_page_with_starting_after(app: Client, admin: Client, account: str) -> None:
    for n in range(5):
        admin.create_grant(account, "credits", 10 + n, reason=f"grant {n}")
    for _ in range(4):
        app.spend(account, "credits", 1)
    transactions = list(app.list_transactions(account, limit=2))  # five requests of two
    assert len(transactions) == 9
    assert len({t.id for t in transactions}) == 9
    assert [t.kind for t in transactions][:4] == ["spend"] * 4  # newest first
    assert [t.id for t in app.list_transactions(account, limit=100)] == [t.id for t in transactions]
    later = list(app.list_transactions(account, limit=3, starting_after=transactions[3].id))
    assert [t.id for t in later] == [t.id for t in transactions[4:]]
    grants = list(app.list_grants(account, limit=2))
    assert sorted(g.amount for g in grants) == [10, 11, 12, 13, 14]
    assert all(isinstance(g, schemas.GrantResponse) for g in grants)
    assert len(list(app.list_grants(account, live=True, limit=1))) == 5
    with pytest.raises(errors.ValidationError):
        next(app.list_transactions(account, starting_after="not-a-cursor"))


def test_accounts_searched_holds_listed_and_an_adjustment(
    app: Client, admin: Client, account: str
) -> None:
    customer = f"cus_{account.removeprefix('user_')}"
    app.update_account(account, email=f"{account}@Example.com", stripe_customer_id=customer)
    admin.create_grant(account, "credits", 100, reason="start")
    [found] = admin.list_accounts(email=f"{account}@example.com")
    assert (found.id, found.balances["credits"]) == (account, 100)
    assert [a.id for a in admin.list_accounts(stripe_customer_id=customer)] == [account]
    assert [a.id for a in admin.list_accounts(query=customer, limit=1)] == [account]
    hold = app.create_hold(account, "credits", 10)
    assert [h.id for h in app.list_holds(account, status="active")] == [hold.id]
    assert list(admin.list_holds(account, status="released")) == []
    done = admin.create_adjustment(account, "credits", 30, reason="ticket 9", idempotency_key="a9")
    assert (done.amount, done.balance, done.reason) == (30, 60, "ticket 9")
    again = admin.create_adjustment(account, "credits", 30, reason="ticket 9", idempotency_key="a9")
    assert again == done
    with pytest.raises(errors.InsufficientBalance) as short:
        admin.create_adjustment(account, "credits", 61, reason="too much")
    assert short.value.available == 60
    with pytest.raises(errors.Forbidden):
        next(app.list_accounts(query=account))


def test_credentials_are_checked_and_errors_are_typed(live: Live, account: str) -> None:
    with Client(live.url, api_key="sk_wrong") as wrong, pytest.raises(errors.Unauthenticated):
        wrong.get_account(account)
    with Client(live.url, user_token=live.user_token(account)) as user:
        assert user.get_account(account).balances["credits"] == 0  # their own: empty, not 404
        with pytest.raises(errors.Forbidden):
            user.spend(account, "credits", 1)  # spending is the application's
        with pytest.raises(errors.Forbidden):
            user.get_account("someone_else")
        with pytest.raises(errors.Forbidden):
            next(user.list_orders())


def test_checkout_fulfil_orders_and_events(live: Live, admin: Client, account: str) -> None:
    with Client(live.url, user_token=live.user_token(account)) as user:
        session = user.create_checkout_session(account, package="starter")
        assert session.url.startswith(live.sim)
        assert user.fulfill_checkout_session(session.id).status == "pending"
        live.pay(session.id)
        done = user.fulfill_checkout_session(session.id)
        assert (done.status, done.balances["credits"]) == ("fulfilled", 500)
        assert user.fulfill_checkout_session(session.id).balances["credits"] == 500  # once
        history = list(user.list_transactions(account))
        assert [t.net for t in history] == [500]
    orders = list(admin.list_orders(account_id=account))
    assert [(o.status, o.package) for o in orders] == [("fulfilled", "starter")]
    assert admin.get_order(orders[0].id).stripe_id == session.id
    assert admin.resolve_order(orders[0].id).status == "fulfilled"  # already: nothing more
    with pytest.raises(errors.NotFound):
        admin.get_order("ord_does_not_exist")
    events = list(admin.list_events(type="checkout.session.completed", limit=1))
    assert events
    mine = [e for e in events if e.object_id == session.id]
    assert [e.status for e in mine] == ["processed"]
    shown = admin.get_event(mine[0].id)
    assert shown.payload is not None
    assert shown.payload["data"]["object"]["id"] == session.id
    assert shown.attempt_history == []  # processed at the first attempt
    assert json.loads(admin.get_event_payload(mine[0].id)) == shown.payload
    created = shown.stripe_created
    assert created is not None
    around = list(admin.list_events(created={"gte": created, "lte": created}))
    assert mine[0].id in [e.id for e in around]
    assert list(admin.list_events(created={"gt": created}, type=shown.type)) == [
        e for e in admin.list_events(type=shown.type) if (e.stripe_created or 0) > created
    ]
    with pytest.raises(ValueError, match="created takes gt, gte, lt, lte"):
        admin.list_events(created={"since": created})
    with pytest.raises(errors.ValidationError, match=r"created\[gte\]"):
        list(admin.list_events(created={"gte": -1}))
    with pytest.raises(errors.EventNotRetryable):
        admin.retry_event(mine[0].id)
    with pytest.raises(errors.NotFound):
        admin.get_event("evt_does_not_exist")
    with pytest.raises(errors.NotFound):
        admin.get_event_payload("evt_does_not_exist")

    async def in_async() -> tuple[bytes, list[str]]:
        async with AsyncClient(live.url, admin_token=live.admin_token) as client:
            raw = await client.get_event_payload(mine[0].id)
            ids = [e.id async for e in client.list_events(created={"gte": created, "lte": created})]
        return raw, ids

    raw, ids = aio.run(in_async())
    assert raw == admin.get_event_payload(mine[0].id)
    assert mine[0].id in ids


def test_the_dashboard_counts_a_purchase(live: Live, admin: Client, account: str) -> None:
    before = admin.dashboard(days=1)
    with Client(live.url, user_token=live.user_token(account)) as user:
        session = user.create_checkout_session(account, package="starter")
        live.pay(session.id)
        assert user.fulfill_checkout_session(session.id).status == "fulfilled"
    after = admin.dashboard(days=1)
    assert (after.object, after.days, after.until - after.since) == ("dashboard", 1, 86_400)
    assert sum(d.count for d in after.purchases_per_day) == (
        sum(d.count for d in before.purchases_per_day) + 1
    )
    paid = sum(d.paid.get("credits", 0) for d in after.credits_per_day)
    assert paid == sum(d.paid.get("credits", 0) for d in before.credits_per_day) + 500
    with pytest.raises(errors.ValidationError):
        admin.dashboard(days=0)
    with (
        Client(live.url, user_token=live.user_token(account)) as user,
        pytest.raises(errors.Forbidden),
    ):
        user.dashboard()


def test_subscriptions_and_entitlements(
    live: Live, app: Client, admin: Client, account: str
) -> None:
    free = app.get_entitlements(account)
    assert (free.plan, free.source) == ("free", "default")
    checked = app.check(account, feature="auto_trading", unit="credits", amount=1)
    assert not checked.allowed
    assert {r.code for r in checked.reasons} == {"feature_not_in_plan", "insufficient_balance"}
    assert list(app.list_subscriptions(account)) == []
    with pytest.raises(errors.NotFound):
        app.change_plan(account, "elite")
    session = app.create_checkout_session(account, plan="pro")
    assert session.mode == "subscription"
    live.pay(session.id)
    assert app.fulfill_checkout_session(session.id).plan == "pro"
    subscriptions = list(app.list_subscriptions(account))
    assert [(s.plan, s.status) for s in subscriptions] == [("pro", "active")]
    assert app.get_entitlements(account).plan == "pro"
    assert app.check(account, feature="auto_trading").allowed
    changed = app.change_plan(account, "elite", proration="none")
    assert changed.plan == "elite"
    portal = app.billing_portal(account, return_url="https://app.example/account")
    assert portal.url.startswith("http")
    synced = app.sync_account(account)
    assert synced.accounts == 1
    canceled = app.cancel_subscription(account)
    assert canceled.cancel_at_period_end
    ended = app.cancel_subscription(account, at_period_end=False)
    assert ended.status == "canceled"
    everyone = list(admin.list_all_subscriptions(limit=1))
    assert subscriptions[0].id in [s.id for s in everyone]
    assert admin.sync_all_subscriptions().accounts >= 1


def test_the_async_client(live: Live, account: str) -> None:
    async def run() -> None:
        async with (
            AsyncClient(live.url, api_key=live.api_key) as app,
            AsyncClient(live.url, admin_token=live.admin_token) as admin,
        ):
            await admin.create_grant(account, "credits", 10, reason="welcome")
            spends = await asyncio.gather(*(app.spend(account, "credits", 1) for _ in range(4)))
            assert sorted(s.balance for s in spends) == [6, 7, 8, 9]
            with pytest.raises(errors.InsufficientBalance) as short:
                await app.spend(account, "credits", 7)
            assert short.value.available == 6
            seen = [t.id async for t in app.list_transactions(account, limit=2)]
            assert len(seen) == len(set(seen)) == 5
            assert (await app.get_account(account)).balances["credits"] == 6

    aio.run(run())


# --- retries through a proxy that misbehaves ----------------------------------------------------


@pytest.fixture
def proxy(live: Live) -> Iterator[FaultProxy]:
    found = FaultProxy(live.url)
    yield found
    found.close()


def test_a_spend_whose_answer_is_lost_is_retried_with_its_key_and_happens_once(
    live: Live, proxy: FaultProxy, admin: Client, app: Client, account: str
) -> None:
    admin.create_grant(account, "credits", 100, reason="welcome")
    sleeps: list[float] = []
    with Client(proxy.url, api_key=live.api_key, max_retries=4, sleep=sleeps.append) as flaky:
        proxy.faults("drop", "503", "429:1", "drop")
        done = flaky.spend(account, "credits", 25, reason="lost answers")
    keys = [s.idempotency_key for s in proxy.seen]
    assert len(keys) == 5
    assert keys[0] is not None
    assert set(keys) == {keys[0]}
    assert [s.forwarded for s in proxy.seen] == [True, False, False, True, True]
    assert 1.0 in sleeps  # the 429's Retry-After
    assert done.balance == 75
    spends = [t for t in app.list_transactions(account) if t.kind == "spend"]
    assert len(spends) == 1
    assert spends[0].id == done.transaction_id
    assert app.get_account(account).balances["credits"] == 75


def test_a_hold_captured_through_lost_answers_is_captured_once(
    live: Live, proxy: FaultProxy, admin: Client, app: Client, account: str
) -> None:
    admin.create_grant(account, "credits", 100, reason="welcome")
    with Client(proxy.url, api_key=live.api_key, max_retries=3, sleep=lambda _: None) as flaky:
        proxy.faults("drop", "drop")
        hold = flaky.create_hold(account, "credits", 40)
        assert len({s.idempotency_key for s in proxy.seen}) == 1
        proxy.faults("drop", "503")
        captured = flaky.capture_hold(hold.id, amount=30)
        assert len({s.idempotency_key for s in proxy.seen}) == 1
    assert (captured.status, captured.captured, captured.balance) == ("captured", 30, 70)
    holds_taken = [t for t in app.list_transactions(account) if t.kind != "grant"]
    assert app.get_account(account).balances["credits"] == 70
    assert app.get_hold(hold.id).captured == 30
    kinds = [t.kind for t in holds_taken]
    assert len(kinds) == len(set(kinds)) == 2, kinds  # one hold, one capture
    assert sum(t.net for t in holds_taken) == -30


def test_when_billfold_stays_unreachable_the_connection_error_is_raised(
    live: Live, proxy: FaultProxy, app: Client, account: str
) -> None:
    with Client(proxy.url, api_key=live.api_key, max_retries=2, sleep=lambda _: None) as flaky:
        proxy.faults("refuse", "refuse", "refuse")
        with pytest.raises(APIConnectionError):
            flaky.spend(account, "credits", 1)
    assert [s.forwarded for s in proxy.seen] == [False, False, False]
    nowhere = Client(f"http://127.0.0.1:{free_port()}", api_key="k", max_retries=1)
    with nowhere, pytest.raises(APIConnectionError):
        nowhere.get_catalog()


OPERATIONS = {
    ("GET", "/healthz"): "health",
    ("GET", "/v1/catalog"): "get_catalog",
    ("GET", "/v1/accounts"): "list_accounts",
    ("GET", "/v1/accounts/{account_id}"): "get_account",
    ("PUT", "/v1/accounts/{account_id}"): "update_account",
    ("GET", "/v1/accounts/{account_id}/grants"): "list_grants",
    ("POST", "/v1/accounts/{account_id}/grants"): "create_grant",
    ("GET", "/v1/accounts/{account_id}/transactions"): "list_transactions",
    ("POST", "/v1/accounts/{account_id}/spend"): "spend",
    ("POST", "/v1/accounts/{account_id}/holds"): "create_hold",
    ("GET", "/v1/accounts/{account_id}/holds"): "list_holds",
    ("POST", "/v1/accounts/{account_id}/adjustments"): "create_adjustment",
    ("GET", "/v1/holds/{hold_id}"): "get_hold",
    ("POST", "/v1/holds/{hold_id}/capture"): "capture_hold",
    ("POST", "/v1/holds/{hold_id}/release"): "release_hold",
    ("POST", "/v1/checkout/sessions"): "create_checkout_session",
    ("POST", "/v1/checkout/sessions/{session_id}/fulfill"): "fulfill_checkout_session",
    ("GET", "/v1/accounts/{account_id}/entitlements"): "get_entitlements",
    ("POST", "/v1/accounts/{account_id}/check"): "check",
    ("GET", "/v1/accounts/{account_id}/subscriptions"): "list_subscriptions",
    ("POST", "/v1/accounts/{account_id}/subscription"): "change_plan",
    ("DELETE", "/v1/accounts/{account_id}/subscription"): "cancel_subscription",
    ("POST", "/v1/accounts/{account_id}/billing-portal"): "billing_portal",
    ("POST", "/v1/accounts/{account_id}/sync"): "sync_account",
    ("GET", "/v1/subscriptions"): "list_all_subscriptions",
    ("POST", "/v1/subscriptions/sync"): "sync_all_subscriptions",
    ("GET", "/v1/events"): "list_events",
    ("GET", "/v1/dashboard"): "dashboard",
    ("GET", "/v1/events/{event_id}"): "get_event",
    ("GET", "/v1/events/{event_id}/payload"): "get_event_payload",
    ("POST", "/v1/events/{event_id}/retry"): "retry_event",
    ("POST", "/v1/events/{event_id}/replay"): "replay_event",
    ("GET", "/v1/attention"): "needs_attention",
    ("GET", "/v1/operator-actions"): "list_operator_actions",
    ("GET", "/v1/orders"): "list_orders",
    ("GET", "/v1/orders/{order_id}"): "get_order",
    ("POST", "/v1/orders/{order_id}/resolve"): "resolve_order",
    ("GET", "/v1/accounts/{account_id}/balance/explain"): "explain_balance",
    ("POST", "/v1/reconciliation/runs"): "start_reconciliation",
    ("GET", "/v1/reconciliation/runs"): "list_reconciliation_runs",
    ("GET", "/v1/reconciliation/runs/{run_id}"): "get_reconciliation_run",
    ("POST", "/v1/notification-endpoints"): "create_notification_endpoint",
    ("GET", "/v1/notification-endpoints"): "list_notification_endpoints",
    ("GET", "/v1/notifications"): "list_notifications",
    ("GET", "/v1/notifications/{notification_id}"): "get_notification",
    ("POST", "/v1/notifications/{notification_id}/redeliver"): "redeliver_notification",
}


def test_every_operation_of_the_served_api_has_a_client_method(live: Live) -> None:
    document = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
    served = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path.startswith("/v1/") or path == "/healthz"
        for method in item
    }
    assert served == set(OPERATIONS)
    for name in OPERATIONS.values():
        assert callable(getattr(Client, name)), name
        assert callable(getattr(AsyncClient, name)), name


def test_the_async_client_retries_through_lost_answers_and_spends_once(
    live: Live, proxy: FaultProxy, admin: Client, app: Client, account: str
) -> None:
    admin.create_grant(account, "credits", 10, reason="welcome")

    async def no_wait(_seconds: float) -> None:
        return None

    async def run() -> int:
        async with AsyncClient(
            proxy.url, api_key=live.api_key, max_retries=3, sleep=no_wait
        ) as flaky:
            proxy.faults("drop", "503", "drop")
            return (await flaky.spend(account, "credits", 4)).balance

    assert aio.run(run()) == 6
    assert len(proxy.seen) == 4
    assert len({s.idempotency_key for s in proxy.seen}) == 1
    assert [t.kind for t in app.list_transactions(account)].count("spend") == 1


def test_a_balance_explained_and_a_reconciliation_run(
    live: Live, admin: Client, app: Client, account: str
) -> None:
    with Client(live.url, user_token=live.user_token(account)) as user:
        session = user.create_checkout_session(account, package="starter")
        live.pay(session.id)
        assert user.fulfill_checkout_session(session.id).status == "fulfilled"
    app.spend(account, "credits", 120)
    explained = app.explain_balance(account, unit="credits")
    assert (explained.balance, explained.held, explained.debt) == (380, 0, 0)
    assert sum(lot.remaining for lot in explained.lots) == 380
    (lot,) = explained.lots
    assert (lot.amount, lot.origin.type, lot.origin.stripe.checkout_session) == (
        500,
        "order",
        session.id,
    )
    assert [d.amount for d in lot.draws] == [120]
    stranger = Client(live.url, user_token=live.user_token("someone_else"))
    with stranger, pytest.raises(errors.Forbidden):
        stranger.explain_balance(account)

    started = admin.start_reconciliation()
    assert started.status == "running"
    for _ in range(300):
        run = admin.get_reconciliation_run(started.id)
        if run.status != "running":
            break
        time.sleep(0.1)
    assert run.status == "completed", run.error
    assert next(r.id for r in admin.list_reconciliation_runs(limit=1)) == started.id
    with pytest.raises(errors.NotFound):
        admin.get_reconciliation_run("recon_does_not_exist")
    with pytest.raises(errors.Forbidden):
        app.start_reconciliation()


def test_notification_endpoints_and_the_outbox(admin: Client, account: str) -> None:
    made = admin.create_notification_endpoint(
        "https://app.example.test/billfold", types=["credits.granted"]
    )
    assert made.secret is not None
    assert made.secret.startswith("whsec_")
    assert made.id in [e.id for e in admin.list_notification_endpoints()]
    admin.create_grant(account, "credits", 7, reason="welcome")
    [sent] = list(admin.list_notifications(type="credits.granted", account_id=account))
    assert sent.body["data"]["amount"] == 7
    assert admin.get_notification(sent.id).id == sent.id
    assert admin.redeliver_notification(sent.id).status == "pending"
    with pytest.raises(errors.NotFound):
        admin.get_notification("msg_does_not_exist")

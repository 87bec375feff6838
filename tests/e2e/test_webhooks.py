"""Receiving Stripe webhooks: every row of the design's receiving table and event table.

Each test runs on SQLite and PostgreSQL; the ``engine`` fixture checks the ledger invariants after it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from billfold.domain.orders import LineItem
from tests.builders import stripe_events as se
from tests.support.app import (
    OLD_SECRET,
    SECRET,
    admin_headers,
    balances,
    count,
    deliver,
    event_status,
    running_app,
    use_stripe,
)

App = tuple[TestClient, Services]


@pytest.fixture
def app(db_url: str, engine: Any) -> Iterator[App]:
    with running_app(db_url) as pair:
        yield pair


def paid_session(account: str = "user_1", package: str = "starter", **fields: Any) -> Any:
    fields.setdefault(
        "amount_total",
        {"starter": 499, "popular": 1499, "professional": 2999}.get(
            package, fields.get("amount_total", 499)
        ),
    )
    return se.checkout_session_completed(
        metadata={"billfold_account": account, "billfold_package": package}, **fields
    )


# --- the receiving table ---------------------------------------------------------------------------


def test_given_a_paid_checkout_when_delivered_then_credits_are_granted(app: App) -> None:
    client, services = app
    event = paid_session()
    response = deliver(client, event)
    assert response.status_code == 200
    assert response.json()["status"] == "processed"
    assert balances(services, "user_1") == {"credits": 500}
    assert event_status(services, event["id"]) == "processed"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Stripe-Signature": "garbage"},
        {"Stripe-Signature": "t=abc,v1=00"},
        {"Stripe-Signature": "t=1700000000"},
    ],
    ids=["missing", "garbled", "bad-timestamp", "no-v1"],
)
def test_given_a_missing_or_garbled_signature_then_400_and_nothing_stored(
    app: App, headers: dict[str, str]
) -> None:
    client, services = app
    body = json.dumps(paid_session()).encode()
    response = client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 400
    assert count(services, "events") == 0


def test_given_a_signature_with_the_wrong_secret_then_400(app: App) -> None:
    client, services = app
    response = deliver(client, paid_session(), secret="whsec_someone_else")
    assert response.status_code == 400
    assert count(services, "events") == 0


def test_given_a_tampered_body_then_400(app: App) -> None:
    client, services = app
    body, headers = se.signed(paid_session(), SECRET)
    response = client.post(
        "/webhooks/stripe", content=body.replace(b"499", b"999"), headers=headers
    )
    assert response.status_code == 400
    assert count(services, "events") == 0


def test_given_the_previous_secret_during_rotation_then_accepted(app: App) -> None:
    client, services = app
    assert deliver(client, paid_session(), secret=OLD_SECRET).status_code == 200
    assert balances(services, "user_1") == {"credits": 500}


def test_given_only_a_v0_signature_then_rejected(app: App) -> None:
    client, services = app
    body, headers = se.signed(paid_session(), SECRET)
    headers["Stripe-Signature"] = headers["Stripe-Signature"].replace("v1=", "v0=")
    assert client.post("/webhooks/stripe", content=body, headers=headers).status_code == 400
    assert count(services, "events") == 0


@pytest.mark.parametrize("skew", [-301, 301, -3600, 3600])
def test_given_a_timestamp_outside_the_tolerance_then_400(app: App, skew: int) -> None:
    client, services = app
    response = deliver(client, paid_session(), timestamp=int(time.time()) + skew)
    assert response.status_code == 400
    assert count(services, "events") == 0


@pytest.mark.parametrize("skew", [-290, 290])
def test_given_a_timestamp_inside_the_tolerance_either_way_then_accepted(
    app: App, skew: int
) -> None:
    client, _ = app
    assert deliver(client, paid_session(), timestamp=int(time.time()) + skew).status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"id": "evt_1", "object": "customer"}', b'{"hello": "world"}'],
    ids=["not-json", "array", "not-an-event", "no-id"],
)
def test_given_a_valid_signature_on_something_not_an_event_then_400(app: App, body: bytes) -> None:
    client, services = app
    from billfold.adapters.stripe.signature import sign

    headers = {"Stripe-Signature": sign(body, SECRET), "Content-Type": "application/json"}
    assert client.post("/webhooks/stripe", content=body, headers=headers).status_code == 400
    assert count(services, "events") == 0


def test_given_a_body_over_one_mebibyte_then_413_and_nothing_stored(app: App) -> None:
    client, services = app
    event = paid_session()
    event["data"]["object"]["metadata"]["padding"] = "x" * (1024 * 1024)
    response = deliver(client, event)
    assert response.status_code == 413
    assert count(services, "events") == 0


def test_given_an_event_already_in_the_inbox_then_200_and_nothing_new(app: App) -> None:
    client, services = app
    event = paid_session()
    assert deliver(client, event).status_code == 200
    before = (count(services, "events"), count(services, "ledger_lines"))
    again = deliver(client, event)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert (count(services, "events"), count(services, "ledger_lines")) == before
    assert balances(services, "user_1") == {"credits": 500}


def test_given_an_event_type_billfold_does_not_handle_then_200_and_ignored(app: App) -> None:
    client, services = app
    event = se.any_event("customer.created", se.customer())
    response = deliver(client, event)
    assert response.status_code == 200
    assert event_status(services, event["id"]) == "ignored"


def test_given_an_event_that_cannot_be_resolved_then_200_and_the_order_needs_attention(
    app: App,
) -> None:
    client, services = app
    event = se.checkout_session_completed(
        metadata={},
        client_reference_id=None,
        customer=None,
        email=None,
        amount_total=12345,
        currency="eur",
    )
    # Without billfold metadata the line items decide; no Stripe here: the worker takes it.
    response = deliver(client, event)
    assert response.status_code == 200
    assert event_status(services, event["id"]) == "received"
    use_stripe(services, _NoLineItems())
    services.inbox.process(event["id"])
    orders = client.get("/v1/orders?status=needs_attention", headers=admin_headers()).json()
    assert [o["stripe_id"] for o in orders["data"]] == [event["data"]["object"]["id"]]
    assert count(services, "grants") == 0


def test_given_processing_raises_then_200_failed_and_the_worker_retries(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, services = app
    event = paid_session()
    calls = {"n": 0}
    fulfilment = services.inbox.handlers.fulfilment
    original = fulfilment.fulfil

    def flaky(*args: Any, **kwargs: Any) -> Any:
        # Fails in the shared transaction of its batch, then again when made alone.
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    monkeypatch.setattr(fulfilment, "fulfil", flaky)
    response = deliver(client, event)
    assert response.status_code == 200
    with services.infra.uow() as uow:
        record = uow.inbox.get(event["id"])
    assert record is not None
    assert (record.status, record.attempts) == ("failed", 1)
    assert "boom" in (record.last_error or "")
    assert balances(services, "user_1") == {}
    # The worker picks it up once its backoff has passed.
    with services.infra.uow() as uow:
        uow.inbox.retry(event["id"], now=services.clock())
        uow.commit()
    from billfold.entrypoints.worker import Worker

    assert Worker(services).run_once() == 1
    assert event_status(services, event["id"]) == "processed"
    assert balances(services, "user_1") == {"credits": 500}


def test_given_an_event_failing_every_time_then_it_ends_dead_and_an_admin_can_retry(
    db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [int(time.time())]
    with running_app(db_url, clock=lambda: clock[0], worker_max_attempts=3) as (client, services):
        event = paid_session()
        monkeypatch.setattr(
            services.inbox.handlers.fulfilment,
            "fulfil",
            lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no")),
        )
        deliver(client, event)
        from billfold.entrypoints.worker import Worker

        worker = Worker(services)
        for _ in range(5):
            clock[0] += 3600
            worker.run_once()
        with services.infra.uow() as uow:
            record = uow.inbox.get(event["id"])
        assert record is not None
        assert (record.status, record.attempts) == ("dead", 3)
        monkeypatch.undo()
        listed = client.get("/v1/events?status=dead", headers=admin_headers()).json()
        assert [e["id"] for e in listed["data"]] == [event["id"]]
        retried = client.post(f"/v1/events/{event['id']}/retry", headers=admin_headers())
        assert retried.status_code == 200
        assert retried.json()["status"] == "processed"
        assert balances(services, "user_1") == {"credits": 500}


# --- the event table: one-time purchases -----------------------------------------------------------


def test_given_no_payment_required_then_fulfilled(app: App) -> None:
    client, services = app
    deliver(client, paid_session(payment_status="no_payment_required", package="starter"))
    assert balances(services, "user_1") == {"credits": 500}


def test_given_a_delayed_method_then_pending_until_async_success(app: App) -> None:
    client, services = app
    sid = se.new_id("cs_test")
    meta = {"billfold_account": "user_1", "billfold_package": "popular"}
    deliver(
        client,
        se.checkout_session_completed(
            session_id=sid, metadata=meta, payment_status="unpaid", amount_total=1499
        ),
    )
    orders = client.get("/v1/orders", headers=admin_headers()).json()["data"]
    assert [o["status"] for o in orders] == ["pending"]
    assert balances(services, "user_1") == {}
    deliver(client, se.async_payment_succeeded(session_id=sid, metadata=meta, amount_total=1499))
    assert balances(services, "user_1") == {"credits": 1500}
    orders = client.get("/v1/orders", headers=admin_headers()).json()["data"]
    assert [o["status"] for o in orders] == ["fulfilled"]


def test_given_async_success_before_completed_then_one_grant_and_no_downgrade(app: App) -> None:
    client, services = app
    sid = se.new_id("cs_test")
    meta = {"billfold_account": "user_1", "billfold_package": "starter"}
    deliver(client, se.async_payment_succeeded(session_id=sid, metadata=meta))
    deliver(
        client,
        se.checkout_session_completed(session_id=sid, metadata=meta, payment_status="unpaid"),
    )
    assert balances(services, "user_1") == {"credits": 500}
    orders = client.get("/v1/orders", headers=admin_headers()).json()["data"]
    assert [o["status"] for o in orders] == ["fulfilled"]


@pytest.mark.parametrize(
    ("builder", "status"),
    [(se.async_payment_failed, "failed"), (se.session_expired, "expired")],
)
def test_given_a_failed_or_expired_session_then_the_order_says_so_and_nothing_is_granted(
    app: App, builder: Any, status: Any
) -> None:
    client, services = app
    meta = {"billfold_account": "user_1", "billfold_package": "starter"}
    event = builder(metadata=meta)
    assert deliver(client, event).status_code == 200
    orders = client.get("/v1/orders", headers=admin_headers()).json()["data"]
    assert [o["status"] for o in orders] == [status]
    assert balances(services, "user_1") == {}


def test_given_the_same_session_in_two_different_events_then_one_grant(app: App) -> None:
    client, services = app
    sid = se.new_id("cs_test")
    deliver(client, paid_session(session_id=sid))
    deliver(client, paid_session(session_id=sid))
    deliver(
        client,
        se.async_payment_succeeded(
            session_id=sid, metadata={"billfold_account": "user_1", "billfold_package": "starter"}
        ),
    )
    assert balances(services, "user_1") == {"credits": 500}
    assert count(services, "grants") == 1


def test_given_a_package_with_a_bonus_then_both_grants_with_priority_and_expiry(app: App) -> None:
    client, services = app
    deliver(client, paid_session(package="professional"))
    with services.infra.uow() as uow:
        grants = uow.ledger.list_grants(
            "user_1", limit=10, starting_after=None, live_only=False, now=services.clock()
        )
    assert sorted((g.amount, g.priority, g.kind, g.expires_at is not None) for g in grants) == [
        (500, 10, "bonus", True),
        (3500, 0, "purchase", False),
    ]
    assert balances(services, "user_1") == {"credits": 4000}


def test_given_a_custom_amount_top_up_then_the_paid_amount_is_credited(app: App) -> None:
    client, services = app
    deliver(client, paid_session(package="budget", amount_total=2500))
    assert balances(services, "user_1") == {"usd": 2500}


def test_given_a_custom_amount_out_of_range_then_needs_attention(app: App) -> None:
    client, services = app
    deliver(client, paid_session(package="budget", amount_total=100))
    orders = client.get("/v1/orders?status=needs_attention", headers=admin_headers()).json()
    assert len(orders["data"]) == 1
    assert "amount mismatch" in orders["data"][0]["status_reason"]
    assert balances(services, "user_1") == {}


@pytest.mark.parametrize(
    ("amount", "currency"), [(500, "usd"), (499, "eur")], ids=["amount", "currency"]
)
def test_given_a_paid_amount_or_currency_that_does_not_match_then_needs_attention(
    app: App, amount: Any, currency: Any
) -> None:
    client, services = app
    deliver(client, paid_session(package="starter", amount_total=amount, currency=currency))
    orders = client.get("/v1/orders?status=needs_attention", headers=admin_headers()).json()
    assert len(orders["data"]) == 1
    assert balances(services, "user_1") == {}


def test_given_an_unknown_package_in_metadata_then_needs_attention(app: App) -> None:
    client, _ = app
    deliver(client, paid_session(package="nope"))
    orders = client.get("/v1/orders?status=needs_attention", headers=admin_headers()).json()
    assert "unknown package" in orders["data"][0]["status_reason"]


def test_given_client_reference_id_only_then_it_names_the_account(app: App) -> None:
    client, services = app
    deliver(
        client,
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"}, client_reference_id="user_ref"
        ),
    )
    assert balances(services, "user_ref") == {"credits": 500}


def test_given_a_linked_customer_then_the_account_is_found_by_customer(app: App) -> None:
    client, services = app
    with services.infra.uow() as uow:
        uow.accounts.upsert("user_cus", now=services.clock(), stripe_customer_id="cus_linked")
        uow.commit()
    deliver(
        client,
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"}, customer="cus_linked"
        ),
    )
    assert balances(services, "user_cus") == {"credits": 500}


def test_given_only_an_email_of_exactly_one_account_then_that_account(app: App) -> None:
    client, services = app
    with services.infra.uow() as uow:
        uow.accounts.upsert("user_mail", now=services.clock(), email="Jenny@Example.com")
        uow.commit()
    deliver(
        client,
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"}, email="jenny@example.com"
        ),
    )
    assert balances(services, "user_mail") == {"credits": 500}


def test_given_line_items_with_a_catalog_price_then_the_worker_resolves_the_package(
    db_url: str, engine: Any, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[units.credits]\n[packages.starter]\ntitle = "Starter"\ncurrency = "usd"\nprice = 499\n'
        'stripe_price_id = "price_starter"\ngrants = [{ unit = "credits", amount = 500 }]\n'
    )
    with running_app(db_url, catalog=str(catalog)) as (client, services):
        event = se.checkout_session_completed(metadata={}, client_reference_id="user_li")
        deliver(client, event)
        assert event_status(services, event["id"]) == "received"  # the request never calls Stripe
        use_stripe(
            services,
            _LineItems(
                [LineItem(price_id="price_starter", quantity=1, amount_total=499, currency="usd")]
            ),
        )
        from billfold.entrypoints.worker import Worker

        assert Worker(services).run_once() == 1
        assert event_status(services, event["id"]) == "processed"
        assert balances(services, "user_li") == {"credits": 500}


def test_given_a_payment_intent_billfold_created_then_it_is_fulfilled_once(app: App) -> None:
    client, services = app
    event = se.payment_intent_succeeded(
        amount=499,
        amount_received=499,
        metadata={"billfold_account": "user_pi", "billfold_package": "starter"},
    )
    deliver(client, event)
    deliver(client, se.any_event("payment_intent.succeeded", event["data"]["object"]))
    assert balances(services, "user_pi") == {"credits": 500}


def test_given_a_payment_intent_of_a_checkout_then_it_is_only_recorded(app: App) -> None:
    client, services = app
    session = paid_session()
    pi = session["data"]["object"]["payment_intent"]
    deliver(client, session)
    event = se.payment_intent_succeeded(payment_intent_id=pi, metadata={})
    deliver(client, event)
    failed = se.payment_intent_failed(payment_intent_id=pi, metadata={})
    deliver(client, failed)
    assert balances(services, "user_1") == {"credits": 500}
    assert event_status(services, event["id"]) == "processed"
    order = client.get("/v1/orders", headers=admin_headers()).json()["data"][0]
    assert order["payment_error"]


# --- refunds and disputes --------------------------------------------------------------------------


def test_given_a_full_refund_then_the_grants_are_clawed_back_once(app: App) -> None:
    client, services = app
    session = paid_session(package="popular")
    pi = session["data"]["object"]["payment_intent"]
    deliver(client, session)
    refund = se.charge_refunded(payment_intent=pi, amount=1499, amount_refunded=1499)
    deliver(client, refund)
    deliver(client, se.any_event("charge.refunded", refund["data"]["object"]))
    assert balances(services, "user_1") == {"credits": 0}
    order = client.get("/v1/orders", headers=admin_headers()).json()["data"][0]
    assert order["status"] == "refunded"


def test_given_partial_refunds_then_the_refunded_share_is_clawed_back(app: App) -> None:
    client, services = app
    session = paid_session(package="popular")
    pi = session["data"]["object"]["payment_intent"]
    deliver(client, session)
    deliver(client, se.charge_refunded(payment_intent=pi, amount=1499, amount_refunded=500))
    assert balances(services, "user_1") == {"credits": 1500 - 500}
    deliver(client, se.charge_refunded(payment_intent=pi, amount=1499, amount_refunded=1499))
    assert balances(services, "user_1") == {"credits": 0}


def test_given_a_refund_after_spending_with_floor_policy_then_only_what_is_left(app: App) -> None:
    client, services = app
    session = paid_session(package="starter")
    pi = session["data"]["object"]["payment_intent"]
    deliver(client, session)
    from billfold.service.ledger import Spend

    services.ledger.spend(Spend(key="s", account_id="user_1", unit="credits", amount=400))
    deliver(client, se.charge_refunded(payment_intent=pi, amount=499, amount_refunded=499))
    assert balances(services, "user_1") == {"credits": 0}


def test_given_a_dispute_then_the_share_is_held_and_released_when_won(app: App) -> None:
    client, services = app
    session = paid_session(package="starter")
    pi = session["data"]["object"]["payment_intent"]
    deliver(client, session)
    dispute_id = se.new_id("du")
    deliver(client, se.dispute_created(dispute_id=dispute_id, payment_intent=pi, amount=499))
    assert services.ledger.balances("user_1")["credits"].held == 500
    assert balances(services, "user_1") == {"credits": 0}
    deliver(
        client,
        se.dispute_closed(dispute_id=dispute_id, payment_intent=pi, amount=499, status="won"),
    )
    assert balances(services, "user_1") == {"credits": 500}


def test_given_a_lost_dispute_then_the_share_is_clawed_back(app: App) -> None:
    client, services = app
    session = paid_session(package="starter")
    pi = session["data"]["object"]["payment_intent"]
    deliver(client, session)
    dispute_id = se.new_id("du")
    deliver(client, se.dispute_created(dispute_id=dispute_id, payment_intent=pi, amount=499))
    deliver(
        client,
        se.dispute_closed(dispute_id=dispute_id, payment_intent=pi, amount=499, status="lost"),
    )
    view = services.ledger.balances("user_1")["credits"]
    assert (view.available, view.held) == (0, 0)


# --- concurrency and operators ---------------------------------------------------------------------


def test_given_one_event_delivered_50_times_concurrently_then_one_grant(app: App) -> None:
    client, services = app
    event = paid_session()
    body, headers = se.signed(event, SECRET)
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    client.post("/webhooks/stripe", content=body, headers=headers).status_code
                ),
                range(50),
            )
        )
    assert codes == [200] * 50
    assert balances(services, "user_1") == {"credits": 500}
    assert count(services, "grants") == 1
    assert count(services, "events") == 1


def test_given_the_same_session_in_many_events_concurrently_then_one_grant(app: App) -> None:
    client, services = app
    sid = se.new_id("cs_test")
    events = [paid_session(session_id=sid) for _ in range(20)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(lambda e: deliver(client, e).status_code, events))
    assert codes == [200] * 20
    assert balances(services, "user_1") == {"credits": 500}
    assert count(services, "grants") == 1


def test_given_an_order_in_needs_attention_when_an_operator_resolves_it_then_one_grant(
    app: App,
) -> None:
    client, services = app
    deliver(client, paid_session(package="starter", amount_total=450))
    order = client.get("/v1/orders?status=needs_attention", headers=admin_headers()).json()
    order_id = order["data"][0]["id"]
    results = []
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(
            pool.map(
                lambda _: client.post(
                    f"/v1/orders/{order_id}/resolve",
                    json={"package": "starter"},
                    headers=admin_headers(),
                ),
                range(5),
            )
        )
    assert {r.status_code for r in results} == {200}
    assert {r.json()["status"] for r in results} == {"fulfilled"}
    assert balances(services, "user_1") == {"credits": 500}
    again = client.post(f"/v1/orders/{order_id}/resolve", json={}, headers=admin_headers())
    assert again.status_code == 200
    assert balances(services, "user_1") == {"credits": 500}


def test_given_an_unresolvable_order_when_resolved_without_an_account_then_409(app: App) -> None:
    client, services = app
    deliver(
        client,
        se.checkout_session_completed(
            metadata={"billfold_package": "starter"},
            client_reference_id=None,
            customer=None,
            email=None,
        ),
    )
    order = client.get("/v1/orders?status=needs_attention", headers=admin_headers()).json()
    order_id = order["data"][0]["id"]
    assert (
        client.post(f"/v1/orders/{order_id}/resolve", json={}, headers=admin_headers()).status_code
        == 409
    )
    ok = client.post(
        f"/v1/orders/{order_id}/resolve", json={"account_id": "user_9"}, headers=admin_headers()
    )
    assert ok.status_code == 200
    assert balances(services, "user_9") == {"credits": 500}


def test_given_admin_routes_then_server_keys_are_refused(app: App) -> None:
    client, _ = app
    from tests.support.app import API_KEY

    server = {"Authorization": f"Bearer {API_KEY}"}
    assert client.get("/v1/events", headers=server).status_code == 403
    assert client.get("/v1/orders", headers=server).status_code == 403
    assert client.get("/v1/events").status_code == 401


def test_given_an_event_then_the_admin_sees_it_verbatim_and_pages_through_the_inbox(
    app: App,
) -> None:
    client, _ = app
    events = [paid_session(account=f"user_{i}") for i in range(3)]
    for event in events:
        deliver(client, event)
    shown = client.get(f"/v1/events/{events[0]['id']}", headers=admin_headers()).json()
    assert shown["payload"] == events[0]
    first = client.get("/v1/events?limit=2", headers=admin_headers()).json()
    assert first["has_more"] is True
    rest = client.get(
        f"/v1/events?limit=2&starting_after={first['data'][-1]['id']}", headers=admin_headers()
    ).json()
    assert rest["has_more"] is False
    ids = [e["id"] for e in first["data"] + rest["data"]]
    assert sorted(ids) == sorted(e["id"] for e in events)
    assert client.get("/v1/events/evt_missing", headers=admin_headers()).status_code == 404


def test_healthz_reports_database_secret_types_and_backlog(app: App) -> None:
    client, _ = app
    body = client.get("/healthz").json()
    assert body["database"] == "ok"
    assert body["webhook_secret_configured"] is True
    assert "checkout.session.completed" in body["handled_event_types"]
    assert body["inbox_backlog"] == {}


class _NoLineItems:
    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        return []


class _LineItems:
    def __init__(self, items: list[LineItem]) -> None:
        self.items = items

    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        return self.items

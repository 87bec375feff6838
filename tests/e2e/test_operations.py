"""Operations: /metrics after a scripted run (webhooks, spends, notification deliveries), the
metrics token, request ids, /readyz."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from billfold.adapters import notify
from billfold.bootstrap import build
from billfold.domain.notifications import RETRY_DELAYS
from billfold.entrypoints.http.app import create_app
from billfold.entrypoints.worker import Worker
from tests.builders import stripe_events as se
from tests.conftest import FakeClock
from tests.support.app import API_KEY, admin_headers, deliver, running_app, settings_for

SERVER = {"Authorization": f"Bearer {API_KEY}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def paid(account: str) -> Any:
    return se.checkout_session_completed(
        metadata={"billfold_account": account, "billfold_package": "starter"}, amount_total=499
    )


def test_given_a_scripted_run_then_metrics_count_events_spends_402s_and_requests(
    db_url: str,
) -> None:
    with running_app(db_url) as (client, _services):
        event = paid("user_metrics_42")
        assert deliver(client, event).status_code == 200
        assert deliver(client, event).json()["duplicate"] is True
        ignored = se.any_event("customer.created", se.customer())
        assert deliver(client, ignored).status_code == 200
        spend = "/v1/accounts/user_metrics_42/spend"
        assert client.post(
            spend, json={"unit": "credits", "amount": 100}, headers=SERVER
        ).is_success
        assert client.post(
            spend, json={"unit": "credits", "amount": 100}, headers=SERVER
        ).is_success
        short = client.post(spend, json={"unit": "credits", "amount": 10_000}, headers=SERVER)
        assert short.status_code == 402
        hold = client.post(
            "/v1/accounts/user_metrics_42/holds",
            json={"unit": "credits", "amount": 50},
            headers=SERVER,
        )
        assert hold.status_code == 201

        answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    got = samples(text)
    checkout = "checkout.session.completed"
    assert got[("billfold_events_received_total", (("result", "stored"), ("type", checkout)))] == 1
    assert (
        got[("billfold_events_received_total", (("result", "duplicate"), ("type", checkout)))] == 1
    )
    assert (
        got[("billfold_events_processed_total", (("outcome", "processed"), ("type", checkout)))]
        == 1
    )
    assert (
        got[
            (
                "billfold_events_processed_total",
                (("outcome", "ignored"), ("type", "customer.created")),
            )
        ]
        == 1
    )
    assert got[("billfold_event_processing_seconds_count", (("type", checkout),))] == 1
    assert got[("billfold_payment_to_credit_seconds_count", ())] == 1
    assert got[("billfold_payment_to_credit_seconds_sum", ())] >= 0
    writes = "billfold_ledger_writes_total"
    assert got[(writes, (("operation", "spend"), ("outcome", "ok"), ("unit", "credits")))] == 2
    assert (
        got[(writes, (("operation", "spend"), ("outcome", "insufficient"), ("unit", "credits")))]
        == 1
    )
    assert got[(writes, (("operation", "hold"), ("outcome", "ok"), ("unit", "credits")))] == 1
    assert got[("billfold_insufficient_balance_total", (("unit", "credits"),))] == 1
    route = "/v1/accounts/{account_id}/spend"
    assert (
        got[
            (
                "billfold_http_request_seconds_count",
                (("method", "POST"), ("route", route), ("status", "200")),
            )
        ]
        == 2
    )
    assert (
        got[
            (
                "billfold_http_request_seconds_count",
                (("method", "POST"), ("route", route), ("status", "402")),
            )
        ]
        == 1
    )
    assert got[("billfold_inbox_backlog", (("status", "received"),))] == 0
    assert got[("billfold_inbox_oldest_waiting_seconds", ())] == 0
    assert got[("billfold_database_up", ())] == 1
    # Names start with billfold_; no label carries an account id, nor a raw path.
    names = {family.name for family in text_string_to_metric_families(text)}
    assert names
    assert all(name.startswith("billfold_") for name in names)
    assert "user_metrics_42" not in text


def test_given_deliveries_retries_and_dead_letters_then_metrics_count_them_by_type(
    db_url: str, clock: FakeClock
) -> None:
    status = {"code": 200}

    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status["code"])

    services = build(
        settings_for(db_url, notify_urls="http://app.test/hooks"),
        clock=clock,
        notify_sender=notify.HttpSender(transport=httpx.MockTransport(endpoint)),
    )
    try:
        with TestClient(create_app(services=services, run_worker=False)) as client:
            worker = Worker(services, name="worker:metrics")
            assert deliver(client, paid("user_metrics_7")).status_code == 200
            assert worker.deliver_notifications() == 2  # credits.granted, order.fulfilled
            status["code"] = 503
            assert deliver(client, paid("user_metrics_8")).status_code == 200
            for delay in RETRY_DELAYS:  # the whole schedule fails: 7 retries, then dead
                clock.advance(delay)
                assert worker.deliver_notifications() == 2
            clock.advance(86_400)
            assert worker.deliver_notifications() == 0  # dead stays dead
            status["code"] = 204
            dead = client.get(
                "/v1/notifications",
                params={"status": "dead", "type": "credits.granted"},
                headers=admin_headers(),
            ).json()["data"]
            [letter] = dead
            redelivered = client.post(
                f"/v1/notifications/{letter['id']}/redeliver", headers=admin_headers()
            )
            assert redelivered.is_success, redelivered.text
            assert worker.deliver_notifications() == 1
            text = client.get("/metrics").text
    finally:
        services.close()
    got = samples(text)

    def count(outcome: str, type_: str) -> float:
        return got.get((f"billfold_notifications_{outcome}_total", (("type", type_),)), 0)

    granted, fulfilled = "credits.granted", "order.fulfilled"
    assert (count("delivered", granted), count("delivered", fulfilled)) == (2, 1)
    assert (count("retried", granted), count("retried", fulfilled)) == (7, 7)
    assert (count("dead", granted), count("dead", fulfilled)) == (1, 1)
    assert "user_metrics_7" not in text
    assert "user_metrics_8" not in text


def test_given_a_metrics_token_then_metrics_need_it_as_a_bearer_token(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with running_app(url, metrics_token="metrics-token-123") as (client, _):
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers=admin_headers()).status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer metrics-token-123"})
    assert ok.status_code == 200
    assert "billfold_database_up 1.0" in ok.text


def test_every_answer_has_a_request_id_and_a_sane_one_given_is_kept(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with running_app(url) as (client, _):
        first = client.get("/healthz").headers["x-request-id"]
        second = client.get("/v1/catalog").headers["x-request-id"]
        kept = client.get("/healthz", headers={"X-Request-Id": "req-abc.123:x"})
        refused = client.get("/healthz", headers={"X-Request-Id": "bad id\twith <stuff>"})
        missing = client.get("/no/such/route")
    assert len(first) == 32
    assert first != second
    assert kept.headers["x-request-id"] == "req-abc.123:x"
    assert refused.headers["x-request-id"] != "bad id\twith <stuff>"
    assert len(refused.headers["x-request-id"]) == 32
    assert missing.status_code == 404
    assert missing.headers["x-request-id"]


def test_readyz_is_ready_at_head_and_reports_the_worker_heartbeat(
    db_url: str, clock: FakeClock
) -> None:
    with running_app(db_url, clock=clock) as (client, services):
        before = client.get("/readyz")
        assert before.status_code == 200
        body = before.json()
        assert body["status"] == "ok"
        assert body["schema_ok"] is True
        assert body["schema_revision"] == body["schema_head"]
        assert body["worker_last_heartbeat"] is None
        Worker(services, name="worker:test").run_once()
        beat = clock.now
        clock.advance(7)
        after = client.get("/readyz").json()
        assert after["worker_last_heartbeat"] == beat
        assert after["worker_heartbeat_age_seconds"] == 7
        metrics = samples(client.get("/metrics").text)
        assert metrics[("billfold_worker_last_heartbeat_seconds", ())] == 7


def test_readyz_fails_while_the_schema_is_behind(db_url: str) -> None:
    with running_app(db_url) as (client, services):
        engine = services.infra.database.engine
        head = services.maintenance.schema().head
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
        try:
            answer = client.get("/readyz")
            assert client.get("/healthz").status_code == 200  # liveness stays cheap and up
        finally:  # the PostgreSQL test database is shared by the tests that follow
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert answer.json()["schema_ok"] is False
    assert answer.json()["schema_revision"] == "0001"


def test_readyz_fails_while_the_database_is_unreachable() -> None:
    settings = settings_for("postgresql://postgres@127.0.0.1:1/nothing")
    services = build(settings, check_schema=False)
    try:
        with TestClient(create_app(services=services, run_worker=False)) as client:
            ready = client.get("/readyz")
            scrape = client.get("/metrics")
    finally:
        services.close()
    assert ready.status_code == 503
    assert ready.json()["database"] == "unreachable"
    assert scrape.status_code == 200
    assert samples(scrape.text)[("billfold_database_up", ())] == 0


@pytest.mark.parametrize("unit", ["nope"])
def test_a_spend_in_an_unknown_unit_is_counted_without_its_name(tmp_path: Any, unit: str) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    with running_app(url) as (client, _):
        deliver(client, paid("user_u"))
        answer = client.post(
            "/v1/accounts/user_u/spend", json={"unit": unit, "amount": 1}, headers=SERVER
        )
        text = client.get("/metrics").text
    assert answer.status_code >= 400
    assert 'unit="nope"' not in text

"""The operators' event API: the ``created`` filter, the attempt history and the raw payload.

Each test runs on SQLite and PostgreSQL; the ``engine`` fixture checks the ledger invariants after it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billfold.adapters.stripe import signature
from billfold.bootstrap import Services
from billfold.entrypoints.worker import Worker
from tests.builders import stripe_events as se
from tests.support.app import SECRET, admin_headers, balances, count, deliver, running_app

App = tuple[TestClient, Services]
T0 = 1_800_000_000


@pytest.fixture
def app(db_url: str, engine: Any) -> Iterator[App]:
    with running_app(db_url) as pair:
        yield pair


def paid(account: str = "user_1", **fields: Any) -> Any:
    meta = {"billfold_account": account, "billfold_package": "starter"}
    return se.checkout_session_completed(metadata=meta, amount_total=499, **fields)


def listed(client: TestClient, query: str) -> list[str]:
    response = client.get(f"/v1/events?{query}", headers=admin_headers())
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["data"]]


# --- created[gt|gte|lt|lte] ------------------------------------------------------------------------


@pytest.fixture
def ticking(db_url: str, engine: Any) -> Iterator[tuple[TestClient, list[int]]]:
    """An app whose clock the test moves: events received a second apart list in that order."""
    clock = [int(time.time())]
    with running_app(db_url, clock=lambda: clock[0]) as (client, _):
        yield client, clock


def test_given_events_created_at_several_times_then_created_bounds_pick_them(
    ticking: tuple[TestClient, list[int]],
) -> None:
    client, clock = ticking
    ids = {}
    for offset in (0, 100, 200, 300):
        event = paid(account=f"user_{offset}", event_created=T0 + offset)
        deliver(client, event)
        ids[offset] = event["id"]
        clock[0] += 1
    assert set(listed(client, "")) == set(ids.values())  # no filter: the form-less GET
    assert listed(client, f"created[gte]={T0 + 100}&created[lte]={T0 + 200}") == [
        ids[200],
        ids[100],
    ]
    assert listed(client, f"created[gt]={T0 + 100}&created[lt]={T0 + 300}") == [ids[200]]
    assert listed(client, f"created[lt]={T0}") == []
    assert set(listed(client, f"created[gte]={T0}")) == set(ids.values())
    # With the other filters and paging.
    assert listed(client, f"created[gte]={T0 + 100}&status=processed&limit=1") == [ids[300]]
    assert listed(client, f"created[gte]={T0 + 100}&status=failed") == []
    assert listed(client, f"created[gte]={T0 + 100}&type=charge.refunded") == []
    first = client.get(
        f"/v1/events?created[lte]={T0 + 200}&limit=2", headers=admin_headers()
    ).json()
    assert [e["id"] for e in first["data"]] == [ids[200], ids[100]]
    assert first["has_more"] is True
    rest = listed(client, f"created[lte]={T0 + 200}&limit=2&starting_after={ids[100]}")
    assert rest == [ids[0]]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("created[gte]=yesterday", "created[gte]"),
        ("created[gt]=1.5", "created[gt]"),
        ("created[lt]=-1", "created[lt]"),
        ("created[lte]=", "created[lte]"),
        ("created[gte]=99999999999999999999999", "created[gte]"),
    ],
)
def test_given_a_bad_created_bound_then_400_naming_it(app: App, query: str, param: str) -> None:
    client, services = app
    deliver(client, paid())
    before = count(services, "events")
    response = client.get(f"/v1/events?{query}", headers=admin_headers())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["param"] == param
    assert param in error["message"]
    assert count(services, "events") == before


# --- the attempt history ---------------------------------------------------------------------------


def test_given_a_handler_failing_twice_then_succeeding_then_two_failed_attempts_show(
    db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [int(time.time())]
    with running_app(db_url, clock=lambda: clock[0]) as (client, services):
        fulfilment = services.inbox.handlers.fulfilment
        real = fulfilment.fulfil
        # What the handler raises now (None: it works). The webhook request may call it more than
        # once (a shared transaction, then on its own), so the test sets it per attempt.
        failure: list[Exception | None] = [RuntimeError("ledger said no")]

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if failure[0] is not None:
                raise failure[0]
            return real(*args, **kwargs)

        monkeypatch.setattr(fulfilment, "fulfil", flaky)
        event = paid()
        assert deliver(client, event).json()["status"] == "failed"  # in the webhook request
        worker = Worker(services)
        for then in (ValueError("still no"), None):
            failure[0] = then
            clock[0] += 3600
            assert worker.run_once() == 1
        shown = client.get(f"/v1/events/{event['id']}", headers=admin_headers()).json()
        assert (shown["status"], shown["attempts"], shown["last_error"]) == ("processed", 3, None)
        history = shown["attempt_history"]
        assert [(a["attempt"], a["outcome"], a["error"]) for a in history] == [
            (1, "failed", "RuntimeError: ledger said no"),
            (2, "failed", "ValueError: still no"),
        ]
        assert history[0]["worker"] == "webhook"
        assert history[1]["worker"] == worker.owner
        assert history[0]["at"] < history[1]["at"]
        assert balances(services, "user_1") == {"credits": 500}
        # The history is on the one event only, not in lists.
        listed = client.get("/v1/events", headers=admin_headers()).json()["data"]
        assert "attempt_history" not in listed[0]


def test_given_a_dead_event_then_an_operators_retry_is_in_its_history(
    db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_app(db_url, worker_max_attempts=1) as (client, services):
        fulfilment = services.inbox.handlers.fulfilment
        monkeypatch.setattr(
            fulfilment, "fulfil", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no"))
        )
        event = paid()
        assert deliver(client, event).json()["status"] == "dead"
        failed_again = client.post(f"/v1/events/{event['id']}/retry", headers=admin_headers())
        assert failed_again.json()["status"] == "dead"
        monkeypatch.undo()
        retried = client.post(f"/v1/events/{event['id']}/retry", headers=admin_headers())
        assert retried.json()["status"] == "processed"
        shown = client.get(f"/v1/events/{event['id']}", headers=admin_headers()).json()
        assert [
            (a["attempt"], a["outcome"], a["error"], a["worker"]) for a in shown["attempt_history"]
        ] == [
            (1, "dead", "RuntimeError: no", "webhook"),
            (2, "dead", "RuntimeError: no", "operator:admin"),
            (3, "processed", None, "operator:admin"),
        ]


def test_given_events_processed_first_time_then_no_attempt_is_recorded(app: App) -> None:
    client, services = app
    event = paid()
    deliver(client, event)
    Worker(services).run_once()
    shown = client.get(f"/v1/events/{event['id']}", headers=admin_headers()).json()
    assert (shown["status"], shown["attempt_history"]) == ("processed", [])
    assert count(services, "event_attempts") == 0


# --- the payload, as received ----------------------------------------------------------------------


def test_given_an_oddly_formatted_delivery_then_payload_answers_its_exact_bytes(app: App) -> None:
    client, _ = app
    event = paid()
    # Keys in Stripe's order reversed, tabs, CRLF, spaces before colons, escapes and non-ASCII.
    inner = json.dumps(dict(reversed(list(event["data"].items()))), separators=(" ,", " :  "))
    extra = '"note":"caf\u00e9 \\u00e9 \\/ \\"q\\"" ,\t\r\n'
    head = ", ".join(
        f'"{k}" : {json.dumps(v)}' for k, v in reversed(list(event.items())) if k != "data"
    )
    body = f'\r\n{{ {extra}"data":{inner},\t{head}   }}\n\n'.encode()
    headers = {"Stripe-Signature": signature.sign(body, SECRET), "Content-Type": "application/json"}
    assert client.post("/webhooks/stripe", content=body, headers=headers).status_code == 200
    raw = client.get(f"/v1/events/{event['id']}/payload", headers=admin_headers())
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/json"
    assert raw.content == body
    assert (
        client.get(f"/v1/events/{event['id']}", headers=admin_headers()).json()["payload"]["note"]
        == 'café é / "q"'
    )


def test_the_payload_is_for_the_admin_only_and_404_for_an_unknown_event(app: App) -> None:
    client, _ = app
    event = paid()
    deliver(client, event)
    from tests.support.app import API_KEY

    path = f"/v1/events/{event['id']}/payload"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 403
    missing = client.get("/v1/events/evt_missing/payload", headers=admin_headers())
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "event_not_found"

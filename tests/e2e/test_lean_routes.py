"""The lean routes (``entrypoints/http/lean.py``) answer exactly as FastAPI's routes do.

Two apps over one set of services and one database: one with the lean routes, one without. The
same requests go to both, each app on its own account (ids, accounts and hold ids made alike
before comparing); the status, the body and the headers a client reads must be the same, and so
must the account afterwards. Each case also says which way the lean app took (answered by the lean
route, or handed on to FastAPI), so that the comparison is known to compare the lean path and not
FastAPI with itself.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services, build
from billfold.entrypoints.http.app import create_app
from billfold.entrypoints.http.lean import LeanStats
from tests.builders import stripe_events as se
from tests.conftest import FakeClock
from tests.support.api import ADMIN_AUTH, ROTATED_SERVER, SECOND_API_KEY, SERVER, as_user, keyed
from tests.support.app import API_KEY, SECRET, count, settings_for

READ_HEADERS = (
    "content-type",
    "content-length",
    "idempotency-key",
    "idempotent-replayed",
    "retry-after",
    "www-authenticate",
    "allow",
)
IDS = re.compile(r"\b([a-z]+)_[0-9A-Za-z]{16,}\b")  # billfold's and Stripe's generated ids
KEY_DIGESTS = re.compile(r"\bidem:[0-9a-f]{64}\b")  # a stored key: the caller's key's digest
Case = Callable[[TestClient, str], Any]
_accounts = itertools.count()


@dataclass
class Pair:
    lean: TestClient
    plain: TestClient
    services: Services

    @property
    def stats(self) -> LeanStats:
        stats: LeanStats = self.lean.app.state.lean_routes  # type: ignore[attr-defined]
        return stats

    def same(self, case: Case, *, lean: str, credits: int = 100) -> Any:
        """Run ``case`` on both apps, each on a fresh account holding ``credits``; assert the
        same answer and the same account after; ``lean``: ``answered`` or ``handed on``, the way
        the lean app took for the case's last request. The lean app's answer."""
        n = next(_accounts)
        mine, theirs = f"acct_lean_{n}", f"acct_plain_{n}"
        for client, account in ((self.lean, mine), (self.plain, theirs)):
            if credits:
                granted = client.post(
                    f"/v1/accounts/{account}/grants",
                    json={"unit": "credits", "amount": credits, "reason": "lean test"},
                    headers=ADMIN_AUTH,
                )
                assert granted.status_code == 201, granted.text
        plain = case(self.plain, theirs)
        before = LeanStats(self.stats.answered, self.stats.handed_on)
        got = case(self.lean, mine)
        last = (self.stats.answered - before.answered, self.stats.handed_on - before.handed_on)
        assert _seen(got, mine) == _seen(plain, theirs)
        assert _account(self.lean, mine) == _account(self.plain, theirs)
        taken = "answered" if last[0] > last[1] else "handed on"
        assert taken == lean, f"the lean app's last request was {taken}: {last}"
        return got


def _seen(response: httpx.Response, account: str) -> tuple[int, str, dict[str, str]]:
    body = IDS.sub(lambda m: f"{m.group(1)}_ID", response.text.replace(account, "ACCOUNT"))
    body = KEY_DIGESTS.sub("idem:DIGEST", body)
    headers = {
        h: response.headers[h].replace(account, "ACCOUNT")
        for h in READ_HEADERS
        if h in response.headers
    }
    if "content-length" in headers:  # the ids are replaced: their lengths may differ
        headers["content-length"] = "n"
    return response.status_code, body, headers


def _account(client: TestClient, account: str) -> Any:
    found = client.get(f"/v1/accounts/{account}", headers=SERVER)
    if found.status_code == 404:
        return 404
    body = found.json()
    return body["balances"], body["held"], body["debt"]


@contextmanager
def pair_of_apps(db_url: str, clock: FakeClock, **overrides: Any) -> Iterator[Pair]:
    overrides.setdefault("api_keys", f"{API_KEY},{SECOND_API_KEY}")
    services = build(settings_for(db_url, **overrides), clock=clock)
    try:
        lean_app = create_app(services=services, run_worker=False)
        plain_app = create_app(services=services, run_worker=False, lean_routes=False)
        with TestClient(lean_app) as lean, TestClient(plain_app) as plain:
            yield Pair(lean, plain, services)
    finally:
        services.close()


@pytest.fixture
def apps(db_url: str, engine: Any, clock: FakeClock) -> Iterator[Pair]:
    with pair_of_apps(db_url, clock) as pair:
        yield pair


def spend(amount: Any = 10, headers: dict[str, str] = SERVER, **body: Any) -> Case:
    def run(client: TestClient, account: str) -> Any:
        return client.post(
            f"/v1/accounts/{account}/spend",
            json={"unit": "credits", "amount": amount, **body},
            headers=headers,
        )

    return run


def raw_spend(content: bytes, headers: dict[str, str]) -> Case:
    def run(client: TestClient, account: str) -> Any:
        return client.post(f"/v1/accounts/{account}/spend", content=content, headers=headers)

    return run


def hold_then(action: str, body: Any = None, *, raw: bytes | None = None, times: int = 1) -> Case:
    """Hold 20, then capture or release it (``times`` times)."""

    def run(client: TestClient, account: str) -> Any:
        placed = client.post(
            f"/v1/accounts/{account}/holds",
            json={"unit": "credits", "amount": 20, "ttl_seconds": 600},
            headers=SERVER,
        )
        assert placed.status_code == 201, placed.text
        url = f"/v1/holds/{placed.json()['id']}/{action}"
        for _ in range(times):
            if raw is not None:
                done = client.post(url, content=raw, headers=SERVER)
            elif body is None:
                done = client.post(url, headers=SERVER)
            else:
                done = client.post(url, json=body, headers=SERVER)
        return done

    return run


# --- answered by the lean routes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(spend(30), id="spend"),
        pytest.param(spend(30, reason="report #1 — ünïcode"), id="spend-reason"),
        pytest.param(spend(30, headers=ROTATED_SERVER), id="spend-other-key"),
        pytest.param(spend(1000), id="spend-402"),
        pytest.param(spend(5, unit="gold"), id="unknown-unit-from-the-ledger"),
        pytest.param(
            raw_spend(
                b'{"unit": "credits", "amount": 7}',
                {**SERVER, "Content-Type": "application/x-www-form-urlencoded"},
            ),
            id="json-sent-as-a-form",
        ),
        pytest.param(
            raw_spend(
                b'{"unit": "credits", "amount": 7}',
                {**SERVER, "Content-Type": "application/json; charset=utf-8"},
            ),
            id="json-with-charset",
        ),
        pytest.param(hold_then("capture"), id="capture-all"),
        pytest.param(hold_then("capture", {"amount": 5}), id="capture-part"),
        pytest.param(hold_then("capture", times=2), id="capture-twice-409"),
        pytest.param(hold_then("capture", {"amount": 500}), id="capture-too-much"),
        pytest.param(hold_then("release"), id="release"),
        pytest.param(hold_then("release", times=2), id="release-twice-409"),
        pytest.param(
            lambda c, a: c.post("/v1/holds/hold_missing/release", headers=SERVER),
            id="release-unknown-404",
        ),
        pytest.param(
            lambda c, a: c.post(
                f"/v1/accounts/{a}/holds",
                json={"unit": "credits", "amount": 30, "reason": "job 7"},
                headers=SERVER,
            ),
            id="hold-default-ttl",
        ),
        pytest.param(
            lambda c, a: c.post(
                f"/v1/accounts/{a}/holds", json={"unit": "credits", "amount": 300}, headers=SERVER
            ),
            id="hold-402",
        ),
    ],
)
def test_the_lean_route_answers_as_fastapi_does(apps: Pair, case: Case) -> None:
    apps.same(case, lean="answered")


def test_idempotent_replays_and_conflicts_answer_alike(apps: Pair) -> None:
    # Keys are the application's, across accounts: each app's request its own key.
    def replayed(client: TestClient, account: str) -> Any:
        first = spend(10, keyed(SERVER, f"order-1-{account}"))(client, account)
        again = spend(10, keyed(SERVER, f"order-1-{account}"))(client, account)
        assert again.json() == first.json()
        return again

    answer = apps.same(replayed, lean="answered")
    assert answer.headers["Idempotent-Replayed"] == "true"
    assert answer.headers["Idempotency-Key"].startswith("order-1-")

    def conflicting(client: TestClient, account: str) -> Any:
        spend(10, keyed(SERVER, f"order-2-{account}"))(client, account)
        return spend(11, keyed(SERVER, f"order-2-{account}"))(client, account)

    assert apps.same(conflicting, lean="answered").status_code == 409


def test_the_lean_answer_carries_the_request_id_and_is_counted_by_route(apps: Pair) -> None:
    answer = apps.same(spend(1), lean="answered")
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-Id"])
    given = apps.lean.post(
        "/v1/accounts/acct_lean_rid/spend",
        json={"unit": "credits", "amount": 1},
        headers={**SERVER, "X-Request-Id": "req-42"},
    )
    assert given.headers["X-Request-Id"] == "req-42"
    # Both apps count into the services' one registry: a lean answer without its route's
    # template would be the only "unmatched" one.
    counted = [
        line
        for line in apps.lean.get("/metrics").text.splitlines()
        if line.startswith("billfold_http_request_seconds_count")
    ]
    route = 'route="/v1/accounts/{account_id}/spend",status="200"'
    assert any(route in line for line in counted)
    assert not any('route="unmatched"' in line for line in counted), counted


# --- handed on to FastAPI -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(spend(10, headers={}), id="no-credentials-401"),
        pytest.param(spend(10, headers={"Authorization": "Basic abc"}), id="not-bearer-401"),
        pytest.param(spend(10, headers={"Authorization": "Bearer nope"}), id="unknown-key-401"),
        pytest.param(spend(10, headers=ADMIN_AUTH), id="admin-403"),
        pytest.param(spend(10, headers=as_user("someone")), id="user-token-403"),
        pytest.param(spend(0), id="amount-zero-400"),
        pytest.param(spend("5"), id="amount-string-400"),
        pytest.param(spend(1.0), id="amount-float-400"),
        pytest.param(spend(True), id="amount-bool-400"),
        pytest.param(spend(10, memo="x"), id="unknown-field-400"),
        pytest.param(spend(10, headers=keyed(SERVER, "")), id="empty-idempotency-key-400"),
        pytest.param(spend(10, headers=keyed(SERVER, "k" * 256)), id="long-idempotency-key-400"),
        pytest.param(raw_spend(b"", SERVER), id="empty-body-400"),
        pytest.param(raw_spend(b"not json", SERVER), id="not-json-400"),
        pytest.param(raw_spend(b"[1, 2]", SERVER), id="json-array-400"),
        pytest.param(raw_spend(b"null", SERVER), id="json-null-400"),
        pytest.param(
            raw_spend(b'{"unit": "credits", "amount": 7}', SERVER), id="no-content-type-400"
        ),
        pytest.param(hold_then("capture", raw=b"null"), id="capture-null-body-400"),
        pytest.param(
            lambda c, a: c.post(
                "/v1/holds/hold_missing/release", json={"anything": 1}, headers=SERVER
            ),
            id="release-with-a-body",
        ),
        pytest.param(
            raw_spend(b'{"unit": "credits", "amount": 7}', {**SERVER, "Content-Type": "text/html"}),
            id="other-content-type",
        ),
        pytest.param(
            lambda c, a: c.post(
                f"/v1/accounts/{'x' * 201}/spend",
                json={"unit": "credits", "amount": 1},
                headers=SERVER,
            ),
            id="account-id-too-long-400",
        ),
        pytest.param(hold_then("capture", {"amount": -1}), id="capture-negative-400"),
        pytest.param(hold_then("capture", raw=b"{"), id="capture-broken-json-400"),
        pytest.param(
            lambda c, a: c.post(
                f"/v1/accounts/{a}/holds",
                json={"unit": "credits", "amount": 5, "ttl_seconds": 0},
                headers=SERVER,
            ),
            id="hold-bad-ttl-400",
        ),
    ],
)
def test_a_request_the_lean_route_does_not_take_answers_as_before(apps: Pair, case: Case) -> None:
    apps.same(case, lean="handed on")


def test_other_methods_and_paths_are_fastapi_s(apps: Pair) -> None:
    before = apps.stats.handed_on, apps.stats.answered
    for path in ("/v1/accounts/a/spend/", "/v1/accounts/a/spend/x", "/v1/accounts//spend"):
        lean, plain = (
            app.post(
                path, json={"unit": "credits", "amount": 1}, headers=SERVER, follow_redirects=False
            )
            for app in (apps.lean, apps.plain)
        )
        assert (lean.status_code, lean.text) == (plain.status_code, plain.text)
        assert lean.headers.get("location") == plain.headers.get("location")
    got = apps.lean.get("/v1/accounts/a/spend", headers=SERVER)
    want = apps.plain.get("/v1/accounts/a/spend", headers=SERVER)
    assert (got.status_code, got.headers.get("allow")) == (want.status_code, want.headers["allow"])
    assert (apps.stats.handed_on, apps.stats.answered) == before  # never looked at


# --- rate limits ----------------------------------------------------------------------------------


def test_rate_limits_count_each_request_once_whichever_way_it_went(
    db_url: str, engine: Any, clock: FakeClock
) -> None:
    with pair_of_apps(db_url, clock, rate_limit_spend_per_minute=4) as apps:

        def budget(client: TestClient, account: str) -> Any:
            assert spend(1)(client, account).status_code == 200
            assert spend(0)(client, account).status_code == 400  # handed on: counted once
            assert (
                spend(1, headers=keyed(SERVER, f"k-{account}"))(client, account).status_code == 200
            )
            assert spend(1)(client, account).status_code == 200
            limited = spend(1)(client, account)
            # Per credential: the other key has its own budget.
            assert spend(1, headers=ROTATED_SERVER)(client, account).status_code == 200
            return limited

        def limited_hold(client: TestClient, account: str) -> Any:
            return client.post(
                f"/v1/accounts/{account}/holds",
                json={"unit": "credits", "amount": 1},
                headers=SERVER,
            )

        answer = apps.same(budget, lean="answered")
        assert answer.status_code == 429
        assert answer.json()["code"] == "rate_limited"
        limited = apps.same(limited_hold, lean="answered")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 20


# --- the webhook ----------------------------------------------------------------------------------


def _deliver(event: dict[str, Any], headers: dict[str, str] | None = None) -> Case:
    def run(client: TestClient, account: str) -> Any:
        fresh = {**event, "id": se.new_id("evt")}
        body, signed = se.signed(fresh, SECRET)
        return client.post(
            "/webhooks/stripe", content=body, headers=signed if headers is None else headers
        )

    return run


def test_webhooks_answer_alike(apps: Pair) -> None:
    event = se.any_event("customer.created", se.customer())
    answered = apps.same(_deliver(event), lean="answered", credits=0)
    assert answered.status_code == 200
    assert answered.json()["received"] is True
    for headers in ({}, {"Stripe-Signature": "t=1,v1=00"}):
        refused = apps.same(_deliver(event, headers), lean="answered", credits=0)
        assert refused.status_code == 400


def test_a_redelivery_is_a_duplicate_through_either_way(apps: Pair) -> None:
    body, headers = se.signed(se.any_event("customer.created", se.customer()), SECRET)
    first = apps.lean.post("/webhooks/stripe", content=body, headers=headers)
    again = apps.plain.post("/webhooks/stripe", content=body, headers=headers)
    third = apps.lean.post("/webhooks/stripe", content=body, headers=headers)
    assert first.json()["duplicate"] is False
    assert (
        again.json()
        == third.json()
        == {"received": True, "duplicate": True, "id": first.json()["id"]}
    )
    assert count(apps.services, "events") == 1


def test_a_webhook_body_over_the_limit_is_413_either_way(apps: Pair) -> None:
    big = b"{" + b" " * (1024 * 1024) + b"}"
    for client in (apps.lean, apps.plain):
        declared = client.post("/webhooks/stripe", content=big, headers={"Stripe-Signature": "x"})
        assert declared.status_code == 413
        assert declared.json()["code"] == "payload_too_large"


def test_with_a_jwks_url_server_keys_stay_lean_and_user_tokens_go_to_fastapi(
    db_url: str, engine: Any, clock: FakeClock
) -> None:
    """A JWKS URL means a user token's key may be fetched over the network (FastAPI's route
    does that on a thread): such tokens are handed on; server keys need no network."""
    jwks = "http://127.0.0.1:9/.well-known/jwks.json"  # never fetched: no RS256 token is sent
    with pair_of_apps(db_url, clock, jwt_jwks_url=jwks) as apps:
        assert apps.same(spend(10), lean="answered").status_code == 200
        refused = apps.same(spend(10, headers=as_user("someone")), lean="handed on")
        assert refused.status_code == 403

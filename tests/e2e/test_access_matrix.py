"""Who may call what: every route against every kind of credential, as one table.

Rows are routes, columns are credentials. A cell is the status the route must answer; ``ok`` is the
route's success status. User tokens belong to ``user_1``, the account every route is called for;
``other`` is a valid token of ``user_2``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from billfold.domain.checkout import CheckoutRequest
from tests.conftest import FakeClock
from tests.support.api import (
    ADMIN_AUTH,
    SERVER,
    FakeStripe,
    api_client,
    bearer,
    grant,
    user_token,
)
from tests.support.app import JWT_SECRET

CREDENTIALS: dict[str, dict[str, str]] = {
    "none": {},
    "garbage": bearer("not-a-credential"),
    "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    "expired": bearer(user_token("user_1", expires_in=-60)),
    "forged": bearer(user_token("user_1", secret="another-secret-of-sufficient-length-42")),
    "no_exp": bearer(jwt.encode({"sub": "user_1"}, JWT_SECRET)),
    "alg_none": bearer(jwt.encode({"sub": "user_1", "exp": 4_000_000_000}, "", "none")),
    "self": bearer(user_token("user_1")),
    "other": bearer(user_token("user_2")),
    "server": SERVER,
    "admin": ADMIN_AUTH,
}
UNAUTHENTICATED = ("none", "garbage", "basic", "expired", "forged", "no_exp", "alg_none")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # may name {hold} and {session}, made fresh for each call
    body: dict[str, Any] | None
    ok: int
    allowed: dict[str, int]  # credential -> status, for those that pass authentication
    public: bool = False


def only(ok: int, *kinds: str, other: int = 403, **special: int) -> dict[str, int]:
    table = {kind: (ok if kind in kinds else 403) for kind in ("self", "server", "admin")}
    table["other"] = other
    table.update(special)
    return table


ROUTES = [
    Route(
        "GET",
        "/v1/catalog",
        None,
        200,
        only(200, "self", "server", "admin", other=200),
        public=True,
    ),
    Route(
        "POST",
        "/v1/checkout/sessions",
        {"account_id": "user_1", "package": "starter"},
        201,
        only(201, "self", "server"),
    ),
    Route(
        "POST",
        "/v1/checkout/sessions/{session}/fulfill",
        None,
        200,
        only(200, "self", "server", other=404),
    ),
    Route("GET", "/v1/accounts", None, 200, only(200, "admin")),
    Route("GET", "/v1/accounts/user_1", None, 200, only(200, "self", "server", "admin")),
    Route("PUT", "/v1/accounts/user_1", {"metadata": {"a": "b"}}, 200, only(200, "server")),
    Route("GET", "/v1/accounts/user_1/grants", None, 200, only(200, "self", "server", "admin")),
    Route(
        "GET",
        "/v1/accounts/user_1/balance/explain",
        None,
        200,
        only(200, "self", "server", "admin"),
    ),
    Route("GET", "/v1/accounts/user_1/holds", None, 200, only(200, "self", "server", "admin")),
    Route(
        "GET", "/v1/accounts/user_1/transactions", None, 200, only(200, "self", "server", "admin")
    ),
    Route(
        "GET", "/v1/accounts/user_1/entitlements", None, 200, only(200, "self", "server", "admin")
    ),
    Route(
        "POST",
        "/v1/accounts/user_1/check",
        {"feature": "auto_trading", "unit": "credits", "amount": 1},
        200,
        only(200, "self", "server", "admin"),
    ),
    Route(
        "GET", "/v1/accounts/user_1/subscriptions", None, 200, only(200, "self", "server", "admin")
    ),
    # user_1 has no subscription (404) and no Stripe customer (409): past the access check, the
    # answer is the service's.
    Route(
        "POST",
        "/v1/accounts/user_1/subscription",
        {"plan": "elite"},
        404,
        only(404, "self", "server"),
    ),
    Route("DELETE", "/v1/accounts/user_1/subscription", None, 404, only(404, "self", "server")),
    Route(
        "POST",
        "/v1/accounts/user_1/billing-portal",
        {"return_url": "https://shop.example/account"},
        409,
        only(409, "self", "server"),
    ),
    Route("POST", "/v1/accounts/user_1/sync", None, 200, only(200, "self", "server")),
    Route("GET", "/v1/subscriptions", None, 200, only(200, "admin")),
    Route("POST", "/v1/subscriptions/sync", None, 200, only(200, "admin")),
    Route(
        "POST",
        "/v1/accounts/user_1/spend",
        {"unit": "credits", "amount": 1},
        200,
        only(200, "server"),
    ),
    Route(
        "POST",
        "/v1/accounts/user_1/holds",
        {"unit": "credits", "amount": 1},
        201,
        only(201, "server"),
    ),
    Route("GET", "/v1/holds/{hold}", None, 200, only(200, "self", "server", "admin", other=404)),
    Route("POST", "/v1/holds/{hold}/capture", {"amount": 1}, 200, only(200, "server")),
    Route("POST", "/v1/holds/{hold}/release", None, 200, only(200, "server")),
    Route(
        "POST",
        "/v1/accounts/user_1/grants",
        {"unit": "credits", "amount": 1, "reason": "matrix"},
        201,
        only(201, "admin"),
    ),
    Route(
        "POST",
        "/v1/accounts/user_1/adjustments",
        {"unit": "credits", "amount": 1, "reason": "matrix"},
        201,
        only(201, "admin"),
    ),
    Route("GET", "/v1/events", None, 200, only(200, "admin")),
    Route("GET", "/v1/dashboard", None, 200, only(200, "admin")),
    Route("GET", "/v1/events/evt_unknown", None, 404, only(404, "admin")),
    Route("GET", "/v1/events/evt_unknown/payload", None, 404, only(404, "admin")),
    Route("POST", "/v1/events/evt_unknown/retry", None, 404, only(404, "admin")),
    Route("POST", "/v1/events/evt_unknown/replay", {"reason": "matrix"}, 404, only(404, "admin")),
    Route("GET", "/v1/attention", None, 200, only(200, "admin")),
    Route("GET", "/v1/operator-actions", None, 200, only(200, "admin")),
    Route("GET", "/v1/orders", None, 200, only(200, "admin")),
    Route("GET", "/v1/orders/ord_unknown", None, 404, only(404, "admin")),
    Route("POST", "/v1/orders/ord_unknown/resolve", {}, 404, only(404, "admin")),
    # The fake Stripe cannot list Stripe's money: past the access check, the service answers 502
    # (tests/e2e/test_reconciliation.py starts real runs against the simulator).
    Route("POST", "/v1/reconciliation/runs", {}, 502, only(502, "admin")),
    Route("GET", "/v1/reconciliation/runs", None, 200, only(200, "admin")),
    Route("GET", "/v1/reconciliation/runs/rcn_unknown", None, 404, only(404, "admin")),
    Route(
        "POST",
        "/v1/notification-endpoints",
        {"url": "https://app.example.test/billfold", "types": ["balance.low"]},
        200,
        only(200, "admin"),
    ),
    Route("GET", "/v1/notification-endpoints", None, 200, only(200, "admin")),
    Route("GET", "/v1/notifications", None, 200, only(200, "admin")),
    Route("GET", "/v1/notifications/msg_unknown", None, 404, only(404, "admin")),
    Route("POST", "/v1/notifications/msg_unknown/redeliver", None, 404, only(404, "admin")),
]


def expected(route: Route, credential: str) -> int:
    if route.public:
        return route.ok
    if credential in UNAUTHENTICATED:
        return 401
    return route.allowed[credential]


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_every_route_answers_every_credential_as_the_table_says(
    db_url: str, engine: Any, clock: FakeClock, credential: str
) -> None:
    stripe = FakeStripe()
    with api_client(db_url, clock=clock, stripe=stripe) as (client, services):
        grant(client, "user_1", 1_000)
        grant(client, "user_2", 1_000)
        fresh = _fresh_objects(client, stripe)
        wrong: list[str] = []
        for route in ROUTES:
            path = route.path
            for name, make in fresh.items():
                if f"{{{name}}}" in path:
                    path = path.replace(f"{{{name}}}", make())
            response = client.request(
                route.method, path, json=route.body, headers=CREDENTIALS[credential]
            )
            want = expected(route, credential)
            if response.status_code != want:
                wrong.append(
                    f"{route.method} {route.path}: {response.status_code} (want {want}) "
                    f"{response.text[:160]}"
                )
            _check_body(response, want, wrong, route)
        _check_nothing_leaked(services, credential)
        assert not wrong, f"credential {credential!r}:\n" + "\n".join(wrong)


def _fresh_objects(client: TestClient, stripe: FakeStripe) -> dict[str, Callable[[], str]]:
    def hold() -> str:
        response = client.post(
            "/v1/accounts/user_1/holds", json={"unit": "credits", "amount": 5}, headers=SERVER
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def session() -> str:
        created = stripe.create_checkout_session(
            CheckoutRequest(
                account_id="user_1",
                package_id="starter",
                title="Starter Pack",
                currency="usd",
                unit_amount=499,
                stripe_price_id=None,
                success_url="https://shop.example/thanks?session_id={CHECKOUT_SESSION_ID}",
                cancel_url=None,
            )
        )
        stripe.complete(created.id)
        return created.id

    return {"hold": hold, "session": session}


def _check_body(response: Any, want: int, wrong: list[str], route: Route) -> None:
    body = response.json()
    if want >= 400 and response.status_code == want:
        if set(body) != {"error", "code", "message"}:
            wrong.append(f"{route.method} {route.path}: error body {body}")
        if want == 401 and response.headers.get("WWW-Authenticate") != "Bearer":
            wrong.append(f"{route.method} {route.path}: 401 without WWW-Authenticate")


def _check_nothing_leaked(services: Services, credential: str) -> None:
    """A refused caller wrote nothing: user_2's balance is untouched whoever asked."""
    balance = services.ledger.balances("user_2")["credits"].available
    assert balance == 1_000, f"{credential} changed user_2's balance"


def test_the_table_covers_every_route_the_api_serves(db_url: str, engine: Any) -> None:
    with api_client(db_url) as (client, _):
        served = {
            (method.upper(), path)
            for path, operations in client.get("/openapi.json").json()["paths"].items()
            for method in operations
            if path.startswith("/v1/")
        }
    tabled = {
        (r.method, r.path.replace("{hold}", "{hold_id}").replace("{session}", "{session_id}"))
        for r in ROUTES
    }
    normalise = {
        "/v1/accounts/user_1": "/v1/accounts/{account_id}",
        "/v1/events/evt_unknown": "/v1/events/{event_id}",
        "/v1/orders/ord_unknown": "/v1/orders/{order_id}",
        "/v1/reconciliation/runs/rcn_unknown": "/v1/reconciliation/runs/{run_id}",
        "/v1/notifications/msg_unknown": "/v1/notifications/{notification_id}",
    }

    def generic(path: str) -> str:
        for concrete, template in normalise.items():
            path = path.replace(concrete, template)
        return path

    tabled = {(m, generic(p)) for m, p in tabled}
    missing = served - tabled
    assert not missing, f"routes missing from the access table: {sorted(missing)}"

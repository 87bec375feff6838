"""billfold.client without a server: what it imports, that the async client mirrors the sync one,
how error bodies become billfold's exceptions, when it retries, and notification signatures
(checked against the ``standardwebhooks`` reference implementation)."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from billfold.client import (
    APIConnectionError,
    AsyncClient,
    Client,
    WebhookVerificationError,
    verify_notification,
)
from billfold.domain import errors

SERVER_MODULES = ("fastapi", "starlette", "sqlalchemy", "stripe", "alembic", "psycopg", "uvicorn")


def test_importing_the_client_loads_no_server_code() -> None:
    probe = "import sys, json, billfold.client\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert "billfold.client" in loaded
    assert "billfold.schemas" in loaded
    server = [
        m
        for m in loaded
        if m.split(".")[0] in SERVER_MODULES
        or m.startswith(("billfold.service", "billfold.adapters", "billfold.entrypoints"))
        or m in ("billfold.bootstrap", "billfold.settings", "billfold.library")
    ]
    assert server == []


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_") and name not in ("close", "aclose")
    }


def test_the_async_client_has_every_method_of_the_sync_client_with_the_same_parameters() -> None:
    sync, asynchronous = _public(Client), _public(AsyncClient)
    assert sorted(sync) == sorted(asynchronous)
    assert len(sync) >= 28
    for name, signature in sync.items():
        other = asynchronous[name]
        assert list(signature.parameters) == list(other.parameters), name
        for param in signature.parameters.values():
            assert param.default == other.parameters[param.name].default, (name, param.name)
        is_list = name.startswith("list_")
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)) is not is_list, name


def test_exactly_one_credential() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Client("http://billfold.test")
    with pytest.raises(ValueError, match="exactly one"):
        Client("http://billfold.test", api_key="k", user_token="t")


# --- errors and retries, over httpx's MockTransport ----------------------------------------------


def error(status: int, code: str, message: str = "no", **details: Any) -> httpx.Response:
    body = {"error": {"type": "x", "code": code, "message": message, **details}}
    return httpx.Response(status, json={**body, "code": code, "message": message})


class Script:
    """Answers in turn; records every request."""

    def __init__(self, *answers: httpx.Response | type[httpx.TransportError]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, type):
            raise answer("scripted", request=request)
        return answer

    @property
    def keys(self) -> list[str | None]:
        return [r.headers.get("idempotency-key") for r in self.requests]


def client_for(script: Script, sleeps: list[float], **kwargs: Any) -> Client:
    return Client(
        "http://billfold.test",
        api_key="sk_test",
        transport=httpx.MockTransport(script),
        sleep=sleeps.append,
        **kwargs,
    )


SPEND = {
    "transaction_id": "txn_1",
    "account_id": "user_1",
    "unit": "credits",
    "amount": 5,
    "balance": 95,
    "draws": [{"grant_id": "gr_1", "amount": 5}],
}


def test_insufficient_balance_arrives_typed_with_what_is_available() -> None:
    script = Script(
        error(402, "insufficient_balance", "short", unit="credits", requested=50, available=7)
    )
    with pytest.raises(errors.InsufficientBalance) as caught:
        client_for(script, []).spend("user_1", "credits", 50)
    assert (caught.value.available, caught.value.requested, caught.value.unit) == (7, 50, "credits")
    assert caught.value.message == "short"
    assert caught.value.details["http_status"] == 402
    assert len(script.requests) == 1  # a 402 is an answer, not a failure: never retried


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (409, "idempotency_conflict", errors.IdempotencyConflict),
        (404, "account_not_found", errors.AccountNotFound),
        (404, "not_found", errors.NotFound),
        (403, "forbidden", errors.Forbidden),
        (401, "unauthenticated", errors.Unauthenticated),
        (409, "hold_not_active", errors.HoldNotActive),
        (400, "resource_missing", errors.CursorNotFound),
        (400, "invalid_request", errors.ValidationError),
        (404, "a_code_from_a_newer_server", errors.NotFound),
        (405, "method_not_allowed", errors.BillfoldError),
    ],
)
def test_each_error_code_is_billfolds_own_exception(
    status: int, code: str, expected: type[errors.BillfoldError]
) -> None:
    with pytest.raises(expected) as caught:
        client_for(Script(error(status, code)), []).get_account("user_1")
    assert type(caught.value) is expected
    assert caught.value.code == code


def test_a_dropped_connection_and_a_503_are_retried_with_the_same_idempotency_key() -> None:
    script = Script(
        httpx.RemoteProtocolError, error(503, "contention"), httpx.Response(200, json=SPEND)
    )
    sleeps: list[float] = []
    done = client_for(script, sleeps).spend("user_1", "credits", 5)
    assert done.transaction_id == "txn_1"
    assert len(script.requests) == 3
    assert len(set(script.keys)) == 1
    assert script.keys[0] is not None
    assert 0.25 <= sleeps[0] <= 0.5  # backoff with jitter: half to all of 0.5 s, then of 1 s
    assert 0.5 <= sleeps[1] <= 1.0


def test_the_callers_key_is_sent_and_each_call_gets_its_own_key() -> None:
    script = Script(*[httpx.Response(200, json=SPEND)] * 3)
    client = client_for(script, [])
    client.spend("user_1", "credits", 5, idempotency_key="order-42")
    client.spend("user_1", "credits", 5)
    client.spend("user_1", "credits", 5)
    assert script.keys[0] == "order-42"
    assert script.keys[1] != script.keys[2]


def test_429_waits_what_retry_after_says() -> None:
    limited = error(429, "rate_limited", retry_after=3)
    limited.headers["Retry-After"] = "3"
    script = Script(limited, httpx.Response(200, json=SPEND))
    sleeps: list[float] = []
    client_for(script, sleeps).spend("user_1", "credits", 5)
    assert sleeps == [3.0]


def test_a_retry_after_past_a_minute_raises_rate_limited_at_once() -> None:
    limited = error(429, "rate_limited", retry_after=600)
    limited.headers["Retry-After"] = "600"
    sleeps: list[float] = []
    with pytest.raises(errors.RateLimited) as caught:
        client_for(Script(limited), sleeps).spend("user_1", "credits", 5)
    assert caught.value.retry_after == 600
    assert sleeps == []


def test_after_the_last_retry_the_connection_error_is_raised() -> None:
    script = Script(httpx.ConnectError, httpx.ConnectError, httpx.ConnectError)
    with pytest.raises(APIConnectionError):
        client_for(script, [], max_retries=2).get_catalog()
    assert len(script.requests) == 3


def test_no_retries_when_max_retries_is_zero() -> None:
    script = Script(error(503, "storage_unavailable"))
    with pytest.raises(errors.StorageUnavailable):
        client_for(script, [], max_retries=0).get_catalog()
    assert len(script.requests) == 1


def test_a_key_still_in_use_is_retried() -> None:
    script = Script(error(409, "idempotency_key_in_use"), httpx.Response(200, json=SPEND))
    sleeps: list[float] = []
    client_for(script, sleeps).spend("user_1", "credits", 5)
    assert len(sleeps) == 1
    assert len(set(script.keys)) == 1


def test_the_async_client_retries_the_same_way() -> None:
    script = Script(httpx.ReadError, httpx.Response(200, json=SPEND))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> str:
        async with AsyncClient(
            "http://billfold.test",
            api_key="sk_test",
            transport=httpx.MockTransport(script),
            sleep=sleep,
        ) as client:
            return (await client.spend("user_1", "credits", 5)).transaction_id

    assert asyncio.run(run()) == "txn_1"
    assert len(sleeps) == 1
    assert len(set(script.keys)) == 1


def test_ids_are_quoted_as_one_path_segment() -> None:
    script = Script(error(404, "account_not_found"))
    with pytest.raises(errors.NotFound):
        client_for(script, []).get_account("team/a b?c")
    assert script.requests[0].url.raw_path == b"/v1/accounts/team%2Fa%20b%3Fc"


# --- notifications: Standard Webhooks ------------------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"a notification secret, 32 bytes!").decode()
OTHER = "whsec_" + base64.b64encode(b"the secret before the rotation..").decode()
NOW = 1_800_000_000
BODY = json.dumps(
    {"type": "credits.granted", "timestamp": "2027-01-15T08:00:00Z", "data": {"account_id": "u1"}}
)


def signed(secret: str = SECRET, *, at: int = NOW, body: str = BODY) -> dict[str, str]:
    signature = Webhook(secret).sign("msg_1", datetime.fromtimestamp(at, tz=UTC), body)
    return {"webhook-id": "msg_1", "webhook-timestamp": str(at), "webhook-signature": signature}


def test_a_notification_signed_by_the_reference_library_verifies() -> None:
    parsed = verify_notification(BODY.encode(), signed(), SECRET, now=NOW + 10)
    assert parsed["data"] == {"account_id": "u1"}
    assert verify_notification(BODY, signed(), SECRET, now=NOW)["type"] == "credits.granted"


def test_headers_are_read_whatever_their_case() -> None:
    headers = {k.title(): v for k, v in signed().items()}
    assert verify_notification(BODY, headers, SECRET, now=NOW)["type"] == "credits.granted"


def test_several_signatures_and_several_secrets_while_rotating() -> None:
    both = signed(OTHER)["webhook-signature"] + " " + signed(SECRET)["webhook-signature"]
    headers = {**signed(), "webhook-signature": "v0,bm9wZQ== " + both}
    assert verify_notification(BODY, headers, SECRET, now=NOW)
    assert verify_notification(BODY, signed(OTHER), [SECRET, OTHER], now=NOW)


def test_our_signature_is_accepted_by_the_reference_library() -> None:
    from billfold.client import sign

    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW)}
    headers["webhook-signature"] = sign(SECRET, "msg_1", NOW, BODY)
    assert headers["webhook-signature"] == signed()["webhook-signature"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h: {**h, "webhook-signature": signed(OTHER)["webhook-signature"]},
        lambda h: {**h, "webhook-id": "msg_2"},
        lambda h: {k: v for k, v in h.items() if k != "webhook-signature"},
        lambda h: {k: v for k, v in h.items() if k != "webhook-timestamp"},
        lambda h: {**h, "webhook-timestamp": "soon"},
        lambda h: {**h, "webhook-signature": "v1,"},
    ],
)
def test_a_wrong_or_missing_signature_is_refused(
    tamper: Callable[[dict[str, str]], dict[str, str]],
) -> None:
    with pytest.raises(errors.InvalidSignature):
        verify_notification(BODY, tamper(signed()), SECRET, now=NOW)


def test_a_changed_body_is_refused() -> None:
    with pytest.raises(WebhookVerificationError):
        verify_notification(BODY.replace("u1", "u2"), signed(), SECRET, now=NOW)


def test_timestamps_more_than_five_minutes_away_are_refused() -> None:
    assert verify_notification(BODY, signed(at=NOW - 300), SECRET, now=NOW)
    assert verify_notification(BODY, signed(at=NOW + 300), SECRET, now=NOW)
    for at in (NOW - 301, NOW + 301):
        with pytest.raises(errors.InvalidSignature, match="timestamp"):
            verify_notification(BODY, signed(at=at), SECRET, now=NOW)


def test_retry_after_as_an_http_date() -> None:
    from email.utils import format_datetime

    from billfold.client import _core

    later = datetime.fromtimestamp(datetime.now(tz=UTC).timestamp() + 30, tz=UTC)
    response = httpx.Response(503, headers={"Retry-After": format_datetime(later, usegmt=True)})
    wait = _core.retry_after(response)
    assert wait is not None
    assert 25 <= wait <= 30
    assert _core.retry_after(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    assert _core.retry_delay(httpx.Response(400), 0) is None

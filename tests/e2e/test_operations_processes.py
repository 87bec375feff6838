"""Real processes: ``billfold serve --workers 2`` and a separate ``billfold worker`` sharing one
PROMETHEUS_MULTIPROC_DIR. /metrics sums every process; every line each writes is one JSON object,
the request's lines carry its request id, and no configured secret appears in any line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import stripe_events as se
from tests.support import servers
from tests.support.api import user_token
from tests.support.app import ADMIN, API_KEY, JWT_SECRET, OLD_SECRET, SECRET

METRICS_TOKEN = "metrics-secret-token-9f8e7d"
STRIPE_KEY = "sk_test_operations_secret_key_123456"


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(
        f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30
    )
    assert answer.status_code == 200
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@pytest.mark.slow
def test_metrics_sum_every_process_and_json_logs_carry_request_ids_and_no_secret(
    tmp_path: Path,
) -> None:
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    env = servers.billfold_env(
        f"sqlite:///{tmp_path / 'ops.db'}",
        BILLFOLD_STRIPE_WEBHOOK_SECRETS=f"{SECRET},{OLD_SECRET}",
        BILLFOLD_API_KEYS=API_KEY,
        BILLFOLD_ADMIN_TOKEN=ADMIN,
        BILLFOLD_JWT_SECRET=JWT_SECRET,
        BILLFOLD_METRICS_TOKEN=METRICS_TOKEN,
        BILLFOLD_STRIPE_SECRET_KEY=STRIPE_KEY,
        BILLFOLD_STRIPE_API_BASE="http://127.0.0.1:9",  # Stripe unreachable: the worker fails
        BILLFOLD_WORKER_IN_PROCESS="false",
        BILLFOLD_WORKER_POLL_SECONDS="0.2",
        BILLFOLD_WORKER_BACKOFF_BASE_SECONDS="600",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
    )
    token = user_token("user_ops")
    secrets = servers.secrets_of(env, token)
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    ids: list[str] = []
    with (
        servers.serve(env, workers=2, log_path=serve_log) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):

        def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            answer = http.request(method, path, **kwargs)
            ids.append(answer.headers["x-request-id"])
            return answer

        paid = se.checkout_session_completed(
            metadata={"billfold_account": "user_ops", "billfold_package": "starter"},
            amount_total=499,
        )
        body, headers = se.signed(paid, SECRET)
        assert call("POST", "/webhooks/stripe", content=body, headers=headers).is_success
        forged, _ = se.signed(paid, "whsec_wrong")
        bad = {**headers, "Stripe-Signature": headers["Stripe-Signature"][:-4] + "beef"}
        assert call("POST", "/webhooks/stripe", content=forged, headers=bad).status_code == 400
        # A session without billfold's metadata needs Stripe: left for the worker.
        needs_stripe = se.checkout_session_completed(amount_total=499)
        body2, headers2 = se.signed(needs_stripe, SECRET)
        assert call("POST", "/webhooks/stripe", content=body2, headers=headers2).is_success
        server = {"Authorization": f"Bearer {API_KEY}"}
        spend = {"unit": "credits", "amount": 10}
        assert call("POST", "/v1/accounts/user_ops/spend", json=spend, headers=server).is_success
        user = {"Authorization": f"Bearer {token}"}
        assert call("GET", "/v1/accounts/user_ops", headers=user).is_success
        admin = {"Authorization": f"Bearer {ADMIN}"}
        assert call("GET", "/v1/events", headers=admin).is_success
        given = call("GET", "/healthz", headers={"X-Request-Id": "trace-given-1"})
        assert given.headers["x-request-id"] == "trace-given-1"
        for _ in range(10):
            assert call("GET", "/v1/catalog").is_success

        with servers.worker(env, log_path=worker_log):
            deadline = time.monotonic() + 60
            while True:
                got = scrape(base)
                failed = got.get(
                    (
                        "billfold_events_processed_total",
                        (("outcome", "failed"), ("type", "checkout.session.completed")),
                    ),
                    0,
                )
                if failed >= 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            ready = http.get("/readyz").json()
        scrapes = [scrape(base) for _ in range(4)]  # answered by either server process

    assert failed == 1, "the separate worker's metrics reach the server's /metrics"
    assert ready["worker_heartbeat_age_seconds"] is not None
    catalog = (
        "billfold_http_request_seconds_count",
        (("method", "GET"), ("route", "/v1/catalog"), ("status", "200")),
    )
    # Ten requests spread over two processes: every scrape, whichever process answers, sums both.
    assert [s[catalog] for s in scrapes] == [10.0] * 4
    stored = (
        "billfold_events_received_total",
        (("result", "stored"), ("type", "checkout.session.completed")),
    )
    assert scrapes[0][stored] == 2

    lines = servers.json_log_lines(serve_log, secrets) + servers.json_log_lines(worker_log, secrets)
    access = [line for line in lines if line.get("logger") == "billfold.access"]
    assert {line["request_id"] for line in access} >= set(ids)
    assert all(line.get("request_id") for line in access)
    assert any(line.get("request_id") == "trace-given-1" for line in access)
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)
    worker_lines = servers.json_log_lines(worker_log, secrets)
    assert any("failed" in str(line.get("event")) for line in worker_lines)

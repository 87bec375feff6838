"""Build billfold apps and send it signed Stripe events, for the HTTP-level tests."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from billfold.bootstrap import Services, build
from billfold.entrypoints.http.app import create_app
from billfold.settings import Settings, load_settings
from tests.builders import stripe_events as se

SECRET = "whsec_test_primary"
OLD_SECRET = "whsec_test_previous"
API_KEY = "sk_billfold_test_server"
ADMIN = "adm_test_token"
JWT_SECRET = "jwt-test-secret-with-enough-length-0123456789"


def settings_for(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "stripe_webhook_secrets": f"{SECRET},{OLD_SECRET}",
        "api_keys": API_KEY,
        "admin_token": ADMIN,
        "jwt_secret": JWT_SECRET,
        "worker_backoff_base_seconds": 1.0,
    }
    values.update(overrides)
    return load_settings(**values)


@contextmanager
def running_app(
    db_url: str, *, clock: Any = None, stripe: Any = None, ledger: Any = None, **overrides: Any
) -> Iterator[tuple[TestClient, Services]]:
    """An app on ``db_url``; a ``stripe`` fake that also answers the subscriptions API (has
    ``retrieve_subscription``) serves both ports; ``ledger`` is reconciliation's Stripe."""
    subscriptions = stripe if hasattr(stripe, "retrieve_subscription") else None
    services = build(
        settings_for(db_url, **overrides),
        clock=clock,
        stripe=stripe,
        subscriptions_api=subscriptions,
        ledger_api=ledger,
    )
    app = create_app(services=services, run_worker=False)
    try:
        with TestClient(app, raise_server_exceptions=True) as client:
            yield client, services
    finally:
        services.close()


def deliver(
    client: TestClient,
    event: Mapping[str, Any],
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
) -> Any:
    body, headers = se.signed(event, secret, timestamp)
    return client.post("/webhooks/stripe", content=body, headers=headers)


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def balances(services: Services, account_id: str) -> dict[str, int]:
    return {u: v.available for u, v in services.ledger.balances(account_id).items()}


def use_stripe(services: Services, gateway: Any) -> None:
    """Swap the Stripe gateway every service holds (Stripe going down, or coming back)."""
    services.infra.stripe = gateway
    services.inbox.stripe = gateway
    services.orders.stripe = gateway
    services.checkout.stripe = gateway


def event_status(services: Services, event_id: str) -> str:
    with services.infra.uow() as uow:
        record = uow.inbox.get(event_id)
    assert record is not None, f"{event_id} is not in the inbox"
    return record.status


def count(services: Services, table: str) -> int:
    import sqlalchemy as sa

    with services.infra.database.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()

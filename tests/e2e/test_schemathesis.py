"""The served OpenAPI document, fuzzed: schemathesis generates requests for every route (but the
webhook, whose body is signed bytes) and checks that none answers 5xx and every answer conforms to
the document, once with the server key and once with the admin token."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from billfold.entrypoints.http.app import create_app
from tests.support.api import ADMIN_AUTH, SERVER, FakeStripe, api_client, grant
from tests.support.fake_ledger import FakeStripeLedger

# Bounded so that the suite stays fast; raise it for a deeper run: BILLFOLD_FUZZ_EXAMPLES=200.
MAX_EXAMPLES = int(os.environ.get("BILLFOLD_FUZZ_EXAMPLES", "12"))


@pytest.fixture
def app_under_test(db_url: str, engine: Any) -> Iterator[Any]:
    stripe = FakeStripe()
    with api_client(db_url, stripe=stripe, ledger=FakeStripeLedger()) as (client, services):
        grant(client, "user_1", 1_000)
        yield create_app(services=services, run_worker=False)
        services.reconciliation.wait_idle(timeout=30)


def test_no_5xx_and_every_answer_conforms(app_under_test: Any) -> None:
    # schemathesis's own pytest integration (``from_fixture``) does not run under this pytest, so
    # each operation's strategy is driven by hypothesis here.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app_under_test)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    fuzzed = [op for op in operations if op.path != "/webhooks/stripe"]
    assert len(fuzzed) >= 20

    for operation in fuzzed:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            for headers in (SERVER, ADMIN_AUTH):
                case.call_and_validate(
                    headers=headers,
                    checks=[checks.not_a_server_error, checks.response_schema_conformance],
                )

        check()


def test_the_document_describes_errors_and_credentials(db_url: str, engine: Any) -> None:
    with api_client(db_url) as (client, _):
        document = client.get("/openapi.json").json()
        # The interactive docs load nothing from the network: their scripts are served here.
        for page in ("/docs", "/redoc"):
            html = client.get(page)
            assert html.status_code == 200
            assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
            assert assets, page
            for asset in assets:
                assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
                served = client.get(asset)
                assert served.status_code == 200, asset
                assert len(served.content) > 500, asset
    spend = document["paths"]["/v1/accounts/{account_id}/spend"]["post"]
    assert {"400", "401", "402", "403", "409", "429"} <= set(spend["responses"])
    assert spend["security"] == [{"bearer": []}]
    header = next(p for p in spend["parameters"] if p["in"] == "header")
    assert header["name"] == "Idempotency-Key"
    assert "security" not in document["paths"]["/v1/catalog"]["get"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], f"{method} {path} documents 422"
    assert "bearer" in document["components"]["securitySchemes"]

"""billfold's Python client: the HTTP API from your application, synchronously or with asyncio.

    from billfold.client import Client
    from billfold.domain import errors

    with Client("https://billing.internal", api_key=KEY) as billfold:
        try:
            billfold.spend("user_123", "credits", 40, reason="report")
        except errors.InsufficientBalance as short:
            print(f"only {short.available} credits left")
        for txn in billfold.list_transactions("user_123"):   # every page, newest first
            ...

Importing it loads httpx, pydantic and billfold's request/response models, never the server's
framework, database or Stripe code. Answers are the models the server serves
(``billfold.schemas``); errors are billfold's own exceptions (``billfold.domain.errors``);
``verify_notification`` checks the signature of a notification billfold sends.
"""

from __future__ import annotations

from billfold import schemas
from billfold.client._async import AsyncClient
from billfold.client._core import APIConnectionError, UnexpectedResponse
from billfold.client._paths import UNSET
from billfold.client._sync import Client
from billfold.client.notifications import WebhookVerificationError, sign, verify_notification
from billfold.domain import errors

__all__ = [
    "UNSET",
    "APIConnectionError",
    "AsyncClient",
    "Client",
    "UnexpectedResponse",
    "WebhookVerificationError",
    "errors",
    "schemas",
    "sign",
    "verify_notification",
]

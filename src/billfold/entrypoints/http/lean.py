"""The hot routes, answered without the framework's per-request machinery (issue 12, decision 3).

    POST /webhooks/stripe
    POST /v1/accounts/{account_id}/spend
    POST /v1/accounts/{account_id}/holds
    POST /v1/holds/{hold_id}/capture
    POST /v1/holds/{hold_id}/release

For each request FastAPI tries the routes' patterns one by one, builds a ``Request``, resolves the
dependencies, parses and validates the body, calls the route, validates its answer again against
the response model, serialises it through ``jsonable_encoder`` and wraps it in two more layers of
middleware: on a spend that was about half of the server's CPU (``make bench --profile spends``).
Here a request to one of these routes that is well formed in every way the route checks is
answered directly, by the same functions the FastAPI routes call (``routes.spending``), with the
same authenticator, rate limiter, request models, presenters and error table. Any other request
(no credentials or the wrong kind, a header or body the models refuse, a body that is not JSON, a
credential that may need the network) is handed to FastAPI as it came, its body included, and is
answered exactly as before. Nothing with an effect runs before that choice is made, so a request
handed on is never counted twice by a rate limit. The routes stay declared in FastAPI: the OpenAPI
document, the docs and every refusal are theirs.

The middleware sits inside the request id, metrics and access log (``Observability``), which see a
lean answer as any other: the route's template is in the scope, where Starlette's router puts it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.entrypoints.http import presenters, webhooks
from billfold.entrypoints.http.access import RateLimits, idempotency_headers
from billfold.entrypoints.http.auth import Authenticator, Principal
from billfold.entrypoints.http.errors import response_for
from billfold.entrypoints.http.routes import spending
from billfold.schemas import CaptureRequest, HoldRequest, SpendRequest

Run = Callable[[Services, Principal, str, Any, str | None], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class _Route:
    template: str
    pattern: re.Pattern[str]
    max_length: int
    """The path parameter's longest accepted value (the FastAPI route's ``Path`` constraint)."""
    body: type[BaseModel] | None
    body_required: bool
    rate_limited: bool
    status: int
    run: Run
    present: Callable[[Any], BaseModel]


def _route(template: str, **kwargs: Any) -> _Route:
    pattern = re.compile(re.sub(r"\{[a-z_]+\}", "([^/]+)", template))
    return _Route(template=template, pattern=pattern, **kwargs)


ROUTES = (
    _route(
        "/v1/accounts/{account_id}/spend",
        max_length=200,
        body=SpendRequest,
        body_required=True,
        rate_limited=True,
        status=200,
        run=spending.spent,
        present=presenters.spend,
    ),
    _route(
        "/v1/accounts/{account_id}/holds",
        max_length=200,
        body=HoldRequest,
        body_required=True,
        rate_limited=True,
        status=201,
        run=spending.held,
        present=presenters.hold_moved,
    ),
    _route(
        "/v1/holds/{hold_id}/capture",
        max_length=64,
        body=CaptureRequest,
        body_required=False,
        rate_limited=False,
        status=200,
        run=spending.captured,
        present=presenters.hold_moved,
    ),
    _route(
        "/v1/holds/{hold_id}/release",
        max_length=64,
        body=None,
        body_required=False,
        rate_limited=False,
        status=200,
        run=spending.released,
        present=presenters.hold_moved,
    ),
)
WEBHOOK = "/webhooks/stripe"
_HANDED_ON = object()
"""A request the lean route does not answer: FastAPI does."""


@dataclass(frozen=True, slots=True)
class _Template:
    """What ``Observability`` reads of the route that answered (Starlette's router puts the
    route there): its template, the label of the request's metrics and access line."""

    path: str


@dataclass(slots=True)
class LeanStats:
    """How many requests the lean routes answered, and how many they handed to FastAPI."""

    answered: int = 0
    handed_on: int = 0


class LeanRoutes:
    """ASGI middleware: answers the hot routes' well-formed requests, hands on everything else."""

    def __init__(self, app: ASGIApp, stats: LeanStats | None = None) -> None:
        self.app = app
        self.stats = stats or LeanStats()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == WEBHOOK:
            await self._webhook(scope, receive, send)
            return
        for route in ROUTES:
            found = route.pattern.fullmatch(path)
            if found is not None:
                await self._ledger(route, found.group(1), scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = _Template(WEBHOOK)
        services: Services = scope["app"].state.services
        headers = _headers(scope)
        try:
            declared = headers.get(b"content-length", b"")
            if declared.isdigit() and int(declared) > webhooks.MAX_BODY:
                raise errors.PayloadTooLarge(f"The body is larger than {webhooks.MAX_BODY} bytes.")
            raw = await _body(receive, webhooks.MAX_BODY)
            signature = headers.get(b"stripe-signature")
            receipt = await services.inbox.receive_webhook_async(
                raw, signature.decode("latin-1") if signature is not None else None
            )
        except errors.BillfoldError as exc:
            self.stats.answered += 1
            await response_for(exc)(scope, receive, send)
            return
        self.stats.answered += 1
        await JSONResponse(webhooks.answer(receipt))(scope, receive, send)

    async def _ledger(
        self, route: _Route, param: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body = await _body(receive, None)
        outcome = self._read(route, param, scope, body)
        if outcome is _HANDED_ON:
            self.stats.handed_on += 1
            await self.app(scope, _replay(body, receive), send)
            return
        principal, model, key = outcome
        scope["route"] = _Template(route.template)
        app = scope["app"]
        try:
            if route.rate_limited:
                limits: RateLimits = app.state.rate_limits
                limits.spend.hit(principal.credential_id)
            done = await route.run(app.state.services, principal, param, model, key)
        except errors.BillfoldError as exc:
            self.stats.answered += 1
            await response_for(exc)(scope, receive, send)
            return
        self.stats.answered += 1
        content = route.present(done).model_dump_json(by_alias=True).encode()
        headers = idempotency_headers(key, replayed=done.replayed)
        answer = Response(content, route.status, headers, media_type="application/json")
        await answer(scope, receive, send)

    def _read(self, route: _Route, param: str, scope: Scope, body: bytes) -> Any:
        """``(principal, body model, idempotency key)`` when the request is well formed in every
        way the FastAPI route checks, else ``_HANDED_ON``. Changes nothing."""
        if len(param) > route.max_length:
            return _HANDED_ON
        headers = _headers(scope)
        content_type = headers.get(b"content-type")
        raw_key = headers.get(b"idempotency-key")
        key = raw_key.decode("latin-1") if raw_key is not None else None
        if key is not None and not 1 <= len(key) <= 255:
            return _HANDED_ON
        model: BaseModel | None = None
        if body:
            # FastAPI reads a body as JSON only when its content type says so (strictly: none
            # given is not JSON), and then validates the document against the route's model.
            if content_type is None or route.body is None:
                return _HANDED_ON
            if content_type.split(b";")[0].strip().lower() != b"application/json":
                return _HANDED_ON
            try:
                document = json.loads(body)
            except ValueError:
                return _HANDED_ON
            if not isinstance(document, dict):
                return _HANDED_ON
            try:
                model = route.body.model_validate(document)
            except ValidationError:
                return _HANDED_ON
        elif route.body_required:
            return _HANDED_ON
        authenticator: Authenticator = scope["app"].state.authenticator
        raw_authorization = headers.get(b"authorization")
        authorization = raw_authorization.decode("latin-1") if raw_authorization else None
        if authenticator.may_fetch_keys and (authorization or "").count(".") == 2:
            return _HANDED_ON  # a user token whose key may need the network: FastAPI's thread
        try:
            principal = authenticator.authenticate_header(authorization)
        except errors.Unauthenticated:
            return _HANDED_ON
        if principal.kind != "server":
            return _HANDED_ON
        return principal, model, key


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by (lower-case) name, the first of each as Starlette reads them."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)
    return found


async def _body(receive: Receive, limit: int | None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise errors.PayloadTooLarge(f"The body is larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for a request whose body was already read: the body again, then the client's
    messages (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed

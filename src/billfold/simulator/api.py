"""The simulated ``/v1`` API: authentication, routing, form parsing, idempotency, versions, errors.

Requests arrive exactly as the official SDK sends them (form-encoded bodies, query strings for GET
and DELETE, ``Authorization: Bearer sk_test_...``, an ``Idempotency-Key`` on every POST, a
``Stripe-Version`` header). Routing is a small table of (method, path pattern, handler) so that an
unknown path *or method* answers Stripe's "Unrecognized request URL" 404, as Stripe does, instead
of a framework's 405. Every answer is rendered in the request's ``Stripe-Version`` (else the
configured ``api_version``): see ``versions``. Each request is one burst (``Simulator.burst``).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from billfold.simulator import (
    catalog,
    checkout,
    clocks,
    errors,
    forms,
    invoices,
    objects,
    payment_methods,
    portal,
    refunds,
    subscriptions,
    versions,
)
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import Origin, Simulator, by_created, created_filter

NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


@dataclass(frozen=True, slots=True)
class Call:
    """One API request, as a handler sees it."""

    sim: Simulator
    params: Params
    path: dict[str, str]
    origin: Origin
    base_url: str

    @property
    def id(self) -> str:
        return self.path["id"]


Handler = Callable[[Call], Obj]


def _retrieve(kind: str) -> Handler:
    def handler(call: Call) -> Obj:
        call.params.reject_unknown(["expand"])
        return call.sim.get(kind, call.id)

    return handler


# -- handlers ------------------------------------------------------------------------------------


def create_session(call: Call) -> Obj:
    return checkout.create_session(
        call.sim, call.params, base_url=call.base_url, origin=call.origin
    )


def retrieve_session(call: Call) -> Obj:
    call.params.reject_unknown(["expand"])
    return checkout.get_session(call.sim, call.id)


def session_line_items(call: Call) -> Obj:
    return checkout.line_items_page(call.sim, call.id, call.params)


def expire_session(call: Call) -> Obj:
    call.params.reject_unknown(["expand"])
    checkout.get_session(call.sim, call.id)
    return checkout.expire(call.sim, call.id, origin=call.origin)


def list_sessions(call: Call) -> Obj:
    return checkout.list_sessions(call.sim, call.params)


def create_price(call: Call) -> Obj:
    return catalog.create_price(call.sim, call.params, origin=call.origin)


def list_prices(call: Call) -> Obj:
    return catalog.list_prices(call.sim, call.params)


def create_product(call: Call) -> Obj:
    return catalog.create_product(call.sim, call.params, origin=call.origin)


def create_customer(call: Call) -> Obj:
    return catalog.create_customer(call.sim, call.params, origin=call.origin)


def update_customer(call: Call) -> Obj:
    return catalog.update_customer(call.sim, call.id, call.params, origin=call.origin)


def list_customers(call: Call) -> Obj:
    return catalog.list_customers(call.sim, call.params)


def _list_by(kind: str, url: str, fields: tuple[str, ...]) -> Handler:
    """A list of ``kind`` filtered by equality on ``fields`` and by ``created``."""

    def handler(call: Call) -> Obj:
        params = call.params
        params.reject_unknown(
            ["created", "ending_before", "expand", "limit", "starting_after", *fields]
        )
        wanted = {field: params.text(field) for field in fields}
        created = created_filter(params)

        def keep(obj: Obj) -> bool:
            return created(obj) and all(
                value is None or obj[field] == value for field, value in wanted.items()
            )

        return call.sim.page(call.sim.newest_first(kind), params, url, keep=keep, cursor_kind=kind)

    return handler


def create_refund(call: Call) -> Obj:
    return refunds.create_refund(call.sim, call.params, origin=call.origin)


def _with_id(
    action: Callable[[Simulator, str, Params], Obj],
) -> Handler:
    def handler(call: Call) -> Obj:
        return action(call.sim, call.id, call.params)

    return handler


def _acting(action: Callable[..., Obj]) -> Handler:
    """A handler for ``action(sim, params, origin=...)``."""

    def handler(call: Call) -> Obj:
        return action(call.sim, call.params, origin=call.origin)

    return handler


def _acting_on(action: Callable[..., Obj]) -> Handler:
    """A handler for ``action(sim, id, params, origin=...)``."""

    def handler(call: Call) -> Obj:
        return action(call.sim, call.id, call.params, origin=call.origin)

    return handler


def _listing(action: Callable[[Simulator, Params], Obj]) -> Handler:
    def handler(call: Call) -> Obj:
        return action(call.sim, call.params)

    return handler


def create_portal_session(call: Call) -> Obj:
    return portal.create_session(call.sim, call.params, base_url=call.base_url, origin=call.origin)


def attach_payment_method(call: Call) -> Obj:
    return payment_methods.attach_route(call.sim, call.id, call.params, origin=call.origin)


def customer_payment_methods(call: Call) -> Obj:
    return payment_methods.list_for_customer(
        call.sim, call.id, call.params, f"/v1/customers/{call.id}/payment_methods"
    )


def list_payment_methods(call: Call) -> Obj:
    customer = call.params.text("customer")
    if customer is None:
        raise errors.unsupported("listing payment methods without a customer", param="customer")
    return payment_methods.list_for_customer(call.sim, customer, call.params, "/v1/payment_methods")


def detach_payment_method(call: Call) -> Obj:
    call.params.reject_unknown(["expand"])
    return payment_methods.detach(call.sim, call.id, origin=call.origin)


def invoice_lines(call: Call) -> Obj:
    return invoices.lines_page(call.sim, call.id, call.params)


def retrieve_event(call: Call) -> Obj:
    call.params.reject_unknown(["expand"])
    event = call.sim.state.events.get(call.id)
    if event is None:
        raise errors.resource_missing("event", call.id)
    return call.sim.event_view(event)


def list_events(call: Call) -> Obj:
    params = call.params
    params.reject_unknown(
        [
            "created",
            "delivery_success",
            "ending_before",
            "expand",
            "limit",
            "starting_after",
            "type",
            "types",
        ]
    )
    single = params.text("type")
    many = params.strings("types")
    if single is not None and many:
        raise errors.invalid(
            "You may only specify one of these parameters: type, types.", param="types"
        )
    if len(many) > 20:
        raise errors.invalid("You may pass at most 20 types.", param="types")
    patterns = [single] if single is not None else many
    delivered = params.boolean("delivery_success")
    created = created_filter(params)
    deliverer = call.sim.deliverer

    exact = {p for p in patterns if not any(c in p for c in "*?[")}
    wild = [p for p in patterns if p not in exact]

    def keep(event: Obj) -> bool:
        kind = event["type"]
        return (
            (not patterns or kind in exact or any(fnmatch.fnmatchcase(kind, p) for p in wild))
            and created(event)
            and (delivered is None or deliverer.succeeded(event["id"]) == delivered)
        )

    events = by_created(call.sim.state.events.values())
    page = call.sim.page(events, params, "/v1/events", keep=keep, cursor_kind="event")
    for event in page["data"]:
        event["pending_webhooks"] = deliverer.pending_count(event["id"])
    return page


_ID = r"(?P<id>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, re.compile(f"^/v1/{pattern}$"), handler)
    for method, pattern, handler in [
        ("POST", "checkout/sessions", create_session),
        ("GET", "checkout/sessions", list_sessions),
        ("GET", f"checkout/sessions/{_ID}", retrieve_session),
        ("GET", f"checkout/sessions/{_ID}/line_items", session_line_items),
        ("POST", f"checkout/sessions/{_ID}/expire", expire_session),
        ("POST", "prices", create_price),
        ("GET", "prices", list_prices),
        ("GET", f"prices/{_ID}", _retrieve("price")),
        ("POST", "products", create_product),
        ("GET", "products", _listing(catalog.list_products)),
        ("GET", f"products/{_ID}", _retrieve("product")),
        ("POST", "customers", create_customer),
        ("GET", "customers", list_customers),
        ("GET", f"customers/{_ID}", _retrieve("customer")),
        ("POST", f"customers/{_ID}", update_customer),
        ("GET", f"customers/{_ID}/payment_methods", customer_payment_methods),
        ("GET", "payment_methods", list_payment_methods),
        ("GET", f"payment_methods/{_ID}", _with_id(payment_methods.retrieve)),
        ("POST", f"payment_methods/{_ID}", _acting_on(payment_methods.update)),
        ("POST", f"payment_methods/{_ID}/attach", attach_payment_method),
        ("POST", f"payment_methods/{_ID}/detach", detach_payment_method),
        (
            "GET",
            "payment_intents",
            _list_by("payment_intent", "/v1/payment_intents", ("customer",)),
        ),
        ("GET", f"payment_intents/{_ID}", _retrieve("payment_intent")),
        ("GET", "charges", _list_by("charge", "/v1/charges", ("customer", "payment_intent"))),
        ("GET", f"charges/{_ID}", _retrieve("charge")),
        ("POST", "refunds", create_refund),
        ("GET", "refunds", _list_by("refund", "/v1/refunds", ("charge", "payment_intent"))),
        ("GET", f"refunds/{_ID}", _retrieve("refund")),
        ("POST", f"refunds/{_ID}", _acting_on(refunds.update)),
        ("GET", "disputes", _list_by("dispute", "/v1/disputes", ("charge", "payment_intent"))),
        ("GET", f"disputes/{_ID}", _retrieve("dispute")),
        ("POST", "subscriptions", _acting(subscriptions.create)),
        ("GET", "subscriptions", _listing(subscriptions.list_subscriptions)),
        ("GET", f"subscriptions/{_ID}", _retrieve("subscription")),
        ("POST", f"subscriptions/{_ID}", _acting_on(subscriptions.update)),
        ("DELETE", f"subscriptions/{_ID}", _acting_on(subscriptions.cancel)),
        ("POST", f"subscriptions/{_ID}/pause", _acting_on(subscriptions.pause)),
        ("POST", f"subscriptions/{_ID}/resume", _acting_on(subscriptions.resume)),
        ("POST", "invoices", _acting(invoices.create_invoice)),
        ("GET", "invoices", _listing(invoices.list_invoices)),
        ("GET", f"invoices/{_ID}", _retrieve("invoice")),
        ("POST", f"invoices/{_ID}", _acting_on(invoices.update_invoice)),
        ("DELETE", f"invoices/{_ID}", _acting_on(invoices.delete_draft)),
        ("GET", f"invoices/{_ID}/lines", invoice_lines),
        ("POST", f"invoices/{_ID}/finalize", _acting_on(invoices.finalize_route)),
        ("POST", f"invoices/{_ID}/pay", _acting_on(subscriptions.pay_invoice)),
        ("POST", f"invoices/{_ID}/void", _acting_on(invoices.void_route)),
        (
            "POST",
            f"invoices/{_ID}/mark_uncollectible",
            _acting_on(invoices.uncollectible_route),
        ),
        ("POST", "invoiceitems", _acting(invoices.create_item)),
        ("GET", "invoiceitems", _listing(invoices.list_items)),
        ("GET", f"invoiceitems/{_ID}", _retrieve("invoiceitem")),
        ("DELETE", f"invoiceitems/{_ID}", _acting_on(invoices.delete_item)),
        ("GET", "invoice_payments", _listing(invoices.list_payments)),
        ("GET", f"invoice_payments/{_ID}", _retrieve("invoice_payment")),
        ("POST", "test_helpers/test_clocks", _acting(clocks.create)),
        ("GET", "test_helpers/test_clocks", _listing(clocks.list_clocks)),
        ("GET", f"test_helpers/test_clocks/{_ID}", _retrieve("test_helpers.test_clock")),
        ("DELETE", f"test_helpers/test_clocks/{_ID}", _acting_on(clocks.delete)),
        ("POST", f"test_helpers/test_clocks/{_ID}/advance", _acting_on(clocks.advance)),
        ("POST", "billing_portal/sessions", create_portal_session),
        ("GET", "events", list_events),
        ("GET", f"events/{_ID}", retrieve_event),
    ]
]


# -- the endpoint --------------------------------------------------------------------------------


def base_url(request: Request, configured: str | None) -> str:
    """The simulator's address as callers see it, mount prefix included."""
    if configured:
        return configured.rstrip("/")
    root = request.scope.get("root_path", "")
    return str(request.url.replace(path=root, query="", fragment="")).rstrip("/")


def _redact(key: str) -> str:
    return key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "****"


class Api:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if not header:
            raise errors.authentication(NO_KEY)
        scheme, _, value = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value.strip()).decode().split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key:
            raise errors.authentication(NO_KEY)
        if not self.sim.config.accepts_key(key):
            raise errors.authentication(f"Invalid API Key provided: {_redact(key)}")
        return key

    async def handle(self, request: Request) -> Response:
        request_id = objects.new_id("req_", 14)
        try:
            with self.sim.burst():
                return await self._handle(request, request_id)
        except errors.ApiError as exc:
            self.sim.save()  # a refused payment is still an attempt that happened
            return _json(exc.body(request_id), request_id, status=exc.status)

    async def unknown(self, request: Request) -> Response:
        """Anything outside ``/v1``: Stripe's 404 for an unrecognized URL."""
        request_id = objects.new_id("req_", 14)
        error = errors.unrecognized_url(request.method, request.url.path)
        return _json(error.body(request_id), request_id, status=error.status)

    async def _handle(self, request: Request, request_id: str) -> Response:
        key = self._authenticate(request)
        version = request.headers.get("stripe-version") or self.sim.config.api_version
        if not versions.valid(version):
            raise errors.invalid(f"Invalid Stripe API version: {version}")
        method = request.method
        path = "/v1/" + request.path_params["path"]
        handler, groups = _match(method, path)
        body = await request.body()
        text = body.decode("utf-8", errors="replace") if method == "POST" else request.url.query
        params = Params(forms.parse(parse_qsl(text, keep_blank_values=True)))
        idempotency_key = request.headers.get("idempotency-key") if method == "POST" else None
        replay = self._replay(key, idempotency_key, method, path, text, request_id, version)
        if replay is not None:
            return replay
        call = Call(
            sim=self.sim,
            params=params,
            path=groups,
            origin=Origin(request_id, idempotency_key),
            base_url=base_url(request, self.sim.config.public_base_url),
        )
        result = self.sim.expand(handler(call), params.strings("expand"))
        if idempotency_key:
            self.sim.state.idempotency[f"{key}:{idempotency_key}"] = {
                "fingerprint": _fingerprint(method, path, text),
                "body": result,
                "created": self.sim.now(),
            }
        self.sim.save()
        return _json(versions.render(result, version, self.sim), request_id)

    def _replay(
        self,
        key: str,
        idempotency_key: str | None,
        method: str,
        path: str,
        text: str,
        request_id: str,
        version: str,
    ) -> Response | None:
        if not idempotency_key:
            return None
        stored = self.sim.state.idempotency.get(f"{key}:{idempotency_key}")
        if stored is None:
            return None
        if stored["fingerprint"] != _fingerprint(method, path, text):
            raise errors.ApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{idempotency_key}' if you "
                "meant to execute a different request.",
                type_="idempotency_error",
            )
        response = _json(versions.render(stored["body"], version, self.sim), request_id)
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Original-Request"] = request_id
        return response


def _match(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    for route_method, pattern, handler in ROUTES:
        found = pattern.match(path)
        if found and route_method == method:
            return handler, found.groupdict()
    raise errors.unrecognized_url(method, path)


def _fingerprint(method: str, path: str, text: str) -> str:
    return hashlib.sha256(f"{method} {path}?{text}".encode()).hexdigest()


def _json(body: Any, request_id: str, *, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Request-Id": request_id})

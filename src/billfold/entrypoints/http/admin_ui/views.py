"""The admin view: what an operator looks at, over billfold's admin API.

    GET  /                        -> the dashboard
    GET  /dashboard?days=7        backlog, needs attention, latency; charts of webhooks, purchases,
                                  credits and revenue (server-side SVG)
    GET  /events                  the inbox: status, attempts, last error; Retry for failed/dead;
                                  filtered by status, type and Stripe's time (from, to: UTC)
    GET  /events/{id}             one event: its payload as received, its attempts
    GET  /events/{id}/payload     the payload as received, to download
    POST /events/{id}/retry       process it again now
    GET  /orders                  orders (needing attention first), each with a Resolve form
    POST /orders/{id}/resolve     fulfil it, naming the account and the package
    GET  /attention               what needs a person: orders and invoices billfold could not
                                  resolve, failed and dead events; resolve / retry / replay, each
                                  with a required reason; and what operators did lately
    POST /events/{id}/replay      process any event again (a reason is required)
    GET  /subscriptions           billfold's copies of Stripe's subscriptions (status filter);
                                  those whose price no plan sells are marked for a look
    GET  /accounts?q=             search by account id (prefix), e-mail or Stripe customer: one
                                  match shows it, several are listed
    GET  /accounts?id=            balances (alert state), lots with provenance, holds, history
                                  (``after=`` pages), plan and entitlements, subscriptions,
                                  notifications sent; manual grant and adjustment forms
    POST /accounts/{id}/grants    a manual grant; the reason is required
    POST /accounts/{id}/adjustments  take value away; the reason is required
    GET, POST /login; POST /logout

Every page needs the session cookie that ``/login`` sets for the admin token; the token itself
never appears in a page, a URL or a log line. The name given at sign-in is recorded, with the reason
given, on every action taken in the session (``GET /v1/operator-actions``). The pages call the API
with the admin token, so they can do exactly what the admin API allows, with the same checks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from billfold.domain import money
from billfold.entrypoints.http.admin_ui import account_page, dashboard_page
from billfold.entrypoints.http.client import ApiClient, ApiError
from billfold.service.admin_sessions import AdminSessions

log = logging.getLogger("billfold.admin_ui")

STATIC = Path(__file__).parent / "static"
COOKIE = "billfold_admin"
PAGE_SIZE = 25
EVENT_STATUSES = ("received", "processed", "ignored", "failed", "dead")
ORDER_STATUSES = ("needs_attention", "pending", "fulfilled", "failed", "expired", "refunded")
RETRYABLE = ("failed", "dead")
SUBSCRIPTION_STATUSES = (
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "paused",
    "incomplete",
    "canceled",
    "incomplete_expired",
)
DONE = {
    "retried": "Event processed again: its new status is below.",
    "replayed": "Event replayed: its status is below.",
    "resolved": "Order resolved.",
    "granted": "Grant recorded.",
    "adjusted": "Adjustment recorded.",
    "signed_out": "Signed out.",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminConfig:
    api_base_url: str
    admin_token: str | None
    sessions: AdminSessions
    api_transport: httpx.AsyncBaseTransport | None = None
    links: tuple[tuple[str, str], ...] = ()


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("billfold.entrypoints.http.admin_ui", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    env.filters["when"] = _when
    return env


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "—"
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


class AdminView:
    def __init__(self, config: AdminConfig) -> None:
        self.config = config
        self.api = ApiClient(config.api_base_url, transport=config.api_transport)
        self.sessions = config.sessions if config.sessions.configured else None

    async def aclose(self) -> None:
        await self.api.aclose()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/dashboard", self.dashboard, methods=["GET"]),
            Route("/events", self.events, methods=["GET"]),
            Route("/events/{event_id}", self.event, methods=["GET"]),
            Route("/events/{event_id}/payload", self.event_payload, methods=["GET"]),
            Route("/events/{event_id}/retry", self.retry, methods=["POST"]),
            Route("/events/{event_id}/replay", self.replay, methods=["POST"]),
            Route("/attention", self.attention, methods=["GET"]),
            Route("/orders", self.orders, methods=["GET"]),
            Route("/orders/{order_id}/resolve", self.resolve, methods=["POST"]),
            Route("/subscriptions", self.subscriptions, methods=["GET"]),
            Route("/accounts", self.accounts, methods=["GET"]),
            Route("/accounts/{account_id}/grants", self.grant, methods=["POST"]),
            Route("/accounts/{account_id}/adjustments", self.adjust, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=STATIC)),
        ]

    # --- login -------------------------------------------------------------------------------

    def _cookie(self, request: Request) -> str | None:
        cookie = request.cookies.get(COOKIE)
        if self.sessions is not None and self.sessions.valid(cookie):
            return cookie
        return None

    def _forbidden(self, request: Request) -> Response:
        """A form post whose CSRF token does not match its session: 403, and nothing done."""
        log.warning("admin view: a form post without a valid CSRF token")
        context = {"section": None, "error": "This form has expired or was not sent from here."}
        return self._render(
            request, "failure.html", context, cookie=self._cookie(request), status=403
        )

    def _to_login(self, request: Request) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(
            f"{_root(request)}/login?{urlencode({'next': target})}", status_code=303
        )

    async def login_form(self, request: Request) -> Response:
        if self._cookie(request):
            return RedirectResponse(f"{_root(request)}/", status_code=303)
        done = DONE.get(request.query_params.get("done", ""))
        return self._login_page(request, notice=done)

    def _login_page(
        self,
        request: Request,
        *,
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Response:
        context = {
            "error": error,
            "notice": notice,
            "next": _safe_next(request, request.query_params.get("next")),
            "configured": self.sessions is not None,
        }
        return self._render(request, "login.html", context, cookie=None, status=status)

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if self.sessions is None:
            return self._login_page(request, status=503)
        candidate = str(form.get("token") or "")
        if not candidate or not self.sessions.token_matches(candidate):
            log.warning("admin view: a sign-in with a wrong token")
            return self._login_page(request, error="That is not the admin token.", status=401)
        target = _safe_next(request, str(form.get("next") or "")) or f"{_root(request)}/"
        response = RedirectResponse(target, status_code=303)
        operator = str(form.get("operator") or "").strip()[:200] or None
        response.set_cookie(
            COOKIE,
            self.sessions.open(operator),
            max_age=self.sessions.lifetime_seconds,
            path=f"{_root(request)}/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        cookie, _ = await self._checked_form(request)
        if cookie is None:
            return self._forbidden(request) if self._cookie(request) else self._to_login(request)
        if self.sessions is not None:
            self.sessions.close(cookie)
        response = RedirectResponse(f"{_root(request)}/login?done=signed_out", status_code=303)
        response.delete_cookie(COOKIE, path=f"{_root(request)}/")
        return response

    async def _checked_form(self, request: Request) -> tuple[str | None, Mapping[str, Any]]:
        """The session cookie of a POST whose CSRF token matches, and its form; None when not
        (the caller answers 403 to a signed-in user, and sends anyone else to the login page)."""
        cookie = self._cookie(request)
        form = await request.form()
        if cookie is None or self.sessions is None:
            return None, form
        if not self.sessions.csrf_matches(cookie, str(form.get("csrf") or "")):
            return None, form
        return cookie, form

    # --- pages -------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        if not self._cookie(request):
            return self._to_login(request)
        return await self.dashboard(request)

    async def dashboard(self, request: Request) -> Response:
        cookie = self._cookie(request)
        if cookie is None:
            return self._to_login(request)
        days = dashboard_page.days_of(request.query_params.get("days"))
        try:
            body = await self._admin("GET", "/v1/dashboard", params={"days": days})
        except ApiError as exc:
            return self._failure(request, cookie, exc)
        context = {"section": "dashboard", **dashboard_page.context(body)}
        return self._render(request, "dashboard.html", context, cookie=cookie)

    async def events(
        self, request: Request, *, error: str | None = None, status: int = 200
    ) -> Response:
        cookie = self._cookie(request)
        if cookie is None:
            return self._to_login(request)
        query = request.query_params
        wanted = query.get("status") if query.get("status") in EVENT_STATUSES else None
        type_ = (query.get("type") or "").strip()[:128] or None
        params: dict[str, str | int] = {"limit": PAGE_SIZE}
        if wanted:
            params["status"] = wanted
        if type_:
            params["type"] = type_
        span, span_error = _time_span(query.get("from"), query.get("to"))
        params.update(span.api)
        after = query.get("starting_after")
        if after:
            params["starting_after"] = after[:255]
        try:
            page, counts = await asyncio.gather(
                self._admin("GET", "/v1/events", params=params), self._event_counts()
            )
        except ApiError as exc:
            return self._failure(request, cookie, exc)
        rows = page["data"]
        next_params = {k: v for k, v in params.items() if k in ("status", "type")} | span.form
        if rows and page["has_more"]:
            next_params["starting_after"] = rows[-1]["id"]
        context = {
            "section": "events",
            "events": rows,
            "retryable": RETRYABLE,
            "statuses": EVENT_STATUSES,
            "status": wanted,
            "type": type_ or "",
            "counts": counts,
            "older": urlencode(next_params) if page["has_more"] else None,
            "paged": bool(after),
            "span": span,
            "quick": _quick_spans(int(time.time()), wanted, type_),
            "error": error or span_error,
            "notice": self._done(request),
        }
        return self._render(request, "events.html", context, cookie=cookie, status=status)

    async def _event_counts(self) -> dict[str, str]:
        """How many events are in each status: the first page's worth, ``25+`` beyond."""

        async def count(status: str) -> str:
            page = await self._admin(
                "GET", "/v1/events", params={"status": status, "limit": PAGE_SIZE}
            )
            return f"{len(page['data'])}{'+' if page['has_more'] else ''}"

        found = await asyncio.gather(*(count(s) for s in ("received", "failed", "dead")))
        return dict(zip(("received", "failed", "dead"), found, strict=True))

    async def event(self, request: Request) -> Response:
        cookie = self._cookie(request)
        if cookie is None:
            return self._to_login(request)
        path = f"/v1/events/{quote(request.path_params['event_id'], safe='')}"
        try:
            record, raw = await asyncio.gather(
                self._admin("GET", path),
                self.api.raw(f"{path}/payload", token=self.config.admin_token),
            )
        except ApiError as exc:
            return self._failure(request, cookie, exc)
        context = {
            "section": "events",
            "event": record,
            "payload": raw.decode("utf-8", errors="replace"),  # verbatim: never re-serialised
            "retryable": RETRYABLE,
            "notice": self._done(request),
        }
        return self._render(request, "event.html", context, cookie=cookie)

    async def event_payload(self, request: Request) -> Response:
        """The event's body as received, to download."""
        if self._cookie(request) is None:
            return self._to_login(request)
        event_id = request.path_params["event_id"]
        try:
            raw = await self.api.raw(
                f"/v1/events/{quote(event_id, safe='')}/payload", token=self.config.admin_token
            )
        except ApiError as exc:
            return Response(exc.message, status_code=exc.status, media_type="text/plain")
        name = "".join(c for c in event_id if c.isalnum() or c in "_-")[:100] or "event"
        disposition = f'attachment; filename="{name}.json"'
        headers = HEADERS | {"Content-Disposition": disposition}
        return Response(raw, media_type="application/json", headers=headers)

    async def retry(self, request: Request) -> Response:
        return await self._event_action(request, "retry", "retried")

    async def replay(self, request: Request) -> Response:
        return await self._event_action(request, "replay", "replayed")

    async def _event_action(self, request: Request, action: str, done: str) -> Response:
        cookie, form = await self._checked_form(request)
        if cookie is None:
            return self._forbidden(request) if self._cookie(request) else self._to_login(request)
        event_id = request.path_params["event_id"]
        back = _safe_next(request, str(form.get("back") or "")) or f"{_root(request)}/events"
        note = self._note(cookie, form)
        if (action == "replay" or form.get("need_reason")) and not note["reason"]:
            return await self._back_with_error(
                request, back, "A reason is required: it is recorded with the action."
            )
        try:
            await self._admin("POST", f"/v1/events/{quote(event_id, safe='')}/{action}", json=note)
        except ApiError as exc:
            return await self._back_with_error(
                request, back, f"{action.capitalize()} failed: {exc.message}"
            )
        return RedirectResponse(_with_done(back, done), status_code=303)

    async def _back_with_error(self, request: Request, back: str, error: str) -> Response:
        """The page a failed action came from, with why it failed (400)."""
        if back.partition("?")[0].endswith("/attention"):
            return await self.attention(request, error=error, status=400)
        return await self.events(request, error=error, status=400)

    def _note(self, cookie: str, form: Mapping[str, Any]) -> dict[str, str | None]:
        """Who acts (the name given at sign-in) and why (the form's reason)."""
        operator = self.sessions.operator(cookie) if self.sessions else None
        reason = str(form.get("reason") or "").strip()[:500]
        return {"operator": operator or "console", "reason": reason or None}

    async def attention(
        self, request: Request, *, error: str | None = None, status: int = 200
    ) -> Response:
        cookie = self._cookie(request)
        if cookie is None:
            return self._to_login(request)
        try:
            queue, actions, catalog = await asyncio.gather(
                self._admin("GET", "/v1/attention"),
                self._admin("GET", "/v1/operator-actions", params={"limit": 15}),
                self.api.request("GET", "/v1/catalog", token=None),
            )
        except ApiError as exc:
            return self._failure(request, cookie, exc)
        context = {
            "section": "attention",
            "queue": queue,
            "orders": [_order_row(o) for o in queue["orders"]],
            "actions": actions["data"],
            "packages": catalog["packages"],
            "error": error,
            "notice": self._done(request),
        }
        return self._render(request, "attention.html", context, cookie=cookie, status=status)

    async def orders(
        self,
        request: Request,
        *,
        error: str | None = None,
        error_order: str | None = None,
        status: int = 200,
    ) -> Response:
        cookie = self._cookie(request)
        if cookie is None:
            return self._to_login(request)
        query = request.query_params
        wanted = query.get("status", "needs_attention")
        if wanted not in ORDER_STATUSES and wanted != "all":
            wanted = "needs_attention"
        params: dict[str, str | int] = {"limit": PAGE_SIZE}
        if wanted != "all":
            params["status"] = wanted
        account = (query.get("account_id") or "").strip()[:200]
        if account:
            params["account_id"] = account
        try:
            page, catalog = await asyncio.gather(
                self._admin("GET", "/v1/orders", params=params),
                self.api.request("GET", "/v1/catalog", token=None),
            )
        except ApiError as exc:
            return self._failure(request, cookie, exc)
        context = {
            "section": "orders",
            "orders": [_order_row(o) for o in page["data"]],
            "has_more": page["has_more"],
            "statuses": ORDER_STATUSES,
            "status": wanted,
            "account_id": account,
            "packages": catalog["packages"],
            "error": error,
            "error_order": error_order,
            "notice": self._done(request),
        }
        return self._render(request, "orders.html", context, cookie=cookie, status=status)

    async def resolve(self, request: Request) -> Response:
        cookie, form = await self._checked_form(request)
        if cookie is None:
            return self._forbidden(request) if self._cookie(request) else self._to_login(request)
        order_id = request.path_params["order_id"]
        body: dict[str, str | None] = self._note(cookie, form)
        for name in ("account_id", "package"):
            value = str(form.get(name) or "").strip()
            if value:
                body[name] = value
        back = _safe_next(request, str(form.get("back") or ""))
        if form.get("need_reason") and not body["reason"]:
            error = "A reason is required: it is recorded with the action."
            return await self._back_with_error(request, back or "", error)
        try:
            await self._admin("POST", f"/v1/orders/{quote(order_id, safe='')}/resolve", json=body)
        except ApiError as exc:
            if back:
                return await self._back_with_error(
                    request, back, f"Could not resolve: {exc.message}"
                )
            return await self.orders(
                request,
                error=f"Could not resolve: {exc.message}",
                error_order=order_id,
                status=400 if exc.status < 500 else exc.status,
            )
        target = back or f"{_root(request)}/orders?status=all"
        return RedirectResponse(_with_done(target, "resolved"), status_code=303)

    async def subscriptions(self, request: Request) -> Response:
        cookie = self._cookie(request)
        if cookie is None:
            return self._to_login(request)
        query = request.query_params
        wanted = query.get("status") if query.get("status") in SUBSCRIPTION_STATUSES else None
        params: dict[str, str | int] = {"limit": PAGE_SIZE}
        if wanted:
            params["status"] = wanted
        after = query.get("starting_after")
        if after:
            params["starting_after"] = after[:255]
        try:
            page, catalog = await asyncio.gather(
                self._admin("GET", "/v1/subscriptions", params=params),
                self.api.request("GET", "/v1/catalog", token=None),
            )
        except ApiError as exc:
            return self._failure(request, cookie, exc)
        titles = {p["id"]: p.get("title") or p["id"] for p in catalog["plans"]}
        rows = [_subscription_row(x, titles) for x in page["data"]]
        next_params = {k: v for k, v in params.items() if k != "limit"}
        if rows and page["has_more"]:
            next_params["starting_after"] = rows[-1]["id"]
        context = {
            "section": "subscriptions",
            "subscriptions": rows,
            "statuses": SUBSCRIPTION_STATUSES,
            "status": wanted,
            "planless": sum(1 for r in rows if r["plan"] is None),
            "older": urlencode(next_params) if page["has_more"] else None,
            "paged": bool(after),
        }
        return self._render(request, "subscriptions.html", context, cookie=cookie)

    async def accounts(
        self,
        request: Request,
        *,
        error: str | None = None,
        form_values: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        cookie = self._cookie(request)
        if cookie is None:
            return self._to_login(request)
        query = request.query_params
        account_id = (request.path_params.get("account_id") or query.get("id") or "").strip()[:200]
        search = "" if account_id else (query.get("q") or "").strip()[:320]
        context: dict[str, Any] = {
            "section": "accounts",
            "account_id": account_id,
            "search": search or account_id,
            "matches": None,
            "account": None,
            "missing": False,
            "error": error,
            "notice": self._done(request),
            "form": dict(form_values or {}),
            "grant_nonce": secrets.token_urlsafe(16),
            "adjust_nonce": secrets.token_urlsafe(16),
        }
        try:
            catalog = await self.api.request("GET", "/v1/catalog", token=None)
            found = (
                await self._admin("GET", "/v1/accounts", params={"query": search, "limit": 50})
                if search
                else None
            )
        except ApiError as exc:
            return self._failure(request, cookie, exc)
        decimals = {u["name"]: int(u["decimals"]) for u in catalog["units"]}
        show = account_page.Shown(decimals)
        context["units"] = list(decimals)
        if found is not None and len(found["data"]) == 1:
            only = urlencode({"id": found["data"][0]["id"]})
            return RedirectResponse(f"{_root(request)}/accounts?{only}", status_code=303)
        if found is not None:
            context["matches"] = [account_page.match(a, show) for a in found["data"]]
            context["more_matches"] = found["has_more"]
        if account_id:
            after = query.get("after") or None
            try:
                got = await account_page.load(self._admin, account_id, list(decimals), after=after)
            except ApiError as exc:
                if exc.status != 404:
                    return self._failure(request, cookie, exc)
                context["missing"] = True
            else:
                account = got["account"]
                history = got["transactions"]
                context["account"] = {
                    **account,
                    "balances": account_page.balances(account, show),
                    "lots": account_page.lots(got["explanations"], show),
                    "holds": account_page.holds(got["holds"], show),
                    "history": account_page.history(history, show),
                    "notifications": got["notifications"]["data"],
                }
                rows = history["data"]
                older = {"id": account_id, "after": rows[-1]["id"]} if rows else {}
                context["older"] = urlencode(older) if history["has_more"] else None
                context["paged"] = bool(after)
                titles = {p["id"]: p.get("title") or p["id"] for p in catalog["plans"]}
                context["plan"] = _entitlements_view(got["entitlements"], titles)
                context["subscriptions"] = [
                    _subscription_row(x, titles) for x in got["subscriptions"]["data"]
                ]
        return self._render(request, "accounts.html", context, cookie=cookie, status=status)

    async def grant(self, request: Request) -> Response:
        return await self._move(request, "grants")

    async def adjust(self, request: Request) -> Response:
        return await self._move(request, "adjustments")

    async def _move(self, request: Request, what: str) -> Response:
        """A manual grant or an adjustment from the account page: the reason is required."""
        cookie, form = await self._checked_form(request)
        if cookie is None:
            return self._forbidden(request) if self._cookie(request) else self._to_login(request)
        account_id = request.path_params["account_id"]
        noun = "grant" if what == "grants" else "adjustment"
        values = {k: str(form.get(k) or "").strip() for k in ("unit", "amount", "reason")}
        values["kind"] = noun
        nonce = str(form.get("nonce") or "")[:64] or secrets.token_urlsafe(16)
        try:
            catalog = await self.api.request("GET", "/v1/catalog", token=None)
        except ApiError as exc:
            return self._failure(request, cookie, exc)
        decimals = {u["name"]: int(u["decimals"]) for u in catalog["units"]}

        async def again(message: str, status: int = 400) -> Response:
            return await self.accounts(request, error=message, form_values=values, status=status)

        if values["unit"] not in decimals:
            return await again("Choose a unit.")
        if not values["reason"]:
            return await again(f"A reason is required: it is recorded with the {noun}.")
        try:
            amount = money.parse_major(values["amount"], decimals[values["unit"]])
        except ValueError as exc:
            return await again(str(exc))
        if amount <= 0:
            return await again("The amount must be more than zero.")
        try:
            await self._admin(
                "POST",
                f"/v1/accounts/{quote(account_id, safe='')}/{what}",
                json={
                    "unit": values["unit"],
                    "amount": amount,
                    "reason": values["reason"],
                    "operator": self._note(cookie, form)["operator"],
                },
                idempotency_key=f"admin-{noun}-{nonce}",
            )
        except ApiError as exc:
            return await again(f"The {noun} was refused: {exc.message}", exc.status)
        done = "granted" if what == "grants" else "adjusted"
        target = f"{_root(request)}/accounts?{urlencode({'id': account_id, 'done': done})}"
        return RedirectResponse(target, status_code=303)

    # --- helpers -----------------------------------------------------------------------------

    async def _admin(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        return await self.api.request(
            method,
            path,
            token=self.config.admin_token,
            params=params,
            json=json,
            idempotency_key=idempotency_key,
        )

    def _done(self, request: Request) -> str | None:
        return DONE.get(request.query_params.get("done", ""))

    def _failure(self, request: Request, cookie: str, exc: ApiError) -> Response:
        context = {"section": None, "error": f"The API answered {exc.status}: {exc.message}"}
        status = exc.status if exc.status >= 400 else 502
        return self._render(request, "failure.html", context, cookie=cookie, status=status)

    def _render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any],
        *,
        cookie: str | None,
        status: int = 200,
    ) -> Response:
        csrf = self.sessions.csrf(cookie) if cookie and self.sessions else ""
        html = (
            _environment()
            .get_template(name)
            .render(
                root=_root(request),
                signed_in=cookie is not None,
                csrf=csrf,
                links=self.config.links,
                here=_without_done(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                ),
                **context,
            )
        )
        return HTMLResponse(html, status_code=status, headers=HEADERS)


def create_admin_app(config: AdminConfig) -> Starlette:
    """The admin view as an ASGI app of its own, to mount under a prefix (``/admin``)."""
    view = AdminView(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await view.aclose()

    app = Starlette(routes=view.routes(), lifespan=lifespan)
    app.state.view = view
    return app


# --- views of the API's answers ------------------------------------------------------------------


def _order_row(order: Mapping[str, Any]) -> dict[str, Any]:
    amount = order.get("amount")
    currency = order.get("currency")
    return {
        **order,
        "price": money.format_money(amount, currency) if amount is not None and currency else "—",
    }


def _subscription_row(sub: Mapping[str, Any], titles: Mapping[str, str]) -> dict[str, Any]:
    plan = sub.get("plan")
    ends = sub.get("ended_at") or sub.get("cancel_at")
    if ends is None and sub.get("cancel_at_period_end"):
        ends = sub.get("current_period_end")
    return {
        **sub,
        "plan_title": titles.get(plan, plan) if plan else None,
        "ends": ends,
        "ending": "ended" if sub.get("ended_at") else "ends" if ends else None,
    }


SOURCES = {
    "subscription": "from a live subscription",
    "grace": "in its grace period after a failed payment",
    "default": "the default plan",
    "none": "no plan",
}


def _entitlements_view(found: Mapping[str, Any], titles: Mapping[str, str]) -> dict[str, Any]:
    grace = "none"
    if found.get("grace_until") is not None:
        grace = "running" if found.get("source") == "grace" else "ended"
    return {
        **found,
        "title": titles.get(found.get("plan") or "", found.get("plan") or "none"),
        "source_text": SOURCES.get(str(found.get("source")), str(found.get("source"))),
        "grace": grace,
        "feature_list": [
            {"name": name, "on": bool(on)} for name, on in (found.get("features") or {}).items()
        ],
        "limit_list": [
            {"name": name, "value": "unlimited" if value is None else f"{value:,}"}
            for name, value in (found.get("limits") or {}).items()
        ],
    }


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _safe_next(request: Request, target: str | None) -> str | None:
    """Only a path inside the admin view: never another site (no open redirect)."""
    if not target:
        return None
    root = _root(request)
    if not target.startswith(f"{root}/") or target.startswith("//") or "\\" in target:
        return None
    if any(ch in target for ch in "\r\n"):
        return None
    return target


def _with_done(target: str, done: str) -> str:
    """``target`` with ``done=`` set to ``done`` (replacing one it had)."""
    return _without_done(target) + ("&" if "?" in _without_done(target) else "?") + f"done={done}"


def _without_done(target: str) -> str:
    path, _, query = target.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "done"]
    return f"{path}?{urlencode(kept)}" if kept else path


# --- the events page's time filter -----------------------------------------------------------------

_LOCAL = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends (seconds optional)
QUICK_SPANS = (("last hour", 3600), ("24 h", 86_400), ("7 days", 7 * 86_400))


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeSpan:
    """The From/To of the events page, in UTC: as the form shows them and as the API takes them
    (``created[gte]``; ``created[lte]`` at the end of To's minute, so that To includes it)."""

    start: str = ""
    end: str = ""
    api: Mapping[str, int] = field(default_factory=dict)

    @property
    def form(self) -> dict[str, str]:
        return {k: v for k, v in (("from", self.start), ("to", self.end)) if v}


def _time_span(start: str | None, end: str | None) -> tuple[TimeSpan, str | None]:
    """The span the form asks for; a value that is no date and time is left out, and said."""
    shown: dict[str, str] = {}
    api: dict[str, int] = {}
    bad = []
    for name, value, bound in (("From", start, "created[gte]"), ("To", end, "created[lte]")):
        text = (value or "").strip()[:32]
        if not text:
            continue
        try:
            at = dt.datetime.fromisoformat(text)
        except ValueError:
            bad.append(name)
            continue
        at = at.astimezone(dt.UTC) if at.tzinfo else at.replace(tzinfo=dt.UTC)
        whole_minute = 59 if bound == "created[lte]" and text.count(":") < 2 else 0
        api[bound] = max(0, int(at.timestamp()) + whole_minute)
        shown[name] = text
    span = TimeSpan(start=shown.get("From", ""), end=shown.get("To", ""), api=api)
    error = f"{' and '.join(bad)}: not a date and time (YYYY-MM-DDTHH:MM, UTC)." if bad else None
    return span, error


def _quick_spans(now: int, status: str | None, type_: str | None) -> list[tuple[str, str]]:
    """The "last hour / 24 h / 7 days" links: From that long ago, the other filters kept."""
    keep = {k: v for k, v in (("status", status), ("type", type_)) if v}
    return [
        (label, urlencode(keep | {"from": _local(now - seconds)})) for label, seconds in QUICK_SPANS
    ]


def _local(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime(_LOCAL)

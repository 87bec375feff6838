"""The demo shop: a small application that sells credit packs and plans through billfold.

It plays the customer's application, and talks to billfold only as one would:

- its backend calls the API with the server key: create a checkout session, spend credits;
- the signed-in user's token (a JWT the backend signs, ``sub`` = the account id) reads its
  balance, plan and allowances, fulfils its checkout on the success page, and changes, cancels or
  manages its own subscription (the API lets a user do these for itself).

    GET  /                   balance, plan, "Use a feature", plans, packs and a top-up, history
    POST /buy                create a checkout session -> 303 to the hosted checkout page
    POST /plans/subscribe    a subscription checkout for a plan -> 303 to the checkout page
    POST /plans/change       move the subscription to another plan (an upgrade billed at once)
    POST /plans/cancel       cancel at the end of the paid period
    POST /plans/portal       a Stripe customer-portal session -> 303 to it
    GET  /success            confirm the payment (JS; ``?confirm=1`` does it on the server)
    POST /spend              spend the feature's price -> 303 back with a message
    GET  /static/...         demo.css, demo.js

In ``billfold dev`` only (``DemoConfig.simulator``), developer tools drive Stripe's test clock:

    POST /dev/advance        {by: day | week | month}: move the test clock on
    POST /dev/fail-renewal   the card on file declines from now on
    POST /dev/pay            a new card pays the open invoices (see ``simulator_controls``)

Pages are plain HTML rendered on the server; JavaScript only confirms the payment on the success
page and follows a delayed one until it settles. Without JavaScript the success page confirms on
the server and refreshes itself while the payment is pending.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from billfold.domain import money
from billfold.domain.money import currency_decimals
from billfold.entrypoints.http.client import ApiClient, ApiError
from billfold.entrypoints.http.demo import plans as plan_views
from billfold.entrypoints.http.demo.simulator_controls import (
    DAY,
    ClockState,
    ControlError,
    SimulatorAccess,
    SimulatorControls,
    one_month_after,
)

STATIC = Path(__file__).parent / "static"
USER_TOKEN_SECONDS = 60 * 60
SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,250}")
HISTORY_LENGTH = 10

NOTICES = {
    "spent": ("ok", "Done! The feature ran and used {cost}."),
    "cancelled": ("info", "Checkout cancelled: nothing was charged."),
    "changed": ("ok", "Your plan was changed."),
    "ending": ("info", "Your subscription will end at the end of the paid period."),
    "advanced": ("info", "Stripe's test clock moved on; billfold synced what it brought."),
    "failing": (
        "info",
        "The card on file now declines: the next renewal fails (advance the clock to see it).",
    ),
    "paid": ("ok", "Paid with a new card."),
}
ADVANCES = {"day": "one day", "week": "one week", "month": "one month"}
CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoConfig:
    """What the shop needs: where billfold's API is, the server key, how to sign user tokens."""

    api_base_url: str
    server_api_key: str
    jwt_secret: str
    jwt_audience: str | None = None
    api_transport: httpx.AsyncBaseTransport | None = None
    account_id: str = "demo_user"
    account_email: str = "demo@example.com"
    user_name: str = "Demo User"
    feature_unit: str = "credits"
    feature_cost: int = 10
    browser_api_base: str = ""  # where the page's JavaScript reaches the API; "" = same origin
    links: tuple[tuple[str, str], ...] = ()  # (label, url) in the footer: admin, docs, simulator
    simulator: SimulatorAccess | None = None  # billfold dev: the test-clock tools
    notifications: Callable[[str | None], list[dict[str, Any]]] | None = None
    """billfold dev: the notifications billfold would send the application, newest first."""


NOTIFICATIONS_SHOWN = 10


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("billfold.entrypoints.http.demo", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    env.filters["when"] = _when
    return env


def _when(timestamp: int) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return moment.strftime("%d %b %Y, %H:%M UTC")


@dataclass(frozen=True, slots=True)
class Units:
    """The catalog's units and their decimals, to show amounts of them."""

    decimals: Mapping[str, int]

    def show(self, amount: int, unit: str) -> str:
        return money.format_units(amount, unit, self.decimals.get(unit, 0))

    def signed(self, amount: int, unit: str) -> str:
        return money.format_signed_units(amount, unit, self.decimals.get(unit, 0))


class DemoShop:
    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.api = ApiClient(config.api_base_url, transport=config.api_transport)
        self.controls = SimulatorControls(config.simulator) if config.simulator else None
        self._account_ready = False
        csp = CSP
        if config.browser_api_base.startswith(("http://", "https://")):
            csp += f"; connect-src 'self' {config.browser_api_base.rstrip('/')}"
        self.headers = {**HEADERS, "Content-Security-Policy": csp}

    async def aclose(self) -> None:
        await self.api.aclose()
        if self.controls is not None:
            await self.controls.aclose()

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/", self.index, methods=["GET"], name="demo:index"),
            Route("/buy", self.buy, methods=["POST"], name="demo:buy"),
            Route("/plans/subscribe", self.subscribe, methods=["POST"], name="demo:subscribe"),
            Route("/plans/change", self.change_plan, methods=["POST"], name="demo:change"),
            Route("/plans/cancel", self.cancel, methods=["POST"], name="demo:cancel"),
            Route("/plans/portal", self.portal, methods=["POST"], name="demo:portal"),
            Route("/success", self.success, methods=["GET"], name="demo:success"),
            Route("/spend", self.spend, methods=["POST"], name="demo:spend"),
        ]
        if self.controls is not None:
            routes += [
                Route("/dev/advance", self.advance, methods=["POST"], name="demo:advance"),
                Route("/dev/fail-renewal", self.fail_renewal, methods=["POST"]),
                Route("/dev/pay", self.pay_with_new_card, methods=["POST"], name="demo:pay"),
            ]
        return [*routes, Mount("/static", app=StaticFiles(directory=STATIC), name="demo:static")]

    # --- credentials -------------------------------------------------------------------------

    def user_token(self) -> str:
        """The signed-in user's token for billfold, as the application's backend would sign it."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": self.config.account_id,
            "iat": now,
            "exp": now + USER_TOKEN_SECONDS,
        }
        if self.config.jwt_audience:
            claims["aud"] = self.config.jwt_audience
        return jwt.encode(claims, self.config.jwt_secret, algorithm="HS256")

    async def _ensure_account(self) -> None:
        """Give the demo account an e-mail once, so the checkout page is filled in for it; in
        ``billfold dev``, a Stripe customer on a test clock too (Stripe moves time only for a
        customer made on a clock), linked before the first checkout uses it."""
        if self._account_ready:
            return
        account = await self.api.request(
            "PUT",
            f"/v1/accounts/{self.config.account_id}",
            token=self.config.server_api_key,
            json={"email": self.config.account_email},
        )
        if self.controls is not None and not account.get("stripe_customer_id"):
            try:
                customer = await self.controls.new_customer_on_clock(
                    email=self.config.account_email, name=self.config.user_name
                )
            except ControlError as exc:
                raise ApiError(502, "simulator_unavailable", exc.message, {}) from exc
            await self.api.request(
                "PUT",
                f"/v1/accounts/{self.config.account_id}",
                token=self.config.server_api_key,
                json={"stripe_customer_id": customer},
            )
        self._account_ready = True

    # --- pages -------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        kind, text = None, None
        notice = request.query_params.get("notice")
        if notice == "low":
            have = _int(request.query_params.get("have"))
            kind, text = "bad", self._low_balance_message(have)
        elif notice == "problem":
            kind, text = (
                "bad",
                (request.query_params.get("message") or "Something went wrong.")[:300],
            )
        elif notice in NOTICES:
            kind, template = NOTICES[notice]
            text = template.format(cost=self._feature_price_text())
        return await self._shop_page(request, notice=(kind, text) if text else None)

    async def _shop_page(
        self,
        request: Request,
        *,
        notice: tuple[str | None, str] | None = None,
        topup_error: str | None = None,
        topup_value: str = "",
        status: int = 200,
    ) -> Response:
        token = self.user_token()
        account_path = f"/v1/accounts/{self.config.account_id}"
        try:
            await self._ensure_account()
            catalog, account, history, entitlements, subscriptions, grants = await asyncio.gather(
                self.api.request("GET", "/v1/catalog", token=None),
                self.api.request("GET", account_path, token=token),
                self.api.request(
                    "GET",
                    f"{account_path}/transactions",
                    token=token,
                    params={"limit": HISTORY_LENGTH},
                ),
                self.api.request("GET", f"{account_path}/entitlements", token=token),
                self.api.request(
                    "GET", f"{account_path}/subscriptions", token=token, params={"limit": 20}
                ),
                self.api.request(
                    "GET",
                    f"{account_path}/grants",
                    token=token,
                    params={"live": "true", "limit": 100},
                ),
            )
        except ApiError as exc:
            return self._unavailable(request, exc)
        units = _units(catalog)
        packs, topups = _offers(catalog, units)
        clock = await self._clock_state(account)
        context = {
            **self._common(request, token, account, units, catalog),
            **self._plans(catalog, entitlements, subscriptions["data"], grants["data"], units),
            "dev": clock,
            "notice": notice,
            "packs": packs,
            "topups": topups,
            "topup_error": topup_error,
            "topup_value": topup_value,
            "history": [_history_row(x, units) for x in history["data"]],
            "history_more": history["has_more"],
            "spend_nonce": secrets.token_urlsafe(16),
            "notifications": self._notifications(),
        }
        return self._render("index.html", context, status=status)

    def _notifications(self) -> list[dict[str, Any]] | None:
        """The demo account's notifications, for the panel (None: not ``billfold dev``)."""
        if self.config.notifications is None:
            return None
        rows = []
        for n in self.config.notifications(self.config.account_id)[:NOTIFICATIONS_SHOWN]:
            data = n.get("data", {})
            rows.append(
                {
                    "id": n.get("id"),
                    "type": n.get("type"),
                    "timestamp": n.get("timestamp"),
                    "data": json.dumps(data, indent=1, sort_keys=True),
                }
            )
        return rows

    async def buy(self, request: Request) -> Response:
        form = await request.form()
        package = str(form.get("package") or "")
        raw_amount = str(form.get("amount") or "").strip()
        try:
            catalog = await self.api.request("GET", "/v1/catalog", token=None)
        except ApiError as exc:
            return self._unavailable(request, exc)
        found = next((p for p in catalog["packages"] if p["id"] == package), None)
        if found is None:
            return await self._shop_page(
                request, notice=("bad", "That pack is not for sale any more."), status=400
            )
        body: dict[str, Any] = {
            "account_id": self.config.account_id,
            "package": package,
            "success_url": _absolute(request, "/success"),
            "cancel_url": _absolute(request, "/?notice=cancelled"),
        }
        if found["custom_amount"] is not None:
            try:
                amount = money.parse_major(raw_amount, currency_decimals(found["currency"]))
            except ValueError as exc:
                return await self._shop_page(
                    request, topup_error=str(exc), topup_value=raw_amount, status=400
                )
            low, high = found["custom_amount"]["min"], found["custom_amount"]["max"]
            if not low <= amount <= high:
                message = (
                    f"Choose an amount from {money.format_money(low, found['currency'])} to "
                    f"{money.format_money(high, found['currency'])}."
                )
                return await self._shop_page(
                    request, topup_error=message, topup_value=raw_amount, status=400
                )
            body["amount"] = amount
        try:
            await self._ensure_account()
            session = await self.api.request(
                "POST", "/v1/checkout/sessions", token=self.config.server_api_key, json=body
            )
        except ApiError as exc:
            message = _friendly(exc, "Checkout could not start")
            if found["custom_amount"] is not None:
                return await self._shop_page(
                    request, topup_error=message, topup_value=raw_amount, status=exc.status
                )
            return await self._shop_page(request, notice=("bad", message), status=exc.status)
        return RedirectResponse(session["url"], status_code=303)

    # --- plans -------------------------------------------------------------------------------

    def _plans(
        self,
        catalog: Mapping[str, Any],
        entitlements: Mapping[str, Any],
        subscriptions: list[Mapping[str, Any]],
        grants: list[Mapping[str, Any]],
        units: Units,
    ) -> dict[str, Any]:
        by_id = {p["id"]: p for p in catalog["plans"]}
        current = plan_views.current_subscription(entitlements, subscriptions)
        return {
            "entitlements": entitlements,
            "plan_title": plan_views.plan_title(by_id, entitlements.get("plan")),
            "standing": plan_views.standing(entitlements, current, by_id),
            "plan_features": plan_views.features(entitlements.get("features") or {}),
            "plan_limits": plan_views.limits(entitlements.get("limits") or {}),
            "plan_cards": plan_views.plan_cards(
                catalog["plans"], entitlements, current, units.show
            ),
            "allowances": plan_views.allowances(grants, units.show),
            "subscription": current,
            **plan_views.actions(current),
        }

    async def subscribe(self, request: Request) -> Response:
        form = await request.form()
        plan = str(form.get("plan") or "")
        try:
            await self._ensure_account()
            session = await self.api.request(
                "POST",
                "/v1/checkout/sessions",
                token=self.config.server_api_key,
                json={
                    "account_id": self.config.account_id,
                    "plan": plan,
                    "success_url": _absolute(request, "/success"),
                    "cancel_url": _absolute(request, "/?notice=cancelled"),
                },
            )
        except ApiError as exc:
            return self._problem(request, _friendly(exc, "The subscription could not start"))
        return RedirectResponse(session["url"], status_code=303)

    async def change_plan(self, request: Request) -> Response:
        form = await request.form()
        body = {
            "plan": str(form.get("plan") or ""),
            "proration": str(form.get("proration") or "create_prorations"),
        }
        try:
            await self.api.request(
                "POST",
                f"/v1/accounts/{self.config.account_id}/subscription",
                token=self.user_token(),  # the user changes their own plan
                json=body,
            )
            if self.controls is not None:
                # billfold dev: the upgrade's invoice delivered and granted before the page shows
                await self.controls.flush()
                await self._after_stripe()
        except ApiError as exc:
            return self._problem(request, _friendly(exc, "The plan could not be changed"))
        except ControlError:
            pass  # the page shows what has arrived; the rest follows
        return RedirectResponse(f"{_root(request)}/?notice=changed#plan", status_code=303)

    async def cancel(self, request: Request) -> Response:
        try:
            await self.api.request(
                "DELETE",
                f"/v1/accounts/{self.config.account_id}/subscription",
                token=self.user_token(),
            )
        except ApiError as exc:
            return self._problem(request, _friendly(exc, "The subscription could not be canceled"))
        return RedirectResponse(f"{_root(request)}/?notice=ending#plan", status_code=303)

    async def portal(self, request: Request) -> Response:
        try:
            await self._ensure_account()
            found = await self.api.request(
                "POST",
                f"/v1/accounts/{self.config.account_id}/billing-portal",
                token=self.user_token(),
                json={"return_url": _absolute(request, "/#plan")},
            )
        except ApiError as exc:
            return self._problem(request, _friendly(exc, "The billing portal could not open"))
        return RedirectResponse(found["url"], status_code=303)

    # --- billfold dev: Stripe's test clock ---------------------------------------------------

    async def _clock_state(self, account: Mapping[str, Any]) -> dict[str, Any] | None:
        if self.controls is None:
            return None
        try:
            state = await self.controls.state(account.get("stripe_customer_id"))
        except ControlError as exc:
            return {"usable": False, "error": exc.message}
        return _clock_view(state)

    async def _customer(self) -> str:
        await self._ensure_account()
        account = await self.api.request(
            "GET", f"/v1/accounts/{self.config.account_id}", token=self.config.server_api_key
        )
        customer = account.get("stripe_customer_id")
        if not customer:
            raise ControlError("The demo account has no Stripe customer yet.")
        return str(customer)

    async def _after_stripe(self) -> None:
        """billfold catches up with what Stripe did (the webhooks have been delivered; a sync
        makes sure of what they may have left to the worker)."""
        await self.api.request(
            "POST", f"/v1/accounts/{self.config.account_id}/sync", token=self.user_token()
        )

    async def advance(self, request: Request) -> Response:
        assert self.controls is not None
        form = await request.form()
        by = str(form.get("by") or "month")
        if by not in ADVANCES:
            return self._problem(request, "Advance by a day, a week or a month.")
        try:
            state = await self.controls.state(await self._customer())
            if not state.usable or state.clock_id is None or state.frozen_time is None:
                raise ControlError("The demo account's Stripe customer is not on a test clock.")
            now = state.frozen_time
            target = {"day": now + DAY, "week": now + 7 * DAY}.get(by) or one_month_after(now)
            await self.controls.advance(state.clock_id, to=target)
            await self._after_stripe()
        except ControlError as exc:
            return self._problem(request, f"The test clock could not advance: {exc.message}")
        except ApiError as exc:
            return self._problem(request, _friendly(exc, "billfold could not sync"))
        return RedirectResponse(f"{_root(request)}/?notice=advanced#plan", status_code=303)

    async def fail_renewal(self, request: Request) -> Response:
        assert self.controls is not None
        try:
            await self.controls.fail_renewals(await self._customer())
        except (ControlError, ApiError) as exc:
            return self._problem(request, f"Could not change the card: {exc.message}")
        return RedirectResponse(f"{_root(request)}/?notice=failing#plan", status_code=303)

    async def pay_with_new_card(self, request: Request) -> Response:
        assert self.controls is not None
        try:
            await self.controls.pay_with_new_card(await self._customer())
            await self._after_stripe()
        except (ControlError, ApiError) as exc:
            return self._problem(request, f"The payment did not go through: {exc.message}")
        return RedirectResponse(f"{_root(request)}/?notice=paid#plan", status_code=303)

    def _problem(self, request: Request, message: str) -> Response:
        query = f"?notice=problem&message={quote(message[:300])}"
        return RedirectResponse(f"{_root(request)}/{query}", status_code=303)

    async def success(self, request: Request) -> Response:
        session_id = request.query_params.get("session_id", "")
        token = self.user_token()
        account_path = f"/v1/accounts/{self.config.account_id}"
        try:
            catalog, account = await asyncio.gather(
                self.api.request("GET", "/v1/catalog", token=None),
                self.api.request("GET", account_path, token=token),
            )
        except ApiError as exc:
            return self._unavailable(request, exc)
        units = _units(catalog)
        context: dict[str, Any] = {
            **self._common(request, token, account, units, catalog),
            "session_id": session_id,
            "server_side": False,
            "result": None,
            "refresh": False,
        }
        if not SESSION_ID.fullmatch(session_id):
            context["result"] = _outcome_view(None, "This page needs a checkout session id.")
            return self._render("success.html", context, status=400)
        if request.query_params.get("confirm") == "1":
            # The no-JavaScript path: confirm here, and refresh while a payment is pending.
            context["server_side"] = True
            try:
                done = await self.api.request(
                    "POST", f"/v1/checkout/sessions/{quote(session_id)}/fulfill", token=token
                )
            except ApiError as exc:
                context["result"] = _outcome_view(None, _friendly(exc, "We could not confirm"))
                return self._render("success.html", context, status=exc.status)
            context["result"] = _outcome_view(done, None, catalog=catalog, units=units)
            context["refresh"] = context["result"]["state"] == "pending"
            context["balances"] = _balance_chips(done["balances"], units, catalog)
        return self._render("success.html", context)

    async def spend(self, request: Request) -> Response:
        form = await request.form()
        nonce = str(form.get("nonce") or "")[:64] or secrets.token_urlsafe(16)
        try:
            await self.api.request(
                "POST",
                f"/v1/accounts/{self.config.account_id}/spend",
                token=self.config.server_api_key,
                json={
                    "unit": self.config.feature_unit,
                    "amount": self.config.feature_cost,
                    "reason": "Used a feature",
                },
                # The form's nonce: a double click, or a resubmitted form, spends once.
                idempotency_key=f"demo-feature-{nonce}",
            )
        except ApiError as exc:
            if exc.status == 402:
                have = exc.details.get("available")
                query = f"?notice=low&have={have}" if isinstance(have, int) else "?notice=low"
                return RedirectResponse(f"{_root(request)}/{query}", status_code=303)
            return await self._shop_page(
                request,
                notice=("bad", _friendly(exc, "The feature could not run")),
                status=exc.status,
            )
        return RedirectResponse(f"{_root(request)}/?notice=spent", status_code=303)

    # --- helpers -----------------------------------------------------------------------------

    def _feature_price_text(self) -> str:
        return money.format_units(self.config.feature_cost, self.config.feature_unit)

    def _low_balance_message(self, have: int | None) -> str:
        need = self._feature_price_text()
        if have is None:
            return f"Not enough {self.config.feature_unit}: this feature needs {need}."
        return (
            f"Not enough {self.config.feature_unit}: this feature needs {need} and you have "
            f"{money.format_units(have, self.config.feature_unit)}. Buy a pack below to go on."
        )

    def _common(
        self,
        request: Request,
        token: str,
        account: Mapping[str, Any],
        units: Units,
        catalog: Mapping[str, Any],
    ) -> dict[str, Any]:
        return {
            "root": _root(request),
            "user_name": self.config.user_name,
            "account_id": self.config.account_id,
            "user_token": token,
            "balances": _balance_chips(account["balances"], units, catalog),
            "feature_cost": self._feature_price_text(),
            "links": self.config.links,
            "page_data": {
                "accountId": self.config.account_id,
                "apiBase": self.config.browser_api_base.rstrip("/"),
                "units": dict(units.decimals),
                "packages": {
                    p["id"]: {"title": p["title"], "currency": p["currency"], "grants": p["grants"]}
                    for p in catalog["packages"]
                },
                "plans": {
                    p["id"]: {
                        "title": p["title"] or p["id"],
                        "interval": p["interval"] or "period",
                        "allowance": p["allowance"],
                    }
                    for p in catalog["plans"]
                },
            },
        }

    def _unavailable(self, request: Request, exc: ApiError) -> Response:
        context: dict[str, Any] = {
            "root": _root(request),
            "user_name": self.config.user_name,
            "account_id": self.config.account_id,
            "balances": [],
            "links": self.config.links,
            "message": _friendly(exc, "The shop could not talk to billfold"),
            "page_data": None,
            "user_token": None,
        }
        status = exc.status if exc.status >= 500 else 502
        return self._render("unavailable.html", context, status=status)

    def _render(self, name: str, context: Mapping[str, Any], *, status: int = 200) -> Response:
        html = _environment().get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=self.headers)


def create_demo_app(config: DemoConfig) -> Starlette:
    """The shop on its own (tests, embedding); ``billfold dev`` mounts ``DemoShop.routes()``."""
    shop = DemoShop(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await shop.aclose()

    app = Starlette(routes=shop.routes(), lifespan=lifespan)
    app.state.shop = shop
    return app


# --- views of the API's answers ------------------------------------------------------------------


def _units(catalog: Mapping[str, Any]) -> Units:
    return Units({u["name"]: int(u["decimals"]) for u in catalog["units"]})


def _balance_chips(
    balances: Mapping[str, int], units: Units, catalog: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The balances in the header: every unit a pack sells, and any other that is not zero."""
    sold = [g["unit"] for p in catalog["packages"] for g in p["grants"]]
    order = list(dict.fromkeys(sold + sorted(balances)))
    chips = []
    for unit in order:
        amount = int(balances.get(unit, 0))
        if unit not in sold and amount == 0:
            continue
        chips.append(
            {
                "unit": unit,
                "decimals": units.decimals.get(unit, 0),
                "text": units.show(amount, unit),
                "label": "wallet" if units.decimals.get(unit, 0) else unit,
            }
        )
    return chips


def _grant_lines(grants: list[Mapping[str, Any]], units: Units) -> list[str]:
    lines = []
    for grant in grants:
        if grant["amount"] == "paid":
            lines.append(f"The amount you pay, added to your {grant['unit'].upper()} wallet")
            continue
        text = units.show(int(grant["amount"]), grant["unit"])
        if grant["kind"] == "bonus":
            number, _, unit = text.partition(" ")
            text = f"+ {number} bonus {unit}".rstrip()
        if grant["expires_in_days"]:
            text += f", valid for {grant['expires_in_days']} days"
        lines.append(text)
    return lines


def _offers(
    catalog: Mapping[str, Any], units: Units
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The fixed-price packs (the best value marked) and the custom-amount top-ups."""
    packs, topups = [], []
    for package in catalog["packages"]:
        currency = package["currency"]
        if package["custom_amount"] is not None:
            decimals = currency_decimals(currency)
            low, high = package["custom_amount"]["min"], package["custom_amount"]["max"]
            topups.append(
                {
                    "id": package["id"],
                    "title": package["title"],
                    "symbol": money.SYMBOLS.get(currency, ""),
                    "code": currency.upper(),
                    "min": money.format_money(low, currency),
                    "max": money.format_money(high, currency),
                    "placeholder": money.format_number(low * 5, decimals).replace(",", ""),
                    "step": "1" if decimals == 0 else f"0.{'0' * (decimals - 1)}1",
                    "lines": _grant_lines(package["grants"], units),
                }
            )
            continue
        total = sum(g["amount"] for g in package["grants"] if isinstance(g["amount"], int))
        packs.append(
            {
                "id": package["id"],
                "title": package["title"],
                "price": money.format_money(package["price"], currency),
                "lines": _grant_lines(package["grants"], units),
                "value": (total, package["price"]),
                "best": False,
            }
        )
    if len(packs) > 1:
        # Most per minor unit of price; cross-multiplied, so no division and no float.
        best = packs[0]
        for pack in packs[1:]:
            if pack["value"][0] * best["value"][1] > best["value"][0] * pack["value"][1]:
                best = pack
        best["best"] = True
    return packs, topups


KIND_LABELS = {
    "grant": "Added",
    "spend": "Spent",
    "hold": "Reserved",
    "capture": "Spent",
    "release": "Released",
    "expire": "Expired",
    "hold_expire": "Released",
    "clawback": "Refunded",
}


def _history_row(transaction: Mapping[str, Any], units: Units) -> dict[str, Any]:
    unit = transaction.get("unit") or ""
    net = int(transaction.get("net") or 0)
    what = str(transaction.get("reason") or KIND_LABELS.get(transaction["kind"], "Change"))
    return {
        "when": _when(int(transaction["created"])),
        "what": what[:1].upper() + what[1:],
        "kind": KIND_LABELS.get(transaction["kind"], transaction["kind"]),
        "amount": units.signed(net, unit) if unit else str(net),
        "direction": "in" if net > 0 else "out" if net < 0 else "none",
    }


STATES = {
    "fulfilled": "done",
    "refunded": "done",
    "pending": "pending",
    "needs_attention": "review",
    "failed": "failed",
    "expired": "failed",
}


def _clock_view(state: ClockState) -> dict[str, Any]:
    return {
        "usable": state.usable,
        "error": None if state.usable else "The demo account's customer is not on a test clock.",
        "now": plan_views.moment(state.frozen_time),
        "frozen_time": state.frozen_time,
        "status": state.status,
        "card": state.card,
        "card_declines": state.card_declines,
        "open_invoices": [
            {**i, "amount": money.format_money(int(i["amount_due"]), str(i["currency"]))}
            for i in state.open_invoices
        ],
    }


def _outcome_view(
    done: Mapping[str, Any] | None,
    error: str | None,
    *,
    catalog: Mapping[str, Any] | None = None,
    units: Units | None = None,
) -> dict[str, Any]:
    """What the success page says about a fulfilment (the JavaScript says the same)."""
    if done is None:
        return {"state": "error", "title": "Something went wrong", "text": error or "", "lines": []}
    status = str(done.get("status"))
    state = STATES.get(status, "pending")
    order = done.get("order") or {}
    if state == "pending" and done.get("session_status") == "open":
        return {
            "state": "pending",
            "title": "Waiting for your payment",
            "text": "This checkout is not paid yet.",
            "lines": [],
        }
    if state == "done" and done.get("mode") == "subscription":
        plan = next(
            (p for p in (catalog or {}).get("plans", []) if p["id"] == done.get("plan")), None
        )
        title = (plan.get("title") or plan["id"]) if plan else str(done.get("plan") or "")
        lines = []
        if plan is not None and units is not None:
            lines = [f"{title}: {line}" for line in plan_views.allowance_lines(plan, units.show)]
        return {
            "state": "done",
            "title": f"Welcome to {title}!" if title else "Subscribed. Thank you!",
            "text": "Your subscription is active: its features are yours now.",
            "lines": lines,
        }
    if state == "done":
        lines = []
        if catalog is not None and units is not None:
            lines = _granted_lines(order, catalog, units)
        return {
            "state": "done",
            "title": "Payment received. Thank you!",
            "text": "Your balance is already up to date.",
            "lines": lines,
        }
    if state == "pending":
        return {
            "state": "pending",
            "title": "Payment pending",
            "text": "Your bank debit is processing. Your credits arrive as soon as it clears; "
            "this page updates by itself.",
            "lines": [],
        }
    if state == "review":
        return {
            "state": "review",
            "title": "Payment received, being checked",
            "text": "We received your payment and are checking it. Your balance will be updated "
            "shortly.",
            "lines": [],
        }
    return {
        "state": "failed",
        "title": "The payment did not go through" if status == "failed" else "Checkout expired",
        "text": "Nothing was added to your balance.",
        "lines": [],
    }


def _granted_lines(order: Mapping[str, Any], catalog: Mapping[str, Any], units: Units) -> list[str]:
    package = next((p for p in catalog["packages"] if p["id"] == order.get("package")), None)
    if package is None:
        return []
    lines = []
    for grant in package["grants"]:
        amount = order.get("amount") or 0 if grant["amount"] == "paid" else grant["amount"]
        suffix = " bonus" if grant["kind"] == "bonus" else ""
        lines.append(f"{units.signed(int(amount), grant['unit'])}{suffix}")
    return [f"{package['title']}: {', '.join(lines)}"]


def _friendly(exc: ApiError, doing: str) -> str:
    if exc.status == 429:
        return f"{doing}: too many tries in a short time. Wait a moment and try again."
    if exc.status in (502, 503):
        return f"{doing}: the payment service is not answering. Try again in a moment."
    return f"{doing}: {exc.message}"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _absolute(request: Request, path: str) -> str:
    """``path`` under this app as the browser reaches it (for Stripe's success and cancel URLs)."""
    return f"{request.url.scheme}://{request.url.netloc}{_root(request)}{path}"


def _int(value: str | None) -> int | None:
    if value is None or not value.lstrip("-").isdigit() or len(value) > 20:
        return None
    return int(value)

"""The hosted customer portal page (a portal session's ``url``): plain HTML forms, no JavaScript.

Each form posts back to the page's own URL with an ``action`` (``switch``, ``cancel``, ``keep``,
``card``); the page shows the result and a link back to the session's ``return_url``. What each
action does is in ``portal``.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from billfold.simulator import errors, portal, subscriptions
from billfold.simulator.money import format_amount
from billfold.simulator.objects import Obj
from billfold.simulator.service import Simulator

CARDS = (
    ("pm_card_visa", "Visa ending 4242"),
    ("pm_card_mastercard", "Mastercard ending 4444"),
    ("pm_card_chargeCustomerFail", "Visa ending 0341 (charges fail)"),
)
NOTICES = {
    "switch": "Your plan was changed.",
    "cancel": "Your plan will be canceled at the end of the period.",
    "keep": "Your plan will continue.",
    "card": "Your payment method was updated.",
}


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("billfold.simulator", "templates"),
        autoescape=select_autoescape(["html"]),
    )


def _date(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return f"{moment:%B} {moment.day}, {moment.year}"


def _every(price: Obj) -> str:
    interval, count = subscriptions.recurring(price)
    return interval if count == 1 else f"{count} {interval}s"


class PortalPage:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def _session(self, request: Request) -> Obj | None:
        found: Obj | None = self.sim.state.collection(portal.KIND).get(
            request.path_params["session_id"]
        )
        return found

    async def show(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._render(None, status=404)
        return self._render(session)

    async def submit(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._render(None, status=404)
        form = await request.form()
        action = str(form.get("action") or "")
        subscription = str(form.get("subscription") or "")
        sim = self.sim
        try:
            with sim.burst():
                if action == "switch":
                    portal.switch_plan(sim, session, subscription, str(form.get("price") or ""))
                elif action == "cancel":
                    feedback = str(form.get("feedback") or "") or None
                    portal.cancel(sim, session, subscription, feedback)
                elif action == "keep":
                    portal.keep(sim, session, subscription)
                elif action == "card":
                    portal.change_card(sim, session, str(form.get("card") or ""))
                else:
                    return self._render(session, error="Choose what to change.", status=400)
        except errors.ApiError as exc:
            sim.save()
            return self._render(session, error=exc.message, status=400)
        sim.save()
        return self._render(session, notice=NOTICES[action])

    def _render(
        self,
        session: Obj | None,
        *,
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Response:
        context: dict[str, Any] = {
            "title": "Manage your subscription",
            "found": session is not None,
            "error": error,
            "notice": notice,
            "subscriptions": [],
            "feedback": portal.FEEDBACK,
            "cards": CARDS,
            "card": None,
            "return_url": None,
            "return_host": None,
            "customer_email": None,
            "session_id": session["id"] if session else "",
        }
        if session is None:
            context.update(title="This portal session does not exist", error=None)
        else:
            customer = self.sim.state.collection("customer").get(session["customer"]) or {}
            context["customer_email"] = customer.get("email")
            context["return_url"] = session["return_url"]
            if session["return_url"]:
                context["return_host"] = urlsplit(session["return_url"]).netloc or "the shop"
            method_id = (customer.get("invoice_settings") or {}).get("default_payment_method")
            method = self.sim.state.collection("payment_method").get(method_id or "")
            if method is not None:
                context["card"] = (
                    f"{method['card']['brand'].title()} ending {method['card']['last4']}"
                )
            context["subscriptions"] = [
                self._subscription(sub)
                for sub in portal.live_subscriptions(self.sim, session["customer"])
            ]
        html = _environment().get_template("portal.html").render(**context)
        return HTMLResponse(html, status_code=status)

    def _subscription(self, subscription: Obj) -> dict[str, Any]:
        item = subscription["items"]["data"][0]
        price = item["price"]
        product = self.sim.state.collection("product").get(price["product"]) or {}
        _, end = subscriptions.current_period(subscription)
        ends = subscription["cancel_at"]
        plans = []
        for other in portal.plans_for(self.sim, subscription):
            name = (self.sim.state.collection("product").get(other["product"]) or {}).get("name")
            label = other["nickname"] or name or other["id"]
            amount = format_amount(other["unit_amount"], other["currency"])
            plans.append({"id": other["id"], "label": f"{label} · {amount} / {_every(other)}"})
        return {
            "id": subscription["id"],
            "plan": price["nickname"] or product.get("name") or price["id"],
            "status": subscription["status"],
            "amount": format_amount(price["unit_amount"] * item["quantity"], price["currency"]),
            "interval": _every(price),
            "renews": _date(end),
            "ends": _date(int(ends)) if ends else None,
            "plans": plans,
        }

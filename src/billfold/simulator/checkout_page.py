"""The hosted checkout page: a plain HTML form with Pay, Decline and Pay with a delayed method.

It works without JavaScript: one form posts back to its own URL (so a mount prefix needs no
configuration) with the button's ``action``. Paying redirects (303) to the session's
``success_url``; a decline shows the page again with the error, and the payer may try again.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from billfold.simulator import checkout, errors
from billfold.simulator.money import format_amount
from billfold.simulator.objects import Obj
from billfold.simulator.service import Simulator

__all__ = ["CheckoutPage", "format_amount"]


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("billfold.simulator", "templates"),
        autoescape=select_autoescape(["html"]),
    )


def _interval(price: Obj) -> str | None:
    recurring = price.get("recurring")
    if not recurring:
        return None
    count = recurring["interval_count"]
    return recurring["interval"] if count == 1 else f"{count} {recurring['interval']}s"


class CheckoutPage:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def show(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._missing(request)
        return self._render(session)

    async def submit(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._missing(request)
        form = await request.form()
        action = str(form.get("action") or "")
        email = str(form.get("email") or "").strip() or None
        name = str(form.get("name") or "").strip() or None
        try:
            if action == "pay":
                with self.sim.burst():
                    checkout.pay(self.sim, session["id"], email=email, name=name)
            elif action == "delay":
                outcome = str(form.get("delayed_outcome") or "succeeded")
                checkout.pay_later(self.sim, session["id"], email=email, name=name, outcome=outcome)
            elif action == "decline":
                checkout.decline(self.sim, session["id"], email=email, name=name)
                self.sim.save()
                return self._render(
                    session, error="Your card was declined. Try again.", email=email
                )
            else:
                return self._render(session, error="Choose Pay, Decline or the delayed method.")
        except errors.ApiError as exc:
            return self._render(session, error=exc.message, status=409)
        self.sim.save()
        target = checkout.success_url(session)
        if target is None:
            return self._render(session)
        return RedirectResponse(target, status_code=303)

    def _session(self, request: Request) -> Obj | None:
        try:
            return checkout.get_session(self.sim, request.path_params["session_id"])
        except errors.ApiError:
            return None

    def _missing(self, request: Request) -> Response:
        html = (
            _environment()
            .get_template("checkout.html")
            .render(
                title="This checkout page does not exist",
                session_id=request.path_params["session_id"],
            )
        )
        return HTMLResponse(html, status_code=404)

    def _render(
        self, session: Obj, *, error: str | None = None, email: str | None = None, status: int = 200
    ) -> Response:
        currency = session["currency"]
        items = []
        interval = None
        for item in self.sim.state.line_items.get(session["id"], []):
            price = item["price"]
            interval = interval or _interval(price)
            items.append(
                {
                    "description": item["description"],
                    "quantity": item["quantity"],
                    "unit": format_amount(price["unit_amount"], currency),
                    "interval": _interval(price),
                    "amount": format_amount(item["amount_total"], currency),
                }
            )
        context: dict[str, Any] = {
            "title": "Subscribe" if session["mode"] == "subscription" else "Pay",
            "session_id": session["id"],
            "items": items,
            "total": format_amount(session["amount_total"], currency),
            "interval": interval,
            "error": error,
            "email": email or self._email(session),
            "can_pay": session["status"] == "open",
            "can_delay": session["mode"] == "payment",
            "back_url": session["cancel_url"] if session["status"] == "open" else None,
            "next_url": None,
            "notice": None,
            "notice_kind": "info",
        }
        context.update(self._status_notice(session))
        html = _environment().get_template("checkout.html").render(**context)
        return HTMLResponse(html, status_code=status)

    def _email(self, session: Obj) -> str:
        if session["customer_email"]:
            return str(session["customer_email"])
        if session["customer"]:
            customer = self.sim.state.collection("customer").get(session["customer"])
            if customer and customer["email"]:
                return str(customer["email"])
        return ""

    def _status_notice(self, session: Obj) -> dict[str, Any]:
        status, paid = session["status"], session["payment_status"]
        if status == "expired":
            return {"notice": "This checkout session has expired.", "notice_kind": "bad"}
        if status != "complete":
            return {}
        next_url = checkout.success_url(session)
        if paid == "paid":
            return {"notice": "Payment complete.", "notice_kind": "ok", "next_url": next_url}
        if paid == "no_payment_required":
            notice = "Subscribed: nothing to pay today."
            return {"notice": notice, "notice_kind": "ok", "next_url": next_url}
        if session["id"] in self.sim.state.settlements:
            notice = "Payment processing: the bank debit settles in the background."
            return {"notice": notice, "notice_kind": "info", "next_url": next_url}
        return {"notice": "The delayed payment failed.", "notice_kind": "bad", "next_url": next_url}

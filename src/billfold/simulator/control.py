"""JSON control routes under ``/_sim``: what a test does instead of a browser or a card network.

    POST /_sim/sessions/{id}/pay       {"email"?, "name"?}            -> {"session", "redirect_url"}
    POST /_sim/sessions/{id}/decline   {"email"?, "name"?}            -> {"session",
                                                                          "payment_intent"}
    POST /_sim/sessions/{id}/delay     {"outcome"?, "settle_after_seconds"?, "manual"?, ...}
                                                                      -> {"session", "redirect_url"}
    POST /_sim/sessions/{id}/settle    {"outcome"?}                   -> {"session"}
    POST /_sim/disputes                {"charge" | "payment_intent", "amount"?, "reason"?}
                                                                      -> dispute
    POST /_sim/disputes/{id}/close     {"status": "won" | "lost"}     -> dispute
    POST /_sim/subscriptions/{id}/renew {"outcome": "paid" | "failed"} -> subscription
    POST /_sim/customers/{id}/fail_next_payment {"count"?: 1, "decline_code"?: "generic_decline"}
                                                  -> {"customer", "fail_next_payments", ...}
    POST /_sim/invoices/{id}/attempt                                  -> invoice
    POST /_sim/refunds/{id}/fail       {"failure_reason"?}            -> refund
    GET  /_sim/chaos                                                  -> chaos settings
    POST /_sim/chaos                   {any chaos field}              -> chaos settings
    GET  /_sim/deliveries              ?event_id=&type=&status=       -> {"data", "counts"}
    POST /_sim/events/{id}/resend                                     -> {"data": deliveries}
    POST /_sim/flush                   {"timeout"?: 10}               -> {"settled", "counts"}
    POST /_sim/reset                                                  -> {"reset": true}

``renew`` ends a subscription's current period now (for a subscription without a test clock;
``failed`` declines that renewal's first attempt). ``fail_next_payment`` declines the next
``count`` charges of a customer whatever its card (renewals, retries, ``invoices.pay``; 0 clears
it). ``attempt`` runs an open invoice's next payment attempt now, as a dunning retry would.
``flush`` waits until every test clock that is advancing is ready, then until every delivery is
settled. Each action is one burst (see ``ChaosSettings.same_second``). Errors answer in Stripe's
error shape, with the same status codes as the API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billfold.simulator import (
    checkout,
    clocks,
    disputes,
    errors,
    payment_methods,
    refunds,
    subscriptions,
)
from billfold.simulator.objects import Obj
from billfold.simulator.service import DASHBOARD, Simulator

Endpoint = Callable[[Request], Awaitable[Response]]


class Control:
    def __init__(self, sim: Simulator, *, flush_timeout: float = 10.0) -> None:
        self.sim = sim
        self.flush_timeout = flush_timeout

    def routes(self) -> list[Route]:
        def route(path: str, endpoint: Endpoint, method: str = "POST") -> Route:
            return Route(f"/_sim{path}", _errors_as_json(self.sim, endpoint), methods=[method])

        return [
            route("/sessions/{id}/pay", self.pay),
            route("/sessions/{id}/decline", self.decline),
            route("/sessions/{id}/delay", self.delay),
            route("/sessions/{id}/settle", self.settle),
            route("/disputes", self.open_dispute),
            route("/disputes/{id}/close", self.close_dispute),
            route("/subscriptions/{id}/renew", self.renew),
            route("/customers/{id}/fail_next_payment", self.fail_next_payment),
            route("/invoices/{id}/attempt", self.attempt),
            route("/refunds/{id}/fail", self.fail_refund),
            route("/chaos", self.get_chaos, "GET"),
            route("/chaos", self.set_chaos),
            route("/deliveries", self.deliveries, "GET"),
            route("/events/{id}/resend", self.resend),
            route("/flush", self.flush),
            route("/reset", self.reset),
        ]

    async def pay(self, request: Request) -> Response:
        body = await _body(request)
        session = checkout.pay(
            self.sim,
            request.path_params["id"],
            email=_text(body, "email"),
            name=_text(body, "name"),
        )
        return self._done({"session": session, "redirect_url": checkout.success_url(session)})

    async def decline(self, request: Request) -> Response:
        body = await _body(request)
        session_id = request.path_params["id"]
        intent = checkout.decline(
            self.sim, session_id, email=_text(body, "email"), name=_text(body, "name")
        )
        session = self.sim.get("checkout.session", session_id)
        return self._done({"session": session, "payment_intent": intent})

    async def delay(self, request: Request) -> Response:
        body = await _body(request)
        settle_after = _number(body, "settle_after_seconds")
        if body.get("manual") is True:
            settle_after = -1.0
        session = checkout.pay_later(
            self.sim,
            request.path_params["id"],
            email=_text(body, "email"),
            name=_text(body, "name"),
            outcome=_text(body, "outcome") or "succeeded",
            settle_after=settle_after,
        )
        return self._done({"session": session, "redirect_url": checkout.success_url(session)})

    async def settle(self, request: Request) -> Response:
        body = await _body(request)
        session = checkout.settle(self.sim, request.path_params["id"], _text(body, "outcome"))
        return self._done({"session": session})

    async def open_dispute(self, request: Request) -> Response:
        body = await _body(request)
        amount = body.get("amount")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
            raise errors.invalid("amount must be an integer in minor units", param="amount")
        dispute = disputes.open_dispute(
            self.sim,
            charge_id=_text(body, "charge"),
            payment_intent_id=_text(body, "payment_intent"),
            amount=amount,
            reason=_text(body, "reason") or "fraudulent",
        )
        return self._done(dispute)

    async def close_dispute(self, request: Request) -> Response:
        body = await _body(request)
        status = _text(body, "status")
        if status is None:
            raise errors.parameter_missing("status")
        return self._done(
            disputes.close_dispute(self.sim, request.path_params["id"], status=status)
        )

    async def renew(self, request: Request) -> Response:
        body = await _body(request)
        subscription = subscriptions.renew_now(
            self.sim, request.path_params["id"], outcome=_text(body, "outcome") or "paid"
        )
        return self._done(subscription)

    async def fail_next_payment(self, request: Request) -> Response:
        body = await _body(request)
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int):
            raise errors.invalid("count must be an integer", param="count")
        answer = payment_methods.fail_next_payment(
            self.sim,
            request.path_params["id"],
            count=count,
            decline_code=_text(body, "decline_code") or "generic_decline",
        )
        return self._done(answer)

    async def attempt(self, request: Request) -> Response:
        invoice = self.sim.get("invoice", request.path_params["id"])
        if invoice["status"] != "open":
            raise errors.invalid(
                f"Invoice {invoice['id']} is {invoice['status']}; only open invoices are "
                "attempted.",
                param="invoice",
            )
        with self.sim.for_customer(invoice["customer"]):
            subscriptions.collect(self.sim, invoice, origin=DASHBOARD)
        return self._done(invoice)

    async def fail_refund(self, request: Request) -> Response:
        body = await _body(request)
        refund = refunds.fail(
            self.sim,
            request.path_params["id"],
            failure_reason=_text(body, "failure_reason") or "expired_or_canceled_card",
        )
        return self._done(refund)

    async def get_chaos(self, request: Request) -> Response:
        return JSONResponse(self.sim.deliverer.chaos.to_json())

    async def set_chaos(self, request: Request) -> Response:
        body = await _body(request)
        try:
            chaos = self.sim.deliverer.chaos.updated(body)
        except (TypeError, ValueError) as exc:
            raise errors.invalid(str(exc)) from exc
        self.sim.deliverer.set_chaos(chaos)
        return JSONResponse(chaos.to_json())

    async def deliveries(self, request: Request) -> Response:
        query = request.query_params
        wanted = {
            "event_id": query.get("event_id"),
            "event_type": query.get("type"),
            "status": query.get("status"),
        }
        data = [
            delivery.to_json()
            for delivery in self.sim.state.deliveries
            if all(v is None or getattr(delivery, k) == v for k, v in wanted.items())
        ]
        return JSONResponse({"data": data, "counts": self.sim.deliverer.counts()})

    async def resend(self, request: Request) -> Response:
        event = self.sim.state.events.get(request.path_params["id"])
        if event is None:
            raise errors.resource_missing("event", request.path_params["id"])
        created = self.sim.deliverer.enqueue(event, chaos=False)
        return self._done({"data": [d.to_json() for d in created]})

    async def flush(self, request: Request) -> Response:
        body = await _body(request)
        timeout = _number(body, "timeout")
        timeout = self.flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.sim.ensure_background()
        while clocks.advancing(self.sim) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        left = max(0.0, deadline - time.monotonic())
        settled = not clocks.advancing(self.sim) and await self.sim.deliverer.flush(left)
        answer = {"settled": settled, "counts": self.sim.deliverer.counts()}
        return JSONResponse(answer, status_code=200 if settled else 504)

    async def reset(self, request: Request) -> Response:
        self.sim.reset()
        return JSONResponse({"reset": True})

    def _done(self, answer: Obj) -> Response:
        self.sim.save()
        return JSONResponse(answer)


def _errors_as_json(sim: Simulator, endpoint: Endpoint) -> Endpoint:
    async def guarded(request: Request) -> Response:
        try:
            with sim.burst():
                return await endpoint(request)
        except errors.ApiError as exc:
            sim.save()
            return JSONResponse(exc.body(), status_code=exc.status)

    return guarded


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise errors.invalid("The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise errors.invalid("The body must be a JSON object.")
    return data


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.invalid(f"{key} must be a string", param=key)
    return value


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.invalid(f"{key} must be a number", param=key)
    return float(value)

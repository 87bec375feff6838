"""What the demo shop's time controls do in ``billfold dev``: drive Stripe's test clock and cards.

Stripe moves time for a customer only when that customer was created on a test clock, so in
``billfold dev`` the demo account's Stripe customer is made on one (named ``billfold dev``) before
its first checkout, and linked to the account through billfold's API. The controls then talk to
the simulator as a developer's script talks to Stripe in test mode, over its API with the secret
key (form-encoded, as the SDK sends it):

- advance the clock (a day, a month): Stripe runs what the new time brings (renewals, retries,
  the end of a canceled period) and delivers the events; then billfold is asked to sync the
  account, as an application may after an action, so the page shows the outcome at once;
- make the next renewal fail: the card on file becomes Stripe's ``pm_card_chargeCustomerFail``
  (attaches, then declines every charge), so the renewal and Stripe's retries fail until...
- pay with a new card: a working card becomes the default and pays the open invoices, as the
  customer would on Stripe's hosted invoice page.

billfold's own clock in ``billfold dev`` runs as far ahead as the test clock (see ``dev``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

CLOCK_NAME = "billfold dev"
FAILING_CARD = "pm_card_chargeCustomerFail"
WORKING_CARD = "pm_card_visa"
DAY = 24 * 60 * 60
LIVE = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")


class ControlError(Exception):
    """The simulator refused (its message, as Stripe words it) or did not answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorAccess:
    """Where ``billfold dev``'s Stripe simulator is, and its secret key."""

    base_url: str
    secret_key: str
    transport: httpx.AsyncBaseTransport | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockState:
    """What the time controls show: the customer's test clock, its card, its open invoices."""

    clock_id: str | None
    frozen_time: int | None
    status: str | None
    card: str | None = None
    card_declines: bool = False
    open_invoices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.clock_id is not None and self.frozen_time is not None


def one_month_after(moment: int) -> int:
    """``moment`` plus one calendar month (the 31st becomes the month's last day), as Stripe
    counts a monthly period."""
    when = dt.datetime.fromtimestamp(moment, dt.UTC)
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    day = min(when.day, calendar.monthrange(year, month)[1])
    return int(when.replace(year=year, month=month, day=day).timestamp())


class SimulatorControls:
    def __init__(self, access: SimulatorAccess, *, flush_timeout: float = 30.0) -> None:
        self.flush_timeout = flush_timeout
        self._http = httpx.AsyncClient(
            base_url=access.base_url.rstrip("/"),
            transport=access.transport,
            headers={"Authorization": f"Bearer {access.secret_key}"},
            timeout=flush_timeout + 10,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        try:
            response = await self._http.request(method, path, data=data, params=params)
        except httpx.HTTPError as exc:
            raise ControlError(
                f"The Stripe simulator did not answer ({type(exc).__name__})."
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not response.is_success:
            error = body.get("error") if isinstance(body, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise ControlError(
                str(message or f"The Stripe simulator answered {response.status_code}.")
            )
        return body

    # --- setting up -------------------------------------------------------------------------------

    async def new_customer_on_clock(self, *, email: str, name: str) -> str:
        """A test clock at the current time, and a customer on it; the customer's id."""
        clock = await self._call(
            "POST",
            "/v1/test_helpers/test_clocks",
            data={"frozen_time": str(int(time.time())), "name": CLOCK_NAME},
        )
        customer = await self._call(
            "POST",
            "/v1/customers",
            data={"email": email, "name": name, "test_clock": clock["id"]},
        )
        return str(customer["id"])

    # --- reading ----------------------------------------------------------------------------------

    async def state(self, customer_id: str | None) -> ClockState:
        if not customer_id:
            return ClockState(clock_id=None, frozen_time=None, status=None)
        customer = await self._call("GET", f"/v1/customers/{customer_id}")
        clock_id = customer.get("test_clock")
        if not isinstance(clock_id, str):
            return ClockState(clock_id=None, frozen_time=None, status=None)
        clock = await self._call("GET", f"/v1/test_helpers/test_clocks/{clock_id}")
        subscriptions = await self._subscriptions(customer_id)
        method_id = next(
            (s["default_payment_method"] for s in subscriptions if s["default_payment_method"]),
            None,
        ) or (customer.get("invoice_settings") or {}).get("default_payment_method")
        card, declines = None, False
        if isinstance(method_id, str):
            method = await self._call("GET", f"/v1/payment_methods/{method_id}")
            details = method.get("card") or {}
            card = f"{str(details.get('brand', 'card')).title()} ending {details.get('last4')}"
            declines = details.get("last4") == "0341"  # Stripe's chargeCustomerFail test card
        invoices = await self._call(
            "GET", "/v1/invoices", params={"customer": customer_id, "status": "open"}
        )
        return ClockState(
            clock_id=clock_id,
            frozen_time=int(clock["frozen_time"]),
            status=str(clock["status"]),
            card=card,
            card_declines=declines,
            open_invoices=[
                {"id": i["id"], "amount_due": i["amount_due"], "currency": i["currency"]}
                for i in invoices["data"]
            ],
        )

    async def _subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        found = await self._call(
            "GET", "/v1/subscriptions", params={"customer": customer_id, "status": "all"}
        )
        return [s for s in found["data"] if s["status"] in LIVE]

    # --- acting -----------------------------------------------------------------------------------

    async def advance(self, clock_id: str, *, to: int) -> None:
        """Move the clock to ``to`` and wait until Stripe has run and delivered what it brings."""
        await self._call(
            "POST",
            f"/v1/test_helpers/test_clocks/{clock_id}/advance",
            data={"frozen_time": str(to)},
        )
        await self.flush()

    async def flush(self) -> None:
        response = await self._http.post("/_sim/flush", json={"timeout": self.flush_timeout})
        if response.status_code != 200:
            raise ControlError("Stripe's events are still on their way; reload in a moment.")

    async def use_card(self, customer_id: str, token: str) -> str:
        """Attach a test card and make it what the customer's invoices are charged to."""
        method = await self._call(
            "POST", f"/v1/payment_methods/{token}/attach", data={"customer": customer_id}
        )
        method_id = str(method["id"])
        await self._call(
            "POST",
            f"/v1/customers/{customer_id}",
            data={"invoice_settings[default_payment_method]": method_id},
        )
        for subscription in await self._subscriptions(customer_id):
            await self._call(
                "POST",
                f"/v1/subscriptions/{subscription['id']}",
                data={"default_payment_method": method_id},
            )
        return method_id

    async def fail_renewals(self, customer_id: str) -> None:
        """The card on file now declines: the next renewal fails, and so do Stripe's retries."""
        await self.use_card(customer_id, FAILING_CARD)
        await self.flush()

    async def pay_with_new_card(self, customer_id: str) -> int:
        """A working card becomes the default and pays every open invoice; how many it paid."""
        method_id = await self.use_card(customer_id, WORKING_CARD)
        invoices = await self._call(
            "GET", "/v1/invoices", params={"customer": customer_id, "status": "open"}
        )
        for invoice in invoices["data"]:
            await self._call(
                "POST", f"/v1/invoices/{invoice['id']}/pay", data={"payment_method": method_id}
            )
        await self.flush()
        return len(invoices["data"])

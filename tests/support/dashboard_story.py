"""A scripted run for the dashboard's tests (API and browser): purchases two days apart, an ignored
event, an order needing attention, and events left received, failed and dead.

Every figure it leaves is known exactly; see :data:`EXPECTED`.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi.testclient import TestClient

from billfold.bootstrap import Services
from billfold.domain import errors
from billfold.domain.orders import LineItem
from tests.builders import stripe_events as se
from tests.support.app import deliver, event_status, use_stripe

DAY: Final = 86_400
T: Final = 1_800_000_000
"""The clock at the second purchase: 08:00 UTC."""
D0: Final = T - T % DAY
NOW: Final = T + 4_000
"""The clock when the figures are read."""


class StripeDown:
    def checkout_line_items(self, session_id: str) -> list[LineItem]:
        raise errors.StripeUnavailable("Could not list the line items: Stripe is down")


def _purchase(account: str, package: str, amount: int, *, latency: int, now: int) -> Any:
    return se.checkout_session_completed(
        metadata={"billfold_account": account, "billfold_package": package},
        amount_total=amount,
        event_created=now - latency,
    )


def _needs_stripe(account: str) -> Any:
    """A payment without its package: billfold needs its line items from Stripe."""
    return se.checkout_session_completed(amount_total=1234, metadata={"billfold_account": account})


def script(client: TestClient, services: Services, clock: Any) -> None:
    """Run the story; ``clock`` is the app's FakeClock (moved here, left at :data:`NOW`)."""
    clock.now = T - 2 * DAY
    event = _purchase("dash_a", "starter", 499, latency=30, now=clock.now)
    assert deliver(client, event).json()["status"] == "processed"
    clock.now = T
    event = _purchase("dash_b", "professional", 2999, latency=120, now=clock.now)
    assert deliver(client, event).json()["status"] == "processed"
    clock.now = T + 60
    ignored = se.any_event("customer.created", se.customer())
    assert deliver(client, ignored).json()["status"] == "ignored"
    clock.now = T + 120
    odd = _purchase("dash_c", "no_such_package", 777, latency=5, now=clock.now)
    assert deliver(client, odd).status_code == 200
    use_stripe(services, StripeDown())
    clock.now = T + 180
    dead = _needs_stripe("dash_d")
    deliver(client, dead)
    assert event_status(services, dead["id"]) == "received"
    services.inbox.process(dead["id"])
    clock.now = T + 180 + 3_600
    services.inbox.process(dead["id"])
    assert event_status(services, dead["id"]) == "dead"
    clock.now = T + 3_800
    failed = _needs_stripe("dash_e")
    deliver(client, failed)
    services.inbox.process(failed["id"])
    assert event_status(services, failed["id"]) == "failed"
    clock.now = T + 3_900
    waiting = _needs_stripe("dash_f")
    deliver(client, waiting)
    assert event_status(services, waiting["id"]) == "received"
    clock.now = NOW


SETTINGS: Final = {"worker_max_attempts": 2}
"""What the app needs for the story: an event is dead at its second failure."""

"""What the service layer tells the outside about its work, for metrics: the ``Observer`` port.

The service layer calls these hooks on its hot paths (every webhook, every spend), so an observer
must answer in a few microseconds and never raise; it never receives an account id (metric labels
stay few). ``NullObserver`` is the default (library mode, tests); the Prometheus observer is in
``billfold.adapters.metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Observer(Protocol):
    def event_received(self, event_type: str, *, duplicate: bool) -> None:
        """A verified webhook delivery answered: stored, or a duplicate of a stored one."""
        ...

    def event_processed(self, event_type: str, outcome: str, seconds: float) -> None:
        """An event's processing ended with ``outcome`` (processed, ignored, failed, dead, or
        deferred: left for the worker, as it needs Stripe) after ``seconds``."""
        ...

    def payment_credited(self, seconds: float) -> None:
        """A payment event committed to the ledger ``seconds`` after Stripe created it."""
        ...

    def ledger_write(self, operation: str, unit: str, outcome: str) -> None:
        """A spend, hold, capture or release answered: ``ok``, ``insufficient`` (402) or
        ``refused`` (any other error)."""
        ...

    def notification_finished(self, notification_type: str, outcome: str) -> None:
        """A delivery attempt of a notification was recorded: ``delivered`` (every endpoint that
        wants it has it), ``retried`` (it failed; another attempt is scheduled) or ``dead`` (the
        last attempt of the schedule failed)."""
        ...


class NullObserver:
    """Observes nothing."""

    def event_received(self, event_type: str, *, duplicate: bool) -> None:
        return None

    def event_processed(self, event_type: str, outcome: str, seconds: float) -> None:
        return None

    def payment_credited(self, seconds: float) -> None:
        return None

    def ledger_write(self, operation: str, unit: str, outcome: str) -> None:
        return None

    def notification_finished(self, notification_type: str, outcome: str) -> None:
        return None


PAYMENT_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
    }
)
"""Event types whose processing may credit a payment: their latency from Stripe is observed."""


@dataclass(frozen=True, slots=True)
class Gauge:
    """A value read at scrape time (from the database): the same whichever process answers."""

    name: str
    help: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


class Metrics(Observer, Protocol):
    """The observer that also keeps request timings and renders everything for a scrape."""

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """A request answered; ``route`` is the route's template (``/v1/accounts/{account_id}``),
        never the raw path."""
        ...

    def render(self, gauges: Sequence[Gauge]) -> tuple[bytes, str]:
        """The Prometheus text exposition (every process's counters, plus ``gauges``) and its
        content type."""
        ...

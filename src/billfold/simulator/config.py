"""Settings of the Stripe simulator: where events go, how they are signed, how badly they travel,
which API version they are written in, and how Billing retries a failed renewal."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API_VERSION = "2026-10-28.endive"
"""The API version written into events, as Stripe writes the account's default version."""

OLD_API_VERSION = "2024-06-20"
"""The last version before ``2025-03-31.basil`` moved subscription and invoice fields."""

_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


def valid_api_version(version: str) -> bool:
    """``2024-06-20`` or ``2026-10-28.endive``: the shapes Stripe names its versions with."""
    return bool(_VERSION.match(version))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosSettings:
    """How delivery misbehaves, the way Stripe's really does. Every draw comes from ``seed``.

    - ``duplicate_rate``: chance that an event is delivered twice, both copies sent at once.
    - ``delay_seconds``: a random delay in ``[low, high]`` before an event's first attempt.
    - ``reorder``: events that become due together are delivered in a shuffled order that is never
      the original one (so ``completed`` arrives after ``async_payment_succeeded``); events are
      gathered for ``reorder_window_seconds`` before they are shuffled.
    - ``drop_first_attempt_rate``: chance that the first attempt is never sent and counts as a
      failure (a timeout), so the event arrives only with a retry.
    - ``drop_rate``: chance that an event is never delivered at all (every copy fails for good, as
      when an endpoint was down for longer than Stripe retries): only the Events API has it.
    - ``same_second``: every event emitted in one burst (one API request, one control action, one
      timer, one step of a test clock: a renewal chain, say) carries the ``created`` of the
      burst's first event, so a receiver cannot order them by ``created``.
    """

    duplicate_rate: float = 0.0
    delay_seconds: tuple[float, float] = (0.0, 0.0)
    reorder: bool = False
    reorder_window_seconds: float = 0.1
    drop_first_attempt_rate: float = 0.0
    drop_rate: float = 0.0
    same_second: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("duplicate_rate", "drop_first_attempt_rate", "drop_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate!r}")
        low, high = self.delay_seconds
        if low < 0 or high < low:
            raise ValueError(
                f"delay_seconds must be (low, high) with 0 <= low <= high: {low, high}"
            )
        if self.reorder_window_seconds < 0:
            raise ValueError("reorder_window_seconds must not be negative")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["delay_seconds"] = list(self.delay_seconds)
        return data

    def updated(self, changes: dict[str, Any]) -> ChaosSettings:
        """Return a copy with ``changes`` (as JSON) applied; raise ValueError on a bad one."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown chaos setting(s): {', '.join(unknown)}")
        values = dict(changes)
        if "delay_seconds" in values:
            delay = values["delay_seconds"]
            if isinstance(delay, int | float):
                delay = (delay, delay)
            if not (isinstance(delay, list | tuple) and len(delay) == 2):
                raise ValueError("delay_seconds must be a number or a [low, high] pair")
            values["delay_seconds"] = (float(delay[0]), float(delay[1]))
        for name in (
            "duplicate_rate",
            "drop_first_attempt_rate",
            "drop_rate",
            "reorder_window_seconds",
        ):
            if name in values:
                values[name] = _number(name, values[name])
        for name in ("reorder", "same_second"):
            if name in values and not isinstance(values[name], bool):
                raise ValueError(f"{name} must be true or false")
        if "seed" in values and not (values["seed"] is None or _is_int(values["seed"])):
            raise ValueError("seed must be an integer or null")
        return dataclasses.replace(self, **values)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff for webhook deliveries: attempt n waits ``base * factor**(n-1)``."""

    base_seconds: float = 0.05
    factor: float = 2.0
    max_seconds: float = 5.0
    max_attempts: int = 8
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_seconds < 0 or self.factor < 1 or self.max_seconds < 0:
            raise ValueError("retry delays must be non-negative and must not shrink")

    def backoff(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th failed attempt."""
        return min(self.max_seconds, self.base_seconds * self.factor ** (failed_attempts - 1))


DUNNING_ACTIONS = ("canceled", "unpaid", "past_due")


@dataclass(frozen=True, slots=True, kw_only=True)
class DunningPolicy:
    """How Billing retries an automatically collected invoice whose payment failed.

    A fixed schedule in the spirit of Smart Retries: after the first failed attempt, retry
    ``retry_after_days[0]`` days later, then ``retry_after_days[1]`` days after that retry, and
    so on (each counted from the previous attempt). When the last retry fails the invoice's
    ``next_payment_attempt`` is null and its subscription becomes ``subscription_status``:
    ``canceled`` (``customer.subscription.deleted``, the default), ``unpaid``, or left
    ``past_due``. ``mark_uncollectible`` also marks such an invoice uncollectible.
    """

    retry_after_days: tuple[int, ...] = (3, 5, 7)
    subscription_status: str = "canceled"
    mark_uncollectible: bool = False

    def __post_init__(self) -> None:
        if any(days < 1 for days in self.retry_after_days):
            raise ValueError("retry_after_days must be whole days of at least 1")
        if self.subscription_status not in DUNNING_ACTIONS:
            raise ValueError(f"subscription_status must be one of {', '.join(DUNNING_ACTIONS)}")

    @property
    def attempts(self) -> int:
        """How many times an invoice is tried in all: the first attempt and every retry."""
        return 1 + len(self.retry_after_days)


PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorConfig:
    """Everything the simulator needs; built by the caller, never read from the environment.

    ``public_base_url`` is the simulator's own address as a browser sees it (with the mount prefix,
    e.g. ``http://127.0.0.1:8000/stripe``); when None it is taken from each request.
    ``api_keys`` are the secret keys accepted; None accepts any ``sk_test_``/``rk_test_`` key.
    ``webhook_transport`` lets a test deliver into an ASGI app in-process
    (``httpx.ASGITransport``) instead of over the network.
    ``async_settle_seconds`` is how long a delayed payment method takes to settle by itself
    (None: only when asked through the control route).
    """

    public_base_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str = "whsec_simulator"  # noqa: S105 - a test-mode default, not a secret
    api_keys: tuple[str, ...] | None = None
    chaos: ChaosSettings = ChaosSettings()
    retry: RetryPolicy = RetryPolicy()
    delivery_concurrency: int = 1
    async_settle_seconds: float | None = 2.0
    session_lifetime_seconds: int = 24 * 60 * 60
    state_path: Path | None = None
    api_version: str = API_VERSION
    webhook_transport: httpx.AsyncBaseTransport | None = None
    clock_advance_seconds: float = 0.5
    dunning: DunningPolicy = DunningPolicy()
    portal_proration_behavior: str = "create_prorations"

    def __post_init__(self) -> None:
        if not self.webhook_secret.startswith("whsec_"):
            raise ValueError("webhook_secret must start with whsec_")
        if self.delivery_concurrency < 1:
            raise ValueError("delivery_concurrency must be at least 1")
        if self.public_base_url is not None and not self.public_base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError("public_base_url must be an http(s) URL")
        if not valid_api_version(self.api_version):
            raise ValueError(f"api_version must look like 2024-06-20 or {API_VERSION}")
        if self.clock_advance_seconds < 0:
            raise ValueError("clock_advance_seconds must not be negative")
        if self.portal_proration_behavior not in PRORATION_BEHAVIORS:
            raise ValueError(
                f"portal_proration_behavior must be one of {', '.join(PRORATION_BEHAVIORS)}"
            )

    def accepts_key(self, key: str) -> bool:
        if self.api_keys is not None:
            return key in self.api_keys
        return key.startswith(("sk_test_", "rk_test_")) and len(key) > len("sk_test_")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    return float(value)

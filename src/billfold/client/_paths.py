"""The API's paths, with every id quoted as one path segment, and small pieces both clients use."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote


def _segment(value: str) -> str:
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


class P:
    """``/v1/...`` paths."""

    @staticmethod
    def account(account_id: str, tail: str = "") -> str:
        return _join(f"/v1/accounts/{_segment(account_id)}", tail)

    @staticmethod
    def hold(hold_id: str, tail: str = "") -> str:
        return _join(f"/v1/holds/{_segment(hold_id)}", tail)

    @staticmethod
    def session(session_id: str) -> str:
        return f"/v1/checkout/sessions/{_segment(session_id)}/fulfill"

    @staticmethod
    def event(event_id: str, tail: str = "") -> str:
        return _join(f"/v1/events/{_segment(event_id)}", tail)

    @staticmethod
    def order(order_id: str, tail: str = "") -> str:
        return _join(f"/v1/orders/{_segment(order_id)}", tail)

    @staticmethod
    def reconciliation_run(run_id: str) -> str:
        return f"/v1/reconciliation/runs/{_segment(run_id)}"


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=_HasId)


class Unset(enum.Enum):
    """A field left out of a request (``None`` would clear it)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


def account_fields(
    email: str | Unset | None,
    stripe_customer_id: str | Unset | None,
    metadata: Mapping[str, str] | Unset | None,
) -> dict[str, Any]:
    given: dict[str, Any] = {
        "email": email,
        "stripe_customer_id": stripe_customer_id,
        "metadata": dict(metadata) if isinstance(metadata, Mapping) else metadata,
    }
    return {k: v for k, v in given.items() if v is not UNSET}

"""Amounts as people read them (``1099, "usd"`` -> ``$10.99``), with integer arithmetic only, and
the integer proration Stripe's invoices use."""

from __future__ import annotations

from datetime import UTC, datetime

from billfold.domain.money import format_money


def format_amount(amount: int, currency: str) -> str:
    """``1099, "usd"`` -> ``$10.99``: billfold's one money formatter (integer arithmetic only,
    zero- and three-decimal currencies included)."""
    return format_money(amount, currency)


def prorate(amount: int, part: int, whole: int) -> int:
    """``amount * part / whole`` rounded half away from zero, in integers: the share of a period's
    price that ``part`` seconds of its ``whole`` seconds are worth."""
    if whole <= 0:
        return 0
    magnitude = (2 * abs(amount) * part + whole) // (2 * whole)
    return magnitude if amount >= 0 else -magnitude


def day(timestamp: int) -> str:
    """``Mar 3, 2027``: how Stripe dates a proration line's description."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return f"{moment:%b} {moment.day}, {moment.year}"

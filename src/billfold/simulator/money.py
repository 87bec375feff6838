"""Amounts as people read them (``1099, "usd"`` -> ``$10.99``), with integer arithmetic only, and
the integer proration Stripe's invoices use."""

from __future__ import annotations

from datetime import UTC, datetime

# ISO 4217 exponents that are not 2, for the currencies Stripe supports.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv"}
    | {"xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "cad": "CA$", "aud": "A$"}


def format_amount(amount: int, currency: str) -> str:
    """``1099, "usd"`` -> ``$10.99``: integer arithmetic only, honouring zero-decimal currencies."""
    code = currency.lower()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**exponent)
    number = f"{major:,}" + (f".{minor:0{exponent}d}" if exponent else "")
    symbol = SYMBOLS.get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code.upper()}"


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

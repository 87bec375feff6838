"""Money and amounts: currencies' minor units, and integer minor units to text and back.

The one place that knows how many decimals a currency has and how an amount is written for people
(the demo shop, the admin view, the CLI, the simulator's pages). Integer arithmetic only
(``divmod`` by ``10**decimals``): no float ever touches an amount, and zero-decimal (JPY) and
three-decimal (KWD) currencies come out right.
"""

from __future__ import annotations

import re
from typing import Final

# Stripe's zero-decimal and three-decimal currencies; every other currency has two decimals.
ZERO_DECIMAL_CURRENCIES: Final = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL_CURRENCIES: Final = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def currency_decimals(currency: str) -> int:
    """The decimals of Stripe's minor unit of ``currency``: ``usd`` 2, ``jpy`` 0, ``kwd`` 3."""
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "cad": "CA$", "aud": "A$"}
_MAJOR = re.compile(r"^(?P<whole>\d{1,3}(?:,\d{3})+|\d+)?(?:\.(?P<fraction>\d+))?$")


def format_number(amount: int, decimals: int) -> str:
    """``123456, 2`` -> ``1,234.56``; ``-5, 0`` -> ``-5``."""
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**decimals)
    text = f"{major:,}"
    if decimals:
        text += f".{minor:0{decimals}d}"
    return sign + text


def format_money(amount: int, currency: str) -> str:
    """``499, "usd"`` -> ``$4.99``; ``500, "jpy"`` -> ``¥500``; ``1500, "kwd"`` -> ``1.500 KWD``."""
    code = currency.lower()
    number = format_number(amount, currency_decimals(code))
    symbol = SYMBOLS.get(code)
    if symbol is None:
        return f"{number} {code.upper()}"
    if number.startswith("-"):
        return f"-{symbol}{number[1:]}"
    return f"{symbol}{number}"


def format_units(amount: int, unit: str, decimals: int = 0) -> str:
    """An amount of a balance unit: ``1500 credits`` -> ``1,500 credits``, the ``usd`` wallet as
    money (``2500`` -> ``$25.00``)."""
    if decimals and decimals == currency_decimals(unit) and len(unit) == 3:
        return format_money(amount, unit)
    number = format_number(amount, decimals)
    if unit.endswith("s") and amount in (1, -1) and decimals == 0:
        return f"{number} {unit[:-1]}"
    return f"{number} {unit}"


def format_signed_units(amount: int, unit: str, decimals: int = 0) -> str:
    """Like ``format_units`` with an explicit sign: ``+500 credits``, and a true minus sign
    (U+2212) for ``-10 credits``."""
    text = format_units(abs(amount), unit, decimals)
    if amount > 0:
        return f"+{text}"
    if amount < 0:
        return f"\u2212{text}"
    return text


def parse_major(text: str, decimals: int) -> int:
    """What a person typed (``25``, ``25.5``, ``1,000.00``, ``$12``) as minor units.

    Raises ValueError with a sentence to show them when it is not an amount with at most
    ``decimals`` decimal places.
    """
    cleaned = text.strip().lstrip("$€£¥").strip()
    match = _MAJOR.match(cleaned)
    if not cleaned or match is None or (match["whole"] is None and match["fraction"] is None):
        raise ValueError("Enter an amount such as 25 or 25.00.")
    whole = int(str(match["whole"] or "0").replace(",", ""))
    fraction = str(match["fraction"] or "")
    if len(fraction) > decimals:
        if decimals == 0:
            raise ValueError("Enter a whole amount, without decimals.")
        raise ValueError(f"Enter at most {decimals} decimal places.")
    scale: int = 10**decimals
    return whole * scale + int(fraction.ljust(decimals, "0") or "0")

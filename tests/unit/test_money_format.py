"""Amounts shown to people and read back from them: integers only, any number of decimals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billfold.domain import money


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (499, "usd", "$4.99"),
        (100000, "usd", "$1,000.00"),
        (5, "usd", "$0.05"),
        (-123456, "usd", "-$1,234.56"),
        (500, "jpy", "¥500"),
        (1500, "kwd", "1.500 KWD"),
        (1999, "chf", "19.99 CHF"),
    ],
)
def test_money_is_formatted_from_minor_units(amount: int, currency: str, shown: str) -> None:
    assert money.format_money(amount, currency) == shown


@pytest.mark.parametrize(
    ("amount", "unit", "decimals", "shown"),
    [
        (1500, "credits", 0, "1,500 credits"),
        (1, "credits", 0, "1 credit"),
        (2500, "usd", 2, "$25.00"),
        (1234, "points", 2, "12.34 points"),
    ],
)
def test_balances_are_formatted_in_their_unit(
    amount: int, unit: str, decimals: int, shown: str
) -> None:
    assert money.format_units(amount, unit, decimals) == shown


def test_signed_amounts_use_a_true_minus_sign() -> None:
    assert money.format_signed_units(500, "credits") == "+500 credits"
    assert money.format_signed_units(-10, "credits") == "\u221210 credits"


@pytest.mark.parametrize(
    ("typed", "decimals", "minor"),
    [
        ("25", 2, 2500),
        ("25.5", 2, 2550),
        ("1,000.00", 2, 100000),
        ("$12", 2, 1200),
        (".5", 2, 50),
        ("500", 0, 500),
        ("1.234", 3, 1234),
    ],
)
def test_what_people_type_is_read_as_minor_units(typed: str, decimals: int, minor: int) -> None:
    assert money.parse_major(typed, decimals) == minor


@pytest.mark.parametrize(
    ("typed", "decimals", "why"),
    [
        ("12.345", 2, "at most 2"),
        ("5.5", 0, "whole amount"),
        ("abc", 2, "such as"),
        ("", 2, "such as"),
        ("1,00", 2, "such as"),
        ("1e3", 2, "such as"),
        ("-5", 2, "such as"),
    ],
)
def test_what_is_not_an_amount_is_refused_with_a_reason(
    typed: str, decimals: int, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        money.parse_major(typed, decimals)


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=4))
def test_formatting_and_reading_back_round_trip(amount: int, decimals: int) -> None:
    assert money.parse_major(money.format_number(amount, decimals), decimals) == amount

"""Identifiers: 26 Crockford base32 digits (48-bit milliseconds, 80 random bits), increasing."""

from __future__ import annotations

import re
import time

from hypothesis import given
from hypothesis import strategies as st

from billfold.domain import ids

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def digits(value: int, length: int) -> str:
    """Base32 the slow, obvious way: the reference the encoder is held to."""
    out = []
    for _ in range(length):
        out.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


@given(st.integers(min_value=0, max_value=2**48 - 1), st.integers(0, 2**80 - 1))
def test_the_encoding_is_the_milliseconds_then_the_random_part_in_crockford_digits(
    millis: int, rand: int
) -> None:
    assert ids._b32((millis << 80) | rand, 26) == digits(millis, 10) + digits(rand, 16)


def test_ids_carry_their_prefix_and_time_and_increase_within_a_millisecond() -> None:
    made = [ids.new_id("gr") for _ in range(1000)]
    assert all(re.fullmatch(r"gr_[0-9A-HJKMNP-TV-Z]{26}", i) for i in made)
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    first = 0  # its first ten digits: the milliseconds it was made at
    for c in made[0][3:13]:
        first = first * 32 + ALPHABET.index(c)
    assert abs(first - time.time_ns() // 1_000_000) < 60_000


@given(st.integers(min_value=0, max_value=2**200), st.integers(min_value=1, max_value=32))
def test_any_length_encodes_the_low_bits_like_the_reference(value: int, length: int) -> None:
    assert ids._b32(value, length) == digits(value, length)

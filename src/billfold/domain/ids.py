"""Time-ordered, prefixed identifiers (``gr_01J...``), so that sorting by id sorts by age.

Within one process ids are strictly increasing, even within one millisecond (the random part is
incremented, as monotonic ULIDs do); across processes they sort by millisecond.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: sorts like the numbers
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = [0, 0]  # millis, random


# Every 10-bit number as its two digits: an id's 26 digits are 13 lookups (base64's base32, which
# this replaces, runs in Python before 3.12 and cost three times as much).
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


def _b32(value: int, length: int) -> str:
    """The low ``5 * length`` bits of ``value`` as ``length`` Crockford base32 digits."""
    head = _ALPHABET[(value >> (5 * (length - 1))) & 31] if length % 2 else ""
    top = 5 * (length - length % 2) - 10
    return head + "".join([_PAIRS[(value >> shift) & 1023] for shift in range(top, -1, -10)])


def new_id(prefix: str) -> str:
    """``prefix_`` + 48-bit milliseconds + 80 random bits, 26 characters like a ULID."""
    millis = time.time_ns() // 1_000_000
    with _lock:
        if millis <= _last[0]:
            millis = _last[0]
            rand = (_last[1] + 1) % (1 << _RANDOM_BITS)
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to count up
        _last[0], _last[1] = millis, rand
    return f"{prefix}_{_b32((millis << _RANDOM_BITS) | rand, 26)}"

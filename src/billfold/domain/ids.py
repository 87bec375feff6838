"""Time-ordered, prefixed identifiers (``gr_01J...``), so that sorting by id sorts by age.

Within one process ids are strictly increasing, even within one millisecond (the random part is
incremented, as monotonic ULIDs do); across processes they sort by millisecond.
"""

from __future__ import annotations

import base64
import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: sorts like the numbers
# base64's base32 (RFC 4648) digit by digit to Crockford's: the encoding runs in C.
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = [0, 0]  # millis, random


def _b32(value: int, length: int) -> str:
    """``value`` as ``length`` Crockford base32 digits (``length`` at most 32)."""
    digits = base64.b32encode(value.to_bytes(20, "big")).translate(_CROCKFORD)
    return digits[32 - length :].decode()


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

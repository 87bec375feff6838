"""The admin view's login: the admin token, once, for a signed HttpOnly session cookie.

The cookie never holds the token. It holds an expiry and a random nonce, signed with an HMAC keyed
by the admin token, so that rotating the token ends every session. Forms carry a CSRF token derived
from the cookie (on top of ``SameSite=Strict``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

COOKIE = "billfold_admin"


class Sessions:
    def __init__(
        self,
        admin_token: str,
        *,
        lifetime_seconds: int = 8 * 60 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = admin_token.encode()
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock

    def _sign(self, purpose: str, message: str) -> str:
        return hmac.new(self._key, f"{purpose}\x00{message}".encode(), hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.strip().encode(), self._key)

    def new(self) -> str:
        expires = int(self._clock()) + self.lifetime_seconds
        body = f"{expires}.{secrets.token_urlsafe(18)}"
        return f"{body}.{self._sign('session', body)}"

    def valid(self, cookie: str | None) -> bool:
        if not cookie or cookie.count(".") != 2 or len(cookie) > 200:
            return False
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign("session", body).encode()):
            return False
        expires = body.partition(".")[0]
        return expires.isdigit() and int(expires) > self._clock()

    def csrf(self, cookie: str) -> str:
        return self._sign("csrf", cookie)

    def csrf_matches(self, cookie: str, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.csrf(cookie).encode())

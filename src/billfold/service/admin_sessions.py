"""The operator console's sessions: opened with the admin token, ended by signing out.

A session is a random secret the browser keeps in an HttpOnly cookie; the database keeps only a
hash of it (keyed by the admin token, so rotating the token ends every session) with its expiry,
whether it was revoked, and the name the operator signed in with (recorded with every action taken
in the session). Signing out revokes it for good: the old cookie stops working at once, in
every process serving the console.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from billfold.domain.actions import SessionRecord
from billfold.service.ports import Clock, UnitOfWorkFactory

LIFETIME: Final = 8 * 60 * 60
MAX_SECRET: Final = 200
MAX_OPERATOR: Final = 200


class AdminSessions:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        admin_token: str | None,
        *,
        lifetime_seconds: int = LIFETIME,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._key = admin_token.encode() if admin_token else None
        self.lifetime_seconds = lifetime_seconds

    @property
    def configured(self) -> bool:
        return self._key is not None

    def token_matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is the admin token (compared in constant time)."""
        if self._key is None:
            return False
        return hmac.compare_digest(candidate.strip(" \t\r\n").encode(), self._key)

    def open(self, operator: str | None = None) -> str:
        """A new session for ``operator`` (who acts in it); the secret to keep in the cookie."""
        secret = secrets.token_urlsafe(32)
        now = self._clock()
        with self._uow() as uow:
            uow.admin_sessions.insert(
                self._id(secret),
                created=now,
                expires_at=now + self.lifetime_seconds,
                operator=operator.strip()[:MAX_OPERATOR] or None if operator else None,
            )
            uow.commit()
        return secret

    def valid(self, secret: str | None) -> bool:
        return self._live(secret) is not None

    def operator(self, secret: str | None) -> str | None:
        """The name the session's operator signed in with (None: not a live session, or none
        given)."""
        found = self._live(secret)
        return found.operator if found is not None else None

    def _live(self, secret: str | None) -> SessionRecord | None:
        if self._key is None or not secret or len(secret) > MAX_SECRET:
            return None
        with self._uow() as uow:
            found = uow.admin_sessions.get(self._id(secret))
        if found is None or found.revoked_at is not None or found.expires_at <= self._clock():
            return None
        return found

    def close(self, secret: str | None) -> None:
        """End the session for good (signing out)."""
        if self._key is None or not secret or len(secret) > MAX_SECRET:
            return
        with self._uow() as uow:
            uow.admin_sessions.revoke(self._id(secret), now=self._clock())
            uow.commit()

    def csrf(self, secret: str) -> str:
        """The token every form of this session carries."""
        return self._sign("csrf", secret)

    def csrf_matches(self, secret: str, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.csrf(secret).encode())

    def _id(self, secret: str) -> str:
        return self._sign("session", secret)

    def _sign(self, purpose: str, message: str) -> str:
        assert self._key is not None
        return hmac.new(self._key, f"{purpose}\x00{message}".encode(), hashlib.sha256).hexdigest()

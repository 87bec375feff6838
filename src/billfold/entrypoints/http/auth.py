"""Who is calling: a server API key, an end user's token (JWT), or the operator's admin token.

Secrets are compared in constant time and never logged. Missing, malformed, expired or forged
credentials answer 401; credentials of the wrong kind answer 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

import jwt
from fastapi import Request

from billfold.domain import errors
from billfold.settings import Settings

Kind = Literal["server", "user", "admin"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    account_id: str | None = None  # the token's ``sub`` for an end user
    credential_id: str = ""  # a stable, non-secret id for rate limiting

    def may_see(self, account_id: str) -> bool:
        return self.kind != "user" or self.account_id == account_id


def _matches(candidate: str, secrets: list[str]) -> str | None:
    found = None
    for secret in secrets:
        if hmac.compare_digest(candidate.encode(), secret.encode()):
            found = secret
    return found


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.api_keys = settings.api_key_values
        self.admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
        self.jwt_secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self.audience = settings.jwt_audience
        self.jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None

    @property
    def may_fetch_keys(self) -> bool:
        """Whether authenticating may wait on the network (RS256 tokens, keys from a JWKS URL)."""
        return self.jwks is not None

    def authenticate(self, request: Request) -> Principal:
        return self.authenticate_header(request.headers.get("authorization"))

    def authenticate_header(self, header: str | None) -> Principal:
        """The caller named by an ``Authorization`` header's value."""
        if not header:
            raise errors.Unauthenticated(
                "Missing credentials: send Authorization: Bearer <API key, user token or admin token>."
            )
        scheme, _, token = header.partition(" ")
        token = token.strip(" \t")  # what HTTP trims (RFC 9110 OWS), nothing else
        if scheme.lower() != "bearer" or not token:
            raise errors.Unauthenticated("Malformed Authorization header: use 'Bearer <token>'.")
        if self.admin_token and _matches(token, [self.admin_token]):
            return Principal("admin", credential_id="admin")
        key = _matches(token, self.api_keys)
        if key is not None:
            return Principal("server", credential_id=f"key:{self.api_keys.index(key)}")
        if token.count(".") == 2:
            return self._user(token)
        raise errors.Unauthenticated("Unknown credentials.")

    def _user(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg == "HS256" and self.jwt_secret:
                key: object = self.jwt_secret
            elif alg == "RS256" and self.jwks is not None:
                key = self.jwks.get_signing_key_from_jwt(token).key
            else:
                raise errors.Unauthenticated(
                    "User tokens must be HS256 (or RS256 with a JWKS URL)."
                )
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=[alg],
                audience=self.audience,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise errors.Unauthenticated("The user token has expired.") from None
        except jwt.PyJWTError:
            raise errors.Unauthenticated("The user token is not valid.") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise errors.Unauthenticated("The user token has no subject.")
        return Principal("user", account_id=sub, credential_id=f"user:{sub}")


def require(principal: Principal, *kinds: Kind) -> Principal:
    if principal.kind not in kinds:
        allowed = " or ".join(kinds)
        raise errors.Forbidden(f"This route needs {allowed} credentials, not {principal.kind}.")
    return principal


def require_account(principal: Principal, account_id: str) -> None:
    """An end user may touch only their own account; others' accounts look like they do not exist."""
    if not principal.may_see(account_id):
        raise errors.Forbidden("A user token may only access its own account.")

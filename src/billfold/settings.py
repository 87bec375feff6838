"""Typed settings, read from ``BILLFOLD_*`` environment variables and validated at start-up."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from billfold.domain import errors


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """billfold's configuration. Every field is ``BILLFOLD_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="BILLFOLD_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///billfold.db"
    catalog: Path | None = None
    stripe_secret_key: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    webhook_tolerance_seconds: int = Field(default=300, ge=0, le=86_400)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    admin_token: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None

    hold_ttl_seconds: int = Field(default=900, ge=1, le=30 * 86_400)
    worker_in_process: bool = True
    worker_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    worker_lease_seconds: int = Field(default=60, ge=1, le=3600)
    worker_max_attempts: int = Field(default=8, ge=1, le=100)
    worker_backoff_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    rate_limit_checkout_per_minute: int = Field(default=30, ge=0)
    rate_limit_spend_per_minute: int = Field(default=6000, ge=0)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    ledger_batch_max: int = Field(default=256, ge=0, le=10_000)
    """Spends, holds, captures and releases written together at most (0: one per transaction)."""
    ledger_writers: int = Field(default=2, ge=1, le=16)
    """Batches of ledger writes in flight at once per process (PostgreSQL; SQLite has one): the
    next batch reads and decides while the one before commits. On the bench (2 cores, library
    spends, c=16, 3 interleaved runs), 2 did 6-12 % more than 1; 3 and 4 no more than 2."""
    webhook_batch_max: int = Field(default=64, ge=0, le=1_000)
    """Webhook deliveries stored and processed together at most (0: one per transaction)."""
    webhook_writers: int = Field(default=2, ge=1, le=32)
    """Batches of webhook deliveries in flight at once per process (PostgreSQL): the next batch
    reads and decides while the one before commits. Two batches that both create an account's
    first balance row race for it (one is refused and read again). On the bench (2 cores, c=32,
    events with billfold metadata, 3 interleaved runs) 2 did 966-1,004 events/s where 1 did
    884-939, p99 52-74 ms."""
    worker_threads: int = Field(default=4, ge=1, le=64)
    """Events a worker processes at once (its calls to Stripe overlap)."""
    subscription_sync_seconds: int = Field(default=86_400, ge=0)
    reconcile_seconds: int = Field(default=3_600, ge=0)
    notify_urls: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """The application's notification endpoints: ``url`` or ``url|whsec_secret``, comma-separated
    (secrets: kept as SecretStr, never logged)."""
    notify_threads: int = Field(default=8, ge=1, le=64)
    """Notifications a worker delivers at once."""
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["json", "console"] | None = None
    """``json`` (default for ``serve`` and ``worker``) or ``console`` (default for ``dev``)."""
    metrics_token: SecretStr | None = None
    """When set, ``GET /metrics`` asks for it as a bearer token."""

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _notify_urls(cls, value: Any) -> Any:
        parts = _split(value)
        for part in parts if isinstance(parts, list) else []:
            text = part.get_secret_value() if isinstance(part, SecretStr) else str(part)
            url, _, secret = text.partition("|")
            if not url.startswith(("http://", "https://")):
                raise ValueError("each entry must be an http(s) URL, optionally |whsec_secret")
            if secret:
                try:
                    if not secret.startswith("whsec_"):
                        raise ValueError
                    base64.b64decode(secret[6:], validate=True)
                except ValueError:
                    raise ValueError("a secret must be whsec_ followed by base64") from None
        return parts

    @field_validator("stripe_webhook_secrets", "api_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @property
    def stripe_livemode(self) -> bool | None:
        """The mode of the Stripe key: True for a live key, False for a test key, None without."""
        if self.stripe_secret_key is None:
            return None
        key = self.stripe_secret_key.get_secret_value()
        if key.startswith(("sk_live_", "rk_live_")):
            return True
        if key.startswith(("sk_test_", "rk_test_")):
            return False
        return None

    @property
    def webhook_secrets(self) -> list[str]:
        return [s.get_secret_value() for s in self.stripe_webhook_secrets]

    @property
    def notify_endpoints(self) -> list[tuple[str, str | None]]:
        """(url, secret or None) of each ``BILLFOLD_NOTIFY_URLS`` entry."""
        found: list[tuple[str, str | None]] = []
        for entry in self.notify_urls:
            url, _, secret = entry.get_secret_value().partition("|")
            found.append((url, secret or None))
        return found

    @property
    def api_key_values(self) -> list[str]:
        return [s.get_secret_value() for s in self.api_keys]


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; a wrong one raises ConfigurationError with one line naming it."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "BILLFOLD_" + "_".join(str(p) for p in first["loc"][:1]).upper()
        raise errors.ConfigurationError(f"{name}: {first['msg']}") from None

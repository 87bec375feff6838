"""Logging for the processes billfold runs (``serve``, ``worker``, ``dev``), with structlog.

``BILLFOLD_LOG_FORMAT``: ``json`` (the default for ``serve`` and ``worker``) writes every line as
one JSON object, the standard library's lines (uvicorn's, the SDK's) included; ``console`` (the
default for ``billfold dev``) writes readable lines. ``BILLFOLD_LOG_LEVEL`` sets billfold's own
loggers' level.

Every line a request writes carries its ``request_id`` (bound in a context variable by the HTTP
layer, which returns it in ``X-Request-Id``). No secret reaches a line: values under keys that name
a credential are dropped, and each rendered line is scrubbed of the configured secrets (webhook
secrets, API keys, the admin token, the JWT secret, the Stripe key) and of anything shaped like a
bearer token, a JWT, a Stripe key or a webhook secret. (billfold never sees card numbers: Stripe's
hosted checkout takes them.)
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping, Sequence
from typing import Any, Literal

import structlog
from structlog.types import Processor

from billfold.settings import Settings

Format = Literal["json", "console"]

SENSITIVE_KEYS = re.compile(
    r"(authorization|token|secret|signature|password|api_?key|cookie|card|cvc|csrf)", re.I
)
SHAPES = re.compile(
    r"(?i:bearer)\s+[^\s\"',]+"  # an Authorization header's value
    r"|eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"  # a JWT
    r"|\b(?:sk|rk|pk)_(?:live|test)_\w+"  # Stripe keys
    r"|\bwhsec_[\w+/=]+"  # webhook secrets
)
SHAPE_MARKERS = ("earer", "EARER", "eyJ", "_live_", "_test_", "whsec_")
REDACTED = "[redacted]"


class _Scrubber:
    def __init__(self, secrets: Sequence[str]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, line: str) -> str:
        for secret in self.secrets:
            if secret in line:
                line = line.replace(secret, REDACTED)
        # The pattern only where one of its shapes may be: ``in`` is far cheaper than a search.
        if any(marker in line for marker in SHAPE_MARKERS):
            line = SHAPES.sub(REDACTED, line)
        return line


def _drop_sensitive(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's copy of the message, with terminal colours
    for key in [k for k in event if _sensitive(k)]:
        event[key] = REDACTED
    return event


@functools.lru_cache(maxsize=1024)
def _sensitive(key: str) -> bool:
    return key not in ("event", "request_id") and SENSITIVE_KEYS.search(key) is not None


class _ScrubbedJson:
    def __init__(self, scrub: _Scrubber) -> None:
        self.render = structlog.processors.JSONRenderer()
        self.scrub = scrub

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        return self.scrub(str(self.render(logger, name, event)))


class _ScrubbedConsole:
    def __init__(self, scrub: _Scrubber) -> None:
        self.render = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        self.scrub = scrub

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        return self.scrub(str(self.render(logger, name, event)))


def _secrets(settings: Settings) -> list[str]:
    values = [*settings.webhook_secrets, *settings.api_key_values]
    for secret in (
        settings.admin_token,
        settings.jwt_secret,
        settings.stripe_secret_key,
        settings.metrics_token,
    ):
        if secret is not None:
            values.append(secret.get_secret_value())
    return values


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler billfold installs (so configuring again replaces it)."""


def configure(settings: Settings, *, default: Format | None = None, own: bool = False) -> None:
    """Billfold's loggers at the configured level. Lines are formatted (``BILLFOLD_LOG_FORMAT``,
    else ``default``, else json) when billfold runs the process (``own``), or when nothing has
    set up logging yet; a host application (or a test runner) that has keeps its own."""
    logging.getLogger("billfold").setLevel(settings.log_level.upper())
    fmt: Format = settings.log_format or default or "json"
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_sensitive,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    if not own and root.handlers:
        return  # the process's owner (billfold serve, a host application) has set it up
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    scrub = _Scrubber(_secrets(settings))
    renderer = _ScrubbedJson(scrub) if fmt == "json" else _ScrubbedConsole(scrub)
    handler = _Handler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # The standard library's extras are checked for credentials once they are added.
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_sensitive],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    for old in ours:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING or own:
        root.setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)


def uvicorn_config() -> dict[str, Any]:
    """uvicorn's ``log_config``: its loggers write through the root logger (billfold's handler),
    so its lines are formatted as billfold's are."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
        },
    }


def get(name: str) -> Any:
    """A structlog logger (``log.info("event", key=value)``) under billfold's configuration."""
    return structlog.stdlib.get_logger(name)

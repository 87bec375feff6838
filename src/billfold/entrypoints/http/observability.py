"""Every request: a request id, its timing in the metrics, and one access line.

The request id is the caller's ``X-Request-Id`` when it is sane (1 to 128 letters, digits and
``._:-``), else a new one; it is bound to the logging context for the request's lines and returned
in the ``X-Request-Id`` header. Latency is observed by route template (``/v1/accounts/{account_id}``,
never the raw path, so labels stay few): a dictionary look-up and a histogram increment.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billfold.service.observe import Metrics

HEADER = b"x-request-id"
SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access = logging.getLogger("billfold.access")
_ids = random.Random()  # seeded from os.urandom once, and again in a forked child
os.register_at_fork(after_in_child=_ids.seed)


def route_of(scope: Scope) -> str:
    """The template of the route that answered (with its mount's prefix), or ``unmatched``."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return str(scope.get("root_path", "")) + path


def request_id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            try:
                given: str = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if SANE.fullmatch(given):
                return given
            break
    # A correlation id, not a secret: 128 random bits from the process's generator (os.urandom
    # is a system call, about 20 µs here, on every request).
    return f"{_ids.getrandbits(128):032x}"


class Observability:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        header = (b"x-request-id", request_id.encode("ascii"))

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            self.metrics.http_request(scope["method"], route, status, seconds)
            if access.isEnabledFor(logging.INFO):
                access.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    },
                )
            structlog.contextvars.reset_contextvars(**tokens)

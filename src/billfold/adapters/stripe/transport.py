"""The Stripe SDK's HTTP transport: urllib3's connection pool, as a custom ``stripe.HTTPClient``.

The SDK lets an application choose how its requests travel (``http_client=``); the clients it
ships are built on requests, httpx, urllib (a new connection per request) or pycurl. Measured
against the benchmark's Stripe stand-in (``bench/stripe_standin.py``: a line-item list, 8
threads), a call through the SDK's ``HTTPXClient`` costs about 1.1 ms of CPU, through
``RequestsClient`` 1.3 ms, through this client 0.75 ms: the worker fetches line items for every
event without billfold metadata, so that difference is a quarter of such an event's server CPU.

What the SDK expects of a transport is kept: its own retries decide (urllib3 is told to make
none, and to follow no redirect), certificates are checked against the SDK's bundle, a proxy
is honoured, and a network failure becomes ``stripe.APIConnectionError`` with ``should_retry``
set as the SDK's own clients set it (timeouts and dropped connections are retried; a
certificate that does not verify is not).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any, NoReturn

import stripe
import urllib3
from urllib3 import exceptions as u3

POOL_SIZE = 16
"""Connections kept per host: the worker's Stripe askers and the request threads together."""


class PooledHTTPClient(stripe.HTTPClient):  # type: ignore[misc]
    """Keep-alive connections to Stripe from a thread-safe pool; one per gateway."""

    name = "urllib3"

    def __init__(
        self,
        timeout: float = 80.0,
        *,
        verify_ssl_certs: bool = True,
        proxy: str | None = None,
    ) -> None:
        super().__init__(verify_ssl_certs=verify_ssl_certs, proxy=proxy)
        tls: dict[str, Any] = (
            {"cert_reqs": "CERT_REQUIRED", "ca_certs": stripe.ca_bundle_path}
            if verify_ssl_certs
            else {"cert_reqs": "CERT_NONE"}
        )
        options: dict[str, Any] = {
            "maxsize": POOL_SIZE,
            "block": False,
            "timeout": urllib3.Timeout(connect=min(timeout, 30.0), read=timeout),
            "retries": False,
            **tls,
        }
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        response = self._send(method, url, headers, post_data, preload=True)
        return response.data, response.status, response.headers

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        response = self._send(method, url, headers, post_data, preload=False)
        return response, response.status, response.headers

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any,
        *,
        preload: bool,
    ) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request(
                method.upper(),
                url,
                body=post_data,
                headers=dict(headers or {}),
                redirect=False,
                preload_content=preload,
            )
        except Exception as exc:
            _connection_error(exc)

    def close(self) -> None:
        self._pool.clear()


def _connection_error(exc: Exception) -> NoReturn:
    """Raise the SDK's connection error for ``exc``, retryable as the SDK's clients decide."""
    if isinstance(exc, u3.SSLError):
        should_retry = False
        what = "Could not verify Stripe's TLS certificate: is something intercepting the network?"
    elif isinstance(exc, u3.HTTPError):  # timeouts, refused or dropped connections, bad answers
        should_retry = isinstance(
            exc, (u3.TimeoutError, u3.NewConnectionError, u3.ProtocolError, u3.ProxyError)
        )
        what = "Could not reach Stripe."
    else:
        should_retry = False
        what = "Could not send the request to Stripe (a local configuration problem?)."
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    raise stripe.APIConnectionError(
        textwrap.fill(what) + f"\n\n(Network error: {detail})", should_retry=should_retry
    ) from exc

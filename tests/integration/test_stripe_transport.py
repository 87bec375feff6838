"""The Stripe SDK's transport (urllib3's pool) and the gateway's raw line-item list, against a
stand-in for Stripe's API on a local port: pages, quoting, keep-alive, the SDK's headers and
retries, and every way a request can fail becoming the billfold error it should."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import stripe
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billfold.adapters.stripe.client import SdkStripeGateway
from billfold.adapters.stripe.transport import PooledHTTPClient
from billfold.domain import errors
from billfold.domain.orders import LineItem
from tests.support.servers import ServerThread

KEY = "sk_test_transport"


@dataclass
class StandIn:
    """Line items of one session, served ``page`` at a time; what billfold sent, recorded."""

    items: list[dict[str, Any]] = field(default_factory=list)
    page: int = 100
    status: int = 200
    delay: float = 0.0
    more_without_items: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def line_items(self, request: Request) -> Response:
        assert request.client is not None
        with self.lock:
            self.requests.append(
                {
                    "path": request.scope["raw_path"].decode(),
                    "query": dict(request.query_params),
                    "headers": dict(request.headers),
                    "peer": request.client.port,
                }
            )
        if self.delay:
            time.sleep(self.delay)  # holds the stand-in's loop: the client's read times out
        if self.status == 404:
            error = {"type": "invalid_request_error", "message": "No such checkout session"}
            return JSONResponse({"error": error}, status_code=404)
        if self.status != 200:
            return JSONResponse({"error": {"type": "api_error", "message": "boom"}}, self.status)
        after = request.query_params.get("starting_after")
        start = next((i + 1 for i, it in enumerate(self.items) if it["id"] == after), 0)
        limit = min(int(request.query_params.get("limit", "10")), self.page)
        data = self.items[start : start + limit]
        url = request.url.path
        more = start + limit < len(self.items) or self.more_without_items
        return JSONResponse({"object": "list", "data": data, "has_more": more, "url": url})


def _item(n: int, price: object) -> dict[str, Any]:
    return {
        "id": f"li_{n}",
        "object": "item",
        "amount_total": 100 * n,
        "currency": "eur",
        "price": price,
        "quantity": n,
    }


@pytest.fixture
def stand_in() -> Iterator[tuple[StandIn, str]]:
    state = StandIn()
    app = Starlette(routes=[Route("/v1/checkout/sessions/{sid:path}/line_items", state.line_items)])
    server = ServerThread(app).start()
    try:
        yield state, server.url
    finally:
        server.stop()


@contextlib.contextmanager
def _gateway(url: str, **options: Any) -> Iterator[SdkStripeGateway]:
    gateway = SdkStripeGateway(KEY, api_base=url, **options)
    try:
        yield gateway
    finally:
        gateway.close()


def test_every_page_of_line_items_is_read_in_order(stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    state.items = [_item(1, {"id": "price_a", "object": "price"}), _item(2, "price_b")]
    state.items += [_item(n, None) for n in range(3, 6)]
    state.page = 2
    with _gateway(url) as gateway:
        items = gateway.checkout_line_items("cs_test_pages")

    assert items == [
        LineItem(price_id="price_a", quantity=1, amount_total=100, currency="eur"),
        LineItem(price_id="price_b", quantity=2, amount_total=200, currency="eur"),
        *[
            LineItem(price_id=None, quantity=n, amount_total=100 * n, currency="eur")
            for n in range(3, 6)
        ],
    ]
    assert [r["query"].get("starting_after") for r in state.requests] == [None, "li_2", "li_4"]
    assert {r["query"]["limit"] for r in state.requests} == {"100"}
    # The SDK's own headers: the key as a bearer token, its pinned API version, its user agent.
    headers = state.requests[0]["headers"]
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["stripe-version"] == stripe.api_version
    assert headers["user-agent"].startswith("Stripe/v1 PythonBindings/")


def test_an_empty_session_has_no_line_items(stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    with _gateway(url) as gateway:
        assert gateway.checkout_line_items("cs_test_empty") == []
    assert len(state.requests) == 1


def test_a_session_id_is_quoted_into_the_path(stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    with _gateway(url) as gateway:
        gateway.checkout_line_items("cs_test_a/b c?d")
    assert state.requests[0]["path"] == "/v1/checkout/sessions/cs_test_a%2Fb%20c%3Fd/line_items"


def test_calls_share_one_kept_alive_connection(stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    state.items = [_item(1, "price_a")]
    with _gateway(url) as gateway:
        for _ in range(5):
            gateway.checkout_line_items("cs_test_again")
    assert len(state.requests) == 5
    assert len({r["peer"] for r in state.requests}) == 1


def test_threads_share_the_pool_safely(stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    state.items = [_item(1, "price_a"), _item(2, "price_b")]
    results: list[list[LineItem]] = []

    def ask() -> None:
        for _ in range(10):
            results.append(gateway.checkout_line_items("cs_test_threads"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    with _gateway(url) as gateway:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 80
    assert all([i.price_id for i in r] == ["price_a", "price_b"] for r in results)
    assert len({r["peer"] for r in state.requests}) <= 8


def test_a_page_that_says_more_follow_but_gives_no_cursor_is_refused(
    stand_in: tuple[StandIn, str],
) -> None:
    """Never fulfil from part of a session's items: a malformed page is Stripe unavailable."""
    state, url = stand_in
    state.more_without_items = True  # has_more, and no item to continue after
    with _gateway(url) as gateway, pytest.raises(errors.StripeUnavailable, match="gave no cursor"):
        gateway.checkout_line_items("cs_test_broken")


def test_an_unknown_session_is_not_found(stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    state.status = 404
    with _gateway(url) as gateway, pytest.raises(errors.NotFound, match="No such checkout session"):
        gateway.checkout_line_items("cs_test_missing")
    assert len(state.requests) == 1  # a 404 is not retried


def test_a_stripe_server_error_is_retried_then_unavailable(
    stand_in: tuple[StandIn, str],
) -> None:
    state, url = stand_in
    state.status = 500
    with (
        _gateway(url, max_network_retries=1) as gateway,
        pytest.raises(errors.StripeUnavailable, match="Try again"),
    ):
        gateway.checkout_line_items("cs_test_down")
    assert len(state.requests) == 2


def test_a_slow_answer_times_out_as_unavailable(stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    state.delay = 1.0
    started = time.monotonic()
    with (
        _gateway(url, timeout=0.2, max_network_retries=0) as gateway,
        pytest.raises(errors.StripeUnavailable, match="ReadTimeoutError"),
    ):
        gateway.checkout_line_items("cs_test_slow")
    assert time.monotonic() - started < 0.9


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_is_retried_then_unavailable_without_the_key() -> None:
    port = _closed_port()
    with (
        _gateway(f"http://127.0.0.1:{port}", max_network_retries=1) as gateway,
        pytest.raises(errors.StripeUnavailable) as raised,
    ):
        gateway.checkout_line_items("cs_test_refused")
    assert "Could not reach Stripe" in str(raised.value)
    assert KEY not in str(raised.value)
    connection_error = raised.value.__cause__
    assert isinstance(connection_error, stripe.APIConnectionError)
    assert connection_error.should_retry is True


def test_transport_errors_say_whether_the_sdk_may_retry() -> None:
    client = PooledHTTPClient(5.0)
    port = _closed_port()
    with pytest.raises(stripe.APIConnectionError) as refused:
        client.request("get", f"http://127.0.0.1:{port}/v1/x", {})
    with pytest.raises(stripe.APIConnectionError) as unusable:
        client.request("get", "not a url", {})
    client.close()
    assert refused.value.should_retry is True
    assert "NewConnectionError" in str(refused.value)
    assert unusable.value.should_retry is False


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no authority signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-stripe.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_a_certificate_stripe_would_not_have_is_refused_and_not_retried(tmp_path: Path) -> None:
    """TLS is verified against the SDK's certificate bundle: a server presenting a certificate
    no authority signed (someone in the middle) gets no request, and the SDK does not retry."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    served: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = PooledHTTPClient(5.0)
    try:
        with pytest.raises(stripe.APIConnectionError) as refused:
            client.request("get", f"https://127.0.0.1:{server.server_address[1]}/v1/x", {})
    finally:
        client.close()
        server.shutdown()
        server.server_close()
    assert refused.value.should_retry is False
    assert "TLS certificate" in str(refused.value)
    assert served == []


def test_a_streamed_answer_is_read_as_it_arrives(stand_in: tuple[StandIn, str]) -> None:
    """The SDK's streaming calls (files, PDFs) get the body unread, to read from."""
    state, url = stand_in
    state.items = [_item(1, "price_a")]
    client = PooledHTTPClient(5.0)
    try:
        stream, status, headers = client.request_stream(
            "get", f"{url}/v1/checkout/sessions/cs_test_stream/line_items?limit=1", {}
        )
        body = json.loads(stream.read())
        stream.release_conn()
    finally:
        client.close()
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert [item["id"] for item in body["data"]] == ["li_1"]

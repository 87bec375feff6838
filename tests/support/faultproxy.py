"""An HTTP proxy that misbehaves on cue, between a client and a live server.

One request per connection. Each request takes the next fault from the script (then ``"pass"``):

- ``"pass"``: forward it and relay the answer;
- ``"drop"``: forward it, let the server answer, and drop the connection without relaying it
  (the request happened; the client cannot know);
- ``"refuse"``: drop the connection before forwarding anything;
- ``"503"``: answer 503 without forwarding;
- ``"429:N"``: answer 429 with ``Retry-After: N`` without forwarding.

Every request is recorded (method, path, ``Idempotency-Key``, whether it reached the server).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    forwarded: bool


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def _close_after(request: bytes) -> bytes:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _canned(status: int, reason: str, headers: dict[str, str]) -> bytes:
    body = json.dumps({"error": {"type": "api_error", "code": "proxy", "message": reason}}).encode()
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class FaultProxy:
    def __init__(self, target_url: str) -> None:
        host, _, port = target_url.removeprefix("http://").partition(":")
        self.target = (host, int(port))
        self.script: list[str] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def faults(self, *script: str) -> FaultProxy:
        with self._lock:
            self.script = list(script)
            self.seen = []
        return self

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _next(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "pass"

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if request is None:
                return
            fault = self._next()
            line, *headers = request.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            method, path, _ = line.split(" ", 2)
            key = next(
                (
                    h.partition(":")[2].strip()
                    for h in headers
                    if h.lower().startswith("idempotency-key:")
                ),
                None,
            )
            forwarded = fault in ("pass", "drop")
            with self._lock:
                self.seen.append(Seen(method, path, key, forwarded))
            if fault == "refuse":
                return
            if fault == "503":
                conn.sendall(_canned(503, "Service Unavailable", {}))
                return
            if fault.startswith("429:"):
                conn.sendall(_canned(429, "Too Many Requests", {"Retry-After": fault[4:]}))
                return
            answer = self._forward(request)
            if fault == "pass":
                with contextlib.suppress(OSError):
                    conn.sendall(answer)

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(self.target, timeout=30) as upstream:
            upstream.sendall(_close_after(request))
            chunks = []
            while chunk := upstream.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self._closed = True
        self.listener.close()

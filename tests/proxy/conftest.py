"""Upstreams for the proxy tests, independent of the proxy's code.

- ``origin``: a stdlib ``http.server`` (HTTP/1.1, keep-alive) on port 0 in a thread,
  answering every method with JSON describing what it received (method, path,
  headers, body, the client port: a reused upstream connection keeps its port), and
  ``/bytes/N`` with N bytes of ``x``.
- ``echo``: a threaded TCP echo server on port 0.
- ``silent``: a listening socket that accepts (the kernel completes the handshake)
  and never answers: an upstream that times out.
- ``closed_port``: a port nothing listens on (bound, then closed).
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from servers.core import Server


class OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        if self.path.startswith("/bytes/"):
            payload = b"x" * int(self.path.rsplit("/", 1)[1])
            content_type = "application/octet-stream"
        else:
            payload = json.dumps(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                    "via": self.headers.get_all("Via") or [],
                    "body": body.decode("latin-1"),
                    "client_port": self.client_address[1],
                }
            ).encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Origin", "yes")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer


class QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the reset_peer tests break connections on purpose


class Origin:
    def __init__(self) -> None:
        self.server = QuietHTTPServer(("127.0.0.1", 0), OriginHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class Echo:
    def __init__(self) -> None:
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), EchoHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


@pytest.fixture
def silent() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def proxy(refservers_proxy: Server) -> Server:
    return refservers_proxy


@pytest.fixture
def proxy_url(proxy: Server) -> str:
    return f"http://127.0.0.1:{proxy.port}"


def add_toxic(proxy: Server, action: str, match: str = "*", **fields: Any) -> Any:
    """Add a proxy fault rule directly in the shared FaultBook (the API is tested on its own)."""
    return proxy.core.faults.add({"server": "proxy", "action": action, "match": match, **fields})


def raw_request(host: str, port: int, request: bytes, timeout: float = 10.0) -> tuple[bytes, list[bytes]]:
    """Send ``request`` on a new socket, read until EOF; return (everything, the recv chunks)."""
    chunks = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks), chunks


class Firehose:
    """Writes ``total`` bytes to each client as fast as it can (after an HTTP head when
    ``http``), and records whether it stalled: a send that cannot progress for a second
    means the reader (the proxy) stopped reading, which is what flow control does."""

    def __init__(self, total: int, http: bool) -> None:
        self.total = total
        self.http = http
        self.sent = 0
        self.outcome = threading.Event()
        self.stalled = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            if self.http:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {self.total}\r\n\r\n".encode())
            conn.settimeout(1.0)
            block = b"f" * 65536
            try:
                while self.sent < self.total:
                    self.sent += conn.send(block[: self.total - self.sent])
            except TimeoutError:
                self.stalled = True
            except OSError:
                pass
            self.outcome.set()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=30)


@pytest.fixture
def firehose() -> Iterator[Any]:
    made: list[Firehose] = []

    def make(total: int, http: bool = False) -> Firehose:
        made.append(Firehose(total, http))
        return made[-1]

    yield make
    for server in made:
        server.close()

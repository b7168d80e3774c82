"""Fixtures of the proxy tests. Their upstreams (``origin``, ``echo``, ``silent``,
``closed_port``) are in tests/conftest.py: the toxiproxy tests use them too."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from servers.core import Server


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

"""A raw NNTP line client for the tests that check codes and bytes exactly (nntplib hides both)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest


class RawNntp:
    """Send command lines, read status lines and dot-terminated blocks as raw bytes."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None):
        raw = socket.create_connection((host, port), timeout=10)
        self.sock: socket.socket = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        self.reader = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self) -> str:
        data = self.reader.readline(1 << 20)
        if not data:
            raise ConnectionError("server closed the connection")
        return data.decode("utf-8", "replace").rstrip("\r\n")

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def command(self, text: str) -> str:
        self.send(text + "\r\n")
        return self.line()

    def block(self) -> bytes:
        """The raw bytes of a multi-line block up to (not including) the terminating '.'."""
        collected = b""
        while True:
            data = self.reader.readline(1 << 20)
            if not data:
                raise ConnectionError("server closed mid-block")
            if data == b".\r\n":
                return collected
            collected += data

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def raw_nntp(refservers_nntp: Any) -> Iterator[Any]:
    """``raw_nntp()`` opens a RawNntp to the test's server (plain port); all closed after."""
    opened: list[RawNntp] = []

    def open_client(port: int | None = None, tls: ssl.SSLContext | None = None) -> RawNntp:
        client = RawNntp(refservers_nntp.probe_host, port or refservers_nntp.port, tls)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()

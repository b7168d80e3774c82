"""A newline-delimited JSON-RPC client over a raw TCP socket, for the tcp_port listener."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from servers.core import Server


class LineClient:
    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.reader = self.sock.makefile("rb")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def read(self) -> Any:
        line = self.reader.readline()
        assert line.endswith(b"\n"), f"connection closed or line cut: {line!r}"
        return json.loads(line)

    def exchange(self, lines: list[str]) -> list[Any]:
        """Send every line, then read replies until the last line's reply (it must have an id)."""
        for line in lines:
            self.send(line)
        last_id = json.loads(lines[-1])["id"]
        replies = []
        while True:
            reply = self.read()
            replies.append(reply)
            if isinstance(reply, dict) and reply.get("id") == last_id:
                return replies

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def jsonrpc_line_client(refservers_jsonrpc: Server) -> Iterator[LineClient]:
    client = LineClient(refservers_jsonrpc.host, refservers_jsonrpc.listeners["tcp"])
    yield client
    client.close()

"""Telnet test helpers: a small raw-socket Telnet client (RFC 854/855), independent of
the server code, handed to tests through the ``nvt_connect`` fixture.

It answers option negotiation the way a terminal would (agrees to the server's ECHO
and SGA, sends its window size for NAWS and ``XTERM`` for TTYPE, refuses the rest),
records every negotiation it saw, and reads the data stream with IAC sequences removed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from servers.core import Server

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SGA, TTYPE, NAWS = 1, 3, 24, 31
NAMES = {WILL: "WILL", WONT: "WONT", DO: "DO", DONT: "DONT"}


class NvtClient:
    def __init__(self, host: str, port: int, timeout: float = 10.0, accept: tuple[int, ...] = (ECHO, SGA, TTYPE, NAWS)):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.accept = accept
        self.negotiations: list[tuple[str, int]] = []  # what the server sent, e.g. ("WILL", 1)
        self.subnegotiations: list[bytes] = []
        self.sent_negotiations: list[tuple[str, int]] = []
        self.text = b""  # data stream so far, IAC removed
        self.closed = False
        self._pending = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NvtClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_line(self, line: str) -> None:
        self.sock.sendall(line.encode().replace(b"\xff", b"\xff\xff") + b"\r\n")

    def read_until(self, marker: bytes) -> bytes:
        """Read until ``marker`` is in the unread data; return everything up to and including it."""
        while marker not in self.text:
            if not self._receive():
                raise EOFError(f"connection closed before {marker!r}; got {self.text!r}")
        index = self.text.index(marker) + len(marker)
        out, self.text = self.text[:index], self.text[index:]
        return out

    def read_all(self) -> bytes:
        """Read until the server closes; return the unread data."""
        while self._receive():
            pass
        out, self.text = self.text, b""
        return out

    def _receive(self) -> bool:
        chunk = self.sock.recv(4096)
        if not chunk:
            self.closed = True
            return False
        self._parse(self._pending + chunk)
        return True

    def _parse(self, data: bytes) -> None:
        index, out = 0, bytearray()
        while index < len(data):
            byte = data[index]
            if byte != IAC:
                out.append(byte)
                index += 1
                continue
            if index + 1 >= len(data):
                break
            command = data[index + 1]
            if command == IAC:
                out.append(IAC)
                index += 2
            elif command in NAMES:
                if index + 2 >= len(data):
                    break
                self._negotiate(command, data[index + 2])
                index += 3
            elif command == SB:
                end = data.find(bytes([IAC, SE]), index)
                if end < 0:
                    break
                self._subnegotiation(data[index + 2 : end])
                index = end + 2
            else:
                index += 2
        self._pending = data[index:]
        self.text += bytes(out)

    def _negotiate(self, command: int, option: int) -> None:
        self.negotiations.append((NAMES[command], option))
        if command in (WILL, DO):
            agree = option in self.accept
            reply = {WILL: DO if agree else DONT, DO: WILL if agree else WONT}[command]
        else:
            reply = {WONT: DONT, DONT: WONT}[command]
        self.sent_negotiations.append((NAMES[reply], option))
        self.sock.sendall(bytes([IAC, reply, option]))
        if command == DO and option == NAWS and option in self.accept:
            self.sock.sendall(bytes([IAC, SB, NAWS, 0, 132, 0, 43, IAC, SE]))

    def _subnegotiation(self, payload: bytes) -> None:
        self.subnegotiations.append(payload)
        if payload == bytes([TTYPE, 1]):  # SEND
            self.sock.sendall(bytes([IAC, SB, TTYPE, 0]) + b"XTERM" + bytes([IAC, SE]))

    def login(self, user: str = "demo", password: str = "demo") -> bytes:
        self.read_until(b"login: ")
        self.send_line(user)
        self.read_until(b"Password: ")
        self.send_line(password)
        return self.read_until(b"$ ")

    def command(self, line: str) -> str:
        """Run one shell line after login; return its output (CR LF turned into LF)."""
        self.send_line(line)
        return self.read_until(b"$ ")[: -len(b"$ ")].decode().replace("\r\n", "\n")


@pytest.fixture
def nvt_connect() -> Iterator[Callable[..., NvtClient]]:
    """``nvt_connect(server, accept=(...))``: a connected NvtClient, closed after the test."""
    clients: list[NvtClient] = []

    def connect(server: Server, **kwargs: Any) -> NvtClient:
        client = NvtClient(server.probe_host, server.port, **kwargs)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()

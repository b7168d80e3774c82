"""Fixtures shared by the classic-exercise tests (sockets, DNS, XML-RPC)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    """A UDP client socket with a 10 s receive timeout (closed after the test)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(10)
    yield sock
    sock.close()

"""Hostile input against every server of `refservers up`: each bad connection gets a
protocol error or is closed, the server keeps serving everyone else, memory stays bounded.

Covers every registry row automatically, so a new server is tested the day it lands.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers import registry

READ_LIMIT = 4 * 1024 * 1024
PAYLOADS: dict[str, bytes] = {
    "random": bytes(range(256)) * 64,
    "nul": b"\x00" * 4096 + b"\r\n",
    "invalid_utf8": b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1" * 100 + b"\r\n",
    "mib_line": b"A" * (1024 * 1024) + b"\r\n",
    "out_of_order": b"QUIT\r\nDATA\r\nRETR 1\r\nSTOR x\r\na1 FETCH 1 BODY[]\r\nRCPT TO:<x@y>\r\n\r\n",
    "http_garbage": b"GET / HTTP/9.9\r\nHost: \x00\r\nContent-Length: -5\r\n\r\n",
}
SERVERS = list(registry.SERVERS)


def tcp_listeners(stack, name: str) -> list[tuple[str, int]]:
    entry = stack.servers[name]
    found = []
    for listener, port in entry["listeners"].items():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except ConnectionRefusedError:
            continue  # a UDP-only listener
        found.append((listener, port))
    return found


def still_serving(stack, name: str) -> None:
    """A well-behaved client is served: the real readiness probe of the main port."""
    assert stack.alive(), "server process died"
    cls = registry.server_class(name)
    main_port = next(iter(stack.servers[name]["listeners"].values()))
    cls.probe("127.0.0.1", main_port, 30)


def abuse(port: int, send: Callable[[socket.socket], None], read_seconds: float = 3.0) -> None:
    """Send, then read until the server closes or the (bounded) time is up."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            send(sock)
            deadline = time.monotonic() + read_seconds
            received = 0
            while time.monotonic() < deadline and received < READ_LIMIT:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    return
                received += len(chunk)
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            return


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("name", SERVERS)
def test_bad_bytes_get_an_error_or_a_close_and_others_are_served(stack, name, payload):
    listeners = tcp_listeners(stack, name)
    if not listeners:
        pytest.skip(f"{name} has no TCP listener")
    # A client that connected before the abuse must still be served afterwards.
    for _, port in listeners:
        abuse(port, lambda sock: sock.sendall(PAYLOADS[payload]), read_seconds=1.0)
    still_serving(stack, name)


@pytest.mark.parametrize("name", SERVERS)
def test_half_open_and_slow_drip_clients_do_not_block_others(stack, name):
    listeners = tcp_listeners(stack, name)
    if not listeners:
        pytest.skip(f"{name} has no TCP listener")
    port = listeners[0][1]
    half_open = socket.create_connection(("127.0.0.1", port), timeout=30)
    half_open.sendall(b"HELO")
    half_open.shutdown(socket.SHUT_WR)  # the client stops writing but keeps reading

    stop = threading.Event()

    def drip() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            for byte in b"USER demo\r\nPASS demo\r\nGET / HTTP/1.1\r\n" * 3:
                if stop.wait(0.02):
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    return

    dripper = threading.Thread(target=drip)
    dripper.start()
    try:
        still_serving(stack, name)  # served while the dripper and the half-open client hang on
    finally:
        stop.set()
        dripper.join()
        half_open.close()


# Servers that also listen on UDP, on the same port numbers as their TCP listeners.
UDP_SERVERS = [name for name in ("sockets", "dns") if name in registry.SERVERS]


@pytest.mark.parametrize("name", UDP_SERVERS)
def test_garbage_datagrams_to_udp_listeners(stack, name):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for port in stack.servers[name]["listeners"].values():
            for payload in (b"", b"\x00" * 512, bytes(range(256)), b"\xff" * 60000):
                sock.sendto(payload, ("127.0.0.1", port))
    still_serving(stack, name)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.binary(min_size=1, max_size=512), min_size=1, max_size=4))
def test_generated_input_never_breaks_any_server(stack, data):
    for name in SERVERS:
        for _, port in tcp_listeners(stack, name)[:1]:
            abuse(port, lambda sock: [sock.sendall(chunk + b"\r\n") for chunk in data], read_seconds=0.2)
    for name in SERVERS:
        still_serving(stack, name)


def test_memory_stays_bounded_after_the_abuse(stack):
    before = stack.rss_kib()
    for name in SERVERS:
        for _, port in tcp_listeners(stack, name):
            for _ in range(3):
                abuse(port, lambda sock: sock.sendall(PAYLOADS["mib_line"] * 4), read_seconds=0.5)
    for name in SERVERS:
        still_serving(stack, name)
    grown_mib = (stack.rss_kib() - before) / 1024
    # Twelve MiB per connection were sent; a server that buffered them all would grow by
    # hundreds of MiB. Allocator slack is allowed for.
    assert grown_mib < 150, f"RSS grew by {grown_mib:.0f} MiB"

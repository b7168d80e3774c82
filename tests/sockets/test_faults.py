"""Socket services' fault rules (delay, drop, disconnect) driven with plain socket clients."""

from __future__ import annotations

import socket

import pytest

from servers.core import Server


def tcp(server: Server, service: str) -> socket.socket:
    return socket.create_connection((server.probe_host, server.listeners[service]), timeout=10)


def read_to_close(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_drop_swallows_one_tcp_chunk_and_the_connection_goes_on(refservers_sockets: Server) -> None:
    since = refservers_sockets.journal.last_id
    refservers_sockets.core.faults.add({"server": "sockets", "match": "echo data", "action": "drop", "times": 1})
    with tcp(refservers_sockets, "echo") as sock:
        sock.sendall(b"lost\n")
        fired = refservers_sockets.journal.wait_for(since=since, server="sockets", kind="fault")
        assert (fired.details["action"], fired.details["subject"]) == ("drop", "echo data")
        sock.sendall(b"kept\n")
        sock.shutdown(socket.SHUT_WR)
        assert read_to_close(sock) == b"kept\n"


def test_disconnect_resets_the_tcp_connection_on_data(refservers_sockets: Server) -> None:
    refservers_sockets.core.faults.add({"server": "sockets", "match": "timestamp data", "action": "disconnect"})
    with tcp(refservers_sockets, "timestamp") as sock:
        sock.sendall(b"hello\n")
        with pytest.raises(ConnectionResetError):
            while sock.recv(65536):  # a reset, not an orderly close with data
                pass
    fired = refservers_sockets.journal.wait_for(server="sockets", kind="fault")
    assert fired.details["action"] == "disconnect"
    # Other services, and new timestamp clients with no matching data, are served.
    with tcp(refservers_sockets, "greeting") as sock:
        assert read_to_close(sock) == b"Thank you for connecting\r\n"


def test_drop_at_connect_closes_before_the_greeting(refservers_sockets: Server) -> None:
    refservers_sockets.core.faults.add({"server": "sockets", "match": "greeting connect", "action": "drop", "times": 1})
    # On a loaded machine the server's close can land before connect() returns, which
    # then reports the reset itself: either way the client got no greeting.
    try:
        with tcp(refservers_sockets, "greeting") as sock:
            received = read_to_close(sock)
    except ConnectionResetError:
        received = b""
    assert received == b""
    with tcp(refservers_sockets, "greeting") as sock:
        assert read_to_close(sock) == b"Thank you for connecting\r\n"


def test_delay_holds_data_in_order_and_a_half_closed_client_still_gets_it(refservers_sockets: Server) -> None:
    since = refservers_sockets.journal.last_id
    refservers_sockets.core.faults.add(
        {"server": "sockets", "match": "echo data", "action": "delay", "params": {"seconds": 0.3}, "times": 1}
    )
    with tcp(refservers_sockets, "echo") as sock:
        sock.sendall(b"first\n")
        refservers_sockets.journal.wait_for(since=since, server="sockets", kind="fault")
        sock.sendall(b"second\n")
        sock.shutdown(socket.SHUT_WR)
        assert read_to_close(sock) == b"first\nsecond\n"


def test_delay_at_connect_holds_the_daytime_answer_while_others_are_served(refservers_sockets: Server) -> None:
    refservers_sockets.core.faults.add(
        {"server": "sockets", "match": "daytime connect", "action": "delay", "params": {"seconds": 30}}
    )
    with tcp(refservers_sockets, "daytime") as held:
        refservers_sockets.journal.wait_for(server="sockets", kind="fault")
        held.settimeout(0.2)
        with pytest.raises(TimeoutError):
            held.recv(1)
        with tcp(refservers_sockets, "echo") as other:
            other.sendall(b"x")
            assert other.recv(1) == b"x"


def test_udp_drop_and_delay(refservers_sockets: Server, udp: socket.socket) -> None:
    faults = refservers_sockets.core.faults
    faults.add({"server": "sockets", "match": "echo datagram", "action": "drop", "times": 1})
    faults.add({"server": "sockets", "match": "timestamp datagram", "action": "delay", "params": {"seconds": 0.2}})
    echo_address = (refservers_sockets.probe_host, refservers_sockets.listeners["echo_udp"])
    udp.sendto(b"one", echo_address)
    dropped = refservers_sockets.journal.wait_for(
        lambda e: e.details.get("service") == "echo", server="sockets", kind="datagram"
    )
    assert dropped.details["replied"] is False
    udp.sendto(b"two", echo_address)
    assert udp.recvfrom(100)[0] == b"two"  # not b"one": that one was dropped
    udp.sendto(b"late", (refservers_sockets.probe_host, refservers_sockets.listeners["timestamp_udp"]))
    assert udp.recvfrom(200)[0].endswith(b"] late")
    actions = [e.details["action"] for e in refservers_sockets.journal.events(server="sockets", kind="fault")]
    assert actions == ["drop", "delay"]

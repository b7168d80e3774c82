"""Plain TCP proxy listeners (config and admin API) in front of a TCP echo server, with
toxics, and the proxy's fault rules through the admin API's /api/v1/faults."""

from __future__ import annotations

import errno
import socket
import time

import pytest
import requests

from servers.core.config import ConfigError, load_config
from servers.registry import schema

from .conftest import add_toxic


def echo_roundtrip(port: int, payload: bytes, timeout: float = 10.0) -> tuple[bytes, list[bytes]]:
    """Send ``payload``, half-close, read the echo until EOF; return (data, recv chunks)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks), chunks


@pytest.fixture
def api(refservers_admin, proxy):
    base = f"http://127.0.0.1:{refservers_admin.port}/api/v1"
    with requests.Session() as session:
        session.base = base  # type: ignore[attr-defined]
        yield session, base


def create(api, **body):
    session, base = api
    reply = session.post(f"{base}/proxies", json=body, timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_config_listener_forwards(refservers_start, echo):
    proxy = refservers_start("proxy", tcp=f"echo@0=127.0.0.1:{echo.port}")
    port = proxy.listeners["echo"]
    data, _ = echo_roundtrip(port, b"hello through the proxy")
    assert data == b"hello through the proxy"
    event = proxy.journal.wait_for(server="proxy", kind="connection")
    assert event.details["listener"] == "echo"
    assert event.details["upstream"] == f"127.0.0.1:{echo.port}"
    assert (event.details["bytes_up"], event.details["bytes_down"]) == (23, 23)
    assert event.details["toxics"] == []


def test_config_table_and_default_names():
    config = load_config(schema(), env={"REFSERVERS_PROXY_TCP": "15432=db.local:5432;smtp@2525=127.0.0.1:25"})
    routes = config["proxy"].tcp
    assert [(r.name, r.listen_port, r.upstream) for r in routes] == [("", 15432, "db.local:5432"), ("smtp", 2525, "127.0.0.1:25")]
    assert routes[0].named(15432).name == "tcp-15432"


@pytest.mark.parametrize("value", ["15432", "99999=h:1", "1=h:", "1=h:70000", "bad name@1=h:2"])
def test_bad_tcp_entries_fail_config_in_one_line(value):
    with pytest.raises(ConfigError, match=r"^REFSERVERS_PROXY_TCP: expected listen_port=host:port entries"):
        load_config(schema(), env={"REFSERVERS_PROXY_TCP": value})


def test_api_create_list_forward_remove(api, proxy, echo):
    session, base = api
    created = create(api, upstream=f"127.0.0.1:{echo.port}", listen=0, name="echo")
    port = created["listen"]
    assert port > 0 and created["name"] == "echo" and created["source"] == "api"
    assert session.get(f"{base}/proxies", timeout=10).json()["proxies"] == [created]
    assert proxy.listeners["echo"] == port
    assert echo_roundtrip(port, b"ping")[0] == b"ping"
    assert session.delete(f"{base}/proxies/echo", timeout=10).json() == {"removed": "echo"}
    assert session.get(f"{base}/proxies", timeout=10).json()["proxies"] == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


def test_api_default_name_and_errors(api, echo):
    session, base = api
    created = create(api, upstream=f"127.0.0.1:{echo.port}")
    assert created["name"] == f"tcp-{created['listen']}"
    duplicate = session.post(f"{base}/proxies", json={"upstream": f"127.0.0.1:{echo.port}", "name": created["name"]}, timeout=10)
    assert duplicate.status_code == 409
    bad = session.post(f"{base}/proxies", json={"upstream": "no-port"}, timeout=10)
    assert bad.status_code == 400 and "host:port" in bad.json()["error"]
    assert session.delete(f"{base}/proxies/nope", timeout=10).status_code == 404
    assert session.delete(f"{base}/proxies", timeout=10).json() == {"removed": [created["name"]]}


def test_api_listener_with_latency_through_faults_api(api, proxy, echo):
    session, base = api
    port = create(api, upstream=f"127.0.0.1:{echo.port}", name="slow-echo")["listen"]
    reply = session.post(
        f"{base}/faults", json={"server": "proxy", "action": "latency", "match": "slow-*", "params": {"latency": 300}}, timeout=10
    )
    assert reply.status_code == 201
    rule_id = reply.json()["faults"][0]["id"]
    listed = session.get(f"{base}/faults", params={"server": "proxy"}, timeout=10).json()["faults"]
    assert [rule["id"] for rule in listed] == [rule_id]
    started = time.monotonic()
    assert echo_roundtrip(port, b"slow ping")[0] == b"slow ping"
    assert time.monotonic() - started >= 0.3
    event = proxy.journal.wait_for(server="proxy", kind="connection")
    assert event.details["toxics"] == ["latency"]
    assert session.delete(f"{base}/faults/{rule_id}", timeout=10).status_code == 200
    assert session.get(f"{base}/faults", params={"server": "proxy"}, timeout=10).json()["faults"] == []
    since = proxy.journal.last_id
    assert echo_roundtrip(port, b"fast again")[0] == b"fast again"
    event = proxy.journal.wait_for(server="proxy", kind="connection", since=since)
    assert event.details["toxics"] == []


def test_tcp_limit_data(refservers_start, echo):
    proxy = refservers_start("proxy", tcp=f"echo@0=127.0.0.1:{echo.port}")
    add_toxic(proxy, "limit_data", match="echo", params={"bytes": 10})
    data, _ = echo_roundtrip(proxy.listeners["echo"], b"0123456789abcdefghij")
    assert data == b"0123456789"


def test_tcp_reset_peer(refservers_start, echo):
    proxy = refservers_start("proxy", tcp=f"echo@0=127.0.0.1:{echo.port}")
    add_toxic(proxy, "reset_peer", match="echo", params={"timeout": 0})
    with pytest.raises(ConnectionResetError):
        echo_roundtrip(proxy.listeners["echo"], b"x")


def test_tcp_bandwidth_upstream(refservers_start, echo):
    proxy = refservers_start("proxy", tcp=f"echo@0=127.0.0.1:{echo.port}")
    add_toxic(proxy, "bandwidth", match="echo", params={"rate": 40, "stream": "upstream"})
    payload = bytes(range(256)) * 80  # 20480 bytes at 40 KB/s
    started = time.monotonic()
    data, _ = echo_roundtrip(proxy.listeners["echo"], payload)
    assert data == payload
    assert time.monotonic() - started >= len(payload) / 40_000


def test_tcp_slicer(refservers_start, echo):
    proxy = refservers_start("proxy", tcp=f"echo@0=127.0.0.1:{echo.port}")
    add_toxic(proxy, "slicer", match="echo", params={"average_size": 16, "size_variation": 4, "delay": 20_000})
    data, chunks = echo_roundtrip(proxy.listeners["echo"], b"s" * 256)
    assert data == b"s" * 256
    assert len(chunks) >= 2


def test_tcp_timeout(refservers_start, echo):
    proxy = refservers_start("proxy", tcp=f"echo@0=127.0.0.1:{echo.port}")
    add_toxic(proxy, "timeout", match="echo", params={"timeout": 300})
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", proxy.listeners["echo"]), timeout=10) as sock:
        sock.sendall(b"anyone there?")
        assert sock.recv(100) == b""  # nothing came back, then the proxy closed
    assert time.monotonic() - started >= 0.3


def test_tcp_upstream_refused_closes_the_client(refservers_start, closed_port):
    proxy = refservers_start("proxy", tcp=f"dead@0=127.0.0.1:{closed_port}")
    try:
        data, _ = echo_roundtrip(proxy.listeners["dead"], b"x")
        assert data == b""
    except OSError as error:
        # Closed while our byte was unread: the kernel answers with a reset, or our
        # half-close finds the connection already gone.
        assert error.errno in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE), error
    event = proxy.journal.wait_for(server="proxy", kind="connection")
    assert "connection refused" in event.details["error"]


def test_stop_frees_tcp_ports_and_drops_connections(refservers_start, echo):
    proxy = refservers_start("proxy", tcp=f"echo@0=127.0.0.1:{echo.port}")
    port = proxy.listeners["echo"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
        held.sendall(b"a")
        assert held.recv(10) == b"a"
        proxy.stop()
        try:
            assert held.recv(10) == b""
        except ConnectionResetError:
            pass  # stop() aborts open connections: a reset is the expected way to drop them
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()

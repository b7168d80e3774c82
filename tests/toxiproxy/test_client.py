"""The Toxiproxy API driven by its Python client library, ``toxiproxy-python`` (0.1.1,
the one on PyPI), as a suite that used Toxiproxy would drive it: only the calls the
library really makes (it reads ``/proxies``, posts to ``/proxies``,
``/proxies/{name}`` and ``/proxies/{name}/toxics``, deletes, posts ``/reset``, reads
``/version``). Its host and port are class attributes of ``APIConsumer``: each test
points them at its own server (pytest-xdist runs tests of one process one by one).

Traffic goes through the proxies to the ``origin`` HTTP server and the ``echo`` TCP
server of conftest.py, with requests and raw sockets."""

from __future__ import annotations

import errno
import socket
import time

import pytest
import requests
from toxiproxy import Toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound

LATENCY_MS = 400


@pytest.fixture
def toxiproxy(refservers_toxiproxy):
    client = Toxiproxy()
    client.update_api_consumer("127.0.0.1", refservers_toxiproxy.port)
    return client


def listen_port(proxy) -> int:
    host, _, port = proxy.listen.rpartition(":")
    assert host == "127.0.0.1"
    return int(port)


def timed_get(url: str) -> float:
    started = time.monotonic()
    reply = requests.get(url, timeout=10)
    assert reply.status_code == 200
    return time.monotonic() - started


def test_create_reports_the_bound_address_and_forwards(toxiproxy, origin):
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{origin.port}", name="origin")
    port = listen_port(proxy)
    assert port > 0 and proxy.enabled is True
    assert requests.get(f"http://127.0.0.1:{port}/hello", timeout=10).json()["path"] == "/hello"
    listed = toxiproxy.proxies()
    assert list(listed) == ["origin"]
    assert (listed["origin"].listen, listed["origin"].upstream) == (proxy.listen, f"127.0.0.1:{origin.port}")
    assert toxiproxy.running() is True
    assert toxiproxy.version() == b'{"version": "2.12.0"}\n'


def test_latency_toxic_delays_each_request_and_none_once_removed(toxiproxy, origin):
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{origin.port}", name="slow")
    url = f"http://127.0.0.1:{listen_port(proxy)}/x"
    proxy.add_toxic(type="latency", attributes={"latency": LATENCY_MS})
    toxic = proxy.get_toxic("latency_downstream")
    assert (toxic.type, toxic.stream, toxic.toxicity, toxic.attributes) == (
        "latency",
        "downstream",
        1,
        {"latency": LATENCY_MS, "jitter": 0},
    )
    assert timed_get(url) >= LATENCY_MS / 1000
    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    # A bound the toxic could not meet: every request would take at least LATENCY_MS.
    assert min(timed_get(url) for _ in range(3)) < LATENCY_MS / 1000


def test_reset_peer_gives_econnreset(toxiproxy, echo):
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo.port}", name="reset")
    proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
    with socket.create_connection(("127.0.0.1", listen_port(proxy)), timeout=10) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError) as caught:
            sock.recv(100)
    assert caught.value.errno == errno.ECONNRESET


def test_down_closes_the_listener_and_up_opens_it_again(toxiproxy, echo):
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo.port}", name="flaky")
    port = listen_port(proxy)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as before:
        before.sendall(b"accepted")  # through the proxy, not waiting in the listen backlog
        assert before.recv(10) == b"accepted"
        with proxy.down():
            assert toxiproxy.get_proxy("flaky").enabled is False
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
            assert before.recv(10) == b""  # the open connection was closed too
    assert toxiproxy.get_proxy("flaky").enabled is True
    with socket.create_connection(("127.0.0.1", port), timeout=10) as after:
        after.sendall(b"back")
        assert after.recv(10) == b"back"


def test_reset_enables_proxies_and_removes_toxics(toxiproxy, echo):
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo.port}", name="r")
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
    proxy.add_toxic(type="bandwidth", name="thin", attributes={"rate": 1})
    assert sorted(proxy.toxics()) == ["thin", "timeout_upstream"]
    proxy.disable()
    assert toxiproxy.reset() is True
    assert toxiproxy.get_proxy("r").enabled is True
    assert proxy.toxics() == {}


def test_errors_map_to_the_library_exceptions(toxiproxy, echo):
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo.port}", name="e")
    with pytest.raises(InvalidToxic, match="invalid toxic type"):
        proxy.add_toxic(type="lightning")
    with pytest.raises(InvalidToxic, match="stream was invalid"):
        proxy.add_toxic(type="latency", stream="sideways")
    with pytest.raises(NotFound, match="toxic not found"):
        proxy.destroy_toxic("nothing")


def test_destroy_and_populate(toxiproxy, echo, origin):
    made = toxiproxy.populate(
        [
            {"name": "a", "upstream": f"127.0.0.1:{echo.port}", "listen": "127.0.0.1:0"},
            {"name": "b", "upstream": f"127.0.0.1:{origin.port}", "listen": "127.0.0.1:0"},
        ]
    )
    assert sorted(p.name for p in made) == ["a", "b"]
    port = listen_port(toxiproxy.get_proxy("a"))
    toxiproxy.destroy_all()
    assert toxiproxy.proxies() == {}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()

"""The forward proxy with real clients: requests, curl -x, urllib's ProxyHandler,
http.client tunnels; bodies, keep-alive on both sides, CONNECT, 502/504, the journal."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import urllib.request

import pytest
import requests

from .conftest import raw_request


def test_requests_get_with_via_on_both_sides(proxy, proxy_url, origin):
    reply = requests.get(f"{origin.url}/get?x=1", proxies={"http": proxy_url}, timeout=10)
    assert reply.status_code == 200
    seen = reply.json()
    assert seen["path"] == "/get?x=1"
    assert seen["via"] == ["1.1 refservers"]
    assert "proxy-connection" not in seen["headers"]
    assert reply.headers["Via"] == "1.1 refservers"
    assert reply.headers["X-Origin"] == "yes"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_and_bodies_are_forwarded(proxy_url, origin, method):
    body = ("payload-" * 5000).encode()
    reply = requests.request(method, f"{origin.url}/anything", data=body, proxies={"http": proxy_url}, timeout=10)
    assert reply.status_code == 200
    seen = reply.json()
    assert seen["method"] == method
    assert seen["body"].encode() == body
    assert seen["headers"]["content-length"] == str(len(body))


def test_chunked_request_body(proxy_url, origin):
    parts = [b"one,", b"two,", b"three"]
    reply = requests.post(f"{origin.url}/upload", data=iter(parts), proxies={"http": proxy_url}, timeout=10)
    assert reply.json()["body"] == "one,two,three"


def test_head_has_no_body(proxy_url, origin):
    reply = requests.head(f"{origin.url}/bytes/500", proxies={"http": proxy_url}, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Content-Length"] == "500"
    assert reply.content == b""


def test_keep_alive_on_both_sides(proxy, proxy_url, origin):
    since = proxy.journal.last_id
    with requests.Session() as session:
        session.proxies = {"http": proxy_url}
        ports = [session.post(f"{origin.url}/n{i}", data=b"x" * i, timeout=10).json()["client_port"] for i in range(4)]
    # One client connection to the proxy, one upstream connection reused for every request.
    assert len(set(ports)) == 1
    connects = proxy.journal.events(server="proxy", kind="connect", since=since)
    assert len(connects) == 1
    requests_seen = proxy.journal.events(server="proxy", kind="request", since=since)
    assert [e.details["target"] for e in requests_seen] == [f"{origin.url}/n{i}" for i in range(4)]


def test_curl_x_get_and_post(proxy_url, origin):
    out = subprocess.run(
        ["curl", "-sS", "-x", proxy_url, "--data-binary", "hello=world", f"{origin.url}/form"],
        capture_output=True, check=True, timeout=30,
    )
    seen = json.loads(out.stdout)
    assert (seen["method"], seen["body"]) == ("POST", "hello=world")
    out = subprocess.run(["curl", "-sS", "-x", proxy_url, f"{origin.url}/bytes/70000"], capture_output=True, check=True, timeout=30)
    assert out.stdout == b"x" * 70000


def test_urllib_proxy_handler(proxy_url, origin):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy_url}))
    with opener.open(f"{origin.url}/via-urllib", timeout=10) as reply:
        assert json.load(reply)["path"] == "/via-urllib"


def test_refservers_http_upstream(proxy_url, refservers_http):
    reply = requests.get(f"http://127.0.0.1:{refservers_http.port}/get", proxies={"http": proxy_url}, timeout=10)
    assert reply.status_code == 200
    assert isinstance(reply.json(), dict)


def test_journal_records_the_request(proxy, proxy_url, origin):
    since = proxy.journal.last_id
    requests.post(f"{origin.url}/bytes/1234", data=b"abc", proxies={"http": proxy_url}, timeout=10)
    event = proxy.journal.wait_for(since=since, server="proxy", kind="request")
    details = event.details
    assert details["method"] == "POST"
    assert details["target"] == f"{origin.url}/bytes/1234"
    assert details["status"] == 200
    assert details["bytes_down"] > 1234
    assert details["bytes_up"] > 3
    assert details["duration_ms"] >= 0
    assert details["toxics"] == []


def test_origin_form_request_gets_an_explanation(proxy):
    data, _ = raw_request("127.0.0.1", proxy.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"absolute-URI" in data


def test_garbage_gets_400_and_the_proxy_keeps_serving(proxy, proxy_url, origin):
    data, _ = raw_request("127.0.0.1", proxy.port, b"\x00\x01 not http\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 ")
    assert requests.get(f"{origin.url}/after", proxies={"http": proxy_url}, timeout=10).status_code == 200


def test_502_for_a_closed_port(proxy_url, closed_port):
    reply = requests.get(f"http://127.0.0.1:{closed_port}/x", proxies={"http": proxy_url}, timeout=10)
    assert reply.status_code == 502
    assert "connection refused" in reply.text
    assert reply.headers["Via"] == "1.1 refservers"


def test_502_for_a_host_name_that_does_not_resolve(proxy_url):
    # .invalid never resolves (RFC 6761): the resolver's error, not a traceback or a hang.
    reply = requests.get("http://no-such-host.invalid/x", proxies={"http": proxy_url}, timeout=30)
    assert reply.status_code == 502
    assert "no-such-host.invalid:80: the host name did not resolve" in reply.text


def test_504_when_the_upstream_does_not_answer(refservers_start, silent):
    proxy = refservers_start("proxy", upstream_timeout="0.3")
    reply = requests.get(f"http://127.0.0.1:{silent}/slow", proxies={"http": f"http://127.0.0.1:{proxy.port}"}, timeout=10)
    assert reply.status_code == 504
    assert "upstream_timeout" in reply.text
    event = proxy.journal.wait_for(lambda e: e.details.get("status") == 504, server="proxy", kind="request")
    assert "no answer" in event.details["error"]


def test_a_request_to_the_proxy_itself_is_refused(proxy, proxy_url):
    reply = requests.get(f"http://127.0.0.1:{proxy.port}/loop", proxies={"http": proxy_url}, timeout=10)
    assert reply.status_code == 403
    assert "loop" in reply.text


# -- CONNECT ----------------------------------------------------------------------------


def test_http_client_set_tunnel(proxy, origin):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        connection.set_tunnel("127.0.0.1", origin.port)
        connection.request("PUT", "/through-tunnel", body=b"tunnelled")
        reply = connection.getresponse()
        seen = json.loads(reply.read())
    finally:
        connection.close()
    assert (seen["path"], seen["body"]) == ("/through-tunnel", "tunnelled")
    assert seen["via"] == []  # a tunnel is opaque: the proxy adds nothing inside it
    event = proxy.journal.wait_for(lambda e: e.details.get("method") == "CONNECT", server="proxy", kind="request")
    assert event.details["target"] == f"127.0.0.1:{origin.port}"
    assert event.details["status"] == 200
    assert event.details["bytes_up"] > 0 and event.details["bytes_down"] > 0


def test_curl_https_through_connect(proxy_url, refservers_http):
    port = refservers_http.listeners["tls"]
    out = subprocess.run(
        ["curl", "-sS", "-x", proxy_url, "--cacert", str(refservers_http.core.tls.ca_file), f"https://localhost:{port}/get"],
        capture_output=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout), dict)


def test_requests_https_through_connect(proxy_url, refservers_http):
    port = refservers_http.listeners["tls"]
    reply = requests.get(
        f"https://localhost:{port}/get", proxies={"https": proxy_url}, verify=str(refservers_http.core.tls.ca_file), timeout=10
    )
    assert reply.status_code == 200


def test_connect_to_a_closed_port_is_502(proxy, closed_port):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{closed_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 502 ")
        # The connection stays usable for the next request.
        sock.sendall(b"CONNECT nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")


def test_tunnel_with_tls_client(proxy, refservers_http):
    port = refservers_http.listeners["tls"]
    context = ssl.create_default_context(cafile=str(refservers_http.core.tls.ca_file))
    connection = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=10, context=context)
    try:
        connection.set_tunnel("localhost", port)
        connection.request("GET", "/get")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_tunnel_passes_a_half_close_on(proxy, echo):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\nHost: 127.0.0.1:{echo.port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 200 Connection established\r\n")
        sock.sendall(b"echo me, then EOF")
        sock.shutdown(socket.SHUT_WR)  # the echo server answers only what it got before EOF
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer == b"echo me, then EOF"


def test_half_closed_http_client_still_gets_its_answer(proxy, origin):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"GET {origin.url}/half HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body)["path"] == "/half"


# -- flow control: a client that does not read makes the proxy stop reading ----------------

TOTAL = 128 * 1024 * 1024


def test_tunnel_flow_control(proxy, firehose):
    source = firehose(TOTAL)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{source.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert source.outcome.wait(60)  # we read nothing: the source must stall, not finish
        assert source.stalled
        assert source.sent < TOTAL // 4


def test_forward_flow_control(proxy, firehose):
    source = firehose(TOTAL, http=True)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"GET http://127.0.0.1:{source.port}/big HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert source.outcome.wait(60)
        assert source.stalled
        assert source.sent < TOTAL // 4


# -- lifecycle ----------------------------------------------------------------------------


def test_stop_resets_an_open_tunnel_and_frees_the_port(refservers_start, echo):
    proxy = refservers_start("proxy", via="stopping")  # its own instance: this test stops it
    port = proxy.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 200 ")
        proxy.stop()
        # A stopped server must not keep talking to a client: a reset, as Twisted's
        # abortConnection sends (a tunnel left open would block here until the timeout).
        with pytest.raises(ConnectionResetError):
            sock.sendall(b"still there?")
            sock.recv(1)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # raises EADDRINUSE if the proxy kept it

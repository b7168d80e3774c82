"""The Toxiproxy API with raw ``requests`` where its Python client has no call
(``/populate``, PATCH, toxic attributes and toxicity, ``/metrics``) and for the exact
status codes and bodies Toxiproxy's api.go sends; the toxics' behaviour measured on
connections through the proxies, including connections opened before the toxic."""

from __future__ import annotations

import errno
import re
import socket
import time

import pytest
import requests


@pytest.fixture
def api(refservers_toxiproxy):
    base = f"http://127.0.0.1:{refservers_toxiproxy.port}"
    with requests.Session() as session:
        session.headers["User-Agent"] = "refservers-tests"

        def call(method: str, path: str, **kwargs):
            return session.request(method, base + path, timeout=10, **kwargs)

        yield call


def make(api, name: str, upstream_port: int, **fields) -> dict:
    reply = api("POST", "/proxies", json={"name": name, "upstream": f"127.0.0.1:{upstream_port}", "listen": "127.0.0.1:0", **fields})
    assert reply.status_code == 201, reply.text
    return reply.json()


def port_of(proxy: dict) -> int:
    return int(proxy["listen"].rpartition(":")[2])


def roundtrip(sock: socket.socket, payload: bytes) -> float:
    """Send ``payload`` on an open connection to the echo server; seconds until all came back."""
    started = time.monotonic()
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        received += chunk
    assert received == payload
    return time.monotonic() - started


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def assert_error(reply: requests.Response, status: int, message: str) -> None:
    assert reply.status_code == status
    assert reply.text == f'{{"error":"{message}","status":{status}}}\n'
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"


# -- proxies ----------------------------------------------------------------------------


def test_proxy_shapes_and_status_codes(api, echo):
    created = make(api, "db", echo.port)
    assert list(created) == ["name", "listen", "upstream", "enabled", "Logger", "toxics"]
    assert created["listen"].startswith("127.0.0.1:") and port_of(created) > 0
    assert (created["upstream"], created["enabled"], created["Logger"], created["toxics"]) == (f"127.0.0.1:{echo.port}", True, {}, [])
    assert api("GET", "/proxies/db").json() == created
    assert api("GET", "/proxies").json() == {"db": created}
    assert_error(api("POST", "/proxies", json={"name": "db", "upstream": "127.0.0.1:1"}), 409, "proxy already exists")
    assert_error(api("POST", "/proxies", json={"upstream": "127.0.0.1:1"}), 400, "missing required field: name")
    assert_error(api("POST", "/proxies", json={"name": "x"}), 400, "missing required field: upstream")
    assert_error(api("GET", "/proxies/nope"), 404, "proxy not found")
    assert_error(api("DELETE", "/proxies/nope"), 404, "proxy not found")
    assert api("POST", "/proxies", data=b"{bad").status_code == 400
    deleted = api("DELETE", "/proxies/db")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert api("GET", "/proxies").json() == {}


def test_listen_failure_is_a_500_in_gos_words(api, echo):
    taken = port_of(make(api, "first", echo.port))
    reply = api("POST", "/proxies", json={"name": "second", "upstream": "127.0.0.1:1", "listen": f"127.0.0.1:{taken}"})
    assert_error(reply, 500, f"listen tcp 127.0.0.1:{taken}: bind: address already in use")


def test_created_disabled_does_not_listen_until_enabled(api, echo):
    proxy = make(api, "later", echo.port, enabled=False)
    assert (proxy["listen"], proxy["enabled"]) == ("127.0.0.1:0", False)
    enabled = api("PATCH", "/proxies/later", json={"enabled": True}).json()
    assert enabled["enabled"] is True and port_of(enabled) > 0
    with socket.create_connection(("127.0.0.1", port_of(enabled)), timeout=10) as sock:
        assert roundtrip(sock, b"on") < 5


def test_patch_enabled_false_closes_the_listener_on_the_same_address(api, echo):
    proxy = make(api, "p", echo.port)
    port = port_of(proxy)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as open_before:
        # Through to the upstream first: a connection still in the listen backlog is
        # reset by the kernel when the listening socket closes, accepted ones get a FIN.
        assert roundtrip(open_before, b"accepted") < 5
        disabled = api("PATCH", "/proxies/p", json={"enabled": False})
        assert disabled.status_code == 200 and disabled.json()["enabled"] is False
        assert read_to_eof(open_before) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    assert api("POST", "/proxies/p", json={"enabled": True}).json()["listen"] == proxy["listen"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert roundtrip(sock, b"again") < 5


def test_patch_upstream_restarts_and_keeps_toxics(api, echo, origin):
    make(api, "move", origin.port)
    api("POST", "/proxies/move/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    moved = api("PATCH", "/proxies/move", json={"upstream": f"127.0.0.1:{echo.port}"}).json()
    assert moved["upstream"] == f"127.0.0.1:{echo.port}" and moved["enabled"] is True
    assert [t["name"] for t in moved["toxics"]] == ["latency_downstream"]
    with socket.create_connection(("127.0.0.1", port_of(moved)), timeout=10) as sock:
        assert roundtrip(sock, b"echoed, not HTTP") < 5


# -- toxics -----------------------------------------------------------------------------


def test_toxic_create_defaults_and_errors(api, echo):
    make(api, "t", echo.port)
    created = api("POST", "/proxies/t/toxics", json={"type": "latency", "stream": "upstream"})
    assert created.status_code == 200
    assert created.text == (
        '{"attributes":{"latency":0,"jitter":0},"name":"latency_upstream","type":"latency","stream":"upstream","toxicity":1}'
    )
    slicer = api("POST", "/proxies/t/toxics", json={"type": "slicer", "attributes": {"delay": 5, "unknown": 1}}).json()
    assert (slicer["name"], slicer["stream"], slicer["attributes"]) == (
        "slicer_downstream",
        "downstream",
        {"average_size": 0, "size_variation": 0, "delay": 5},
    )
    assert_error(api("POST", "/proxies/t/toxics", json={"type": "latency", "stream": "upstream"}), 409, "toxic already exists")
    assert_error(api("POST", "/proxies/t/toxics", json={"type": "nope"}), 400, "invalid toxic type")
    assert_error(
        api("POST", "/proxies/t/toxics", json={"type": "latency", "stream": "both"}),
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    assert api("POST", "/proxies/t/toxics", json={"type": "timeout", "attributes": {"timeout": 1.5}}).status_code == 400
    assert_error(api("POST", "/proxies/nope/toxics", json={"type": "latency"}), 404, "proxy not found")
    assert_error(api("GET", "/proxies/t/toxics/nope"), 404, "toxic not found")
    assert [t["name"] for t in api("GET", "/proxies/t/toxics").json()] == ["latency_upstream", "slicer_downstream"]
    assert api("GET", "/proxies/t/toxics/slicer_downstream").json() == slicer
    removed = api("DELETE", "/proxies/t/toxics/slicer_downstream")
    assert (removed.status_code, removed.content) == (204, b"")
    assert_error(api("DELETE", "/proxies/t/toxics/slicer_downstream"), 404, "toxic not found")


def test_toxic_update_changes_attributes_and_toxicity_only(api, echo):
    make(api, "u", echo.port)
    api("POST", "/proxies/u/toxics", json={"type": "latency", "name": "lag", "attributes": {"latency": 10, "jitter": 2}})
    updated = api("PATCH", "/proxies/u/toxics/lag", json={"attributes": {"latency": 20}, "toxicity": 0.5, "type": "timeout"})
    assert updated.json() == {
        "attributes": {"latency": 20, "jitter": 2},
        "name": "lag",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 0.5,
    }
    assert api("POST", "/proxies/u/toxics/lag", json={"toxicity": 1}).json()["toxicity"] == 1
    assert_error(api("PATCH", "/proxies/u/toxics/nope", json={}), 404, "toxic not found")


def test_toxics_apply_to_a_connection_already_open(api, echo):
    proxy = make(api, "live", echo.port)
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        assert roundtrip(sock, b"before") < 0.3
        api("POST", "/proxies/live/toxics", json={"type": "latency", "attributes": {"latency": 300}})
        assert roundtrip(sock, b"during") >= 0.3
        api("PATCH", "/proxies/live/toxics/latency_downstream", json={"attributes": {"latency": 600}})
        assert roundtrip(sock, b"longer") >= 0.6
        api("DELETE", "/proxies/live/toxics/latency_downstream")
        assert roundtrip(sock, b"after") < 0.3


def test_latency_on_both_streams_adds_up(api, echo):
    proxy = make(api, "both", echo.port)
    api("POST", "/proxies/both/toxics", json={"type": "latency", "stream": "upstream", "attributes": {"latency": 200}})
    api("POST", "/proxies/both/toxics", json={"type": "latency", "attributes": {"latency": 200}})
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        assert roundtrip(sock, b"x") >= 0.4


def test_toxicity_zero_never_applies(api, echo):
    proxy = make(api, "never", echo.port)
    api("POST", "/proxies/never/toxics", json={"type": "latency", "toxicity": 0, "attributes": {"latency": 2000}})
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        assert roundtrip(sock, b"quick") < 2


def test_bandwidth_is_in_kilobytes_per_second(api, echo):
    proxy = make(api, "thin", echo.port)
    api("POST", "/proxies/thin/toxics", json={"type": "bandwidth", "attributes": {"rate": 20}})
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        assert roundtrip(sock, b"b" * 10_000) >= 10_000 / 20_000  # 10 KB at 20 KB/s


def test_slicer_delay_is_in_microseconds(api, echo):
    proxy = make(api, "sliced", echo.port)
    api("POST", "/proxies/sliced/toxics", json={"type": "slicer", "attributes": {"average_size": 1, "delay": 50_000}})
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        assert roundtrip(sock, b"0123456789") >= 9 * 0.05  # ten 1-byte slices, 50 ms apart


def test_limit_data_closes_after_n_bytes(api, echo):
    proxy = make(api, "capped", echo.port)
    api("POST", "/proxies/capped/toxics", json={"type": "limit_data", "attributes": {"bytes": 4}})
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        sock.sendall(b"0123456789")
        assert read_to_eof(sock) == b"0123"


def test_slow_close_delays_the_close(api, echo):
    proxy = make(api, "lingering", echo.port)
    api("POST", "/proxies/lingering/toxics", json={"type": "slow_close", "attributes": {"delay": 400}})
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        assert roundtrip(sock, b"data passes") < 0.4
        sock.shutdown(socket.SHUT_WR)  # the echo server closes: its FIN waits 400 ms
        started = time.monotonic()
        assert read_to_eof(sock) == b""
        assert time.monotonic() - started >= 0.4


def test_timeout_holds_data_and_its_removal_closes_the_connection(api, echo):
    proxy = make(api, "held", echo.port)
    api("POST", "/proxies/held/toxics", json={"type": "timeout", "attributes": {"timeout": 0}})
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        sock.sendall(b"lost")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(10)
        api("DELETE", "/proxies/held/toxics/timeout_downstream")
        assert read_to_eof(sock) == b""


def test_reset_peer_sends_a_real_rst_after_its_timeout(api, echo):
    proxy = make(api, "rst", echo.port)
    api("POST", "/proxies/rst/toxics", json={"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 200}})
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"trigger")
        with pytest.raises(ConnectionResetError) as caught:
            sock.recv(10)
        assert time.monotonic() - started >= 0.2
    assert caught.value.errno == errno.ECONNRESET


# -- populate, reset, version, metrics ----------------------------------------------------


def test_populate_keeps_unchanged_and_replaces_changed(api, echo, origin):
    body = [
        {"name": "same", "upstream": f"127.0.0.1:{echo.port}", "listen": "127.0.0.1:0"},
        {"name": "moved", "upstream": f"127.0.0.1:{echo.port}", "listen": "127.0.0.1:0"},
    ]
    first = api("POST", "/populate", json=body)
    assert first.status_code == 201
    made = {p["name"]: p for p in first.json()["proxies"]}
    for name in made:
        api("POST", f"/proxies/{name}/toxics", json={"type": "latency"})
    body[0]["listen"] = made["same"]["listen"]  # what it resolved to: unchanged
    body[1]["listen"] = made["moved"]["listen"]
    body[1]["upstream"] = f"127.0.0.1:{origin.port}"  # changed: replaced, toxics gone
    again = api("POST", "/populate", json=body).json()["proxies"]
    assert again[0] == api("GET", "/proxies/same").json() and again[0]["listen"] == made["same"]["listen"]
    assert [t["name"] for t in again[0]["toxics"]] == ["latency_downstream"]
    assert again[1]["upstream"] == f"127.0.0.1:{origin.port}" and again[1]["toxics"] == []
    assert again[1]["listen"] == made["moved"]["listen"]
    assert requests.get(f"http://{again[1]['listen']}/via-populate", timeout=10).json()["path"] == "/via-populate"


def test_populate_errors(api, echo):
    missing = api("POST", "/populate", json=[{"name": "a", "upstream": f"127.0.0.1:{echo.port}"}, {"upstream": "h:1"}])
    assert missing.status_code == 400
    assert missing.json() == {"error": "missing required field: name at proxy 2", "status": 400, "proxies": None}
    assert api("GET", "/proxies").json() == {}  # checked before anything is made
    assert api("POST", "/populate", json=[]).json() == {"proxies": None}


def test_reset_returns_204(api, echo):
    make(api, "z", echo.port, enabled=False)
    api("POST", "/proxies/z/toxics", json={"type": "latency"})
    reply = api("POST", "/reset")
    assert (reply.status_code, reply.content) == (204, b"")
    assert api("GET", "/proxies/z").json()["enabled"] is True
    assert api("GET", "/proxies/z/toxics").json() == []


def test_version_and_browsers(api):
    version = api("GET", "/version")
    assert (version.text, version.headers["Content-Type"]) == ('{"version": "2.12.0"}\n', "application/json;charset=utf-8")
    assert re.fullmatch(r"[0-9a-v]{20}", version.headers["X-Toxiproxy-Request-Id"])
    browser = api("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert (browser.status_code, browser.text) == (403, "User agent not allowed\n")


def test_metrics_count_bytes_per_proxy_and_direction(api, echo):
    proxy = make(api, "counted", echo.port)
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        roundtrip(sock, b"12345")
    # Counted when the connection ends (as Toxiproxy does when a link ends).
    deadline = time.monotonic() + 10
    labels = f'direction="downstream",listener="{proxy["listen"]}",proxy="counted",upstream="127.0.0.1:{echo.port}"'
    expected = f"toxiproxy_proxy_sent_bytes_total{{{labels}}} 5"
    while expected not in (text := api("GET", "/metrics").text) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a counter the proxy updates on its own thread
    assert expected in text
    assert f"toxiproxy_proxy_received_bytes_total{{{labels}}} 5" in text


# -- one state with the admin API and fault rules -------------------------------------------


def test_one_state_with_the_admin_api(refservers_toxiproxy, refservers_admin, api, echo):
    admin = f"http://127.0.0.1:{refservers_admin.port}/api/v1/proxies"
    made_here = make(api, "here", echo.port)
    api("POST", "/proxies/here/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    seen_there = {p["name"]: p for p in requests.get(admin, timeout=10).json()["proxies"]}
    assert seen_there["here"]["address"] == made_here["listen"]
    assert seen_there["here"]["source"] == "toxiproxy"
    assert seen_there["here"]["toxics"][0]["name"] == "latency_downstream"
    made_there = requests.post(admin, json={"name": "there", "upstream": f"127.0.0.1:{echo.port}"}, timeout=10).json()
    seen_here = api("GET", "/proxies/there").json()
    assert seen_here["listen"] == made_there["address"] and seen_here["enabled"] is True
    assert requests.delete(f"{admin}/here", timeout=10).status_code == 200
    assert_error(api("GET", "/proxies/here"), 404, "proxy not found")


def test_fault_rules_still_apply_to_toxiproxy_proxies(refservers_toxiproxy, api, echo):
    proxy = make(api, "ruled", echo.port)
    # A proxy fault rule added directly in the shared FaultBook (the faults API is tested on its own).
    refservers_toxiproxy.core.faults.add({"server": "proxy", "action": "limit_data", "match": "ruled", "params": {"bytes": 3}})
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as sock:
        sock.sendall(b"abcdef")
        assert read_to_eof(sock) == b"abc"


def test_a_host_name_listen_reports_its_address_and_populate_keeps_it(api, echo):
    made = api("POST", "/proxies", json={"name": "named", "upstream": f"127.0.0.1:{echo.port}", "listen": "localhost:0"}).json()
    assert made["listen"].startswith("127.0.0.1:") and port_of(made) > 0
    api("POST", "/proxies/named/toxics", json={"type": "limit_data", "attributes": {"bytes": 7}})
    # Toxiproxy 2.12 resolves the name before comparing: the same proxy, not a restart.
    again = api("POST", "/populate", json=[{"name": "named", "upstream": f"127.0.0.1:{echo.port}", "listen": f"localhost:{port_of(made)}"}])
    assert again.status_code == 201
    assert again.json()["proxies"][0]["toxics"][0]["name"] == "limit_data_downstream"


def test_populate_creates_disabled_proxies_and_keeps_the_enabled_state(api, echo):
    body = [{"name": "off", "upstream": f"127.0.0.1:{echo.port}", "listen": "127.0.0.1:0", "enabled": False}]
    first = api("POST", "/populate", json=body).json()["proxies"][0]
    assert (first["enabled"], first["listen"]) == (False, "127.0.0.1:0")
    body[0]["enabled"] = True  # unchanged listen and upstream: kept as it is, still disabled
    assert api("POST", "/populate", json=body).json()["proxies"][0]["enabled"] is False

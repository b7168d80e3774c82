"""Each toxic on the HTTP forward proxy, observed from a real client.

Timing assertions are lower bounds only (a toxic that delays must delay at least its
configured amount); nothing asserts how fast anything is.
"""

from __future__ import annotations

import random
import socket
import time

import pytest
import requests

from servers.core import load_config
from servers.core.config import ConfigError
from servers.core.faults import FaultError
from servers.registry import make_core, schema, server_class

from .conftest import add_toxic, raw_request


def get(proxy_url, url, **kwargs):
    return requests.get(url, proxies={"http": proxy_url}, timeout=10, **kwargs)


def request_bytes(origin, path: str) -> bytes:
    return f"GET {origin.url}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


def test_latency_downstream(proxy, proxy_url, origin):
    add_toxic(proxy, "latency", params={"latency": 400})
    started = time.monotonic()
    assert get(proxy_url, f"{origin.url}/slow").status_code == 200
    assert time.monotonic() - started >= 0.4
    event = proxy.journal.wait_for(lambda e: e.details.get("status") == 200, server="proxy", kind="request")
    assert event.details["toxics"] == ["latency"]


def test_latency_upstream_with_jitter(proxy, proxy_url, origin):
    add_toxic(proxy, "latency", params={"latency": 300, "jitter": 100, "stream": "upstream"}, seed=3)
    started = time.monotonic()
    assert get(proxy_url, f"{origin.url}/slow-up").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_latency_only_where_the_glob_matches(proxy, proxy_url, origin):
    add_toxic(proxy, "latency", match="*/slow/*", params={"latency": 5000})
    started = time.monotonic()
    assert get(proxy_url, f"{origin.url}/fast").status_code == 200
    event = proxy.journal.wait_for(lambda e: e.details.get("target", "").endswith("/fast"), server="proxy", kind="request")
    assert event.details["toxics"] == []
    assert time.monotonic() - started < 60  # sanity only: the 5 s toxic did not apply


def test_bandwidth_lower_bound(proxy, proxy_url, origin):
    add_toxic(proxy, "bandwidth", params={"rate": 50})  # 50 KB/s
    started = time.monotonic()
    reply = get(proxy_url, f"{origin.url}/bytes/30000")
    elapsed = time.monotonic() - started
    assert reply.content == b"x" * 30000
    assert elapsed >= 30000 / 50_000


def test_limit_data_exactly_n_bytes_then_eof(proxy, origin):
    add_toxic(proxy, "limit_data", params={"bytes": 100})
    data, _ = raw_request("127.0.0.1", proxy.port, request_bytes(origin, "/bytes/5000"))
    assert len(data) == 100
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


def test_reset_peer_gives_connection_reset(proxy, origin):
    add_toxic(proxy, "reset_peer", params={"timeout": 0})
    with pytest.raises(ConnectionResetError):
        raw_request("127.0.0.1", proxy.port, request_bytes(origin, "/x"))


def test_reset_peer_upstream_gives_502(proxy, proxy_url, origin):
    add_toxic(proxy, "reset_peer", params={"timeout": 0, "stream": "upstream"})
    reply = get(proxy_url, f"{origin.url}/x")
    assert reply.status_code == 502


def test_slicer_splits_the_response(proxy, origin):
    add_toxic(proxy, "slicer", params={"average_size": 10, "size_variation": 5, "delay": 20_000})
    data, chunks = raw_request("127.0.0.1", proxy.port, request_bytes(origin, "/bytes/200"))
    assert data.endswith(b"\r\n\r\n" + b"x" * 200)
    assert len(chunks) >= 2


def test_timeout_sends_nothing_then_closes(proxy, origin):
    add_toxic(proxy, "timeout", params={"timeout": 300})
    started = time.monotonic()
    data, _ = raw_request("127.0.0.1", proxy.port, request_bytes(origin, "/x"))
    assert data == b""
    assert time.monotonic() - started >= 0.3


def test_timeout_zero_holds_the_connection(proxy, origin):
    add_toxic(proxy, "timeout", params={"timeout": 0})
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5) as sock:
        sock.sendall(request_bytes(origin, "/x"))
        with pytest.raises(TimeoutError):
            sock.recv(1)  # held: neither data nor close


def test_http_status_for_matching_path(proxy, proxy_url, origin):
    add_toxic(proxy, "http_status", match=f"127.0.0.1:{origin.port}/broken*", params={"status": 503, "body": "down for the test\n"})
    broken = get(proxy_url, f"{origin.url}/broken/thing?q=1")
    assert broken.status_code == 503
    assert broken.text == "down for the test\n"
    assert "X-Origin" not in broken.headers  # the upstream was not contacted
    assert get(proxy_url, f"{origin.url}/fine").status_code == 200


def test_http_status_on_connect(proxy, proxy_url, origin):
    add_toxic(proxy, "http_status", match=f"127.0.0.1:{origin.port}", params={"status": 502})
    with pytest.raises(requests.exceptions.ProxyError):
        requests.get(f"https://127.0.0.1:{origin.port}/", proxies={"https": proxy_url}, timeout=10)


def test_add_headers_both_ways(proxy, proxy_url, origin):
    add_toxic(proxy, "add_headers", params={"headers": {"X-Fault": "yes", "Retry-After": "7"}})
    add_toxic(proxy, "add_headers", params={"headers": {"X-Sent-Upstream": "1"}, "stream": "upstream"})
    reply = get(proxy_url, f"{origin.url}/h")
    assert (reply.headers["X-Fault"], reply.headers["Retry-After"]) == ("yes", "7")
    # One rule per kind fires per request: the first (downstream) one here.
    assert "x-sent-upstream" not in reply.json()["headers"]


def test_add_headers_upstream(proxy, proxy_url, origin):
    add_toxic(proxy, "add_headers", params={"headers": {"X-Sent-Upstream": "1"}, "stream": "upstream"})
    assert get(proxy_url, f"{origin.url}/h").json()["headers"]["x-sent-upstream"] == "1"


def test_probability_with_seed_is_reproducible(proxy, proxy_url, origin):
    def statuses() -> list[int]:
        rule = add_toxic(proxy, "http_status", probability=0.5, seed=7)
        try:
            with requests.Session() as session:
                session.proxies = {"http": proxy_url}
                return [session.get(f"{origin.url}/p{i}", timeout=10).status_code for i in range(20)]
        finally:
            proxy.core.faults.remove(rule.id)

    first, second = statuses(), statuses()
    assert first == second
    draws = random.Random(7)
    assert first == [503 if draws.random() < 0.5 else 200 for _ in range(20)]
    assert {200, 503} == set(first)


def test_times_limits_the_firings(proxy, proxy_url, origin):
    add_toxic(proxy, "http_status", times=2, params={"status": 500})
    assert [get(proxy_url, f"{origin.url}/t").status_code for _ in range(4)] == [500, 500, 200, 200]


def test_bad_params_are_refused_when_the_rule_is_added(proxy):
    with pytest.raises(FaultError, match=r"^params.latency: expected a number 0-3600000, got 'slow'$"):
        add_toxic(proxy, "latency", params={"latency": "slow"})
    with pytest.raises(FaultError, match=r"^params.size_variation: must be smaller than params.average_size$"):
        add_toxic(proxy, "slicer", params={"average_size": 4, "size_variation": 4})
    assert proxy.core.faults.rules("proxy") == []


def test_bad_params_in_config_fail_at_start(tmp_path):
    env = {"REFSERVERS_FAULTS": '[{"server": "proxy", "action": "slicer", "params": {"average_size": 0}}]'}
    config = load_config(schema(), env=env, overrides=[f"core.data_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"^REFSERVERS_FAULTS\[0\]: params.average_size: expected an integer >= 1, got 0$"):
        make_core(config)


def test_unknown_toxic_is_refused_by_the_fault_book(proxy):
    with pytest.raises(ValueError, match="action: proxy supports"):
        add_toxic(proxy, "lag")


def test_rules_from_config_file_and_environment(tmp_path, origin):
    config_file = tmp_path / "proxy.toml"
    config_file.write_text(
        '[[faults]]\nserver = "proxy"\naction = "http_status"\nmatch = "*/from-file"\nparams = { status = 418, body = "file rule" }\n'
    )
    env = {"REFSERVERS_FAULTS": '[{"server": "proxy", "action": "add_headers", "params": {"headers": {"X-Env": "1"}}}]'}
    overrides = [f"core.data_dir={tmp_path / 'data'}", "proxy.port=0"]
    core = make_core(load_config(schema(), files=[config_file], env=env, overrides=overrides))
    try:
        proxy = server_class("proxy")(core.config["proxy"], core).start()
        proxy_url = f"http://127.0.0.1:{proxy.port}"
        from_file = get(proxy_url, f"{origin.url}/from-file")
        assert (from_file.status_code, from_file.text) == (418, "file rule")
        assert get(proxy_url, f"{origin.url}/other").headers["X-Env"] == "1"
    finally:
        core.stop_all()


def test_http_status_200_on_connect_is_a_tunnel_to_nowhere(proxy, origin):
    add_toxic(proxy, "http_status", match=f"127.0.0.1:{origin.port}", params={"status": 200})
    request = f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    data, _ = raw_request("127.0.0.1", proxy.port, request)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\n")  # the head, then the close
    assert get(f"http://127.0.0.1:{proxy.port}", f"{origin.url}/still-serving").status_code == 200

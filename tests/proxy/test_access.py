"""Proxy authentication (407, Basic against the user table), allow/deny lists, the wire trace."""

from __future__ import annotations

import logging
import subprocess

import pytest
import requests

from servers.core.config import ConfigError, load_config
from servers.registry import schema


@pytest.fixture
def auth_proxy(refservers_start):
    return refservers_start("proxy", require_auth="true")


def test_407_with_proxy_authenticate(auth_proxy, origin):
    reply = requests.get(f"{origin.url}/x", proxies={"http": f"http://127.0.0.1:{auth_proxy.port}"}, timeout=10)
    assert reply.status_code == 407
    assert reply.headers["Proxy-Authenticate"] == 'Basic realm="refservers"'
    assert "curl -U" in reply.text
    event = auth_proxy.journal.wait_for(server="proxy", kind="auth")
    assert event.details == {"ok": False, "user": None, "mechanism": "basic"}


def test_credentials_from_the_user_table(auth_proxy, origin):
    proxy = f"http://demo:demo@127.0.0.1:{auth_proxy.port}"
    reply = requests.get(f"{origin.url}/x", proxies={"http": proxy}, timeout=10)
    assert reply.status_code == 200
    # The credentials are for the proxy: they never reach the origin.
    assert "proxy-authorization" not in reply.json()["headers"]
    event = auth_proxy.journal.wait_for(lambda e: e.details["ok"], server="proxy", kind="auth")
    assert event.details["user"] == "demo"
    request = auth_proxy.journal.wait_for(lambda e: e.details.get("status") == 200, server="proxy", kind="request")
    assert request.details["user"] == "demo"
    assert "demo" not in str([e.details for e in auth_proxy.journal.events(kind="auth")]).replace("'user': 'demo'", "")


def test_wrong_password_is_407_and_not_journalled(auth_proxy, origin):
    proxy = f"http://demo:wrong-secret@127.0.0.1:{auth_proxy.port}"
    reply = requests.get(f"{origin.url}/x", proxies={"http": proxy}, timeout=10)
    assert reply.status_code == 407
    event = auth_proxy.journal.wait_for(server="proxy", kind="auth")
    assert event.details == {"ok": False, "user": "demo", "mechanism": "basic"}
    assert "wrong-secret" not in repr([e.as_json() for e in auth_proxy.journal.events()])


def test_curl_proxy_user_for_http_and_connect(auth_proxy, origin, refservers_http):
    proxy = f"http://127.0.0.1:{auth_proxy.port}"
    out = subprocess.run(["curl", "-sS", "-x", proxy, "-U", "demo:demo", f"{origin.url}/c"], capture_output=True, timeout=30)
    assert out.returncode == 0 and b'"path": "/c"' in out.stdout
    denied = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy, f"{origin.url}/c"], capture_output=True, timeout=30)
    assert denied.stdout == b"407"
    https = f"https://localhost:{refservers_http.listeners['tls']}/get"
    ca = str(refservers_http.core.tls.ca_file)
    tunnel = subprocess.run(["curl", "-sS", "-x", proxy, "-U", "demo:demo", "--cacert", ca, https], capture_output=True, timeout=30)
    assert tunnel.returncode == 0, tunnel.stderr
    refused = subprocess.run(["curl", "-sS", "-x", proxy, "--cacert", ca, https], capture_output=True, timeout=30)
    assert refused.returncode != 0
    assert b"407" in refused.stderr


@pytest.mark.parametrize(
    "settings",
    [
        {"deny_hosts": "localhost,*.example"},
        {"allow_hosts": "127.0.0.1"},
        {"allow_ports": "1-1023"},
    ],
)
def test_access_lists_give_403(refservers_start, origin, settings):
    proxy = refservers_start("proxy", **settings)
    reply = requests.get(f"http://localhost:{origin.port}/x", proxies={"http": f"http://127.0.0.1:{proxy.port}"}, timeout=10)
    assert reply.status_code == 403
    assert reply.text.startswith("refservers proxy: 403 Forbidden: ")
    assert "allow list" in reply.text or "deny list" in reply.text


def test_deny_wins_over_allow_and_applies_to_connect(refservers_start, origin):
    proxy = refservers_start("proxy", allow_hosts="*", deny_ports=str(origin.port))
    proxy_url = f"http://127.0.0.1:{proxy.port}"
    assert requests.get(f"{origin.url}/x", proxies={"http": proxy_url}, timeout=10).status_code == 403
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_connect}", "-p", "-x", proxy_url, f"{origin.url}/x"],
        capture_output=True, timeout=30,
    )
    assert out.stdout == b"403"


def test_allowed_host_passes(refservers_start, origin):
    proxy = refservers_start("proxy", allow_hosts="127.0.0.*", allow_ports=f"80,{origin.port}")
    reply = requests.get(f"{origin.url}/x", proxies={"http": f"http://127.0.0.1:{proxy.port}"}, timeout=10)
    assert reply.status_code == 200


def test_bad_port_pattern_fails_config_in_one_line():
    with pytest.raises(ConfigError, match=r"REFSERVERS_PROXY_ALLOW_PORTS: expected a list of ports"):
        load_config(schema(), env={"REFSERVERS_PROXY_ALLOW_PORTS": "80,http"})


class TestWireTrace:
    @pytest.fixture
    def refservers_settings(self):
        return ["core.trace=true", "proxy.require_auth=true"]

    def test_request_head_traced_with_credentials_masked(self, proxy, origin, caplog):
        caplog.set_level(logging.INFO, logger="refservers.proxy.wire")
        proxy_url = f"http://demo:demo@127.0.0.1:{proxy.port}"
        assert requests.get(f"{origin.url}/traced", proxies={"http": proxy_url}, timeout=10).status_code == 200
        lines = [record.getMessage() for record in caplog.records if record.name == "refservers.proxy.wire"]
        assert any(f"<< GET {origin.url}/traced HTTP/1.1" in line for line in lines)
        assert any("<< Proxy-Authorization: Basic ****" in line for line in lines)
        assert any(">> HTTP/1.1 200" in line for line in lines)
        assert not any("ZGVtbzpkZW1v" in line for line in lines)  # base64 of demo:demo

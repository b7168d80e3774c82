"""The admin API's rails, over real HTTP: Host allowlist (DNS rebinding), Origin and
Content-Type checks (cross-site requests), optional auth, and the body size limit."""

from __future__ import annotations

import base64
import socket

import pytest
import requests

from servers.core.guard import AdminGuard, host_of

RULE = {"server": "http", "action": "delay", "params": {"seconds": 0.1}}


def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``head`` (request line and headers, CRLF-separated) as is; return status, reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        reply = b""
        while b"\r\n\r\n" not in reply and (chunk := sock.recv(65536)):
            reply += chunk
    return int(reply.split(b" ", 2)[1]), reply


def faults(admin) -> list:
    return requests.get(admin.url + "/api/v1/faults", timeout=10).json()["faults"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "app.localhost", "192.0.2.7"])
def test_loopback_names_and_ip_literals_are_allowed(refservers_admin, host):
    status, _ = raw_request(refservers_admin.port, f"GET /api/v1 HTTP/1.1\r\nHost: {host}:{refservers_admin.port}\r\nConnection: close")
    assert status == 200


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "attacker.test:8025"])
def test_other_host_names_get_403_naming_the_setting(refservers_admin, host):
    reply = requests.get(refservers_admin.url + "/api/v1/messages", headers={"Host": host}, timeout=10)
    assert reply.status_code == 403
    assert "admin.allowed_hosts" in reply.json()["error"]


def test_a_request_without_host_is_refused(refservers_admin):
    status, reply = raw_request(refservers_admin.port, "GET /api/v1 HTTP/1.0")
    assert status == 403


def test_configured_names_and_star(refservers_start):
    named = refservers_start("admin", allowed_hosts="mail.test,api.test:8025")
    assert requests.get(named.url + "/api/v1", headers={"Host": "api.test"}, timeout=10).status_code == 200
    assert requests.get(named.url + "/api/v1", headers={"Host": "other.test"}, timeout=10).status_code == 403
    named.stop()
    anything = refservers_start("admin", allowed_hosts="*")
    assert requests.get(anything.url + "/api/v1", headers={"Host": "other.test"}, timeout=10).status_code == 200


def test_json_posted_as_text_plain_is_refused_and_nothing_added(refservers_http, refservers_admin):
    # What a cross-site <form enctype="text/plain"> or a no-cors fetch can send.
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        reply = requests.post(
            refservers_admin.url + "/api/v1/faults",
            data=b'{"server": "http", "action": "delay", "params": {"seconds": 0.1}}',
            headers=headers,
            timeout=10,
        )
        assert reply.status_code == 415, (headers, reply.text)
        assert "application/json" in reply.json()["error"]
    assert faults(refservers_admin) == []
    assert requests.post(refservers_admin.url + "/api/v1/faults", json=RULE, timeout=10).status_code == 201


def test_cross_site_origin_is_refused_on_mutations(refservers_http, refservers_admin):
    url = refservers_admin.url + "/api/v1/faults"
    evil = {"Origin": "http://evil.example"}
    assert requests.post(url, json=RULE, headers=evil, timeout=10).status_code == 403
    assert requests.post(url, json=RULE, headers={"Origin": "null"}, timeout=10).status_code == 403
    same = {"Origin": f"http://localhost:{refservers_admin.port}"}
    assert requests.post(url, json=RULE, headers=same, timeout=10).status_code == 201
    assert requests.delete(url, headers=evil, timeout=10).status_code == 403
    assert len(faults(refservers_admin)) == 1
    # Reading is not a mutation: a GET with a foreign Origin is answered (the browser
    # keeps the body from the page: we send no CORS headers).
    assert requests.get(url, headers=evil, timeout=10).status_code == 200


def test_websocket_upgrade_with_foreign_origin_is_refused(refservers_admin):
    head = (
        f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{refservers_admin.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Origin: http://evil.example"
    )
    status, _ = raw_request(refservers_admin.port, head)
    assert status == 403


@pytest.mark.parametrize(
    ("auth", "good", "bad"),
    [
        ("ops:s3cret", "Basic " + base64.b64encode(b"ops:s3cret").decode(), "Basic " + base64.b64encode(b"ops:nope").decode()),
        ("tok-123", "Bearer tok-123", "Bearer tok-124"),
    ],
)
def test_auth_when_configured(refservers_start, auth, good, bad):
    admin = refservers_start("admin", auth=auth)
    url = admin.url + "/api/v1/faults"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].split()[0] == good.split()[0]
    assert requests.get(url, headers={"Authorization": bad}, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": good}, timeout=10).status_code == 200
    # Health checks of containers and supervisors carry no credentials.
    assert requests.get(admin.url + "/health", timeout=10).status_code == 200


def test_body_over_the_limit_gets_413(refservers_start):
    admin = refservers_start("admin", max_body="1024")
    url = admin.url + "/api/v1/faults"
    big = {**RULE, "match": "x" * 2000}
    reply = requests.post(url, json=big, timeout=10)
    assert reply.status_code == 413
    assert "admin.max_body" in reply.json()["error"]

    def chunks():
        yield b'{"server": "http", "match": "'
        for _ in range(4):
            yield b"y" * 500
        yield b'"}'

    chunked = requests.post(url, data=chunks(), headers={"Content-Type": "application/json"}, timeout=10)
    assert chunked.status_code == 413
    assert requests.post(url, json={**RULE, "server": "nope"}, timeout=10).status_code == 400  # small ones go on


def test_host_parsing():
    assert host_of("Example.TEST:8025") == "example.test"
    assert host_of("[::1]:8025") == "::1"
    assert host_of("::1") == "::1"
    guard = AdminGuard.build("10.1.2.3", ["mail.test"], "", 10)
    assert guard.host_allowed("mail.test") and guard.host_allowed("10.1.2.3") and not guard.host_allowed("evil.test")


def test_up_warns_when_admin_binds_beyond_loopback_without_auth(cli):
    run = cli("up", "--only", "http", "--set", "admin.host=0.0.0.0", env={
        "REFSERVERS_HTTP_PORT": "0", "REFSERVERS_HTTP_TLS_PORT": "0", "REFSERVERS_ADMIN_PORT": "0"})
    run.wait_ready()
    assert run.stop() == 0
    warnings = [line for line in run.stderr.splitlines() if "without authentication" in line]
    assert len(warnings) == 1 and "REFSERVERS_ADMIN_AUTH" in warnings[0]

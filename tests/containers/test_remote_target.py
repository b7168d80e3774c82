"""RemoteServer, the handle the fixtures yield in container mode, tested against an
in-process server reached only over its sockets and its admin API (no Docker needed:
runs in `make test`; skipped when the fixtures themselves are in remote mode)."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable

import pytest

from servers.core.lifecycle import Server
from servers.testing.remote import RemoteServer, remote_address, target_mode

pytestmark = pytest.mark.skipif(
    target_mode(os.environ), reason="checks remote handles against in-process servers; the fixtures are remote here"
)


@pytest.fixture
def http_and_admin(refservers_start: Callable[..., Server]) -> tuple[Server, Server]:
    return refservers_start("http"), refservers_start("admin")


def _remote(http: Server, admin: Server) -> RemoteServer:
    env = {"REFSERVERS_TARGET_HTTP": f"127.0.0.1:{http.port}", "REFSERVERS_TARGET_HTTP_ADMIN": f"127.0.0.1:{admin.port}"}
    address = remote_address("http", env)
    assert address == ("127.0.0.1", http.port)
    return RemoteServer("http", *address, env)


def test_listeners_and_url_come_from_the_servers_admin_api(http_and_admin: tuple[Server, Server]) -> None:
    http, admin = http_and_admin
    remote = _remote(http, admin)
    assert remote.listeners == http.listeners  # ports 0 -> bound ports, names as the server reports them
    assert remote.url == http.url
    with urllib.request.urlopen(f"{remote.url}/get", timeout=10) as reply:
        assert reply.status == 200


def test_journal_shows_only_events_after_the_handle_was_made(http_and_admin: tuple[Server, Server]) -> None:
    http, admin = http_and_admin
    with urllib.request.urlopen(f"{http.url}/headers", timeout=10):
        pass
    http.journal.wait_for(lambda e: e.details["path"] == "/headers", kind="request")
    remote = _remote(http, admin)
    with urllib.request.urlopen(f"{remote.url}/get", timeout=10):
        pass
    event = remote.journal.wait_for(kind="request", timeout=10)
    assert event.details["path"] == "/get"
    assert [e.details["path"] for e in remote.journal.events(kind="request")] == ["/get"]
    # ...while the server's own journal has both: the baseline is the handle's, not a clearing.
    assert [e.details["path"] for e in http.journal.events(kind="request")][-2:] == ["/headers", "/get"]


def test_in_process_internals_skip_the_test_with_the_reason(http_and_admin: tuple[Server, Server]) -> None:
    remote = _remote(*http_and_admin)
    with pytest.raises(pytest.skip.Exception, match="needs the in-process http server \\('core'\\)"):
        _ = remote.core


def test_without_an_admin_address_listeners_follow_the_option_names() -> None:
    remote = RemoteServer("http", "127.0.0.1", 18080, {})
    assert remote.listeners == {"main": 18080, "tls": 8443}
    with pytest.raises(pytest.skip.Exception, match="no journal"):
        _ = remote.journal


def test_target_addresses_are_read_from_the_environment() -> None:
    assert remote_address("smtp", {}) is None
    assert remote_address("smtp", {"REFSERVERS_TARGET": "container"}) == ("127.0.0.1", 1025)
    assert remote_address("smtp", {"REFSERVERS_TARGET_SMTP": "[::1]:2525"}) == ("::1", 2525)
    with pytest.raises(pytest.UsageError, match="REFSERVERS_TARGET_SMTP: expected host:port"):
        remote_address("smtp", {"REFSERVERS_TARGET_SMTP": "nonsense"})

"""The Server shape: port 0, probe before start returns, idempotent fast stop, TLS material."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from servers.core import BindError, EventJournal
from servers.core.logs import _MAY_HOLD_SECRET, _SECRET_PATTERNS, mask_credentials
from servers.core.tls import TLSMaterial


def test_start_binds_port_zero_and_stop_frees_it(refservers_start):
    server = refservers_start("http")
    port = server.port
    assert port != 0 and server.state == "ready"
    with socket.create_connection(("127.0.0.1", port)):
        pass
    server.stop()
    server.stop()  # idempotent
    assert server.state == "stopped"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # The port is free again: another server (SO_REUSEADDR, as servers set it) can bind it.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_stop_drops_open_connections(refservers_start):
    server = refservers_start("http")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
        client.sendall(b"GET /get HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.recv(100).startswith(b"HTTP/1.1 ")
        server.stop()
        client.settimeout(30)
        data = b"x"
        try:
            while data:
                data = client.recv(65536)  # EOF instead of hanging...
        except ConnectionResetError:
            pass  # ...or a reset: the server aborted the connection


def test_context_manager_and_bind_error(refservers_core, busy_port):
    from servers import registry

    cls = registry.server_class("http")
    with cls(refservers_core.config["http"], refservers_core) as server:
        assert server.state == "ready"
    assert server.state == "stopped"
    clash = cls(refservers_core.config["http"].replace(port=busy_port), refservers_core)
    with pytest.raises(BindError, match=rf"http: cannot listen on 127\.0\.0\.1:{busy_port} \(main\): "):
        clash.start()
    assert clash.state == "failed" and clash.listeners == {}


def test_generated_certificate_verifies_for_localhost_and_ip(tmp_path):
    material = TLSMaterial(tmp_path / "tls", extra_names=["app.test"])
    context = material.server_context()
    first_ca = material.ca_file.read_bytes()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            connection, _ = listener.accept()
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"hi")

        thread = threading.Thread(target=serve)
        thread.start()
        client = material.client_context()
        with socket.create_connection(("127.0.0.1", port)) as raw, client.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.recv(2) == b"hi"
        thread.join()
    # Reused, not regenerated, by a second instance on the same directory.
    again = TLSMaterial(tmp_path / "tls", extra_names=["app.test"])
    again.ensure()
    assert again.ca_file.read_bytes() == first_ca
    assert (tmp_path / "tls" / "server-key.pem").stat().st_mode & 0o777 == 0o600


def test_certificate_is_reissued_when_names_change_but_ca_is_kept(tmp_path):
    TLSMaterial(tmp_path).ensure()
    ca, cert = (tmp_path / "ca.pem").read_bytes(), (tmp_path / "server.pem").read_bytes()
    TLSMaterial(tmp_path, extra_names=["new.test"]).ensure()
    assert (tmp_path / "ca.pem").read_bytes() == ca
    assert (tmp_path / "server.pem").read_bytes() != cert
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    assert context.cert_store_stats()["x509_ca"] == 1


def test_journal_is_bounded_and_wait_for_times_out():
    journal = EventJournal(size=3)
    for number in range(5):
        journal.record("x", "command", "peer", n=number)
    assert [e.details["n"] for e in journal.events()] == [2, 3, 4]
    assert journal.last_id == 5
    with pytest.raises(TimeoutError):
        journal.wait_for(lambda e: False, timeout=0.05)
    threading.Timer(0.01, journal.record, args=("y", "message")).start()
    assert journal.wait_for(server="y", since=5).kind == "message"


def test_journal_observers_come_and_go():
    journal = EventJournal()
    first, second = [], []
    stop_first = journal.subscribe(first.append)
    journal.subscribe(second.append)
    journal.record("x", "command", n=1)
    stop_first()
    stop_first()  # a second unsubscribe changes nothing
    journal.record("x", "command", n=2)
    assert [e.details["n"] for e in first] == [1]
    assert [e.details["n"] for e in second] == [1, 2]


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("PASS hunter2", "hunter2"),
        ("a1 LOGIN demo hunter2", "hunter2"),
        ("AUTH PLAIN AGRlbW8AaHVudGVyMg==", "AGRlbW8AaHVudGVyMg=="),
        ("Authorization: Basic ZGVtbzpodW50ZXIy", "ZGVtbzpodW50ZXIy"),
        ("Proxy-Authorization: Basic ZGVtbzpodW50ZXIy", "ZGVtbzpodW50ZXIy"),
        ('{"password": "hunter2"}', "hunter2"),
        ("APOP demo 0123456789abcdef", "0123456789abcdef"),
        # Case folding as re does it (the quick pre-check must not miss these).
        ("pAsS hunter2", "hunter2"),
        ("pa\u017fs hunter2", "hunter2"),  # LATIN SMALL LETTER LONG S matches "s" under IGNORECASE
        ("USER demo\r\nPASS hunter2", "hunter2"),
    ],
)
def test_credentials_are_masked(line, secret):
    masked = mask_credentials(line)
    assert secret not in masked and "****" in masked


def test_every_secret_pattern_is_covered_by_the_quick_pre_check():
    # mask_credentials skips lines without one of the pre-check's words: a new pattern
    # keyed on another word (say "token") must extend the pre-check too.
    for pattern, _ in _SECRET_PATTERNS:
        assert _MAY_HOLD_SECRET.search(pattern.pattern), pattern.pattern


def test_lines_without_secrets_are_returned_unchanged():
    for line in ("RETR 12", "a1 FETCH 1:* BODY[]", "GET /get HTTP/1.1", "passage 7"):
        assert mask_credentials(line) == line

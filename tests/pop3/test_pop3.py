"""POP3 server: real poplib (plain, STLS, POP3S, APOP, AUTH PLAIN) against servers.pop3.server."""

from __future__ import annotations

import base64
import logging
import poplib
import smtplib
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from servers.core.users import User
from servers.mail.store import MailStore
from servers.pop3.server import Pop3Server

MESSAGE = b"From: a@example.com\r\nTo: demo@example.com\r\nSubject: %d\r\n\r\nline one\r\n.starts with a dot\r\nline three\r\n"


def deliver(store: MailStore, count: int, user: str = "demo") -> list[str]:
    return [store.deliver(user, MESSAGE % n, {"mail_from": "a@example.com", "rcpt_to": [user]}) for n in range(count)]


def pop(server: Any) -> poplib.POP3:
    return poplib.POP3(server.probe_host, server.port, timeout=10)


def login(server: Any, user: str = "demo", password: str = "demo") -> poplib.POP3:
    client = pop(server)
    client.user(user)
    client.pass_(password)
    return client


def test_user_pass_stat_list_retr_top(refservers_pop3: Pop3Server, mail_store: MailStore) -> None:
    keys = deliver(mail_store, 2)
    client = login(refservers_pop3)
    try:
        sizes = [m.size for m in mail_store.messages("demo")]
        assert client.stat() == (2, sum(sizes))
        _, listing, _ = client.list()
        assert listing == [f"1 {sizes[0]}".encode(), f"2 {sizes[1]}".encode()]
        _, lines, octets = client.retr(2)
        # poplib undoes dot-stuffing: the lines are the stored message exactly.
        assert b"\r\n".join(lines) + b"\r\n" == mail_store.read("demo", keys[1])
        assert b".starts with a dot" in lines
        _, top, _ = client.top(1, 1)
        assert top[-2:] == [b"", b"line one"] and top[-3].startswith(b"Subject:")
        assert client.noop().startswith(b"+OK")
    finally:
        client.quit()
    events = refservers_pop3.journal.events(server="pop3", kind="auth")
    assert [(e.details["ok"], e.details["user"]) for e in events] == [(True, "demo")]


def test_wrong_password_and_commands_before_login(refservers_pop3: Pop3Server) -> None:
    client = pop(refservers_pop3)
    try:
        with pytest.raises(poplib.error_proto, match="not allowed before login"):
            client.stat()
        client.user("demo")
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            client.pass_("wrong")
        client.user("demo")
        client.pass_("demo")
        assert client.stat() == (0, 0)
    finally:
        client.quit()


def test_uidl_stable_across_sessions(refservers_pop3: Pop3Server, mail_store: MailStore) -> None:
    keys = deliver(mail_store, 3)
    client = login(refservers_pop3)
    _, first, _ = client.uidl()
    assert client.uidl(2).split()[-1] == keys[1].encode()
    client.quit()
    deliver(mail_store, 1)
    client = login(refservers_pop3)
    _, second, _ = client.uidl()
    client.quit()
    assert first == [f"{n} {key}".encode() for n, key in enumerate(keys, 1)]
    assert second[:3] == first and len(second) == 4


def test_dele_then_rset_keeps_everything(refservers_pop3: Pop3Server, mail_store: MailStore) -> None:
    deliver(mail_store, 2)
    client = login(refservers_pop3)
    client.dele(1)
    assert client.stat()[0] == 1
    with pytest.raises(poplib.error_proto, match="already deleted"):
        client.retr(1)
    client.rset()
    assert client.stat()[0] == 2
    client.quit()
    assert len(mail_store.messages("demo")) == 2


def test_dele_applied_only_at_quit(refservers_pop3: Pop3Server, mail_store: MailStore) -> None:
    keys = deliver(mail_store, 3)
    client = login(refservers_pop3)
    client.dele(2)
    # Another session (and the store) still sees it until QUIT.
    assert [m.key for m in mail_store.messages("demo")] == keys
    client.quit()
    assert [m.key for m in mail_store.messages("demo")] == [keys[0], keys[2]]
    # A dropped connection deletes nothing.
    dropped = login(refservers_pop3)
    dropped.dele(1)
    before_close = refservers_pop3.journal.last_id  # taken before the close: its disconnect may be journalled at once
    dropped.close()
    refservers_pop3.journal.wait_for(lambda e: e.kind == "disconnect", server="pop3", since=before_close)
    assert len(mail_store.messages("demo")) == 2


def test_apop(refservers_pop3: Pop3Server, mail_store: MailStore) -> None:
    deliver(mail_store, 1)
    client = pop(refservers_pop3)
    assert b"<" in client.getwelcome()
    client.apop("demo", "demo")
    assert client.stat()[0] == 1
    client.quit()
    client = pop(refservers_pop3)
    with pytest.raises(poplib.error_proto):
        client.apop("demo", "nope")
    client.quit()


def test_auth_plain_initial_response_and_continuation(refservers_pop3: Pop3Server) -> None:
    token = base64.b64encode(b"\0demo\0demo")
    with socket.create_connection((refservers_pop3.probe_host, refservers_pop3.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"+OK")
        sock.sendall(b"AUTH PLAIN\r\n")
        assert reader.readline() == b"+ \r\n"
        sock.sendall(token + b"\r\n")
        assert reader.readline().startswith(b"+OK")
        sock.sendall(b"QUIT\r\n")
        assert reader.readline().startswith(b"+OK")
        reader.close()
    with socket.create_connection((refservers_pop3.probe_host, refservers_pop3.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0demo\0bad") + b"\r\nAUTH PLAIN " + token + b"\r\nSTAT\r\n")
        assert reader.readline().startswith(b"-ERR [AUTH]")
        assert reader.readline().startswith(b"+OK")
        assert reader.readline() == b"+OK 0 0\r\n"
        reader.close()


def test_capa_and_stls(refservers_pop3: Pop3Server, mail_store: MailStore, tls_client: ssl.SSLContext) -> None:
    deliver(mail_store, 1)
    client = poplib.POP3("localhost", refservers_pop3.port, timeout=10)
    try:
        capabilities = client.capa()
        assert {"STLS", "UIDL", "TOP", "USER", "PIPELINING", "SASL"} <= set(capabilities)
        assert capabilities["SASL"] == ["PLAIN"]
        client.stls(context=tls_client)
        assert isinstance(client.sock, ssl.SSLSocket)
        assert "STLS" not in client.capa()
        client.user("demo")
        client.pass_("demo")
        assert client.stat()[0] == 1
    finally:
        client.quit()


def test_stls_discards_injected_plaintext(refservers_pop3: Pop3Server, tls_client: ssl.SSLContext) -> None:
    with socket.create_connection((refservers_pop3.probe_host, refservers_pop3.port), timeout=10) as raw:
        raw.recv(1024)
        raw.sendall(b"STLS\r\nUSER injected\r\n")
        assert raw.recv(1024).startswith(b"+OK")
        with tls_client.wrap_socket(raw, server_hostname="localhost") as secure:
            secure.sendall(b"PASS demo\r\n")
            assert secure.recv(1024).startswith(b"-ERR USER required")


def test_pop3s_implicit_tls(refservers_pop3: Pop3Server, mail_store: MailStore, tls_client: ssl.SSLContext) -> None:
    deliver(mail_store, 2)
    client = poplib.POP3_SSL("localhost", refservers_pop3.listeners["tls"], context=tls_client, timeout=10)
    try:
        assert "STLS" not in client.capa()
        client.user("demo")
        client.pass_("demo")
        assert client.stat()[0] == 2
    finally:
        client.quit()


def test_smtp_to_pop3_round_trip_byte_identical(refservers_smtp: Any, refservers_pop3: Pop3Server, mail_store: MailStore) -> None:
    body = "From: a@example.com\r\nTo: someone@round.trip\r\nSubject: round trip\r\n\r\n\u00e9t\u00e9\r\n..double\r\n".encode()
    with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=10) as client:
        client.sendmail("a@example.com", ["someone@round.trip"], body)
    # The recipient did not exist: its login and password are the address.
    reader = login(refservers_pop3, "someone@round.trip", "someone@round.trip")
    try:
        _, lines, _ = reader.retr(1)
    finally:
        reader.quit()
    retrieved = b"\r\n".join(lines) + b"\r\n"
    assert retrieved.endswith(body)
    assert retrieved.startswith(b"Return-Path: <a@example.com>\r\nDelivered-To: someone@round.trip\r\nReceived: ")


def test_bad_input_gets_err_and_server_keeps_serving(refservers_pop3: Pop3Server) -> None:
    with socket.create_connection((refservers_pop3.probe_host, refservers_pop3.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"XYZZY\r\nUSER\r\nUSER demo\r\nPASS demo\r\nRETR abc\r\nRETR 99\r\nTOP 1\r\nDELE 0\r\n")
        replies = [reader.readline() for _ in range(8)]
        assert [r[:4] for r in replies] == [b"-ERR", b"-ERR", b"+OK ", b"+OK ", b"-ERR", b"-ERR", b"-ERR", b"-ERR"]
        other = login(refservers_pop3)
        assert other.stat() == (0, 0)
        other.quit()
        sock.sendall(b"NOOP\r\n")
        assert reader.readline().startswith(b"+OK")
        reader.close()


def test_faults_error_delay_disconnect(refservers_pop3: Pop3Server, mail_store: MailStore) -> None:
    deliver(mail_store, 1)
    faults = refservers_pop3.core.faults
    faults.add({"server": "pop3", "match": "RETR *", "action": "error", "params": {"reply": "-ERR [SYS/TEMP] busy"}, "times": 1})
    faults.add({"server": "pop3", "match": "STAT", "action": "delay", "params": {"seconds": 0.2}, "times": 1})
    client = login(refservers_pop3)
    try:
        with pytest.raises(poplib.error_proto, match=r"SYS/TEMP\] busy"):
            client.retr(1)
        assert client.retr(1)[0].startswith(b"+OK")
        assert client.stat()[0] == 1  # delayed, then answered
    finally:
        client.quit()
    faults.add({"server": "pop3", "match": "PASS *", "action": "disconnect", "times": 1})
    client = pop(refservers_pop3)
    client.user("demo")
    with pytest.raises((poplib.error_proto, OSError)):
        client.pass_("demo")
    client.close()
    fired = [(e.details["action"], e.details["subject"]) for e in refservers_pop3.journal.events(server="pop3", kind="fault")]
    assert fired == [("error", "RETR 1"), ("delay", "STAT"), ("disconnect", "PASS ****")]


@pytest.mark.parametrize("refservers_settings", [["core.trace=true"]])
def test_credentials_absent_from_logs_with_trace(
    refservers_settings: list[str], refservers_pop3: Pop3Server, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "P0p-S3cret"
    refservers_pop3.core.users.add(User("dave", secret))
    caplog.set_level(logging.DEBUG)
    login(refservers_pop3, "dave", secret).quit()
    client = pop(refservers_pop3)
    client.apop("dave", secret)
    client.quit()
    with socket.create_connection((refservers_pop3.probe_host, refservers_pop3.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"AUTH PLAIN\r\n")
        reader.readline()
        sock.sendall(base64.b64encode(f"\0dave\0{secret}".encode()) + b"\r\nQUIT\r\n")
        assert reader.readline().startswith(b"+OK")
        reader.readline()
        reader.close()
    wire = [r.getMessage() for r in caplog.records if r.name == "refservers.pop3.wire"]
    assert any("<< PASS ****" in line for line in wire) and any(line.endswith("<< ****") for line in wire)
    for value in (secret, base64.b64encode(f"\0dave\0{secret}".encode()).decode()):
        assert value not in caplog.text
        assert all(value not in repr(e.details) for e in refservers_pop3.journal.events())


def test_probe_is_a_real_exchange(refservers_start: Callable[..., Pop3Server]) -> None:
    server = refservers_start("pop3")
    assert Pop3Server.probe(server.probe_host, server.port).startswith("+OK")

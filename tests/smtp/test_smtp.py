"""SMTP server: real smtplib, raw sockets and swaks against servers.smtp.server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import shutil
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from servers.core.users import User
from servers.mail.store import MailStore
from servers.smtp.server import R_NEED_AUTH, SmtpServer, with_enhanced_code

MESSAGE = b"From: Alice <alice@example.com>\r\nTo: demo@example.com\r\nSubject: hello\r\n\r\nHi there\r\n"


def smtp(server: Any) -> smtplib.SMTP:
    return smtplib.SMTP(server.probe_host, server.port, timeout=10)


def read_reply(sock: socket.socket, buffer: list[bytes]) -> bytes:
    """Read one complete (possibly multi-line) SMTP reply from a raw socket."""
    data = b"".join(buffer)
    buffer.clear()
    while True:
        lines = data.split(b"\r\n")
        for index, line in enumerate(lines[:-1]):
            if len(line) >= 4 and line[3:4] == b" ":
                buffer.append(b"\r\n".join(lines[index + 1 :]))
                return b"\r\n".join(lines[: index + 1])
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk


def test_plain_delivery_is_durable_before_250(refservers_smtp: SmtpServer, mail_store: MailStore) -> None:
    with smtp(refservers_smtp) as client:
        client.ehlo("client.test")
        assert {"size", "8bitmime", "smtputf8", "pipelining", "starttls", "enhancedstatuscodes", "auth"} <= set(client.esmtp_features)
        assert client.esmtp_features["auth"].split() == ["CRAM-MD5", "LOGIN", "PLAIN"]
        client.mail("bounce@example.com")
        client.rcpt("demo@example.com")
        code, reply = client.data(MESSAGE)
        assert code == 250 and reply.startswith(b"2.0.0 OK queued as ")
        key = reply.split()[-1].decode()
        # The 250 is out: the complete message must be in new/ right now, nothing in tmp/.
        path = mail_store.user_dir("demo") / "new" / key
        stored = path.read_bytes()
        assert not list((mail_store.user_dir("demo") / "tmp").iterdir())
    assert stored.endswith(MESSAGE)
    head = stored[: -len(MESSAGE)].decode()
    assert head.startswith("Return-Path: <bounce@example.com>\r\nDelivered-To: demo@example.com\r\nReceived: from client.test ([127.0.0.1])")
    assert "with ESMTP id" in head and "for <demo@example.com>" in head
    event = refservers_smtp.journal.wait_for(lambda e: e.kind == "message", server="smtp")
    assert event.details["key"] == key and event.details["users"] == ["demo"] and event.details["sender"] == "bounce@example.com"


def test_received_header_names_the_auth_user_and_tls(refservers_smtp: SmtpServer, mail_store: MailStore, tls_client: ssl.SSLContext) -> None:
    with smtp(refservers_smtp) as client:
        client.starttls(context=tls_client)
        client.ehlo()
        client.login("demo", "demo")
        client.sendmail("a@example.com", ["demo@example.com"], MESSAGE)
    stored = mail_store.read("demo", mail_store.messages("demo")[0].key).decode()
    received = stored.split("\r\n\tby ", 1)[0]
    assert received.endswith("([127.0.0.1])\r\n\t(Authenticated sender: demo)")
    assert "with ESMTPSA id" in stored


def test_starttls_verified_with_generated_ca(refservers_smtp: SmtpServer, mail_store: MailStore, tls_client: ssl.SSLContext) -> None:
    with smtp(refservers_smtp) as client:
        client.starttls(context=tls_client)
        assert isinstance(client.sock, ssl.SSLSocket)
        client.ehlo()
        assert "starttls" not in client.esmtp_features
        client.sendmail("a@example.com", ["demo@example.com"], MESSAGE)
    assert "with ESMTPS" in mail_store.read("demo", mail_store.messages("demo")[0].key).decode()


def test_smtps_implicit_tls(refservers_smtp: SmtpServer, mail_store: MailStore, tls_client: ssl.SSLContext) -> None:
    port = refservers_smtp.listeners["tls"]
    with smtplib.SMTP_SSL("localhost", port, context=tls_client, timeout=10) as client:
        client.login("demo", "demo")
        client.sendmail("a@example.com", ["demo"], MESSAGE)
    assert "with ESMTPSA" in mail_store.read("demo", mail_store.messages("demo")[0].key).decode()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_mechanisms(refservers_smtp: SmtpServer, mechanism: str) -> None:
    refservers_smtp.core.users.add(User("alice", "wonder land"))
    authenticate = {"PLAIN": "auth_plain", "LOGIN": "auth_login", "CRAM-MD5": "auth_cram_md5"}[mechanism]
    with smtp(refservers_smtp) as client:
        client.ehlo()
        client.user, client.password = "alice", "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.auth(mechanism, getattr(client, authenticate))
        assert refused.value.smtp_code == 535
        client.password = "wonder land"
        code, _ = client.auth(mechanism, getattr(client, authenticate))
        assert code == 235
    events = refservers_smtp.journal.events(server="smtp", kind="auth")
    assert [(e.details["ok"], e.details["user"]) for e in events] == [(False, "alice"), (True, "alice")]
    assert all("password" not in e.details for e in events)


def test_cram_md5_challenge_is_verified_by_hand(refservers_smtp: SmtpServer) -> None:
    with socket.create_connection((refservers_smtp.probe_host, refservers_smtp.port), timeout=10) as sock:
        buffer: list[bytes] = []
        read_reply(sock, buffer)
        sock.sendall(b"EHLO me\r\n")
        read_reply(sock, buffer)
        sock.sendall(b"AUTH CRAM-MD5\r\n")
        challenge_line = read_reply(sock, buffer)
        assert challenge_line.startswith(b"334 ")
        challenge = base64.b64decode(challenge_line[4:])
        assert challenge.startswith(b"<") and challenge.endswith(b"@localhost>")
        digest = hmac.new(b"demo", challenge, hashlib.md5).hexdigest()
        sock.sendall(base64.b64encode(b"demo " + digest.encode()) + b"\r\n")
        assert read_reply(sock, buffer) == b"235 2.7.0 Authentication successful"


def test_size_limit_552(refservers_start: Callable[..., SmtpServer]) -> None:
    server = refservers_start("smtp", max_size="2000")
    with smtp(server) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "2000"
        big = MESSAGE + (b"x" * 70 + b"\r\n") * 50
        # Declared in MAIL FROM (RFC 1870): refused up front.
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.com", ["demo"], big)
        assert refused.value.smtp_code == 552 and refused.value.smtp_error.startswith(b"5.3.4")
        client.rset()
        # Not declared: refused after the data, and the session goes on.
        client.mail("a@example.com")
        client.rcpt("demo")
        code, reply = client.data(big)
        assert code == 552
        assert client.noop()[0] == 250


def test_require_auth_530(refservers_start: Callable[..., SmtpServer]) -> None:
    server = refservers_start("smtp", require_auth="true")
    with smtp(server) as client:
        client.ehlo()
        code, reply = client.mail("a@example.com")
        assert (code, reply.decode()) == (530, R_NEED_AUTH[4:])
        client.login("demo", "demo")
        client.sendmail("a@example.com", ["demo"], MESSAGE)


def test_require_tls_hides_auth_until_starttls(refservers_start: Callable[..., SmtpServer], tls_client: ssl.SSLContext) -> None:
    server = refservers_start("smtp", require_tls="true")
    with smtp(server) as client:
        client.ehlo()
        assert "auth" not in client.esmtp_features
        assert client.mail("a@example.com")[0] == 530
        client.starttls(context=tls_client)
        client.ehlo()
        client.login("demo", "demo")
        client.sendmail("a@example.com", ["demo"], MESSAGE)


def test_unknown_recipient_created_with_address_login(refservers_smtp: SmtpServer, mail_store: MailStore) -> None:
    with smtp(refservers_smtp) as client:
        client.sendmail("a@example.com", ["Someone@Elsewhere.ORG"], MESSAGE)
    assert [m.size > 0 for m in mail_store.messages("Someone@elsewhere.org")] == [True]
    assert refservers_smtp.core.users.check_password("Someone@elsewhere.org", "Someone@elsewhere.org")


def test_unknown_recipient_rejected_550(refservers_start: Callable[..., SmtpServer], refservers_store) -> None:
    refservers_store("mail", unknown_recipients="reject")
    server = refservers_start("smtp")
    with smtp(server) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("a@example.com", ["nobody@example.com"], MESSAGE)
        assert refused.value.recipients["nobody@example.com"][0] == 550
        # Known users still get mail; refused recipients do not sink the others.
        assert client.sendmail("a@example.com", ["nobody@example.com", "demo@localhost"], MESSAGE) == {
            "nobody@example.com": (550, b"5.1.1 No such user here")
        }


def test_unknown_recipient_catchall(refservers_start: Callable[..., SmtpServer], mail_store: MailStore, refservers_store) -> None:
    refservers_store("mail", unknown_recipients="catchall", catchall_user="demo")
    server = refservers_start("smtp")
    store = mail_store
    with smtp(server) as client:
        client.sendmail("a@example.com", ["nobody@example.com"], MESSAGE)
    assert "Delivered-To: nobody@example.com" in store.read("demo", store.messages("demo")[0].key).decode()


def test_max_recipients_452(refservers_start: Callable[..., SmtpServer]) -> None:
    server = refservers_start("smtp", max_recipients="2")
    with smtp(server) as client:
        client.ehlo()
        client.mail("a@example.com")
        assert client.rcpt("demo")[0] == 250
        assert client.rcpt("demo@example.com")[0] == 250
        assert client.rcpt("x@example.net") == (452, b"4.5.3 Too many recipients")


def test_pipelining_one_write(refservers_smtp: SmtpServer, mail_store: MailStore) -> None:
    with socket.create_connection((refservers_smtp.probe_host, refservers_smtp.port), timeout=10) as sock:
        buffer: list[bytes] = []
        assert read_reply(sock, buffer).startswith(b"220 ")
        sock.sendall(b"EHLO pipe\r\n")
        assert b"PIPELINING" in read_reply(sock, buffer)
        sock.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<demo>\r\nRCPT TO:<demo@example.com>\r\nDATA\r\n")
        replies = [read_reply(sock, buffer) for _ in range(4)]
        assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"354"]
        sock.sendall(MESSAGE + b".\r\nQUIT\r\n")
        assert read_reply(sock, buffer).startswith(b"250 2.0.0 OK queued")
        assert read_reply(sock, buffer).startswith(b"221")
    # Two addresses of one user: one copy, both in Delivered-To.
    (only,) = mail_store.messages("demo")
    assert mail_store.read("demo", only.key).count(b"Delivered-To:") == 2


def test_smtputf8_and_8bit_body_round_trip(refservers_smtp: SmtpServer, mail_store: MailStore) -> None:
    body = "Subject: caf\u00e9\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\u00fc\u00dfe \u2603\r\n".encode()
    with smtp(refservers_smtp) as client:
        client.ehlo()
        client.sendmail("j\u00f6rg@example.com", ["m\u00fcller@example.de"], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    (info,) = mail_store.messages("m\u00fcller@example.de")
    assert mail_store.read("m\u00fcller@example.de", info.key).endswith(body)


def test_bad_command_500_and_other_clients_served(refservers_smtp: SmtpServer) -> None:
    with socket.create_connection((refservers_smtp.probe_host, refservers_smtp.port), timeout=10) as bad:
        buffer: list[bytes] = []
        read_reply(bad, buffer)
        bad.sendall(b"FROBNICATE now\r\n")
        assert read_reply(bad, buffer).startswith(b"500 ")
        bad.sendall(b"MAIL FROM:<a@example.com>\r\n")  # before EHLO
        assert read_reply(bad, buffer).startswith(b"503 5.5.1")
        bad.sendall(b"x" * 5000 + b"\r\n")
        assert read_reply(bad, buffer).startswith(b"500 ")
        with smtp(refservers_smtp) as good:
            assert good.sendmail("a@example.com", ["demo"], MESSAGE) == {}
        bad.sendall(b"NOOP\r\n")
        assert read_reply(bad, buffer) == b"250 2.0.0 OK"


def test_fault_error_on_rcpt(refservers_smtp: SmtpServer) -> None:
    refservers_smtp.core.faults.add(
        {"server": "smtp", "match": "RCPT TO:<bounce@*", "action": "error", "params": {"reply": "451 4.3.0 try later"}}
    )
    with smtp(refservers_smtp) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("a@example.com", ["bounce@example.com"], MESSAGE)
        assert refused.value.recipients["bounce@example.com"] == (451, b"4.3.0 try later")
        assert client.sendmail("a@example.com", ["demo"], MESSAGE) == {}
    fault = refservers_smtp.journal.wait_for(lambda e: e.kind == "fault", server="smtp")
    assert fault.details["subject"] == "RCPT TO:<bounce@example.com>"


def test_fault_disconnect_and_delay(refservers_smtp: SmtpServer) -> None:
    faults = refservers_smtp.core.faults
    faults.add({"server": "smtp", "match": "DATA", "action": "disconnect", "times": 1})
    with smtp(refservers_smtp) as client:
        client.ehlo()
        client.mail("a@example.com")
        client.rcpt("demo")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.data(MESSAGE)
    faults.add({"server": "smtp", "match": "connect", "action": "delay", "params": {"seconds": 0.2}, "times": 1})
    with smtp(refservers_smtp) as client:
        assert client.noop()[0] == 250
    kinds = [(e.details["action"], e.details["subject"]) for e in refservers_smtp.journal.events(server="smtp", kind="fault")]
    assert kinds == [("disconnect", "DATA"), ("delay", "connect")]


def test_fault_probabilistic_is_reproducible(refservers_smtp: SmtpServer) -> None:
    refservers_smtp.core.faults.add(
        {"server": "smtp", "match": "MAIL FROM:*", "action": "error", "probability": 0.5, "seed": 7,
         "params": {"reply": "451 4.3.0 unlucky"}}
    )
    outcomes = []
    with smtp(refservers_smtp) as client:
        client.ehlo()
        for _ in range(12):
            outcomes.append(client.mail("a@example.com")[0])
            client.rset()
    import random

    rolls = random.Random(7)
    assert outcomes == [451 if rolls.random() < 0.5 else 250 for _ in range(12)]
    assert 250 in outcomes and 451 in outcomes


@pytest.mark.parametrize("refservers_settings", [["core.trace=true"]])
def test_credentials_absent_from_logs_with_trace(
    refservers_settings: list[str], refservers_smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Tr4ce-S3cret!"
    refservers_smtp.core.users.add(User("carol", secret))
    caplog.set_level(logging.DEBUG)
    for mechanism in ("LOGIN", "PLAIN", "CRAM-MD5"):
        with smtp(refservers_smtp) as client:
            client.ehlo()
            client.user, client.password = "carol", secret
            method = {"LOGIN": client.auth_login, "PLAIN": client.auth_plain, "CRAM-MD5": client.auth_cram_md5}[mechanism]
            assert client.auth(mechanism, method, initial_response_ok=mechanism != "LOGIN")[0] == 235
    text = caplog.text
    wire = [r.getMessage() for r in caplog.records if r.name == "refservers.smtp.wire"]
    assert any("<< AUTH LOGIN" in line for line in wire)  # the trace is on and captured
    assert sum(line.endswith("<< ****") for line in wire) >= 2  # LOGIN continuation lines, CRAM-MD5 response
    forbidden = [secret, base64.b64encode(secret.encode()).decode(), base64.b64encode(f"\0carol\0{secret}".encode()).decode()]
    for value in forbidden:
        assert value not in text
        for event in refservers_smtp.journal.events():
            assert value not in repr(event.details)


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed (see .ci/apt-packages.txt)")
def test_swaks_starttls_and_auth(refservers_smtp: SmtpServer, mail_store: MailStore) -> None:
    ca = refservers_smtp.core.tls.ca_file
    command = [
        "swaks", "--server", f"localhost:{refservers_smtp.port}", "--to", "demo@example.com",
        "--from", "swaks@example.com", "--header", "Subject: via swaks",
        "--tls", "--tls-verify", "--tls-ca-path", str(ca),
        "--auth", "CRAM-MD5", "--auth-user", "demo", "--auth-password", "demo",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0" in result.stdout and "250 2.0.0 OK queued" in result.stdout
    summary = mail_store.wait_for_message(timeout=30, subject="via swaks")
    assert summary.user == "demo" and summary.sender == "swaks@example.com"


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed (see .ci/apt-packages.txt)")
def test_swaks_smtps_auth_plain(refservers_smtp: SmtpServer, mail_store: MailStore) -> None:
    command = [
        "swaks", "--server", f"localhost:{refservers_smtp.listeners['tls']}", "--tls-on-connect",
        "--tls-verify", "--tls-ca-path", str(refservers_smtp.core.tls.ca_file),
        "--to", "x@swaks.test", "--auth", "PLAIN", "--auth-user", "demo", "--auth-password", "demo",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(mail_store.messages("x@swaks.test")) == 1


def test_enhanced_codes_are_added_only_where_missing() -> None:
    assert with_enhanced_code("250 OK") == "250 2.0.0 OK"
    assert with_enhanced_code("451 4.3.0 try later") == "451 4.3.0 try later"
    assert with_enhanced_code("354 End data") == "354 End data"
    assert with_enhanced_code("334 ") == "334 "


def test_help_lists_the_commands_and_their_syntax(refservers_smtp: SmtpServer) -> None:
    """The command table holds guarded wrappers; HELP still reads aiosmtpd's syntax
    of each command (it once answered with an empty list)."""
    with smtp(refservers_smtp) as client:
        listed = client.help().decode()
        assert listed.startswith("2.0.0 Supported commands: ")
        assert {"DATA", "EHLO", "HELO", "HELP", "MAIL", "NOOP", "QUIT", "RCPT", "RSET"} <= set(listed.split()[3:])
        assert client.help("MAIL").decode().startswith("2.0.0 Syntax: MAIL FROM: <address>")
        assert client.docmd("HELP", "FROBNICATE")[0] == 501


def test_a_failed_delivery_is_451_and_the_others_in_its_batch_are_stored(
    refservers_smtp: SmtpServer, mail_store: MailStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Parallel sessions' messages are stored in batches by the delivery threads: one
    that cannot be stored (its mailbox path is a file) gets 451 and is logged, while the
    messages of the sessions around it are stored and get their 250."""
    caplog.set_level(logging.ERROR, logger="refservers.smtp")
    mail_store.root.mkdir(parents=True, exist_ok=True)
    mail_store.user_dir("blocked@example.com").write_bytes(b"not a Maildir")

    def send(index: int) -> int:
        recipient = "blocked@example.com" if index == 7 else f"parallel{index}@example.com"
        with smtp(refservers_smtp) as client:
            client.ehlo("client.test")
            client.mail("alice@example.com")
            client.rcpt(recipient)
            code, _ = client.data(MESSAGE)
            return code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, range(16)))
    assert codes == [451 if index == 7 else 250 for index in range(16)]
    for index in range(16):
        if index != 7:
            assert len(mail_store.messages(f"parallel{index}@example.com")) == 1
    assert "delivery failed" in caplog.text and "NotADirectoryError" in caplog.text

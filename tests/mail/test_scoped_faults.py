"""User-scoped fault rules on SMTP, POP3 and IMAP, driven with smtplib, poplib and imaplib:
a rule with ``user`` hits that user's traffic and leaves everyone else's alone."""

from __future__ import annotations

import base64
import imaplib
import poplib
import smtplib
import socket

import pytest

from servers.core import Server
from servers.core.users import User
from servers.mail.store import MailStore

MESSAGE = b"From: sender@example.com\r\nSubject: scoped\r\n\r\nbody\r\n"


def smtp(server: Server) -> smtplib.SMTP:
    return smtplib.SMTP(server.probe_host, server.port, timeout=10)


def test_smtp_rule_scoped_to_a_recipient_refuses_only_that_recipient(refservers_smtp: Server, mail_store: MailStore) -> None:
    refservers_smtp.core.faults.add({
        "server": "smtp", "match": "RCPT*", "action": "error", "user": "a@example.test",
        "params": {"reply": "452 4.2.2 mailbox full"},
    })
    with smtp(refservers_smtp) as client:
        # Addresses compare case-insensitively.
        for address in ("a@example.test", "A@Example.TEST"):
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                client.sendmail("sender@example.com", [address], MESSAGE)
            assert refused.value.recipients[address] == (452, b"4.2.2 mailbox full")
        assert client.sendmail("sender@example.com", ["b@example.test"], MESSAGE) == {}
        # One envelope: only the scoped recipient is refused.
        assert client.sendmail("sender@example.com", ["a@example.test", "b@example.test"], MESSAGE) == {
            "a@example.test": (452, b"4.2.2 mailbox full")
        }
    assert len(mail_store.messages("b@example.test")) == 2
    assert "a@example.test" not in mail_store.mailbox_users()  # refused before its mailbox was made
    faults = refservers_smtp.journal.events(server="smtp", kind="fault")
    assert [e.details["subject"] for e in faults] == ["RCPT TO:<a@example.test>", "RCPT TO:<A@Example.TEST>", "RCPT TO:<a@example.test>"]


def test_smtp_rule_scoped_at_data_and_to_the_auth_user(refservers_smtp: Server, mail_store: MailStore) -> None:
    faults = refservers_smtp.core.faults
    faults.add({"server": "smtp", "match": "DATA", "action": "error", "user": "b@example.test"})
    with smtp(refservers_smtp) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("sender@example.com", ["c@example.test", "b@example.test"], MESSAGE)
        assert refused.value.smtp_code == 451
        client.rset()  # smtplib leaves the transaction open when DATA is refused
        assert client.sendmail("sender@example.com", ["c@example.test"], MESSAGE) == {}
    assert len(mail_store.messages("c@example.test")) == 1

    # At DATA a recipient is also the mailbox user it resolved to: demo@localhost is demo.
    demo_rule = faults.add({"server": "smtp", "match": "DATA", "action": "error", "user": "demo"})
    with smtp(refservers_smtp) as client:
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail("sender@example.com", ["demo@localhost"], MESSAGE)
    faults.remove(demo_rule.id)

    refservers_smtp.core.users.add(User("alice", "wonderland"))
    faults.add({"server": "smtp", "match": "MAIL*", "action": "error", "user": "alice", "params": {"reply": "421 4.7.0 go away"}})
    with smtp(refservers_smtp) as client:
        assert client.sendmail("sender@example.com", ["c@example.test"], MESSAGE) == {}  # not logged in: nobody
        client.login("demo", "demo")
        assert client.sendmail("sender@example.com", ["c@example.test"], MESSAGE) == {}
    with smtp(refservers_smtp) as client:
        client.login("alice", "wonderland")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused_sender:
            client.sendmail("alice@localhost", ["c@example.test"], MESSAGE)
        assert refused_sender.value.smtp_code == 421
    assert len(mail_store.messages("c@example.test")) == 3


def test_pop3_rule_scoped_to_a_login(refservers_pop3: Server, mail_store: MailStore) -> None:
    refservers_pop3.core.users.add(User("alice", "wonderland"))
    refservers_pop3.core.faults.add({
        "server": "pop3", "match": "*", "action": "error", "user": "alice",
        "params": {"reply": "-ERR [SYS/TEMP] alice is busy"},
    })
    client = poplib.POP3(refservers_pop3.probe_host, refservers_pop3.port, timeout=10)
    try:
        with pytest.raises(poplib.error_proto, match=r"alice is busy"):
            client.user("alice")
    finally:
        client.close()
    client = poplib.POP3(refservers_pop3.probe_host, refservers_pop3.port, timeout=10)
    try:
        client.user("demo")
        client.pass_("demo")
        assert client.stat() == (0, 0)
        client.quit()
    finally:
        client.close()
    faults = refservers_pop3.journal.events(server="pop3", kind="fault")
    assert [(e.details["subject"], e.details["user"]) for e in faults] == [("USER alice", "alice")]


def test_pop3_rule_on_commands_after_login(refservers_pop3: Server, mail_store: MailStore) -> None:
    refservers_pop3.core.users.add(User("alice", "wonderland"))
    refservers_pop3.core.faults.add({"server": "pop3", "match": "STAT", "action": "error", "user": "alice"})
    for name, password, refused in (("alice", "wonderland", True), ("demo", "demo", False)):
        client = poplib.POP3(refservers_pop3.probe_host, refservers_pop3.port, timeout=10)
        try:
            client.user(name)
            client.pass_(password)
            if refused:
                with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
                    client.stat()
            else:
                assert client.stat() == (0, 0)
            client.quit()
        finally:
            client.close()


def test_imap_rule_scoped_to_a_login(refservers_imap: Server, mail_store: MailStore) -> None:
    refservers_imap.core.users.add(User("alice", "wonderland"))
    faults = refservers_imap.core.faults
    faults.add({
        "server": "imap", "match": "LOGIN", "action": "error", "user": "alice", "times": 1,
        "params": {"reply": "NO [UNAVAILABLE] alice's mailbox is being moved"},
    })
    faults.add({"server": "imap", "match": "SELECT", "action": "error", "user": "alice"})
    with imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10) as client:
        with pytest.raises(imaplib.IMAP4.error, match="being moved"):
            client.login("alice", "wonderland")
        assert client.login("alice", "wonderland")[0] == "OK"  # times = 1
        status, detail = client.select("INBOX")
        assert (status, detail) == ("NO", [b"[UNAVAILABLE] fault injected"])
    with imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10) as client:
        assert client.login("demo", "demo")[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
        client.logout()
    faults_fired = refservers_imap.journal.events(server="imap", kind="fault")
    assert [(e.details["subject"], e.details["user"]) for e in faults_fired] == [("LOGIN", "alice"), ("SELECT", "alice")]


def test_imap_authenticate_plain_with_an_initial_response_names_the_user(refservers_imap: Server, mail_store: MailStore) -> None:
    # imaplib sends no SASL-IR initial response, so this is a raw client (RFC 4959).
    refservers_imap.core.faults.add({"server": "imap", "match": "AUTHENTICATE", "action": "error", "user": "demo"})
    with socket.create_connection((refservers_imap.probe_host, refservers_imap.port), timeout=10) as sock:
        lines = sock.makefile("rb")
        assert lines.readline().startswith(b"* OK")
        for tag, name in ((b"a1", b"demo"), (b"a2", b"nobody")):
            initial = base64.b64encode(b"\0" + name + b"\0" + name)
            sock.sendall(tag + b" AUTHENTICATE PLAIN " + initial + b"\r\n")
            reply = lines.readline()
            while not reply.startswith(tag):
                reply = lines.readline()
            expected = b"a1 NO [UNAVAILABLE] fault injected" if name == b"demo" else b"a2 NO [AUTHENTICATIONFAILED]"
            assert reply.startswith(expected)
        lines.close()

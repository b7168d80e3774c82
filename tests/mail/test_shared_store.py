"""The refservers_mail fixture: one SMTP delivery read over POP3, IMAP and the API,
byte-identical, and a POP3 deletion seen by IMAP."""

from __future__ import annotations

import email
import imaplib
import json
import poplib
import smtplib
import urllib.request

BODY = "Grüße over three protocols.\r\nLine two.\r\n"


def body_of(raw: bytes) -> bytes:
    return email.message_from_bytes(raw).get_payload(decode=True)


def test_one_message_three_protocols_and_the_api(refservers_mail, refservers_admin):
    mail = refservers_mail
    with smtplib.SMTP("127.0.0.1", mail.smtp.port, timeout=10) as client:
        client.sendmail(
            "alice@example.test",
            ["demo@example.com"],
            f"Subject: shared\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{BODY}".encode(),
        )
    expected = BODY.encode()

    pop = poplib.POP3("127.0.0.1", mail.pop3.port, timeout=10)
    try:
        pop.user("demo")
        pop.pass_("demo")
        (count, _size) = pop.stat()
        assert count == 1
        pop_raw = b"\r\n".join(pop.retr(1)[1]) + b"\r\n"
    finally:
        pop.quit()
    assert body_of(pop_raw) == expected

    with imaplib.IMAP4("127.0.0.1", mail.imap.port, timeout=10) as imap:
        imap.login("demo", "demo")
        imap.select("INBOX")
        _, data = imap.fetch("1", "(BODY.PEEK[])")
        imap_raw = data[0][1]
        assert body_of(imap_raw) == expected

        with urllib.request.urlopen(refservers_admin.url + "/api/v1/messages?to=demo@example.com") as reply:
            (summary,) = json.load(reply)["messages"]
        with urllib.request.urlopen(f"{refservers_admin.url}/api/v1/message/{summary['ID']}/raw") as reply:
            assert body_of(reply.read()) == expected

        # A POP3 DELE (applied at QUIT) is seen by the IMAP session.
        pop = poplib.POP3("127.0.0.1", mail.pop3.port, timeout=10)
        pop.user("demo")
        pop.pass_("demo")
        pop.dele(1)
        pop.quit()
        _, data = imap.noop()
        status, found = imap.search(None, "ALL")
        assert status == "OK" and found == [b""]
    assert mail.store.messages("demo") == []

"""Mail admin API basics over real HTTP and SMTP: the list with refservers' filters, a message, raw, delete, the wait long poll, users."""

from __future__ import annotations

import concurrent.futures
import smtplib
import time
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from servers.mail.store import MailStore


def send(smtp_server: Any, to: str, subject: str, sender: str = "alice@example.com") -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content("plain body\n")
    message.add_alternative("<p>html body</p>", subtype="html")
    message.add_attachment(b"\x00\x01binary", maintype="application", subtype="octet-stream", filename="data.bin")
    with smtplib.SMTP(smtp_server.probe_host, smtp_server.port, timeout=10) as client:
        client.send_message(message)


def test_list_filters_message_raw_delete(refservers_smtp: Any, refservers_admin: Any) -> None:
    api = f"{refservers_admin.url}/api/v1/messages"
    send(refservers_smtp, "demo@example.com", "first report")
    send(refservers_smtp, "bob@elsewhere.test", "second", sender="carol@example.com")
    listing = requests.get(api, timeout=10).json()
    assert (listing["total"], listing["count"], listing["messages_count"], listing["unread"]) == (2, 2, 2, 2)
    assert [m["Subject"] for m in listing["messages"]] == ["second", "first report"]  # newest first
    # refservers' filters, beside Mailpit's start/limit: mailbox user, to, from, subject, since.
    assert requests.get(api, params={"to": "bob@"}, timeout=10).json()["messages"][0]["Users"] == ["bob@elsewhere.test"]
    assert requests.get(api, params={"from": "carol"}, timeout=10).json()["count"] == 1
    assert requests.get(api, params={"subject": "REPORT"}, timeout=10).json()["count"] == 1
    assert requests.get(api, params={"user": "demo"}, timeout=10).json()["count"] == 1
    assert requests.get(api, params={"since": time.time() + 3600}, timeout=10).json()["count"] == 0
    assert requests.get(api, params={"since": "not a date"}, timeout=10).status_code == 400
    assert requests.get(api, params={"limit": 1, "start": 1}, timeout=10).json()["messages"][0]["Subject"] == "first report"

    first = requests.get(api, params={"subject": "first"}, timeout=10).json()["messages"][0]
    assert first["Envelope"] == {"From": "alice@example.com", "To": ["demo@example.com"]}
    shown = requests.get(f"{refservers_admin.url}/api/v1/message/{first['ID']}", timeout=10).json()
    assert shown["Text"] == "plain body\n" and shown["HTML"].strip() == "<p>html body</p>"
    (attachment,) = shown["Attachments"]
    assert (attachment["FileName"], attachment["ContentType"], attachment["Size"]) == ("data.bin", "application/octet-stream", 8)
    assert shown["Subject"] == "first report" and shown["ReturnPath"] == "alice@example.com"

    raw = requests.get(f"{refservers_admin.url}/api/v1/message/{first['ID']}/raw", timeout=10)
    assert raw.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert raw.content == refservers_smtp.core.shared(MailStore).read("demo", first["ID"])

    assert requests.delete(api, json={"IDs": [first["ID"]]}, timeout=10).text == "ok"
    assert requests.get(f"{refservers_admin.url}/api/v1/message/{first['ID']}", timeout=10).status_code == 404
    assert requests.delete(api, params={"user": "nobody"}, timeout=10).text == "ok"
    assert requests.get(api, timeout=10).json()["total"] == 1
    assert requests.delete(api, timeout=10).text == "ok"
    assert requests.get(api, timeout=10).json()["total"] == 0


def test_wait_returns_when_mail_arrives(refservers_smtp: Any, refservers_admin: Any, mail_store: MailStore) -> None:
    url = f"{refservers_admin.url}/api/v1/messages/wait"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(requests.get, url, params={"to": "late@example.com", "timeout": "20"}, timeout=30)
        mail_store.wait_for_subscribers(1)  # the long poll is listening: what follows arrives during it
        send(refservers_smtp, "other@example.com", "not this one")
        send(refservers_smtp, "late@example.com", "arrived")
        reply = waiting.result()
    assert reply.status_code == 200 and reply.json()["Subject"] == "arrived"
    # Already there: immediate answer; nothing matching: 408 after the timeout.
    assert requests.get(url, params={"subject": "arrived", "timeout": "5"}, timeout=10).status_code == 200
    timed_out = requests.get(url, params={"subject": "never", "timeout": "0.3"}, timeout=10)
    assert timed_out.status_code == 408


def test_wait_does_not_block_other_requests(refservers_smtp: Any, refservers_admin: Any, mail_store: MailStore) -> None:
    url = f"{refservers_admin.url}/api/v1/messages"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(requests.get, f"{url}/wait", params={"subject": "unblock", "timeout": "20"}, timeout=30)
        mail_store.wait_for_subscribers(1)
        # While a wait is pending the admin loop keeps answering.
        assert requests.get(url, timeout=30).status_code == 200
        send(refservers_smtp, "demo@example.com", "unblock")
        assert waiting.result().json()["Subject"] == "unblock"


def test_python_wait_helper(refservers_smtp: Any, mail_store: MailStore) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(mail_store.wait_for_message, 20, None, "py@example.com")
        send(refservers_smtp, "py@example.com", "python side")
        assert waiting.result().subject == "python side"
    with pytest.raises(TimeoutError):
        mail_store.wait_for_message(timeout=0.2, subject="absent")


def test_unknown_id_404(refservers_smtp: Any, refservers_admin: Any) -> None:
    for path in ("nope", "nope/raw", "nope/headers", "..%2F..%2Fetc", "..%2F..%2Fetc/raw"):
        reply = requests.get(f"{refservers_admin.url}/api/v1/message/{path}", timeout=10)
        assert (reply.status_code, reply.text) == (404, "404 page not found")


def test_users_api_adds_accounts_every_mail_protocol_accepts(refservers_smtp: Any, refservers_pop3: Any, refservers_admin: Any) -> None:
    import poplib

    api = f"{refservers_admin.url}/api/v1/users"
    listed = requests.get(api, timeout=10).json()["users"]
    assert {"name": "demo", "read_only": False, "mailbox": False} in listed
    assert all("password" not in entry for entry in listed)
    created = requests.post(api, json={"name": "erin", "password": "s3cret"}, timeout=10)
    assert created.status_code == 201
    assert requests.post(api, json={"name": "erin", "password": "x"}, timeout=10).status_code == 409
    assert requests.post(api, json={"name": "../x", "password": "x"}, timeout=10).status_code == 400
    assert requests.post(api, json={"name": "x"}, timeout=10).status_code == 400
    with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=10) as client:
        client.login("erin", "s3cret")
        client.sendmail("erin@example.com", ["erin@example.com"], b"Subject: self\r\n\r\nhi\r\n")
    reader = poplib.POP3(refservers_pop3.probe_host, refservers_pop3.port, timeout=10)
    reader.user("erin")
    reader.pass_("s3cret")
    assert reader.stat()[0] == 1
    reader.quit()
    assert requests.delete(f"{api}/erin", timeout=10).json() == {"removed": "erin"}
    assert requests.delete(f"{api}/erin", timeout=10).status_code == 404
    reader = poplib.POP3(refservers_pop3.probe_host, refservers_pop3.port, timeout=10)
    reader.user("erin")
    with pytest.raises(poplib.error_proto):
        reader.pass_("s3cret")
    reader.quit()

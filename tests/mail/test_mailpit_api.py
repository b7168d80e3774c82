"""Mailpit API v1 endpoints no client library covers, with raw requests, as Mailpit answers them
(server/apiv1/*.go): search syntax, read status (= IMAP \\Seen), tags (= IMAP keywords),
send, views, chaos (= SMTP fault rules), health, info. Mail arrives over real SMTP.
"""

from __future__ import annotations

import base64
import email.utils
import imaplib
import re
import smtplib
import struct
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from servers.mail.mailpit import MailpitView
from servers.mail.store import MailStore

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def send(smtp: Any, subject: str, to: str = "demo@example.com", sender: str = "alice@example.com", attach: bool = False, html: str | None = None) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Date"] = email.utils.formatdate(localtime=True)
    message["message-id"] = email.utils.make_msgid(domain="example.com")
    message.set_content(f"text of {subject}\n")
    if html is not None:
        message.add_alternative(html, subtype="html")
    if attach:
        message.add_attachment(b"col1,col2\n", maintype="text", subtype="csv", filename="data.csv")
    with smtplib.SMTP(smtp.probe_host, smtp.port, timeout=10) as client:
        client.send_message(message)


@pytest.fixture
def api(refservers_admin: Any) -> str:
    return f"{refservers_admin.url}/api/v1"


def subjects(reply: requests.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [m["Subject"] for m in reply.json()["messages"]]


def test_search_syntax(refservers_smtp: Any, api: str) -> None:
    send(refservers_smtp, "Quarterly report", to="Bob Boss <boss@example.com>", attach=True)
    send(refservers_smtp, "lunch plans", sender="carol@example.com", html="<p>Pizza at <b>noon</b></p>")
    send(refservers_smtp, "Re: lunch plans", to="team@example.com")
    search = f"{api}/search"
    assert subjects(requests.get(search, params={"query": "from:carol"}, timeout=10)) == ["lunch plans"]
    assert subjects(requests.get(search, params={"query": "to:boss"}, timeout=10)) == ["Quarterly report"]
    assert subjects(requests.get(search, params={"query": 'to:"bob boss"'}, timeout=10)) == ["Quarterly report"]
    assert subjects(requests.get(search, params={"query": "subject:lunch -subject:Re:"}, timeout=10)) == ["lunch plans"]
    assert subjects(requests.get(search, params={"query": '"lunch plans"'}, timeout=10)) == ["Re: lunch plans", "lunch plans"]
    assert subjects(requests.get(search, params={"query": "has:attachment"}, timeout=10)) == ["Quarterly report"]
    assert subjects(requests.get(search, params={"query": "!has:attachment pizza"}, timeout=10)) == ["lunch plans"]
    assert subjects(requests.get(search, params={"query": "noon"}, timeout=10)) == ["lunch plans"]  # stripped HTML
    assert subjects(requests.get(search, params={"query": "before:2000-01-01"}, timeout=10)) == []
    assert len(subjects(requests.get(search, params={"query": "after:2000-01-01"}, timeout=10))) == 3
    found = requests.get(search, params={"query": "lunch", "limit": 1}, timeout=10).json()
    assert (found["messages_count"], found["total"], found["count"]) == (2, 3, 1)
    missing = requests.get(search, timeout=10)
    assert (missing.status_code, missing.text) == (400, "Error: no search query")

    # Read state: the message view marks read; is:read / is:unread follow.
    latest = requests.get(f"{api}/message/latest", params={"query": "subject:Quarterly"}, timeout=10).json()
    assert latest["Subject"] == "Quarterly report"
    assert subjects(requests.get(search, params={"query": "is:read"}, timeout=10)) == ["Quarterly report"]
    assert requests.delete(search, params={"query": "is:unread"}, timeout=10).text == "ok"
    assert subjects(requests.get(f"{api}/messages", timeout=10)) == ["Quarterly report"]


def test_summary_and_message_details(refservers_smtp: Any, api: str) -> None:
    send(refservers_smtp, "details", html="<html><head><title>T</title><style>x{}</style></head><body><p>Hi</p><p>there &amp; you</p></body></html>", attach=True)
    (summary,) = requests.get(f"{api}/messages", timeout=10).json()["messages"]
    assert summary["Cc"] is None and summary["Bcc"] is None and summary["ReplyTo"] == []
    assert summary["Snippet"] == "Hi there & you"  # from the stripped HTML
    assert summary["Attachments"] == 1 and summary["Tags"] == [] and summary["Read"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?(Z|[+-]\d\d:\d\d)", summary["Created"])
    assert re.fullmatch(r"[A-Za-z0-9._,=-]+", summary["ID"])  # path-safe

    message_id = summary["ID"]
    headers = requests.get(f"{api}/message/{message_id}/headers", timeout=10).json()
    assert "Message-Id" in headers and "Message-ID" not in headers  # Go-canonical keys
    assert headers["Subject"] == ["details"] and headers["Return-Path"] == ["<alice@example.com>"]

    message = requests.get(f"{api}/message/{message_id}", timeout=10).json()
    assert message["Cc"] == [] and message["Bcc"] == []
    (attachment,) = message["Attachments"]
    part = requests.get(f"{api}/message/{message_id}/part/{attachment['PartID']}", timeout=10)
    assert part.content == b"col1,col2\n" and part.headers["Content-Type"].startswith("text/csv")
    assert part.headers["Content-Disposition"] == 'inline; filename="data.csv"'
    assert requests.get(f"{api}/message/{message_id}/part/9.9", timeout=10).status_code == 404
    # A non-image's thumbnail is Mailpit's blank 180x120 JPEG.
    thumb = requests.get(f"{api}/message/{message_id}/part/{attachment['PartID']}/thumb", timeout=10)
    assert thumb.headers["Content-Type"] == "image/jpeg" and thumb.content.startswith(b"\xff\xd8")
    frame = thumb.content.index(b"\xff\xc0")
    assert struct.unpack(">HH", thumb.content[frame + 5 : frame + 9]) == (120, 180)
    raw = requests.get(f"{api}/message/latest/raw", params={"dl": "1"}, timeout=10)
    assert raw.headers["Content-Disposition"] == f'attachment; filename="{message_id}.eml"'
    assert b"Subject: details" in raw.content


def test_envelope_recipients_missing_from_headers_are_bcc(refservers_smtp: Any, api: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alice@example.com", "demo@example.com", "blind"
    message.set_content("x\n")
    with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=10) as client:
        client.send_message(message, to_addrs=["demo@example.com", "hidden@example.com"])
    (summary,) = requests.get(f"{api}/messages", timeout=10).json()["messages"]
    assert summary["Bcc"] == [{"Name": "", "Address": "hidden@example.com"}]
    assert summary["Users"] == ["demo", "hidden@example.com"]  # two mailboxes, one message


def test_read_status_is_imap_seen(refservers_smtp: Any, refservers_imap: Any, api: str) -> None:
    send(refservers_smtp, "one")
    send(refservers_smtp, "two")
    ids = [m["ID"] for m in requests.get(f"{api}/messages", timeout=10).json()["messages"]]
    assert requests.put(f"{api}/messages", json={"Read": True, "IDs": ids[:1]}, timeout=10).text == "ok"
    listing = requests.get(f"{api}/messages", timeout=10).json()
    assert listing["unread"] == 1 and [m["Read"] for m in listing["messages"]] == [True, False]
    with imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10) as imap:
        imap.login("demo", "demo")
        imap.select("INBOX")
        assert imap.search(None, "SEEN")[1] == [b"2"]  # "two", the newest, is UID 2
        imap.store("1", "+FLAGS", "\\Seen")
    assert requests.get(f"{api}/messages", timeout=10).json()["unread"] == 0
    both = requests.put(f"{api}/messages", json={"Read": False, "IDs": ids, "Search": "x"}, timeout=10)
    assert (both.status_code, both.text) == (400, "You may specify either IDs or a search query, not both")
    assert requests.put(f"{api}/messages", json={"Read": False, "Search": "subject:two"}, timeout=10).text == "ok"
    assert requests.get(f"{api}/messages", timeout=10).json()["unread"] == 1
    assert requests.put(f"{api}/messages", json={"Read": False}, timeout=10).text == "ok"  # no IDs: all
    assert requests.get(f"{api}/messages", timeout=10).json()["unread"] == 2
    bad = requests.put(f"{api}/messages", data="ids=1", timeout=10)
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "text/plain"


def test_tags_are_imap_keywords(refservers_smtp: Any, refservers_imap: Any, api: str) -> None:
    send(refservers_smtp, "tag me", to="demo+newsletter@example.com")
    (summary,) = requests.get(f"{api}/messages", timeout=10).json()["messages"]
    assert summary["Tags"] == ["newsletter"]  # Mailpit tags plus addresses on arrival
    message_id = summary["ID"]
    assert requests.put(f"{api}/tags", json={"IDs": [message_id], "Tags": ["Urgent", "needs review", "bad$chars"]}, timeout=10).text == "ok"
    assert requests.get(f"{api}/tags", timeout=10).json() == ["Urgent", "bad chars", "needs review"]  # byte order
    with imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10) as imap:
        imap.login("demo+newsletter@example.com", "demo+newsletter@example.com")
        imap.select("INBOX")
        flags = imap.fetch("1", "(FLAGS)")[1][0]
        assert b"Urgent" in flags and b"needs~review" in flags
        imap.store("1", "+FLAGS", "(Later)")
    assert requests.get(f"{api}/message/{message_id}", timeout=10).json()["Tags"] == ["Later", "Urgent", "bad chars", "needs review"]
    assert requests.get(f"{api}/search", params={"query": "tag:later"}, timeout=10).json()["messages_count"] == 1
    assert requests.put(f"{api}/tags/Later", json={"Name": "Someday"}, timeout=10).text == "ok"
    assert requests.delete(f"{api}/tags/bad chars", timeout=10).text == "ok"
    assert requests.get(f"{api}/tags", timeout=10).json() == ["Someday", "Urgent", "needs review"]
    assert requests.put(f"{api}/tags", json={"IDs": [message_id], "Tags": []}, timeout=10).text == "ok"
    assert requests.get(f"{api}/tags", timeout=10).json() == []  # and "newsletter" stays removed


def test_send_stores_as_if_received(refservers_smtp: Any, api: str) -> None:
    body = {
        "From": {"Email": "app@example.com", "Name": "App"},
        "To": [{"Email": "demo@example.com", "Name": "Demo"}],
        "Cc": [{"Email": "cc@example.com"}],
        "Bcc": ["audit@example.com"],
        "Subject": "Sent by API",
        "Text": "plain",
        "HTML": "<p>rich</p>",
        "Tags": ["api"],
        "Headers": {"X-Campaign": "42"},
        "Attachments": [{"Content": base64.b64encode(PNG).decode(), "Filename": "dot.png"}],
    }
    reply = requests.post(f"{api}/send", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    message_id = reply.json()["ID"]
    message = requests.get(f"{api}/message/{message_id}", timeout=10).json()
    assert message["Subject"] == "Sent by API" and message["Text"].strip() == "plain" and message["Tags"] == ["api"]
    assert message["Bcc"] == [{"Name": "", "Address": "audit@example.com"}]
    (attachment,) = message["Attachments"]
    assert attachment["ContentType"] == "image/png"
    thumb = requests.get(f"{api}/message/{message_id}/part/{attachment['PartID']}/thumb", timeout=10)
    assert thumb.status_code == 200 and thumb.content == PNG
    assert requests.get(f"{api}/message/{message_id}/headers", timeout=10).json()["X-Campaign"] == ["42"]
    assert requests.get(f"{api}/messages", timeout=10).json()["total"] == 1  # three mailboxes, one message

    restricted = requests.post(f"{api}/send", json={**body, "Headers": {"Subject": "x"}}, timeout=10)
    assert restricted.status_code == 400 and restricted.json() == {"Error": 'cannot overwrite header: "Subject"'}
    broken = requests.post(f"{api}/send", data="nope", headers={"Content-Type": "application/json"}, timeout=10)
    assert broken.status_code == 400 and broken.json()["Error"].startswith("invalid character")


def test_views(refservers_smtp: Any, refservers_admin: Any) -> None:
    base = refservers_admin.url
    assert requests.get(f"{base}/view/latest.txt", timeout=10).status_code == 404
    send(refservers_smtp, "plain only")
    send(refservers_smtp, "with html", html="<p>the <i>html</i></p>")
    (newest, oldest) = requests.get(f"{base}/api/v1/messages", timeout=10).json()["messages"]
    page = requests.get(f"{base}/view/{newest['ID']}.html", timeout=10)
    assert page.headers["Content-Type"] == "text/html; charset=utf-8" and "<i>html</i>" in page.text
    assert requests.get(f"{base}/view/latest.txt", timeout=10).text == "text of with html\n"
    no_html = requests.get(f"{base}/view/{oldest['ID']}.html", timeout=10)
    assert (no_html.status_code, no_html.text) == (404, "This message does not contain a HTML part")
    redirect = requests.get(f"{base}/view/latest", allow_redirects=False, timeout=10)
    assert (redirect.status_code, redirect.headers["Location"]) == (302, f"/view/{newest['ID']}")
    # No text part: the text is the HTML down-converted, as enmime does for Mailpit.
    with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=10) as client:
        client.sendmail("a@example.com", ["demo@example.com"], b"Subject: html only\r\nContent-Type: text/html\r\n\r\n<p>Only <b>markup</b></p>\r\n")
    assert requests.get(f"{base}/view/latest.txt", timeout=10).text == "Only markup"


def test_health_info_webui_release(refservers_smtp: Any, refservers_admin: Any, api: str) -> None:
    base = refservers_admin.url
    assert requests.get(f"{base}/livez", timeout=10).status_code == 200
    assert requests.get(f"{base}/readyz", timeout=10).status_code == 200
    send(refservers_smtp, "counted")
    info = requests.get(f"{api}/info", timeout=10).json()
    assert (info["Messages"], info["Unread"], info["RuntimeStats"]["SMTPAccepted"]) == (1, 1, 1)
    webui = requests.get(f"{api}/webui", timeout=10).json()
    assert webui["ChaosEnabled"] is True and webui["MessageRelay"]["Enabled"] is False
    release = requests.post(f"{api}/message/latest/release", json={"To": ["x@example.net"]}, timeout=10)
    assert release.status_code == 400 and release.text.startswith("SMTP error: ")
    assert requests.post(f"{api}/message/latest/release", json={"To": []}, timeout=10).text == "No valid addresses found"


def test_chaos_is_smtp_fault_rules(refservers_smtp: Any, refservers_admin: Any, api: str) -> None:
    assert requests.get(f"{api}/chaos", timeout=10).json() == {
        "Sender": {"ErrorCode": 451, "Probability": 0},
        "Recipient": {"ErrorCode": 451, "Probability": 0},
        "Authentication": {"ErrorCode": 535, "Probability": 0},
    }
    reply = requests.put(f"{api}/chaos", json={"Recipient": {"ErrorCode": 552, "Probability": 100}}, timeout=10)
    assert reply.json()["Recipient"] == {"ErrorCode": 552, "Probability": 100}
    assert reply.json()["Sender"] == {"ErrorCode": 451, "Probability": 0}
    rules = requests.get(f"{api}/faults", params={"server": "smtp"}, timeout=10).json()["faults"]
    assert [(r["id"], r["match"]) for r in rules] == [("mailpit-chaos-recipient", "RCPT *")]
    with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=10) as client:
        client.ehlo()
        assert client.mail("alice@example.com")[0] == 250
        code, text = client.rcpt("demo@example.com")
        assert code == 552 and b"Chaos recipient error" in text
    bad = requests.put(f"{api}/chaos", json={"Sender": {"ErrorCode": 250, "Probability": 5}}, timeout=10)
    assert (bad.status_code, bad.text) == (400, "error code must be between 400 and 599")
    assert requests.put(f"{api}/chaos", json={}, timeout=10).json()["Recipient"]["Probability"] == 0
    assert requests.get(f"{api}/faults", params={"server": "smtp"}, timeout=10).json()["faults"] == []
    with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=10) as client:
        assert client.sendmail("alice@example.com", ["demo@example.com"], b"Subject: after chaos\r\n\r\nok\r\n") == {}


def test_username_is_the_smtp_login(refservers_smtp: Any, api: str) -> None:
    with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=10) as client:
        client.login("demo", "demo")
        client.sendmail("demo@example.com", ["bob@example.com"], b"Subject: authenticated\r\n\r\nhi\r\n")
    send(refservers_smtp, "anonymous")
    listing = requests.get(f"{api}/messages", timeout=10).json()["messages"]
    assert [(m["Subject"], m["Username"]) for m in listing] == [("anonymous", ""), ("authenticated", "demo")]


def test_ids_read_state_and_tags_live_in_the_store(refservers_smtp: Any, api: str, mail_store: MailStore) -> None:
    """Another process (here: a second view over the same Maildir) sees the same
    messages, IDs, read state and tags: nothing is kept beside the store."""
    send(refservers_smtp, "durable", to="demo@example.com, bob@example.com")
    (summary,) = requests.get(f"{api}/messages", timeout=10).json()["messages"]
    requests.get(f"{api}/message/{summary['ID']}", timeout=10)  # marks it read
    requests.put(f"{api}/tags", json={"IDs": [summary["ID"]], "Tags": ["kept"]}, timeout=10)
    (entry,) = MailpitView(MailStore(mail_store.root, mail_store.users)).entries()
    assert (entry.id, entry.read, entry.tags, entry.users) == (summary["ID"], True, ["kept"], ["bob@example.com", "demo"])

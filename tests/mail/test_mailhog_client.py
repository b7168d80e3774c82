"""MailHog's API through the ``mailhog`` client (PyPI), which MailHog users' suites call.

The client (mailhog/main.py) calls GET /api/v2/messages?start&limit, GET /api/v2/search
?query&kind&start&limit, DELETE /api/v1/messages and DELETE /api/v1/messages/{ID}, and
reads MailHog's JSON (types.py): paths, Content.Headers, MIME.Parts. Mail arrives over
real SMTP.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

import requests
from mailhog import Mailhog


def send(smtp: Any, subject: str, sender: str, recipients: list[str], body: str = "plain body\n") -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, ", ".join(recipients), subject
    message.set_content(body)
    message.add_alternative(f"<p>{body}</p>", subtype="html")
    with smtplib.SMTP(smtp.probe_host, smtp.port, timeout=10) as client:
        client.send_message(message)


def test_messages_search_and_delete(refservers_smtp: Any, refservers_admin: Any) -> None:
    client = Mailhog(refservers_smtp.probe_host, refservers_admin.port)
    send(refservers_smtp, "Welcome aboard", "noreply@shop.test", ["ann@example.com", "ben@example.com"], "your code is Q4711XZ\n")
    send(refservers_smtp, "Invoice", "billing@shop.test", ["ann@example.com"])

    listing = client.messages()
    assert (listing.total, listing.count, listing.start) == (2, 2, 0)
    newest, oldest = listing.items
    assert newest.get_subject() == "Invoice" and oldest.get_subject() == "Welcome aboard"
    assert oldest.get_sender() == "noreply@shop.test"
    # One message for the transaction, with both envelope recipients.
    assert sorted(oldest.get_recipients()) == ["ann@example.com", "ben@example.com"]
    # MailHog splits the body at "--boundary": the text and html parts, and the closing
    # delimiter's "--" as a third part (MailHog's own quirk, kept).
    assert oldest.mime is not None and [part.body for part in oldest.mime.parts][2:] == ["--"]
    assert "Q4711XZ" in oldest.mime.parts[0].body and "<p>" in oldest.mime.parts[1].body

    assert [m.get_subject() for m in client.search("billing@", kind="from").items] == ["Invoice"]
    assert [m.get_subject() for m in client.search("ben@example.com", kind="to").items] == ["Welcome aboard"]
    assert [m.get_subject() for m in client.search("Q4711XZ").items] == ["Welcome aboard"]
    assert client.search("nothing like this").total == 0
    assert client.messages(start=1, limit=1).items[0].get_subject() == "Welcome aboard"

    client.delete(oldest)
    assert [m.get_subject() for m in client.messages().items] == ["Invoice"]
    client.delete_all()
    assert client.messages().total == 0


def test_mailhog_json_shape(refservers_smtp: Any, refservers_admin: Any) -> None:
    send(refservers_smtp, "Shape", "from@example.com", ["to@example.com"])
    reply = requests.get(f"{refservers_admin.url}/api/v2/messages", timeout=10)
    assert reply.headers["Content-Type"] == "text/json"  # what MailHog's v2 list sends
    (item,) = reply.json()["items"]
    assert item["From"] == {"Relays": None, "Mailbox": "from", "Domain": "example.com", "Params": ""}
    assert item["Content"]["Headers"]["Subject"] == ["Shape"]
    assert item["Content"]["MIME"] is None and len(item["MIME"]["Parts"]) == 3
    assert item["Raw"]["From"] == "from@example.com" and item["Raw"]["To"] == ["to@example.com"]
    assert item["Raw"]["Data"].startswith("Received: ")  # the message as received, without Return-Path/Delivered-To
    # MailHog answers a bad search with a bare 400.
    bad = requests.get(f"{refservers_admin.url}/api/v2/search", params={"kind": "subject", "query": "x"}, timeout=10)
    assert (bad.status_code, bad.text) == (400, "")

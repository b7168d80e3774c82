"""Mailpit API v1 through ``mailpit-api-client`` (PyPI), the library Mailpit users' suites call.

The client (mailpit/client/api.py, models.py) calls: GET /api/v1/messages?limit&start,
GET /api/v1/message/{ID}, /headers, /part/{PartID}, and DELETE/PUT /api/v1/messages with
a form-encoded body (which Mailpit's JSON decoder refuses: DELETE then deletes all, PUT
answers 400). Mail arrives over real SMTP.
"""

from __future__ import annotations

import email.utils
import hashlib
import smtplib
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from mailpit.client.api import API
from mailpit.client.models import Message, Messages

PDF = b"%PDF-1.4 not really a pdf\x00\x01"


def send(smtp: Any, subject: str, to: str = "bob@example.com", cc: str | None = None, envelope: list[str] | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=True)  # the client's Headers model requires one
    message["Message-ID"] = f"<{subject.replace(' ', '-')}@example.com>"
    message.set_content("Hello Bob,\nthe report is attached.\n")
    message.add_alternative("<html><head><style>p{}</style></head><body><p>Hello <b>Bob</b>,</p><p>the report</p></body></html>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    with smtplib.SMTP(smtp.probe_host, smtp.port, timeout=10) as client:
        client.send_message(message, to_addrs=envelope)
    return message


def test_list_read_headers_and_attachment(refservers_smtp: Any, refservers_admin: Any) -> None:
    api = API(refservers_admin.url, timeout=10)
    send(refservers_smtp, "first report")
    send(refservers_smtp, "second report", to="Bob <bob@example.com>", cc="carol@example.com")

    # Mailpit's List() sends Bcc as null when empty; the client types it non-optional and
    # warns, against Mailpit as here.
    with pytest.warns(RuntimeWarning, match="non-optional type bcc"):
        listing = api.get_messages()
    assert isinstance(listing, Messages)
    assert (listing.total, listing.unread, listing.count, listing.start) == (2, 2, 2, 0)
    newest, oldest = listing.messages
    assert newest.subject == "second report" and oldest.subject == "first report"
    # One message per SMTP transaction, even with two recipient mailboxes.
    assert [(c.name, c.address) for c in newest.to] == [("Bob", "bob@example.com")]
    assert [c.address for c in newest.cc or []] == ["carol@example.com"]
    assert oldest.cc is None and oldest.bcc is None  # null in summaries, as Mailpit's List()
    assert newest.from_ is not None and (newest.from_.name, newest.from_.address) == ("Alice Example", "alice@example.com")
    assert newest.attachments == 1 and not newest.read
    assert newest.message_id == "second-report@example.com"
    assert newest.created.tzinfo is not None

    message = api.get_message(newest.id)
    assert isinstance(message, Message)
    assert message.read is True  # mailpit-api-client 1.0.0 requires Read on a message
    assert message.text == "Hello Bob,\nthe report is attached.\n"
    assert "<b>Bob</b>" in (message.html or "")
    assert message.date.tzinfo is not None
    (attachment,) = message.attachments
    assert (attachment.file_name, attachment.content_type, attachment.size) == ("report.pdf", "application/pdf", len(PDF))
    assert api.get_message_attachment(newest.id, attachment.part_id).encode("latin-1", "replace")[:8] == PDF[:8]
    with pytest.warns(RuntimeWarning, match="bcc"):
        assert api.get_messages().unread == 1  # reading marked it read

    headers = api.get_message_headers(newest.id)
    assert headers.message_id == ["<second-report@example.com>"]
    assert headers.from_ == ["Alice Example <alice@example.com>"]
    assert "bob@example.com" in headers.delivered_to

    raw = httpx.get(f"{refservers_admin.url}/api/v1/message/{newest.id}", timeout=10).json()
    checksums = raw["Attachments"][0]["Checksums"]
    assert checksums == {
        "MD5": hashlib.md5(PDF).hexdigest(),
        "SHA1": hashlib.sha1(PDF).hexdigest(),
        "SHA256": hashlib.sha256(PDF).hexdigest(),
    }


def test_latest_works_where_an_id_does(refservers_smtp: Any, refservers_admin: Any) -> None:
    api = API(refservers_admin.url, timeout=10)
    with pytest.raises(httpx.HTTPStatusError) as missing:
        api.get_message("latest")
    assert missing.value.response.status_code == 404 and missing.value.response.text == "Message not found"
    send(refservers_smtp, "only one")
    assert api.get_message("latest").subject == "only one"
    assert api.get_message_headers("latest").message_id == ["<only-one@example.com>"]


def test_unknown_id_is_mailpits_404(refservers_smtp: Any, refservers_admin: Any) -> None:
    api = API(refservers_admin.url, timeout=10)
    with pytest.raises(httpx.HTTPStatusError):
        api.get_message("doesnotexist")
    assert api.last_response is not None
    assert (api.last_response.status_code, api.last_response.text) == (404, "404 page not found")


def test_client_delete_and_put_behave_as_against_mailpit(refservers_smtp: Any, refservers_admin: Any) -> None:
    api = API(refservers_admin.url, timeout=10)
    send(refservers_smtp, "one")
    send(refservers_smtp, "two")
    with pytest.warns(RuntimeWarning, match="bcc"):
        ids = [summary.id for summary in api.get_messages().messages]
    # The client sends form data; Mailpit's JSON decoder refuses it: PUT is a 400...
    with pytest.raises(httpx.HTTPStatusError):
        api.put_messages(ids[:1], "Read", True)
    assert api.last_response is not None and api.last_response.status_code == 400
    # ...and DELETE, finding no IDs, deletes every message (what the pytest fixture relies on).
    api.delete_messages(ids[:1])
    assert api.get_messages().total == 0  # no summaries: no Bcc warning

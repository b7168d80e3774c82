"""The tutorial's client: Python 3.11's nntplib against a fresh NNTP server, unmodified.

nntplib is deprecated (PEP 594) and warns on import; that warning, and only that one,
is silenced here, around the import.
"""

from __future__ import annotations

import datetime
import io
import ssl
import warnings
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib


def connect(server: Any) -> nntplib.NNTP:
    return nntplib.NNTP(server.probe_host, server.port, timeout=10)


def test_tutorial_flow_read_newest_post_and_read_back_every_way(refservers_nntp: Any) -> None:
    client = connect(refservers_nntp)
    try:
        assert client.getwelcome().startswith("200")
        caps = client.getcapabilities()
        assert caps["VERSION"] == ["2"] and "POST" in caps and "OVER" in caps

        _, groups = client.list()
        assert {g.group for g in groups} == {"comp.lang.python", "local.test"}
        assert client.description("comp.lang.python")

        # The tutorial: select the group, read the newest article's headers and body.
        _, count, first, last, name = client.group("comp.lang.python")
        assert (name, count, first) == ("comp.lang.python", 3, 1) and last == 3
        _, head = client.head(str(last))
        assert b"Subject: Re: Reading the newest article with nntplib" in head.lines
        _, body = client.body(str(last))
        assert body.lines == [b"And server.over((first, last)) gives the overview of every article."]

        started = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(seconds=1)
        article = (
            b"From: Tutorial Reader <reader@example.com>\r\n"
            b"Newsgroups: comp.lang.python\r\n"
            b"Subject: posted from nntplib\r\n"
            b"\r\n"
            b"first line\r\n"
            b".a line starting with a dot\r\n"
            b"..two dots\r\n"
            b".\tdot tab\r\n"
        )
        reply = client.post(io.BytesIO(article))
        assert reply.startswith("240")
        message_id = reply.split()[-1]

        # Through the overview.
        _, count, first, last, _ = client.group("comp.lang.python")
        assert count == 4 and last == 4
        _, overviews = client.over((first, last))
        number, fields = overviews[-1]
        assert number == 4
        assert fields["subject"] == "posted from nntplib" and fields["message-id"] == message_id
        assert fields["from"] == "Tutorial Reader <reader@example.com>"
        assert fields["xref"] == "refservers comp.lang.python:4"
        assert int(fields[":bytes"]) > len(article) and fields[":lines"] == "4"

        # By number and by Message-ID: the body comes back exactly as posted.
        expected_body = article.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[:-1]
        _, by_number = client.article("4")
        assert by_number.message_id == message_id and by_number.lines[-4:] == expected_body
        _, by_id = client.article(message_id)
        assert by_id.number == 0 and by_id.lines == by_number.lines
        assert b"Xref: refservers comp.lang.python:4" in by_id.lines
        assert any(line.startswith(b"Date: ") for line in by_id.lines)
        assert by_id.lines[0] == b"Path: refservers!not-for-mail"

        # Through NEWNEWS: the new post, and not the samples seeded before.
        _, new = client.newnews("comp.lang.python", started)
        assert new == [message_id]
        _, new_everywhere = client.newnews("*", datetime.datetime(2000, 1, 1))
        assert message_id in new_everywhere and len(new_everywhere) == 6  # 3 + 2 samples + the post
    finally:
        client.quit()
    posts = refservers_nntp.journal.events(server="nntp", kind="message")
    assert [e.details["message_id"] for e in posts] == [message_id]


def test_next_last_stat_xhdr_date_and_listings(refservers_nntp: Any) -> None:
    client = connect(refservers_nntp)
    try:
        client.group("local.test")
        assert client.stat()[1:] == (1, "<sample-1.local.test@refservers>")
        assert client.next()[1] == 2
        with pytest.raises(nntplib.NNTPTemporaryError, match="^421"):
            client.next()
        assert client.last()[1] == 1
        with pytest.raises(nntplib.NNTPTemporaryError, match="^422"):
            client.last()
        assert client.xhdr("subject", "1-")[1] == [("1", "test"), ("2", "another test")]
        assert client.xhdr("message-id", "<sample-2.local.test@refservers>")[1] == [
            ("0", "<sample-2.local.test@refservers>")
        ]
        _, when = client.date()
        assert abs(when.replace(tzinfo=datetime.UTC) - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(
            minutes=1
        )
        _, fmt = client._longcmdstring("LIST OVERVIEW.FMT")
        assert fmt[:5] == ["Subject:", "From:", "Date:", "Message-ID:", "References:"]
        _, new_groups = client.newgroups(datetime.date(2000, 1, 1))
        assert {g.group for g in new_groups} == {"comp.lang.python", "local.test"}
        _, none_yet = client.newgroups(datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1))
        assert none_yet == []
    finally:
        client.quit()


def test_nntps_starttls_and_login(refservers_nntp: Any) -> None:
    context = refservers_nntp.core.tls.client_context()
    with nntplib.NNTP_SSL(
        refservers_nntp.probe_host, refservers_nntp.listeners["tls"], ssl_context=context, timeout=10
    ) as secure:
        assert "STARTTLS" not in secure.getcapabilities()  # already encrypted
        secure.login("demo", "demo")
        assert secure.group("local.test")[1] == 2

    client = connect(refservers_nntp)
    try:
        client.starttls(context)
        assert isinstance(client.sock, ssl.SSLSocket)
        client.login("demo", "demo")
        assert "AUTHINFO" not in client.getcapabilities()  # RFC 4643 2.2: not after login
    finally:
        client.quit()
    logins = refservers_nntp.journal.events(server="nntp", kind="auth")
    assert [(e.details["ok"], e.details["user"]) for e in logins] == [(True, "demo"), (True, "demo")]

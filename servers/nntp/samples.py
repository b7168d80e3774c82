"""Sample articles a fresh spool starts with, so a tutorial's "read the newest article"
client has something to read (RFC 5536 articles, CRLF, with fixed Message-IDs and Dates).

Seeded once, into a configured group that never had an article (see NewsSpool).
"""

from __future__ import annotations


def _article(group: str, number: int, subject: str, sender: str, date: str, body: str, references: str = "") -> bytes:
    headers = [
        f"From: {sender}",
        f"Newsgroups: {group}",
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: <sample-{number}.{group}@refservers>",
    ]
    if references:
        headers.append(f"References: {references}")
    text = "\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n")
    return text.encode("utf-8")


SAMPLE_ARTICLES: dict[str, list[bytes]] = {
    "comp.lang.python": [
        _article(
            "comp.lang.python",
            1,
            "Welcome to comp.lang.python on refservers",
            "Guide <guide@example.com>",
            "Mon, 01 Jan 2024 09:00:00 +0000",
            "This is a local reference news server.\nPost with nntplib's NNTP.post(), read with article().\n",
        ),
        _article(
            "comp.lang.python",
            2,
            "Reading the newest article with nntplib",
            "Demo User <demo@example.com>",
            "Mon, 01 Jan 2024 09:05:00 +0000",
            "resp, count, first, last, name = server.group('comp.lang.python')\n"
            "resp, info = server.article(str(last))\n"
            ".. a line that begins with a dot is dot-stuffed on the wire\n",
        ),
        _article(
            "comp.lang.python",
            3,
            "Re: Reading the newest article with nntplib",
            "Guide <guide@example.com>",
            "Mon, 01 Jan 2024 09:10:00 +0000",
            "And server.over((first, last)) gives the overview of every article.\n",
            references="<sample-2.comp.lang.python@refservers>",
        ),
    ],
    "local.test": [
        _article(
            "local.test",
            1,
            "test",
            "Demo User <demo@example.com>",
            "Mon, 01 Jan 2024 10:00:00 +0000",
            "A test article. Post yours to local.test.\n",
        ),
        _article(
            "local.test",
            2,
            "another test",
            "Demo User <demo@example.com>",
            "Mon, 01 Jan 2024 10:30:00 +0000",
            "ignore\n",
        ),
    ],
}

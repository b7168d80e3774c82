"""MailHog's JSON for the messages Mailpit's view holds (github.com/mailhog/data message.go,
MailHog-Server api/v2.go and api/v1.go).

A message is ``{"ID", "From", "To", "Content", "Created", "MIME", "Raw"}``: paths split
into Mailbox and Domain (PathFromString), ``Content.Headers`` a map of header name (as
written) to a one-element list (ContentFromString keeps the last of repeated headers and
joins folded lines without the CRLF), ``MIME.Parts`` the parts split at the boundary,
each parsed the same way, recursively. ``Raw`` is the SMTP transaction (From, To, Data,
Helo) as MailHog keeps it; Data is the message without the envelope headers the store
adds. The v2 search kinds are MailHog's: ``from`` and ``to`` (envelope addresses) and
``containing`` (the raw message), case-insensitive.
"""

from __future__ import annotations

import email.message
import email.policy
import re
from collections.abc import Callable
from typing import Any

from .mailpit import Entry, body_offset, go_time, received_time

MAX_LIMIT = 250  # api/v2.go getStartLimit


def path_json(address: str) -> dict[str, Any]:
    """data.PathFromString: ``relay,relay:mailbox@domain``."""
    relays: list[str] | None = None
    if ":" in address:
        route, address = address.split(":", 1)
        relays = route.split(",")
    mailbox, at, domain = address.partition("@")
    return {"Relays": relays, "Mailbox": mailbox, "Domain": domain if at else "", "Params": ""}


def content_json(data: str) -> dict[str, Any]:
    """data.ContentFromString (plus MIME parsing for multipart content)."""
    head, separator, body = data.partition("\r\n\r\n")
    headers: dict[str, list[str]] = {}
    if not separator:
        return {"Headers": headers, "Body": head, "Size": len(data.encode()), "MIME": None}
    last = ""
    for line in head.split("\r\n"):
        if last and line[:1] in (" ", "\t"):
            headers[last][-1] += line
        elif ": " in line:
            name, value = line.split(": ", 1)
            headers[name] = [value]
            last = name
    content: dict[str, Any] = {"Headers": headers, "Body": body, "Size": len(data.encode()), "MIME": None}
    mime = mime_json(content)
    if mime is not None:
        content["MIME"] = mime
    return content


def mime_json(content: dict[str, Any]) -> dict[str, Any] | None:
    """Content.ParseMIMEBody: split the body at ``--boundary``, parse each piece."""
    content_type = content["Headers"].get("Content-Type")
    if not content_type or not content_type[0].startswith("multipart/"):
        return None
    header = email.message.EmailMessage(policy=email.policy.default)
    header["Content-Type"] = content_type[0]
    boundary = header.get_param("boundary")
    parts = []
    if isinstance(boundary, str) and boundary:
        for piece in content["Body"].split("--" + boundary):
            if piece:
                parts.append(content_json(piece.strip("\r\n")))
    return {"Parts": parts}


def _helo(data: str) -> str:
    found = re.search(r"^Received: from (\S+)", data, re.MULTILINE)
    return found.group(1) if found else ""


def message_json(entry: Entry, stored: bytes) -> dict[str, Any]:
    data = stored[body_offset(stored) :].decode("utf-8", "replace")
    content = content_json(data)
    mime = content.pop("MIME")
    content["MIME"] = None  # MailHog fills Message.MIME, and leaves Content.MIME empty at the top
    recipients = entry.envelope_to or [a["Address"] for a in (*entry.parsed.to, *entry.parsed.cc)]
    sender = entry.parsed.return_path or entry.parsed.sender.get("Address", "")
    return {
        "ID": entry.id,
        "From": path_json(sender),
        "To": [path_json(address) for address in recipients],
        "Content": content,
        "Created": go_time(received_time(entry.created)),
        "MIME": mime,
        "Raw": {"From": sender, "To": recipients, "Data": data, "Helo": _helo(data)},
    }


def search_test(kind: str, query: str) -> Callable[[dict[str, Any]], bool]:
    """MailHog's storage Search: ``to``/``from`` look in the envelope paths
    (mailbox@domain), ``containing`` in the raw message; case-insensitive."""
    query = query.lower()

    def address(path: dict[str, Any]) -> str:
        return f"{path['Mailbox']}@{path['Domain']}".lower()

    def matches(message: dict[str, Any]) -> bool:
        if kind == "from":
            return query in address(message["From"])
        if kind == "to":
            return any(query in address(path) for path in message["To"])
        return query in message["Raw"]["Data"].lower()

    return matches

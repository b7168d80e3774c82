"""Request bodies as httpbin reports them: ``form``, ``files``, ``data`` and ``json``.

Understands ``application/x-www-form-urlencoded`` (WHATWG URL standard),
``multipart/form-data`` (RFC 7578, parsed with the stdlib email parser, since the
``cgi`` module is deprecated) and JSON. Binary values are shown as ``data:`` URLs
(RFC 2397), as httpbin does, so the reply stays valid JSON.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from email import errors
from email.message import Message
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs

from .exchange import HttpError


@dataclass
class FormPart:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class ParsedBody:
    form: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    json: Any = None


def _collapse(pairs: dict[str, list[str]]) -> dict[str, Any]:
    return {k: v[0] if len(v) == 1 else v for k, v in pairs.items()}


def as_text_or_data_url(data: bytes, content_type: str = "application/octet-stream") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def multipart_parts(content_type: str, body: bytes) -> list[FormPart]:
    """Split a multipart/form-data body; raises HttpError(400) when it is not a whole one.

    The stdlib parser is lenient: a body cut before its close delimiter (RFC 2046
    5.1.1), say by a Content-Length shorter than what the client meant to send, comes
    back as parts with the last one truncated. Such a body is refused, so nothing
    partial is ever stored or reported as received.
    """
    # Imported here: email.policy and its header registry were a visible share of
    # `run http`'s start-up, and most servers never see a form (issue 16).
    from email import policy

    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise HttpError(400, "multipart/form-data body without a boundary or parts")
    if any(isinstance(defect, errors.CloseBoundaryNotFoundDefect) for defect in message.defects):
        raise HttpError(400, "multipart/form-data body cut short: no closing boundary (check Content-Length)")
    parts = []
    for part in message.iter_parts():  # type: ignore[attr-defined]
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue  # a part without a name is not a form field (RFC 7578 section 4.2)
        payload = part.get_payload(decode=True)
        parts.append(
            FormPart(
                name=name,
                filename=part.get_filename(),
                content_type=part.get_content_type(),
                data=payload if isinstance(payload, bytes) else b"",
            )
        )
    return parts


def parse_body(content_type: str, body: bytes) -> ParsedBody:
    parsed = ParsedBody()
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        parsed.form = _collapse(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
        return parsed
    if media_type == "multipart/form-data":
        form: dict[str, list[str]] = {}
        files: dict[str, list[str]] = {}
        for part in multipart_parts(content_type, body):
            target = files if part.filename is not None else form
            target.setdefault(part.name, []).append(as_text_or_data_url(part.data, part.content_type))
        parsed.form, parsed.files = _collapse(form), _collapse(files)
        return parsed
    parsed.data = as_text_or_data_url(body, media_type or "application/octet-stream")
    if body:
        try:
            parsed.json = json.loads(body)
        except ValueError:
            parsed.json = None
    return parsed

"""Cookie values written and read as httpbin writes and reads them (Werkzeug's rules).

RFC 6265 section 4.1.1: a cookie value is either bare cookie-octets or a quoted string.
httpbin (through Werkzeug's ``dump_cookie``/``parse_cookie``) sends a value bare when
it has only token-like characters, and otherwise quotes it, escaping ``"`` and ``\\``
with a backslash and every control, separator (``,`` ``;``) and non-ASCII byte of its
UTF-8 form as a three-digit octal escape (``\\054``), the form ``http.cookies`` also
uses. Reading reverses that. Nothing is percent-encoded: a client that sets ``a b`` reads
back ``a b``, and sees ``"a b"`` on the wire, as with httpbin.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# Characters Werkzeug leaves bare in a value (RFC 6265 cookie-octets, plus a few it tolerates).
_BARE_VALUE = re.compile(r"[\w!#$%&'()*+\-./:<=>?@\[\]^`{|}~]*", re.ASCII)
_ESCAPED_BYTE = re.compile(rb'[\x00-\x19",;\\\x7f-\xff]')
_UNESCAPE = re.compile(rb"\\([0-3][0-7]{2}|.)")
_PAIR = re.compile(
    r"""[ \t]*([^ \t=";]+)             # name
        (?:[ \t]*=[ \t]*
           ("(?:[^\\"]|\\.)*"|[^ \t";]*)  # quoted or bare value
        )?[ \t]*(?:;|\Z)""",
    re.ASCII | re.VERBOSE,
)
# Cookie names are RFC 9110 tokens; anything else is percent-encoded so the header stays valid.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _escape(match: re.Match[bytes]) -> bytes:
    byte = match.group()
    return b"\\" + byte if byte in (b'"', b"\\") else b"\\%03o" % byte[0]


def quote_value(text: str) -> str:
    """``a b`` -> ``"a b"``, ``a;b`` -> ``"a\\073b"``, ``abc`` -> ``abc``."""
    if _BARE_VALUE.fullmatch(text):
        return text
    return '"' + _ESCAPED_BYTE.sub(_escape, text.encode("utf-8")).decode("ascii") + '"'


def unquote_value(value: str) -> str:
    """The inverse of :func:`quote_value`; a bare value is returned as it is."""
    if len(value) < 2 or not value[0] == value[-1] == '"':
        return value
    raw = _UNESCAPE.sub(lambda m: m.group(1) if len(m.group(1)) == 1 else bytes([int(m.group(1), 8)]), value[1:-1].encode("utf-8"))
    return raw.decode("utf-8", "replace")


def set_cookie(name: str, value: str, secure: bool = False, delete: bool = False) -> tuple[str, str]:
    """A ``Set-Cookie`` header as httpbin sends it: ``name=value; Path=/`` (``Secure`` over HTTPS)."""
    if not _TOKEN.fullmatch(name):
        name = quote(name, safe="")
    parts = [f"{name}={'' if delete else quote_value(value)}"]
    if delete:
        parts += ["Expires=Thu, 01 Jan 1970 00:00:00 GMT", "Max-Age=0"]
    if secure:
        parts.append("Secure")
    parts.append("Path=/")
    return ("Set-Cookie", "; ".join(parts))


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """The cookies of a ``Cookie`` header; the first of a repeated name wins, as in httpbin."""
    jar: dict[str, str] = {}
    if not header:
        return jar
    text = header.encode("latin-1", "replace").decode("utf-8", "replace")
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if match is None or match.end() == position:
            semicolon = text.find(";", position)
            if semicolon < 0:
                break
            position = semicolon + 1
            continue
        position = match.end()
        jar.setdefault(match.group(1), unquote_value(match.group(2) or ""))
    return jar

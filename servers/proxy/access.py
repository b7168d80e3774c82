"""Who may go where through the proxy: target host globs, target ports, Basic proxy auth.

Deny lists win over allow lists. Hosts are matched as the client named them (a name or
an IP literal, without brackets), case-insensitively, with shell globs. Ports are
``*``, a number, or a range ``low-high``. Proxy authentication is HTTP Basic
(RFC 7617) in ``Proxy-Authorization``, answered with 407 and ``Proxy-Authenticate``
(RFC 9110 section 11.7), checked against the shared user table.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..core.config import Kind
from ..core.users import UserTable


def _port_pattern(text: str) -> tuple[int, int]:
    text = text.strip()
    if text == "*":
        return (0, 65535)
    low, sep, high = text.partition("-")
    first = int(low)
    last = int(high) if sep else first
    if not 0 < first <= last <= 65535:
        raise ValueError
    return (first, last)


def _port_patterns_toml(value: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list):
        raise ValueError
    return tuple(_port_pattern(str(item)) for item in value)


PORT_PATTERNS = Kind(
    'a list of ports: "*", 443, "8000-8999" (comma-separated in text)',
    _port_patterns_toml,
    lambda text: tuple(_port_pattern(item) for item in text.split(",") if item.strip()),
)


@dataclass(frozen=True)
class AccessPolicy:
    allow_hosts: tuple[str, ...]
    deny_hosts: tuple[str, ...]
    allow_ports: tuple[tuple[int, int], ...]
    deny_ports: tuple[tuple[int, int], ...]

    def refusal(self, host: str, port: int) -> str | None:
        """Why ``host:port`` is refused, or None when it is allowed."""
        name = host.lower()
        if any(fnmatch.fnmatchcase(name, glob.lower()) for glob in self.deny_hosts):
            return f"host {host} is on the proxy's deny list"
        if not any(fnmatch.fnmatchcase(name, glob.lower()) for glob in self.allow_hosts):
            return f"host {host} is not on the proxy's allow list"
        if _in_ranges(port, self.deny_ports):
            return f"port {port} is on the proxy's deny list"
        if not _in_ranges(port, self.allow_ports):
            return f"port {port} is not on the proxy's allow list"
        return None


def _in_ranges(port: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(low <= port <= high for low, high in ranges)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from a ``Basic`` credentials header value, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def authenticate(users: UserTable, header: str | None) -> tuple[str | None, bool]:
    """``(user name or None, ok)`` for a Proxy-Authorization value."""
    credentials = basic_credentials(header)
    if credentials is None:
        return None, False
    user, password = credentials
    return user, users.check_password(user, password) is not None

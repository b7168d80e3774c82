"""AdminGuard: what keeps the admin API safe on a developer's machine.

The admin port holds everyone's mail and files and can add faults, and any web page
open in the developer's browser can send requests to it. Every request to a guarded
Twisted site passes these checks before any resource sees it (static files and
WebSocket upgrades included), in this order:

1. **Size.** A body longer than ``max_body`` bytes is discarded as it arrives and
   answered 413.
2. **Host allowlist** (DNS rebinding: a hostile name resolving to 127.0.0.1 reaches
   us with its own name in ``Host``). Allowed: ``localhost`` and ``*.localhost``,
   any IP literal (a rebinding attack needs a name), the bind address, and the
   configured ``allowed_hosts``; ``*`` there turns the check off. Others get 403.
3. **Authentication**, when ``auth`` is set: ``user:password`` for HTTP Basic, or a
   token for ``Authorization: Bearer``. Wrong or missing: 401. The liveness probes
   (``/livez``, ``/readyz``, ``/health``) stay open for container health checks.
4. **Cross-site requests.** A mutating request (POST, PUT, PATCH, DELETE) or a
   WebSocket upgrade whose ``Origin`` names a host that is not allowed gets 403.
   A POST with a body must declare a ``Content-Type`` that a cross-site HTML form
   cannot send (not ``text/plain``, form-urlencoded or multipart, nor none at all):
   JSON goes as ``application/json``. Otherwise 415. (POST is the one mutating
   method a browser sends cross-site without a CORS preflight, which we never grant.)
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from twisted.web import server

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Content types a cross-site <form> (or a no-cors fetch) can send without a preflight.
FORM_TYPES = frozenset({"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
OPEN_PATHS = frozenset({"/livez", "/readyz", "/health"})


class Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def host_of(authority: str) -> str:
    """``example.test:8025`` -> ``example.test``; ``[::1]:8025`` -> ``::1``; lower case."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1 : authority.find("]")] if "]" in authority else authority
    if authority.count(":") == 1:
        return authority.partition(":")[0]
    return authority


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    return host == "localhost" or (is_ip_literal(host) and ipaddress.ip_address(host).is_loopback)


@dataclass(frozen=True)
class AdminGuard:
    allowed_hosts: frozenset[str]
    auth: str = ""
    max_body: int = 64 * 1024 * 1024

    @classmethod
    def build(cls, bind_host: str, allowed_hosts: Iterable[str], auth: str, max_body: int) -> AdminGuard:
        hosts = {host_of(name) if name != "*" else "*" for name in allowed_hosts}
        if bind_host:
            hosts.add(host_of(bind_host) if not is_ip_literal(bind_host) else bind_host.lower())
        return cls(frozenset(hosts), auth, max_body)

    def host_allowed(self, host: str) -> bool:
        return (
            "*" in self.allowed_hosts
            or host == "localhost"
            or host.endswith(".localhost")
            or is_ip_literal(host)
            or host in self.allowed_hosts
        )

    def check(self, method: str, path: str, headers: dict[str, str], body_length: int) -> None:
        """Raise :class:`Refusal` unless the request may go on (see the module docstring)."""
        host = host_of(headers.get("host", ""))
        if not host or not self.host_allowed(host):
            raise Refusal(
                403,
                f"Host {headers.get('host', '')!r} is not allowed; add it to admin.allowed_hosts "
                "(REFSERVERS_ADMIN_ALLOWED_HOSTS) to reach the admin API by that name",
            )
        if self.auth and path not in OPEN_PATHS and not self._authenticated(headers.get("authorization", "")):
            scheme = "Basic" if ":" in self.auth else "Bearer"
            raise Refusal(401, "authentication required (admin.auth)", {"WWW-Authenticate": f'{scheme} realm="refservers"'})
        upgrade = headers.get("upgrade", "").lower() == "websocket"
        if method in MUTATING or upgrade:
            origin = headers.get("origin")
            if origin is not None and not self._origin_allowed(origin):
                raise Refusal(403, f"cross-site request from Origin {origin!r} refused")
        if method == "POST" and body_length:
            content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
            if content_type in FORM_TYPES:
                raise Refusal(
                    415,
                    f"a request body needs a Content-Type other than {content_type or 'none'!r}; "
                    "send JSON as application/json",
                )

    def _origin_allowed(self, origin: str) -> bool:
        host = urlsplit(origin).hostname
        return host is not None and self.host_allowed(host.lower())

    def _authenticated(self, authorization: str) -> bool:
        scheme, _, credentials = authorization.strip().partition(" ")
        if ":" in self.auth:
            if scheme.lower() != "basic":
                return False
            try:
                given = base64.b64decode(credentials.strip(), validate=True)
            except ValueError:
                return False
            return hmac.compare_digest(given, self.auth.encode())
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self.auth.encode())


class GuardedRequest(server.Request):
    """A Twisted web request that applies the site's :class:`AdminGuard` before any
    resource runs, and drops a body over the limit instead of buffering it."""

    _body_length = 0
    _too_large = False

    def _guard(self) -> AdminGuard:
        guard: AdminGuard = self.channel.site.guard  # type: ignore[attr-defined]
        return guard

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self._guard().max_body:
            self._too_large = True
            length = 0  # keep Twisted from preparing a buffer for what we will discard
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._too_large:
            return
        self._body_length += len(data)
        if self._body_length > self._guard().max_body:
            self._too_large = True
            return
        super().handleContentChunk(data)

    def process(self) -> None:
        guard = self._guard()
        headers = {k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in self.requestHeaders.getAllRawHeaders()}
        method = self.method.decode("ascii", "replace").upper()
        path = self.path.decode("utf-8", "replace")
        try:
            if self._too_large:
                raise Refusal(413, f"request body over the admin API's limit of {guard.max_body} bytes (admin.max_body)")
            length = int(headers.get("content-length", "0") or 0) if "content-length" in headers else self._body_length
            guard.check(method, path, headers, length)
        except Refusal as refusal:
            self._refuse(refusal)
            return
        except ValueError:
            self._refuse(Refusal(400, "bad Content-Length"))
            return
        super().process()

    def _refuse(self, refusal: Refusal) -> None:
        self.site = self.channel.site  # type: ignore[attr-defined]
        self.setResponseCode(refusal.status)
        self.setHeader(b"Content-Type", b"application/json")
        for name, value in refusal.headers.items():
            self.setHeader(name.encode(), value.encode())
        if refusal.status == 413:
            self.setHeader(b"Connection", b"close")
        self.write((json.dumps({"error": refusal.message}) + "\n").encode())
        self.finish()


def guarded_site(root: Any, guard: AdminGuard) -> server.Site:
    site = server.Site(root, requestFactory=GuardedRequest)
    site.guard = guard  # type: ignore[attr-defined]
    site.noisy = False
    return site

"""Exchange and Response: what an HTTP route handler reads and returns.

An :class:`Exchange` wraps one Twisted request with the views httpbin replies are made
of (``args``, ``headers``, ``origin``, ``url``) and the path parameters of the matched
route. Handlers return a :class:`Response`, a JSON-able dict (200), a Deferred firing
with either, or :data:`STREAMING` when they write and finish the request themselves.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ..core.web import HttpError, Reply
from .json_layout import dumps_indented

__all__ = ["STREAMING", "Exchange", "HttpError", "Response", "json_body", "json_response"]

if TYPE_CHECKING:
    from .server import HttpServer

# A handler returning this has taken over the request (paced or chunked bodies).
STREAMING = object()


# The one error and reply types of every HTTP surface (core/web.py); handlers here
# always give bytes bodies (httpbin's JSON layout: json_body).
Response = Reply


def json_body(value: Any) -> bytes:
    """httpbin's JSON layout: two-space indent and a final newline."""
    return (dumps_indented(value) + "\n").encode()


def json_response(value: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json_body(value), "application/json", headers or [])


@functools.lru_cache(maxsize=1024)  # a client sends the same few names on every request
def _httpbin_name(name: bytes) -> str:
    """``x-forwarded-for`` -> ``X-Forwarded-For``: each dash-separated part capitalized, as httpbin shows names."""
    return "-".join(part.capitalize() for part in name.decode("latin-1").split("-"))


class Exchange:
    def __init__(self, request: Any, server: HttpServer, params: dict[str, str]):
        self.request = request
        self.server = server
        self.params = params
        self.method: str = request.method.decode("ascii", "replace")
        self.path: str = request.path.decode("utf-8", "replace")
        query = request.uri.decode("utf-8", "replace").partition("?")[2]
        self.query: dict[str, list[str]] = parse_qs(query, keep_blank_values=True) if query else {}
        self._body: bytes | None = None
        self._last_values: dict[str, str] | None = None  # header values by lower-case name

    # -- request views ------------------------------------------------------------
    @property
    def body(self) -> bytes:
        if self._body is None:
            content = self.request.content
            if content is None:
                self._body = b""
            else:
                content.seek(0)
                self._body = content.read()
        return self._body

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def int_arg(self, name: str, default: int, low: int = 0, high: int = 2**31) -> int:
        text = self.arg(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise HttpError(400, f"query parameter {name!r}: expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise HttpError(400, f"query parameter {name!r}: expected {low}-{high}, got {value}")
        return value

    def float_arg(self, name: str, default: float) -> float:
        text = self.arg(name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise HttpError(400, f"query parameter {name!r}: expected a number, got {text!r}") from None
        if not value >= 0:
            raise HttpError(400, f"query parameter {name!r}: expected a non-negative number")
        return value

    def int_param(self, name: str, high: int = 2**31) -> int:
        text = self.params[name]
        try:
            value = int(text)
        except ValueError:
            raise HttpError(400, f"{name}: expected an integer, got {text!r}") from None
        if not 0 <= value <= high:
            raise HttpError(400, f"{name}: expected 0-{high}, got {value}")
        return value

    def header(self, name: str, default: str | None = None) -> str | None:
        """The request header's value (its last one, as ``Request.getHeader``), or ``default``."""
        if self._last_values is None:  # read once: /get alone asks for four headers
            self._last_values = {
                key.decode("latin-1").lower(): values[-1].decode("latin-1")
                for key, values in self.request.requestHeaders.getAllRawHeaders()
            }
        return self._last_values.get(name.lower(), default)

    @property
    def args(self) -> dict[str, Any]:
        """Query arguments as httpbin shows them: a string, or a list when repeated."""
        return {k: v[0] if len(v) == 1 else v for k, v in self.query.items()}

    @property
    def headers(self) -> dict[str, str]:
        """Request headers in httpbin's shape: canonical names, repeats joined by commas."""
        return {
            _httpbin_name(name): b",".join(values).decode("latin-1")
            for name, values in self.request.requestHeaders.getAllRawHeaders()
        }

    @property
    def origin(self) -> str:
        return str(getattr(self.request.getClientAddress(), "host", ""))

    @property
    def scheme(self) -> str:
        return "https" if self.request.isSecure() else "http"

    @property
    def base_url(self) -> str:
        host = self.header("host")
        if not host:
            address = self.request.getHost()
            host = f"{address.host}:{address.port}"
        return f"{self.scheme}://{host}"

    @property
    def url(self) -> str:
        """The request URL; behind a proxy its scheme is the one the proxy says the client used.

        As httpbin: X-Forwarded-Proto, else X-Forwarded-Protocol, else https when
        X-Forwarded-Ssl is ``on``. Only ``url`` follows them; redirects keep the real scheme.
        """
        forwarded = self.header("x-forwarded-proto") or self.header("x-forwarded-protocol")
        if forwarded is None and self.header("x-forwarded-ssl") == "on":
            forwarded = "https"
        url = self.base_url + self.request.uri.decode("utf-8", "replace")
        return url if forwarded is None else forwarded + url[len(self.scheme) :]

    def basics(self) -> dict[str, Any]:
        """The keys every /get-like reply has."""
        return {"args": self.args, "headers": self.headers, "origin": self.origin, "url": self.url}

"""The request journal: one serve event per request on the HTTP ports, in WireMock's JSON.

Follows WireMock's ``/__admin/requests`` shapes (wiremock.org/docs/verifying): a serve
event has ``id``, ``request`` (a *logged request*: ``url``, ``absoluteUrl``, ``method``,
``clientIp``, ``headers``, ``cookies``, ``queryParams``, ``body``, ``bodyAsBase64``,
``loggedDate``, ``loggedDateString``...), ``wasMatched``, ``stubMapping`` and
``response``. Requests that no stub matched are journalled too (they fell through to
the httpbin endpoints or got the 404), as WireMock journals unmatched requests.

The journal is bounded, by count (the core's ``journal_size``) and by the bytes of the
bodies it holds (:data:`BODY_BUDGET`: uploads through httpbin's endpoints are journalled
too); the oldest events go first.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .matching import RequestView

if TYPE_CHECKING:
    from .mappings import StubMapping


@dataclass
class ServedResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# Request bodies are matched and journalled up to this size: an upload to httpbin's
# /upload (64 MiB by default) stays in Twisted's temporary file instead of being copied.
BODY_VIEW_LIMIT = 16 * 1024 * 1024


class RequestCapture:
    """What matching and the journal read of a Twisted request, taken as it is served.

    Every request on the HTTP ports is journalled, and with no stub to match most are
    never looked at again: the text (method, URL, headers) is decoded and the Host
    header parsed into a :class:`RequestView` only when :meth:`view` is first called.
    The body is read at once (the request's content is closed when it finishes).
    """

    __slots__ = ("method", "uri", "headers", "body", "secure", "host", "client")

    def __init__(self, request: Any):
        self.body = b""
        if request.content is not None:
            request.content.seek(0)
            self.body = request.content.read(BODY_VIEW_LIMIT)
            request.content.seek(0)  # rewound for httpbin
        self.method: bytes = request.method
        self.uri: bytes = request.uri
        self.headers = list(request.requestHeaders.getAllRawHeaders())
        self.secure = bool(request.isSecure())
        self.host = request.getHost()
        self.client = request.getClientAddress()

    def view(self) -> RequestView:
        """The matching view (the request's last Host header names the host, else the local address)."""
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, values in self.headers for value in values]
        host_values = next((values for name, values in self.headers if name == b"Host"), None)
        host_header = host_values[-1].decode("latin-1") if host_values else ""
        host = host_header.rsplit(":", 1)[0] if host_header and not host_header.endswith("]") else host_header
        return RequestView(
            method=self.method.decode("ascii", "replace"),
            url=self.uri.decode("utf-8", "replace"),
            headers=headers,
            body=self.body,
            scheme="https" if self.secure else "http",
            host=host or str(getattr(self.host, "host", "")),
            port=int(getattr(self.host, "port", 0)),
            client_ip=str(getattr(self.client, "host", "")),
        )


_event_ids = random.Random()  # seeded from os.urandom


def _event_id_text(bits: int) -> str:
    """A version-4 UUID's text made of 128 random bits, as ``str(uuid.uuid4())`` gives."""
    text = f"{bits & ~(0xF000 << 64 | 0xC000 << 48) | 0x4000 << 64 | 0x8000 << 48:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class ServeEvent:
    """One request on the HTTP ports: what it was, when, which stub (if any) answered and how.

    The id is a random version-4 UUID's text, as WireMock's serve event ids; they need
    to be unique, not secret, so they come from a seeded PRNG, not a getrandom() call
    and a UUID object per request. Every request on the HTTP ports makes one of these
    and most are never read, so the id's text, the ``logged_at`` datetime and the
    request's view are made when first asked for, from the random bits, the time and
    the :class:`RequestCapture` taken at the request.
    """

    __slots__ = ("_request", "logged_time", "stub", "response", "proxied_to", "_id_bits", "_id")

    def __init__(self, request: RequestView | RequestCapture, stub: StubMapping | None = None):
        self._request = request
        self.logged_time = time.time()
        self.stub = stub
        self.response: ServedResponse | None = None
        self.proxied_to: str | None = None  # the upstream URL when a proxyBaseUrl stub answered
        self._id_bits = _event_ids.getrandbits(128)
        self._id: str | None = None

    @property
    def request(self) -> RequestView:
        """The request's view, made from its capture on first use (from any thread: the
        same view either way)."""
        request = self._request
        if isinstance(request, RequestCapture):
            request = self._request = request.view()
        return request

    @property
    def request_body_size(self) -> int:
        return len(self._request.body)

    @property
    def id(self) -> str:
        if self._id is None:
            self._id = _event_id_text(self._id_bits)
        return self._id

    @property
    def logged_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.logged_time, dt.UTC)

    @property
    def was_matched(self) -> bool:
        return self.stub is not None

    def logged_request(self) -> dict[str, Any]:
        request = self.request
        headers: dict[str, Any] = {}
        for name, value in request.headers:
            if name in headers:
                previous = headers[name]
                headers[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                headers[name] = value
        millis = int(self.logged_at.timestamp() * 1000)
        return {
            "id": self.id,
            "url": request.url,
            "absoluteUrl": f"{request.scheme}://{request.host}:{request.port}{request.url}",
            "method": request.method,
            "clientIp": request.client_ip,
            "headers": headers,
            "cookies": {name: values[0] if len(values) == 1 else values for name, values in request.cookies.items()},
            "queryParams": {name: {"key": name, "values": values} for name, values in request.query.items()},
            "formParams": {name: {"key": name, "values": values} for name, values in request.form.items()},
            "browserProxyRequest": False,
            "body": request.body_text,
            "bodyAsBase64": base64.b64encode(request.body).decode(),
            "scheme": request.scheme,
            "host": request.host,
            "port": request.port,
            "loggedDate": millis,
            "loggedDateString": self.logged_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z",
        }

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "request": self.logged_request(), "wasMatched": self.was_matched}
        if self.stub is not None:
            out["stubMapping"] = self.stub.as_json()
            out["responseDefinition"] = self.stub.response.json
        if self.response is not None:
            out["response"] = {
                "status": self.response.status,
                "headers": dict(self.response.headers),
                "body": self.response.body.decode("utf-8", "replace"),
                "bodyAsBase64": base64.b64encode(self.response.body).decode(),
            }
        return out


BODY_BUDGET = 256 * 1024 * 1024


def _body_bytes(event: ServeEvent) -> int:
    return event.request_body_size + (len(event.response.body) if event.response is not None else 0)


class RequestJournal:
    """Serve events, newest last; safe to read from the test thread while the reactor writes."""

    def __init__(self, size: int, body_budget: int = BODY_BUDGET):
        self._events: deque[ServeEvent] = deque()
        self._size = size
        self._budget = body_budget
        self._bytes = 0  # request bodies at add(), response bodies at answered()
        self._lock = threading.Lock()

    def add(self, event: ServeEvent) -> None:
        with self._lock:
            self._events.append(event)
            self._bytes += event.request_body_size
            self._trim()

    def answered(self, event: ServeEvent, response: ServedResponse) -> None:
        """Attach the response sent (its body counts against the budget from now on)."""
        with self._lock:
            event.response = response
            self._bytes += len(response.body)
            self._trim()

    def _trim(self) -> None:
        while len(self._events) > 1 and (len(self._events) > self._size or self._bytes > self._budget):
            self._bytes -= _body_bytes(self._events.popleft())

    def events(self) -> list[ServeEvent]:
        with self._lock:
            return list(self._events)

    def remove(self, predicate: Any) -> int:
        with self._lock:
            kept = [event for event in self._events if not predicate(event)]
            removed = len(self._events) - len(kept)
            self._events.clear()
            self._events.extend(kept)
            self._bytes = sum(_body_bytes(e) for e in kept)
            return removed

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._bytes = 0

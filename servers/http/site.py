"""The HTTP site: one Twisted resource in front of everything the server answers.

Per request, in this order (RFC 9110 semantics, HTTP/1.1 framing by Twisted: keep-alive,
chunked bodies both ways, HEAD):

1. wire trace of the request line and headers;
2. fault rules matched against the path: ``delay`` (params.seconds) postpones
   everything below on the reactor; ``status`` (params.code, optional params.body)
   answers instead of the endpoint; ``disconnect`` drops the connection;
3. ``/__admin/...`` and requests a WireMock stub matches are answered by the stub
   engine (stubs/serving.py); unmatched ones go on below (or get WireMock's 404 with
   ``http.unmatched = "404"``), journalled as unmatched;
4. ``/static/...`` (Twisted's File: directory listings, Range, conditional GET; small
   bodies written at once, see static_files.py) and ``/cgi-bin/...`` (Twisted's
   CGI runner) are handed to those resources;
5. everything else goes through the route table in routes.py.

The journal entry and the status-line trace are written when the request finishes
(:meth:`HttpSite.log`), so they cover every path above, streams and CGI included.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.http import HTTPChannel, datetimeToString, unquote
from twisted.web.http_headers import Headers

from ..core.loop import twisted_reactor
from ..core.twisted_listen import write_now
from ..core.web import Router, error_reply
from .exchange import STREAMING, Exchange, HttpError, Response, json_body
from .routes import ROUTES

if TYPE_CHECKING:
    from .server import HttpServer

CORS_HEADERS = (
    (b"Access-Control-Allow-Origin", b"*"),
    (b"Access-Control-Allow-Credentials", b"true"),
)
PREFLIGHT_HEADERS = (
    (b"Access-Control-Allow-Methods", b"GET, POST, PUT, DELETE, PATCH, OPTIONS"),
    (b"Access-Control-Max-Age", b"3600"),
)


def client_of(request: Any) -> str:
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    if host is None:  # not an IP address (a UNIX socket): its text
        host = str(address)
    return f"{host}:{getattr(address, 'port', '')}"


class HttpRoot(resource.Resource):
    isLeaf = True

    def __init__(self, http: HttpServer):
        super().__init__()
        self.http = http
        self.router = Router(ROUTES)

    # The two file resources are made on their first request: twisted.web.static and
    # twisted.web.twcgi were a visible share of `run http`'s start-up (issue 16).
    @functools.cached_property
    def static(self) -> resource.Resource:
        from .static_files import StaticFiles

        return StaticFiles(str(self.http.static_dir))

    @functools.cached_property
    def cgi(self) -> resource.Resource:
        from .static_files import CGIDirectory

        return CGIDirectory(str(self.http.cgi_dir))

    # -- entry ------------------------------------------------------------------------
    def render(self, request: Any) -> Any:
        peer = request.peer = client_of(request)  # (journal_request reads it too)
        self._trace_request(request, peer)
        request.journal_if_lost = True  # (see HttpRequest.connectionLost)
        path = request.path.decode("utf-8", "replace")
        rule = self.http.core.faults.check(self.http.name, path, peer, actions=("delay",))
        if rule is None:
            return self._serve(request, path, peer)
        call = twisted_reactor().callLater(rule.params["seconds"], self._serve, request, path, peer, True)
        request.notifyFinish().addErrback(lambda _: call.cancel() if call.active() else None)
        return server.NOT_DONE_YET

    def _trace_request(self, request: Any, peer: str) -> None:
        wire = self.http.wire
        if not wire.enabled:
            return
        lines = [b" ".join((request.method, request.uri, request.clientproto)).decode("latin-1")]
        for name, values in request.requestHeaders.getAllRawHeaders():
            lines += [f"{name.decode('latin-1')}: {value.decode('latin-1')}" for value in values]
        wire.received(peer, "\n".join(lines))

    def _serve(self, request: Any, path: str, peer: str, deferred: bool = False) -> Any:
        try:
            body = self._dispatch(request, path, peer)
        except Exception:  # noqa: BLE001 - one broken handler must not take the site down
            self.http.log.exception("error answering %s %s", request.method, path)
            body = self._reply(request, Response(500, json_body({"error": "internal server error"})))
        if deferred and body is not server.NOT_DONE_YET:
            self._send(request, body)
        return body

    # -- dispatch ---------------------------------------------------------------------
    def _dispatch(self, request: Any, path: str, peer: str) -> Any:
        rule = self.http.core.faults.check(self.http.name, path, peer, actions=("status", "disconnect"))
        if rule is None:
            answer = self.http.stubs.responder.handle(request)
            if answer is not None:
                return answer
        for name, value in CORS_HEADERS:
            request.setHeader(name, value)
        # As httpbin: echo the request's Origin, since browsers refuse "*" on a request with credentials.
        origin = request.getHeader(b"origin")
        if origin is not None:
            request.setHeader(b"Access-Control-Allow-Origin", origin)
        if rule is not None and rule.action == "disconnect":
            request.channel.transport.abortConnection()
            return server.NOT_DONE_YET
        if rule is not None:
            code = rule.params["code"]
            text = rule.params.get("body")  # absent: a JSON error
            body = text.encode() if isinstance(text, str) else json_body({"error": "injected fault", "rule": rule.id})
            return self._reply(request, Response(code, body, "application/json" if text is None else "text/plain"))
        if request.method == b"OPTIONS":
            for name, value in PREFLIGHT_HEADERS:
                request.setHeader(name, value)
            requested = request.getHeader(b"access-control-request-headers")
            if requested:
                request.setHeader(b"Access-Control-Allow-Headers", requested)
            return self._reply(request, Response(200, b"", None))
        if request.postpath and request.postpath[0] in (b"static", b"cgi-bin"):
            # An empty segment ("/static//x") would reach Twisted's deprecated
            # catch-all child; it names nothing under the root anyway.
            if b"" in request.postpath[1:-1]:
                return self._reply(request, self._error(404, f"no such file: {path}"))
            mounted = self.static if request.postpath[0] == b"static" else self.cgi
            request.prepath.append(request.postpath.pop(0))
            return resource.getChildForRequest(mounted, request).render(request)
        return self._route(request, path)

    def _route(self, request: Any, path: str) -> Any:
        try:
            route, params = self.router.match(request.method.decode("ascii", "replace"), path)
        except HttpError as error:
            return self._reply(request, error_reply(error))
        return self._run(request, route.handler, Exchange(request, self.http, params))

    def _run(self, request: Any, handler: Any, exchange: Exchange) -> Any:
        try:
            outcome = handler(exchange)
        except HttpError as error:
            return self._reply(request, error_reply(error))
        if outcome is STREAMING:
            return server.NOT_DONE_YET
        if isinstance(outcome, Deferred):
            outcome.addCallbacks(
                lambda value: self._send(request, self._reply(request, value)),
                lambda failure: self._failed(request, failure),
            )
            return server.NOT_DONE_YET
        return self._reply(request, outcome)

    def _failed(self, request: Any, failure: Failure) -> None:
        self.http.log.error("error answering %s %s: %s", request.method, request.path, failure.getErrorMessage())
        self._send(request, self._reply(request, self._error(500, "internal server error")))

    # -- replies ------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, message: str) -> Response:
        return error_reply(HttpError(status, message))

    @staticmethod
    def _reply(request: Any, outcome: Any) -> bytes:
        reply = outcome if isinstance(outcome, Response) else Response(200, json_body(outcome))
        request.setResponseCode(reply.status)
        if reply.content_type:
            request.setHeader(b"Content-Type", reply.content_type.encode())
        for name, value in reply.header_list:
            request.responseHeaders.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        return reply.encoded_body()

    @staticmethod
    def _send(request: Any, body: bytes) -> None:
        """Finish a request answered later (what Request.render does for a direct answer)."""
        if request._disconnected or request.finished:
            return
        request.setHeader(b"Content-Length", str(len(body)).encode())
        request.write(body)
        request.finish()


class HttpChannel(HTTPChannel):
    """Twisted's HTTP/1.1 channel, which sends a reply made while rendering in one piece, at once.

    Twisted's channel gave the status line and headers, then the body, to the
    transport, which only buffers: the socket was written when the reactor next found
    it writable, after registering and unregistering a writer (two epoll changes and a
    loop turn per reply: the largest single cost of a /get after the send itself).
    Here what a request writes while it is rendered (:class:`HttpRequest`) is kept on
    the channel and sent with ``write_now`` (straight to the socket when nothing waits
    in the transport's buffer, through the transport otherwise: TLS, a slow client),
    so the bytes and their order are Twisted's. It is sent when the request is done
    (:meth:`requestDone`: after its journal entry, which ``finish()`` writes, so a
    client that has its answer finds it journalled, as before; and before a pipelined
    request is read), or when rendering ends with the reply still under way. What is
    written later (streams, producers, delayed answers) takes Twisted's path as before.

    Per request Twisted also asked the socket for its local address (getsockname()
    for every Request), made a new address object for its peer, and
    ``Request.isSecure()`` adapted the transport to ISSLTransport each time (the stub
    journal, the reply's URL and the event journal each ask). A connection keeps its
    socket and its transport: the first answers stand.

    The idle timeout is Twisted's rule (a connection silent for ``idle_timeout``
    seconds while no request of it is being answered is closed, as
    ``timeoutConnection`` closes it), but kept by :meth:`HttpSite.close_idle_channels`
    from the time of the last activity instead of by Twisted's TimeoutMixin, which
    cancelled and scheduled a reactor call for every request and moved it for every
    read: about 6% of a /get.
    """

    _secure: bool | None = None
    _last_active = 0.0  # time.monotonic() of the last bytes received or request answered
    _answering = False  # a request's whole content is in and its answer not finished
    _timed_out = False
    site: HttpSite  # set by Site.buildProtocol
    _host: Any = None
    _peer: Any = None
    _rendering = False  # a request of this channel is in HttpRequest.render
    _unsent: list[bytes] | None = None  # written while rendering, not sent yet

    def isSecure(self) -> bool:
        if self._secure is None:
            self._secure = bool(super().isSecure())
        return self._secure

    def getHost(self) -> Any:
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def getPeer(self) -> Any:
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer

    # -- idle timeout -----------------------------------------------------------------------
    def connectionMade(self) -> None:
        super().connectionMade()  # (Twisted's timer stays off: the site's timeOut is None)
        self._last_active = time.monotonic()
        self.site.channels.add(self)

    def dataReceived(self, data: bytes) -> None:
        self._last_active = time.monotonic()
        super().dataReceived(data)

    def allContentReceived(self) -> None:
        self._answering = True  # where Twisted suspends its idle timer
        super().allContentReceived()

    def idle_since(self, deadline: float) -> bool:
        """Silent since ``deadline`` with no request being answered, and not timed out yet."""
        return not self._answering and not self._timed_out and self._last_active <= deadline

    def timeoutConnection(self) -> None:
        self._timed_out = True
        super().timeoutConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.site.channels.discard(self)
        super().connectionLost(reason)

    # -- writes ---------------------------------------------------------------------------
    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        if not self._rendering or not isinstance(headers, Headers):  # (Twisted itself passes Headers)
            super().writeHeaders(version, code, reason, headers)
            return
        # The block as Twisted's HTTPChannel.writeHeaders writes it.
        block = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                block += (name, b": ", value, b"\r\n")
        block.append(b"\r\n")
        self._keep(block)

    def write(self, data: bytes) -> None:
        if self._rendering:
            self._keep((data,))
        else:
            super().write(data)

    def writeSequence(self, iovec: Any) -> None:
        if self._rendering:
            self._keep(iovec)
        else:
            super().writeSequence(iovec)

    def _keep(self, pieces: Any) -> None:
        if self._unsent is None:
            self._unsent = []
        self._unsent.extend(pieces)

    def flush(self) -> None:
        """Send what was written while rendering and is not sent yet."""
        unsent, self._unsent = self._unsent, None
        if unsent:
            write_now(self.transport, b"".join(unsent))

    def requestDone(self, request: Any) -> None:
        self.flush()
        self._answering = False
        self._last_active = time.monotonic()  # where Twisted restarts its idle timer
        super().requestDone(request)


class HttpRequest(server.Request):
    """Twisted's Request; what it writes while rendering is kept on the channel until
    it is done or rendering ends (see :class:`HttpChannel`)."""

    channel: HttpChannel  # HttpSite's protocol
    site: HttpSite
    # A client that hangs up before the answer is complete is journalled too, once the
    # site has begun to serve the request. (Here rather than with a notifyFinish()
    # errback, which made and fired a Deferred for every request.)
    journal_if_lost = False
    peer: str | None = None  # client_of(self), once the site has begun to serve the request

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        if self.journal_if_lost:
            journal_request(self.site.http, self, aborted=True)

    def process(self) -> None:
        """Twisted's ``server.Request.process`` for this site, whose root resource is a
        leaf (:class:`HttpRoot`): the same headers, path lists and failure handling, the
        root rendered without a walk down a resource tree, and the Date header's text
        made once a second instead of for every request (gmtime and formatting were
        2.5% of a /get). A ``*`` request (``OPTIONS *``) takes Twisted's own path."""
        if self.path == b"*":
            super().process()
            return
        self.site = self.channel.site
        self.setHeader(b"Server", server.version)
        self.setHeader(b"Date", _date_text(int(time.time())))
        self.prepath = []
        self.postpath = [unquote(segment) for segment in self.path[1:].split(b"/")]
        self.sitepath: list[bytes] = []  # what Site.getResourceFor sets: a copy of the (empty) prepath
        try:
            self.render(self.site.resource)
        except BaseException:
            self.processingFailed(Failure())

    def render(self, resrc: Any) -> None:
        channel = self.channel  # Twisted deletes it from the request once finished
        # A pipelined request is rendered from inside requestDone, so inside this one.
        rendering, channel._rendering = channel._rendering, True
        try:
            super().render(resrc)
        finally:
            channel._rendering = rendering
            channel.flush()


@functools.lru_cache(maxsize=1)
def _date_text(second: int) -> bytes:
    """The Date header's text (Twisted's ``datetimeToString``) for ``second``, kept while it lasts."""
    return bytes(datetimeToString(second))


class HttpSite(server.Site):
    """A Site whose access log is the event journal and the wire trace, and whose
    channels' idle timeout is kept by one periodic sweep (see :class:`HttpChannel`)."""

    requestFactory = HttpRequest

    def __init__(self, http: HttpServer, idle_timeout: float):
        super().__init__(HttpRoot(http), timeout=None)  # no TimeoutMixin timer per channel
        self.http = http
        self.noisy = False
        self.idle_timeout = idle_timeout  # seconds (swept only when > 0)
        self.channels: set[HttpChannel] = set()

    def close_idle_channels(self) -> None:
        """Time out the connections idle for ``idle_timeout`` seconds (Twisted's timeoutConnection)."""
        deadline = time.monotonic() - self.idle_timeout
        for channel in [c for c in self.channels if c.idle_since(deadline)]:
            channel.timeoutConnection()

    def protocol(self) -> HttpChannel:  # type: ignore[override]
        # Twisted's default wraps each channel in a proxy that would switch to HTTP/2
        # when ALPN picks h2; the h2 package is not a dependency, so without it that
        # proxy only forwarded every call. HTTP/1.1 is all this site offers (below).
        return HttpChannel()

    def acceptableProtocols(self) -> list[bytes]:
        return [b"http/1.1"]

    def log(self, request: Any) -> None:
        journal_request(self.http, request)


def journal_request(http: HttpServer, request: Any, aborted: bool = False) -> None:
    """One ``request`` event per request (header names only: values may be credentials)."""
    peer = request.peer or client_of(request)  # (not rendered by the site: "OPTIONS *")
    if not aborted and http.wire.enabled:
        status_line = f"{request.clientproto.decode('latin-1')} {request.code} {request.code_message.decode('latin-1')}"
        http.wire.sent(peer, status_line)
    details = {
        "method": request.method.decode("latin-1"),
        "path": request.path.decode("utf-8", "replace"),
        "status": request.code,
        "bytes": request.sentLength,
        "request_bytes": _request_size(request),
        "headers": sorted([name.decode("latin-1").lower() for name, _ in request.requestHeaders.getAllRawHeaders()]),
        "tls": bool(request.isSecure()),
    }
    if aborted:
        details["aborted"] = True  # the client left before the answer was complete
    http.record("request", peer, **details)


def _request_size(request: Any) -> int:
    content = request.content
    if content is None:
        return 0
    try:
        content.seek(0, 2)
        return int(content.tell())
    except (OSError, ValueError):
        return 0


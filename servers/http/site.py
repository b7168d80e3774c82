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
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import resource, server

from ..core.loop import twisted_reactor
from ..core.twisted_web import LeafRequest, LeafSite
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


class HttpRequest(LeafRequest):
    """The leaf site's Request, which journals a request whose client left mid-answer."""

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


class HttpSite(LeafSite):
    """The leaf site whose access log is the event journal and the wire trace."""

    requestFactory = HttpRequest

    def __init__(self, http: HttpServer, idle_timeout: float):
        super().__init__(HttpRoot(http), idle_timeout)
        self.http = http

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

"""StubResponder: puts stub responses on the wire of the HTTP server (Twisted web).

The site calls :meth:`StubResponder.handle` before its httpbin routes. It answers
``/__admin/...`` (admin.py), and any request a stub matches: status and message,
headers, body, then WireMock's delays (``fixedDelayMilliseconds``,
``delayDistribution``: the whole response waits on the reactor),
``chunkedDribbleDelay`` (the body in N chunks spread over the duration), ``fault``
(written on the raw transport, as WireMock's faults are socket-level), and
``proxyBaseUrl`` (forwarded with Twisted's Agent; the answer is journalled so
recordings can be made of it). An unmatched request returns None (the site falls
through to httpbin) or, with ``http.unmatched = "404"``, gets WireMock's 404.
"""

from __future__ import annotations

import json
import random
import socket
import struct
from collections.abc import Callable
from io import BytesIO
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers

from ...core.guard import AdminGuard, Refusal
from ...core.loop import twisted_reactor
from .engine import RenderedResponse, StubEngine
from .journal import RequestCapture, ServedResponse, ServeEvent
from .mappings import StubMapping
from .matching import RequestView

if TYPE_CHECKING:
    from ..server import HttpServer

ADMIN_PREFIX = b"/__admin"
# Not forwarded to (or back from) a proxied service: RFC 9110 section 7.6.1 hop-by-hop fields,
# and the framing the proxy redoes itself.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "host",
}  # fmt: skip
GARBAGE = b"lskdu018973t09sylgasjkfg1][]'./.sdlv"  # WireMock's own garbage bytes for faults


class StubResponder:
    def __init__(self, http: HttpServer, engine: StubEngine, admin: Any, unmatched_404: bool, guard: AdminGuard, upstream_proxy: tuple[str, int] | None = None):
        self.http = http
        self.upstream_proxy = upstream_proxy
        self.guard = guard
        self.engine = engine
        self.admin = admin  # a RouteTable
        self.unmatched_404 = unmatched_404
        self.random = random.Random()
        self._agent: Any = None

    @property
    def agent(self) -> Any:
        if self._agent is None:
            # Twisted's HTTP client is imported by the first proxied request: with its
            # endpoints it was a tenth of `run http`'s start-up (issue 16).
            from twisted.internet.endpoints import TCP4ClientEndpoint
            from twisted.web.client import Agent, HTTPConnectionPool, ProxyAgent

            # Not persistent: a stopped server must leave no upstream connection open.
            reactor = twisted_reactor()
            pool = HTTPConnectionPool(reactor, persistent=False)
            if self.upstream_proxy is None:
                self._agent = Agent(reactor, pool=pool)
            else:  # absolute-URI requests to the forward proxy (RFC 9112 section 3.2.2)
                endpoint = TCP4ClientEndpoint(reactor, *self.upstream_proxy)
                self._agent = ProxyAgent(endpoint, reactor, pool=pool)
        return self._agent

    def handle(self, request: Any) -> Any:
        """The answer (bytes or NOT_DONE_YET), or None when httpbin should answer."""
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + b"/"):
            return self._admin(request)
        event, stub, parameters = self.engine.serve(RequestCapture(request))
        if stub is None:
            return self._not_matched(request, event.request) if self.unmatched_404 else None
        view = event.request
        request.defaultContentType = None  # a stub's headers are exactly what it says
        seconds = stub.response.delay.sample_seconds(self.random) + self.engine.global_delay.sample_seconds(self.random)
        if seconds <= 0:
            return self._respond(request, view, event, stub, parameters, deferred=False)
        call = twisted_reactor().callLater(seconds, self._respond, request, view, event, stub, parameters, True)
        request.notifyFinish().addErrback(lambda _: call.cancel() if call.active() else None)
        return server.NOT_DONE_YET

    def _admin(self, request: Any) -> Any:
        headers = {k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in request.requestHeaders.getAllRawHeaders()}
        try:
            # Body length 0: the Content-Type rule is off (see HttpStubs).
            self.guard.check(request.method.decode("ascii", "replace").upper(), request.path.decode("utf-8", "replace"), headers, 0)
        except Refusal as refusal:
            request.setResponseCode(refusal.status)
            request.setHeader(b"Content-Type", b"application/json")
            return (json.dumps({"error": refusal.message.replace("admin.allowed_hosts", "http.admin_hosts").replace("REFSERVERS_ADMIN_ALLOWED_HOSTS", "REFSERVERS_HTTP_ADMIN_HOSTS")}) + "\n").encode()
        return self.admin.render(request)

    # -- answers ------------------------------------------------------------------------------
    def _respond(self, request: Any, view: RequestView, event: ServeEvent, stub: StubMapping, parameters: dict[str, str], deferred: bool) -> Any:
        if request._disconnected:
            return None
        response = stub.response
        if response.fault is not None:
            FAULT_ACTIONS[response.fault](request.channel.transport)
            return server.NOT_DONE_YET
        if response.proxy_base_url is not None:
            self._proxy(request, view, event, stub)
            return server.NOT_DONE_YET
        try:
            rendered = self.engine.render(stub, view, parameters, event.id)
        except Exception as error:  # noqa: BLE001 - a broken template/body file is the stub's problem, not the server's
            self.http.log.warning("stub %s: %s", stub.id, error)
            rendered = RenderedResponse(500, None, [("Content-Type", "text/plain")], f"stub {stub.id}: {error}\n".encode())
        return self._write(request, event, stub, rendered, deferred)

    def _write(self, request: Any, event: ServeEvent, stub: StubMapping, rendered: RenderedResponse, deferred: bool) -> Any:
        self.engine.journal.answered(event, ServedResponse(rendered.status, rendered.headers, rendered.body))
        message = rendered.message.encode("latin-1", "replace") if rendered.message else None
        request.setResponseCode(rendered.status, message)
        for name, value in rendered.headers:
            request.responseHeaders.addRawHeader(name.encode("latin-1"), value.encode("latin-1", "replace"))
        if self.http.settings.stub_cors and not request.responseHeaders.hasHeader(b"access-control-allow-origin"):
            origin = request.getHeader(b"origin")
            if origin is not None:  # a browser: let the page read the stub's answer
                request.setHeader(b"Access-Control-Allow-Origin", origin)
                request.setHeader(b"Access-Control-Allow-Credentials", b"true")
                request.setHeader(b"Vary", b"Origin")
        request.setHeader(b"Matched-Stub-Id", stub.id.encode())
        if stub.name:
            request.setHeader(b"Matched-Stub-Name", stub.name.encode("latin-1", "replace"))
        if stub.response.dribble is not None:
            self._dribble(request, rendered.body, *stub.response.dribble)
            return server.NOT_DONE_YET
        if not deferred:
            return rendered.body
        has_length = request.responseHeaders.hasHeader(b"content-length")
        if not has_length:
            request.setHeader(b"Content-Length", str(len(rendered.body)).encode())
        request.write(rendered.body)
        request.finish()
        return None

    def _dribble(self, request: Any, body: bytes, chunks: int, total_seconds: float) -> None:
        """``chunkedDribbleDelay``: the body in ``chunks`` pieces, evenly over the duration."""
        size = max(1, -(-len(body) // chunks))
        pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        interval = total_seconds / max(1, len(pieces))
        reactor = twisted_reactor()
        calls: list[Any] = []

        def send(index: int) -> None:
            if request._disconnected or request.finished:
                return
            request.write(pieces[index])
            if index + 1 < len(pieces):
                calls.append(reactor.callLater(interval, send, index + 1))
            else:
                request.finish()

        request.notifyFinish().addErrback(lambda _: [c.cancel() for c in calls if c.active()])
        send(0)

    def _not_matched(self, request: Any, view: RequestView) -> bytes:
        """WireMock's 404 for an unmatched request, with the closest stub to explain it."""
        lines = ["", "Request was not matched", "=======================", "", f"{view.method} {view.url}", ""]
        for stub, distance in self.engine.near_misses(view, limit=1):
            lines.append(f"Closest stub (distance {distance:.2f}): {stub.name or stub.id}")
            lines.append(f"  {stub.json.get('request')}")
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"text/plain;charset=UTF-8")
        return ("\n".join(lines) + "\n").encode()

    # -- proxying ------------------------------------------------------------------------------
    def _proxy(self, request: Any, view: RequestView, event: ServeEvent, stub: StubMapping) -> None:
        spec = stub.response.json
        url = view.url
        prefix = spec.get("proxyUrlPrefixToRemove")
        if isinstance(prefix, str) and url.startswith(prefix):
            url = url[len(prefix) :]
        target = (stub.response.proxy_base_url or "") + url
        headers = Headers()
        removed = {name.lower() for name in spec.get("removeProxyRequestHeaders", []) if isinstance(name, str)}
        for name, value in view.headers:
            if name.lower() not in HOP_BY_HOP and name.lower() not in removed:
                headers.addRawHeader(name, value)
        for name, value in (spec.get("additionalProxyRequestHeaders") or {}).items():
            headers.setRawHeaders(name, [str(value)])
        if self.upstream_proxy is not None and target.startswith("https://"):
            # Twisted's ProxyAgent sends absolute URIs; an HTTPS target would need CONNECT.
            message = f"proxy to {target}: https targets cannot go through http.upstream_proxy\n"
            rendered = RenderedResponse(502, None, [("Content-Type", "text/plain")], message.encode())
            self._write(request, event, stub, rendered, deferred=True)
            return
        from twisted.web.client import FileBodyProducer  # see agent

        body: Any = FileBodyProducer(BytesIO(view.body), cooperator=_immediate_cooperator()) if view.body else None
        outcome: Deferred[Any] = self.agent.request(view.method.encode(), target.encode(), headers, body)

        def got(response: Any) -> Deferred[Any]:
            read: Deferred[Any] = Deferred()
            response.deliverBody(_BodyCollector(read))
            read.addCallback(lambda data: (response, data))
            return read

        def answer(result: tuple[Any, bytes]) -> None:
            response, data = result
            headers_out = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, values in response.headers.getAllRawHeaders()
                for value in values
                if name.decode("latin-1").lower() not in HOP_BY_HOP
            ]
            rendered = RenderedResponse(response.code, response.phrase.decode("latin-1", "replace"), headers_out, data)
            event.proxied_to = target
            if not request._disconnected and not request.finished:
                self._write(request, event, stub, rendered, deferred=True)

        def failed(failure: Any) -> None:
            self.http.log.warning("proxy to %s failed: %s", target, failure.getErrorMessage())
            rendered = RenderedResponse(500, None, [("Content-Type", "text/plain")], f"proxy to {target} failed: {failure.getErrorMessage()}\n".encode())
            if not request._disconnected and not request.finished:
                self._write(request, event, stub, rendered, deferred=True)

        outcome.addCallback(got)
        outcome.addCallbacks(answer, failed)

    def close(self) -> Deferred[Any] | None:
        if self._agent is None:
            return None
        pool = self._agent._pool
        self._agent = None
        result: Deferred[Any] = pool.closeCachedConnections()
        return result


class _BodyCollector(Protocol):
    """The whole upstream body (twisted's readBody wants transports the asyncio reactor lacks)."""

    def __init__(self, done: Deferred[Any]):
        self.done = done
        self.parts: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.parts.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        from twisted.web.client import ResponseDone  # imported by the agent already

        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


def _immediate_cooperator() -> Any:
    from twisted.internet.task import Cooperator

    return Cooperator(scheduler=lambda work: twisted_reactor().callLater(0, work))


# -- faults (socket level, as WireMock's) --------------------------------------------------------


def _reset(transport: Any) -> None:
    handle = transport.getHandle()
    try:  # SO_LINGER 0: close() sends RST, the client sees "connection reset by peer"
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, AttributeError):
        pass
    transport.abortConnection()


def _empty(transport: Any) -> None:
    transport.loseConnection()


def _malformed_chunk(transport: Any) -> None:
    transport.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + GARBAGE)
    transport.loseConnection()


def _random_data(transport: Any) -> None:
    transport.write(GARBAGE)
    transport.loseConnection()


FAULT_ACTIONS: dict[str, Callable[[Any], None]] = {
    "CONNECTION_RESET_BY_PEER": _reset,
    "EMPTY_RESPONSE": _empty,
    "MALFORMED_RESPONSE_CHUNK": _malformed_chunk,
    "RANDOM_DATA_THEN_CLOSE": _random_data,
}

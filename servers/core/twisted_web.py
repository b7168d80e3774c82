"""LeafSite: a Twisted web site whose root is one leaf resource, and which answers each
request with one send.

The HTTP server (servers/http/site.py) and the JSON-RPC server (servers/jsonrpc/) serve
every path from one resource; what Twisted's ``server.Site`` spends per request on
things neither needs (a resource tree walk, an epoll writer registration per reply, a
reactor timer per request for the idle timeout, the Date header formatted anew, the
socket asked for its addresses) is taken out here, keeping Twisted's bytes, HTTP/1.1
framing and failure handling (RFC 9112 by Twisted).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.http import HTTPChannel, datetimeToString, unquote
from twisted.web.http_headers import Headers

from .twisted_listen import write_now


class PromptReplyChannel(HTTPChannel):
    """Twisted's HTTP/1.1 channel, which sends a reply made while rendering in one piece, at once.

    Twisted's channel gave the status line and headers, then the body, to the
    transport, which only buffers: the socket was written when the reactor next found
    it writable, after registering and unregistering a writer (two epoll changes and a
    loop turn per reply: the largest single cost of a /get after the send itself).
    Here what a request writes while it is rendered (:class:`LeafRequest`) is kept on
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
    ``timeoutConnection`` closes it), but kept by :meth:`LeafSite.close_idle_channels`
    from the time of the last activity instead of by Twisted's TimeoutMixin, which
    cancelled and scheduled a reactor call for every request and moved it for every
    read: about 6% of a /get.
    """

    _secure: bool | None = None
    _last_active = 0.0  # time.monotonic() of the last bytes received or request answered
    _answering = False  # a request's whole content is in and its answer not finished
    _timed_out = False
    site: LeafSite  # set by Site.buildProtocol
    _host: Any = None
    _peer: Any = None
    _rendering = False  # a request of this channel is in LeafRequest.render
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


class LeafRequest(server.Request):
    """Twisted's Request for a :class:`LeafSite`; what it writes while rendering is kept
    on the channel until it is done or rendering ends (see :class:`PromptReplyChannel`)."""

    channel: PromptReplyChannel  # LeafSite's protocol
    site: LeafSite

    def process(self) -> None:
        """Twisted's ``server.Request.process`` for this site, whose root resource is a
        leaf: the same headers, path lists and failure handling, the
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


class LeafSite(server.Site):
    """A Site whose root resource renders every path itself (no child lookup), and whose
    channels' idle timeout is kept by one periodic sweep (see :class:`PromptReplyChannel`),
    which the owner starts with :meth:`sweep_idle_channels`."""

    requestFactory = LeafRequest

    def __init__(self, root: resource.Resource, idle_timeout: float, parse_post_forms: bool = True):
        # No TimeoutMixin timer per channel (timeout None); forms as Twisted's Site parses them.
        super().__init__(root, timeout=None, parsePOSTFormSubmission=parse_post_forms)
        self.noisy = False
        self.idle_timeout = idle_timeout  # seconds (swept only when > 0)
        self.channels: set[PromptReplyChannel] = set()

    def sweep_idle_channels(self, every: Callable[[float, Callable[[], None]], Any]) -> None:
        """Start the idle sweep with ``every`` (``TwistedServer.every``), unless the timeout
        is 0 (never): an idle connection is closed within a quarter of the timeout, and at
        most a second, of it."""
        if self.idle_timeout > 0:
            every(min(1.0, self.idle_timeout / 4), self.close_idle_channels)

    def close_idle_channels(self) -> None:
        """Time out the connections idle for ``idle_timeout`` seconds (Twisted's timeoutConnection)."""
        deadline = time.monotonic() - self.idle_timeout
        for channel in [c for c in self.channels if c.idle_since(deadline)]:
            channel.timeoutConnection()

    def protocol(self) -> PromptReplyChannel:  # type: ignore[override]
        # Twisted's default wraps each channel in a proxy that would switch to HTTP/2
        # when ALPN picks h2; the h2 package is not a dependency, so without it that
        # proxy only forwarded every call. HTTP/1.1 is all this site offers (below).
        return PromptReplyChannel()

    def acceptableProtocols(self) -> list[bytes]:
        return [b"http/1.1"]

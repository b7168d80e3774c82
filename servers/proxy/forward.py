"""The HTTP forward proxy: absolute-URI requests and CONNECT tunnels (RFC 9110, 9112).

One :class:`ForwardProxyProtocol` per client connection parses HTTP/1.1 with h11 (both
sides: the client's requests and the upstream's responses), so message framing,
keep-alive, ``Expect: 100-continue``, HEAD and HTTP/1.0 peers follow the RFC without
a parser of our own. Each request is an :class:`Exchange`:

1. the target is parsed (``http://host[:port]/path`` or, for CONNECT, ``host:port``);
2. Basic proxy auth (407), then the host/port allow and deny lists (403);
3. the toxics are drawn for the subject ``host:port/path`` (``host:port`` for CONNECT);
   ``http_status`` answers here without contacting the upstream;
4. the upstream connection is opened (or the idle one to the same host:port reused),
   the request is forwarded without hop-by-hop headers and with ``Via``; a refused or
   failed upstream gives 502, no answer within ``upstream_timeout`` gives 504;
5. the response comes back the same way; every byte each way passes through that
   exchange's toxic pipes.

A 2xx answer to CONNECT turns the connection into a raw tunnel, with the same pipes.

Both legs run on asyncio's own transports, not Twisted's (the TCP listeners still
do). The CPU spent per request is what the proxy adds to a request's latency, and a
bare relay of one GET on a new connection took 1.7 times the instructions on Twisted's
asyncio reactor (connectTCP's Deferred and timer turn, the logging context around
every callback, a turn per close) as on asyncio's transports; this proxy went from
2.75 to 2.2 million instructions per GET when it moved. asyncio's transports also
send a write at once when nothing is queued, and set TCP_NODELAY themselves. Toxics
still keep time with the Twisted reactor, which runs on the same loop.
"""

from __future__ import annotations

import asyncio
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import h11

from ..core.loop import twisted_reactor
from .access import authenticate
from .toxics import CLOSE, END, EOF, TOXICS, ActiveToxic, Pipe, Sink
from .upstream import (
    FlowControlled,
    StreamUpstream,
    abort_with_reset,
    couple_streams,
    failure_kind,
    failure_text,
    open_upstream,
    uncouple_streams,
)

if TYPE_CHECKING:
    from .server import ProxyServer

# RFC 9110 section 7.6.1: headers meant for one connection only. Transfer-Encoding is
# hop-by-hop too, but h11 frames the body from it, so it is passed on and h11 rewrites
# it when the next hop cannot take chunked (an HTTP/1.0 client).
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"upgrade",
}


class BadTarget(Exception):
    """A request target the proxy cannot forward; ``str()`` is the explanation for the client."""


def parse_target(method: str, target: str) -> tuple[str, int, str]:
    """``(host, port, path)`` of an absolute-URI target, or of CONNECT's ``host:port``."""
    if method == "CONNECT":
        host, sep, port_text = target.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise BadTarget(f"CONNECT needs host:port, got {target!r}")
        return host, int(port_text), ""
    if target.startswith("/") or target == "*":
        raise BadTarget(
            "this is a forward proxy: send absolute-URI requests (GET http://host/path), "
            "for example with curl -x"
        )
    parts = urlsplit(target)
    if parts.scheme.lower() != "http":
        raise BadTarget(f"only http:// targets are forwarded (use CONNECT for https), got {target!r}")
    try:
        port = parts.port or 80
    except ValueError:
        raise BadTarget(f"bad port in {target!r}") from None
    if not parts.hostname:
        raise BadTarget(f"no host in {target!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, path


def _connection_tokens(headers: Any) -> set[bytes]:
    return {token.strip().lower() for name, value in headers if name == b"connection" for token in value.split(b",")}


def end_to_end(headers: Any) -> list[tuple[bytes, bytes]]:
    """The headers a proxy passes on: hop-by-hop ones and those named in Connection removed."""
    dropped = HOP_BY_HOP | _connection_tokens(headers)
    return [(name, value) for name, value in headers.raw_items() if name.lower() not in dropped]


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class UpstreamLeg:
    """An upstream connection with its HTTP client state, kept across requests when idle."""

    def __init__(self, host: str, port: int, protocol: StreamUpstream):
        self.host = host
        self.port = port
        self.protocol = protocol
        self.http = h11.Connection(h11.CLIENT)

    def reusable_for(self, host: str, port: int) -> bool:
        return (
            (self.host, self.port) == (host, port)
            and self.protocol.connected_
            and self.http.our_state is h11.IDLE
            and self.http.their_state is h11.IDLE
        )

    def close(self) -> None:
        self.protocol.close()


class Exchange:
    """One request and its response (or one CONNECT tunnel), with its toxics.

    It is the :class:`~servers.proxy.toxics.Link` of its pipes and the owner of its
    upstream connection.
    """

    def __init__(self, proxy: ForwardProxyProtocol, request: h11.Request):
        self.proxy = proxy
        self.server = proxy.server
        self.request = request
        self.method = request.method.decode("ascii", "replace")
        self.target = request.target.decode("latin-1")
        self.started = time.monotonic()
        self.host = ""
        self.port = 0
        self.path = ""
        self.user: str | None = None
        self.status: int | None = None
        self.error: str | None = None
        self.toxics: list[ActiveToxic] = []
        self.down: Pipe | None = None
        self.up: Pipe | None = None
        self.leg: UpstreamLeg | None = None
        self.connector: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.pending: list[Any] | None = []  # request body events until the upstream is ready
        # A request without a body is complete once its head is in.
        self.request_complete = not (self._header(b"transfer-encoding") or self._header(b"content-length") not in (None, "0"))
        self.upstream_done = False  # the upstream's whole response was read
        self.response_started = False
        self.tunnel = False
        self.reset_on_connect = False
        self.coupled = False  # flow control between the client and the upstream is on
        self.recorded = False
        self.over = False  # the client connection is gone or the response was delivered

    @property
    def is_connect(self) -> bool:
        return self.method == "CONNECT"

    # -- request side ----------------------------------------------------------------
    def start(self) -> None:
        if self.server.wire.enabled:  # the text costs more than the check
            self.server.wire.received(self.proxy.peer, self._request_text())
        try:
            self.host, self.port, self.path = parse_target(self.method, self.target)
        except BadTarget as error:
            self.reply(400, str(error))
            return
        settings = self.server.settings
        if settings.require_auth:
            self.user, ok = authenticate(self.server.core.users, self._header(b"proxy-authorization"))
            self.server.record("auth", self.proxy.peer, ok=ok, user=self.user, mechanism="basic")
            if not ok:
                realm = settings.auth_realm.replace('"', "")
                self.reply(
                    407,
                    "proxy authentication required: send Basic credentials (curl -U user:password)",
                    [(b"Proxy-Authenticate", f'Basic realm="{realm}"'.encode())],
                )
                return
        refusal = self.server.policy.refusal(self.host, self.port)
        if refusal is None and self.server.is_own_address(self.host, self.port):
            refusal = "the target is this proxy itself (a loop)"
        if refusal is not None:
            self.reply(403, refusal)
            return
        self.toxics = self.server.draw_toxics(self.subject, self.proxy.peer, TOXICS)
        self._down_pipe()  # now: timed toxics (reset_peer, timeout) count from the request
        fixed = self._toxic("http_status")
        if fixed is not None:
            self.reply(
                fixed.params["status"],
                fixed.params["body"],
                [(b"Content-Type", fixed.params["content_type"].encode())],
                raw_body=True,
            )
            return
        self._connect()

    @property
    def subject(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}{self.path.partition('?')[0]}"

    def body_data(self, data: bytes) -> None:
        self._to_upstream(h11.Data(data=data))

    def body_end(self, event: h11.EndOfMessage) -> None:
        self.request_complete = True
        if not self.is_connect:
            self._to_upstream(event)

    def _to_upstream(self, *events: Any) -> None:
        """Forward request events, in one write (the head and a small body: one segment)."""
        if self.pending is not None:
            self.pending.extend(events)
        elif self.leg is not None and self.up is not None and not self.over:
            data = []
            try:
                for event in events:
                    data.append(self.leg.http.send(event) or b"")
            except h11.LocalProtocolError as error:
                self.up.write(b"".join(data))
                self._upstream_broken(f"cannot forward the request: {error}")
                return
            self.up.write(b"".join(data))

    # -- upstream side ---------------------------------------------------------------
    def _connect(self) -> None:
        timeout = self.server.settings.upstream_timeout
        if timeout:
            self.timer = asyncio.get_running_loop().call_later(timeout, self._timed_out, timeout)
        leg = None if self.is_connect else self.proxy.take_idle_upstream(self.host, self.port)
        if leg is not None:
            leg.protocol.owner = self
            self.leg = leg
            self._upstream_ready()
        else:
            self.connector = open_upstream(self.host, self.port, timeout, self)

    def upstream_connected(self, protocol: StreamUpstream) -> None:
        self.connector = None
        self.leg = UpstreamLeg(self.host, self.port, protocol)
        if self.over or self.status is not None:
            protocol.close()
            return
        self._upstream_ready()

    def upstream_failed(self, reason: BaseException) -> None:
        self.connector = None
        if self.over or self.status is not None:
            return
        status = 504 if failure_kind(reason) == "timeout" else 502
        self.error = failure_text(reason)
        self.reply(status, f"cannot connect to {self.host}:{self.port}: {self.error}")

    def _upstream_ready(self) -> None:
        assert self.leg is not None
        transport = self.leg.protocol.transport
        self.up = Pipe(self.toxics, "upstream", self, twisted_reactor(), Sink(transport.write, self._upstream_finish))
        couple_streams(self.proxy, self.leg.protocol)
        self.coupled = True
        if self.reset_on_connect:
            self.leg.protocol.abort()
            return
        if self.is_connect:
            self._cancel_timer()
            self.status = 200
            self.tunnel = True
            self._to_client(h11.Response(status_code=200, headers=[(b"Via", self.server.via)], reason=b"Connection established"))
            leftover, _closed = self.proxy.http.trailing_data
            self.pending = None
            self.up.write(leftover)
            return
        events, self.pending = self.pending or [], None
        head = h11.Request(method=self.request.method, target=self.path.encode(), headers=self._request_headers())
        self._to_upstream(head, *events)

    def upstream_data(self, data: bytes) -> None:
        if self.over or self.leg is None:
            return
        if self.tunnel:
            self._down_pipe().write(data)
            return
        self.leg.http.receive_data(data)
        self._pump_upstream()

    def upstream_lost(self) -> None:
        leg, self.leg = self.leg, None
        if self.tunnel:
            if not self.over:
                self._down_pipe().finish(EOF)
            self._cleanup_if_gone()
            return
        answered_here = self.status is not None and not self.response_started
        if leg is None or self.over or self.upstream_done or answered_here:
            self._cleanup_if_gone()
            return
        leg.http.receive_data(b"")  # a close-delimited body ends here
        self.leg = leg
        self._pump_upstream()
        self.leg = None
        if self.over or self.upstream_done:
            return
        if not self.response_started:
            self._upstream_broken("the upstream closed the connection without a response")
        else:
            self.error = "the upstream closed the connection mid-response"
            self.close()

    def _pump_upstream(self) -> None:
        """Relay what the upstream's bytes made complete; what one read produced goes to
        the client in one write (a small response: head and body in one segment)."""
        assert self.leg is not None
        relayed: list[Any] = []
        while not self.over and self.leg is not None:
            try:
                event = self.leg.http.next_event()
            except h11.RemoteProtocolError as error:
                self._to_client(*relayed)
                self._upstream_broken(f"the upstream sent invalid HTTP: {error}")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                break
            if isinstance(event, h11.InformationalResponse):
                if event.status_code != 101:
                    relayed.append(
                        h11.InformationalResponse(
                            status_code=event.status_code, headers=end_to_end(event.headers), reason=event.reason
                        )
                    )
            elif isinstance(event, h11.Response):
                self._cancel_timer()
                self.response_started = True
                self.status = event.status_code
                relayed.append(
                    h11.Response(status_code=event.status_code, headers=self._response_headers(event), reason=event.reason)
                )
            elif isinstance(event, h11.Data):
                relayed.append(event)
            elif isinstance(event, h11.EndOfMessage):
                self.upstream_done = True
                if self.leg.http.our_state is h11.DONE and self.leg.http.their_state is h11.DONE:
                    self.leg.http.start_next_cycle()
                self._to_client(*relayed, h11.EndOfMessage())
                self._down_pipe().finish(END)
                return
        self._to_client(*relayed)

    def _upstream_broken(self, why: str) -> None:
        self.error = why
        if self.leg is not None:
            self.leg.close()
        if not self.response_started and self.status is None:
            self.reply(502, f"{self.host}:{self.port}: {why}")
        else:
            self.close()

    def _timed_out(self, timeout: float) -> None:
        self.timer = None
        if self.over or self.response_started or self.status is not None:
            return
        if self.connector is not None:
            self.connector.cancel()
            self.connector = None
        if self.leg is not None:
            self.leg.close()
        self.error = f"no answer within {timeout:g} s"
        self.reply(504, f"{self.host}:{self.port} gave no answer within {timeout:g} s (upstream_timeout)")

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None

    def _upstream_finish(self, how: str) -> None:
        if how == CLOSE:
            self.close()
        elif self.leg is not None and self.tunnel and not self.over:
            self.leg.protocol.close_write()  # the client half-closed the tunnel: pass the FIN on
        elif self.leg is not None:
            self.leg.close()

    # -- client side -----------------------------------------------------------------
    def reply(self, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None, raw_body: bool = False) -> None:
        """Answer the client ourselves (errors, 407, http_status) with a short text body."""
        self._cancel_timer()
        self.status = status
        self.pending = None  # a body still arriving is not forwarded anywhere
        if self.error is None and status >= 400:
            self.error = text
        body = (text if raw_body else f"refservers proxy: {status} {_reason(status).decode()}: {text}\n").encode()
        names = {name.lower() for name, _ in headers or []}
        all_headers = list(headers or [])
        if b"content-type" not in names:
            all_headers.append((b"Content-Type", b"text/plain; charset=utf-8"))
        all_headers += [(b"Content-Length", str(len(body)).encode()), (b"Via", self.server.via)]
        if not self.request_complete:
            # The request body was not read: the connection cannot be reused safely.
            all_headers.append((b"Connection", b"close"))
        all_headers += self._added_headers("downstream")
        if self.is_connect and status < 300:
            # A 2xx to CONNECT opens a tunnel (RFC 9110 section 9.3.6): an http_status
            # toxic saying 200 gets a tunnel to nowhere, closed at once.
            self._to_client(h11.Response(status_code=status, headers=[(b"Via", self.server.via)], reason=_reason(status)))
            self.close()
            return
        response = h11.Response(status_code=status, headers=all_headers, reason=_reason(status))
        if self.method != "HEAD":
            self._to_client(response, h11.Data(data=body), h11.EndOfMessage())
        else:
            self._to_client(response, h11.EndOfMessage())
        self._down_pipe().finish(END)

    def _to_client(self, *events: Any) -> None:
        """Send response events to the client, in one write."""
        if self.over or not events:
            return
        data = []
        for event in events:
            try:
                data.append(self.proxy.http.send(event) or b"")
            except h11.LocalProtocolError as error:
                self._down_pipe().write(b"".join(data))
                self.server.log.warning("%s: cannot send to the client: %s", self.proxy.peer, error)
                self.close()
                return
            if self.server.wire.enabled and isinstance(event, (h11.Response, h11.InformationalResponse)):
                self.server.wire.sent(self.proxy.peer, data[-1].decode("latin-1").rstrip("\r\n"))
        self._down_pipe().write(b"".join(data))

    def _down_pipe(self) -> Pipe:
        if self.down is None:
            transport = self.proxy.transport
            self.down = Pipe(self.toxics, "downstream", self, twisted_reactor(), Sink(transport.write, self._client_finish))
        return self.down

    def _client_finish(self, how: str) -> None:
        if how == END:
            self.delivered()
        else:  # EOF: the tunnel's upstream closed; CLOSE: limit_data
            self.close()

    def delivered(self) -> None:
        """The whole response left for the client: record it, let the next request in."""
        self.over = True
        self.record()
        self.cancel()
        self.proxy.exchange_done(self)

    def client_lost(self) -> None:
        self.over = True
        if self.connector is not None:
            self.connector.cancel()
            self.connector = None
        if self.tunnel and self.up is not None and self.leg is not None and not self.up.sink.finished:
            self.up.finish(EOF)  # deliver what the client sent, then close the upstream
        elif self.leg is not None:
            self.leg.close()
        self._cleanup_if_gone()

    def client_half_closed(self) -> None:
        """The client sent FIN on a tunnel: it may still read the upstream's answer."""
        if self.up is not None:
            self.up.finish(EOF)

    def _cleanup_if_gone(self) -> None:
        if self.over and self.leg is None and self.connector is None:
            self.record()
            self.cancel()

    # -- Link (called by toxics) -------------------------------------------------------
    def close(self) -> None:
        self.proxy.transport.close()
        if self.leg is not None:
            self.leg.close()

    def reset(self, stream: str) -> None:
        if stream == "downstream":
            abort_with_reset(self.proxy.transport)
            if self.leg is not None:
                self.leg.close()
        elif self.leg is not None:
            self.leg.protocol.abort()
        else:
            self.reset_on_connect = True

    def cancel(self) -> None:
        self._cancel_timer()
        for pipe in (self.up, self.down):
            if pipe is not None:
                pipe.cancel()

    # -- journal and headers ---------------------------------------------------------
    def record(self) -> None:
        if self.recorded:
            return
        self.recorded = True
        details: dict[str, Any] = {
            "method": self.method,
            "target": self.target,
            "status": self.status,
            "bytes_up": self.up.byte_count if self.up else 0,
            "bytes_down": self.down.byte_count if self.down else 0,
            "duration_ms": round((time.monotonic() - self.started) * 1000, 1),
            "toxics": [toxic.name for toxic in self.toxics],
        }
        if self.user is not None:
            details["user"] = self.user
        if self.error is not None:
            details["error"] = self.error
        self.server.record("request", self.proxy.peer, **details)

    def _toxic(self, name: str, stream: str | None = None) -> ActiveToxic | None:
        return next((t for t in self.toxics if t.name == name and (stream is None or t.stream == stream)), None)

    def _added_headers(self, stream: str) -> list[tuple[bytes, bytes]]:
        toxic = self._toxic("add_headers", stream)
        if toxic is None:
            return []
        return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in toxic.params["headers"].items()]

    def _header(self, name: bytes) -> str | None:
        for key, value in self.request.headers:
            if key == name:
                return str(value.decode("latin-1"))
        return None

    def _request_headers(self) -> list[tuple[bytes, bytes]]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        authority = host if self.port == 80 else f"{host}:{self.port}"
        headers = [(b"Host", authority.encode("idna"))]
        headers += [(name, value) for name, value in end_to_end(self.request.headers) if name.lower() != b"host"]
        headers.append((b"Via", self.server.via))
        return headers + self._added_headers("upstream")

    def _response_headers(self, response: h11.Response) -> list[tuple[bytes, bytes]]:
        headers = end_to_end(response.headers)
        headers.append((b"Via", self.server.via))
        return headers + self._added_headers("downstream")

    def _request_text(self) -> str:
        version = self.request.http_version.decode("ascii", "replace")
        lines = [f"{self.method} {self.target} HTTP/{version}"]
        lines += [f"{name.decode('latin-1')}: {value.decode('latin-1')}" for name, value in self.request.headers.raw_items()]
        return "\n".join(lines)


class ForwardProxyProtocol(FlowControlled):
    """One client connection: requests one after another (keep-alive), or one tunnel."""

    def __init__(self, server: ProxyServer):
        self.server = server
        self.http = h11.Connection(h11.SERVER)
        self.exchange: Exchange | None = None
        self.idle_upstream: UpstreamLeg | None = None
        self.peer = ""
        self._pumping = False
        # Answered before the client finished sending the request: wait for its end.
        self._awaiting_request_end = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.peer = peer_text(transport.get_extra_info("peername"))
        self.server.forward_connections.add(self)
        self.server.record("connect", self.peer)

    def data_received(self, data: bytes) -> None:
        if self.exchange is not None and self.exchange.tunnel:
            if self.exchange.up is not None:
                self.exchange.up.write(data)
            return
        self.http.receive_data(data)
        self._pump()

    def eof_received(self) -> bool:
        # A client that half-closes still gets its answer: a tunnel passes the FIN on,
        # HTTP finishes the request in progress and then closes.
        if self.exchange is not None and self.exchange.tunnel:
            self.exchange.client_half_closed()
        else:
            self.http.receive_data(b"")
            self._pump()
        return True  # keep the sending side open; closing is ours to decide

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.forward_connections.discard(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.client_lost()
        if self.idle_upstream is not None:
            self.idle_upstream.close()
            self.idle_upstream = None
        self.server.record("disconnect", self.peer)

    def _pump(self) -> None:
        if self._pumping:
            return  # re-entered from an exchange finishing inside the loop below
        self._pumping = True
        try:
            self._pump_events()
        finally:
            self._pumping = False

    def _pump_events(self) -> None:
        while True:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError as error:
                self._bad_request(error)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.exchange = Exchange(self, event)
                self.exchange.start()
            elif isinstance(event, h11.Data):
                if self.exchange is not None:
                    self.exchange.body_data(event.data)
            elif isinstance(event, h11.EndOfMessage):
                if self.exchange is not None:
                    self.exchange.body_end(event)
                elif self._awaiting_request_end:
                    self._awaiting_request_end = False
                    self._next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                if self.exchange is None:  # else the answer in progress goes out first
                    self.transport.close()
                return
            if self.exchange is not None and self.exchange.tunnel:
                return

    def _bad_request(self, error: h11.RemoteProtocolError) -> None:
        status = error.error_status_hint
        body = f"refservers proxy: {status} {_reason(status).decode()}: {error}\n".encode()
        self.server.record("request", self.peer, status=status, error=str(error))
        try:
            self.transport.write(
                self.http.send(
                    h11.Response(
                        status_code=status,
                        headers=[(b"Content-Type", b"text/plain; charset=utf-8"), (b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")],
                        reason=_reason(status),
                    )
                )
                or b""
            )
            self.transport.write(self.http.send(h11.Data(data=body)) or b"")
            self.transport.write(self.http.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            pass  # mid-response already: nothing sensible to send
        self.transport.close()

    def take_idle_upstream(self, host: str, port: int) -> UpstreamLeg | None:
        leg, self.idle_upstream = self.idle_upstream, None
        if leg is not None and leg.reusable_for(host, port):
            return leg
        if leg is not None:
            leg.close()
        return None

    def exchange_done(self, exchange: Exchange) -> None:
        if self.exchange is exchange:
            self.exchange = None
        leg, exchange.leg = exchange.leg, None
        if leg is not None and exchange.coupled:
            uncouple_streams(self, leg.protocol)
        if leg is not None and leg.reusable_for(leg.host, leg.port):
            leg.protocol.owner = self
            self.idle_upstream = leg
        elif leg is not None:
            leg.close()
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self._next_cycle()
        elif self.http.our_state is h11.DONE and self.http.their_state is h11.SEND_BODY:
            self._awaiting_request_end = True
        else:
            self.transport.close()

    def _next_cycle(self) -> None:
        self.http.start_next_cycle()
        self._pump()

    # An idle upstream reports here between requests.
    def upstream_connected(self, upstream: StreamUpstream) -> None:
        pass

    def upstream_failed(self, reason: BaseException) -> None:
        pass

    def upstream_data(self, data: bytes) -> None:
        # Nothing was asked: an idle upstream talking is broken, do not reuse it.
        if self.idle_upstream is not None:
            self.idle_upstream.close()
            self.idle_upstream = None

    def upstream_lost(self) -> None:
        self.idle_upstream = None


def peer_text(peername: Any) -> str:
    """``host:port`` (``[v6]:port``) of asyncio's ``peername``."""
    if not peername:
        return ""
    host, port = str(peername[0]), peername[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

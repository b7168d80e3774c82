"""Plain TCP proxy listeners: ``listen port -> upstream host:port``, bytes both ways, toxics.

Any protocol (SMTP, an FTP control connection, a database) can be put behind the same
toxics as the HTTP proxy. Each listener has a name (``tcp-<port>`` unless given), and
fault rules match that name. Listeners come from the ``tcp`` option or from the admin
API (``/api/v1/proxies``) or the Toxiproxy API (``servers/toxiproxy``). Every
connection is journalled when it ends (kind ``connection``: bytes each way, duration,
toxics). A connection's pipes hold the toxics drawn from fault rules when it started
and its listener's named toxics, which change live (``live.py``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ..core.config import Kind
from ..core.loop import twisted_reactor
from ..core.twisted_listen import peer_of
from .toxics import BYTE_TOXICS, CLOSE, EOF, ActiveToxic, Pipe, Sink
from .upstream import UpstreamProtocol, connect_upstream, couple, failure_text

if TYPE_CHECKING:
    from .live import NamedToxic
    from .server import ProxyServer, TcpListener

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class TcpRoute:
    """One plain TCP listener: where it listens and where it forwards."""

    listen_port: int
    upstream_host: str
    upstream_port: int
    name: str = ""
    listen_host: str = ""  # empty: the proxy server's host

    @property
    def upstream(self) -> str:
        host = f"[{self.upstream_host}]" if ":" in self.upstream_host else self.upstream_host
        return f"{host}:{self.upstream_port}"

    def named(self, bound_port: int, bound_host: str = "") -> TcpRoute:
        """This route with its name settled (``tcp-<port>`` by default) and its address
        the bound one (the port picked for 0, the address a host name resolved to)."""
        name = self.name or f"tcp-{self.listen_port or bound_port}"
        return TcpRoute(bound_port, self.upstream_host, self.upstream_port, name, bound_host or self.listen_host)


def parse_upstream(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) -> ``(host, port)``; raises ValueError."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected upstream host:port, got {text!r}")
    return host, int(port_text)


def parse_route(text: str, name: str = "") -> TcpRoute:
    """``[name@]listen_port=upstream_host:upstream_port`` -> TcpRoute; raises ValueError."""
    left, sep, upstream = text.strip().partition("=")
    if not sep:
        raise ValueError(f"expected listen_port=host:port, got {text!r}")
    if "@" in left:
        name, _, left = left.partition("@")
    if not left.strip().isdigit() or not 0 <= int(left) <= 65535:
        raise ValueError(f"expected a listen port 0-65535, got {left!r}")
    if name and not _NAME.match(name):
        raise ValueError(f"listener name: letters, digits, . _ - (up to 63), got {name!r}")
    host, port = parse_upstream(upstream)
    return TcpRoute(int(left), host, port, name)


def _routes_from_toml(value: Any) -> tuple[TcpRoute, ...]:
    if isinstance(value, dict):  # {"15432" = "db:5432"}
        return tuple(parse_route(f"{key}={target}") for key, target in value.items() if isinstance(target, str))
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(parse_route(item) for item in value)
    raise ValueError


def _routes_from_text(text: str) -> tuple[TcpRoute, ...]:
    return tuple(parse_route(item) for item in re.split(r"[;,]", text) if item.strip())


# The `tcp` option: a table {"2525" = "127.0.0.1:25"} or a list ["2525=127.0.0.1:25"];
# in text (env, --set): "2525=127.0.0.1:25;smtp@2526=mail:25" (; or , between entries).
TCP_ROUTES = Kind(
    'listen_port=host:port entries (a table or list in TOML; "a=h:p;b=h:p" in text)',
    _routes_from_toml,
    _routes_from_text,
)


@implementer(IHalfCloseableProtocol)
class TcpProxyProtocol(TwistedProtocol):
    """One client connection of a TCP listener, and the :class:`Link` of its two pipes."""

    transport: Any  # Twisted types it as an interface; ours is a TCP connection

    def __init__(self, server: ProxyServer, listener: TcpListener):
        self.server = server
        self.listener = listener
        self.route = listener.route
        self.peer = ""
        self.started = time.monotonic()
        self.toxics: list[ActiveToxic] = []
        self.upstream: UpstreamProtocol | None = None
        self.connector: Any = None
        self.up: Pipe | None = None
        self.down: Pipe | None = None
        self.buffered: list[bytes] = []
        self.client_gone = False
        self.client_eof = False
        self.error: str | None = None
        self.recorded = False
        self.received_up = 0  # bytes read from the client, before the toxics
        self.received_down = 0  # bytes read from the upstream

    def connectionMade(self) -> None:
        # Interactive protocols through the proxy must not wait on Nagle + delayed ACK.
        self.transport.setTcpNoDelay(True)
        self.peer = peer_of(self.transport)
        self.server.record("connect", self.peer, listener=self.route.name, upstream=self.route.upstream)
        self.toxics = self.server.draw_toxics(self.route.name, self.peer, BYTE_TOXICS)
        reactor = twisted_reactor()
        chain = self.listener.toxics
        self.down = Pipe(self.toxics, "downstream", self, reactor, Sink(self.transport.write, self._client_finish), chain)
        chain.connections.add(self)
        self.connector = connect_upstream(
            self.route.upstream_host, self.route.upstream_port, self.server.settings.upstream_timeout, self
        )

    def dataReceived(self, data: bytes) -> None:
        self.received_up += len(data)
        if self.up is None:
            self.buffered.append(data)
        else:
            self.up.write(data)

    def readConnectionLost(self) -> None:
        # The client half-closed (sent FIN): pass the FIN on once its data is through,
        # and keep sending the upstream's answer (request, shutdown, read the reply).
        self.client_eof = True
        if self.up is not None:
            self.up.finish(EOF)

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.client_gone = True
        if self.connector is not None:
            self.connector.stopConnecting()
            self.connector = None
        if self.up is not None and self.upstream is not None:
            if self.up.sink.finished:
                self.upstream.close()
            else:
                self.up.finish(EOF)  # what the client sent still reaches the upstream
        self._cleanup_if_gone()

    # -- upstream --------------------------------------------------------------------
    def upstream_connected(self, upstream: UpstreamProtocol) -> None:
        self.connector = None
        self.upstream = upstream
        if self.client_gone:
            upstream.close()
            return
        sink = Sink(upstream.transport.write, self._upstream_finish)
        self.up = Pipe(self.toxics, "upstream", self, twisted_reactor(), sink, self.listener.toxics)
        couple(self.transport, upstream.transport)
        buffered, self.buffered = self.buffered, []
        for data in buffered:
            self.up.write(data)
        if self.client_eof:
            self.up.finish(EOF)

    def upstream_failed(self, reason: Failure) -> None:
        self.connector = None
        if self.client_gone:
            return  # we gave up ourselves (stopConnecting)
        self.error = f"cannot connect to {self.route.upstream}: {failure_text(reason)}"
        self.server.log.warning("%s: %s", self.route.name, self.error)
        self.transport.loseConnection()
        self._cleanup_if_gone()

    def upstream_data(self, data: bytes) -> None:
        self.received_down += len(data)
        if self.down is not None:
            self.down.write(data)

    def upstream_lost(self) -> None:
        self.upstream = None
        if not self.client_gone and self.down is not None:
            self.down.finish(EOF)  # deliver what is still in the toxics, then close
        self._cleanup_if_gone()

    def _upstream_finish(self, how: str) -> None:
        if how == CLOSE:
            self.close()
        elif self.upstream is not None and self.client_gone:
            self.upstream.close()
        elif self.upstream is not None:
            self.upstream.close_write()

    def _client_finish(self, how: str) -> None:
        if how == CLOSE:
            self.close()
        else:
            self.transport.loseConnection()

    # -- Link ----------------------------------------------------------------------------
    def close(self) -> None:
        self.transport.loseConnection()
        if self.upstream is not None:
            self.upstream.close()

    def reset(self, stream: str) -> None:
        # Both sides get the RST whichever stream the toxic is on: Toxiproxy sets
        # SO_LINGER 0 on both sockets of a link that has a reset_peer toxic, so the
        # close that follows the reset of one side is a reset of the other too.
        self.transport.abortConnection()
        if self.upstream is not None:
            self.upstream.abort()

    # -- LiveConnection: the listener's named toxics changed ----------------------------
    def _pipe(self, toxic: NamedToxic) -> Pipe | None:
        return self.up if toxic.direction == "upstream" else self.down

    def toxic_added(self, toxic: NamedToxic) -> None:
        pipe = self._pipe(toxic)
        if pipe is not None:
            pipe.attach(toxic)

    def toxic_updated(self, toxic: NamedToxic) -> None:
        pipe = self._pipe(toxic)
        if pipe is not None:
            pipe.swap(toxic)

    def toxic_removed(self, toxic: NamedToxic) -> None:
        pipe = self._pipe(toxic)
        if pipe is not None:
            pipe.detach(toxic.name)
            if toxic.type == "timeout":
                self.close()  # as Toxiproxy: removing a timeout toxic closes its links

    # -- end ---------------------------------------------------------------------------
    def _cleanup_if_gone(self) -> None:
        if not self.client_gone or self.upstream is not None or self.connector is not None or self.recorded:
            return
        self.recorded = True
        self.listener.toxics.connections.discard(self)
        for pipe in (self.up, self.down):
            if pipe is not None:
                pipe.cancel()
        details: dict[str, Any] = {
            "listener": self.route.name,
            "upstream": self.route.upstream,
            "bytes_up": self.up.byte_count if self.up else 0,
            "bytes_down": self.down.byte_count if self.down else 0,
            "duration_ms": round((time.monotonic() - self.started) * 1000, 1),
            "toxics": [toxic.name for toxic in self.toxics] + [toxic.name for toxic in self.listener.toxics],
        }
        if self.error is not None:
            details["error"] = self.error
        self.server.count_tcp_bytes(
            self.listener,
            {
                ("received", "upstream"): self.received_up,
                ("sent", "upstream"): details["bytes_up"],
                ("received", "downstream"): self.received_down,
                ("sent", "downstream"): details["bytes_down"],
            },
        )
        self.server.record("connection", self.peer, **details)
        self.server.record("disconnect", self.peer, listener=self.route.name)


class TcpProxyFactory(Factory):
    noisy = False

    def __init__(self, server: ProxyServer, listener: TcpListener):
        self.server = server
        self.listener = listener

    def buildProtocol(self, addr: Any) -> TcpProxyProtocol:
        return TcpProxyProtocol(self.server, self.listener)

"""ProxyServer: the HTTP forward proxy (port 3128) and the plain TCP proxy listeners.

It owns the options, the listeners (``main`` for HTTP, one ``tcp-...`` per TCP route,
created from config or at runtime through ``/api/v1/proxies`` or the Toxiproxy API),
the access policy, and drawing toxics from the shared FaultBook. The protocols live in
``forward.py`` (HTTP, CONNECT) and ``tcp.py``; the toxics in ``toxics.py``, a TCP
listener's named (live) toxics in ``live.py``.

A TCP listener stays known while disabled (Toxiproxy's ``enabled: false``): its port
is closed and its connections too, its route and toxics are kept for re-enabling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import DeferredList
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import implementer

from ..core.config import BOOL, FLOAT, PORT, STR, STR_LIST, ConfigError, Option
from ..core.lifecycle import BindError, probe_http
from ..core.loop import twisted_reactor
from ..core.twisted_listen import TwistedServer
from ..core.web import ApiError, ApiRequest, Reply, Route
from .access import PORT_PATTERNS, AccessPolicy
from .forward import ForwardProxyProtocol
from .live import ToxicChain
from .tcp import TCP_ROUTES, TcpProxyFactory, TcpRoute, parse_route, parse_upstream
from .toxics import TOXIC_ACTIONS, ActiveToxic, draw_toxics
from .upstream import abort_with_reset


@implementer(IHalfCloseableProtocol)
class HalfCloseableWrapper(ProtocolWrapper):
    """Twisted's ProtocolWrapper without losing half-closes on the way to the protocol."""

    def readConnectionLost(self) -> None:
        self.wrappedProtocol.readConnectionLost()

    def writeConnectionLost(self) -> None:
        self.wrappedProtocol.writeConnectionLost()


class TrackingFactory(WrappingFactory):
    """Keeps the open connections (so a listener can drop them) and passes half-closes on."""

    protocol = HalfCloseableWrapper
    noisy = False


@dataclass
class TcpListener:
    route: TcpRoute
    source: str  # "config", "api" or "toxiproxy"
    port: Any = None  # Twisted's listening port; None while disabled
    tracked: WrappingFactory | None = None
    toxics: ToxicChain = field(default_factory=ToxicChain)

    @property
    def enabled(self) -> bool:
        return self.port is not None

    @property
    def address(self) -> str:
        """``host:port`` as Go prints an address (``[v6]:port``); the bound one once bound."""
        return format_address(self.route.listen_host, self.route.listen_port)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.route.name,
            "listen": self.route.listen_port,
            "address": self.address,
            "upstream": self.route.upstream,
            "source": self.source,
            "enabled": self.enabled,
            "toxics": [toxic.as_json() for toxic in self.toxics.listing()],
        }


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ProxyServer(TwistedServer):
    name = "proxy"
    description = "HTTP forward proxy (CONNECT, auth, allow/deny) and TCP proxies, with Toxiproxy-style toxics"
    scheme = "http"
    options = (
        Option("port", PORT, 3128, "HTTP proxy port (absolute-URI requests and CONNECT)"),
        Option("require_auth", BOOL, False, "demand Basic proxy credentials from the user table (407)"),
        Option("auth_realm", STR, "refservers", "realm named in Proxy-Authenticate"),
        Option("allow_hosts", STR_LIST, ("*",), "target host globs the proxy may reach"),
        Option("deny_hosts", STR_LIST, (), "target host globs refused with 403 (wins over allow)"),
        Option("allow_ports", PORT_PATTERNS, ((0, 65535),), 'target ports allowed: "*", 443, "8000-8999"'),
        Option("deny_ports", PORT_PATTERNS, (), "target ports refused with 403 (wins over allow)"),
        Option("upstream_timeout", FLOAT, 30.0, "seconds to connect and get a response head before 504 (0: no limit)"),
        Option("via", STR, "refservers", "pseudonym in the Via header (RFC 9110 section 7.6.3)"),
        Option("tcp", TCP_ROUTES, (), "plain TCP proxies: listen_port=upstream_host:upstream_port entries"),
    )
    fault_actions = TOXIC_ACTIONS  # action = the toxic's name
    fault_subject = '"host:port/path" of an HTTP request, "host:port" of a CONNECT, the name of a TCP proxy'
    test_settings = {"upstream_timeout": "10"}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.policy = AccessPolicy(
            tuple(self.settings.allow_hosts),
            tuple(self.settings.deny_hosts),
            tuple(self.settings.allow_ports),
            tuple(self.settings.deny_ports),
        )
        self.via = f"1.1 {self.settings.via}".encode("latin-1")
        self.tcp_listeners: dict[str, TcpListener] = {}
        # Bytes through the TCP listeners, counted when a connection ends, keyed
        # (received|sent, upstream|downstream, name, listen address, upstream).
        self.tcp_bytes: Counter[tuple[str, str, str, str, str]] = Counter()
        self._main: asyncio.Server | None = None
        self.forward_connections: set[ForwardProxyProtocol] = set()

    # -- lifecycle -----------------------------------------------------------------------
    def _bind(self) -> None:
        # Not TwistedServer.listen: the forward proxy runs on asyncio's transports (see
        # forward.py), and a tunnel must pass a client's half-close on.
        self._main = self.core.loop.call(self._open_forward_port, self.settings.port)
        self.listeners["main"] = self._main.sockets[0].getsockname()[1]
        for route in self.settings.tcp:
            try:
                self.core.loop.call(self.open_tcp_listener, route, "config")
            except ValueError as error:
                raise ConfigError(f"[proxy] tcp: {error}") from None

    def _unbind(self) -> None:
        super()._unbind()
        main, self._main = self._main, None
        if main is not None or self.tcp_listeners:
            self.core.loop.call(self._close_everything, main)

    def _close_everything(self, main: asyncio.Server | None) -> Any:
        if main is not None:
            main.close()  # stops accepting at once
            for connection in list(self.forward_connections):
                abort_with_reset(connection.transport)  # as Twisted's abortConnection
        return self._close_all_tcp()

    async def _open_forward_port(self, port: int) -> asyncio.Server:
        """Listen for the forward proxy (loop thread), bound as Twisted's listenTCP binds
        the TCP listeners: SO_REUSEADDR, and "::" takes IPv4 too."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listening = socket.socket(family, socket.SOCK_STREAM)
        try:
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind((self.host, port))
            listening.listen(50)
        except OSError as error:
            listening.close()
            raise BindError(f"{self.name}: cannot listen on {self.host}:{port} (main): {error.strerror or error}") from None
        listening.setblocking(False)
        return await asyncio.get_running_loop().create_server(lambda: ForwardProxyProtocol(self), sock=listening)

    def _open_port(self, factory: Any, port: int, label: str, host: str = "") -> tuple[Any, TrackingFactory]:
        """Listen on ``host:port`` (loop thread; host empty: ours); the tracker keeps
        connections for stop()."""
        tracked = TrackingFactory(factory)
        host = host or self.host
        try:
            listening = twisted_reactor().listenTCP(port, tracked, interface=host)
        except CannotListenError as error:
            reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
            raise BindError(f"{self.name}: cannot listen on {host}:{port} ({label}): {reason}") from None
        return listening, tracked

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        # An origin-form GET is answered by the proxy itself (400 and how to use it).
        return probe_http(host, port, timeout, "/")

    # -- TCP listeners (run on the loop thread) ------------------------------------------
    def open_tcp_listener(self, route: TcpRoute, source: str, enabled: bool = True) -> TcpListener:
        """Add a TCP listener (listening unless ``enabled`` is false).

        :raises ValueError: the name is taken. :raises BindError: cannot listen.
        """
        if route.name and (route.name in self.tcp_listeners or route.name == "main"):
            raise ValueError(f"a TCP proxy named {route.name!r} exists already")
        listener = TcpListener(route, source)
        if enabled:
            self._listen(listener)
        if listener.route.name in self.tcp_listeners:  # a default name (tcp-<port>) taken
            if listener.port is not None:
                listener.port.stopListening()
            raise ValueError(f"a TCP proxy named {listener.route.name!r} exists already")
        self.tcp_listeners[listener.route.name] = listener
        if enabled:
            self.listeners[listener.route.name] = listener.route.listen_port
        return listener

    def _listen(self, listener: TcpListener) -> None:
        route = listener.route
        port, tracked = self._open_port(
            TcpProxyFactory(self, listener), route.listen_port, route.name or "tcp", route.listen_host
        )
        bound = port.getHost()
        listener.route = route.named(bound.port, bound.host)
        listener.port, listener.tracked = port, tracked
        self.log.info("TCP proxy %s: %s -> %s", listener.route.name, listener.address, route.upstream)

    def enable_tcp_listener(self, name: str) -> None:
        """Listen again on the listener's (bound) address; raises BindError."""
        listener = self.tcp_listeners[name]
        if not listener.enabled:
            self._listen(listener)
            self.listeners[name] = listener.route.listen_port

    def disable_tcp_listener(self, name: str) -> Any:
        """Stop listening and close the open connections; the listener stays known.
        Returns a Deferred that fires once the port is closed."""
        listener = self.tcp_listeners[name]
        self.listeners.pop(name, None)
        port, tracked = listener.port, listener.tracked
        listener.port = listener.tracked = None
        if port is None or tracked is None:
            return DeferredList([])
        return _close_port(port, tracked, abort=False)

    def retarget_tcp_listener(self, name: str, route: TcpRoute) -> Any:
        """A new listen address or upstream for a listener: it stops (its connections
        close) and keeps its toxics. Returns a Deferred (the old port closed)."""
        stopped = self.disable_tcp_listener(name)
        self.tcp_listeners[name].route = route
        return stopped

    def replace_tcp_listener(self, name: str, route: TcpRoute, enabled: bool) -> TcpListener:
        """A new listener, without toxics, under the name of a stopped one; the old one
        stays when the new one cannot listen (BindError), as in Toxiproxy's populate."""
        replacement = TcpListener(route, "toxiproxy")
        if enabled:
            self._listen(replacement)
            self.listeners[name] = replacement.route.listen_port
        self.tcp_listeners[name] = replacement
        return replacement

    def close_tcp_listener(self, name: str) -> Any:
        listener = self.tcp_listeners.pop(name)
        self.listeners.pop(name, None)
        if listener.port is None or listener.tracked is None:
            return DeferredList([])
        return _close_port(listener.port, listener.tracked)

    def _close_all_tcp(self) -> Any:
        return DeferredList([self.close_tcp_listener(name) for name in list(self.tcp_listeners)])

    def count_tcp_bytes(self, listener: TcpListener, counts: dict[tuple[str, str], int]) -> None:
        route = listener.route
        for (kind, direction), count in counts.items():
            self.tcp_bytes[(kind, direction, route.name, listener.address, route.upstream)] += count

    # -- used by the protocols -------------------------------------------------------------
    def draw_toxics(self, subject: str, peer: str, kinds: Any) -> list[ActiveToxic]:
        return draw_toxics(self.core.faults, self.name, subject, peer, kinds)

    def is_own_address(self, host: str, port: int) -> bool:
        """Whether ``host:port`` is one of our own listeners (a request would loop)."""
        if port not in self.listeners.values():
            return False
        if host.lower() in ("localhost", self.host.lower(), self.probe_host.lower()):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return address.is_loopback or address.is_unspecified or self.host in ("0.0.0.0", "::")

    # -- admin API ---------------------------------------------------------------------
    def admin_routes(self) -> list[Route]:
        return [
            Route("GET", "/api/v1/proxies", self._api_list, "TCP proxy listeners of the proxy server"),
            Route("POST", "/api/v1/proxies", self._api_create, 'create a TCP proxy: {"upstream": "host:port", "listen": 0, "name": "db"}'),
            Route("DELETE", "/api/v1/proxies", self._api_remove_all, "remove every TCP proxy listener"),
            Route("DELETE", "/api/v1/proxies/{name}", self._api_remove, "remove one TCP proxy listener"),
        ]

    def _api_list(self, request: ApiRequest) -> Any:
        return {"proxies": [listener.as_json() for listener in self.tcp_listeners.values()]}

    def _api_create(self, request: ApiRequest) -> Reply:
        if self.state != "ready":
            raise ApiError(409, "the proxy server is not running")
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, 'expected a JSON object: {"upstream": "host:port", "listen": 0, "name": "..."}')
        unknown = sorted(set(body) - {"upstream", "listen", "name"})
        if unknown:
            raise ApiError(400, f"unknown field {unknown[0]!r} (known: listen, name, upstream)")
        listen, name, upstream = body.get("listen", 0), body.get("name", ""), body.get("upstream")
        if isinstance(listen, bool) or not isinstance(listen, int) or not 0 <= listen <= 65535:
            raise ApiError(400, f"listen: expected a port 0-65535, got {listen!r}")
        if not isinstance(upstream, str) or not isinstance(name, str):
            raise ApiError(400, "upstream: expected host:port; name: expected a string")
        try:
            parse_upstream(upstream)
            route = parse_route(f"{name + '@' if name else ''}{listen}={upstream}")
            listener = self.open_tcp_listener(route, "api")
        except ValueError as error:
            raise ApiError(409 if "exists already" in str(error) else 400, str(error)) from None
        except BindError as error:
            raise ApiError(409, str(error)) from None
        return Reply(201, listener.as_json())

    def _api_remove(self, request: ApiRequest) -> Any:
        name = request.params["name"]
        if name not in self.tcp_listeners:
            raise ApiError(404, f"no TCP proxy named {name!r}")
        stopped = self.close_tcp_listener(name)
        return stopped.addCallback(lambda _: {"removed": name})

    def _api_remove_all(self, request: ApiRequest) -> Any:
        names = list(self.tcp_listeners)
        return self._close_all_tcp().addCallback(lambda _: {"removed": names})


def _close_port(port: Any, tracked: WrappingFactory, abort: bool = True) -> Any:
    """Stop listening and drop the open connections (loop thread): a reset, or with
    ``abort`` false a close of both sides of each connection (a TCP listener's)."""
    stopped = port.stopListening()
    for protocol in list(tracked.protocols):
        if abort:
            protocol.transport.abortConnection()
        else:
            protocol.wrappedProtocol.close()
    return stopped

"""JsonRpcServer: JSON-RPC 2.0 over HTTP POST (``/`` and ``/rpc``), WebSocket (``/ws``)
and TCP lines.

HTTP (Twisted web): a POST body is one JSON-RPC message (a request or a batch); the
reply is ``200 application/json``, or ``204 No Content`` when there is nothing to say
(notifications only). Other methods get 405, other paths 404.

WebSocket (RFC 6455, autobahn's Twisted resource on the HTTP port at ``/ws``, see
websocket.py): each text or binary message is one JSON-RPC message, each reply one
text message; notifications get none.

TCP (``tcp_port``): newline-delimited JSON: each line is one message, each reply one
line; notifications get no line. The connection stays open for many messages.

All three share one :class:`RpcEndpoint` (protocol.py), which holds the spec rules.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from twisted.internet import protocol
from twisted.protocols.basic import LineReceiver
from twisted.web import resource, server

from ..core.config import FLOAT, PORT, STR_TABLE, ConfigError, Option
from ..core.faults import DELAY, INTEGER, JSON_VALUE, STRING, FaultAction, Param
from ..core.lifecycle import ProbeError, retry_until
from ..core.loop import twisted_reactor
from ..core.twisted_listen import TwistedServer, peer_of
from ..core.twisted_web import LeafSite
from .methods import (
    BUILTINS,
    Method,
    Success,
    callables_from_config,
    errors_from_config,
    methods_from_config,
    openrpc_document,
    templates_from_config,
    with_signature_known,
)
from .protocol import Reply, RpcEndpoint

RPC_PATHS = (b"/", b"/rpc")
WEBSOCKET_PATH = b"/ws"  # JSON-RPC over WebSocket on the HTTP port
IDLE_TIMEOUT = 60.0  # seconds: an HTTP connection silent this long is closed (Twisted's default)
MAX_LINE = 1024 * 1024  # longest TCP message line; longer lines get a parse error and a close


class JsonRpcServer(TwistedServer):
    name = "jsonrpc"
    description = "JSON-RPC 2.0 over HTTP POST, WebSocket (/ws) and newline-delimited TCP, methods from config"
    scheme = "http"
    options = (
        Option("port", PORT, 4000, "HTTP port (POST / or /rpc)"),
        Option("tcp_port", PORT, 4001, "newline-delimited JSON-RPC over plain TCP"),
        Option("methods", STR_TABLE, {}, "extra methods: name -> JSON text of their fixed result"),
        Option("errors", STR_TABLE, {}, 'extra methods that fail: name -> {"code": N, "message": "...", "data": ...}'),
        Option("templates", STR_TABLE, {}, "extra methods: name -> JSON text of the result with {param} placeholders"),
        Option("callables", STR_TABLE, {}, 'extra methods: name -> "package.module:function" called with the params'),
        Option("sleep_max", FLOAT, 10.0, "cap in seconds for the sleep method"),
    )
    fault_subject = "the method name (each call of a batch)"
    fault_actions = {
        "error": FaultAction(
            "answer the call with a JSON-RPC error instead of running it",
            (
                Param("code", INTEGER, -(2**31), 2**31 - 1, default=-32000, help="the error code"),
                Param("message", STRING, default="Server error", help="the error message"),
                Param("data", JSON_VALUE, help="the error's data member (default: none)"),
            ),
        ),
        "delay": DELAY,
    }
    # Fixtures: no test should wait long on sleep.
    test_settings = {"sleep_max": "0.5"}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Checked here so a bad entry stops start-up before anything binds.
        configured = {
            "methods": methods_from_config(self.settings.methods),
            "errors": errors_from_config(self.settings.errors),
            "templates": templates_from_config(self.settings.templates),
            "callables": callables_from_config(self.settings.callables),
        }
        owner: dict[str, str] = {}
        for table, methods in configured.items():
            for method_name in methods:
                if method_name in owner:  # which one would win is not obvious: say so
                    raise ConfigError(f"[jsonrpc] {table}.{method_name}: already defined in {owner[method_name]}")
                owner[method_name] = table
        self.methods: dict[str, Method] = dict(BUILTINS)
        for table, methods in configured.items():
            self.methods.update(
                methods if table == "callables" else {name: with_signature_known(m) for name, m in methods.items()}
            )
        self.methods["rpc.discover"] = self._discover
        self.endpoint = RpcEndpoint(
            self.name, lambda: self.methods, self.core.faults, self.record, self.settings.sleep_max
        )

    def _discover(self, context: Any) -> Any:
        """Describe every method as an OpenRPC document."""
        return Success(openrpc_document(self.methods, "refservers JSON-RPC"))

    def _bind(self) -> None:
        self.http_site = RpcSite(RpcRoot(self))
        self.listen("main", self.http_site, self.settings.port)
        # Twisted's idle timeout for HTTP connections, kept by a sweep (core/twisted_web.py).
        self.http_site.sweep_idle_channels(self.every)
        self.listen("tcp", RpcLineFactory(self), self.settings.tcp_port)

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        request = json.dumps({"jsonrpc": "2.0", "method": "ping", "id": "probe"})

        def attempt(remaining: float) -> str:
            connection = http.client.HTTPConnection(host, port, timeout=remaining)
            try:
                connection.request("POST", "/", body=request, headers={"Content-Type": "application/json"})
                reply = connection.getresponse()
                body = json.loads(reply.read())
            except ConnectionRefusedError:
                raise
            except (OSError, http.client.HTTPException, ValueError) as error:
                raise ProbeError(f"{host}:{port}: {error!r}") from None
            finally:
                connection.close()
            # Any well-formed response counts: config may redefine ping.
            if not isinstance(body, dict) or body.get("jsonrpc") != "2.0" or body.get("id") != "probe":
                raise ProbeError(f"{host}:{port}: not a JSON-RPC 2.0 reply to ping: {str(body)[:80]}")
            return f"JSON-RPC ping: {json.dumps(body.get('result', body.get('error')))[:60]}"

        return retry_until(timeout, attempt)

    def answer_later(self, reply: Reply, send: Any, still_open: Any) -> None:
        """Send ``reply`` now, or after its fault delay, unless the client went away."""
        if reply.delay <= 0:
            send(reply.body)
            return
        twisted_reactor().callLater(reply.delay, lambda: send(reply.body) if still_open() else None)


class RpcSite(LeafSite):
    """The leaf site (one send per reply, no resource walk: core/twisted_web.py) of the
    HTTP port, with Twisted's idle timeout for its connections."""

    def __init__(self, root: RpcRoot):
        # No form parsing of POST bodies: a JSON-RPC body is never a form, and Twisted
        # parses every POST's Content-Type with the email package to find out (py-spy:
        # ~10% of a call).
        super().__init__(root, IDLE_TIMEOUT, parse_post_forms=False)

    def log(self, request: Any) -> None:
        """No access-log line per POST: every call is in the journal already (RpcEndpoint)."""


class RpcRoot(resource.Resource):
    """Every path of the HTTP port: ``/ws`` goes to the WebSocket resource, the rest is
    answered here (JSON-RPC at ``/`` and ``/rpc``, 404 elsewhere)."""

    isLeaf = True

    def __init__(self, rpc: JsonRpcServer):
        super().__init__()
        self.rpc = rpc
        self.websocket: Any = None  # built at the first /ws request (websocket.py says why)

    def render(self, request: Any) -> Any:
        if request.path == WEBSOCKET_PATH:
            if self.websocket is None:  # the reactor thread is the only caller: no race
                from .websocket import websocket_resource

                self.websocket = websocket_resource(self.rpc)
            answer = self.websocket.render(request)
            if request.channel.transport is None:  # the WebSocket took the connection over
                request.site.channels.discard(request.channel)
            return answer
        if request.path not in RPC_PATHS:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain")
            return b"JSON-RPC is served at / and /rpc\n"
        if request.method != b"POST":
            request.setResponseCode(405)
            request.setHeader(b"Allow", b"POST")
            request.setHeader(b"Content-Type", b"text/plain")
            return b"JSON-RPC 2.0: POST a request object or a batch\n"
        peer = peer_of(request.channel)  # (the channel keeps its peer's address: core/twisted_web.py)
        body = request.content.read() if request.content else b""
        self.rpc.wire.received(peer, body)
        reply = self.rpc.endpoint.handle(body, peer, "http")
        if reply.delay <= 0:
            return self._write(request, peer, reply.body, finish=False)
        request_open = [True]
        request.notifyFinish().addBoth(lambda _: request_open.__setitem__(0, False))
        self.rpc.answer_later(reply, lambda body: self._write(request, peer, body, finish=True), lambda: request_open[0])
        return server.NOT_DONE_YET

    def _write(self, request: Any, peer: str, body: bytes | None, finish: bool) -> Any:
        if body is None:
            request.setResponseCode(204)  # only notifications: nothing to answer
            body = b""
        else:
            request.setHeader(b"Content-Type", b"application/json")
            self.rpc.wire.sent(peer, body)
        if not finish:
            return body
        request.setHeader(b"Content-Length", str(len(body)).encode())
        request.write(body)
        request.finish()
        return None


class RpcLineProtocol(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE
    transport: Any

    def __init__(self, rpc: JsonRpcServer):
        self.rpc = rpc
        self.peer = ""
        self.open = False

    def connectionMade(self) -> None:
        self.peer = peer_of(self.transport)
        self.open = True
        self.rpc.record("connect", self.peer, transport="tcp")

    def connectionLost(self, reason: Any = None) -> None:
        self.open = False
        self.rpc.record("disconnect", self.peer, transport="tcp")

    def lineReceived(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if not line.strip():
            return  # blank lines between messages are allowed
        self.rpc.wire.received(self.peer, line)
        reply = self.rpc.endpoint.handle(line, self.peer, "tcp")
        self.rpc.answer_later(reply, self._send, lambda: self.open)

    def _send(self, body: bytes | None) -> None:
        if body is not None and self.open:
            self.rpc.wire.sent(self.peer, body)
            self.transport.write(body + b"\n")

    def lineLengthExceeded(self, line: bytes) -> Any:
        self._send(json.dumps({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}).encode())
        self.transport.loseConnection()


class RpcLineFactory(protocol.Factory):
    noisy = False

    def __init__(self, rpc: JsonRpcServer):
        self.rpc = rpc

    def buildProtocol(self, addr: Any) -> RpcLineProtocol:
        return RpcLineProtocol(self.rpc)

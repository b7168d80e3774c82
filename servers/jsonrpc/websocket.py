"""JSON-RPC over WebSocket (RFC 6455) at ``/ws`` of the HTTP port, on autobahn's Twisted resource.

Each text or binary message is one JSON-RPC message, each reply one text message;
notifications get none. The subprotocol ``jsonrpc`` is accepted when a client offers it.

Imported at the first ``/ws`` request, not with the server: importing autobahn's Twisted
package (WAMP included) was a fifth of `refservers up`'s start-up (issue 16), and most
runs never open a WebSocket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

from ..core.loop import twisted_reactor
from ..core.twisted_listen import peer_of

if TYPE_CHECKING:
    from .server import JsonRpcServer

WEBSOCKET_SUBPROTOCOL = "jsonrpc"


def websocket_resource(rpc: JsonRpcServer) -> WebSocketResource:
    """The resource that upgrades a request to a JSON-RPC WebSocket of ``rpc``."""
    return WebSocketResource(RpcWebSocketFactory(rpc))


class RpcWebSocketProtocol(WebSocketServerProtocol):
    """One WebSocket connection: a message in, the reply message out.

    Names are chosen not to shadow autobahn's own attributes (``peer``, ``_send``, ``is_open``).
    """

    factory: RpcWebSocketFactory
    client = ""
    answering = False  # not is_open: autobahn uses that name for a Future

    def onConnect(self, request: Any) -> str | None:
        self.client = peer_of(self.transport)
        return WEBSOCKET_SUBPROTOCOL if WEBSOCKET_SUBPROTOCOL in request.protocols else None

    def onOpen(self) -> None:
        self.answering = True
        self.factory.rpc.record("connect", self.client, transport="ws")

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.answering:
            self.answering = False
            self.factory.rpc.record("disconnect", self.client, transport="ws", code=code)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        rpc = self.factory.rpc
        rpc.wire.received(self.client, payload)
        reply = rpc.endpoint.handle(payload, self.client, "ws")
        rpc.answer_later(reply, self._reply, lambda: self.answering)

    def _reply(self, body: bytes | None) -> None:
        if body is not None and self.answering:
            self.factory.rpc.wire.sent(self.client, body)
            self.sendMessage(body, isBinary=False)


class RpcWebSocketFactory(WebSocketServerFactory):
    protocol = RpcWebSocketProtocol  # type: ignore[assignment]  # autobahn and Twisted type this differently

    def __init__(self, rpc: JsonRpcServer):
        super().__init__(reactor=twisted_reactor())
        # A plain GET is refused (426 Upgrade Required) instead of autobahn's HTML status page.
        self.setProtocolOptions(webStatus=False)
        self.rpc = rpc

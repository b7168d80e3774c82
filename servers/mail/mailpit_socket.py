"""The WebSocket side of Mailpit's ``/api/events`` (mailpit_events.py holds the hub).

Imported at the first upgrade request, not when the admin API starts: importing
autobahn's Twisted package was a fifth of `refservers up`'s start-up (issue 16).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

from ..core.loop import twisted_reactor

if TYPE_CHECKING:
    from .mailpit_events import MailpitEvents

PING_SECONDS = 54.0  # websockets/client.go: pingPeriod = 60s * 9/10


def events_resource(events: MailpitEvents) -> WebSocketResource:
    """The resource that upgrades a request to a client of ``events``."""
    return WebSocketResource(EventsFactory(events))


class EventsProtocol(WebSocketServerProtocol):
    factory: EventsFactory

    def onOpen(self) -> None:
        self.factory.events.joined(self)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.events.left(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        pass  # Mailpit's reader only keeps the connection alive


class EventsFactory(WebSocketServerFactory):
    protocol = EventsProtocol  # type: ignore[assignment]  # autobahn and Twisted type this differently

    def __init__(self, events: MailpitEvents):
        super().__init__(reactor=twisted_reactor())
        # Mailpit accepts any Origin (its upgrader's CheckOrigin returns true); the admin
        # route table is where a Host/Origin policy applies, before the upgrade.
        self.setProtocolOptions(webStatus=False, autoPingInterval=PING_SECONDS, autoPingTimeout=PING_SECONDS)
        self.events = events

"""The socket room's services: a TCP protocol and a UDP reply function per service,
and the declarative table :data:`SERVICES` that pairs them with the option holding
their port (server.py binds each row on TCP and UDP). What each service answers is the
table in server.py's docstring (RFC 862 echo, RFC 863 discard, RFC 867 daytime, and the
exercises' timestamp and greeting); the fault rules are carried out here, at each
connect, chunk and datagram.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet import interfaces, protocol
from zope.interface import implementer

from ..core.loop import twisted_reactor
from ..core.twisted_listen import peer_of

if TYPE_CHECKING:
    from .server import SocketServers

# Datagrams larger than this are truncated by recvfrom; 65507 is the IPv4 UDP maximum.
MAX_DATAGRAM = 65507


def daytime_text() -> str:
    """RFC 867 leaves the format free; this is the common "weekday, month day, year time-zone"."""
    return time.strftime("%A, %B %d, %Y %H:%M:%S-UTC", time.gmtime())


def timestamped(data: bytes) -> bytes:
    return b"[" + time.ctime().encode() + b"] " + data


# -- TCP protocols ---------------------------------------------------------------------


@implementer(interfaces.IHalfCloseableProtocol)
class ServiceProtocol(protocol.Protocol):
    """Common bookkeeping: journal the connection and count the bytes both ways.

    Half-closeable: a client that sends its data and then shuts down its side
    (``nc -N``, ``shutdown(SHUT_WR)``) still gets every reply before we close; without
    this Twisted would drop the connection, and unsent echo data, on the client's FIN.
    """

    service = ""
    transport: Any  # the connection (Twisted types it as a bare ITransport)

    def __init__(self, server: SocketServers):
        self.server = server
        self.peer = ""
        self.bytes_in = self.bytes_out = 0
        self.held = False  # a delay fault holds the connection: nothing is read meanwhile
        self.close_when_released = False
        self.lost = False

    def connectionMade(self) -> None:
        self.peer = peer_of(self.transport)
        self.server.record("connect", self.peer, service=self.service, transport="tcp")
        self._unless_faulted("connect", self.started)

    def connectionLost(self, reason: Any = None) -> None:
        self.lost = True
        self.server.record(
            "disconnect", self.peer, service=self.service, bytes_in=self.bytes_in, bytes_out=self.bytes_out
        )

    def dataReceived(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self.server.wire.received(self.peer, data)
        self._unless_faulted("data", lambda: self.received(data))

    def _unless_faulted(self, step: str, handle: Callable[[], None]) -> None:
        """Run ``handle`` now, later (delay), or never (drop, disconnect), as a fault rule says."""
        rule = self.server.core.faults.check(self.server.name, f"{self.service} {step}", self.peer)
        if rule is None:
            handle()
        elif rule.action == "delay":
            self.held = True
            self.transport.pauseProducing()
            twisted_reactor().callLater(rule.params["seconds"], self._release, handle)
        elif rule.action == "drop" and step == "data":
            pass  # the chunk is thrown away; the connection goes on
        else:  # disconnect, or drop at connect: a reset, no goodbye
            self.transport.abortConnection()

    def _release(self, handle: Callable[[], None]) -> None:
        self.held = False
        if self.lost:
            return
        self.transport.resumeProducing()
        handle()
        if self.close_when_released:
            self.close()

    def send(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.server.wire.sent(self.peer, data)
        self.transport.write(data)

    def close(self) -> None:
        self.transport.loseConnection()

    def readConnectionLost(self) -> None:
        if self.held:  # the client half-closed while a delay fault holds its data: answer it first
            self.close_when_released = True
            return
        self.close()  # after the replies already queued have been written

    def writeConnectionLost(self) -> None:
        pass

    # Hooks for the services: override only what the service needs.
    def started(self) -> None:
        pass

    def received(self, data: bytes) -> None:
        pass


class EchoProtocol(ServiceProtocol):
    service = "echo"

    def received(self, data: bytes) -> None:
        self.send(data)


class DiscardProtocol(ServiceProtocol):
    service = "discard"


class DaytimeProtocol(ServiceProtocol):
    service = "daytime"

    def started(self) -> None:
        self.send(daytime_text().encode() + b"\r\n")
        self.close()


class TimestampProtocol(ServiceProtocol):
    service = "timestamp"

    def received(self, data: bytes) -> None:
        for piece in data.splitlines(keepends=True):
            self.send(timestamped(piece))


class GreetingProtocol(ServiceProtocol):
    service = "greeting"

    def started(self) -> None:
        self.send(self.server.settings.greeting.encode() + b"\r\n")
        self.close()


# -- UDP: one reply function per service (None: no reply) -------------------------------


def echo_reply(server: SocketServers, data: bytes) -> bytes | None:
    return data


def discard_reply(server: SocketServers, data: bytes) -> bytes | None:
    return None


def daytime_reply(server: SocketServers, data: bytes) -> bytes | None:
    return daytime_text().encode() + b"\r\n"


def timestamp_reply(server: SocketServers, data: bytes) -> bytes | None:
    return timestamped(data)


def greeting_reply(server: SocketServers, data: bytes) -> bytes | None:
    return server.settings.greeting.encode() + b"\r\n"


class DatagramService(protocol.DatagramProtocol):
    noisy = False  # no "starting on port" log lines for each UDP listener
    transport: Any  # a UDP port (Twisted types it as the generic ITransport)

    def __init__(self, server: SocketServers, service: str, reply: Callable[[SocketServers, bytes], bytes | None]):
        self.server = server
        self.service = service
        self.reply = reply

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        peer = f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"
        self.server.wire.received(peer, data)
        rule = self.server.core.faults.check(self.server.name, f"{self.service} datagram", peer)
        if rule is None:
            self._answer(data, addr, peer)
        elif rule.action == "delay":
            twisted_reactor().callLater(rule.params["seconds"], self._answer, data, addr, peer)
        else:  # drop, or disconnect (UDP has no connection to drop): no reply
            self.server.record("datagram", peer, service=self.service, bytes=len(data), replied=False)

    def _answer(self, data: bytes, addr: Any, peer: str) -> None:
        if self.transport is None:  # stopped while a delay fault held this datagram
            return
        answer = self.reply(self.server, data)
        if answer is not None:
            self.server.wire.sent(peer, answer)
            self.transport.write(answer[:MAX_DATAGRAM], addr)
        # Journalled after the reply went out, so a test that saw this event knows
        # whether a reply exists without waiting for one.
        self.server.record("datagram", peer, service=self.service, bytes=len(data), replied=answer is not None)


@dataclass(frozen=True)
class Service:
    name: str
    port_option: str
    tcp: type[ServiceProtocol]
    udp_reply: Callable[[SocketServers, bytes], bytes | None]


SERVICES = (
    Service("echo", "echo_port", EchoProtocol, echo_reply),
    Service("discard", "discard_port", DiscardProtocol, discard_reply),
    Service("daytime", "daytime_port", DaytimeProtocol, daytime_reply),
    Service("timestamp", "timestamp_port", TimestampProtocol, timestamp_reply),
    Service("greeting", "greeting_port", GreetingProtocol, greeting_reply),
)


class ServiceFactory(protocol.ServerFactory):
    noisy = False

    def __init__(self, server: SocketServers, tcp: type[ServiceProtocol]):
        self.server = server
        self.tcp = tcp

    def buildProtocol(self, addr: Any) -> ServiceProtocol:
        built = self.tcp(self.server)
        built.factory = self
        return built

"""SocketServers: the classic small TCP and UDP services, each on one port for both.

The targets of every introductory socket-programming exercise, on unprivileged
ports (the standard ones are below 1024):

=========  ============  ======  =========================================================
service    RFC           port    behaviour (TCP / UDP)
=========  ============  ======  =========================================================
echo       RFC 862       7007    sends back every byte / every datagram
discard    RFC 863       9009    reads and throws away / ignores datagrams
daytime    RFC 867       1313    sends the date and time, then closes / answers any datagram
timestamp  (exercise)    5007    answers ``data`` with ``[<ctime>] data``
greeting   (exercise)    5008    sends one line ("Thank you for connecting"), then closes /
                                 answers any datagram with it
=========  ============  ======  =========================================================

Timestamp over TCP answers each line as it completes (keeping its line end) and
also answers a received chunk that has no line end at all, so the textbook client
that sends ``b"hello"`` and waits for the reply is served too. Over UDP each
datagram is one ``data``.

The services are a declarative table (:data:`SERVICES`): a TCP protocol class, a
UDP reply function, and the option holding the port. Both go through the core's
:meth:`TwistedServer.listen` and :meth:`TwistedServer.listen_udp`, so stop() aborts
open connections and frees the UDP ports too. Listener names: ``echo`` (the main one, TCP), ``echo_udp``,
``discard``, ``discard_udp``... Journal: ``connect`` and ``disconnect`` (service,
bytes in and out) per TCP connection, ``datagram`` (service, bytes, replied) per
UDP datagram.

Fault rules (``[[faults]] server = "sockets"``) match ``<service> connect`` when a TCP
client connects, ``<service> data`` for each chunk a TCP client sends and
``<service> datagram`` for each UDP datagram (so ``echo *`` is every echo event,
``* datagram`` all of UDP). Actions: ``delay`` (``params.seconds``, default 1) holds
that step, reading nothing meanwhile so order is kept; ``drop`` throws the chunk or
datagram away unanswered (at connect it closes at once); ``disconnect`` aborts the TCP
connection with a reset (for a datagram it is a drop: UDP has no connection).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import interfaces, protocol
from zope.interface import implementer

from .core.config import PORT, STR, Option
from .core.faults import DELAY, DISCONNECT, FaultAction
from .core.lifecycle import ProbeError, retry_until
from .core.loop import twisted_reactor
from .core.twisted_listen import TwistedServer, peer_of

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


class SocketServers(TwistedServer):
    name = "sockets"
    description = "TCP and UDP echo, discard, daytime (RFC 862/863/867), timestamp and greeting services"
    scheme = "tcp"
    fault_subject = '"SERVICE connect", "SERVICE data" (TCP) or "SERVICE datagram" (UDP), e.g. "echo data"'
    fault_actions = {
        "delay": DELAY,
        "drop": FaultAction("throw the data chunk or datagram away (at connect: a reset)"),
        "disconnect": DISCONNECT,
    }
    options = (
        Option("echo_port", PORT, 7007, "echo (RFC 862), TCP and UDP"),
        Option("discard_port", PORT, 9009, "discard (RFC 863), TCP and UDP"),
        Option("daytime_port", PORT, 1313, "daytime (RFC 867), TCP and UDP"),
        Option("timestamp_port", PORT, 5007, "timestamp: `data` answered with `[<ctime>] data`, TCP and UDP"),
        Option("greeting_port", PORT, 5008, "greeting line then close (TCP), or as the reply to any datagram (UDP)"),
        Option("greeting", STR, "Thank you for connecting", "the greeting service's line"),
    )

    def _bind(self) -> None:
        for service in SERVICES:
            port = getattr(self.settings, service.port_option)
            self.listen(service.name, ServiceFactory(self, service.tcp), port)
            self.listen_udp(
                f"{service.name}_udp", DatagramService(self, service.name, service.udp_reply), port, MAX_DATAGRAM
            )

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        """One TCP echo round trip on the main (echo) port."""
        payload = b"refservers probe\r\n"

        def attempt(remaining: float) -> str:
            try:
                with socket.create_connection((host, port), timeout=remaining) as sock:
                    sock.sendall(payload)
                    echoed = b""
                    while len(echoed) < len(payload):
                        chunk = sock.recv(len(payload) - len(echoed))
                        if not chunk:
                            break
                        echoed += chunk
            except ConnectionRefusedError:
                raise
            except OSError as error:
                raise ProbeError(f"{host}:{port}: {error}") from None
            if echoed != payload:
                raise ProbeError(f"{host}:{port}: echo returned {echoed!r}")
            return "echo ok"

        return retry_until(timeout, attempt)

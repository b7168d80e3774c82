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

The services are a declarative table (services.py's :data:`SERVICES`): a TCP protocol class, a
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

from ..core.config import PORT, STR, Option
from ..core.faults import DELAY, DISCONNECT, FaultAction
from ..core.lifecycle import ProbeError, retry_until
from ..core.twisted_listen import TwistedServer
from .services import MAX_DATAGRAM, SERVICES, DatagramService, ServiceFactory


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

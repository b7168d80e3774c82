"""DnsServer: an authoritative DNS server (RFC 1034/1035) for zones given in config.

Owned here: the server's options, the UDP transport and its truncation (RFC 1035
4.2.1, with the EDNS0 payload size of RFC 6891), the TCP transport with its two-byte
length prefix (RFC 7766), the fault rules and the journal. The zone book and answering
one query (authoritative data, CNAME chasing inside our zones, NXDOMAIN/NODATA with
the SOA, REFUSED outside our zones) are zones.py's, pure. Messages are built and parsed
with dnslib.

Zones config (``[dns] zones``): a table of zone name -> list of records in master
file syntax (RFC 1035 section 5), names relative to the zone unless they end in a dot::

    [dns.zones]
    "example.org" = [
      "@ SOA ns1 hostmaster 1 7200 3600 1209600 300",   # optional: synthesized if absent
      "@ NS ns1",
      "www 60 A 127.0.0.1",
      "_http._tcp SRV 10 5 8080 www.example.org.",     # SRV targets: write them absolute
    ]

In the environment the same table is JSON: ``REFSERVERS_DNS_ZONES='{"example.org": ["www A 127.0.0.1"]}'``.
Unless ``default_zones = false`` the built-in ``example.test`` (every record type)
and its reverse zone ``127.in-addr.arpa`` (PTR) are served too.

Fault actions (``[[faults]] server = "dns"``, ``match`` a glob on the query name
without the final dot): ``servfail``, ``nxdomain``, ``delay`` (``params.seconds``,
capped by ``delay_max``), ``drop`` (no answer at all). Journal: one ``query`` event
per question (name, type, transport, rcode, answers, truncated).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dnslib import EDNS0, QTYPE, RCODE, DNSError, DNSHeader, DNSRecord
from twisted.internet import protocol
from twisted.protocols.basic import Int16StringReceiver

from ..core.config import BOOL, FLOAT, PORT, ConfigError, Option, int_range
from ..core.faults import DELAY, FaultAction
from ..core.lifecycle import BindError, ProbeError, retry_until
from ..core.loop import twisted_reactor
from ..core.twisted_listen import TwistedServer, peer_of
from .zones import DEFAULT_TTL, DEFAULT_ZONES, ZONES, Resolver, ZoneBook, parse_zone

UDP_PLAIN_LIMIT = 512  # RFC 1035 4.2.1: without EDNS0 a UDP answer is at most 512 bytes
UDP_EDNS_LIMIT = 4096  # what we advertise and the most we send over UDP whatever the client says
SAME_PORT_ATTEMPTS = 20  # tries to find one free number for UDP and TCP when port = 0


@dataclass(frozen=True)
class Outcome:
    """What answering one message produced: the wire bytes (None: say nothing) and a summary."""

    data: bytes | None
    details: dict[str, Any]
    delay: float = 0.0


def edns_payload_size(request: DNSRecord) -> int | None:
    """The UDP payload size the client advertised in its OPT record, or None without EDNS0."""
    for record in request.ar:
        if record.rtype == QTYPE.OPT:
            return int(record.rclass)
    return None


class DnsServer(TwistedServer):
    name = "dns"
    description = "authoritative DNS over UDP and TCP for zones in config (example.test built in)"
    scheme = "dns"
    options = (
        Option("port", PORT, 1053, "UDP and TCP port (the TCP one is bound on the same number)"),
        Option("tcp_port", PORT, 0, "TCP port if different from port (0: the same as port)"),
        Option("zones", ZONES, {}, "zones: zone name -> records in zone-file syntax"),
        Option("default_zones", BOOL, True, "also serve the built-in example.test and 127.in-addr.arpa"),
        Option("default_ttl", int_range(0, 2**31 - 1), DEFAULT_TTL, "TTL in seconds of records that give none"),
        Option("delay_max", FLOAT, 10.0, "cap in seconds for the delay fault"),
    )
    fault_subject = 'the query name, lower case, without the final dot ("www.example.test")'
    fault_actions = {
        "servfail": FaultAction("answer SERVFAIL"),
        "nxdomain": FaultAction("answer NXDOMAIN"),
        "delay": DELAY,  # capped by delay_max
        "drop": FaultAction("send no answer"),
    }
    test_settings = {"delay_max": "2"}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        sources = dict(DEFAULT_ZONES) if self.settings.default_zones else {}
        sources.update(self.settings.zones)
        if not sources:
            raise ConfigError("[dns] zones: no zones to serve (zones is empty and default_zones = false)")
        self.resolver = Resolver(
            ZoneBook([parse_zone(name, lines, self.settings.default_ttl) for name, lines in sources.items()])
        )

    # -- one message in, one outcome out --------------------------------------------
    def handle(self, data: bytes, peer: str, transport: str) -> Outcome:
        self.wire.received(peer, f"{len(data)} bytes")
        try:
            return self._handle(data, peer, transport)
        except Exception:  # noqa: BLE001 - a bug answering one query must not stop the server
            self.log.exception("error answering a query from %s", peer)
            if len(data) < 12:
                return Outcome(None, {})
            header = DNSHeader(id=struct.unpack("!H", data[:2])[0], qr=1, rcode=RCODE.SERVFAIL)
            return Outcome(DNSRecord(header).pack(), {"rcode": "SERVFAIL"})

    def _handle(self, data: bytes, peer: str, transport: str) -> Outcome:
        try:
            request = DNSRecord.parse(data)
        except (DNSError, struct.error, IndexError, ValueError, UnicodeDecodeError) as error:
            return self._malformed(data, peer, transport, error)
        question = request.questions[0] if request.questions else None
        name = str(question.qname).rstrip(".") if question else ""
        details: dict[str, Any] = {
            "name": name,
            "type": QTYPE.get(question.qtype, str(question.qtype)) if question else None,
            "transport": transport,
        }
        rule = self.core.faults.check(self.name, name.lower(), peer) if question else None
        if rule is not None and rule.action == "drop":
            self.record("query", peer, **details, rcode=None, fault="drop")
            return Outcome(None, details)
        reply = self.resolver.answer(request)
        delay = 0.0
        if rule is not None:
            details["fault"] = rule.action
            if rule.action in ("servfail", "nxdomain"):
                reply = DNSRecord(DNSHeader(id=request.header.id, qr=1, rd=request.header.rd))
                reply.add_question(*request.questions)
                reply.header.rcode = RCODE.SERVFAIL if rule.action == "servfail" else RCODE.NXDOMAIN
            elif rule.action == "delay":
                delay = min(rule.params["seconds"], self.settings.delay_max)
        advertised = edns_payload_size(request)
        if advertised is not None:
            reply.add_ar(EDNS0(udp_len=UDP_EDNS_LIMIT))
        wire = reply.pack()
        limit = UDP_PLAIN_LIMIT if advertised is None else max(UDP_PLAIN_LIMIT, min(advertised, UDP_EDNS_LIMIT))
        truncated = transport == "udp" and len(wire) > limit
        if truncated:
            # RFC 2181 9: set TC and send what fits; we send the question only, and the
            # client retries over TCP (dig, dnspython and stub resolvers all do).
            short = DNSRecord(DNSHeader(id=reply.header.id, qr=1, aa=reply.header.aa, tc=1, rd=reply.header.rd))
            short.add_question(*request.questions)
            if advertised is not None:
                short.add_ar(EDNS0(udp_len=UDP_EDNS_LIMIT))
            wire = short.pack()
        details.update(
            rcode=RCODE.get(reply.header.rcode),
            answers=len(reply.rr),
            truncated=truncated,
        )
        self.record("query", peer, **details)
        self.wire.sent(peer, f"{RCODE.get(reply.header.rcode)} {len(reply.rr)} answers, {len(wire)} bytes")
        return Outcome(wire, details, delay)

    def _malformed(self, data: bytes, peer: str, transport: str, error: Exception) -> Outcome:
        self.record("query", peer, transport=transport, rcode="FORMERR", error=str(error) or type(error).__name__)
        if len(data) < 12:
            return Outcome(None, {})  # not even a header: nothing to answer to
        # FORMERR with the client's id, so it stops waiting (RFC 1035 4.1.1).
        header = DNSHeader(id=struct.unpack("!H", data[:2])[0], qr=1, rcode=RCODE.FORMERR)
        return Outcome(DNSRecord(header).pack(), {})

    def send_later(self, outcome: Outcome, send: Callable[[bytes], None]) -> None:
        if outcome.data is None:
            return
        data = outcome.data
        if outcome.delay > 0:
            twisted_reactor().callLater(outcome.delay, send, data)
        else:
            send(data)

    # -- listeners ----------------------------------------------------------------------
    def _bind(self) -> None:
        if self.settings.tcp_port or self.settings.port:
            udp_port = self.listen_udp("main", DnsDatagram(self), self.settings.port)
            self.listen("tcp", DnsStreamFactory(self), self.settings.tcp_port or udp_port)
            return
        # Port 0: clients retry a truncated answer over TCP on the *same* port number
        # (dig, resolvers), so find a number free for both.
        for _ in range(SAME_PORT_ATTEMPTS):
            udp_port = self.listen_udp("main", DnsDatagram(self), 0)
            try:
                self.listen("tcp", DnsStreamFactory(self), udp_port)
                return
            except BindError:
                self.close_udp()
                self.listeners.pop("main", None)
        raise BindError(f"{self.name}: no port number free for both UDP and TCP on {self.host}")

    @property
    def tcp_port(self) -> int:
        return self.listeners["tcp"]

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        """Ask the main (UDP) port for the SOA of example.test; any well-formed answer counts."""
        query = DNSRecord.question("example.test", "SOA")

        def attempt(remaining: float) -> str:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(remaining)
                try:
                    sock.connect((host, port))
                    sock.send(query.pack())
                    data = sock.recv(65535)
                except ConnectionRefusedError:
                    raise
                except OSError as error:
                    raise ProbeError(f"{host}:{port}: {error}") from None
            try:
                reply = DNSRecord.parse(data)
            except DNSError as error:
                raise ProbeError(f"{host}:{port}: not a DNS answer: {error}") from None
            if reply.header.id != query.header.id:
                raise ProbeError(f"{host}:{port}: answer with the wrong id")
            return f"DNS {RCODE.get(reply.header.rcode)}"

        return retry_until(timeout, attempt)


class DnsDatagram(protocol.DatagramProtocol):
    noisy = False  # no "starting on port" log lines for each UDP listener
    transport: Any

    def __init__(self, server: DnsServer):
        self.server = server

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        peer = f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"
        outcome = self.server.handle(data, peer, "udp")
        self.server.send_later(outcome, lambda wire: self._send(wire, addr))

    def _send(self, wire: bytes, addr: Any) -> None:
        if self.transport is not None:  # stopped while a delayed answer waited
            self.transport.write(wire, addr)


class DnsStream(Int16StringReceiver):
    """DNS over TCP: each message prefixed by its two-byte length, several per connection."""

    transport: Any
    MAX_LENGTH = 65535

    def __init__(self, server: DnsServer):
        self.server = server
        self.peer = ""

    def connectionMade(self) -> None:
        self.peer = peer_of(self.transport)
        self.server.record("connect", self.peer, transport="tcp")

    def stringReceived(self, data: bytes) -> None:
        outcome = self.server.handle(data, self.peer, "tcp")
        if outcome.data is None and outcome.details.get("name") is None:
            self.transport.loseConnection()  # garbage we cannot even answer: hang up
            return
        self.server.send_later(outcome, self._send)

    def _send(self, wire: bytes) -> None:
        if self.transport is not None and self.transport.connected:
            self.sendString(wire)


class DnsStreamFactory(protocol.ServerFactory):
    noisy = False

    def __init__(self, server: DnsServer):
        self.server = server

    def buildProtocol(self, addr: Any) -> DnsStream:
        stream = DnsStream(self.server)
        stream.factory = self
        return stream

"""The DNS room's zone book and resolver: pure, no sockets and no clock (server.py
puts the transports, truncation and fault rules around them).

Owned here: the ``[dns] zones`` option's kind and the built-in zones, parsing a zone
from master file lines (RFC 1035 section 5), picking the closest enclosing zone, and
answering one message as an authoritative server that does not recurse (RFC 1034 4.3.2):
authoritative data, CNAME chasing inside our zones (RFC 1034 3.6.2), NXDOMAIN/NODATA
with the SOA, REFUSED outside our zones, glue for MX/NS/SRV targets we know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dnslib import CLASS, QTYPE, RCODE, RR, DNSHeader, DNSLabel, DNSRecord

from ..core.config import ConfigError, Kind

DEFAULT_TTL = 300
CLASS_ANY = 255  # QCLASS "*" (RFC 1035 3.2.5); dnslib's CLASS table has no attribute name for it

DEFAULT_ZONES: dict[str, list[str]] = {
    "example.test": [
        "@ SOA ns1 hostmaster 2024010101 7200 3600 1209600 300",
        "@ NS ns1",
        "@ A 127.0.0.1",
        "@ AAAA ::1",
        "@ MX 10 mail",
        "@ MX 20 mail2",
        '@ TXT "v=spf1 ip4:127.0.0.0/8 -all"',
        "ns1 A 127.0.0.1",
        "www A 127.0.0.10",
        "www AAAA ::1",
        "mail A 127.0.0.25",
        "mail2 A 127.0.0.26",
        "ftp CNAME www",
        "alias CNAME ftp",  # a chain: alias -> ftp -> www
        "external CNAME example.invalid.",  # points outside our zones
        "sip A 127.0.0.53",
        "_sip._tcp SRV 10 60 5060 sip.example.test.",
        '_dmarc TXT "v=DMARC1; p=none"',
        # 20 strings of 100 bytes: too big for 512 bytes or a 1232-byte EDNS buffer, so
        # dig gets TC=1 over UDP and retries over TCP.
        *(f'big TXT "{index:02d}{"x" * 98}"' for index in range(20)),
    ],
    "127.in-addr.arpa": [
        "@ SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300",
        "@ NS ns1.example.test.",
        "1.0.0 PTR example.test.",
        "10.0.0 PTR www.example.test.",
        "25.0.0 PTR mail.example.test.",
    ],
}


def _zones_value(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ValueError
    for name, records in value.items():
        if not isinstance(records, list) or not all(isinstance(record, str) for record in records):
            raise ValueError
        if not name.strip(". "):
            raise ValueError
    return {name: list(records) for name, records in value.items()}


ZONES = Kind(
    'a table of zone name = ["record", ...] in zone-file syntax (JSON in text)',
    _zones_value,
    lambda text: _zones_value(json.loads(text)),
)


@dataclass
class Zone:
    """One zone: its origin, its SOA and every record, looked up by name."""

    origin: DNSLabel
    soa: RR
    records: dict[DNSLabel, list[RR]] = field(default_factory=dict)

    def has_name(self, name: DNSLabel) -> bool:
        """True if ``name`` owns records or is an empty non-terminal (has names below it)."""
        return name in self.records or any(other.matchSuffix(name) for other in self.records)


def parse_zone(origin_text: str, lines: list[str], default_ttl: int) -> Zone:
    """Build a :class:`Zone`; raises ConfigError with one line naming the bad record."""
    origin = DNSLabel(origin_text.rstrip(".") + ".")
    where = f"[dns] zones: {origin_text}"
    zone_records: dict[DNSLabel, list[RR]] = {}
    soa: RR | None = None
    for line in lines:
        try:
            parsed = RR.fromZone(line, origin=str(origin), ttl=default_ttl)
        except Exception as error:  # noqa: BLE001 - dnslib raises many kinds; all mean "bad record"
            raise ConfigError(f"{where}: cannot parse record {line!r}: {error or type(error).__name__}") from None
        if not parsed:
            raise ConfigError(f"{where}: cannot parse record {line!r}: empty")
        for record in parsed:
            if not record.rname.matchSuffix(origin):
                raise ConfigError(f"{where}: record {line!r} is outside the zone")
            if record.rtype == QTYPE.SOA:
                if soa is not None:
                    raise ConfigError(f"{where}: more than one SOA record")
                if record.rname != origin:
                    raise ConfigError(f"{where}: the SOA record must be at the zone apex (@)")
                soa = record
            zone_records.setdefault(record.rname, []).append(record)
    if soa is None:
        soa = RR.fromZone(f"@ SOA ns1 hostmaster 1 7200 3600 1209600 {default_ttl}", origin=str(origin), ttl=default_ttl)[0]
        zone_records.setdefault(origin, []).insert(0, soa)
    return Zone(origin, soa, zone_records)


class ZoneBook:
    """Every zone we are authoritative for; ``find`` picks the closest enclosing one."""

    def __init__(self, zones: list[Zone]):
        self.zones = zones

    def find(self, name: DNSLabel) -> Zone | None:
        candidates = [zone for zone in self.zones if name.matchSuffix(zone.origin)]
        return max(candidates, key=lambda zone: len(zone.origin.label), default=None)


class Resolver:
    """Answers one DNS message from the zone book (pure: no sockets, no clock)."""

    def __init__(self, book: ZoneBook):
        self.book = book

    def answer(self, request: DNSRecord) -> DNSRecord:
        reply = DNSRecord(DNSHeader(id=request.header.id, qr=1, opcode=request.header.opcode, rd=request.header.rd))
        for question in request.questions:
            reply.add_question(question)
        if request.header.opcode != 0:  # only QUERY
            reply.header.rcode = RCODE.NOTIMP
            return reply
        if len(request.questions) != 1:
            reply.header.rcode = RCODE.FORMERR
            return reply
        question = request.questions[0]
        if question.qclass not in (CLASS.IN, CLASS_ANY):
            reply.header.rcode = RCODE.REFUSED
            return reply
        zone = self.book.find(question.qname)
        if zone is None:
            reply.header.rcode = RCODE.REFUSED  # not authoritative, and we do not recurse
            return reply
        reply.header.aa = 1
        self._resolve(reply, zone, question.qname, question.qtype, chased=set())
        return reply

    def _resolve(self, reply: DNSRecord, zone: Zone, name: DNSLabel, qtype: int, chased: set[DNSLabel]) -> None:
        records = zone.records.get(name, [])
        cnames = [r for r in records if r.rtype == QTYPE.CNAME]
        if cnames and qtype not in (QTYPE.CNAME, QTYPE.ANY):
            # RFC 1034 3.6.2: answer the CNAME, then the target if we are authoritative for it.
            reply.add_answer(*cnames)
            target = cnames[0].rdata.label
            target_zone = self.book.find(target)
            if target_zone is not None and target not in chased:
                chased.add(name)
                self._resolve(reply, target_zone, target, qtype, chased)
            return
        matching = [r for r in records if qtype == QTYPE.ANY or r.rtype == qtype]
        if matching:
            reply.add_answer(*matching)
            self._add_glue(reply, matching)
            return
        if not reply.rr:  # nothing found at the first name: NXDOMAIN or NODATA
            if not zone.has_name(name):
                reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(zone.soa)

    def _add_glue(self, reply: DNSRecord, answers: list[RR]) -> None:
        """Addresses of MX/NS/SRV targets we know, in the additional section."""
        for record in answers:
            if record.rtype == QTYPE.MX:
                target = record.rdata.label
            elif record.rtype == QTYPE.NS:
                target = record.rdata.label
            elif record.rtype == QTYPE.SRV:
                target = record.rdata.target
            else:
                continue
            zone = self.book.find(target)
            if zone is None:
                continue
            for extra in zone.records.get(target, []):
                if extra.rtype in (QTYPE.A, QTYPE.AAAA) and extra not in reply.ar:
                    reply.add_ar(extra)

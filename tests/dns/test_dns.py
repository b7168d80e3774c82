"""DNS server (servers/dns/) driven by dig (bind9-dnsutils) and dnspython over UDP and TCP."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from collections.abc import Callable

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from servers.core import Core, Server
from servers.core.config import ConfigError, load_config
from servers.dns import DnsServer

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok

needs_dig = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (bind9-dnsutils) not installed")


def dig(server: Server, *args: str) -> str:
    completed = subprocess.run(
        ["dig", f"@{server.probe_host}", "-p", str(server.port), "+tries=1", "+time=5", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def dig_short(server: Server, *args: str) -> list[str]:
    return dig(server, "+short", *args).splitlines()


def status_of(output: str) -> str:
    return output.split("status: ", 1)[1].split(",", 1)[0]


@pytest.fixture
def resolver(refservers_dns: Server) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [refservers_dns.probe_host]
    resolver.port = refservers_dns.port
    resolver.lifetime = 10
    return resolver


# -- dig --------------------------------------------------------------------------------


@needs_dig
@pytest.mark.parametrize(
    ("name", "qtype", "expected"),
    [
        ("www.example.test", "A", ["127.0.0.10"]),
        ("www.example.test", "AAAA", ["::1"]),
        ("example.test", "MX", ["10 mail.example.test.", "20 mail2.example.test."]),
        ("example.test", "NS", ["ns1.example.test."]),
        ("example.test", "TXT", ['"v=spf1 ip4:127.0.0.0/8 -all"']),
        ("_sip._tcp.example.test", "SRV", ["10 60 5060 sip.example.test."]),
        ("ftp.example.test", "CNAME", ["www.example.test."]),
        ("example.test", "SOA", ["ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300"]),
    ],
)
def test_dig_each_record_type(refservers_dns: Server, name: str, qtype: str, expected: list[str]) -> None:
    assert sorted(dig_short(refservers_dns, name, qtype)) == expected


@needs_dig
def test_dig_reverse_lookup(refservers_dns: Server) -> None:
    assert dig_short(refservers_dns, "-x", "127.0.0.10") == ["www.example.test."]


@needs_dig
def test_dig_follows_a_cname_chain_inside_the_zone(refservers_dns: Server) -> None:
    output = dig(refservers_dns, "alias.example.test", "A")
    assert "flags: qr aa rd;" in output
    assert dig_short(refservers_dns, "alias.example.test", "A") == ["ftp.example.test.", "www.example.test.", "127.0.0.10"]


@needs_dig
def test_dig_mx_gets_the_exchange_addresses_as_additional(refservers_dns: Server) -> None:
    additional = dig(refservers_dns, "+noall", "+additional", "example.test", "MX")
    assert "mail.example.test.\t300\tIN\tA\t127.0.0.25" in additional
    assert "mail2.example.test.\t300\tIN\tA\t127.0.0.26" in additional


@needs_dig
def test_dig_over_tcp(refservers_dns: Server) -> None:
    assert dig_short(refservers_dns, "+tcp", "example.test", "MX") == ["10 mail.example.test.", "20 mail2.example.test."]
    event = refservers_dns.journal.wait_for(lambda e: e.details.get("transport") == "tcp", server="dns", kind="query")
    assert event.details["name"] == "example.test" and event.details["type"] == "MX"


@needs_dig
def test_truncated_answer_is_retried_over_tcp(refservers_dns: Server) -> None:
    output = dig(refservers_dns, "big.example.test", "TXT")
    assert ";; Truncated, retrying in TCP mode." in output
    assert "ANSWER: 20," in output
    queries = [e.details for e in refservers_dns.journal.events(server="dns", kind="query") if e.details.get("name") == "big.example.test"]
    assert [(q["transport"], q["truncated"]) for q in queries] == [("udp", True), ("tcp", False)]


@needs_dig
def test_truncation_without_edns_sets_tc_and_keeps_the_question(refservers_dns: Server) -> None:
    output = dig(refservers_dns, "+ignore", "+noedns", "big.example.test", "TXT")
    assert "flags: qr aa tc rd;" in output and "QUERY: 1, ANSWER: 0" in output


@needs_dig
def test_nxdomain_nodata_and_refused(refservers_dns: Server) -> None:
    missing = dig(refservers_dns, "nope.example.test", "A")
    assert status_of(missing) == "NXDOMAIN" and "AUTHORITY: 1" in missing  # the SOA, for negative caching
    assert status_of(dig(refservers_dns, "mail.example.test", "MX")) == "NOERROR"  # NODATA
    assert status_of(dig(refservers_dns, "_tcp.example.test", "A")) == "NOERROR"  # empty non-terminal
    outside = dig(refservers_dns, "www.python.org", "A")
    assert status_of(outside) == "REFUSED" and " aa" not in outside.split("flags:")[1].split(";")[0]


# -- dnspython ------------------------------------------------------------------------


def test_dnspython_resolver(resolver: dns.resolver.Resolver) -> None:
    assert [r.to_text() for r in resolver.resolve("www.example.test", "A")] == ["127.0.0.10"]
    mx = sorted((r.preference, r.exchange.to_text()) for r in resolver.resolve("example.test", "MX"))
    assert mx == [(10, "mail.example.test."), (20, "mail2.example.test.")]
    answer = resolver.resolve("alias.example.test", "A")
    assert answer.canonical_name.to_text() == "www.example.test."
    assert [r.to_text() for r in answer] == ["127.0.0.10"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("nope.example.test", "A")
    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve("mail.example.test", "MX")


def test_dnspython_resolver_handles_truncation(resolver: dns.resolver.Resolver) -> None:
    texts = sorted(r.to_text() for r in resolver.resolve("big.example.test", "TXT"))
    assert len(texts) == 20 and texts[0].startswith('"00xxx')


def test_dnspython_udp_then_tcp_by_hand(refservers_dns: Server) -> None:
    query = dns.message.make_query("big.example.test", "TXT", use_edns=False)
    truncated = dns.query.udp(query, refservers_dns.probe_host, port=refservers_dns.port, timeout=10)
    assert truncated.flags & dns.flags.TC and not truncated.answer
    full = dns.query.tcp(query, refservers_dns.probe_host, port=refservers_dns.listeners["tcp"], timeout=10)
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == 20


def test_several_queries_on_one_tcp_connection(refservers_dns: Server) -> None:
    names = ["www.example.test", "mail.example.test", "sip.example.test"]
    with socket.create_connection((refservers_dns.probe_host, refservers_dns.listeners["tcp"]), timeout=10) as sock:
        for name in names:
            wire = dns.message.make_query(name, "A").to_wire()
            sock.sendall(struct.pack("!H", len(wire)) + wire)
        stream = sock.makefile("rb")
        answers = []
        for _ in names:
            (length,) = struct.unpack("!H", stream.read(2))
            answers.append(dns.message.from_wire(stream.read(length)))
        stream.close()
    assert [a.answer[0][0].to_text() for a in answers] == ["127.0.0.10", "127.0.0.25", "127.0.0.53"]


def test_malformed_query_gets_formerr_and_service_continues(refservers_dns: Server, udp: socket.socket) -> None:
    address = (refservers_dns.probe_host, refservers_dns.port)
    udp.sendto(b"\x12\x34" + b"\xff" * 30, address)
    reply = udp.recv(512)
    assert reply[:2] == b"\x12\x34" and reply[3] & 0x0F == dns.rcode.FORMERR
    good = dns.query.udp(dns.message.make_query("www.example.test", "A"), address[0], port=address[1], timeout=10)
    assert good.answer[0][0].to_text() == "127.0.0.10"


# -- zones from config ----------------------------------------------------------------------


def test_zone_from_config(refservers_start: Callable[..., Server]) -> None:
    server = refservers_start(
        "dns",
        zones={"lab.internal": ["db 60 A 10.1.2.3", "@ MX 5 db", 'db TXT "primary"']},
        default_zones=False,
    )
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [server.probe_host], server.port
    answer = resolver.resolve("db.lab.internal", "A")
    assert [r.to_text() for r in answer] == ["10.1.2.3"] and answer.rrset is not None and answer.rrset.ttl == 60
    assert [r.to_text() for r in resolver.resolve("lab.internal", "SOA")][0].startswith("ns1.lab.internal.")  # synthesized
    with pytest.raises(dns.resolver.NoNameservers):  # REFUSED: example.test is off
        resolver.resolve("www.example.test", "A")


def test_zones_from_the_environment_as_json() -> None:
    config = load_config({"dns": DnsServer.all_options()}, env={"REFSERVERS_DNS_ZONES": '{"a.test": ["x A 127.0.0.9"]}'})
    assert config["dns"].zones == {"a.test": ["x A 127.0.0.9"]}


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        ({"bad.test": ["www A not-an-ip"]}, "[dns] zones: bad.test: cannot parse record 'www A not-an-ip'"),
        ({"bad.test": ["www.other.test. A 127.0.0.1"]}, "[dns] zones: bad.test: record 'www.other.test. A 127.0.0.1' is outside the zone"),
        ({"bad.test": ["@ SOA a b 1 2 3 4 5", "@ SOA a b 1 2 3 4 5"]}, "[dns] zones: bad.test: more than one SOA record"),
    ],
)
def test_bad_zone_fails_with_one_line(refservers_core: Core, zones: dict[str, list[str]], message: str) -> None:
    settings = refservers_core.config["dns"].replace(zones=zones)
    with pytest.raises(ConfigError) as caught:
        DnsServer(settings, refservers_core)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_bad_zone_shape_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^REFSERVERS_DNS_ZONES.*expected a table of zone name"):
        load_config({"dns": DnsServer.all_options()}, env={"REFSERVERS_DNS_ZONES": '{"a.test": "x A 1.2.3.4"}'})


# -- faults -------------------------------------------------------------------------------


def query_rcode(server: Server, name: str) -> str:
    reply = dns.query.udp(dns.message.make_query(name, "A"), server.probe_host, port=server.port, timeout=10)
    return dns.rcode.to_text(reply.rcode())


def test_fault_servfail_and_nxdomain_by_name_glob(refservers_dns: Server) -> None:
    faults = refservers_dns.core.faults
    faults.add({"server": "dns", "match": "www.*", "action": "servfail"})
    faults.add({"server": "dns", "match": "mail.example.test", "action": "nxdomain"})
    assert query_rcode(refservers_dns, "www.example.test") == "SERVFAIL"
    assert query_rcode(refservers_dns, "mail.example.test") == "NXDOMAIN"
    assert query_rcode(refservers_dns, "sip.example.test") == "NOERROR"
    fired = [e.details["action"] for e in refservers_dns.journal.events(server="dns", kind="fault")]
    assert fired == ["servfail", "nxdomain"]


def test_fault_drop_sends_nothing(refservers_dns: Server, udp: socket.socket) -> None:
    refservers_dns.core.faults.add({"server": "dns", "match": "www.example.test", "action": "drop"})
    udp.sendto(dns.message.make_query("www.example.test", "A").to_wire(), (refservers_dns.probe_host, refservers_dns.port))
    event = refservers_dns.journal.wait_for(lambda e: e.details.get("fault") == "drop", server="dns", kind="query")
    assert event.details["name"] == "www.example.test"
    udp.setblocking(False)
    with pytest.raises(BlockingIOError):  # the server journals the drop after deciding not to answer
        udp.recv(512)


def test_fault_delay_still_answers(refservers_dns: Server) -> None:
    refservers_dns.core.faults.add({"server": "dns", "match": "*", "action": "delay", "params": {"seconds": 0.2}})
    assert query_rcode(refservers_dns, "www.example.test") == "NOERROR"
    assert refservers_dns.journal.events(server="dns", kind="query")[-1].details["fault"] == "delay"


def test_probabilistic_fault_is_reproducible_with_a_seed(refservers_dns: Server) -> None:
    def run() -> list[str]:
        faults = refservers_dns.core.faults
        faults.clear("dns")
        faults.add({"server": "dns", "match": "*.example.test", "action": "servfail", "probability": 0.5, "seed": 42})
        return [query_rcode(refservers_dns, "www.example.test") for _ in range(16)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {"SERVFAIL", "NOERROR"}  # with p=0.5 over 16 tries both happen (fixed by the seed)


# -- lifecycle ----------------------------------------------------------------------------------


def test_udp_and_tcp_share_the_port_number(refservers_dns: Server) -> None:
    assert refservers_dns.listeners["main"] == refservers_dns.listeners["tcp"]


def test_stop_frees_udp_and_tcp(refservers_start: Callable[..., Server]) -> None:
    server = refservers_start("dns")
    port = server.port
    server.stop()
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            # As servers bind: the probe's TCP connection may sit in TIME_WAIT, which
            # only blocks a bind without SO_REUSEADDR (it says nothing about our stop).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))


def test_probe(refservers_dns: Server) -> None:
    assert DnsServer.probe(refservers_dns.probe_host, refservers_dns.port, 5.0) == "DNS NOERROR"

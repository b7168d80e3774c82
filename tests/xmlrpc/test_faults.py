"""XML-RPC fault rules (error, delay) driven with xmlrpc.client, checked in the journal."""

from __future__ import annotations

import socket
import xmlrpc.client

import pytest

from servers.core import Server
from servers.core.faults import FaultError


def proxy_for(server: Server) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(server.url + "/RPC2", allow_none=True)


def test_error_fault_answers_the_matching_method_with_the_configured_fault(refservers_xmlrpc: Server) -> None:
    since = refservers_xmlrpc.journal.last_id
    refservers_xmlrpc.core.faults.add(
        {"server": "xmlrpc", "match": "str*", "action": "error", "times": 1,
         "params": {"code": 503, "message": "backend unavailable"}}
    )
    with proxy_for(refservers_xmlrpc) as proxy:
        assert proxy.add(1, 2) == 3  # not matched
        with pytest.raises(xmlrpc.client.Fault) as caught:
            proxy.strlen("abc")
        assert (caught.value.faultCode, caught.value.faultString) == (503, "backend unavailable")
        assert proxy.strlen("abc") == 3  # times = 1: the rule is spent
    fired = refservers_xmlrpc.journal.wait_for(since=since, server="xmlrpc", kind="fault")
    assert fired.details["action"] == "error" and fired.details["subject"] == "strlen"
    call = refservers_xmlrpc.journal.wait_for(
        lambda e: e.details.get("fault") == 503, since=since, server="xmlrpc", kind="call"
    )
    assert call.details["method"] == "strlen"


def test_error_fault_without_params_and_inside_a_multicall(refservers_xmlrpc: Server) -> None:
    refservers_xmlrpc.core.faults.add({"server": "xmlrpc", "match": "echo", "action": "error"})
    with proxy_for(refservers_xmlrpc) as proxy:
        multi = xmlrpc.client.MultiCall(proxy)
        multi.add(2, 2)
        multi.echo("x")
        results = multi()
        assert results[0] == 4
        with pytest.raises(xmlrpc.client.Fault) as caught:
            results[1]
        assert (caught.value.faultCode, caught.value.faultString) == (-32500, "injected fault")


def test_delay_fault_holds_the_reply_while_other_clients_are_served(refservers_xmlrpc: Server) -> None:
    since = refservers_xmlrpc.journal.last_id
    refservers_xmlrpc.core.faults.add(
        {"server": "xmlrpc", "match": "echo", "action": "delay", "params": {"seconds": 30}}
    )
    body = xmlrpc.client.dumps(("held",), "echo").encode()
    request = b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection((refservers_xmlrpc.host, refservers_xmlrpc.port), timeout=10) as held:
        held.sendall(request + body)
        refservers_xmlrpc.journal.wait_for(since=since, server="xmlrpc", kind="fault")
        # The held call has not been answered, and another client is answered at once.
        held.settimeout(0.2)
        with pytest.raises(TimeoutError):
            held.recv(1)
        with proxy_for(refservers_xmlrpc) as proxy:
            assert proxy.add(1, 1) == 2


def test_short_delay_fault_then_the_real_answer(refservers_xmlrpc: Server) -> None:
    refservers_xmlrpc.core.faults.add(
        {"server": "xmlrpc", "match": "strlen", "action": "delay", "params": {"seconds": 0.2}, "times": 1}
    )
    with proxy_for(refservers_xmlrpc) as proxy:
        assert proxy.strlen("four") == 4
    fired = refservers_xmlrpc.journal.wait_for(server="xmlrpc", kind="fault")
    assert fired.details["action"] == "delay"


def test_unknown_action_is_refused_naming_what_xmlrpc_supports(refservers_xmlrpc: Server) -> None:
    with pytest.raises(FaultError, match="xmlrpc supports delay, error"):
        refservers_xmlrpc.core.faults.add({"server": "xmlrpc", "action": "drop"})

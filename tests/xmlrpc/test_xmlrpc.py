"""XML-RPC server (servers/xmlrpc/) driven by xmlrpc.client.ServerProxy, MultiCall and curl."""

from __future__ import annotations

import shutil
import subprocess
import xmlrpc.client
from collections.abc import Callable, Iterator

import pytest

from servers.core import Core, Server
from servers.core.config import ConfigError
from servers.xmlrpc import XmlRpcServer

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok

BUILTINS = ["add", "echo", "fail", "strlen"]
INTROSPECTION = ["system.listMethods", "system.methodHelp", "system.methodSignature", "system.multicall"]


@pytest.fixture
def proxy(refservers_xmlrpc: Server) -> Iterator[xmlrpc.client.ServerProxy]:
    with xmlrpc.client.ServerProxy(refservers_xmlrpc.url + "/RPC2", allow_none=True) as server_proxy:
        yield server_proxy


def test_builtin_methods(proxy: xmlrpc.client.ServerProxy) -> None:
    assert proxy.echo("hello") == "hello"
    assert proxy.echo({"nested": [1, 2.5, True, None]}) == {"nested": [1, 2.5, True, None]}
    assert proxy.echo(1, "two") == [1, "two"]
    assert proxy.add(2, 3) == 5
    assert proxy.add(0.5, 0.25, 1) == 1.75
    assert proxy.strlen("héllo wörld") == 11


def test_fail_raises_the_requested_fault(proxy: xmlrpc.client.ServerProxy) -> None:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        proxy.fail(42, "the answer is a fault")
    assert (caught.value.faultCode, caught.value.faultString) == (42, "the answer is a fault")
    with pytest.raises(xmlrpc.client.Fault) as default:
        proxy.fail()
    assert default.value.faultCode == 1


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda p: p.no_such_method(), -32601),
        (lambda p: p.add("one", 2), -32602),
        (lambda p: p.strlen(5), -32602),
        (lambda p: p.strlen(), -32602),
        (lambda p: p.system.methodHelp("nope"), -32602),
    ],
)
def test_errors_have_interop_fault_codes(proxy: xmlrpc.client.ServerProxy, call: Callable[..., object], code: int) -> None:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        call(proxy)
    assert caught.value.faultCode == code


def test_result_beyond_32_bits_is_a_fault_not_a_crash(proxy: xmlrpc.client.ServerProxy) -> None:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        proxy.add(2**31 - 1, 1)
    assert caught.value.faultCode == -32603
    assert proxy.add(1, 1) == 2


def test_introspection(proxy: xmlrpc.client.ServerProxy) -> None:
    assert proxy.system.listMethods() == BUILTINS + INTROSPECTION
    assert proxy.system.methodSignature("strlen") == [["int", "string"]]
    assert proxy.system.methodSignature("echo") == "undef"
    assert "sum" in proxy.system.methodHelp("add")


def test_multicall_with_results_and_faults(proxy: xmlrpc.client.ServerProxy, refservers_xmlrpc: Server) -> None:
    multi = xmlrpc.client.MultiCall(proxy)
    multi.add(1, 2)
    multi.strlen("abcd")
    multi.echo("x")
    results = multi()
    assert list(results) == [3, 4, "x"]
    failing = xmlrpc.client.MultiCall(proxy)
    failing.add(1, 1)
    failing.fail(7, "boom")
    iterator = iter(failing())
    assert next(iterator) == 2
    with pytest.raises(xmlrpc.client.Fault) as caught:
        next(iterator)
    assert (caught.value.faultCode, caught.value.faultString) == (7, "boom")
    # Every call inside the boxcar is journalled on its own, then the boxcar itself: one
    # request is answered in one go, so its events are adjacent and share a peer even
    # when other tests' calls reach the same server (the compose stack is shared).
    events = refservers_xmlrpc.journal.events(server="xmlrpc", kind="call")
    runs = [
        [(e.details.get("method"), e.peer) for e in events[start : start + length]]
        for length in (3, 4)
        for start in range(len(events) - length + 1)
    ]
    for boxcar in (["add", "strlen", "echo", "system.multicall"], ["add", "fail", "system.multicall"]):
        assert any(
            [method for method, _ in run] == boxcar and len({peer for _, peer in run}) == 1 for run in runs
        ), (boxcar, [(e.details.get("method"), e.peer) for e in events])


def test_multicall_raw_shape(proxy: xmlrpc.client.ServerProxy) -> None:
    answer = proxy.system.multicall(
        [{"methodName": "add", "params": [2, 2]}, {"methodName": "nope", "params": []}, "not a struct",
         {"methodName": "system.multicall", "params": [[]]}]
    )
    assert answer[0] == [4]
    assert answer[1]["faultCode"] == -32601
    assert answer[2]["faultCode"] == -32600
    assert answer[3]["faultCode"] == -32600


def test_methods_from_config(refservers_start: Callable[..., Server]) -> None:
    server = refservers_start(
        "xmlrpc", methods={"version": '"1.2.3"', "limits": '{"max": 5, "names": ["a", "b"]}', "nothing": "null"}
    )
    with xmlrpc.client.ServerProxy(server.url, allow_none=True) as proxy:
        assert proxy.version() == "1.2.3"
        assert proxy.limits() == {"max": 5, "names": ["a", "b"]}
        assert proxy.nothing() is None
        assert proxy.system.methodSignature("limits") == [["struct"]]
        assert "version" in proxy.system.listMethods()


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        ({"broken": "{not json"}, "[xmlrpc] methods: broken: not valid JSON"),
        ({"huge": str(2**40)}, "[xmlrpc] methods: huge: cannot be sent as XML-RPC"),
        ({"system.evil": "1"}, "[xmlrpc] methods: system.evil: the system. prefix is reserved"),
    ],
)
def test_bad_config_methods_fail_with_one_line(refservers_core: Core, methods: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        XmlRpcServer(refservers_core.config["xmlrpc"].replace(methods=methods), refservers_core)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_malformed_xml_is_a_parse_error_fault(refservers_xmlrpc: Server) -> None:
    transport = xmlrpc.client.Transport()
    try:
        with pytest.raises(xmlrpc.client.Fault) as caught:
            transport.request(f"{refservers_xmlrpc.probe_host}:{refservers_xmlrpc.port}", "/", b"<methodCall><oops")
    finally:
        transport.close()
    assert caught.value.faultCode == -32700


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_post(refservers_xmlrpc: Server) -> None:
    body = xmlrpc.client.dumps(("from curl",), "strlen")
    completed = subprocess.run(
        ["curl", "-sS", "-H", "Content-Type: text/xml", "--data-binary", body, refservers_xmlrpc.url + "/"],
        capture_output=True, timeout=30, check=True,
    )
    (result,), _ = xmlrpc.client.loads(completed.stdout)
    assert result == 9
    get = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", refservers_xmlrpc.url + "/"],
                         capture_output=True, text=True, timeout=30, check=True)
    assert get.stdout == "405"


def test_calls_are_journalled(proxy: xmlrpc.client.ServerProxy, refservers_xmlrpc: Server) -> None:
    proxy.strlen("abc")
    with pytest.raises(xmlrpc.client.Fault):
        proxy.fail(3, "x")
    calls = [e.details for e in refservers_xmlrpc.journal.events(server="xmlrpc", kind="call")]
    assert {"method": "strlen", "params": 1} in calls
    assert {"method": "fail", "params": 2, "fault": 3} in calls


def test_probe(refservers_xmlrpc: Server) -> None:
    assert XmlRpcServer.probe(refservers_xmlrpc.probe_host, refservers_xmlrpc.port, 5.0) == "XML-RPC, 8 methods"

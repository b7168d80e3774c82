"""Built-in and configured methods, rpc.discover, errors, faults and the journal, with real clients."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request

import jsonrpcclient
import pytest
import requests

from servers.core import ConfigError

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok


def call(server, method, params=None, id_=1, path="/"):
    message = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        message["params"] = params
    return requests.post(server.url + path, json=message, timeout=10).json()


def test_builtins_through_jsonrpcclient(refservers_jsonrpc):
    def rpc(method, params=None):
        reply = requests.post(refservers_jsonrpc.url, json=jsonrpcclient.request(method, params=params), timeout=10)
        parsed = jsonrpcclient.parse(reply.json())
        assert isinstance(parsed, jsonrpcclient.Ok), parsed
        return parsed.result

    assert rpc("ping") == "pong"
    assert rpc("echo", ["a", 1]) == ["a", 1]
    assert rpc("echo", {"k": "v"}) == {"k": "v"}
    assert rpc("add", [2, 3]) == 5
    assert rpc("add", {"a": 1.5, "b": 2}) == 3.5
    assert rpc("subtract", {"minuend": 10, "subtrahend": 4}) == 6
    assert rpc("sum", [1, 2, 3, 4]) == 10
    assert rpc("get_data") == ["hello", 5]


def test_fail_returns_the_error_asked_for(refservers_jsonrpc):
    reply = call(refservers_jsonrpc, "fail", {"code": 4001, "message": "quota exceeded", "data": {"left": 0}})
    assert reply == {"jsonrpc": "2.0", "error": {"code": 4001, "message": "quota exceeded", "data": {"left": 0}}, "id": 1}
    parsed = jsonrpcclient.parse(reply)
    assert isinstance(parsed, jsonrpcclient.Error) and parsed.code == 4001


@pytest.mark.parametrize(
    "method, params",
    [("add", [1]), ("add", [1, 2, 3]), ("subtract", {"minuend": 1}), ("add", ["x", 1]), ("ping", [1]), ("add", [True, 1])],
)
def test_wrong_params_are_invalid_params(refservers_jsonrpc, method, params):
    reply = call(refservers_jsonrpc, method, params)
    assert reply["error"]["code"] == -32602 and reply["error"]["message"] == "Invalid params"
    assert reply["id"] == 1


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "1.0", "method": "ping", "id": 1},
        {"method": "ping", "id": 1},
        {"jsonrpc": "2.0", "method": "ping", "params": 5, "id": 1},
        {"jsonrpc": "2.0", "id": 1},
        "just a string",
    ],
)
def test_invalid_request_objects(refservers_jsonrpc, message):
    reply = requests.post(refservers_jsonrpc.url, json=message, timeout=10).json()
    assert reply["error"] == {"code": -32600, "message": "Invalid Request"}


def test_invalid_request_keeps_a_valid_id_and_nulls_a_bad_one(refservers_jsonrpc):
    kept = requests.post(refservers_jsonrpc.url, json={"jsonrpc": "2.0", "method": 5, "id": 7}, timeout=10).json()
    assert kept["id"] == 7
    nulled = requests.post(refservers_jsonrpc.url, json={"jsonrpc": "2.0", "method": "ping", "id": [1]}, timeout=10).json()
    assert nulled == {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}


def test_null_id_is_a_request_not_a_notification(refservers_jsonrpc):
    assert call(refservers_jsonrpc, "ping", id_=None) == {"jsonrpc": "2.0", "result": "pong", "id": None}


def test_not_utf8_is_a_parse_error(refservers_jsonrpc):
    reply = requests.post(refservers_jsonrpc.url, data=b"\xff\xfe{", timeout=10).json()
    assert reply["error"]["code"] == -32700


def test_urllib_and_curl_clients(refservers_jsonrpc):
    body = json.dumps({"jsonrpc": "2.0", "method": "add", "params": [20, 22], "id": "u"}).encode()
    request = urllib.request.Request(refservers_jsonrpc.url + "/rpc", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as reply:
        assert json.load(reply) == {"jsonrpc": "2.0", "result": 42, "id": "u"}
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-H", "Content-Type: application/json",
         "-d", '[{"jsonrpc":"2.0","method":"ping","id":1},{"jsonrpc":"2.0","method":"notify","params":[1]}]',
         refservers_jsonrpc.url],
        capture_output=True, check=True, timeout=30,
    )
    assert json.loads(result.stdout) == [{"jsonrpc": "2.0", "result": "pong", "id": 1}]
    notified = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
         "-d", '{"jsonrpc":"2.0","method":"notify","params":{"x":1}}', refservers_jsonrpc.url],
        capture_output=True, check=True, timeout=30,
    )
    assert notified.stdout == b"204"


def test_http_methods_and_paths(refservers_jsonrpc):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(refservers_jsonrpc.url + "/")
    assert caught.value.code == 405 and caught.value.headers["Allow"] == "POST"
    caught.value.close()
    assert requests.post(refservers_jsonrpc.url + "/other", json={}, timeout=10).status_code == 404


def test_notifications_are_journalled_but_not_answered(refservers_jsonrpc):
    since = refservers_jsonrpc.journal.last_id
    reply = requests.post(refservers_jsonrpc.url, json={"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}, timeout=10)
    assert reply.status_code == 204
    message = refservers_jsonrpc.journal.wait_for(since=since, server="jsonrpc", kind="message")
    assert message.details == {"method": "notify_hello", "params": [7]}
    call_event = refservers_jsonrpc.journal.wait_for(since=since, server="jsonrpc", kind="request")
    assert call_event.details["method"] == "notify_hello" and call_event.details["notification"] is True
    assert call_event.details["error"] is None and call_event.details["transport"] == "http"


def test_every_call_of_a_batch_is_journalled(refservers_jsonrpc):
    since = refservers_jsonrpc.journal.last_id
    batch = [{"jsonrpc": "2.0", "method": "ping", "id": 1}, {"jsonrpc": "2.0", "method": "nope", "id": 2}, 3]
    requests.post(refservers_jsonrpc.url, json=batch, timeout=10)
    events = refservers_jsonrpc.journal.events(server="jsonrpc", kind="request", since=since)
    # One connection sent the batch; other tests' calls to the shared compose stack come
    # from other peers, so the batch's events are the ones of one peer.
    by_peer: dict[str, list[tuple[object, object]]] = {}
    for event in events:
        by_peer.setdefault(event.peer, []).append((event.details["method"], event.details["error"]))
    assert [("ping", None), ("nope", -32601), (None, -32600)] in by_peer.values(), by_peer


def test_rpc_discover_describes_every_method(refservers_start):
    server = refservers_start("jsonrpc", methods={"version": '"1.2.3"'})
    document = call(server, "rpc.discover")["result"]
    assert document["openrpc"].startswith("1.")
    names = {method["name"] for method in document["methods"]}
    assert {"echo", "ping", "add", "subtract", "sum", "get_data", "fail", "sleep", "version", "rpc.discover"} <= names
    subtract = next(m for m in document["methods"] if m["name"] == "subtract")
    assert [p["name"] for p in subtract["params"]] == ["minuend", "subtrahend"]


def test_configured_methods_return_their_fixed_json(refservers_start):
    server = refservers_start(
        "jsonrpc", methods='status={"ok": true, "items": [1, 2]};version="2.0.1";ping="overridden"'
    )
    assert call(server, "status")["result"] == {"ok": True, "items": [1, 2]}
    assert call(server, "version", ["ignored"])["result"] == "2.0.1"
    assert call(server, "ping")["result"] == "overridden"  # config wins over a built-in


def test_configured_method_with_bad_json_fails_at_startup_naming_the_key(refservers_start):
    with pytest.raises(ConfigError, match=r"^\[jsonrpc\] methods\.broken: expected JSON text, got '\{nope'"):
        refservers_start("jsonrpc", methods={"fine": "1", "broken": "{nope"})


def test_configured_method_names_may_not_use_the_rpc_prefix(refservers_start):
    with pytest.raises(ConfigError, match=r"methods\.rpc\.x: names starting with 'rpc\.' are reserved"):
        refservers_start("jsonrpc", methods={"rpc.x": "1"})


def test_error_fault_for_a_method(refservers_jsonrpc):
    refservers_jsonrpc.core.faults.add(
        {"server": "jsonrpc", "match": "add", "action": "error", "params": {"code": -32001, "message": "busy"}, "times": 1}
    )
    assert call(refservers_jsonrpc, "add", [1, 2]) == {"jsonrpc": "2.0", "error": {"code": -32001, "message": "busy"}, "id": 1}
    assert call(refservers_jsonrpc, "add", [1, 2])["result"] == 3
    fired = refservers_jsonrpc.journal.wait_for(server="jsonrpc", kind="fault")
    assert fired.details["subject"] == "add"


def test_delay_fault_delays_then_answers(refservers_jsonrpc, jsonrpc_line_client):
    refservers_jsonrpc.core.faults.add({"server": "jsonrpc", "match": "get_*", "action": "delay", "params": {"seconds": 0.3}})
    assert call(refservers_jsonrpc, "get_data")["result"] == ["hello", 5]
    # Over TCP the delayed reply comes after the undelayed one sent behind it.
    replies = jsonrpc_line_client.exchange(
        ['{"jsonrpc": "2.0", "method": "get_data", "id": "slow"}', '{"jsonrpc": "2.0", "method": "ping", "id": "fast"}']
    )
    assert replies == [{"jsonrpc": "2.0", "result": "pong", "id": "fast"}]
    assert jsonrpc_line_client.read() == {"jsonrpc": "2.0", "result": ["hello", 5], "id": "slow"}


@pytest.mark.skipif(
    os.environ.get("REFSERVERS_TARGET") == "container", reason="asserts the fixture's sleep_max (0.5); the container runs the default"
)
def test_sleep_is_capped_and_answers(refservers_jsonrpc):
    # The fixture's sleep_max is 0.5.
    assert call(refservers_jsonrpc, "sleep", [0.1])["result"] == 0.1
    assert call(refservers_jsonrpc, "sleep", [100])["result"] == 0.5
    assert call(refservers_jsonrpc, "sleep", [-1])["error"]["code"] == -32602


def test_a_sleeping_call_does_not_block_other_clients(refservers_start):
    server = refservers_start("jsonrpc", sleep_max="60")
    with socket.create_connection((server.host, server.listeners["tcp"]), timeout=10) as sleeper:
        sleeper.sendall(b'{"jsonrpc": "2.0", "method": "sleep", "params": [60], "id": "zz"}\n')
        server.journal.wait_for(lambda e: e.details.get("method") == "sleep", server="jsonrpc", kind="request")
        assert call(server, "ping")["result"] == "pong"


def test_configured_error_methods(refservers_start):
    server = refservers_start("jsonrpc", errors={"down": '{"code": -32010, "message": "backend down", "data": [1]}'})
    assert call(server, "down") == {
        "jsonrpc": "2.0", "error": {"code": -32010, "message": "backend down", "data": [1]}, "id": 1
    }


@pytest.mark.parametrize("text", ['{"code": "x", "message": "m"}', '{"message": "m"}', "[1]", "{bad"])
def test_configured_error_methods_are_checked_at_startup(refservers_start, text):
    with pytest.raises(ConfigError, match=r"^\[jsonrpc\] errors\.down: expected"):
        refservers_start("jsonrpc", errors={"down": text})

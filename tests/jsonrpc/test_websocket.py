"""JSON-RPC over WebSocket at /ws of the HTTP port, with the `websockets` client."""

from __future__ import annotations

import json

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from servers.core.faults import FaultBook

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok


def ws_url(server) -> str:
    return f"ws://{server.probe_host}:{server.port}/ws"


def test_calls_batches_and_notifications_over_one_websocket(refservers_jsonrpc):
    with connect(ws_url(refservers_jsonrpc), open_timeout=10) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "add", "params": [2, 3], "id": 1}))
        assert json.loads(ws.recv(timeout=10)) == {"jsonrpc": "2.0", "result": 5, "id": 1}
        # A notification gets no message: the next message read is the reply to the call after it.
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "notify", "params": ["x"]}))
        ws.send(json.dumps([{"jsonrpc": "2.0", "method": "ping", "id": "a"}, {"jsonrpc": "2.0", "method": "nope", "id": "b"}]))
        assert json.loads(ws.recv(timeout=10)) == [
            {"jsonrpc": "2.0", "result": "pong", "id": "a"},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "b"},
        ]
        ws.send(b"{broken")  # a binary frame is a message too
        assert json.loads(ws.recv(timeout=10))["error"] == {"code": -32700, "message": "Parse error"}
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "echo", "params": ["still here"], "id": 2}))
        assert json.loads(ws.recv(timeout=10))["result"] == ["still here"]


def test_the_jsonrpc_subprotocol_is_accepted_when_offered(refservers_jsonrpc):
    with connect(ws_url(refservers_jsonrpc), subprotocols=["jsonrpc"], open_timeout=10) as ws:
        assert ws.subprotocol == "jsonrpc"
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "ping", "id": 1}))
        assert json.loads(ws.recv(timeout=10))["result"] == "pong"


def test_websocket_calls_are_journalled_with_the_ws_transport(refservers_jsonrpc):
    since = refservers_jsonrpc.journal.last_id
    with connect(ws_url(refservers_jsonrpc), open_timeout=10) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}))
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "ping", "id": 1}))
        ws.recv(timeout=10)
    journal = refservers_jsonrpc.journal
    connect_event = journal.wait_for(since=since, server="jsonrpc", kind="connect")
    assert connect_event.details == {"transport": "ws"}
    # The two calls came over one connection; other tests' calls to the shared compose
    # stack come from other peers.
    by_peer: dict[str, list[tuple[object, object]]] = {}
    for event in journal.events(server="jsonrpc", kind="request", since=since):
        by_peer.setdefault(event.peer, []).append((event.details["method"], event.details["transport"]))
    assert [("notify_hello", "ws"), ("ping", "ws")] in by_peer.values(), by_peer
    disconnect = journal.wait_for(since=since, server="jsonrpc", kind="disconnect")
    assert disconnect.peer == connect_event.peer and disconnect.details["transport"] == "ws"


def test_delay_fault_holds_a_websocket_reply_without_blocking_the_next(refservers_jsonrpc):
    faults: FaultBook = refservers_jsonrpc.core.faults
    faults.add({"server": "jsonrpc", "match": "get_data", "action": "delay", "params": {"seconds": 0.3}})
    with connect(ws_url(refservers_jsonrpc), open_timeout=10) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "get_data", "id": "slow"}))
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "ping", "id": "fast"}))
        assert [json.loads(ws.recv(timeout=10))["id"] for _ in range(2)] == ["fast", "slow"]


def test_http_still_served_beside_the_websocket_path(refservers_jsonrpc):
    for path in ("/", "/rpc"):
        reply = requests.post(refservers_jsonrpc.url + path, json={"jsonrpc": "2.0", "method": "ping", "id": 1}, timeout=10)
        assert reply.json()["result"] == "pong"
    assert requests.post(refservers_jsonrpc.url + "/ws/deeper", json={}, timeout=10).status_code == 404
    assert requests.post(refservers_jsonrpc.url + "/rpc/x", json={}, timeout=10).status_code == 404


def test_a_plain_get_on_the_websocket_path_is_told_to_upgrade(refservers_jsonrpc):
    reply = requests.get(refservers_jsonrpc.url + "/ws", timeout=10)
    assert reply.status_code == 426


def test_stop_drops_open_websockets(refservers_start):
    server = refservers_start("jsonrpc")
    with connect(ws_url(server), open_timeout=10) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "ping", "id": 1}))
        assert json.loads(ws.recv(timeout=10))["result"] == "pong"
        server.stop()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)

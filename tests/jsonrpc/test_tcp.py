"""Newline-delimited JSON-RPC over plain TCP, with a raw socket."""

from __future__ import annotations

import socket

import pytest

from servers.jsonrpc.server import MAX_LINE

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok


def test_many_messages_on_one_connection_and_crlf_and_blank_lines(jsonrpc_line_client):
    replies = jsonrpc_line_client.exchange(
        [
            '{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}\r',
            "",
            '{"jsonrpc": "2.0", "method": "notify", "params": [1]}',
            '[{"jsonrpc": "2.0", "method": "sum", "params": [1, 1], "id": 2}, {"jsonrpc": "2.0", "method": "ping", "id": 3}]',
            "{broken",
            '{"jsonrpc": "2.0", "method": "echo", "params": ["last"], "id": 4}',
        ]
    )
    assert replies == [
        {"jsonrpc": "2.0", "result": 3, "id": 1},
        [{"jsonrpc": "2.0", "result": 2, "id": 2}, {"jsonrpc": "2.0", "result": "pong", "id": 3}],
        {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None},
        {"jsonrpc": "2.0", "result": ["last"], "id": 4},
    ]


def test_connect_and_calls_are_journalled_with_the_tcp_transport(refservers_jsonrpc, jsonrpc_line_client):
    jsonrpc_line_client.exchange(['{"jsonrpc": "2.0", "method": "ping", "id": 1}'])
    connect = refservers_jsonrpc.journal.wait_for(server="jsonrpc", kind="connect")
    assert connect.details == {"transport": "tcp"}
    request = refservers_jsonrpc.journal.wait_for(lambda e: e.details.get("transport") == "tcp", server="jsonrpc", kind="request")
    assert request.peer == connect.peer and request.details["method"] == "ping"


def test_an_over_long_line_gets_a_parse_error_and_a_close_while_others_are_served(refservers_jsonrpc, jsonrpc_line_client):
    with socket.create_connection((refservers_jsonrpc.host, refservers_jsonrpc.listeners["tcp"]), timeout=10) as flood:
        flood.sendall(b"[" + b" " * (MAX_LINE + 10))
        received = b""
        while chunk := flood.recv(4096):
            received += chunk
    assert b'"code": -32700' in received
    assert jsonrpc_line_client.exchange(['{"jsonrpc": "2.0", "method": "ping", "id": 9}']) == [
        {"jsonrpc": "2.0", "result": "pong", "id": 9}
    ]

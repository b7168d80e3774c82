"""The JSON-RPC HTTP port's site (core/twisted_web.py's LeafSite) and jsonrpcserver's
dispatch as the endpoint drives it; these reach into the running server, so they are
not run against the compose stack."""

from __future__ import annotations

import socket

import requests
from websockets.sync.client import connect


def test_an_idle_http_connection_is_closed_after_the_idle_timeout(refservers_start):
    server = refservers_start("jsonrpc")
    server.http_site.idle_timeout = 0.2  # Twisted's 60 s, shortened: swept every second
    with socket.create_connection((server.probe_host, server.port), timeout=10) as idle:
        assert idle.recv(1) == b""  # closed by the server, long before the socket's own timeout


def test_a_websocket_connection_leaves_the_http_sites_connections(refservers_start):
    server = refservers_start("jsonrpc")
    with connect(f"ws://{server.probe_host}:{server.port}/ws", open_timeout=10) as ws:
        ws.send('{"jsonrpc": "2.0", "method": "ping", "id": 1}')
        assert ws.recv(timeout=10) == '{"jsonrpc": "2.0", "result": "pong", "id": 1}'
        # The WebSocket protocol owns the connection now: the HTTP site's idle sweep must not
        # hold on to (or time out) the HTTP channel it came in on.
        assert server.http_site.channels == set()


def test_a_method_jsonrpcserver_cannot_bind_is_a_server_error(refservers_start):
    """jsonrpcserver answers a failure of its own (here: no signature to bind the params
    against) with -32000 "Server error" carrying the exception's text, the request's id kept."""
    server = refservers_start("jsonrpc")
    server.methods["no_signature"] = ArithmeticError  # a builtin type without a signature: inspect.signature fails
    reply = requests.post(server.url, json={"jsonrpc": "2.0", "method": "no_signature", "id": 7}, timeout=10).json()
    assert reply["id"] == 7
    assert reply["error"]["code"] == -32000 and reply["error"]["message"] == "Server error"
    assert "no signature found" in reply["error"]["data"]
    ping = requests.post(server.url, json={"jsonrpc": "2.0", "method": "ping", "id": 8}, timeout=10).json()
    assert ping == {"jsonrpc": "2.0", "result": "pong", "id": 8}

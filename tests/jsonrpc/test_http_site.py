"""The JSON-RPC HTTP port's site (core/twisted_web.py's LeafSite); these reach into the
running server, so they are not run against the compose stack."""

from __future__ import annotations

import socket

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


"""servers.sftp.batched_writes: the packets of one loop turn leave in one write, in order,
and what was sent before a close still leaves.

The unit tests run a ``BatchedWrites`` over a real asyncio transport on a socket pair,
owned by a stand-in for asyncssh's connection (the only part of it read is
``_transport``); the transfers themselves are checked end to end by the OpenSSH and
paramiko interop tests, including a download across many rekeys
(test_sftp_openssh.py) and output written just before a channel close (test_ssh_exec.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import asyncssh

from servers.sftp import SftpServer
from servers.sftp.batched_writes import BatchedWrites


@asynccontextmanager
async def _writes_to_peer() -> AsyncIterator[tuple[BatchedWrites, Any, socket.socket]]:
    """A ``BatchedWrites`` whose connection's transport writes to ``peer`` (non-blocking)."""
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, sock=ours)
    conn = SimpleNamespace(_transport=transport)
    try:
        yield BatchedWrites(conn), conn, peer  # type: ignore[arg-type]
    finally:
        transport.abort()
        peer.close()


def _received(peer: socket.socket) -> bytes:
    try:
        return peer.recv(1 << 16)
    except BlockingIOError:
        return b""


def test_packets_of_one_turn_leave_together_and_in_order() -> None:
    async def scenario() -> None:
        async with _writes_to_peer() as (writes, _, peer):
            for packet in (b"version", b"kexinit", b"ignore", b"data"):
                writes.send(packet)
            assert _received(peer) == b""  # nothing written yet: the turn is still running
            await asyncio.sleep(0)  # the flush was scheduled first, so it ran before we resumed
            assert _received(peer) == b"versionkexinitignoredata"
            writes.send(b"next turn")
            await asyncio.sleep(0)
            assert _received(peer) == b"next turn"

    asyncio.run(scenario())


def test_packets_sent_before_a_close_still_leave() -> None:
    """What asyncssh's ``_force_close`` does after a DISCONNECT: it clears ``_transport`` at
    once and schedules the transport's ``abort`` for later with ``call_soon``."""

    async def scenario() -> None:
        async with _writes_to_peer() as (writes, conn, peer):
            writes.send(b"data")
            writes.send(b"disconnect")
            transport, conn._transport = conn._transport, None
            asyncio.get_running_loop().call_soon(transport.abort)
            writes.send(b"after the close")  # dropped, as asyncssh's own _send drops it
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert transport.is_closing()
            peer.setblocking(True)
            assert peer.recv(1 << 16) == b"datadisconnect"
            assert peer.recv(1 << 16) == b""  # then the end of the stream

    asyncio.run(scenario())


def test_the_running_server_batches_each_connections_writes(refservers_sftp: SftpServer) -> None:
    async def connect_and_look() -> type:
        async with asyncssh.connect(
            refservers_sftp.probe_host, refservers_sftp.port, username="demo", password="demo", known_hosts=None
        ) as client:
            await client.run("whoami")  # a command answered: the server side is fully set up
            ours = client.get_extra_info("sockname")[1]
            (conn,) = [c for c in list(refservers_sftp.connections) if c.get_extra_info("peername")[1] == ours]
            return type(conn._send.__self__)  # type: ignore[attr-defined]

    assert asyncio.run(connect_and_look()) is BatchedWrites

"""One socket write per event-loop turn for an SSH connection, not one per SSH packet.

asyncssh's ``SSHConnection.send_packet`` hands every packet it builds to its ``_send``,
which writes it to the transport at once, and asyncio's transport tries a ``send(2)``
for each write while its buffer is empty. A 32 KiB SFTP READ reply (32781 bytes with its
header) leaves as two CHANNEL_DATA packets, split at the client's 32 KiB maximum
packet size, each after an SSH_MSG_IGNORE: four ``send(2)`` calls per READ where
OpenSSH's sshd makes about one.

Here ``_send`` collects the packets and one callback scheduled with ``call_soon`` (after
whatever else the loop is running this turn, e.g. the other READ replies of the same
batch of requests) writes them with a single ``transport.write``. The bytes and their
order are unchanged. Closing keeps working: asyncssh's ``_force_close`` schedules the
transport's ``abort`` with ``call_soon`` too, after the flush already scheduled for
packets sent before it (a DISCONNECT still leaves first), and the flush holds on to the
transport it was scheduled for, since ``_force_close`` clears ``_transport`` at once.

asyncssh private: ``SSHConnection._send`` (replaced per connection, same signature) and
``SSHConnection._transport`` (read), checked against the pinned asyncssh 2.24;
tests/core/test_library_internals.py fails if they move.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh


class BatchedWrites:
    """The replacement ``_send`` of one connection, and its packets not yet written."""

    def __init__(self, conn: asyncssh.SSHServerConnection):
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._transport: Any = None  # the transport the scheduled flush writes to

    def send(self, data: bytes) -> None:
        transport = self._conn._transport  # asyncssh private: None once the connection closed
        if transport is None:
            return  # what asyncssh's own _send does after a close
        if not self._pending:
            self._transport = transport
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        transport, self._transport = self._transport, None
        try:
            transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
        except ConnectionError:  # as asyncssh's _send: the loss is reported by connection_lost
            pass


def batch_writes(conn: asyncssh.SSHServerConnection) -> None:
    """Route ``conn``'s packets through a :class:`BatchedWrites` (call from ``connection_made``)."""
    conn._send = BatchedWrites(conn).send  # type: ignore[method-assign]  # asyncssh private

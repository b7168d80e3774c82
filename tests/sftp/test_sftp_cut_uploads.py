"""SFTP uploads cut by a dropped connection: journalled incomplete, never complete.

An SFTP upload is complete when the client closes its handle (SSH_FXP_CLOSE) and the
server acknowledges the close after an fsync; each WRITE's OK only says those bytes
were written. A connection reset (the client's kernel sends an RST: ``SO_LINGER`` 0)
after some acknowledged writes and before the close must leave a ``file`` event with
``complete: false``, and nothing that says complete.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import paramiko
import pytest

from servers.sftp import SftpServer

TIMEOUT = 15


@pytest.fixture
def known_hosts(refservers_sftp: SftpServer, tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(refservers_sftp.known_hosts_line())
    return path


def connect(server: SftpServer, known_hosts: Path) -> tuple[paramiko.SSHClient, socket.socket]:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", server.port, "demo", "demo", sock=raw, look_for_keys=False, allow_agent=False, timeout=TIMEOUT)
    return client, raw


def reset(client: paramiko.SSHClient, raw: socket.socket) -> None:
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # RST; paramiko's thread then sees the socket gone
    client.close()


@pytest.mark.parametrize("pipelined", [False, True], ids=["acknowledged", "pipelined"])
def test_upload_reset_before_close_is_journalled_incomplete(
    refservers_sftp: SftpServer, known_hosts: Path, pipelined: bool
) -> None:
    journal = refservers_sftp.core.journal
    since = journal.last_id
    client, raw = connect(refservers_sftp, known_hosts)
    try:
        remote = client.open_sftp().open("cut.bin", "w")
        remote.set_pipelined(pipelined)
        chunk = os.urandom(32768)
        for _ in range(8):
            remote.write(chunk)
        if not pipelined:
            remote.stat()  # a round trip: every write before it has been answered
    finally:
        reset(client, raw)
    event = journal.wait_for(lambda e: e.details.get("path") == "/cut.bin", server="sftp", kind="file", since=since, timeout=TIMEOUT)
    assert event.details["complete"] is False and event.details["direction"] == "upload"
    if not pipelined:
        assert event.details["bytes"] == 8 * 32768
    journal.wait_for(lambda e: True, server="sftp", kind="disconnect", since=since, timeout=TIMEOUT)
    files = journal.events(server="sftp", kind="file", since=since)
    assert [e.details["complete"] for e in files] == [False]

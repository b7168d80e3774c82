"""IMAP FETCH of big messages from their files (servers/imap/server.py, FetchResponse).

A message of STREAMED_MESSAGE_BYTES or more is not read into memory for ``BODY[]`` or
``RFC822``: its literal goes from the Maildir file to the socket (core ``send_file``:
``os.sendfile`` on plain TCP, Twisted's FileSender over TLS). The client must see the
same bytes as from the in-memory path, in order with what it pipelined, and the file
must be closed once the answer is out or the client has left.
"""

from __future__ import annotations

import imaplib
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from servers.imap import server as imap_module
from servers.mail.store import MailStore

pytestmark = pytest.mark.timeout(60)

# Bigger than a loopback socket's send buffer can grow (4 MiB), so one FETCH takes
# several sendfile calls while the client is not reading.
BIG_BYTES = 6 * 1024 * 1024
ENVELOPE = {"mail_from": "alice@example.com", "rcpt_to": ["demo@example.com"]}


def big_message(subject: str, size: int = BIG_BYTES) -> bytes:
    header = (
        f"From: Alice <alice@example.com>\r\nTo: demo@example.com\r\nSubject: {subject}\r\n"
        f"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n\r\n.leading dot\r\n"
    ).encode()
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789abcdefghijklmnopqrstuvwxyz+/AB\r\n"
    return header + line * (size // len(line))


def small_message(subject: str) -> bytes:
    return big_message(subject, size=200)


@pytest.fixture
def stored(mail_store: MailStore) -> Iterator[dict[str, bytes]]:
    """INBOX: a big, a small and a big message; key -> the stored bytes."""
    keys = [
        mail_store.deliver("demo", big_message("first"), ENVELOPE),
        mail_store.deliver("demo", small_message("second"), ENVELOPE),
        mail_store.deliver("demo", big_message("third", BIG_BYTES + 1000), ENVELOPE),
    ]
    yield {key: mail_store.read("demo", key) for key in keys}


@pytest.fixture
def streamed_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes the server handed to send_file (so a test knows the file path ran)."""
    sizes: list[int] = []
    real = imap_module.send_file

    def counting(transport: Any, file: Any, size: int) -> Any:
        sizes.append(size)
        return real(transport, file, size)

    monkeypatch.setattr(imap_module, "send_file", counting)
    return sizes


def literal_of(reply: bytes) -> bytes:
    """The bytes of the first literal in ``reply``."""
    start = reply.index(b"{")
    end = reply.index(b"}\r\n", start)
    size = int(reply[start + 1 : end])
    return reply[end + 3 : end + 3 + size]


def files_open_on(key: str) -> list[str]:
    """This process's open descriptors on the message file ``key`` (the server runs here)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if key in target:
            found.append(target)
    return found


COMMANDS = (
    b"FETCH 1:* (BODY.PEEK[] RFC822.SIZE)",
    b"FETCH 1:3 (RFC822.HEADER BODY.PEEK[]<0.100> BODY.PEEK[TEXT]<5.20> BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    b"UID FETCH 1:* (BODY.PEEK[] BODY.PEEK[])",
    b"SEARCH LARGER 1000000",
    b"FETCH 1:3 (RFC822)",  # sets \\Seen: FLAGS joins the response
)


def test_streamed_and_in_memory_fetch_put_the_same_bytes_on_the_wire(
    refservers_imap: Any,
    stored: dict[str, bytes],
    streamed_sends: list[int],
    monkeypatch: pytest.MonkeyPatch,
    raw_imap: Any,
) -> None:
    raw_imap.copy_inbox(refservers_imap, b"Copy")
    streamed = raw_imap.session(refservers_imap, b"INBOX", COMMANDS)
    sends = len(streamed_sends)
    monkeypatch.setattr(imap_module, "STREAMED_MESSAGE_BYTES", 2**40)
    in_memory = raw_imap.session(refservers_imap, b"Copy", COMMANDS)
    first, _, third = stored.values()
    # Each BODY[] and RFC822 of a big message came from its file, and nothing else did.
    big = [len(first), len(third)]
    assert streamed_sends == [*big, len(first), len(first), len(third), len(third), *big]
    assert len(streamed_sends) == sends
    assert literal_of(streamed[0]) == first
    assert b"* SEARCH 1 3\r\n" in streamed[3]
    # Only the UIDs differ between the two folders' copies: COPY kept them 1-3.
    assert streamed == in_memory


def test_big_messages_sent_from_their_files_do_not_count_towards_the_sliced_fetch(
    refservers_imap: Any,
    stored: dict[str, bytes],
    streamed_sends: list[int],
    monkeypatch: pytest.MonkeyPatch,
    raw_imap: Any,
) -> None:
    """Over INLINE_FETCH_BYTES in all takes Twisted's sliced path, unless the big
    messages go from their files (at most STREAMED_FILES_PER_FETCH): then only the
    small ones count."""
    monkeypatch.setattr(imap_module, "INLINE_FETCH_BYTES", 1000)
    sessions, sends = [], []
    for streamed_from, files in (
        (imap_module.STREAMED_MESSAGE_BYTES, 2),
        (2**40, 2),
        (imap_module.STREAMED_MESSAGE_BYTES, 1),
    ):
        monkeypatch.setattr(imap_module, "STREAMED_MESSAGE_BYTES", streamed_from)
        monkeypatch.setattr(imap_module, "STREAMED_FILES_PER_FETCH", files)
        commands = (b"FETCH 1:* (UID BODY.PEEK[] RFC822.SIZE)", b"FETCH 1:* (BODY.PEEK[TEXT]<0.10>)")
        sessions.append(raw_imap.session(refservers_imap, b"INBOX", commands))
        sends.append(len(streamed_sends))
    first, _, third = stored.values()
    # Only the first session's first FETCH went from the files: the second FETCH reads
    # the messages, the second session streams nothing, the third may open only one.
    assert streamed_sends == [len(first), len(third)] and sends == [2, 2, 2]
    assert sessions[0] == sessions[1] == sessions[2]
    assert all(files_open_on(key) == [] for key in stored)


def test_commands_pipelined_behind_a_streamed_fetch_wait_for_it(
    refservers_imap: Any, stored: dict[str, bytes], streamed_sends: list[int], raw_imap: Any
) -> None:
    first = next(iter(stored.values()))
    client = raw_imap(refservers_imap)
    try:
        client.command(b"LOGIN demo demo")
        client.command(b"SELECT INBOX")
        # All three before reading anything: the server's send buffer fills mid-literal.
        client.sock.sendall(b"a FETCH 1 (BODY.PEEK[])\r\nb NOOP\r\nc FETCH 1 (RFC822.SIZE)\r\n")
        answer = client.read_reply(b"a")
        rest = client.read_reply(b"c")
    finally:
        client.close()
    assert streamed_sends == [len(first)]
    assert answer.startswith(b"* 1 FETCH (BODY[] {%d}\r\n" % len(first))
    assert literal_of(answer) == first and answer.endswith(first + b")\r\na OK FETCH completed\r\n")
    assert rest.index(b"b OK") < rest.index(b"* 1 FETCH (RFC822.SIZE %d)" % len(first))


def test_streamed_fetch_over_tls(refservers_imap: Any, tls_client: Any, stored: dict[str, bytes]) -> None:
    first = next(iter(stored.values()))
    client = imaplib.IMAP4_SSL("localhost", refservers_imap.listeners["tls"], ssl_context=tls_client, timeout=10)
    try:
        client.login("demo", "demo")
        client.select("INBOX")
        status, data = client.fetch("1", "(BODY.PEEK[] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    finally:
        client.logout()
    assert status == "OK"
    assert data[0][1] == first and data[1][1] == b"Subject: first\r\n\r\n"


def test_a_client_that_leaves_mid_literal_leaves_no_file_open(
    refservers_imap: Any, stored: dict[str, bytes], streamed_sends: list[int], raw_imap: Any
) -> None:
    key, first = next(iter(stored.items()))
    leaving = raw_imap(refservers_imap)
    leaving.command(b"LOGIN demo demo")
    leaving.command(b"SELECT INBOX")
    leaving.sock.sendall(b"a FETCH 1 (BODY.PEEK[])\r\n")
    assert leaving.read_line().startswith(b"* 1 FETCH (BODY[] {")
    # A reset (linger 0), not a FIN: the server's next send fails at once.
    leaving.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    leaving.close()
    client = raw_imap(refservers_imap)
    try:
        client.command(b"LOGIN demo demo")
        client.command(b"SELECT INBOX")
        reply = client.command(b"FETCH 1 (BODY.PEEK[])")
    finally:
        client.close()
    assert literal_of(reply) == first and streamed_sends == [len(first)] * 2
    assert files_open_on(key) == []

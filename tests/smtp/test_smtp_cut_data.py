"""SMTP DATA cut mid-message: nothing is stored, nothing is acknowledged.

A message is the client's only when its lone-dot terminator arrived (RFC 5321 4.1.1.4);
a connection that ends before it (a reset, a FIN, a TLS end without close_notify,
even right after a ``\\r\\n.`` with no final CRLF) leaves no message in the store and
no ``message`` event, and the server keeps serving.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct

import pytest

from servers.mail.store import MailStore
from servers.smtp.server import SmtpServer

TIMEOUT = 10
HEAD = b"From: a@example.com\r\nTo: demo@example.com\r\nSubject: cut\r\n\r\n"


def reply(sock: socket.socket) -> bytes:
    """One (possibly multi-line) reply, read a byte at a time so nothing is left unread."""
    lines = []
    while True:
        line = b""
        while not line.endswith(b"\r\n"):
            byte = sock.recv(1)
            assert byte, f"closed after {lines!r} {line!r}"
            line += byte
        lines.append(line)
        if line[3:4] == b" ":
            return b"".join(lines)


def command(sock: socket.socket, line: bytes, expect: bytes) -> None:
    sock.sendall(line + b"\r\n")
    answer = reply(sock)
    assert answer.startswith(expect), answer


def open_data(server: SmtpServer, tls_client: ssl.SSLContext, tls: bool) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", server.listeners["tls" if tls else "main"]), timeout=TIMEOUT)
    sock = tls_client.wrap_socket(raw, server_hostname="localhost") if tls else raw
    assert reply(sock).startswith(b"220")
    command(sock, b"EHLO client.test", b"250")
    command(sock, b"MAIL FROM:<a@example.com>", b"250")
    command(sock, b"RCPT TO:<demo@example.com>", b"250")
    command(sock, b"DATA", b"354")
    return sock


def cut(sock: socket.socket, how: str) -> None:
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif how == "fin":
        sock.shutdown(socket.SHUT_WR)  # on TLS: a TCP FIN, no close_notify
    sock.close()  # on TLS: no unwrap(), so no close_notify


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "implicit-tls"])
@pytest.mark.parametrize("how", ["reset", "fin", "close"])
@pytest.mark.parametrize("tail", [b"half a line", b"last line\r\n.", b"last line\r\n.\r"], ids=["mid-line", "dot", "dot-cr"])
def test_data_cut_mid_message_stores_nothing(
    refservers_smtp: SmtpServer, mail_store: MailStore, tls_client: ssl.SSLContext, tls: bool, how: str, tail: bytes
) -> None:
    journal = refservers_smtp.core.journal
    since = journal.last_id
    sock = open_data(refservers_smtp, tls_client, tls)
    sock.sendall(HEAD + os.urandom(48_000).hex().encode() + b"\r\n" + tail)
    cut(sock, how)
    journal.wait_for(server="smtp", kind="disconnect", since=since, timeout=TIMEOUT)
    assert journal.events(server="smtp", kind="message", since=since) == []
    assert mail_store.messages("demo") == []
    # The server goes on: the next client's whole message is stored and acknowledged.
    sock = open_data(refservers_smtp, tls_client, tls)
    sock.sendall(HEAD + b"whole\r\n.\r\n")
    assert reply(sock).startswith(b"250")
    command(sock, b"QUIT", b"221")
    sock.close()
    assert len(mail_store.messages("demo")) == 1

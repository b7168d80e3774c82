"""A raw IMAP client for the tests that compare FETCH answers byte for byte (the
``raw_imap`` fixture: test modules cannot import each other or a conftest)."""

from __future__ import annotations

import smtplib
import socket
from typing import Any

import pytest


class RawImap:
    """Tagged commands over a plain socket; a reply is read line by line and literal by
    literal (by its announced size), as a client must, and returned as sent."""

    def __init__(self, server: Any):
        self.sock = socket.create_connection((server.probe_host, server.port), timeout=10)
        self.reader = self.sock.makefile("rb")
        self.counter = 0
        self.read_line()

    @classmethod
    def session(cls, server: Any, folder: bytes, commands: tuple[bytes, ...]) -> list[bytes]:
        """The replies to ``commands`` in one logged-in session with ``folder`` selected."""
        client = cls(server)
        try:
            assert b" OK" in client.command(b"LOGIN demo demo")
            assert b" OK" in client.command(b"SELECT " + folder)
            return [client.command(line) for line in commands]
        finally:
            client.close()

    @staticmethod
    def deliver(smtp_server: Any, *subjects: str, body_tail: str = "") -> None:
        """One plain message per subject, by SMTP into demo's INBOX; its body is
        ``body of <subject>`` and then ``body_tail`` (CRLF lines)."""
        with smtplib.SMTP(smtp_server.probe_host, smtp_server.port, timeout=10) as smtp:
            for subject in subjects:
                message = (
                    f"From: Alice <alice@example.com>\r\nTo: demo@example.com\r\nSubject: {subject}\r\n"
                    f"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n\r\nbody of {subject}\r\n{body_tail}"
                )
                smtp.sendmail("alice@example.com", ["demo@example.com"], message.encode())

    @classmethod
    def copy_inbox(cls, server: Any, folder: bytes) -> None:
        """Copy messages 1-3 of demo's INBOX into a new ``folder`` (COPY keeps their UIDs 1-3)."""
        client = cls(server)
        try:
            client.command(b"LOGIN demo demo")
            client.command(b"CREATE " + folder)
            client.command(b"SELECT INBOX")
            assert b" OK" in client.command(b"COPY 1:3 " + folder)
        finally:
            client.close()

    def read_line(self) -> bytes:
        line = self.reader.readline()
        assert line.endswith(b"\r\n"), f"connection closed after {line!r}"
        return line

    def read_reply(self, tag: bytes) -> bytes:
        """Everything up to and including the tagged line of ``tag``."""
        reply = []
        while True:
            line = self.read_line()
            reply.append(line)
            if line.startswith(tag + b" "):
                return b"".join(reply)
            if line.endswith(b"}\r\n"):
                size = int(line[line.rindex(b"{") + 1 : -3])
                reply.append(self.reader.read(size))

    def command(self, line: bytes) -> bytes:
        self.counter += 1
        tag = b"t%d" % self.counter
        self.sock.sendall(tag + b" " + line + b"\r\n")
        return self.read_reply(tag)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def raw_imap() -> type[RawImap]:
    return RawImap

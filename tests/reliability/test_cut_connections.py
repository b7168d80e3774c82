"""Uploads cut short against a whole `refservers up`: never acknowledged, never complete.

The rule (README "426 rule", docs/ftp.md): nothing is acknowledged unless all of it
arrived and was stored. Many uploads, cut at seeded random points in every way a
connection can end early, go to FTP (plain, explicit and implicit FTPS), SFTP, SMTP
and HTTP in one server process; then, from outside:

- no cut FTP upload was answered ``226`` (``425``/``426`` only), every file it left is
  a prefix of what was sent, and the journal has it only as ``complete: false``;
- no cut SFTP upload is journalled complete;
- no cut SMTP message and no cut HTTP upload was stored or journalled;
- the process is alive, and a well-behaved upload on each protocol still succeeds.

Every loop is bounded in count and time (sockets carry timeouts).
"""

from __future__ import annotations

import ftplib
import io
import json
import os
import random
import socket
import ssl
import struct
import urllib.request
from collections.abc import Iterator
from typing import Any

import paramiko
import pytest

from .conftest import Stack, journal, start_stack, stop_stack

TIMEOUT = 15
ROUNDS = 8  # per protocol and cut kind
USER, PASSWORD = "demo", "demo"
CUTS = ("reset", "close")  # close: FIN, and on TLS no close_notify (the socket is not unwrapped)


@pytest.fixture(scope="module")
def cut_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("cut"), only=["ftp", "sftp", "smtp", "http"])
    yield running
    stop_stack(running)


def last_id(stack: Stack) -> int:
    with urllib.request.urlopen(f"{stack.admin_url}/api/v1/events?limit=1", timeout=30) as reply:
        return int(json.load(reply)["last_id"])


def port(stack: Stack, server: str, listener: str = "main") -> int:
    return int(stack.servers[server]["listeners"][listener])


def trusting_nothing() -> ssl.SSLContext:
    # The certificate is not what this suite checks (tests/ftp does); the cut is.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def cut(sock: socket.socket, how: str) -> None:
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def ftp_client(stack: Stack, mode: str, implicit_ftp_tls: type[ftplib.FTP_TLS]) -> ftplib.FTP:
    client: ftplib.FTP
    if mode == "implicit":
        client = implicit_ftp_tls(context=trusting_nothing(), timeout=TIMEOUT)
        client.connect("127.0.0.1", port(stack, "ftp", "tls"))
    else:
        client = ftplib.FTP_TLS(context=trusting_nothing(), timeout=TIMEOUT) if mode == "explicit" else ftplib.FTP(timeout=TIMEOUT)
        client.connect("127.0.0.1", port(stack, "ftp"))
    client.login(USER, PASSWORD)
    if isinstance(client, ftplib.FTP_TLS):
        client.prot_p()
    client.voidcmd("TYPE I")
    return client


@pytest.mark.parametrize("mode", ["plain", "explicit", "implicit"])
def test_cut_ftp_uploads_are_never_acknowledged(cut_stack: Stack, mode: str, implicit_ftp_tls: type[ftplib.FTP_TLS]) -> None:
    rng = random.Random(f"ftp-{mode}")
    since = last_id(cut_stack)
    sent: dict[str, bytes] = {}
    client = ftp_client(cut_stack, mode, implicit_ftp_tls)
    try:
        for how in CUTS if mode != "plain" else ("reset",):  # a clear-text FIN is FTP's end of file
            for index in range(ROUNDS):
                name = f"cut-{mode}-{how}-{index}.bin"
                data = rng.randbytes(rng.randrange(1, 3 * 1024 * 1024))
                share = data[: rng.randrange(0, len(data) + 1) if how == "close" else rng.randrange(0, len(data))]
                sent[name] = share
                data_socket = client.transfercmd(f"STOR {name}")
                data_socket.sendall(share)
                cut(data_socket, how)
                try:
                    reply = client.voidresp()
                except ftplib.error_temp as error:
                    reply = str(error)
                assert reply[:4] in ("425 ", "426 "), f"{name} ({how}, {len(share)} of {len(data)} bytes): {reply}"
        client.storbinary("STOR whole.bin", io.BytesIO(b"whole"))  # still served
    finally:
        client.close()
    home = cut_stack.data_dir / "files" / "home" / USER
    events = [e for e in journal(cut_stack.admin_url, server="ftp", kind="file", since=since) if e["details"]["path"] != "/whole.bin"]
    assert sorted(e["details"]["path"] for e in events) == sorted(f"/{name}" for name in sent)
    assert not [e for e in events if e["details"]["complete"]]
    for name, share in sent.items():
        assert share.startswith((home / name).read_bytes()), name
    assert (home / "whole.bin").read_bytes() == b"whole"
    assert cut_stack.alive()


def test_cut_sftp_uploads_are_never_complete(cut_stack: Stack) -> None:
    rng = random.Random("sftp")
    since = last_id(cut_stack)
    for index in range(ROUNDS):
        raw = socket.create_connection(("127.0.0.1", port(cut_stack, "sftp")), timeout=TIMEOUT)
        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            ssh.connect("127.0.0.1", port(cut_stack, "sftp"), USER, PASSWORD, sock=raw, look_for_keys=False, allow_agent=False, timeout=TIMEOUT)
            remote = ssh.open_sftp().open(f"cut-{index}.bin", "w")
            remote.set_pipelined(bool(index % 2))
            for _ in range(rng.randrange(1, 6)):
                remote.write(rng.randbytes(rng.randrange(1, 40_000)))
        finally:
            cut(raw, CUTS[index % 2])
            ssh.close()
    names = {f"/cut-{index}.bin" for index in range(ROUNDS)}
    deadline_events: list[dict[str, Any]] = []
    for _ in range(200):  # bounded: the journal fills as the server notices each drop
        deadline_events = [e for e in journal(cut_stack.admin_url, server="sftp", kind="file", since=since) if e["details"]["path"] in names]
        if len(deadline_events) == ROUNDS:
            break
        with socket.create_connection(("127.0.0.1", port(cut_stack, "sftp")), timeout=TIMEOUT) as probe:
            probe.recv(64)  # a real round trip to the server's loop between two looks
    assert sorted(e["details"]["path"] for e in deadline_events) == sorted(names)
    assert not [e for e in deadline_events if e["details"]["complete"]]
    assert cut_stack.alive()


def smtp_reply(sock: socket.socket) -> bytes:
    lines = []
    while True:
        line = b""
        while not line.endswith(b"\r\n"):
            byte = sock.recv(1)
            assert byte, f"closed after {lines!r}"
            line += byte
        lines.append(line)
        if line[3:4] == b" ":
            return b"".join(lines)


@pytest.mark.parametrize("tls", [False, True], ids=["smtp", "smtps"])
def test_cut_smtp_data_is_never_stored(cut_stack: Stack, tls: bool) -> None:
    rng = random.Random(f"smtp-{tls}")
    since = last_id(cut_stack)
    for index in range(ROUNDS * 2):
        raw = socket.create_connection(("127.0.0.1", port(cut_stack, "smtp", "tls" if tls else "main")), timeout=TIMEOUT)
        sock = trusting_nothing().wrap_socket(raw, server_hostname="localhost") if tls else raw
        assert smtp_reply(sock).startswith(b"220")
        for line, expect in ((b"EHLO cut.test", b"250"), (b"MAIL FROM:<a@example.com>", b"250"), (b"RCPT TO:<demo@example.com>", b"250"), (b"DATA", b"354")):
            sock.sendall(line + b"\r\n")
            assert smtp_reply(sock).startswith(expect)
        body = b"Subject: cut\r\n\r\n" + os.urandom(rng.randrange(1, 200_000)).hex().encode() + b"\r\n.\r\n"
        sock.sendall(body[: rng.randrange(0, len(body) - 3)])  # never the whole terminator
        cut(sock, CUTS[index % 2])
    with socket.create_connection(("127.0.0.1", port(cut_stack, "smtp")), timeout=TIMEOUT) as sock:
        assert smtp_reply(sock).startswith(b"220")
        for line, expect in ((b"EHLO ok.test", b"250"), (b"MAIL FROM:<a@example.com>", b"250"), (b"RCPT TO:<demo@example.com>", b"250"), (b"DATA", b"354"), (b"Subject: whole\r\n\r\nwhole\r\n.", b"250")):
            sock.sendall(line + b"\r\n")
            assert smtp_reply(sock).startswith(expect)
    messages = journal(cut_stack.admin_url, server="smtp", kind="message", since=since)
    assert len(messages) == 1  # only the whole one; the cut ones, in order before it, never
    assert cut_stack.alive()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_cut_http_uploads_are_never_stored(cut_stack: Stack, tls: bool) -> None:
    rng = random.Random(f"http-{tls}")
    since = last_id(cut_stack)
    boundary = "reliability"

    def request(name: str, data: bytes, declared_shortfall: int = 0) -> bytes:
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n"
        ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        head = (
            f"POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body) - declared_shortfall}\r\n\r\n"
        ).encode()
        return head + body

    def connect() -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", port(cut_stack, "http", "tls" if tls else "main")), timeout=TIMEOUT)
        return trusting_nothing().wrap_socket(raw, server_hostname="localhost") if tls else raw

    def answer(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        return data

    for index in range(ROUNDS * 2):
        whole = request(f"cut-{tls}-{index}.bin", rng.randbytes(rng.randrange(1, 500_000)))
        sock = connect()
        sock.sendall(whole[: rng.randrange(0, len(whole) - 1)])
        cut(sock, CUTS[index % 2])
    # Content-Length shorter than the body by 3 bytes or more: a multipart body without its
    # close delimiter (only the CRLF after "--boundary--" may go missing).
    for index in range(ROUNDS):
        with connect() as sock:
            sock.sendall(request(f"short-{tls}-{index}.bin", rng.randbytes(rng.randrange(100, 50_000)), rng.randrange(3, 40)))
            assert answer(sock).startswith(b"HTTP/1.1 400 ")
    with connect() as sock:
        sock.sendall(request(f"whole-{tls}.bin", b"whole"))
        assert answer(sock).startswith(b"HTTP/1.1 201 ")
    stored = journal(cut_stack.admin_url, server="http", kind="file", since=since)
    assert [e["details"]["filename"] for e in stored] == [f"whole-{tls}.bin"]
    uploads = cut_stack.data_dir / "http" / "uploads"
    assert sorted(p.name for p in uploads.iterdir() if not p.name.startswith("whole-")) == []
    assert cut_stack.alive()

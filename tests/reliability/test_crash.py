"""kill -9 during SMTP DATA, an FTP upload and an SFTP upload, then restart on the same data.

Each test runs ``refservers run NAME --admin`` as a subprocess on port 0, drives it with
real clients, SIGKILLs it at a chosen point, restarts it over the same data dir and checks
two promises:

1. **Acknowledged data survives.** Every message the client saw ``250`` for, and every file
   the client saw ``226`` (FTP) or a successful close (SFTP) for, is there byte for byte.
2. **Nothing partial is visible as complete.**
   - Mail: a message is visible when it is in a Maildir's ``new/`` or ``cur/`` (``tmp/`` is
     the writer's scratch space and invisible by Maildir's definition). Every visible
     message must be one a client sent, whole.
   - Files: FTP and SFTP write in place (as vsftpd and OpenSSH do), so an interrupted
     upload may leave a shorter file under its name. A file is *visible as complete* when
     the server reported it complete: the client's ``226`` / close ``OK``, or a ``file``
     event with ``complete: true`` in the journal. Every file left on disk must be a
     prefix of what its client sent (never foreign or reordered bytes), and any file
     shorter than what was sent must not have been reported complete by either channel.

Kill points differ per round (mid-body, after the final byte before the reply arrives,
and at a random moment under concurrent load); every loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import json
import random
import smtplib
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest

from .conftest import Single, journal, run_server

USER, PASSWORD = "demo", "demo"
RECIPIENT = "demo@example.com"
DEADLINE_SECONDS = 30.0  # no round waits longer than this for its kill point
KILL_POINTS = ("mid_transfer", "after_last_byte", "under_load")


@dataclass
class Ledger:
    """What clients sent and what the server acknowledged, shared by sender threads."""

    sent: dict[str, bytes] = field(default_factory=dict)  # name -> the whole payload attempted
    acked: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked_event: threading.Condition = field(default_factory=threading.Condition)

    def attempt(self, name: str, payload: bytes) -> None:
        with self.lock:
            self.sent[name] = payload

    def ack(self, name: str) -> None:
        with self.acked_event:
            self.acked.add(name)
            self.acked_event.notify_all()

    def wait_acked(self, count: int, timeout: float) -> None:
        with self.acked_event:
            assert self.acked_event.wait_for(lambda: len(self.acked) >= count, timeout), (
                f"only {len(self.acked)} of {count} acknowledged in {timeout}s"
            )


def payload(rng: random.Random, name: str, size: int) -> bytes:
    """Recognisable bytes: a header naming the item, then random printable lines."""
    head = f"{name}\r\n".encode()
    body = bytearray()
    while len(body) < size:
        body += rng.randbytes(48).hex().encode() + b"\r\n"
    return head + bytes(body[: max(0, size - 2)]) + b"\r\n"  # whole lines: SMTP ends data with CRLF


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.fixture
def crashing(workdir: Path) -> Iterator[Callable[[str], Single]]:
    """Start servers on the test's data dir; whatever is still running is stopped after."""
    started: list[Single] = []

    def start(name: str) -> Single:
        server = run_server(name, workdir / "data", workdir)
        started.append(server)
        return server

    yield start
    with contextlib.ExitStack() as stops:  # every server is stopped even if one stop() raises
        for server in started:
            stops.callback(server.stop)


def load_senders(
    send_one: Callable[[str, bytes], None], ledger: Ledger, rng_seed: int, threads: int, sizes: tuple[int, int]
) -> list[threading.Thread]:
    """Threads that keep sending new items until the server dies (or the deadline)."""
    deadline = time.monotonic() + DEADLINE_SECONDS

    def worker(index: int) -> None:
        rng = random.Random(rng_seed * 1000 + index)
        for sequence in range(1000):  # bounded: the kill comes long before
            if time.monotonic() > deadline:
                return
            name = f"load-{index}-{sequence}"
            data = payload(rng, name, rng.randint(*sizes))
            ledger.attempt(name, data)
            try:
                send_one(name, data)
            except Exception:  # the server was killed under us: expected, stop sending
                return
            ledger.ack(name)

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    return workers


# -- SMTP ------------------------------------------------------------------------------------


def smtp_message(name: str, body: bytes) -> bytes:
    return (
        f"From: crash@test\r\nTo: {RECIPIENT}\r\nSubject: {name}\r\nMessage-ID: <{name}@crash.test>\r\n\r\n".encode()
        + body
    )


def visible_messages(data_dir: Path) -> list[bytes]:
    inbox = data_dir / "mail" / USER
    return [path.read_bytes() for sub in ("new", "cur") for path in sorted((inbox / sub).glob("*"))]


def smtp_send(port: int) -> Callable[[str, bytes], None]:
    def send(name: str, body: bytes) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("crash@test", [RECIPIENT], smtp_message(name, body))  # returns on 250

    return send


def read_reply(sock: socket.socket, code: bytes) -> None:
    buffer = b""
    while not buffer.endswith(b"\r\n") or buffer.split(b"\r\n")[-2][3:4] == b"-":
        chunk = sock.recv(4096)
        assert chunk, f"closed while waiting for {code!r}"
        buffer += chunk
    assert buffer.split(b"\r\n")[-2].startswith(code), buffer


def smtp_raw_until(port: int, message: bytes, point: str) -> None:
    """Open a DATA transaction by hand and stop at the kill point (no reply read after)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        read_reply(sock, b"220")
        for command, code in (
            (b"EHLO crash", b"250"),
            (b"MAIL FROM:<crash@test>", b"250"),
            (f"RCPT TO:<{RECIPIENT}>".encode(), b"250"),
            (b"DATA", b"354"),
        ):
            sock.sendall(command + b"\r\n")
            read_reply(sock, code)
        if point == "mid_transfer":
            sock.sendall(message[: len(message) // 2])
        else:  # after_last_byte: the whole message and the final dot, reply unread
            sock.sendall(message + b"\r\n.\r\n")
    finally:
        sock.close()


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_during_smtp_data_keeps_every_250_and_shows_no_partial_message(crashing, workdir, point):
    rng = random.Random(f"smtp-{point}")
    ledger = Ledger()
    server = crashing("smtp")
    send = smtp_send(server.port)
    for index in range(3):  # acknowledged before the crash, in every round
        name = f"before-{index}"
        body = payload(rng, name, rng.randint(100, 200_000))
        ledger.attempt(name, body)
        send(name, body)
        ledger.ack(name)

    if point == "under_load":
        workers = load_senders(send, ledger, rng.randint(0, 10**6), threads=6, sizes=(100, 300_000))
        ledger.wait_acked(3 + rng.randint(5, 20), DEADLINE_SECONDS)
        server.kill()
        for thread in workers:
            thread.join(DEADLINE_SECONDS)
    else:
        name = "in-flight"
        body = payload(rng, name, 400_000)
        ledger.attempt(name, body)
        smtp_raw_until(server.port, smtp_message(name, body), point)  # hex lines: no dot-stuffing needed
        server.kill()

    restarted = crashing("smtp")
    stored = visible_messages(workdir / "data")
    whole = {name: smtp_message(name, body) for name, body in ledger.sent.items()}
    for message in stored:  # every visible message is one a client sent, complete
        subject = message.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode()
        assert subject in whole, f"unknown message {subject!r} in the Maildir"
        assert message.endswith(whole[subject]), f"{subject}: partial or altered message visible in new/ or cur/"
    subjects = [m.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in stored]
    missing = sorted(ledger.acked - set(subjects))
    assert not missing, f"acknowledged with 250 but lost: {missing}"
    assert len(subjects) == len(set(subjects)), "a message stored twice"
    # The restarted server serves them: its mail admin API lists every stored message.
    with urllib.request.urlopen(f"{restarted.admin_url}/api/v1/messages?user={USER}&limit=0", timeout=30) as reply:
        assert json.load(reply)["count"] == len(stored)


# -- FTP -------------------------------------------------------------------------------------


def ftp_store(port: int) -> Callable[[str, bytes], None]:
    def store(name: str, data: bytes) -> None:
        with ftplib.FTP() as client:
            client.connect("127.0.0.1", port, timeout=30)
            client.login(USER, PASSWORD)
            client.storbinary(f"STOR {name}", _Reader(data))  # returns after the 226

    return store


class _Reader:
    """The payload as the file object ftplib reads from."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def read(self, size: int) -> bytes:
        chunk = self.data[self.offset : self.offset + size]
        self.offset += len(chunk)
        return chunk


def ftp_in_flight(port: int, name: str, data: bytes, point: str) -> tuple[socket.socket, ftplib.FTP]:
    """Upload by hand up to the kill point; returns what to close after the kill."""
    client = ftplib.FTP()
    client.connect("127.0.0.1", port, timeout=30)
    client.login(USER, PASSWORD)
    client.voidcmd("TYPE I")
    conn = client.transfercmd(f"STOR {name}")
    if point == "mid_transfer":
        conn.sendall(data[: len(data) // 2])
    else:  # after_last_byte: every byte sent and the data connection closed, 226 unread
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)  # the server closes its side once it has read everything
    return conn, client


def wait_for_file(path: Path, at_least: int) -> None:
    """Wait on the real signal: the server has written this much of the upload to disk."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= at_least:
            return
        time.sleep(0.01)  # polling the disk, not waiting for readiness
    raise AssertionError(f"{path} never reached {at_least} bytes")


def check_files(home: Path, ledger: Ledger, reported_complete: set[str]) -> None:
    for name, data in ledger.sent.items():
        path = home / name
        if name in ledger.acked:
            assert path.exists(), f"{name}: acknowledged but missing after the crash"
            assert path.read_bytes() == data, f"{name}: acknowledged but not intact after the crash"
            continue
        if not path.exists():
            continue
        stored = path.read_bytes()
        assert data.startswith(stored), f"{name}: bytes on disk are not a prefix of what was sent"
        if len(stored) < len(data):
            assert name not in reported_complete, f"{name}: truncated ({len(stored)}/{len(data)}) but reported complete"
    strangers = {p.name for p in home.iterdir()} - set(ledger.sent)
    assert not strangers, f"files nobody uploaded: {strangers}"


def complete_uploads(server: Single, name: str) -> set[str]:
    events = journal(server.admin_url, server=name, kind="file")
    return {
        e["details"]["path"].lstrip("/")
        for e in events
        if e["details"]["direction"] == "upload" and e["details"]["complete"]
    }


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_during_ftp_upload_keeps_every_226_and_reports_no_partial_file(crashing, workdir, point):
    rng = random.Random(f"ftp-{point}")
    ledger = Ledger()
    server = crashing("ftp")
    store = ftp_store(server.port)
    for index in range(3):
        name = f"before-{index}"
        data = payload(rng, name, rng.randint(0, 300_000))
        ledger.attempt(name, data)
        store(name, data)
        ledger.ack(name)
    home = workdir / "data" / "files" / "home" / USER

    opened: tuple[socket.socket, ftplib.FTP] | None = None
    if point == "under_load":
        workers = load_senders(store, ledger, rng.randint(0, 10**6), threads=6, sizes=(0, 2_000_000))
        ledger.wait_acked(3 + rng.randint(5, 20), DEADLINE_SECONDS)
    else:
        name = "in-flight"
        data = payload(rng, name, 8_000_000)
        ledger.attempt(name, data)
        opened = ftp_in_flight(server.port, name, data, point)
        wait_for_file(home / name, len(data) // 4 if point == "mid_transfer" else len(data))
    reported = complete_uploads(server, "ftp")  # the journal's view just before the crash
    server.kill()
    if point == "under_load":
        for thread in workers:
            thread.join(DEADLINE_SECONDS)
    if opened:
        for closable in opened:
            closable.close()

    restarted = crashing("ftp")
    check_files(home, ledger, reported)
    # The restarted server serves every acknowledged file with its exact size.
    with ftplib.FTP() as client:
        client.connect("127.0.0.1", restarted.port, timeout=30)
        client.login(USER, PASSWORD)
        client.voidcmd("TYPE I")
        for name in sorted(ledger.acked):
            assert client.size(name) == len(ledger.sent[name])
        sample = sorted(ledger.acked)[-1]
        digest = hashlib.sha256()
        client.retrbinary(f"RETR {sample}", digest.update)
        assert digest.digest() == hashlib.sha256(ledger.sent[sample]).digest()


# -- SFTP ------------------------------------------------------------------------------------


def sftp_session(port: int) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    ssh = paramiko.SSHClient()
    ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    ssh.connect("127.0.0.1", port, USER, PASSWORD, timeout=30, allow_agent=False, look_for_keys=False)
    return ssh, ssh.open_sftp()


def sftp_put(port: int) -> Callable[[str, bytes], None]:
    def put(name: str, data: bytes) -> None:
        ssh, sftp = sftp_session(port)
        try:
            with sftp.open(name, "wb") as remote:  # close() waits for the server's OK
                remote.write(data)
        finally:
            sftp.close()
            ssh.close()

    return put


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_during_sftp_upload_keeps_every_closed_file_and_reports_no_partial_file(crashing, workdir, point):
    rng = random.Random(f"sftp-{point}")
    ledger = Ledger()
    server = crashing("sftp")
    put = sftp_put(server.port)
    for index in range(3):
        name = f"before-{index}"
        data = payload(rng, name, rng.randint(0, 300_000))
        ledger.attempt(name, data)
        put(name, data)
        ledger.ack(name)
    home = workdir / "data" / "files" / "home" / USER

    session = None
    if point == "under_load":
        workers = load_senders(put, ledger, rng.randint(0, 10**6), threads=4, sizes=(0, 1_000_000))
        ledger.wait_acked(3 + rng.randint(3, 10), DEADLINE_SECONDS)
    else:
        name = "in-flight"
        data = payload(rng, name, 2_000_000)
        ledger.attempt(name, data)
        session = sftp_session(server.port)
        remote = session[1].open(name, "wb")
        if point == "mid_transfer":
            remote.write(data[: len(data) // 2])
            wait_for_file(home / name, len(data) // 4)
        else:  # after_last_byte: every write acknowledged, the handle not yet closed
            remote.write(data)
            remote.flush()
            wait_for_file(home / name, len(data))
    reported = complete_uploads(server, "sftp")
    server.kill()
    if point == "under_load":
        for thread in workers:
            thread.join(DEADLINE_SECONDS)
    if session:
        with contextlib.suppress(Exception):  # the server is gone: closing cannot succeed
            remote.close()
        session[1].close()
        session[0].close()

    crashing("sftp")
    check_files(home, ledger, reported)
    if point == "after_last_byte":
        # Every byte arrived but the close was never acknowledged: not reported complete.
        assert "in-flight" not in reported


# -- NNTP ------------------------------------------------------------------------------------


def nntp_article(name: str, body: bytes) -> bytes:
    head = f"From: crash@test\r\nNewsgroups: local.test\r\nSubject: {name}\r\nMessage-ID: <{name}@crash.test>\r\n\r\n"
    return head.encode() + body


def nntp_post_until(port: int, article: bytes, point: str | None) -> None:
    """POST ``article`` (hex lines: nothing to dot-stuff); with a kill point, stop there
    without reading the reply; without one, return on 240 (raise otherwise)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")
        try:
            assert reader.readline().startswith(b"200")
            sock.sendall(b"POST\r\n")
            assert reader.readline().startswith(b"340")
            if point == "mid_transfer":
                sock.sendall(article[: len(article) // 2])
                return
            sock.sendall(article + b".\r\n")
            if point is None:
                reply = reader.readline()
                assert reply.startswith(b"240"), reply
        finally:
            reader.close()


def served_articles(admin_url: str) -> dict[str, bytes]:
    """Subject -> article, as the restarted server serves local.test through its admin API."""
    with urllib.request.urlopen(f"{admin_url}/api/v1/news/local.test", timeout=30) as reply:
        listing = json.load(reply)["articles"]
    numbers = [entry["number"] for entry in listing]
    # One number per article, ascending; a post cut short by the kill may leave a gap.
    assert numbers == sorted(set(numbers)), f"numbers not one per article: {numbers}"
    served = {}
    for entry in listing:
        with urllib.request.urlopen(f"{admin_url}/api/v1/news/local.test/{entry['number']}", timeout=30) as reply:
            served[entry["subject"]] = reply.read()
    return served


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_during_nntp_post_keeps_every_240_and_shows_no_partial_article(crashing, workdir, point):
    rng = random.Random(f"nntp-{point}")
    ledger = Ledger()
    server = crashing("nntp")

    def send(name: str, body: bytes) -> None:
        nntp_post_until(server.port, nntp_article(name, body), None)

    for index in range(3):  # acknowledged before the crash, in every round
        name = f"before-{index}"
        body = payload(rng, name, rng.randint(100, 200_000))
        ledger.attempt(name, body)
        send(name, body)
        ledger.ack(name)

    if point == "under_load":
        workers = load_senders(send, ledger, rng.randint(0, 10**6), threads=6, sizes=(100, 300_000))
        ledger.wait_acked(3 + rng.randint(5, 20), DEADLINE_SECONDS)
        server.kill()
        for thread in workers:
            thread.join(DEADLINE_SECONDS)
    else:
        name = "in-flight"
        body = payload(rng, name, 400_000)
        ledger.attempt(name, body)
        nntp_post_until(server.port, nntp_article(name, body), point)
        server.kill()

    restarted = crashing("nntp")
    served = served_articles(restarted.admin_url)
    samples = {"test", "another test"}
    for subject, article in served.items():  # every visible article is one a client sent, whole
        if subject in samples:
            continue
        assert subject in ledger.sent, f"unknown article {subject!r} in the spool"
        assert article.endswith(b"\r\n\r\n" + ledger.sent[subject]), f"{subject}: partial or altered article served"
    missing = sorted(ledger.acked - set(served))
    assert not missing, f"acknowledged with 240 but lost: {missing}"

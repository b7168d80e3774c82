"""100 concurrent clients per server against a real `refservers up`, every item accounted for.

Each test opens CLIENTS connections from as many threads, lines them up on a barrier so
they are all connected at once, lets each do a fixed, small amount of work, and then
counts on the server side: messages in the mail store (admin API), files on disk with
their sizes and bytes, requests in the journal. Zero client errors are allowed. Every
loop is bounded in count, every wait in time, and only loopback is used. Speed is not
asserted: the figures are in bench/.
"""

from __future__ import annotations

import ftplib
import http.client
import imaplib
import io
import json
import poplib
import random
import smtplib
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import paramiko
import pytest

from servers.telnet.server import refusals, strip_commands

from .conftest import Stack, journal, start_stack, stop_stack

CLIENTS = 100
CLIENT_TIMEOUT = 60.0  # seconds any single socket operation may take under load
TEST_DEADLINE = 100.0  # seconds the whole fan-out may take (inside pytest's 120 s per-test timeout)
USER, PASSWORD = "demo", "demo"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # 100 FTP clients need more passive ports than the fixed default range, which other
    # test processes share: any free port instead.
    running = start_stack(tmp_path_factory.mktemp("load"), extra_env={"REFSERVERS_FTP_PASSIVE_PORTS": "0"})
    yield running
    stop_stack(running)


def port_of(stack: Stack, name: str, listener: str | None = None) -> int:
    listeners = stack.servers[name]["listeners"]
    return int(listeners[listener] if listener else next(iter(listeners.values())))


def fan_out(work: Callable[[int, threading.Barrier], Any], clients: int = CLIENTS) -> list[Any]:
    """Run ``work(index, barrier)`` in ``clients`` threads at once; any error fails the test.

    ``work`` connects, waits on the barrier (so every client is connected concurrently),
    then does its bounded work and returns what it acknowledged.
    """
    barrier = threading.Barrier(clients, timeout=CLIENT_TIMEOUT)
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(work, index, barrier) for index in range(clients)]
        results = [future.result(timeout=TEST_DEADLINE) for future in futures]
    return results


def admin_json(stack: Stack, path: str) -> Any:
    with urllib.request.urlopen(stack.admin_url + path, timeout=CLIENT_TIMEOUT) as reply:
        return json.load(reply)


def last_event_id(stack: Stack) -> int:
    return int(admin_json(stack, "/api/v1/events?limit=1")["last_id"])


def deliver(stack: Stack, recipients: list[str], subjects: list[str]) -> None:
    """Seed mailboxes through SMTP itself: one message per subject, to every recipient."""
    with smtplib.SMTP("127.0.0.1", port_of(stack, "smtp"), timeout=CLIENT_TIMEOUT) as client:
        for subject in subjects:
            message = f"From: seed@load.test\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n"
            refused = client.sendmail("seed@load.test", recipients, message)
            assert not refused


# -- mail ------------------------------------------------------------------------------------


def test_smtp_100_senders_every_accepted_message_is_stored(stack):
    per_client = 3

    def send(index: int, barrier: threading.Barrier) -> list[str]:
        sent = []
        with smtplib.SMTP("127.0.0.1", port_of(stack, "smtp"), timeout=CLIENT_TIMEOUT) as client:
            client.ehlo()
            barrier.wait()
            for number in range(per_client):
                subject = f"smtp-load {index}-{number}"
                lines = ("x" * 70 + "\r\n") * random.randint(1, 300)  # RFC 5321 line limit: 1000
                body = f"From: c{index}@load.test\r\nSubject: {subject}\r\n\r\n" + lines
                assert client.sendmail(f"c{index}@load.test", [f"smtp-load-{index}@example.com"], body) == {}
                sent.append(subject)
        return sent

    acknowledged = {subject for sent in fan_out(send) for subject in sent}
    assert len(acknowledged) == CLIENTS * per_client
    stored = admin_json(stack, "/api/v1/messages?subject=smtp-load&limit=0")["messages"]
    assert sorted(m["Subject"] for m in stored) == sorted(acknowledged)


def test_pop3_100_clients_log_in_and_retrieve_every_message(stack):
    users = [f"pop-load-{i}@example.com" for i in range(CLIENTS)]
    subjects = [f"pop-load {n}" for n in range(3)]
    deliver(stack, users, subjects)

    def retrieve(index: int, barrier: threading.Barrier) -> int:
        client = poplib.POP3("127.0.0.1", port_of(stack, "pop3"), timeout=CLIENT_TIMEOUT)
        try:
            barrier.wait()
            client.user(users[index])
            client.pass_(users[index])  # an on-the-fly mailbox: the password is the address
            count, _ = client.stat()
            assert count == len(subjects)
            seen = set()
            for number in range(1, count + 1):
                lines = client.retr(number)[1]
                seen |= {line.decode()[len("Subject: ") :] for line in lines if line.startswith(b"Subject: ")}
            assert seen == set(subjects)
            return count
        finally:
            client.quit()

    assert sum(fan_out(retrieve)) == CLIENTS * len(subjects)


def test_imap_100_clients_log_in_search_and_fetch_every_message(stack):
    users = [f"imap-load-{i}@example.com" for i in range(CLIENTS)]
    subjects = [f"imap-load {n}" for n in range(3)]
    deliver(stack, users, subjects)

    def fetch(index: int, barrier: threading.Barrier) -> int:
        client = imaplib.IMAP4("127.0.0.1", port_of(stack, "imap"), timeout=CLIENT_TIMEOUT)
        try:
            barrier.wait()
            client.login(users[index], users[index])
            client.select("INBOX", readonly=True)
            status, data = client.search(None, "ALL")
            assert status == "OK"
            numbers = data[0].split()
            assert len(numbers) == len(subjects)
            seen = set()
            for number in numbers:
                status, parts = client.fetch(number, "(BODY.PEEK[])")
                assert status == "OK"
                raw = parts[0][1]
                seen.add(raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode())
            assert seen == set(subjects)
            return len(numbers)
        finally:
            client.logout()

    assert sum(fan_out(fetch)) == CLIENTS * len(subjects)


# -- files -----------------------------------------------------------------------------------


def home(stack: Stack) -> Any:
    return stack.data_dir / "files" / "home" / USER


def test_ftp_100_clients_upload_and_every_file_is_there_with_its_bytes(stack):
    def upload(index: int, barrier: threading.Barrier) -> tuple[str, bytes]:
        data = random.randbytes(random.randint(0, 200_000))
        name = f"ftp-load-{index}.bin"
        with ftplib.FTP() as client:
            client.connect("127.0.0.1", port_of(stack, "ftp"), timeout=CLIENT_TIMEOUT)
            client.login(USER, PASSWORD)
            barrier.wait()
            reply = client.storbinary(f"STOR {name}", io.BytesIO(data))
            assert reply.startswith("226"), reply
            assert client.size(name) == len(data)
        return name, data

    uploaded = dict(fan_out(upload))
    assert len(uploaded) == CLIENTS
    for name, data in uploaded.items():
        assert (home(stack) / name).read_bytes() == data, name
    files = {e["details"]["path"] for e in journal(stack.admin_url, server="ftp", kind="file")}
    assert {f"/{name}" for name in uploaded} <= files


def test_sftp_100_clients_upload_and_every_file_is_there_with_its_bytes(stack):
    def upload(index: int, barrier: threading.Barrier) -> tuple[str, bytes]:
        data = random.randbytes(random.randint(0, 200_000))
        name = f"sftp-load-{index}.bin"
        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            ssh.connect(
                "127.0.0.1",
                port_of(stack, "sftp"),
                USER,
                PASSWORD,
                timeout=CLIENT_TIMEOUT,
                banner_timeout=CLIENT_TIMEOUT,
                auth_timeout=CLIENT_TIMEOUT,
                allow_agent=False,
                look_for_keys=False,
            )
            with ssh.open_sftp() as sftp:
                barrier.wait()
                with sftp.open(name, "wb") as remote:
                    remote.write(data)
                assert sftp.stat(name).st_size == len(data)
        finally:
            ssh.close()
        return name, data

    uploaded = dict(fan_out(upload))
    assert len(uploaded) == CLIENTS
    for name, data in uploaded.items():
        assert (home(stack) / name).read_bytes() == data, name


# -- HTTP, JSON-RPC, proxy ------------------------------------------------------------------


def keep_alive_gets(port: int, paths: list[str], barrier: threading.Barrier) -> list[dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        connection.connect()
        barrier.wait()
        answers = []
        for path in paths:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, (path, response.status, body[:200])
            answers.append(json.loads(body))
        return answers
    finally:
        connection.close()


def test_http_100_clients_every_request_answered_and_journalled(stack):
    per_client = 10
    since = last_event_id(stack)
    port = port_of(stack, "http")

    def get(index: int, barrier: threading.Barrier) -> int:
        paths = [f"/get?client={index}&n={n}" for n in range(per_client)]
        answers = keep_alive_gets(port, paths, barrier)
        assert [a["args"] for a in answers] == [{"client": str(index), "n": str(n)} for n in range(per_client)]
        return len(answers)

    assert sum(fan_out(get)) == CLIENTS * per_client
    logged = journal(stack.admin_url, server="http", kind="request", since=since)
    assert (
        sum(1 for e in logged if e["details"]["path"] == "/get" and e["details"]["status"] == 200)
        == CLIENTS * per_client
    )


def test_proxy_100_clients_every_forwarded_request_answered(stack):
    per_client = 5
    since = last_event_id(stack)
    upstream = f"http://127.0.0.1:{port_of(stack, 'http')}"
    port = port_of(stack, "proxy")

    def get(index: int, barrier: threading.Barrier) -> int:
        paths = [f"{upstream}/get?via=proxy&client={index}&n={n}" for n in range(per_client)]
        answers = keep_alive_gets(port, paths, barrier)
        assert [a["args"]["n"] for a in answers] == [str(n) for n in range(per_client)]
        return len(answers)

    assert sum(fan_out(get)) == CLIENTS * per_client
    forwarded = journal(stack.admin_url, server="proxy", kind="request", since=since)
    assert len(forwarded) == CLIENTS * per_client
    reached = journal(stack.admin_url, server="http", kind="request", since=since)
    assert len(reached) == CLIENTS * per_client


def test_jsonrpc_100_clients_every_call_answered_and_journalled(stack):
    per_client = 10
    since = last_event_id(stack)
    port = port_of(stack, "jsonrpc")

    def call(index: int, barrier: threading.Barrier) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
        try:
            connection.connect()
            barrier.wait()
            for n in range(per_client):
                request = {"jsonrpc": "2.0", "method": "add", "params": [index, n], "id": f"{index}-{n}"}
                connection.request("POST", "/", json.dumps(request), {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = json.loads(response.read())
                assert answer == {"jsonrpc": "2.0", "result": index + n, "id": f"{index}-{n}"}
        finally:
            connection.close()
        return per_client

    assert sum(fan_out(call)) == CLIENTS * per_client
    calls = journal(stack.admin_url, server="jsonrpc", kind="request", since=since)
    assert sum(1 for e in calls if e["details"].get("method") == "add") == CLIENTS * per_client


# -- telnet ----------------------------------------------------------------------------------


class NvtClient:
    """A minimal Telnet client: refuses every option, reads text up to a marker."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)
        self.text = b""

    def read_until(self, marker: bytes) -> bytes:
        for _ in range(10_000):  # bounded: each recv either grows the text or times out
            if marker in self.text:
                before, _, self.text = self.text.partition(marker)
                return before
            chunk = self.sock.recv(4096)
            assert chunk, f"closed before {marker!r}; got {self.text[-200:]!r}"
            self.sock.sendall(refusals(chunk))
            self.text += strip_commands(chunk)
        raise AssertionError(f"no {marker!r}")

    def line(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def close(self) -> None:
        self.sock.close()


def test_telnet_100_clients_log_in_and_run_a_command(stack):
    since = last_event_id(stack)

    def session(index: int, barrier: threading.Barrier) -> bool:
        client = NvtClient(port_of(stack, "telnet"))
        try:
            client.read_until(b"login: ")
            barrier.wait()
            client.line(USER)
            client.read_until(b"Password: ")
            client.line(PASSWORD)
            client.read_until(b"$ ")
            client.line(f"echo telnet-load-{index}")
            output = client.read_until(b"$ ")
            assert f"telnet-load-{index}" in output.decode().splitlines(), output
            client.line("exit")
            return True
        finally:
            client.close()

    assert all(fan_out(session))
    logins = journal(stack.admin_url, server="telnet", kind="auth", since=since)
    assert sum(1 for e in logins if e["details"]["ok"]) == CLIENTS
    commands = journal(stack.admin_url, server="telnet", kind="command", since=since)
    echoed = {e["details"].get("line") for e in commands}
    assert {f"echo telnet-load-{i}" for i in range(CLIENTS)} <= echoed


# -- news ------------------------------------------------------------------------------------


def nntp_exchange(sock_file: Any, sock: socket.socket, line: str) -> str:
    sock.sendall(line.encode() + b"\r\n")
    return sock_file.readline().decode().rstrip("\r\n")


def test_nntp_100_clients_post_and_read_back_every_article(stack):
    per_client = 2

    def post_and_read(index: int, barrier: threading.Barrier) -> list[tuple[str, str]]:
        posted = []
        with socket.create_connection(("127.0.0.1", port_of(stack, "nntp")), timeout=CLIENT_TIMEOUT) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"200")
            barrier.wait()
            for number in range(per_client):
                subject = f"nntp-load {index}-{number}"
                assert nntp_exchange(reader, sock, "POST").startswith("340")
                body = "".join(f".{n} {'x' * random.randint(0, 70)}\r\n" for n in range(random.randint(1, 50)))
                article = f"From: c{index}@load.test\r\nNewsgroups: local.test\r\nSubject: {subject}\r\n\r\n{body}"
                stuffed = "".join(
                    "." + line + "\r\n" if line.startswith(".") else line + "\r\n"
                    for line in article.split("\r\n")[:-1]
                )
                reply = nntp_exchange(reader, sock, stuffed + ".")
                assert reply.startswith("240"), reply
                message_id = reply.split()[-1]
                assert nntp_exchange(reader, sock, f"BODY {message_id}").startswith("222 0 ")
                served = b""
                while (line := reader.readline()) != b".\r\n":
                    assert line, "connection closed mid-body"
                    served += line[1:] if line.startswith(b".") else line
                assert served.decode() == body
                posted.append((subject, message_id))
            assert nntp_exchange(reader, sock, "QUIT").startswith("205")
            reader.close()
        return posted

    acknowledged = dict(item for posted in fan_out(post_and_read) for item in posted)
    assert len(acknowledged) == CLIENTS * per_client
    stored = admin_json(stack, "/api/v1/news/local.test")["articles"]
    loaded = {a["subject"]: a for a in stored if a["subject"].startswith("nntp-load ")}
    assert {subject: a["message_id"] for subject, a in loaded.items()} == acknowledged
    numbers = sorted(a["number"] for a in stored)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # one stable number each, no gaps


def test_every_server_still_answers_its_probe_after_the_load(stack):
    from servers import registry

    assert stack.alive()
    for name in stack.servers:
        registry.server_class(name).probe("127.0.0.1", port_of(stack, name), 10)

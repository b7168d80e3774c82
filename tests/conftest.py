"""Fixtures for the tests of more than one room, independent of the servers' code.

- ``udp``: a UDP client socket (the DNS and socket-service tests).
- Upstreams for the proxy and toxiproxy tests:
  - ``origin``: a stdlib ``http.server`` (HTTP/1.1, keep-alive) on port 0 in a thread,
    answering every method with JSON describing what it received (method, path,
    headers, body, the client port: a reused upstream connection keeps its port), and
    ``/bytes/N`` with N bytes of ``x``.
  - ``echo``: a threaded TCP echo server on port 0.
  - ``silent``: a listening socket that accepts (the kernel completes the handshake)
    and never answers: an upstream that times out.
  - ``closed_port``: a port nothing listens on (bound, then closed).
"""

from __future__ import annotations

import ftplib
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from servers.core import Core, Server
from servers.mail.store import MailStore


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    """A UDP client socket with a 10 s receive timeout (closed after the test)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(10)
    yield sock
    sock.close()


class OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        if self.path.startswith("/bytes/"):
            payload = b"x" * int(self.path.rsplit("/", 1)[1])
            content_type = "application/octet-stream"
        else:
            payload = json.dumps(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                    "via": self.headers.get_all("Via") or [],
                    "body": body.decode("latin-1"),
                    "client_port": self.client_address[1],
                }
            ).encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Origin", "yes")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer


class QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the reset_peer tests break connections on purpose


class Origin:
    def __init__(self) -> None:
        self.server = QuietHTTPServer(("127.0.0.1", 0), OriginHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except ConnectionResetError:
            pass  # the reset toxics and cut-connection tests end connections this way


class Echo:
    def __init__(self) -> None:
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), EchoHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


@pytest.fixture
def silent() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- mail: the store behind the test's SMTP/POP3/IMAP servers, TLS trust -----------------


@pytest.fixture
def mail_store(refservers_core: Core) -> MailStore:
    """The MailStore the test's SMTP/POP3/IMAP servers share."""
    return refservers_core.shared(MailStore)


@pytest.fixture
def tls_client(refservers_core: Core) -> ssl.SSLContext:
    """A client context trusting only the generated CA (hostname checked)."""
    return refservers_core.tls.client_context()


# -- files: logged-in ftplib sessions, closed after the test ----------------------------


FTP_TIMEOUT = 15


class ImplicitFTP_TLS(ftplib.FTP_TLS):
    """ftplib speaks only explicit FTPS; implicit FTPS wraps the socket before the 220."""

    def connect(self, host: str = "", port: int = 0, timeout: float = FTP_TIMEOUT, source_address: Any = None) -> str:
        self.host, self.port, self.timeout = host, port, timeout
        raw = socket.create_connection((host, port), timeout)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


FtpLogin = Callable[..., ftplib.FTP]


@pytest.fixture
def ftp_login(refservers_ftp: Server) -> Iterator[FtpLogin]:
    """``ftp_login(user, password, tls=None|"explicit"|"implicit", passive=True)``."""
    opened: list[ftplib.FTP] = []

    def login(user: str = "demo", password: str = "demo", tls: str | None = None, passive: bool = True) -> ftplib.FTP:
        context = refservers_ftp.core.tls.client_context()
        client: ftplib.FTP
        port = refservers_ftp.port
        if tls == "implicit":
            client = ImplicitFTP_TLS(context=context, timeout=FTP_TIMEOUT)
            port = refservers_ftp.listeners["tls"]
        elif tls == "explicit":
            client = ftplib.FTP_TLS(context=context, timeout=FTP_TIMEOUT)
        else:
            client = ftplib.FTP(timeout=FTP_TIMEOUT)
        opened.append(client)
        client.connect("127.0.0.1", port)
        client.login(user, password)
        if isinstance(client, ftplib.FTP_TLS):
            client.prot_p()
        client.set_pasv(passive)
        client.voidcmd("TYPE I")
        return client

    yield login
    for client in opened:
        client.close()


@pytest.fixture
def implicit_ftp_tls() -> type[ImplicitFTP_TLS]:
    """The implicit-FTPS ftplib client class (test modules cannot import conftest)."""
    return ImplicitFTP_TLS

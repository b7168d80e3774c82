"""Clients for the file-server tests: logged-in ftplib sessions, closed after the test."""

from __future__ import annotations

import ftplib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from servers.core import Server

TIMEOUT = 15


class ImplicitFTP_TLS(ftplib.FTP_TLS):
    """ftplib speaks only explicit FTPS; implicit FTPS wraps the socket before the 220."""

    def connect(self, host: str = "", port: int = 0, timeout: float = TIMEOUT, source_address: Any = None) -> str:
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
            client = ImplicitFTP_TLS(context=context, timeout=TIMEOUT)
            port = refservers_ftp.listeners["tls"]
        elif tls == "explicit":
            client = ftplib.FTP_TLS(context=context, timeout=TIMEOUT)
        else:
            client = ftplib.FTP(timeout=TIMEOUT)
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

"""FTPS with ftplib: explicit (AUTH TLS + PROT P) and implicit, certificates verified
against the core's CA, and the require_tls switch."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import ssl

import pytest

from servers.core import Server

TIMEOUT = 15


@pytest.mark.parametrize("mode", ["explicit", "implicit"])
def test_protected_round_trip_with_verified_certificate(refservers_ftp: Server, ftp_login, mode: str) -> None:
    data = os.urandom(1024 * 1024 + 3)
    client = ftp_login(tls=mode)
    assert isinstance(client.sock, ssl.SSLSocket)
    client.storbinary("STOR tls.bin", io.BytesIO(data))
    received = io.BytesIO()
    client.retrbinary("RETR tls.bin", received.write)
    assert hashlib.sha256(received.getvalue()).digest() == hashlib.sha256(data).digest()
    # PROT P: the data connection itself is TLS.
    with client.transfercmd("NLST") as data_socket:
        assert isinstance(data_socket, ssl.SSLSocket)
        assert b"tls.bin" in data_socket.recv(1024)
        data_socket.unwrap()
    client.voidresp()


def test_certificate_is_checked_by_the_client(refservers_ftp: Server) -> None:
    untrusting = ssl.create_default_context()  # system CAs only: our CA is not among them
    client = ftplib.FTP_TLS(context=untrusting, timeout=TIMEOUT)
    try:
        client.connect("127.0.0.1", refservers_ftp.port)
        with pytest.raises(ssl.SSLCertVerificationError):
            client.auth()
    finally:
        client.close()


def test_implicit_port_speaks_tls_first(refservers_ftp: Server, implicit_ftp_tls) -> None:
    # A plain client on the implicit port gets no greeting in clear text.
    plain = ftplib.FTP(timeout=2)
    try:
        with pytest.raises((TimeoutError, EOFError, OSError, ftplib.Error)):
            plain.connect("127.0.0.1", refservers_ftp.listeners["tls"])
    finally:
        plain.close()
    client = implicit_ftp_tls(context=refservers_ftp.core.tls.client_context(), timeout=TIMEOUT)
    try:
        assert client.connect("127.0.0.1", refservers_ftp.listeners["tls"]).startswith("220")
        with pytest.raises(ftplib.error_perm, match="^503 Already using TLS"):
            client.sendcmd("AUTH TLS")
        assert client.login("demo", "demo").startswith("230")
    finally:
        client.close()


def test_require_tls_refuses_clear_text_login(refservers_start) -> None:
    server = refservers_start("ftp", require_tls="true")
    with ftplib.FTP(timeout=TIMEOUT) as plain:
        plain.connect("127.0.0.1", server.port)
        with pytest.raises(ftplib.error_perm, match="^550 SSL/TLS required"):
            plain.login("demo", "demo")
    client = ftplib.FTP_TLS(context=server.core.tls.client_context(), timeout=TIMEOUT)
    try:
        client.connect("127.0.0.1", server.port)
        client.login("demo", "demo")
        with pytest.raises(ftplib.error_perm, match="^550 SSL/TLS required on the data"):
            client.nlst()  # no PROT P yet
        client.prot_p()
        client.nlst()
    finally:
        client.close()


def test_empty_listings_over_prot_p_complete_the_tls_handshake(refservers_ftp) -> None:
    # An empty directory means nothing to send: the server used to close the data
    # connection mid-handshake and the client failed with SHUTDOWN_WHILE_IN_INIT.
    client = ftplib.FTP_TLS(context=refservers_ftp.core.tls.client_context(), timeout=TIMEOUT)
    try:
        client.connect("127.0.0.1", refservers_ftp.port)
        client.login("demo", "demo")
        client.prot_p()
        client.mkd("empty")
        for _ in range(25):
            assert client.nlst("empty") == []
            assert list(client.mlsd("empty")) == []
    finally:
        client.close()

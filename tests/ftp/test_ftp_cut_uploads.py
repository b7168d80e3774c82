"""The 426 rule: an FTP upload whose data connection was cut is never acknowledged.

Real clients over real sockets: ftplib with the data socket reset (``SO_LINGER`` 0)
or, on TLS, closed without ``unwrap()`` (a TCP FIN with no close_notify); curl
uploading many files of odd sizes over both FTPS modes, every stored byte compared.
See docs/ftp.md ("The 426 rule").
"""

from __future__ import annotations

import ftplib
import os
import shutil
import socket
import ssl
import struct
import subprocess
from pathlib import Path

import pytest

from servers.core import Server
from servers.files.root import FileRoot

TIMEOUT = 15
MODES = ["plain", "explicit", "implicit"]
TLS_MODES = ["explicit", "implicit"]


def home(server: Server) -> Path:
    return server.core.shared(FileRoot).home("demo")


def reset(data_socket: socket.socket) -> None:
    """Close with an RST, as a crashed or killed client's kernel does."""
    data_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    data_socket.close()


def start_upload(ftp_login, mode: str, name: str) -> tuple[ftplib.FTP, socket.socket]:
    client = ftp_login(tls=None if mode == "plain" else mode)
    data_socket = client.transfercmd(f"STOR {name}")
    assert isinstance(data_socket, ssl.SSLSocket) == (mode != "plain")
    return client, data_socket


def upload_event(server: Server, name: str, since: int):
    return server.core.journal.wait_for(
        lambda e: e.details.get("path") == f"/{name}", server="ftp", kind="file", since=since, timeout=TIMEOUT
    )


def assert_cut_upload(server: Server, client: ftplib.FTP, name: str, sent: bytes, since: int) -> None:
    """426 on the control channel, journalled incomplete, partial file kept as a prefix."""
    # 425 when the reset beat the server to accepting the data connection.
    with pytest.raises(ftplib.error_temp, match="^42[56] "):
        client.voidresp()
    event = upload_event(server, name, since)
    assert event.details["complete"] is False and event.details["direction"] == "upload"
    stored = (home(server) / name).read_bytes()  # the partial file is kept (vsftpd's rule)
    assert event.details["bytes"] == len(stored) <= len(sent)
    assert sent.startswith(stored)
    completed = server.core.journal.events(server="ftp", kind="file", since=since)
    assert not [e for e in completed if e.details["path"] == f"/{name}" and e.details["complete"]]
    client.voidcmd("NOOP")  # the control connection goes on


@pytest.mark.parametrize("mode", MODES)
def test_data_connection_reset_mid_upload_gets_426(refservers_ftp: Server, ftp_login, mode: str) -> None:
    data = os.urandom(2 * 1024 * 1024)
    since = refservers_ftp.core.journal.last_id
    client, data_socket = start_upload(ftp_login, mode, "reset.bin")
    half = data[: len(data) // 2]
    data_socket.sendall(half)
    reset(data_socket)
    assert_cut_upload(refservers_ftp, client, "reset.bin", half, since)


@pytest.mark.parametrize("mode", TLS_MODES)
@pytest.mark.parametrize("share", ["half", "all"])
def test_tls_data_connection_closed_without_close_notify_gets_426(
    refservers_ftp: Server, ftp_login, mode: str, share: str
) -> None:
    # A TCP FIN with no TLS close_notify may be an attacker's or a broken path's: a
    # TLS upload ends only with close_notify (vsftpd's strict_ssl_read_eof), even
    # when every byte happens to have arrived.
    data = os.urandom(1024 * 1024 + 7)
    sent = data if share == "all" else data[: len(data) // 2]
    since = refservers_ftp.core.journal.last_id
    client, data_socket = start_upload(ftp_login, mode, "fin.bin")
    data_socket.sendall(sent)
    data_socket.close()  # no unwrap(): FIN without close_notify
    assert_cut_upload(refservers_ftp, client, "fin.bin", sent, since)


@pytest.mark.parametrize("mode", TLS_MODES)
@pytest.mark.parametrize("how", ["reset", "close"])
def test_data_connection_gone_before_the_tls_handshake_gets_an_answer(
    refservers_ftp: Server, ftp_login, mode: str, how: str
) -> None:
    # pyftpdlib closed such a data channel without a word: the client waited forever.
    client = ftp_login(tls=mode)
    raw, _ = ftplib.FTP.ntransfercmd(client, "STOR early.bin")  # the socket before TLS
    if how == "reset":
        reset(raw)
    else:
        raw.close()
    with pytest.raises(ftplib.error_temp, match="^42[56] "):
        client.voidresp()
    client.voidcmd("NOOP")


def send_then_close_notify_without_reading(raw: socket.socket, context: ssl.SSLContext, data: bytes) -> None:
    """What curl does: handshake, send, close_notify, close; never read after the handshake.

    Bytes the server sent after the handshake (TLS 1.3 session tickets) stay unread,
    and the client's kernel then answers the close with an RST instead of a FIN.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            chunk = raw.recv(65536)
            assert chunk, "the server closed during the TLS handshake"
            incoming.write(chunk)
    raw.sendall(outgoing.read())
    for offset in range(0, len(data), 16384):
        tls.write(data[offset : offset + 16384])
        raw.sendall(outgoing.read())
    with pytest.raises(ssl.SSLWantReadError):
        tls.unwrap()  # close_notify sent; the server's is never waited for
    raw.sendall(outgoing.read())
    raw.close()


# More than loopback's socket buffers hold: the server has read data, so everything it
# sent after the handshake has reached the client before the client closes.
BEYOND_SOCKET_BUFFERS = 24 * 1024 * 1024


@pytest.mark.parametrize("mode", TLS_MODES)
def test_tls_client_that_never_reads_gets_226(refservers_ftp: Server, ftp_login, mode: str) -> None:
    # The data channel sends no session tickets: a client that sends close_notify and
    # closes without reading (curl) ends with a FIN, not an RST that cuts its upload.
    client = ftp_login(tls=mode)
    since = refservers_ftp.core.journal.last_id
    data = os.urandom(BEYOND_SOCKET_BUFFERS + 5)
    raw, _ = ftplib.FTP.ntransfercmd(client, "STOR quiet.bin")  # the socket before TLS
    send_then_close_notify_without_reading(raw, refservers_ftp.core.tls.client_context(), data)
    assert client.voidresp().startswith("226")
    assert (home(refservers_ftp) / "quiet.bin").read_bytes() == data
    assert upload_event(refservers_ftp, "quiet.bin", since).details["complete"] is True


# Sizes around the buffer and TLS record boundaries (16 KiB records, 64 KiB reads).
ODD_SIZES = [0, 1, 3, 1023, 4097, 16383, 16385, 65535, 65537, 131071, 300_007, 1_048_583]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("mode", TLS_MODES)
def test_curl_uploads_many_odd_sized_files_over_ftps(refservers_ftp: Server, tmp_path: Path, mode: str) -> None:
    sources = []
    for index, size in enumerate(ODD_SIZES * 2):
        source = tmp_path / f"odd-{index:02d}-{size}.bin"
        source.write_bytes(os.urandom(size))
        sources.append(source)
    if mode == "explicit":
        url, tls = f"ftp://127.0.0.1:{refservers_ftp.port}/{mode}/", ["--ftp-ssl-reqd"]
    else:
        url, tls = f"ftps://127.0.0.1:{refservers_ftp.listeners['tls']}/{mode}/", []
    since = refservers_ftp.core.journal.last_id
    glob = "{" + ",".join(str(source) for source in sources) + "}"
    result = subprocess.run(
        ["curl", "-sS", *tls, "--cacert", str(refservers_ftp.core.tls.ca_file), "--user", "demo:demo",
         "--ftp-create-dirs", "-T", glob, url],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"curl exited {result.returncode}: {result.stderr}"
    for source in sources:
        assert (home(refservers_ftp) / mode / source.name).read_bytes() == source.read_bytes(), source.name
    uploads = refservers_ftp.core.journal.events(server="ftp", kind="file", since=since)
    assert sorted((e.details["path"], e.details["bytes"], e.details["complete"]) for e in uploads) == sorted(
        (f"/{mode}/{source.name}", source.stat().st_size, True) for source in sources
    )

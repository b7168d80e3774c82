"""One file root, two protocols (the ``refservers_files`` fixture): put over FTP, get
over SFTP, byte-identical; the reverse; and the same refusal of escapes on both."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

TIMEOUT = 15


@pytest.fixture
def sftp(refservers_files: Any, tmp_path: Path) -> Iterator[paramiko.SFTPClient]:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(refservers_files.sftp.known_hosts_line() + "\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1", refservers_files.sftp.port, "demo", "demo", look_for_keys=False, allow_agent=False, timeout=TIMEOUT
    )
    try:
        with client.open_sftp() as session:
            yield session
    finally:
        client.close()


@pytest.fixture
def ftp(refservers_files: Any) -> Iterator[ftplib.FTP]:
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect("127.0.0.1", refservers_files.ftp.port)
        client.login("demo", "demo")
        client.voidcmd("TYPE I")
        yield client


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_over_ftp_get_over_sftp(refservers_files: Any, ftp: ftplib.FTP, sftp: paramiko.SFTPClient) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    ftp.mkd("shared")
    ftp.storbinary("STOR shared/from-ftp.bin", io.BytesIO(data))
    with sftp.open("/shared/from-ftp.bin", "rb") as remote:
        assert digest(remote.read()) == digest(data)
    assert refservers_files.root.home("demo") / "shared" / "from-ftp.bin" == refservers_files.root.resolve(
        "demo", "/shared/from-ftp.bin"
    )


def test_put_over_sftp_get_over_ftp(ftp: ftplib.FTP, sftp: paramiko.SFTPClient) -> None:
    data = os.urandom(1024 * 1024 + 9)
    with sftp.open("/from-sftp.bin", "wb") as remote:
        remote.write(data)
    received = io.BytesIO()
    ftp.retrbinary("RETR from-sftp.bin", received.write)
    assert digest(received.getvalue()) == digest(data)
    assert ftp.size("from-sftp.bin") == len(data)


def test_a_symlink_out_is_refused_on_both(
    refservers_files: Any, ftp: ftplib.FTP, sftp: paramiko.SFTPClient, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (refservers_files.root.home("demo") / "leak").symlink_to(secret)
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.retrbinary("RETR leak", io.BytesIO().write)
    with pytest.raises(OSError):
        sftp.open("/leak", "rb").read()

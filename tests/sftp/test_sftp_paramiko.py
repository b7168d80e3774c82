"""The SFTP server driven by paramiko: password auth, status codes, journal contents.

paramiko exposes what OpenSSH's clients hide: the exact SFTP status of a refusal
(permission denied, not "not found") and a way to drop a connection mid-upload.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from servers.core import Core, Server
from servers.core.users import User
from servers.sftp import SftpServer

PASSWORD = "demo"


def _client(server: SftpServer, known_hosts: Path, user: str = "demo", password: str = PASSWORD) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())  # the pinned key or nothing
    try:
        client.connect(
            "127.0.0.1", server.port, user, password, look_for_keys=False, allow_agent=False, timeout=15
        )
    except BaseException:
        client.close()
        raise
    return client


@pytest.fixture
def known_hosts(refservers_sftp: SftpServer, tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(refservers_sftp.known_hosts_line())
    return path


@pytest.fixture
def sftp(refservers_sftp: SftpServer, known_hosts: Path) -> Iterator[paramiko.SFTPClient]:
    client = _client(refservers_sftp, known_hosts)
    session = client.open_sftp()
    yield session
    session.close()
    client.close()


def _home(server: SftpServer) -> Path:
    return Path(server.file_root.home("demo"))


def test_password_login_and_round_trip(refservers_sftp: SftpServer, sftp: paramiko.SFTPClient) -> None:
    data = os.urandom(2 * 1024 * 1024 + 17)
    sftp.putfo(io.BytesIO(data), "/upload.bin")
    assert (_home(refservers_sftp) / "upload.bin").read_bytes() == data
    assert sftp.stat("upload.bin").st_size == len(data)

    fetched = io.BytesIO()
    # Sequential reads: paramiko's prefetch thread races the reading thread and, on a
    # loaded machine, can request most chunks twice; the journal then rightly counts
    # twice the bytes, and the exact byte count below would depend on scheduling.
    sftp.getfo("upload.bin", fetched, prefetch=False)
    assert fetched.getvalue() == data

    sftp.chmod("upload.bin", 0o640)
    assert stat.S_IMODE(sftp.stat("upload.bin").st_mode) == 0o640
    sftp.mkdir("dir")
    sftp.posix_rename("upload.bin", "dir/moved.bin")
    assert sftp.listdir("dir") == ["moved.bin"]
    assert sftp.normalize(".") == "/"
    assert sftp.normalize("dir/../dir") == "/dir"
    sftp.symlink("dir/moved.bin", "link")
    assert sftp.readlink("link") == "dir/moved.bin"
    assert stat.S_ISLNK(sftp.lstat("link").st_mode) and sftp.stat("link").st_size == len(data)
    sftp.remove("link")
    assert (_home(refservers_sftp) / "dir" / "moved.bin").exists()  # removing a link keeps its target
    sftp.remove("dir/moved.bin")
    sftp.rmdir("dir")
    assert list(_home(refservers_sftp).iterdir()) == []

    journal = refservers_sftp.journal
    auth = journal.events(server="sftp", kind="auth")
    assert [(e.details["ok"], e.details["user"], e.details["method"]) for e in auth] == [(True, "demo", "password")]
    files = [e.details for e in journal.events(server="sftp", kind="file")]
    assert files[0] == {"user": "demo", "path": "/upload.bin", "bytes": len(data), "direction": "upload", "complete": True}
    assert files[1] == {"user": "demo", "path": "/upload.bin", "bytes": len(data), "direction": "download", "complete": True}
    assert journal.events(server="sftp", kind="connect")


def test_reads_and_writes_land_at_the_offsets_requested(refservers_sftp: SftpServer, sftp: paramiko.SFTPClient) -> None:
    # Each READ/WRITE request carries its own offset (out of order here), and a file
    # opened for append takes writes at its end whatever offset they name.
    data = os.urandom(100_000)
    (_home(refservers_sftp) / "f.bin").write_bytes(data)
    with sftp.open("f.bin", "rb") as remote:
        for offset, size in ((90_000, 20_000), (5, 7), (0, 1), (99_999, 1), (100_000, 5), (40_000, 32768)):
            remote.seek(offset)
            assert remote.read(size) == data[offset : offset + size], (offset, size)
    with sftp.open("f.bin", "r+b") as remote:
        remote.seek(50_000)
        remote.write(b"middle")
        remote.seek(100_010)  # past the end: the gap reads as zeros
        remote.write(b"tail")
    expected = data[:50_000] + b"middle" + data[50_006:] + b"\0" * 10 + b"tail"
    assert (_home(refservers_sftp) / "f.bin").read_bytes() == expected
    with sftp.open("f.bin", "ab") as remote:
        remote.write(b"appended")
    assert (_home(refservers_sftp) / "f.bin").read_bytes() == expected + b"appended"


@pytest.mark.parametrize("cipher", ["aes128-ctr", "aes256-gcm@openssh.com"])
def test_no_ignore_packets_are_sent_with_a_counter_or_aead_cipher(
    refservers_sftp: SftpServer, known_hosts: Path, cipher: str, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncssh puts an SSH_MSG_IGNORE before every packet, a countermeasure for CBC
    ciphers only (ignore_packets.py); with the others the client reads none of them."""
    others = [name for name in paramiko.Transport._preferred_ciphers if name != cipher]
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    data = os.urandom(200_000)
    (_home(refservers_sftp) / "f.bin").write_bytes(data)
    try:
        client.connect(
            "127.0.0.1", refservers_sftp.port, "demo", PASSWORD, look_for_keys=False, allow_agent=False,
            timeout=15, disabled_algorithms={"ciphers": others},
        )  # fmt: skip
        transport = client.get_transport()
        assert transport is not None and transport.remote_cipher == cipher
        transport.set_hexdump(True)  # paramiko logs every packet it reads, by type
        with caplog.at_level(logging.DEBUG, logger="paramiko"), client.open_sftp() as sftp:
            assert sftp.open("f.bin", "rb").read() == data
    finally:
        client.close()

    read = [record.getMessage().split()[2] for record in caplog.records if record.getMessage().startswith("Read packet")]
    assert read.count("<channel-data>,") >= 7  # the data packets were logged: 200 kB in 32 KiB packets
    assert "<ignore>," not in read


def test_wrong_password_is_refused_and_never_journalled(refservers_sftp: SftpServer, known_hosts: Path) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        _client(refservers_sftp, known_hosts, password="not-the-password")
    with pytest.raises(paramiko.AuthenticationException):
        _client(refservers_sftp, known_hosts, user="nobody", password="not-the-password")

    failures = refservers_sftp.journal.wait_for(
        lambda e: e.kind == "auth" and e.details["user"] == "nobody", timeout=10, server="sftp"
    )
    assert failures.details == {"ok": False, "user": "nobody", "method": "password"}
    everything = repr([e.as_json() for e in refservers_sftp.journal.events()])
    assert "not-the-password" not in everything
    assert not any(e.details.get("ok") for e in refservers_sftp.journal.events(server="sftp", kind="auth"))


def test_refusals_carry_the_permission_denied_status(
    refservers_sftp: SftpServer, sftp: paramiko.SFTPClient, tmp_path: Path
) -> None:
    os.symlink("/etc", _home(refservers_sftp) / "etc-link")
    for path in ("../etc/passwd", "/../../etc/passwd", "etc-link/passwd", "%2e%2e/%2e%2e/etc/passwd"):
        with pytest.raises(PermissionError) as refused:
            sftp.open(path).read()
        assert refused.value.errno == errno.EACCES, path
    with pytest.raises(PermissionError):
        sftp.listdir("etc-link")
    with pytest.raises(PermissionError):
        sftp.symlink("../../../../etc/shadow", "shadow-link")
    with pytest.raises(PermissionError):
        sftp.open("../outside.txt", "w")
    assert not (tmp_path / "outside.txt").exists()
    # Absolute client paths are rooted in the home (chroot), not the real filesystem.
    with pytest.raises(FileNotFoundError):
        sftp.stat("/etc/passwd")


def test_read_only_user_gets_permission_denied(
    refservers_core: Core, refservers_start: Callable[..., Server], tmp_path: Path
) -> None:
    refservers_core.users.add(User("viewer", "view-pw", read_only=True))
    server = refservers_start("sftp")
    (Path(server.file_root.home("viewer")) / "readme.txt").write_text("hello\n")
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    client = _client(server, known, user="viewer", password="view-pw")
    try:
        session = client.open_sftp()
        with session.open("readme.txt") as readme:
            assert readme.read() == b"hello\n"
        for attempt in (
            lambda: session.open("new.txt", "w"),
            lambda: session.open("readme.txt", "a"),
            lambda: session.mkdir("d"),
            lambda: session.remove("readme.txt"),
            lambda: session.rename("readme.txt", "other.txt"),
            lambda: session.chmod("readme.txt", 0o777),
            lambda: session.symlink("readme.txt", "link"),
        ):
            with pytest.raises(PermissionError):
                attempt()
        session.close()
    finally:
        client.close()
    assert sorted(p.name for p in Path(server.file_root.home("viewer")).iterdir()) == ["readme.txt"]


def test_interrupted_download_is_journalled_incomplete(refservers_sftp: SftpServer, known_hosts: Path) -> None:
    (_home(refservers_sftp) / "large.bin").write_bytes(os.urandom(1_000_000))
    client = _client(refservers_sftp, known_hosts)
    try:
        remote = client.open_sftp().open("large.bin", "r")
        assert len(remote.read(50_000)) == 50_000
    finally:
        client.get_transport().sock.close()  # type: ignore[union-attr]
        client.close()
    event = refservers_sftp.journal.wait_for(lambda e: e.kind == "file", timeout=10, server="sftp")
    assert event.details["complete"] is False
    assert event.details["direction"] == "download" and event.details["path"] == "/large.bin"


def test_interrupted_upload_is_journalled_incomplete(refservers_sftp: SftpServer, known_hosts: Path) -> None:
    client = _client(refservers_sftp, known_hosts)
    try:
        remote = client.open_sftp().open("partial.bin", "w")
        remote.write(b"x" * 100_000)  # paramiko waits for each write's status: the server has the bytes
        assert (_home(refservers_sftp) / "partial.bin").stat().st_size == 100_000
    finally:
        # Vanish without closing the file: a dropped connection, no goodbye.
        client.get_transport().sock.close()  # type: ignore[union-attr]
        client.close()
    event = refservers_sftp.journal.wait_for(lambda e: e.kind == "file", timeout=10, server="sftp")
    assert event.details["complete"] is False
    assert event.details["direction"] == "upload" and event.details["path"] == "/partial.bin"

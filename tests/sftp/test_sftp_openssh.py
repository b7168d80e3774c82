"""The SFTP server driven by OpenSSH's own clients: sftp -b, scp (both modes), ssh.

Key auth with a generated ed25519 key, host key pinned in known_hosts (strict), so a
refused key, a changed host key or a prompt fails the test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from servers.core import Server
from servers.core.users import User
from servers.sftp import SftpServer
from servers.sftp.openssh import OpenSshClient, generate_key

READER = "reader"


@pytest.fixture
def ssh_target(refservers_core: Any, refservers_start: Callable[..., Server], tmp_path: Path) -> OpenSshClient:
    """The sftp server with a fresh key authorized for ``demo`` (authorized_keys_dir)
    and for a read-only ``reader`` (user table), and an OpenSSH client pinned to it."""
    work = tmp_path / "client"
    work.mkdir()
    public_line = generate_key(work / "id_ed25519")
    keys_dir = tmp_path / "authorized_keys"
    keys_dir.mkdir()
    (keys_dir / "demo.pub").write_text(public_line + "\n")
    refservers_core.users.add(User(READER, "reader-secret", read_only=True, authorized_keys=(public_line,)))
    server = refservers_start("sftp", authorized_keys_dir=str(keys_dir))
    return OpenSshClient.for_server(server, work, work / "id_ed25519")


@pytest.fixture
def sftp_server(ssh_target: OpenSshClient, refservers_start: Callable[..., Server]) -> SftpServer:
    return refservers_start("sftp")  # type: ignore[return-value]


def _home(server: SftpServer, user: str = "demo") -> Path:
    return Path(server.file_root.home(user))


def _random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def _file_events(server: Server, since: int = 0) -> list[dict]:
    return [e.details for e in server.journal.events(server="sftp", kind="file", since=since)]


def test_sftp_batch_runs_the_full_operation_set(ssh_target: OpenSshClient, sftp_server: SftpServer) -> None:
    local = ssh_target.work / "report.bin"
    data = _random_file(local, 300_000)
    fetched = ssh_target.work / "fetched.bin"
    result = ssh_target.sftp_batch(
        f"""put {local} report.bin
mkdir incoming
rename report.bin incoming/renamed.bin
chmod 600 incoming/renamed.bin
ln -s incoming/renamed.bin latest
get latest {fetched}
mkdir scratch
rmdir scratch
ls -l
ls -l incoming
"""
    )
    assert result.returncode == 0, result.stderr
    home = _home(sftp_server)
    assert (home / "incoming" / "renamed.bin").read_bytes() == data
    assert (home / "incoming" / "renamed.bin").stat().st_mode & 0o777 == 0o600
    assert os.readlink(home / "latest") == "incoming/renamed.bin"  # relative: no host path recorded
    assert not (home / "scratch").exists()
    assert fetched.read_bytes() == data
    assert "renamed.bin" in result.stdout and "latest" in result.stdout
    events = _file_events(sftp_server)
    assert {"user": "demo", "path": "/report.bin", "bytes": len(data), "direction": "upload", "complete": True} in events
    assert {"user": "demo", "path": "/latest", "bytes": len(data), "direction": "download", "complete": True} in events


def test_sftp_resumes_uploads_and_downloads(ssh_target: OpenSshClient, sftp_server: SftpServer) -> None:
    local = ssh_target.work / "big.bin"
    data = _random_file(local, 1_000_000)
    (_home(sftp_server) / "big.bin").write_bytes(data[:400_000])  # an upload cut short
    partial = ssh_target.work / "partial.bin"
    partial.write_bytes(data[:250_000])  # a download cut short
    since = sftp_server.journal.last_id

    result = ssh_target.sftp_batch(f"reput {local} big.bin\nreget big.bin {partial}\n")

    assert result.returncode == 0, result.stderr
    assert (_home(sftp_server) / "big.bin").read_bytes() == data
    assert partial.read_bytes() == data
    events = _file_events(sftp_server, since)
    # Only the missing parts travel: that is what makes it a resume.
    assert {"user": "demo", "path": "/big.bin", "bytes": 600_000, "direction": "upload", "complete": True} in events
    assert {"user": "demo", "path": "/big.bin", "bytes": 750_000, "direction": "download", "complete": True} in events


def test_big_transfers_with_rekeys_arrive_byte_for_byte(ssh_target: OpenSshClient, sftp_server: SftpServer) -> None:
    """8 MiB each way while the client rekeys every 1 MiB. The server writes the packets of
    one loop turn together (batched_writes.py): dozens of READ replies per write, with
    key exchanges in between, and not one byte may move or go missing."""
    local = ssh_target.work / "big.bin"
    data = _random_file(local, 8 * 1024 * 1024)
    fetched = ssh_target.work / "fetched.bin"

    result = ssh_target.sftp_batch(
        f"put {local} big.bin\nget big.bin {fetched}\n", extra=["-o", "RekeyLimit=1M", "-o", "LogLevel=DEBUG1"]
    )

    assert result.returncode == 0, result.stderr
    assert (_home(sftp_server) / "big.bin").read_bytes() == data
    assert fetched.read_bytes() == data
    assert result.stderr.count("SSH2_MSG_NEWKEYS received") >= 10  # the first kex, then the rekeys


@pytest.mark.parametrize("legacy", [False, True], ids=["scp-over-sftp", "scp-legacy-O"])
def test_scp_both_directions_exits_zero(ssh_target: OpenSshClient, sftp_server: SftpServer, legacy: bool) -> None:
    local = ssh_target.work / "upload.bin"
    data = _random_file(local, 700_000)

    up = ssh_target.scp(str(local), ssh_target.remote("copied.bin"), legacy=legacy)
    assert up.returncode == 0, up.stderr  # the asyncssh trap: exit 1 after a good transfer
    assert (_home(sftp_server) / "copied.bin").read_bytes() == data

    down_path = ssh_target.work / "download.bin"
    down = ssh_target.scp(ssh_target.remote("copied.bin"), str(down_path), legacy=legacy)
    assert down.returncode == 0, down.stderr
    assert down_path.read_bytes() == data

    commands = [e.details for e in sftp_server.journal.events(server="sftp", kind="command")]
    if legacy:  # legacy scp is an exec of "scp -t/-f", run by asyncssh on the SFTP backend
        assert any(d.get("command", "").startswith("scp -t") for d in commands), commands
        assert any(d.get("command", "").startswith("scp -f") for d in commands), commands
    else:
        assert {"user": "demo", "subsystem": "sftp"} in commands
    events = _file_events(sftp_server)
    assert {"user": "demo", "path": "/copied.bin", "bytes": len(data), "direction": "upload", "complete": True} in events
    assert {"user": "demo", "path": "/copied.bin", "bytes": len(data), "direction": "download", "complete": True} in events


@pytest.mark.parametrize("legacy", [False, True], ids=["scp-over-sftp", "scp-legacy-O"])
def test_scp_of_a_missing_file_fails(ssh_target: OpenSshClient, sftp_server: SftpServer, legacy: bool) -> None:
    result = ssh_target.scp(ssh_target.remote("no-such-file"), str(ssh_target.work / "x"), legacy=legacy)
    assert result.returncode != 0
    assert "no-such-file" in result.stderr
    assert not (ssh_target.work / "x").exists()


def test_read_only_user_is_refused_every_write(ssh_target: OpenSshClient, sftp_server: SftpServer) -> None:
    reader_home = Path(sftp_server.file_root.home(READER))
    (reader_home / "existing.txt").write_text("keep me\n")
    local = ssh_target.work / "attempt.txt"
    local.write_text("should not land\n")

    for batch in (
        f"put {local} attempt.txt\n",
        "mkdir newdir\n",
        "rm existing.txt\n",
        "rename existing.txt moved.txt\n",
        "chmod 777 existing.txt\n",
        "ln -s existing.txt link\n",
    ):
        result = ssh_target.sftp_batch(batch, user=READER)
        assert result.returncode != 0, batch
        assert "Permission denied" in result.stderr, (batch, result.stderr)

    scp = ssh_target.scp(str(local), ssh_target.remote("attempt.txt", user=READER))
    assert scp.returncode != 0
    legacy = ssh_target.scp(str(local), ssh_target.remote("attempt.txt", user=READER), legacy=True)
    assert legacy.returncode != 0
    assert sorted(p.name for p in reader_home.iterdir()) == ["existing.txt"]
    assert (reader_home / "existing.txt").stat().st_mode & 0o777 != 0o777

    # Reading still works for a read-only user.
    fetched = ssh_target.work / "existing.txt"
    assert ssh_target.sftp_batch(f"get existing.txt {fetched}\n", user=READER).returncode == 0
    assert fetched.read_text() == "keep me\n"


def test_paths_outside_the_home_are_refused(ssh_target: OpenSshClient, sftp_server: SftpServer, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours\n")
    # A link planted in the home (by a seed or an admin) that points outside it.
    os.symlink(outside, _home(sftp_server) / "escape")
    os.symlink("/etc", _home(sftp_server) / "etc-link")
    target = ssh_target.work / "got.txt"

    for remote in ("../../etc/passwd", "/../../../etc/passwd", "escape/secret.txt", "etc-link/passwd"):
        result = ssh_target.sftp_batch(f"get {remote} {target}\n")
        assert result.returncode != 0, remote
        assert not target.exists(), remote
    # (sftp's get reports every failed lookup as "not found"; the status code the server
    # sends, permission denied, is checked with paramiko in test_sftp_paramiko.py.)

    # The link itself may be listed (lstat checks its parent); what it points at may not.
    result = ssh_target.sftp_batch("ls escape\nls escape/\n")
    assert "secret.txt" not in result.stdout

    for link_target in ("../../../../etc/passwd", "/../etc/passwd"):
        result = ssh_target.sftp_batch(f"ln -s {link_target} new-link\n")
        assert result.returncode != 0, link_target
        assert not os.path.lexists(_home(sftp_server) / "new-link")

    # scp (both modes) goes through the same confinement.
    assert ssh_target.scp(ssh_target.remote("escape/secret.txt"), str(target)).returncode != 0
    assert ssh_target.scp(ssh_target.remote("escape/secret.txt"), str(target), legacy=True).returncode != 0
    assert not target.exists()


def test_unknown_key_is_refused(ssh_target: OpenSshClient, sftp_server: SftpServer) -> None:
    stranger = ssh_target.work / "stranger"
    generate_key(stranger)
    since = sftp_server.journal.last_id

    refused = ssh_target.ssh("whoami", key=stranger)

    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr
    events = [e.details for e in sftp_server.journal.events(server="sftp", kind="auth", since=since)]
    assert {"ok": False, "user": "demo", "method": "publickey"}.items() <= events[0].items()
    assert not any(d["ok"] for d in events)


def test_host_key_is_generated_once_and_kept(refservers_core, refservers_start, tmp_path: Path) -> None:
    first = refservers_start("sftp")
    fingerprint = first.host_key_fingerprint
    assert fingerprint.startswith("SHA256:")
    assert first.describe()["host_key_fingerprint"] == fingerprint
    key_file = first.host_key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    first.stop()

    second = SftpServer(refservers_core.config["sftp"], refservers_core).start()
    try:
        assert second.host_key_fingerprint == fingerprint
        # ssh-keygen reads the persisted key and agrees on the fingerprint.
        listed = subprocess.run(["ssh-keygen", "-l", "-f", str(key_file)], capture_output=True, text=True, check=True)
        assert fingerprint in listed.stdout
    finally:
        second.stop()

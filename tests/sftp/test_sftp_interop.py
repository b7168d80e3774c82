"""The SFTP server with the other clients and servers around it: OpenSSH with a
password (sshpass), curl's sftp:// and scp:// (libssh2), FTP on the same file root,
and the files admin API.
"""

from __future__ import annotations

import base64
import ftplib
import io
import json
import os
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest

from servers.core import Server
from servers.sftp import SftpServer
from servers.sftp.openssh import OpenSshClient, generate_key
from servers.testing.plugin import FileServers

TIMEOUT = 60


@pytest.fixture
def client_key(tmp_path: Path) -> Path:
    """A fresh ed25519 key, authorized for demo in the key directory configured below."""
    work = tmp_path / "client"
    work.mkdir()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "demo.pub").write_text(generate_key(work / "id_ed25519"))
    return work / "id_ed25519"


@pytest.fixture
def refservers_settings(client_key: Path) -> list[str]:
    return [f"sftp.authorized_keys_dir={client_key.parent.parent / 'keys'}"]


def _password_openssh(server: SftpServer, tmp_path: Path) -> list[str]:
    """OpenSSH options for a password login (host key pinned, no keys offered)."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    return [
        "-F", "/dev/null",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "PubkeyAuthentication=no",
        "-o", "IdentityAgent=none",
        "-o", "NumberOfPasswordPrompts=1",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip


def _sshpass(password: str, command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # -e: the password comes from SSHPASS, not the command line (ps would show it).
    return subprocess.run(
        ["sshpass", "-e", *command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "SSHPASS": password},
    )


def test_openssh_with_a_password(refservers_sftp: SftpServer, tmp_path: Path) -> None:
    options = _password_openssh(refservers_sftp, tmp_path)
    port = str(refservers_sftp.port)
    local = tmp_path / "data.bin"
    data = os.urandom(123_456)
    local.write_bytes(data)
    home = Path(refservers_sftp.file_root.home("demo"))

    for legacy in ([], ["-O"]):
        name = f"scp{len(legacy)}.bin"
        up = _sshpass("demo", ["scp", *legacy, *options, "-P", port, str(local), f"demo@127.0.0.1:{name}"])
        assert up.returncode == 0, up.stderr
        assert (home / name).read_bytes() == data

    batch = tmp_path / "batch"
    batch.write_text(f"get scp0.bin {tmp_path / 'back.bin'}\nls\n")
    # sftp -b turns BatchMode on, which forbids password prompts; ssh keeps the first
    # value it is given, so an earlier BatchMode=no lets sshpass answer the prompt.
    batch_options = [*options, "-o", "BatchMode=no"]
    listing = _sshpass("demo", ["sftp", *batch_options, "-P", port, "-b", str(batch), "demo@127.0.0.1"])
    assert listing.returncode == 0, listing.stderr
    assert "scp1.bin" in listing.stdout
    assert (tmp_path / "back.bin").read_bytes() == data

    assert _sshpass("demo", ["ssh", *options, "-p", port, "demo@127.0.0.1", "whoami"]).stdout == "demo\n"
    wrong = _sshpass("wrong", ["ssh", *options, "-p", port, "demo@127.0.0.1", "whoami"])
    assert wrong.returncode != 0 and wrong.stdout == ""


def _curl(server: SftpServer, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    # curl pins the host key by the base64 SHA-256 of its blob (what ssh-keygen -l prints).
    pinned = server.host_key_fingerprint.removeprefix("SHA256:")
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--hostpubsha256", pinned, "--user", "demo:demo", *arguments],
        capture_output=True,
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize("scheme", ["sftp", "scp"])
def test_curl_uploads_and_downloads(refservers_sftp: SftpServer, tmp_path: Path, scheme: str) -> None:
    local = tmp_path / "curl.bin"
    data = os.urandom(300_000)
    local.write_bytes(data)
    url = f"{scheme}://127.0.0.1:{refservers_sftp.port}/~/curl.bin"

    up = _curl(refservers_sftp, "--upload-file", str(local), url)
    assert up.returncode == 0, up.stderr
    assert (Path(refservers_sftp.file_root.home("demo")) / "curl.bin").read_bytes() == data
    down = _curl(refservers_sftp, url)
    assert down.returncode == 0, down.stderr
    assert down.stdout == data

    wrong_key = base64.b64encode(b"\0" * 32).decode().rstrip("=")
    refused = subprocess.run(
        ["curl", "-sS", "--hostpubsha256", wrong_key, "--user", "demo:demo", url], capture_output=True, timeout=TIMEOUT
    )
    assert refused.returncode == 60  # curl's "peer's key did not match": the pin is enforced


def test_a_file_put_over_ftp_is_fetched_over_sftp_and_back(refservers_files: FileServers, client_key: Path) -> None:
    ftp_server, sftp_server = refservers_files.ftp, refservers_files.sftp
    work = client_key.parent
    openssh = OpenSshClient.for_server(sftp_server, work, client_key)  # type: ignore[arg-type]

    data = os.urandom(3 * 1024 * 1024 + 5)
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", ftp_server.port, timeout=15)
        ftp.login("demo", "demo")
        ftp.storbinary("STOR from-ftp.bin", io.BytesIO(data))

    for legacy in (False, True):
        fetched = work / f"fetched-{legacy}.bin"
        result = openssh.scp(openssh.remote("from-ftp.bin"), str(fetched), legacy=legacy)
        assert result.returncode == 0, result.stderr
        assert fetched.read_bytes() == data

    back = work / "from-sftp.bin"
    back.write_bytes(data[::-1])
    assert openssh.sftp_batch(f"put {back} from-sftp.bin\n").returncode == 0
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", ftp_server.port, timeout=15)
        ftp.login("demo", "demo")
        received = io.BytesIO()
        ftp.retrbinary("RETR from-sftp.bin", received.write)
    assert received.getvalue() == data[::-1]


def test_files_admin_api_sees_sftp_uploads(refservers_start: Callable[..., Server], tmp_path: Path) -> None:
    sftp_server = refservers_start("sftp")
    admin = refservers_start("admin")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sftp_server.known_hosts_line())  # type: ignore[attr-defined]
    data = b"seeded over SFTP\n"

    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", sftp_server.port, "demo", "demo", look_for_keys=False, allow_agent=False)
    try:
        with client.open_sftp() as session:
            session.putfo(io.BytesIO(data), "note.txt")
    finally:
        client.close()

    with urllib.request.urlopen(f"{admin.url}/api/v1/files/demo/note.txt", timeout=15) as reply:
        assert reply.read() == data
    with urllib.request.urlopen(f"{admin.url}/api/v1/files?user=demo", timeout=15) as reply:
        tree = json.load(reply)
    assert "/note.txt" in json.dumps(tree)

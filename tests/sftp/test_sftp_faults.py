"""SFTP and SSH fault rules (error, delay, disconnect) on logins (password and public key),
SFTP requests (READ and WRITE too) and exec, driven with paramiko and OpenSSH, checked in
the journal; user-scoped rules hit one user only."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from servers.core import Server
from servers.core.users import User
from servers.sftp import SftpServer
from servers.sftp.openssh import OpenSshClient, generate_key


@pytest.fixture
def ssh(refservers_sftp: SftpServer, tmp_path: Path) -> Iterator[paramiko.SSHClient]:
    client = connect(refservers_sftp, tmp_path)
    yield client
    client.close()


@pytest.fixture
def sftp(ssh: paramiko.SSHClient) -> Iterator[paramiko.SFTPClient]:
    session = ssh.open_sftp()
    yield session
    session.close()


def fault_event(server: SftpServer, since: int, action: str):
    return server.journal.wait_for(lambda e: e.details["action"] == action, since=since, server="sftp", kind="fault")


def test_error_fails_the_matching_operation_with_the_sftp_status(refservers_sftp: SftpServer, sftp: paramiko.SFTPClient) -> None:
    since = refservers_sftp.journal.last_id
    faults = refservers_sftp.core.faults
    faults.add({"server": "sftp", "match": "OPEN /reports/*", "action": "error", "times": 1,
                "params": {"status": "permission_denied", "message": "locked by the nightly job"}})
    faults.add({"server": "sftp", "match": "REMOVE /keep.txt", "action": "error"})
    sftp.mkdir("reports")
    with pytest.raises(PermissionError) as denied:
        sftp.putfo(io.BytesIO(b"q3"), "reports/q3.csv")
    assert denied.value.errno == errno.EACCES and "locked by the nightly job" in str(denied.value)
    assert fault_event(refservers_sftp, since, "error").details["subject"] == "OPEN /reports/q3.csv"
    sftp.putfo(io.BytesIO(b"q3"), "reports/q3.csv")  # times = 1: the next open goes through
    assert sftp.open("reports/q3.csv").read() == b"q3"

    sftp.putfo(io.BytesIO(b"keep"), "keep.txt")
    with pytest.raises(OSError) as failed:
        sftp.remove("keep.txt")  # default status: SSH_FX_FAILURE
    # paramiko maps SSH_FX_FAILURE to a plain OSError carrying the server's message, no errno.
    assert (failed.value.errno, str(failed.value)) == (None, "Failure (injected fault)")
    assert sftp.stat("keep.txt").st_size == 4  # nothing was removed
    assert (Path(refservers_sftp.file_root.home("demo")) / "keep.txt").read_bytes() == b"keep"


def test_error_on_listing_a_directory_with_a_numeric_status(refservers_sftp: SftpServer, sftp: paramiko.SFTPClient) -> None:
    refservers_sftp.core.faults.add(
        {"server": "sftp", "match": "OPENDIR /", "action": "error", "times": 1, "params": {"status": 2}}
    )
    with pytest.raises(FileNotFoundError):
        sftp.listdir("/")
    assert isinstance(sftp.listdir("/"), list)


def test_delay_answers_late_and_the_operation_happens(refservers_sftp: SftpServer, sftp: paramiko.SFTPClient) -> None:
    since = refservers_sftp.journal.last_id
    refservers_sftp.core.faults.add(
        {"server": "sftp", "match": "MKDIR *", "action": "delay", "params": {"seconds": 0.3}}
    )
    sftp.mkdir("slow")
    assert "slow" in sftp.listdir("/")
    assert fault_event(refservers_sftp, since, "delay").details["subject"] == "MKDIR /slow"


def test_disconnect_drops_the_ssh_connection(refservers_sftp: SftpServer, ssh: paramiko.SSHClient, sftp: paramiko.SFTPClient) -> None:
    since = refservers_sftp.journal.last_id
    refservers_sftp.core.faults.add({"server": "sftp", "match": "OPEN /gone.txt", "action": "disconnect"})
    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        sftp.putfo(io.BytesIO(b"x"), "gone.txt")
    assert fault_event(refservers_sftp, since, "disconnect").details["subject"] == "OPEN /gone.txt"
    refservers_sftp.journal.wait_for(since=since, server="sftp", kind="disconnect")


def exec_command(ssh: paramiko.SSHClient, command: str) -> tuple[bytes, bytes, int]:
    _, stdout, stderr = ssh.exec_command(command, timeout=15)
    out, err = stdout.read(), stderr.read()
    return out, err, stdout.channel.recv_exit_status()


def test_exec_error_answers_the_configured_output_and_status(refservers_sftp: SftpServer, ssh: paramiko.SSHClient) -> None:
    since = refservers_sftp.journal.last_id
    refservers_sftp.core.faults.add(
        {"server": "sftp", "match": "uname*", "action": "error", "times": 1,
         "params": {"output": "uname: kernel busy", "status": 75}}
    )
    assert exec_command(ssh, "uname -s") == (b"", b"uname: kernel busy\n", 75)
    assert fault_event(refservers_sftp, since, "error").details["subject"] == "uname -s"
    command = refservers_sftp.journal.wait_for(
        lambda e: e.details.get("command") == "uname -s", since=since, server="sftp", kind="command"
    )
    assert command.details["status"] == 75 and command.details["fault"] is True
    out, _, status = exec_command(ssh, "uname -s")
    assert (out.strip(), status) == (b"Linux", 0)


def test_exec_delay_then_runs(refservers_sftp: SftpServer, ssh: paramiko.SSHClient) -> None:
    refservers_sftp.core.faults.add(
        {"server": "sftp", "match": "echo *", "action": "delay", "params": {"seconds": 0.2}}
    )
    assert exec_command(ssh, "echo hi") == (b"hi\n", b"", 0)
    assert refservers_sftp.journal.wait_for(server="sftp", kind="fault").details["action"] == "delay"


def test_exec_disconnect_drops_the_connection(refservers_sftp: SftpServer, ssh: paramiko.SSHClient) -> None:
    since = refservers_sftp.journal.last_id
    refservers_sftp.core.faults.add({"server": "sftp", "match": "reboot", "action": "disconnect"})
    transport = ssh.get_transport()
    assert transport is not None
    channel = transport.open_session(timeout=15)
    channel.settimeout(15)
    channel.exec_command("reboot")
    try:
        assert channel.recv(100) == b""  # closed, no output
    except (OSError, EOFError):  # a timeout is an OSError too
        pass
    refservers_sftp.journal.wait_for(since=since, server="sftp", kind="disconnect")
    assert fault_event(refservers_sftp, since, "disconnect").details["subject"] == "reboot"
    channel.close()


def connect(server: SftpServer, tmp_path: Path, password: str = "demo") -> paramiko.SSHClient:
    """A paramiko client logged in as demo, the server's host key pinned."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect("127.0.0.1", server.port, "demo", password, look_for_keys=False, allow_agent=False, timeout=15)
    except BaseException:
        client.close()
        raise
    return client


def test_login_error_refuses_a_right_password_and_delay_still_logs_in(refservers_sftp: SftpServer, tmp_path: Path) -> None:
    since = refservers_sftp.journal.last_id
    faults = refservers_sftp.core.faults
    rule = faults.add({"server": "sftp", "match": "login demo", "action": "error", "times": 1})
    with pytest.raises(paramiko.AuthenticationException):
        connect(refservers_sftp, tmp_path)
    refused = refservers_sftp.journal.wait_for(since=since, server="sftp", kind="auth")
    assert refused.details == {"ok": False, "user": "demo", "method": "password", "fault": True}
    assert fault_event(refservers_sftp, since, "error").details["subject"] == "login demo"
    faults.remove(rule.id)
    faults.add({"server": "sftp", "match": "login *", "action": "delay", "params": {"seconds": 0.2}})
    client = connect(refservers_sftp, tmp_path)
    client.close()
    assert fault_event(refservers_sftp, since, "delay").details["subject"] == "login demo"


def test_login_disconnect_drops_the_connection(refservers_sftp: SftpServer, tmp_path: Path) -> None:
    since = refservers_sftp.journal.last_id
    refservers_sftp.core.faults.add({"server": "sftp", "match": "login demo", "action": "disconnect"})
    with pytest.raises((paramiko.SSHException, EOFError, OSError)):
        connect(refservers_sftp, tmp_path)
    assert fault_event(refservers_sftp, since, "disconnect").details["subject"] == "login demo"
    refservers_sftp.journal.wait_for(since=since, server="sftp", kind="disconnect")


# -- READ and WRITE requests on an open file --------------------------------------------


def test_write_error_fails_the_upload_with_the_sftp_status(refservers_sftp: SftpServer, sftp: paramiko.SFTPClient) -> None:
    since = refservers_sftp.journal.last_id
    refservers_sftp.core.faults.add({
        "server": "sftp", "match": "WRITE /full/*", "action": "error",
        "params": {"status": "permission_denied", "message": "quota exceeded (injected)"},
    })
    sftp.mkdir("full")
    with sftp.open("full/big.bin", "wb") as remote:  # not pipelined: each WRITE waits for its status
        with pytest.raises(PermissionError, match="quota exceeded"):
            remote.write(b"x" * 40_000)
    assert fault_event(refservers_sftp, since, "error").details["subject"] == "WRITE /full/big.bin"
    sftp.putfo(io.BytesIO(b"fine"), "elsewhere.bin")  # other files are written as usual
    assert sftp.open("elsewhere.bin").read() == b"fine"


def test_read_error_on_one_request_then_the_file_reads_again(refservers_sftp: SftpServer, sftp: paramiko.SFTPClient) -> None:
    data = os.urandom(200_000)
    (Path(refservers_sftp.file_root.home("demo")) / "data.bin").write_bytes(data)
    refservers_sftp.core.faults.add(
        {"server": "sftp", "match": "READ /data.bin", "action": "error", "times": 1, "params": {"status": 4}}
    )
    with sftp.open("data.bin") as remote:
        with pytest.raises(OSError, match="Failure \\(injected fault\\)"):
            remote.read(32768)
    target = io.BytesIO()
    sftp.getfo("data.bin", target)
    assert target.getvalue() == data


def test_read_disconnect_drops_the_connection_mid_download(refservers_sftp: SftpServer, sftp: paramiko.SFTPClient) -> None:
    since = refservers_sftp.journal.last_id
    (Path(refservers_sftp.file_root.home("demo")) / "data.bin").write_bytes(os.urandom(100_000))
    refservers_sftp.core.faults.add({"server": "sftp", "match": "READ *", "action": "disconnect"})
    remote = sftp.open("data.bin")  # read without prefetch: paramiko's prefetch thread would die unseen
    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        remote.read(32768)
    assert fault_event(refservers_sftp, since, "disconnect").details["subject"] == "READ /data.bin"
    refservers_sftp.journal.wait_for(since=since, server="sftp", kind="disconnect")


# -- user-scoped rules -------------------------------------------------------------------


def login_as(server: SftpServer, tmp_path: Path, user: str, password: str) -> paramiko.SSHClient:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect("127.0.0.1", server.port, user, password, look_for_keys=False, allow_agent=False, timeout=15)
    except BaseException:
        client.close()
        raise
    return client


def test_rules_scoped_to_a_user_leave_other_users_alone(refservers_sftp: SftpServer, tmp_path: Path) -> None:
    refservers_sftp.core.users.add(User("alice", "wonderland"))
    faults = refservers_sftp.core.faults
    faults.add({"server": "sftp", "match": "OPEN *", "action": "error", "user": "alice", "params": {"status": "permission_denied"}})
    faults.add({"server": "sftp", "match": "uname*", "action": "error", "user": "alice", "params": {"output": "busy", "status": 3}})
    faults.add({"server": "sftp", "match": "login *", "action": "error", "user": "alice", "times": 1})
    with pytest.raises(paramiko.AuthenticationException):
        login_as(refservers_sftp, tmp_path, "alice", "wonderland")
    for user, password, scoped in (("alice", "wonderland", True), ("demo", "demo", False)):
        ssh = login_as(refservers_sftp, tmp_path, user, password)
        try:
            with ssh.open_sftp() as session:
                if scoped:
                    with pytest.raises(PermissionError):
                        session.putfo(io.BytesIO(b"hi"), "hi.txt")
                else:
                    session.putfo(io.BytesIO(b"hi"), "hi.txt")
                    assert session.open("hi.txt").read() == b"hi"
            expected = (b"", b"busy\n", 3) if scoped else (b"Linux\n", b"", 0)
            assert exec_command(ssh, "uname -s") == expected
        finally:
            ssh.close()
    fired = refservers_sftp.journal.events(server="sftp", kind="fault")
    assert {e.details["user"] for e in fired} == {"alice"}
    assert [e.details["subject"] for e in fired] == ["login alice", "OPEN /hi.txt", "uname -s"]


# -- public-key logins ---------------------------------------------------------------------


@pytest.fixture
def openssh(refservers_core: Any, refservers_start: Callable[..., Server], tmp_path: Path) -> tuple[SftpServer, OpenSshClient]:
    """The sftp server with a fresh key authorized for demo and alice, and OpenSSH pinned to it."""
    work = tmp_path / "client"
    work.mkdir()
    public_line = generate_key(work / "id_ed25519")
    refservers_core.users.add(User("alice", "wonderland", authorized_keys=(public_line,)))
    refservers_core.users.add(User("bob", "builder", authorized_keys=(public_line,)))
    server: SftpServer = refservers_start("sftp")  # type: ignore[assignment]
    return server, OpenSshClient.for_server(server, work, work / "id_ed25519")


def test_login_rules_match_a_public_key_login(openssh: tuple[SftpServer, OpenSshClient]) -> None:
    server, client = openssh
    since = server.journal.last_id
    rule = server.core.faults.add({"server": "sftp", "match": "login alice", "action": "error"})
    refused = client.ssh("whoami", user="alice")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
    auth = [e.details for e in server.journal.events(server="sftp", kind="auth", since=since)]
    assert auth[0] == {"ok": False, "user": "alice", "method": "publickey", "fault": True}
    assert not any(details["ok"] for details in auth)
    assert client.ssh("whoami", user="bob").stdout == "bob\n"

    # OpenSSH offers the key twice (a query, then signed): one login, one check.
    server.core.faults.remove(rule.id)
    since = server.journal.last_id
    server.core.faults.add({"server": "sftp", "match": "login *", "action": "delay", "user": "alice", "params": {"seconds": 0.2}})
    assert client.ssh("whoami", user="alice").stdout == "alice\n"
    assert client.ssh("whoami", user="bob").stdout == "bob\n"
    fired = server.journal.events(server="sftp", kind="fault", since=since)
    assert [(e.details["action"], e.details["subject"]) for e in fired] == [("delay", "login alice")]


def test_login_disconnect_on_a_public_key_login(openssh: tuple[SftpServer, OpenSshClient]) -> None:
    server, client = openssh
    since = server.journal.last_id
    server.core.faults.add({"server": "sftp", "match": "login bob", "action": "disconnect"})
    dropped = client.ssh("whoami", user="bob")
    assert dropped.returncode == 255
    assert fault_event(server, since, "disconnect").details["subject"] == "login bob"
    assert not any(e.details["ok"] for e in server.journal.events(server="sftp", kind="auth", since=since))


def test_status_names_checked_without_asyncssh_match_its_constants() -> None:
    # servers.core.faults keeps its own table so that checking a rule needs no SSH library.
    import asyncssh

    from servers.core.faults import SFTP_STATUS_NAMES

    assert {name: getattr(asyncssh, f"FX_{name.upper()}") for name in SFTP_STATUS_NAMES} == SFTP_STATUS_NAMES

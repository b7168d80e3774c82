"""SFTP and SSH exec fault rules (error, delay, disconnect) driven with paramiko, checked in the journal."""

from __future__ import annotations

import errno
import io
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from servers.sftp import SftpServer


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

"""SSH exec and shell sessions on the sftp server: OpenSSH ssh, Fabric, paramiko.

The commands are the scripted shell's (servers/shell.py); what is tested here is the
SSH side: exit-status, stderr, terminals, the journal.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import fabric
import paramiko
import pytest

from servers.core import Server
from servers.sftp import SftpServer
from servers.sftp.openssh import OpenSshClient, generate_key
from servers.shell import CAT_LIMIT

DEVICE_COMMANDS = "show version=Refservers IOS 15.1, RELEASE SOFTWARE;show clock=12:00:00.000 UTC Mon Jan 1 2024"


@pytest.fixture
def sftp_server(refservers_start: Callable[..., Server], tmp_path: Path) -> SftpServer:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "demo").write_text(generate_key(tmp_path / "id_ed25519") + "\n")  # <user> without .pub works too
    server = refservers_start("sftp", authorized_keys_dir=str(keys), commands=DEVICE_COMMANDS, hostname="lab-box")
    return server  # type: ignore[return-value]


@pytest.fixture
def openssh(sftp_server: SftpServer, tmp_path: Path) -> OpenSshClient:
    work = tmp_path / "client"
    work.mkdir()
    return OpenSshClient.for_server(sftp_server, work, tmp_path / "id_ed25519")


@pytest.fixture
def fabric_connection(sftp_server: SftpServer, openssh: OpenSshClient) -> Iterator[fabric.Connection]:
    connection = fabric.Connection(
        "127.0.0.1",
        user="demo",
        port=sftp_server.port,
        connect_kwargs={"key_filename": str(openssh.key), "look_for_keys": False, "allow_agent": False},
    )
    connection.client.load_host_keys(str(openssh.known_hosts))
    connection.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    yield connection
    connection.close()


def test_ssh_exec_output_and_exit_status(openssh: OpenSshClient, sftp_server: SftpServer) -> None:
    (Path(sftp_server.file_root.home("demo")) / "notes.txt").write_text("line one\n")

    result = openssh.ssh("uname -s")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Linux\n", "")
    assert openssh.ssh("whoami").stdout == "demo\n"
    assert openssh.ssh("hostname").stdout == "lab-box\n"
    assert openssh.ssh("cat notes.txt").stdout == "line one\n"
    assert openssh.ssh("echo", "hello  world").stdout == "hello world\n"  # ssh joins words with spaces

    unknown = openssh.ssh("frobnicate --now")
    assert unknown.returncode == 127
    assert unknown.stdout == ""
    assert "frobnicate: command not found" in unknown.stderr

    assert openssh.ssh("exit 3").returncode == 3
    escape = openssh.ssh("cat ../../etc/passwd")
    assert escape.returncode == 1 and "Permission denied" in escape.stderr and "root:" not in escape.stdout

    commands = [e.details for e in sftp_server.journal.events(server="sftp", kind="command")]
    assert {"user": "demo", "command": "uname -s", "status": 0} in commands
    assert {"user": "demo", "command": "frobnicate --now", "status": 127} in commands


def test_output_written_just_before_the_close_arrives_whole(openssh: OpenSshClient, sftp_server: SftpServer) -> None:
    """``cat`` of a file at the shell's size limit: the server writes the data, EOF,
    exit-status and CLOSE in the same loop turns (batched_writes.py), and the client
    must still get every byte, then the status."""
    text = "".join(f"{number:08d} {'x' * 70}\n" for number in range(CAT_LIMIT // 80))
    (Path(sftp_server.file_root.home("demo")) / "big.txt").write_text(text)

    result = openssh.ssh("cat big.txt")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == text


def test_configured_device_commands(openssh: OpenSshClient) -> None:
    result = openssh.ssh("show   version")
    assert (result.returncode, result.stdout) == (0, "Refservers IOS 15.1, RELEASE SOFTWARE\n")
    assert openssh.ssh("show clock").stdout == "12:00:00.000 UTC Mon Jan 1 2024\n"


def test_fabric_connection_run(fabric_connection: fabric.Connection, sftp_server: SftpServer) -> None:
    result = fabric_connection.run("uname -a", hide=True, in_stream=False)
    assert result.exited == 0
    assert result.stdout.startswith("Linux lab-box ")
    failed = fabric_connection.run("no-such-tool", hide=True, warn=True, in_stream=False)
    assert failed.exited == 127
    assert "no-such-tool: command not found" in failed.stderr
    auth = sftp_server.journal.events(server="sftp", kind="auth")
    assert [(e.details["ok"], e.details["method"]) for e in auth] == [(True, "publickey")]


def test_paramiko_exec_with_password(sftp_server: SftpServer, openssh: OpenSshClient) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(openssh.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", sftp_server.port, "demo", "demo", look_for_keys=False, allow_agent=False)
    try:
        _, stdout, stderr = client.exec_command("pwd")
        assert stdout.read() == b"/\n"
        assert stdout.channel.recv_exit_status() == 0
        assert stderr.read() == b""
    finally:
        client.close()


def test_interactive_shell_with_a_terminal(openssh: OpenSshClient, sftp_server: SftpServer) -> None:
    result = subprocess.run(
        ["ssh", *openssh.options(), "-p", str(openssh.port), "-tt", "demo@127.0.0.1"],
        input=b"echo from-the-terminal\nexit 4\n",
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 4
    # A terminal: CR LF line ends. The terminal echoes the typed line, and the command
    # prints its output on a line of its own (where the echo lands depends on timing).
    assert re.search(rb"(^|\n|\$ )from-the-terminal\r\n", result.stdout), result.stdout
    assert b"Welcome to refservers, demo." in result.stdout
    assert b"$ " in result.stdout  # the prompt
    sftp_server.journal.wait_for(lambda e: e.details.get("shell") == "interactive", timeout=10, server="sftp")


def test_shell_without_a_terminal_reads_piped_lines(openssh: OpenSshClient) -> None:
    result = openssh.ssh(extra=["-T"], stdin="whoami\nnot-a-command\n")
    assert result.stdout == "demo\n"  # no prompt, no echo without a terminal
    assert "not-a-command: command not found" in result.stderr
    assert result.returncode == 127  # end of input: the last command's status, like sh


def test_other_subsystems_are_refused(sftp_server: SftpServer, openssh: OpenSshClient) -> None:
    result = openssh.ssh("netconf", extra=["-s"])
    assert result.returncode == 1
    assert "not available" in result.stderr

"""Telnet server (servers/telnet) driven by real clients over real sockets.

Clients: our raw-socket NVT client (tests/telnet/conftest.py, which does the option
negotiation itself), telnetlib3's asyncio client, curl's telnet:// support and the
Debian `telnet` program driven through a pty by pexpect.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest
import telnetlib3

from servers.core import Server
from servers.core.users import User
from servers.files.root import FileRoot
from servers.telnet import TelnetServer

Connect = Callable[..., Any]  # the nvt_connect fixture (tests/telnet/conftest.py)

PASSWORD = "s3cret-Pw!"
# Telnet command and option codes (RFC 854, 857, 858, 1073, 1091).
IAC, DONT, DO, WILL, AYT, EL, SB = 255, 254, 253, 251, 246, 248, 250
ECHO, SGA, TTYPE, NAWS = 1, 3, 24, 31


@pytest.fixture
def refservers_settings() -> list[str]:
    """The wire trace is on for every test here, so the password checks cover the log too."""
    return ["core.trace=true"]


@pytest.fixture
def telnet(refservers_telnet: Server) -> Server:
    refservers_telnet.core.users.add(User("alice", PASSWORD))
    return refservers_telnet


def all_journal_text(server: Server) -> str:
    return repr([event.details for event in server.journal.events(server="telnet")])


# -- option negotiation (RFC 854/855) -------------------------------------------------


def test_server_offers_sga_and_asks_naws_and_ttype(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as client:
        client.read_until(b"login: ")
        # AYT's answer comes after the SB TTYPE SEND that our WILL TTYPE triggered, so
        # reading up to it makes the client see (and answer) that request.
        client.send_raw(bytes([IAC, AYT]))
        client.read_until(b": yes]")
        telnet.journal.wait_for(lambda e: "terminal_type" in e.details, server="telnet", kind="terminal")
        telnet.journal.wait_for(lambda e: "columns" in e.details, server="telnet", kind="terminal")
    assert ("WILL", SGA) in client.negotiations
    assert ("DO", NAWS) in client.negotiations
    assert ("DO", TTYPE) in client.negotiations
    assert bytes([TTYPE, 1]) in client.subnegotiations  # SB TTYPE SEND
    terminal = {k: v for e in telnet.journal.events(server="telnet", kind="terminal") for k, v in e.details.items()}
    assert terminal == {"terminal_type": "XTERM", "columns": 132, "rows": 43}


def test_will_echo_only_while_the_password_is_typed(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as client:
        client.read_until(b"login: ")
        assert ("WILL", ECHO) not in client.negotiations
        client.send_line("alice")
        client.read_until(b"Password: ")
        assert client.negotiations[-1] == ("WILL", ECHO)
        client.send_line(PASSWORD)
        after_password = client.read_until(b"$ ")
        assert client.negotiations[-1] == ("WONT", ECHO)
        assert PASSWORD.encode() not in after_password


def test_unsupported_options_are_refused(telnet: Server, nvt_connect: Connect) -> None:
    linemode, new_environ, status = 34, 39, 5
    with nvt_connect(telnet) as client:
        client.read_until(b"login: ")
        client.send_raw(bytes([IAC, WILL, linemode, IAC, WILL, new_environ, IAC, DO, status]))
        # AYT is answered in-band, which proves the refusals before it were processed.
        client.send_raw(bytes([IAC, AYT]))
        client.read_until(b": yes]")
    assert ("DONT", linemode) in client.negotiations
    assert ("DONT", new_environ) in client.negotiations
    assert ("WONT", status) in client.negotiations


def test_client_refusing_everything_still_logs_in(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet, accept=()) as client:
        client.login("alice", PASSWORD)
        assert ("DONT", SGA) in client.sent_negotiations and ("WONT", NAWS) in client.sent_negotiations
        assert client.command("whoami") == "alice\n"


def test_unknown_iac_command_does_not_drop_the_connection(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as client:
        client.login("alice", PASSWORD)
        client.send_raw(bytes([IAC, 236]))  # IAC EOF: not a command Twisted's parser knows
        assert client.command("echo still here") == "still here\n"


def test_client_asking_do_echo_gets_its_input_echoed(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as client:
        client.login("alice", PASSWORD)
        client.send_raw(bytes([IAC, DO, ECHO]))
        client.send_line("whoami")
        assert client.read_until(b"$ ").replace(b"\r\n", b"\n") == b"whoami\nalice\n$ "
        assert ("WILL", ECHO) in client.negotiations
        client.send_raw(bytes([IAC, DONT, ECHO]))
        assert client.command("hostname") == "refservers\n"
        assert ("WONT", ECHO) in client.negotiations


def test_erase_characters_and_lines(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as client:
        client.login("alice", PASSWORD)
        client.send_raw(b"echo abX\x7fc\r\n")  # DEL erases the X
        assert client.read_until(b"$ ").startswith(b"abc\r\n")
        client.send_raw(b"garbage" + bytes([IAC, EL]) + b"echo ok\r\n")  # IAC EL erases the line
        assert client.read_until(b"$ ").startswith(b"ok\r\n")


# -- login ---------------------------------------------------------------------------


def test_banner_then_login_prompt(refservers_start: Callable[..., Server], nvt_connect: Connect) -> None:
    server = refservers_start("telnet", banner="Welcome to the lab router\nAuthorised use only")
    with nvt_connect(server) as client:
        greeting = client.read_until(b"login: ")
    assert greeting == b"Welcome to the lab router\r\nAuthorised use only\r\nlogin: "


def test_wrong_password_reprompts_then_succeeds(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as client:
        client.read_until(b"login: ")
        client.send_line("alice")
        client.read_until(b"Password: ")
        client.send_line("wrong")
        assert b"Login incorrect" in client.read_until(b"login: ")
        client.send_line("alice")
        client.read_until(b"Password: ")
        client.send_line(PASSWORD)
        client.read_until(b"$ ")
        assert client.command("whoami") == "alice\n"
    outcomes = [(e.details["ok"], e.details["user"]) for e in telnet.journal.events(server="telnet", kind="auth")]
    assert outcomes == [(False, "alice"), (True, "alice")]


def test_three_failures_close_the_connection(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as client:
        for _ in range(3):
            client.read_until(b"login: ")
            client.send_line("alice")
            client.read_until(b"Password: ")
            client.send_line("nope")
        rest = client.read_all()
    assert client.closed
    assert rest.count(b"Login incorrect") == 1 and b"login: " not in rest
    assert len(telnet.journal.events(server="telnet", kind="auth")) == 3


def test_unknown_user_fails_like_a_wrong_password(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as client:
        client.read_until(b"login: ")
        client.send_line("nobody")
        client.read_until(b"Password: ")  # asked anyway: names are not revealed
        client.send_line("x")
        assert b"Login incorrect" in client.read_until(b"login: ")


def test_password_is_never_journalled_or_traced(telnet: Server, caplog: pytest.LogCaptureFixture, nvt_connect: Connect) -> None:
    with caplog.at_level(logging.INFO, logger="refservers"), nvt_connect(telnet) as client:
        client.login("alice", PASSWORD)
        client.command("echo hello")
    assert telnet.core.config.core.trace, "the wire trace must be on for this test to mean anything"
    assert "echo hello" in caplog.text and PASSWORD not in caplog.text
    assert PASSWORD not in all_journal_text(telnet)
    inbound = [e.details for e in telnet.journal.events(server="telnet", kind="line") if e.details["direction"] == "in"]
    assert inbound == [{"direction": "in", "text": "alice"}, {"direction": "in", "secret": True},
                       {"direction": "in", "text": "echo hello"}]


# -- the shell over telnet ------------------------------------------------------------


def test_shell_commands_and_exit(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as client:
        client.login("alice", PASSWORD)
        assert client.command("uname -s") == "Linux\n"
        assert client.command("hostname") == "refservers\n"
        assert client.command("pwd") == "/\n"
        assert client.command("frobnicate") == "frobnicate: command not found\n"
        client.send_line("exit")
        assert client.read_all() == b"logout\r\n"
    assert client.closed
    commands = [(e.details["line"], e.details["exit_status"]) for e in telnet.journal.events(server="telnet", kind="command")]
    # `exit` without a status exits with the last command's status, as in sh.
    assert commands[-2:] == [("frobnicate", 127), ("exit", 127)]
    out_lines = [e.details["text"] for e in telnet.journal.events(server="telnet", kind="line") if e.details["direction"] == "out"]
    assert "frobnicate: command not found" in out_lines and "Linux" in out_lines


def test_cat_inside_the_home_and_escape_refused(telnet: Server, nvt_connect: Connect) -> None:
    home = telnet.core.shared(FileRoot).home("alice")
    (home / "hello.txt").write_text("hello from alice's home\n")
    with nvt_connect(telnet) as client:
        client.login("alice", PASSWORD)
        assert "hello.txt" in client.command("ls").split()
        assert client.command("cat hello.txt") == "hello from alice's home\n"
        assert client.command("cat ../../../../etc/passwd") == "cat: ../../../../etc/passwd: Permission denied\n"
        assert client.command("cat /../demo/x") == "cat: /../demo/x: Permission denied\n"


def test_fixed_output_commands_from_config(refservers_start: Callable[..., Server], nvt_connect: Connect) -> None:
    server = refservers_start(
        "telnet", hostname="lab-rtr1", commands={"show version": "Cisco IOS Software, C2900\nuptime is 4 weeks"}
    )
    with nvt_connect(server) as client:
        client.login()
        assert client.command("show version") == "Cisco IOS Software, C2900\nuptime is 4 weeks\n"
        assert client.command("hostname") == "lab-rtr1\n"


def test_idle_timeout_closes_the_connection(refservers_start: Callable[..., Server], nvt_connect: Connect) -> None:
    server = refservers_start("telnet", idle_timeout="0.3")
    with nvt_connect(server) as client:
        client.login()
        rest = client.read_all()  # blocks until the server hangs up
    assert b"timed out after 0.3 seconds of inactivity" in rest
    assert server.journal.events(server="telnet", kind="timeout")


def test_probe_sees_the_banner(telnet: Server) -> None:
    assert TelnetServer.probe(telnet.probe_host, telnet.port, 5.0) == "refservers telnet server"


def test_other_clients_keep_being_served_after_garbage(telnet: Server, nvt_connect: Connect) -> None:
    with nvt_connect(telnet) as bad:
        bad.read_until(b"login: ")
        bad.send_raw(bytes([IAC, SB]) + b"\x18" + b"A" * 5000)  # subnegotiation that never ends
        with nvt_connect(telnet) as good:
            good.login("alice", PASSWORD)
            assert good.command("echo fine") == "fine\n"


# -- third-party clients ----------------------------------------------------------------


def test_telnetlib3_client(telnet: Server) -> None:
    async def session() -> str:
        reader, writer = await telnetlib3.open_connection(
            telnet.probe_host, telnet.port, connect_minwait=0.05, connect_maxwait=1.0
        )
        try:
            await asyncio.wait_for(reader.readuntil(b"login: "), 10)
            writer.write("alice\r\n")
            await asyncio.wait_for(reader.readuntil(b"Password: "), 10)
            writer.write(PASSWORD + "\r\n")
            await asyncio.wait_for(reader.readuntil(b"$ "), 10)
            writer.write("uname -a\r\n")
            output: bytes = await asyncio.wait_for(reader.readuntil(b"$ "), 10)
            writer.write("logout\r\n")
            return output.decode()
        finally:
            writer.close()

    output = asyncio.run(session())
    assert output.startswith("Linux refservers ") and "GNU/Linux\r\n" in output


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_telnet_url(telnet: Server) -> None:
    # curl sends stdin as typed input and prints what the server sends until it hangs up.
    script = f"alice\r\n{PASSWORD}\r\necho via curl\r\nexit\r\n"
    completed = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "20", f"telnet://{telnet.probe_host}:{telnet.port}"],
        input=script.encode(), capture_output=True, timeout=30, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert b"via curl\r\n" in completed.stdout and completed.stdout.endswith(b"logout\r\n")


@pytest.mark.skipif(shutil.which("telnet") is None, reason="inetutils-telnet not installed")
def test_debian_telnet_client_through_a_pty(telnet: Server, tmp_path: Path) -> None:
    home = telnet.core.shared(FileRoot).home("alice")
    (home / "motd.txt").write_text("read through a real terminal\n")
    child = pexpect.spawn("telnet", [telnet.probe_host, str(telnet.port)], timeout=15, encoding="utf-8")
    try:
        child.expect("login: ")
        child.send("alice\r")  # Enter on a terminal is CR
        child.expect("Password: ")
        child.send(PASSWORD + "\r")
        child.expect(r"\$ ")
        assert PASSWORD not in child.before  # the client did not echo it locally
        child.send("cat motd.txt\r")
        child.expect(r"\$ ")
        assert "read through a real terminal" in child.before
        child.send("exit\r")
        child.expect("Connection closed by foreign host")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, (child.exitstatus, child.signalstatus, sys.platform)

"""Telnet fault rules (delay, disconnect, error) driven with the raw NVT client, checked in the journal."""

from __future__ import annotations

import socket

import pytest

from servers.core import Server
from servers.core.faults import FaultError
from servers.core.users import User


def faulted(server: Server, since: int, action: str) -> dict:
    event = server.journal.wait_for(lambda e: e.details["action"] == action, since=since, server="telnet", kind="fault")
    return event.details


def test_error_for_a_command_line_prints_the_configured_output(refservers_telnet: Server, nvt_connect) -> None:
    since = refservers_telnet.journal.last_id
    refservers_telnet.core.faults.add(
        {"server": "telnet", "match": "show *", "action": "error", "times": 1,
         "params": {"output": "% Invalid input detected at '^' marker.", "status": 2}}
    )
    client = nvt_connect(refservers_telnet)
    client.login()
    assert client.command("show version") == "% Invalid input detected at '^' marker.\n"
    assert faulted(refservers_telnet, since, "error")["subject"] == "show version"
    command = refservers_telnet.journal.wait_for(
        lambda e: e.details.get("fault") is True, since=since, server="telnet", kind="command"
    )
    assert (command.details["line"], command.details["exit_status"]) == ("show version", 2)
    # The rule is spent (times = 1): the shell answers the same line normally now.
    assert client.command("show version") == "show: command not found\n"
    assert client.command("echo fine") == "fine\n"


def test_error_without_params_names_the_command(refservers_telnet: Server, nvt_connect) -> None:
    refservers_telnet.core.faults.add({"server": "telnet", "match": "cat *", "action": "error"})
    client = nvt_connect(refservers_telnet)
    client.login()
    assert client.command("cat notes.txt") == "cat: Input/output error\n"


def test_delay_holds_a_command_and_keeps_typed_ahead_lines_in_order(refservers_telnet: Server, nvt_connect) -> None:
    since = refservers_telnet.journal.last_id
    refservers_telnet.core.faults.add(
        {"server": "telnet", "match": "echo one", "action": "delay", "params": {"seconds": 0.3}}
    )
    client = nvt_connect(refservers_telnet)
    client.login()
    client.send_line("echo one")
    client.send_line("echo two")  # typed while the first is held
    assert client.read_until(b"$ ").decode().replace("\r\n", "\n") == "one\n$ "
    assert client.read_until(b"$ ").decode().replace("\r\n", "\n") == "two\n$ "
    assert faulted(refservers_telnet, since, "delay")["subject"] == "echo one"


def test_disconnect_on_a_command_drops_the_connection_silently(refservers_telnet: Server, nvt_connect) -> None:
    since = refservers_telnet.journal.last_id
    refservers_telnet.core.faults.add({"server": "telnet", "match": "reload", "action": "disconnect"})
    client = nvt_connect(refservers_telnet)
    client.login()
    client.send_line("reload")
    try:
        rest = client.read_all()
    except ConnectionResetError:
        rest = b""
    assert rest == b""
    assert faulted(refservers_telnet, since, "disconnect")["subject"] == "reload"
    refservers_telnet.journal.wait_for(since=since, server="telnet", kind="disconnect")


def test_error_at_login_refuses_a_good_password_and_counts_as_a_failure(refservers_telnet: Server, nvt_connect) -> None:
    since = refservers_telnet.journal.last_id
    refservers_telnet.core.faults.add(
        {"server": "telnet", "match": "login demo", "action": "error", "times": 1,
         "params": {"output": "Authentication service unavailable"}}
    )
    client = nvt_connect(refservers_telnet)
    client.read_until(b"login: ")
    client.send_line("demo")
    client.read_until(b"Password: ")
    client.send_line("demo")
    assert b"Authentication service unavailable" in client.read_until(b"login: ")
    auth = refservers_telnet.journal.wait_for(since=since, server="telnet", kind="auth")
    assert auth.details == {"ok": False, "user": "demo"}
    client.send_line("demo")
    client.read_until(b"Password: ")
    client.send_line("demo")
    assert client.read_until(b"$ ").endswith(b"$ ")  # the next try logs in
    assert faulted(refservers_telnet, since, "error")["subject"] == "login demo"


def test_error_at_connect_says_why_and_closes(refservers_telnet: Server) -> None:
    refservers_telnet.core.faults.add(
        {"server": "telnet", "match": "connect", "action": "error", "params": {"output": "% Line busy"}}
    )
    # A raw socket that answers no negotiation: the server closes right after its text, and
    # a client still answering its DO/WILL then would write into a closed connection.
    received = b""
    with socket.create_connection((refservers_telnet.probe_host, refservers_telnet.port), timeout=10) as sock:
        while chunk := sock.recv(4096):
            received += chunk
    assert b"% Line busy\r\n" in received and b"login:" not in received


def test_delay_at_connect_holds_the_banner_then_logs_in(refservers_telnet: Server, nvt_connect) -> None:
    since = refservers_telnet.journal.last_id
    refservers_telnet.core.faults.add(
        {"server": "telnet", "match": "connect", "action": "delay", "params": {"seconds": 0.2}, "times": 1}
    )
    client = nvt_connect(refservers_telnet)
    assert client.login().endswith(b"$ ")
    assert faulted(refservers_telnet, since, "delay")["subject"] == "connect"


@pytest.mark.parametrize("action", ["status", "drop"])
def test_actions_telnet_does_not_know_are_refused(refservers_telnet: Server, action: str) -> None:
    with pytest.raises(FaultError, match="telnet supports delay, disconnect, error"):
        refservers_telnet.core.faults.add({"server": "telnet", "action": action})


def test_rules_scoped_to_a_user_hit_that_login_only(refservers_telnet: Server, nvt_connect) -> None:
    refservers_telnet.core.users.add(User("alice", "wonderland"))
    faults = refservers_telnet.core.faults
    faults.add({"server": "telnet", "match": "login *", "action": "error", "user": "alice", "times": 1,
                "params": {"output": "alice: account locked"}})
    faults.add({"server": "telnet", "match": "echo *", "action": "error", "user": "alice", "params": {"output": "no echo for you"}})
    client = nvt_connect(refservers_telnet)
    client.read_until(b"login: ")
    client.send_line("alice")
    client.read_until(b"Password: ")
    client.send_line("wonderland")
    assert b"alice: account locked" in client.read_until(b"login: ")
    client.send_line("alice")
    client.read_until(b"Password: ")
    client.send_line("wonderland")
    client.read_until(b"$ ")
    assert client.command("echo hi") == "no echo for you\n"
    other = nvt_connect(refservers_telnet)
    other.login()  # demo: neither rule applies
    assert other.command("echo hi") == "hi\n"
    fired = refservers_telnet.journal.events(server="telnet", kind="fault")
    assert [(e.details["subject"], e.details["user"]) for e in fired] == [("login alice", "alice"), ("echo hi", "alice")]

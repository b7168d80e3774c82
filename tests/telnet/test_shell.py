"""The scripted shell (servers/shell.py) that telnet and SSH exec share, driven directly.

The network paths are covered in test_telnet.py; here each command's text, exit
status and the home-directory confinement are checked line by line.
"""

from __future__ import annotations

import re

import pytest

from servers.core import Core
from servers.shell import ShellSession


@pytest.fixture
def shell(refservers_core: Core) -> ShellSession:
    return ShellSession(refservers_core, "demo", "testhost", {"show version": "Cisco IOS Software, Version 15.1"})


def test_prompt_is_dollar(shell: ShellSession) -> None:
    assert shell.prompt == "$ "


def test_echo_whoami_hostname(shell: ShellSession) -> None:
    assert shell.run('echo hello   "two  spaces"').stdout == "hello two  spaces\n"
    assert shell.run("echo -n no newline").stdout == "no newline"
    assert shell.run("whoami").stdout == "demo\n"
    assert shell.run("hostname").stdout == "testhost\n"


def test_uname_flags(shell: ShellSession) -> None:
    assert shell.run("uname").stdout == "Linux\n"
    assert shell.run("uname -s").stdout == "Linux\n"
    everything = shell.run("uname -a").stdout
    assert everything.startswith("Linux testhost ") and everything.endswith("GNU/Linux\n")
    bad = shell.run("uname -z")
    assert bad.exit_status == 1 and "invalid option -- 'z'" in bad.stderr and bad.stdout == ""


def test_date_looks_like_date(shell: ShellSession) -> None:
    assert re.fullmatch(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d UTC \d{4}\n", shell.run("date").stdout)


def test_unknown_command_is_127_on_stderr(shell: ShellSession) -> None:
    result = shell.run("frobnicate --now")
    assert (result.stdout, result.stderr, result.exit_status) == ("", "frobnicate: command not found\n", 127)


def test_unbalanced_quote_is_a_syntax_error(shell: ShellSession) -> None:
    result = shell.run('echo "open')
    assert result.exit_status == 2 and result.stderr.startswith("sh: syntax error")


def test_extra_commands_match_the_whole_line_with_blanks_collapsed(shell: ShellSession) -> None:
    assert shell.run("show   version").stdout == "Cisco IOS Software, Version 15.1\n"
    assert shell.run("show").exit_status == 127
    assert "show version" in shell.run("help").stdout


def test_help_lists_every_builtin(shell: ShellSession) -> None:
    text = shell.run("help").stdout
    for name in ("echo", "whoami", "hostname", "uname", "date", "pwd", "ls", "cat", "exit", "logout"):
        assert re.search(rf"^{name}\b", text, re.M), name


def test_exit_and_logout(shell: ShellSession) -> None:
    assert shell.run("exit").exit_requested
    assert shell.run("logout").exit_requested
    result = shell.run("exit 3")
    assert result.exit_requested and result.exit_status == 3
    assert not shell.run("echo still here").exit_requested


def test_empty_line_does_nothing(shell: ShellSession) -> None:
    assert shell.run("   ") == shell.run("") and shell.run("").exit_status == 0

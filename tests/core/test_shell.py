"""The scripted shell (servers/shell.py) that telnet and SSH exec share, driven directly.

The network paths are covered in test_telnet.py; here each command's text, exit
status and the home-directory confinement are checked line by line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from servers.core import Core
from servers.files.root import FileRoot
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


# -- files: the same home FTP and SFTP serve (servers/files/root.py) ---------------------


@pytest.fixture
def home(refservers_core: Core) -> Path:
    home = refservers_core.shared(FileRoot).home("demo")
    (home / "notes.txt").write_text("first line\nsecond line\n")
    (home / "docs").mkdir()
    (home / "docs" / "readme.md").write_text("# readme\n")
    (home / ".hidden").write_text("x")
    return home


def test_ls_lists_the_home(shell: ShellSession, home: Path) -> None:
    result = shell.run("ls")
    assert (result.stdout, result.exit_status) == ("docs\nnotes.txt\n", 0)
    assert ".hidden" in shell.run("ls -a /").stdout.split()
    assert shell.run("ls docs").stdout == "readme.md\n"
    long_lines = shell.run("ls -l").stdout.splitlines()
    assert long_lines[0].startswith("d") and long_lines[0].endswith(" docs")
    assert long_lines[1].startswith("-rw") and " 23 " in long_lines[1]


def test_cat_prints_files_inside_the_home(shell: ShellSession, home: Path) -> None:
    assert shell.run("cat notes.txt").stdout == "first line\nsecond line\n"
    assert shell.run("cat /docs/readme.md notes.txt").stdout == "# readme\nfirst line\nsecond line\n"
    missing = shell.run("cat nope.txt")
    assert (missing.stderr, missing.exit_status) == ("cat: nope.txt: No such file or directory\n", 1)
    assert shell.run("cat docs").stderr == "cat: docs: Is a directory\n"


@pytest.mark.parametrize("path", ["../../etc/passwd", "/../etc/passwd", "docs/../../x", "%2e%2e/%2e%2e/etc/passwd"])
def test_paths_outside_the_home_are_refused(shell: ShellSession, home: Path, path: str) -> None:
    result = shell.run(f"cat {path}")
    assert (result.stdout, result.exit_status) == ("", 1)
    assert result.stderr == f"cat: {path}: Permission denied\n"
    assert shell.run(f"ls {path}").stderr == f"ls: cannot access '{path}': Permission denied\n"


def test_a_symlink_out_of_the_home_is_refused(shell: ShellSession, home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (home / "link").symlink_to(secret)
    result = shell.run("cat link")
    assert result.exit_status == 1 and "outside" not in result.stdout


def test_cd_and_pwd_stay_virtual(shell: ShellSession, home: Path) -> None:
    assert shell.run("pwd").stdout == "/\n"
    assert shell.run("cd docs").exit_status == 0
    assert shell.run("pwd").stdout == "/docs\n"
    assert shell.run("cat readme.md").stdout == "# readme\n"
    assert shell.run("cd ../..").stderr == "cd: ../..: Permission denied\n"
    assert shell.run("cd /notes.txt").stderr == "cd: /notes.txt: Not a directory\n"
    shell.run("cd")
    assert shell.run("pwd").stdout == "/\n"

"""ShellSession: the small scripted shell that telnet logins and SSH exec share.

This module owns the command language only: parsing a line, the command table, and
the text each command prints. It does no network I/O; the only thing it touches is
the shared file root (``servers/files/root.py``), so ``ls`` and ``cat`` see the same
home directory that FTP and SFTP serve, and can never leave it.

API (what the telnet server and the SSH exec channel call)::

    session = ShellSession(core, user_name, hostname, extra_commands)
    session.prompt                      # "$ "
    result = session.run("ls /")        # one input line
    result.stdout, result.stderr        # text, lines end with "\\n" (the caller maps
                                        # them to "\\r\\n" where the protocol wants it)
    result.exit_status                  # 0 ok, 1/2 command errors, 127 unknown command
    result.exit_requested               # True after `exit` / `logout`

Rules it keeps:

1. A line is split like a POSIX shell splits words (``shlex``: quotes and
   backslashes); no pipes, redirections, globbing or variables. An unbalanced quote
   is a syntax error with status 2, as in bash.
2. ``extra_commands`` (the ``commands`` STR_TABLE option of a server, e.g.
   ``{"show version" = "Cisco IOS ..."}``) are matched first, against the whole line
   with runs of blanks collapsed, so a config can fake a router's multi-word
   commands and even override a built-in. Their output is printed as given, with
   a final newline added when missing.
3. Paths are virtual: the user's home is ``/``; ``cd`` moves inside it. Any path
   that would leave the home is refused with "Permission denied", never followed.
4. Unknown commands print ``<cmd>: command not found`` on stderr, status 127.
5. Output is deterministic where it can be (``uname`` reports a fixed Linux kernel
   name) so tests and scripts can match it.
"""

from __future__ import annotations

import shlex
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .files.root import FileRoot, PathEscapeError

if TYPE_CHECKING:
    from .core.context import Core

PROMPT = "$ "
# `cat` refuses files above this size: the shell answers over a terminal, not a bulk channel.
CAT_LIMIT = 1024 * 1024
KERNEL_NAME = "Linux"
KERNEL_RELEASE = "6.1.0-refservers"
KERNEL_VERSION = "#1 SMP PREEMPT_DYNAMIC"
MACHINE = "x86_64"
OPERATING_SYSTEM = "GNU/Linux"


@dataclass(frozen=True)
class ShellResult:
    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0
    exit_requested: bool = False


def _ok(text: str = "") -> ShellResult:
    return ShellResult(stdout=text)


def _error(text: str, status: int = 1) -> ShellResult:
    return ShellResult(stderr=text if text.endswith("\n") else text + "\n", exit_status=status)


@dataclass(frozen=True)
class ShellCommand:
    """One row of the command table: the name typed, its handler, usage and summary."""

    name: str
    handler: Callable[[ShellSession, list[str]], ShellResult]
    usage: str
    summary: str


class ShellSession:
    """One logged-in user's shell: current directory and last status, nothing else."""

    prompt = PROMPT

    def __init__(
        self,
        core: Core,
        user_name: str,
        hostname: str = "refservers",
        extra_commands: Mapping[str, str] | None = None,
    ):
        self.core = core
        self.user_name = user_name
        self.hostname = hostname
        self.extra_commands = {_normalise(name): output for name, output in (extra_commands or {}).items()}
        self.cwd = "/"  # virtual: "/" is the user's home in the shared file root
        self.last_status = 0

    # -- the one entry point -------------------------------------------------
    def run(self, line: str) -> ShellResult:
        """Run one input line and return what it printed and its exit status."""
        result = self._run(line)
        self.last_status = result.exit_status
        return result

    def _run(self, line: str) -> ShellResult:
        normalised = _normalise(line)
        if not normalised:
            return _ok()
        if normalised in self.extra_commands:
            output = self.extra_commands[normalised]
            return _ok(output if output.endswith("\n") or not output else output + "\n")
        try:
            words = shlex.split(line, comments=True)
        except ValueError as error:  # unbalanced quotes
            return _error(f"sh: syntax error: {error}", 2)
        if not words:
            return _ok()
        command = COMMANDS.get(words[0])
        if command is None:
            return _error(f"{words[0]}: command not found", 127)
        return command.handler(self, words[1:])

    # -- files: everything goes through the shared FileRoot ------------------
    def _file_root(self) -> FileRoot:
        return self.core.shared(FileRoot)

    def _virtual(self, real: Path) -> str:
        return str(self._file_root().virtual(self.user_name, real))

    def _lookup(self, path: str) -> tuple[Path, str]:
        """Resolve ``path``: (real path, "") or (an empty path, why it cannot be used)."""
        try:
            real = self._file_root().resolve(self.user_name, path, self.cwd)
        except PathEscapeError:
            return Path(), "Permission denied"
        if not real.exists():
            return Path(), "No such file or directory"
        return real, ""


def _normalise(line: str) -> str:
    return " ".join(line.split())


# -- the commands -----------------------------------------------------------------


def cmd_help(session: ShellSession, args: list[str]) -> ShellResult:
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"{c.usage.ljust(width)}  {c.summary}" for c in COMMANDS.values()]
    if session.extra_commands:
        lines.append("")
        lines.append("device commands:")
        lines.extend(f"  {name}" for name in sorted(session.extra_commands))
    return _ok("\n".join(lines) + "\n")


def cmd_echo(session: ShellSession, args: list[str]) -> ShellResult:
    newline = True
    if args and args[0] == "-n":
        newline, args = False, args[1:]
    return _ok(" ".join(args) + ("\n" if newline else ""))


def cmd_whoami(session: ShellSession, args: list[str]) -> ShellResult:
    return _ok(session.user_name + "\n")


def cmd_hostname(session: ShellSession, args: list[str]) -> ShellResult:
    return _ok(session.hostname + "\n")


_UNAME_FIELDS = {
    "s": lambda s: KERNEL_NAME,
    "n": lambda s: s.hostname,
    "r": lambda s: KERNEL_RELEASE,
    "v": lambda s: KERNEL_VERSION,
    "m": lambda s: MACHINE,
    "o": lambda s: OPERATING_SYSTEM,
}


def cmd_uname(session: ShellSession, args: list[str]) -> ShellResult:
    letters = ""
    for arg in args:
        if not arg.startswith("-") or arg == "-":
            return _error(f"uname: extra operand '{arg}'")
        for letter in arg[1:]:
            if letter == "a":
                letters += "snrvmo"
            elif letter in _UNAME_FIELDS:
                letters += letter
            else:
                return _error(f"uname: invalid option -- '{letter}'")
    # uname prints fields in its own fixed order, once each, whatever the flag order.
    chosen = [key for key in _UNAME_FIELDS if key in (letters or "s")]
    return _ok(" ".join(_UNAME_FIELDS[key](session) for key in chosen) + "\n")


def cmd_date(session: ShellSession, args: list[str]) -> ShellResult:
    if args and args != ["-u"]:
        return _error(f"date: invalid argument '{args[0]}'")
    return _ok(time.strftime("%a %b %e %H:%M:%S UTC %Y", time.gmtime()) + "\n")


def cmd_pwd(session: ShellSession, args: list[str]) -> ShellResult:
    return _ok(session.cwd + "\n")


def cmd_cd(session: ShellSession, args: list[str]) -> ShellResult:
    if len(args) > 1:
        return _error("cd: too many arguments")
    target = args[0] if args else "/"
    real, problem = session._lookup(target)
    if problem:
        return _error(f"cd: {target}: {problem}")
    if not real.is_dir():
        return _error(f"cd: {target}: Not a directory")
    session.cwd = session._virtual(real)
    return _ok()


def _long_entry(path: Path) -> str:
    info = path.stat()
    when = time.strftime("%b %e %H:%M", time.gmtime(info.st_mtime))
    return f"{stat.filemode(info.st_mode)} {info.st_size:>10} {when} {path.name}"


def cmd_ls(session: ShellSession, args: list[str]) -> ShellResult:
    long_format = show_hidden = False
    paths: list[str] = []
    for arg in args:
        if arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter == "l":
                    long_format = True
                elif letter == "a":
                    show_hidden = True
                elif letter != "1":
                    return _error(f"ls: invalid option -- '{letter}'", 2)
        else:
            paths.append(arg)
    out: list[str] = []
    errors: list[str] = []
    for index, path in enumerate(paths or ["."]):
        real, problem = session._lookup(path)
        if problem:
            errors.append(f"ls: cannot access '{path}': {problem}\n")
            continue
        if real.is_dir():
            entries = sorted(
                (p for p in real.iterdir() if show_hidden or not p.name.startswith(".")), key=lambda p: p.name
            )
            if len(paths) > 1:
                out.append(("\n" if index else "") + f"{path}:")
            out.extend(_long_entry(p) if long_format else p.name for p in entries)
        else:
            out.append(_long_entry(real) if long_format else path)
    stdout = "".join(line + "\n" for line in out)
    return ShellResult(stdout=stdout, stderr="".join(errors), exit_status=2 if errors else 0)


def cmd_cat(session: ShellSession, args: list[str]) -> ShellResult:
    if not args:
        return _error("cat: missing file operand")
    out: list[str] = []
    errors: list[str] = []
    for path in args:
        real, problem = session._lookup(path)
        if problem:
            errors.append(f"cat: {path}: {problem}\n")
        elif real.is_dir():
            errors.append(f"cat: {path}: Is a directory\n")
        elif real.stat().st_size > CAT_LIMIT:
            errors.append(f"cat: {path}: File too large (limit {CAT_LIMIT} bytes)\n")
        else:
            out.append(real.read_bytes().decode("utf-8", "replace"))
    return ShellResult(stdout="".join(out), stderr="".join(errors), exit_status=1 if errors else 0)


def cmd_exit(session: ShellSession, args: list[str]) -> ShellResult:
    status = session.last_status
    if args:
        try:
            status = int(args[0]) & 0xFF
        except ValueError:
            return ShellResult(stderr=f"exit: {args[0]}: numeric argument required\n", exit_status=2, exit_requested=True)
    return ShellResult(exit_status=status, exit_requested=True)


_COMMAND_ROWS = (
    ShellCommand("help", cmd_help, "help", "list the commands"),
    ShellCommand("echo", cmd_echo, "echo [-n] [text...]", "print the text"),
    ShellCommand("whoami", cmd_whoami, "whoami", "print the user name"),
    ShellCommand("hostname", cmd_hostname, "hostname", "print the host name"),
    ShellCommand("uname", cmd_uname, "uname [-a|-s|-n|-r|-v|-m|-o]", "print system information"),
    ShellCommand("date", cmd_date, "date [-u]", "print the date and time (UTC)"),
    ShellCommand("pwd", cmd_pwd, "pwd", "print the current directory"),
    ShellCommand("cd", cmd_cd, "cd [dir]", "change directory inside your home"),
    ShellCommand("ls", cmd_ls, "ls [-la] [path...]", "list a directory in your home"),
    ShellCommand("cat", cmd_cat, "cat path...", "print files from your home"),
    ShellCommand("exit", cmd_exit, "exit [status]", "end the session"),
    ShellCommand("logout", cmd_exit, "logout", "end the session"),
)
COMMANDS: dict[str, ShellCommand] = {row.name: row for row in _COMMAND_ROWS}

"""Session channels that are not file transfer: exec requests and interactive shells
(RFC 4254 sections 6.5 and 6.10), both answered by the scripted shell.

The command language lives in :mod:`servers.shell` (shared with telnet); this module
only moves its text over an SSH channel:

1. ``exec`` (``ssh host 'uname -s'``, Fabric's ``Connection.run``) runs one line and
   ends the channel with the command's exit status (RFC 4254 6.10 ``exit-status``):
   127 and a ``command not found`` line on stderr for unknown commands.
2. ``shell`` reads lines until ``exit``/``logout`` or end of input. With a terminal
   (``ssh -t``) asyncssh's line editor echoes and edits input, a prompt is shown, and
   Ctrl-C abandons the line; without one (input piped in) it reads lines silently,
   as ``sh`` does.
3. Subsystems other than ``sftp`` (which asyncssh routes to the SFTP backend before
   we are called) are refused with status 1.

Shell commands run in a worker thread: ``ls`` and ``cat`` touch the disk, and the
event loop serves every other connection meanwhile.

Fault rules (``server = "sftp"``) match the command line of an exec request or of a
shell line (a rule with ``user`` only for that login's lines): ``delay``
(``params.seconds``) runs it late, ``error`` answers ``params.output`` on stderr with
exit status ``params.status`` (a number; default 1) instead of running it,
``disconnect`` drops the SSH connection.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import asyncssh

from ..shell import ShellResult, ShellSession

if TYPE_CHECKING:
    from .server import SftpServer

WELCOME = "Welcome to refservers, {user}. This is a scripted shell: type help for its commands.\n"


class SessionChannel:
    """asyncssh's ``process_factory``: one call per exec or shell channel."""

    def __init__(self, server: SftpServer):
        self.server = server

    async def __call__(self, process: asyncssh.SSHServerProcess) -> None:
        user_name = process.get_extra_info("username")
        peer = self.server.peer_text(process.get_extra_info("peername"))
        shell = ShellSession(self.server.core, user_name, self.server.settings.hostname, self.server.settings.commands)
        try:
            if process.subsystem:
                self.server.record("command", peer, user=user_name, subsystem=process.subsystem)
                process.stderr.write(f"subsystem {process.subsystem!r} is not available\n")
                process.exit(1)
            elif process.command is not None:
                await self._exec(process, shell, peer, user_name, process.command)
            else:
                await self._interactive(process, shell, peer, user_name)
        except (asyncssh.Error, OSError, ConnectionError) as error:
            # The client went away mid-command; nothing is left to answer.
            self.server.log.debug("%s: session ended: %s", peer, error)
            process.close()

    async def _run(self, shell: ShellSession, line: str) -> ShellResult:
        return await asyncio.get_running_loop().run_in_executor(None, shell.run, line)

    async def _run_unless_faulted(
        self, process: asyncssh.SSHServerProcess, shell: ShellSession, peer: str, line: str
    ) -> tuple[ShellResult | None, bool]:
        """The line's result, and whether a fault rule fired; ``None`` when it dropped the connection."""
        rule = self.server.core.faults.check(self.server.name, line.strip(), peer, users=[shell.user_name])
        if rule is None:
            return await self._run(shell, line), False
        if rule.action == "delay":
            await asyncio.sleep(rule.params["seconds"])
            return await self._run(shell, line), True
        if rule.action == "error":
            return _fault_result(line, rule.params), True
        process.channel.get_connection().abort()  # disconnect
        return None, True

    async def _exec(
        self, process: asyncssh.SSHServerProcess, shell: ShellSession, peer: str, user_name: str, command: str
    ) -> None:
        self.server.wire.received(peer, command)
        result, faulted = await self._run_unless_faulted(process, shell, peer, command)
        if result is None:
            return
        details = {"fault": True} if faulted else {}
        self.server.record("command", peer, user=user_name, command=command, status=result.exit_status, **details)
        self.server.wire.sent(peer, result.stdout + result.stderr)
        process.stdout.write(result.stdout)
        process.stderr.write(result.stderr)
        process.exit(result.exit_status)

    async def _interactive(
        self, process: asyncssh.SSHServerProcess, shell: ShellSession, peer: str, user_name: str
    ) -> None:
        terminal = process.term_type is not None
        self.server.record("command", peer, user=user_name, shell="interactive" if terminal else "piped")
        if terminal:
            process.stdout.write(WELCOME.format(user=user_name))
        while True:
            if terminal:
                process.stdout.write(shell.prompt)
            try:
                line = await process.stdin.readline()
            except asyncssh.TerminalSizeChanged:
                continue
            except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                process.stdout.write("^C\n")  # abandon the line, like a shell does
                continue
            if not line:  # end of input (Ctrl-D, or the piped input ran out)
                process.exit(shell.last_status)
                return
            self.server.wire.received(peer, line.rstrip("\r\n"))
            if line.strip():
                result, faulted = await self._run_unless_faulted(process, shell, peer, line.rstrip("\r\n"))
                if result is None:
                    return
                details = {"fault": True} if faulted else {}
                self.server.record(
                    "command", peer, user=user_name, command=line.strip(), status=result.exit_status, **details
                )
            else:
                result = await self._run(shell, line.rstrip("\r\n"))
            self.server.wire.sent(peer, result.stdout + result.stderr)
            process.stdout.write(result.stdout)
            process.stderr.write(result.stderr)
            if result.exit_requested:
                process.exit(result.exit_status)
                return


def _fault_result(line: str, params: dict[str, Any]) -> ShellResult:
    """What an ``error`` fault rule answers instead of running ``line``."""
    status = params["status"] if isinstance(params["status"], int) else 1  # a status name: 1
    words = line.split()
    output = str(params.get("output", f"{words[0] if words else 'sh'}: Input/output error"))
    return ShellResult(stderr=output if output.endswith("\n") else output + "\n", exit_status=status)

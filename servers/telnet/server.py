"""TelnetServer: a login prompt and the scripted shell over Telnet (RFC 854/855).

This module owns the Telnet side only: option negotiation, the login dialogue and
line assembly. Accounts come from the shared user table, the commands from
:mod:`servers.shell` (the same shell SSH exec runs).

Option negotiation (RFC 855: agree to what we implement, refuse the rest):

- we offer ``WILL SGA`` (RFC 858) and ask ``DO NAWS`` (RFC 1073, window size) and
  ``DO TTYPE`` (RFC 1091, terminal type: asked for with ``SB TTYPE SEND``);
- ``WILL ECHO`` (RFC 857) is offered just before ``Password: `` so the client stops
  echoing locally, and withdrawn (``WONT ECHO``) once the password line arrived. If a
  client itself asks ``DO ECHO`` outside the password, we agree and echo its input;
- anything else a client offers or asks for gets ``DONT``/``WONT`` (Twisted's
  :class:`~twisted.conch.telnet.Telnet` state machine does the bookkeeping, so we
  never answer an answer and never loop).

Input is line based: CR LF, CR NUL and bare LF end a line, BS/DEL and ``IAC EC``
erase a character, ``IAC EL`` and Ctrl-U erase the line, ``IAC IP`` and Ctrl-C
discard it, Ctrl-D on an empty line logs out, ``IAC AYT`` is answered.

The login dialogue: ``login: ``, ``Password: `` (never echoed, never journalled or
traced), ``Login incorrect`` and a new ``login: `` after a failure, and the
connection closes after ``max_login_failures`` failures. After login the shell
prompt is ``$ ``. Journal kinds: ``connect``/``disconnect``, ``auth`` (ok, user),
``line`` (direction ``in``/``out``, text; the password line is recorded as
``secret`` without text; prompts are not lines), ``command`` (line, exit status),
``terminal`` (terminal_type, or columns and rows, as the client reported them) and
``timeout``.

Fault rules (``[[faults]] server = "telnet"``) match ``connect`` when a client connects,
``login <name>`` when a password arrives, and the command line itself in the shell:
``delay`` (``params.seconds``, default 1) holds that step, input typed meanwhile waits
in order; ``disconnect`` drops the connection without a word; ``error`` answers with
``params.output`` instead: at connect the text and a close, at login a refusal counted
as a failure (default ``Login incorrect``), for a command that output and exit status
``params.status`` (default 1). A rule with ``user`` fires for ``login <that name>`` and
that user's shell lines only (``connect`` is about nobody).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from twisted.conch import telnet
from twisted.internet import protocol
from twisted.protocols.policies import TimeoutMixin

from ..core.config import FLOAT, PORT, STR, STR_TABLE, Option, int_range
from ..core.faults import DELAY, DISCONNECT, INTEGER, STRING, FaultAction, Param
from ..core.lifecycle import ProbeError, retry_until
from ..core.loop import twisted_reactor
from ..core.twisted_listen import TwistedServer, peer_of
from ..shell import ShellSession

# Twisted names ECHO, SGA, NAWS and LINEMODE; TTYPE (RFC 1091) it does not.
TTYPE = bytes([24])
TTYPE_IS = b"\x00"
TTYPE_SEND = b"\x01"

LOCAL_OPTIONS = {telnet.ECHO, telnet.SGA}  # what we agree to perform
NAWS = telnet.NAWS
REMOTE_OPTIONS = {telnet.SGA, NAWS, TTYPE}  # what we let the client perform

MAX_LINE = 4096  # characters; a longer line is discarded with a message
CTRL_C, CTRL_D, CTRL_U = "\x03", "\x04", "\x15"
ERASE_CHARACTERS = {"\x08", "\x7f"}
# What an "error" fault rule says when it has no params.output, per step.
FAULT_OUTPUT = {"connect": "Service temporarily unavailable", "login": "Login incorrect", "command": "Input/output error"}


class TelnetSession(TimeoutMixin, telnet.TelnetProtocol):
    """One connection: login dialogue, then the shell. ``self.transport`` is the
    :class:`TelnetTransport` that strips IAC sequences and carries negotiation."""

    transport: Any  # TelnetTransportSafe (Twisted types it as a bare ITransport)

    def __init__(self, server: TelnetServer):
        self.server = server
        self.settings = server.settings
        self.peer = ""
        self.buffer = ""
        self.phase = "login"  # login -> password -> shell -> closed
        self.login_name = ""
        self.failures = 0
        self.shell: ShellSession | None = None
        self.terminal_type = ""
        self.window_size: tuple[int, int] | None = None
        self.echo_input = False  # we echo input when the client asked DO ECHO
        self.asked_echo = False  # we offered WILL ECHO ourselves (for the password)
        self.held = False  # a delay fault holds this step; input waits in self.pending
        self.pending = ""

    # -- connection ----------------------------------------------------------
    def connectionMade(self) -> None:
        self.peer = peer_of(self.transport)
        self.server.record("connect", self.peer)
        self.transport.negotiationMap[NAWS] = self._window_size_received
        self.transport.negotiationMap[TTYPE] = self._terminal_type_received
        self._negotiate(self.transport.will, telnet.SGA)
        self._negotiate(self.transport.do, NAWS)
        self._negotiate(self.transport.do, TTYPE).addCallback(self._ask_terminal_type)
        if self.settings.idle_timeout:
            self.setTimeout(self.settings.idle_timeout)
        self._unless_faulted("connect", self._greet, self._refuse_connection)

    def _greet(self) -> None:
        for line in self.settings.banner.splitlines():
            self._send_line(line)
        self._prompt("login: ")

    def connectionLost(self, reason: Any = None) -> None:
        self.setTimeout(None)
        self.phase = "closed"
        self.server.record("disconnect", self.peer, user=self.shell.user_name if self.shell else None)

    def timeoutConnection(self) -> None:
        self._send_line("")
        self._send_line(f"timed out after {self.settings.idle_timeout:g} seconds of inactivity")
        self.server.record("timeout", self.peer)
        self.transport.loseConnection()

    # -- option negotiation (RFC 855) ------------------------------------------
    def _negotiate(self, request: Callable[[bytes], Any], option: bytes) -> Any:
        return request(option).addErrback(_refused)

    def enableLocal(self, option: bytes) -> bool:
        if option == telnet.ECHO:
            # Either the client agreed to our offer (password: echo nothing) or it
            # asked us to echo its input (RFC 857), which we then do.
            self.echo_input = not self.asked_echo
        return option in LOCAL_OPTIONS

    def enableRemote(self, option: bytes) -> bool:
        return option in REMOTE_OPTIONS

    def disableLocal(self, option: bytes) -> None:
        if option == telnet.ECHO:
            self.echo_input = self.asked_echo = False

    def disableRemote(self, option: bytes) -> None:
        pass

    def _ask_terminal_type(self, agreed: Any) -> None:
        if agreed is True:
            self.transport.requestNegotiation(TTYPE, TTYPE_SEND)

    def _terminal_type_received(self, data: list[bytes]) -> None:
        payload = b"".join(data)
        if payload[:1] == TTYPE_IS:
            self.terminal_type = payload[1:].decode("ascii", "replace")
            self.server.record("terminal", self.peer, terminal_type=self.terminal_type)

    def _window_size_received(self, data: list[bytes]) -> None:
        payload = b"".join(data)
        if len(payload) == 4:
            self.window_size = (int.from_bytes(payload[:2], "big"), int.from_bytes(payload[2:], "big"))
            self.server.record("terminal", self.peer, columns=self.window_size[0], rows=self.window_size[1])

    def _local_echo_state(self) -> Any:
        return self.transport.getOptionState(telnet.ECHO).us

    def _suppress_client_echo(self) -> None:
        state = self._local_echo_state()
        if state.state == "no" and not state.negotiating:
            self.asked_echo = True
            self._negotiate(self.transport.will, telnet.ECHO).addCallback(self._echo_agreed)

    def _echo_agreed(self, agreed: Any) -> None:
        # The client may answer DO ECHO after the password already arrived (input
        # typed ahead): give local echo back then.
        if agreed is True and self.phase != "password":
            self._restore_client_echo()

    def _restore_client_echo(self) -> None:
        state = self._local_echo_state()
        if state.state == "yes" and not state.negotiating:
            self.echo_input = False
            self._negotiate(self.transport.wont, telnet.ECHO)

    # -- Telnet commands (RFC 854 "NVT" functions) -----------------------------
    def unhandledCommand(self, command: bytes, argument: Any) -> None:
        if command == telnet.EC:
            self.buffer = self.buffer[:-1]
        elif command in (telnet.EL, telnet.IP, telnet.BRK, telnet.AO):
            self.buffer = ""
            if command == telnet.IP and self.phase == "shell":
                self._send_text("^C\n")
                self._prompt(self.shell.prompt if self.shell else "$ ")
        elif command == telnet.AYT:
            self._send_text(f"\n[{self.server.settings.hostname}: yes]\n")

    # -- input -------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        self.pending += data.decode("utf-8", "replace")
        self._drain()

    def _drain(self) -> None:
        text, self.pending = self.pending, ""
        for index, char in enumerate(text):
            if self.phase == "closed":
                return
            if self.held:  # a line just handled is held by a delay fault: keep the rest for later
                self.pending = text[index:]
                return
            if char in "\r\n":
                if self.echo_input and self.phase != "password":
                    self._send_text("\n")
                line, self.buffer = self.buffer, ""
                self._line_received(line)
            elif char in ERASE_CHARACTERS:
                if self.buffer and self.echo_input and self.phase != "password":
                    self._send_text("\b \b")
                self.buffer = self.buffer[:-1]
            elif char in (CTRL_C, CTRL_U):
                self.buffer = ""
            elif char == CTRL_D and not self.buffer:
                self._line_received("logout" if self.phase == "shell" else "")
            elif char == "\x00" or (ord(char) < 32 and char != "\t"):
                continue  # other controls (and the NUL of CR NUL) carry no text
            elif len(self.buffer) >= MAX_LINE:
                self.buffer = ""
                self._send_line(f"line longer than {MAX_LINE} characters discarded")
            else:
                if self.echo_input and self.phase != "password":
                    self._send_text(char)
                self.buffer += char

    def _line_received(self, line: str) -> None:
        secret = self.phase == "password"
        self.server.wire.received(self.peer, line, secret=secret)
        if secret:
            self.server.record("line", self.peer, direction="in", secret=True)
        else:
            self.server.record("line", self.peer, direction="in", text=line)
        if self.phase == "password":
            self._unless_faulted(
                f"login {self.login_name}",
                lambda: self._password_line(line),
                lambda params: self._password_line(line, refusal=params.get("output", FAULT_OUTPUT["login"])),
                users=[self.login_name],
            )
        elif self.phase == "shell" and line.strip():
            self._unless_faulted(
                line.strip(),
                lambda: self._shell_line(line),
                lambda params: self._shell_fault(line, params),
                users=[self.shell.user_name if self.shell else None],
            )
        else:
            {"login": self._login_line, "shell": self._shell_line}[self.phase](line)

    # -- fault rules --------------------------------------------------------------------
    def _unless_faulted(
        self,
        subject: str,
        handle: Callable[[], None],
        error: Callable[[dict[str, Any]], None],
        users: list[str | None] | None = None,
    ) -> None:
        """Run ``handle`` now, after a delay, or not at all (error, disconnect), as a fault rule
        says; ``users`` are who the step is about (the login name; none at connect)."""
        rule = self.server.core.faults.check(self.server.name, subject, self.peer, users=users or ())
        if rule is None:
            handle()
        elif rule.action == "delay":
            self.held = True
            twisted_reactor().callLater(rule.params["seconds"], self._release, handle)
        elif rule.action == "error":
            error(rule.params)
        else:  # disconnect: gone without a word, as a crashed device would
            self.phase = "closed"
            self.transport.transport.abortConnection()

    def _release(self, handle: Callable[[], None]) -> None:
        self.held = False
        if self.phase == "closed":
            return
        handle()
        self._drain()  # what the client typed meanwhile

    def _refuse_connection(self, params: dict[str, Any]) -> None:
        for line in str(params.get("output", FAULT_OUTPUT["connect"])).splitlines():
            self._send_line(line)
        self.phase = "closed"
        self.transport.loseConnection()

    def _shell_fault(self, line: str, params: dict[str, Any]) -> None:
        assert self.shell is not None
        status = params["status"]
        self.server.record(
            "command", self.peer, user=self.shell.user_name, line=line, exit_status=status, fault=True
        )
        for output in str(params.get("output", f"{line.split()[0]}: {FAULT_OUTPUT['command']}")).splitlines():
            self._send_line(output)
        self._prompt(self.shell.prompt)

    # -- login dialogue ----------------------------------------------------------------
    def _login_line(self, line: str) -> None:
        name = line.strip()
        if not name:
            self._prompt("login: ")
            return
        self.login_name = name
        self.phase = "password"
        self._suppress_client_echo()
        self._prompt("Password: ")

    def _password_line(self, password: str, refusal: str | None = None) -> None:
        """Check the password; ``refusal`` (from an error fault) refuses the login with that text."""
        self.phase = "login"
        self._restore_client_echo()
        self._send_text("\n")  # the client did not echo the Enter either
        user = self.server.core.users.check_password(self.login_name, password) if refusal is None else None
        self.server.record("auth", self.peer, ok=user is not None, user=self.login_name)
        if user is None:
            self.failures += 1
            for line in (refusal or "Login incorrect").splitlines():
                self._send_line(line)
            if self.failures >= self.settings.max_login_failures:
                self._send_line("Too many login failures, closing connection")
                self.phase = "closed"
                self.transport.loseConnection()
                return
            self._prompt("login: ")
            return
        self.shell = ShellSession(self.server.core, user.name, self.settings.hostname, self.settings.commands)
        self.phase = "shell"
        if self.settings.motd:
            for motd_line in self.settings.motd.splitlines():
                self._send_line(motd_line)
        self._prompt(self.shell.prompt)

    # -- shell --------------------------------------------------------------------------
    def _shell_line(self, line: str) -> None:
        assert self.shell is not None
        result = self.shell.run(line)
        if line.strip():
            self.server.record("command", self.peer, user=self.shell.user_name, line=line, exit_status=result.exit_status)
        for output in result.stdout.splitlines() + result.stderr.splitlines():
            self._send_line(output)
        if result.exit_requested:
            self._send_line("logout")
            self.phase = "closed"
            self.transport.loseConnection()
            return
        self._prompt(self.shell.prompt)

    # -- output --------------------------------------------------------------------------
    def _send_line(self, line: str) -> None:
        self.server.wire.sent(self.peer, line)
        self.server.record("line", self.peer, direction="out", text=line)
        self._send_text(line + "\n")

    def _prompt(self, prompt: str) -> None:
        self.server.wire.sent(self.peer, prompt)
        self._send_text(prompt)

    def _send_text(self, text: str) -> None:
        # TelnetTransport.write turns LF into the NVT's CR LF and doubles IAC bytes.
        self.transport.write(text.encode("utf-8"))


class TelnetTransportSafe(telnet.TelnetTransport):
    """TelnetTransport that survives an IAC command byte it does not know.

    Twisted raises ``ValueError("Stumped")`` for ``IAC`` followed by an unassigned
    command (e.g. ``IAC EOF``), which would drop the connection; RFC 854 says to
    ignore commands we do not understand, so we skip the byte and go on.
    """

    def dataReceived(self, data: bytes) -> None:
        while data:
            try:
                super().dataReceived(data)
                return
            except ValueError as error:
                if len(error.args) < 2 or error.args[0] != "Stumped":
                    raise
                self.state = "data"
                data = data[_index_after_unknown_command(data, error.args[1]) :]


def _index_after_unknown_command(data: bytes, command: bytes) -> int:
    position = data.find(telnet.IAC + command)
    if position >= 0:
        return position + 2
    # The IAC ended the previous chunk: the unknown byte opens this one.
    return 1 if data[:1] == command else len(data)


def _refused(failure: Any) -> None:
    """Errback for our own WILL/DO: a refusal (DONT/WONT), a negotiation already under
    way or a connection lost mid-negotiation are normal answers, not errors."""
    failure.trap(telnet.NegotiationError, Exception)


class TelnetFactory(protocol.ServerFactory):
    noisy = False

    def __init__(self, server: TelnetServer):
        self.server = server

    def buildProtocol(self, addr: Any) -> TelnetTransportSafe:
        transport = TelnetTransportSafe(TelnetSession, self.server)
        transport.factory = self
        return transport


class TelnetServer(TwistedServer):
    name = "telnet"
    description = "Telnet login (RFC 854) against the user table, then a small scripted shell"
    scheme = "telnet"
    stores = ("users", "files")
    fault_subject = 'connect, "login NAME" when the password arrives, then shell lines ("show *")'
    fault_user = "the login name, then the logged-in user"
    fault_actions = {
        "delay": DELAY,
        "disconnect": DISCONNECT,
        "error": FaultAction(
            "answer params.output instead: at connect the text and a close, at login a refusal"
            " counted as a failure, for a shell line that output and exit status params.status",
            (
                Param("output", STRING, help="the text sent (default: a message for the step)"),
                Param("status", INTEGER, 0, 255, default=1, help="exit status of a faulted shell line"),
            ),
        ),
    }
    options = (
        Option("port", PORT, 2323, "Telnet port"),
        Option("banner", STR, "refservers telnet server", "text sent before the first login prompt"),
        Option("motd", STR, "", "text sent after a successful login"),
        Option("hostname", STR, "refservers", "what `hostname` and `uname -n` print"),
        Option("idle_timeout", FLOAT, 300.0, "seconds without input before the connection closes (0: never)"),
        Option("max_login_failures", int_range(1, 100), 3, "failed logins before the connection closes"),
        Option(
            "commands",
            STR_TABLE,
            {},
            'extra commands with fixed output, e.g. {"show version" = "Cisco IOS ..."}',
        ),
    )

    def _bind(self) -> None:
        self.listen("main", TelnetFactory(self), self.settings.port)

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        """Connect, refuse every option the server offers, wait for ``login: ``."""

        def attempt(remaining: float) -> str:
            deadline = time.monotonic() + remaining
            try:
                with socket.create_connection((host, port), timeout=remaining) as sock:
                    received = b""
                    while b"login: " not in received:
                        sock.settimeout(max(deadline - time.monotonic(), 0.01))
                        chunk = sock.recv(4096)
                        if not chunk:
                            raise ProbeError(f"{host}:{port}: closed before the login prompt")
                        received += chunk
                        sock.sendall(refusals(chunk))
            except ConnectionRefusedError:
                raise
            except OSError as error:
                raise ProbeError(f"{host}:{port}: {error}") from None
            text = strip_commands(received).decode("utf-8", "replace")
            return text.strip().splitlines()[0] if text.strip() else "login prompt"

        return retry_until(timeout, attempt)


def refusals(chunk: bytes) -> bytes:
    """``DONT``/``WONT`` for every ``WILL``/``DO`` in ``chunk`` (the probe accepts nothing)."""
    answers = {telnet.WILL: telnet.DONT, telnet.DO: telnet.WONT}
    out = b""
    for index in range(len(chunk) - 2):
        if chunk[index : index + 1] == telnet.IAC and chunk[index + 1 : index + 2] in answers:
            out += telnet.IAC + answers[chunk[index + 1 : index + 2]] + chunk[index + 2 : index + 3]
    return out


def strip_commands(data: bytes) -> bytes:
    """``data`` without IAC command and subnegotiation sequences (for the probe's summary)."""
    out = bytearray()
    index = 0
    while index < len(data):
        byte = data[index]
        if byte != 255:
            out.append(byte)
            index += 1
        elif data[index + 1 : index + 2] in (telnet.WILL, telnet.WONT, telnet.DO, telnet.DONT):
            index += 3
        elif data[index + 1 : index + 2] == telnet.SB:
            end = data.find(telnet.IAC + telnet.SE, index)
            index = len(data) if end < 0 else end + 2
        else:
            index += 2
    return bytes(out)

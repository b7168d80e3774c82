"""POP3 server (twisted.mail.pop3, RFC 1939) reading users' INBOX in the MailStore.

What this module owns: the POP3 dialogue on the plain port (STLS, RFC 2595) and the
implicit-TLS port (RFC 8314); USER/PASS and APOP through twisted.cred, AUTH PLAIN
(RFC 5034), CAPA (RFC 2449), the maildrop view of one session, fault rules, journal
events and the wire trace. Messages, UIDs and deletion belong to the store.

What is kept from Twisted's ``POP3`` protocol: line framing, the APOP challenge in the
greeting, USER/PASS/APOP through a cred portal, command pipelining (commands queue
while a long one runs), the idle timeout, NOOP, RSET, QUIT. What is replaced, and why:
- dispatch goes through the ``COMMANDS`` table (state and argument count checked in
  one place; every command journalled and offered to the fault rules);
- STAT, LIST and UIDL: Twisted's count messages marked deleted (RFC 1939 says they
  no longer exist for the session);
- RETR and TOP: Twisted converts LF to CRLF, which doubles the CR of our CRLF store,
  and misses dot-stuffing across chunk boundaries;
- STLS and AUTH PLAIN do not exist in Twisted's POP3.

The session works on a snapshot of the INBOX taken at login (RFC 1939 section 8:
message numbers are fixed for the session); DELE only marks, QUIT deletes from the
store, a dropped connection deletes nothing. UIDL values are the store keys, stable
across sessions and processes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import poplib
import ssl
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from ..core.loop import EventLoop

# twisted.mail.pop3 imports twisted.mail.smtp, which imports the reactor: Twisted's
# asyncio reactor (the one loop every server shares) must be installed before it.
EventLoop.shared()

from twisted.cred import credentials, error, portal
from twisted.cred.checkers import ICredentialsChecker
from twisted.internet import defer, protocol
from twisted.mail import pop3
from zope.interface import implementer

from ..core.config import FLOAT, PORT, Option
from ..core.faults import DELAY, DISCONNECT, POP3_ERROR, reply_error
from ..core.lifecycle import ProbeError, retry_until
from ..core.logs import mask_credentials
from ..core.loop import twisted_reactor
from ..core.twisted_listen import TwistedServer, peer_of, send_now, write_now
from ..mail.store import INBOX, MailStore, MessageInfo

AUTHORIZATION, TRANSACTION = "authorization", "transaction"


@dataclass(frozen=True)
class Command:
    state: str | None  # None: allowed in both states
    min_args: int = 0
    max_args: int | None = 0  # None: any number (PASS: a password may contain spaces)


COMMANDS: dict[str, Command] = {
    "CAPA": Command(None),
    "QUIT": Command(None),
    "NOOP": Command(None),
    "USER": Command(AUTHORIZATION, 1, 1),
    "PASS": Command(AUTHORIZATION, 1, None),
    "APOP": Command(AUTHORIZATION, 2, 2),
    "AUTH": Command(AUTHORIZATION, 0, 2),
    "STLS": Command(AUTHORIZATION),
    "STAT": Command(TRANSACTION),
    "LIST": Command(TRANSACTION, 0, 1),
    "UIDL": Command(TRANSACTION, 0, 1),
    "RETR": Command(TRANSACTION, 1, 1),
    "TOP": Command(TRANSACTION, 2, 2),
    "DELE": Command(TRANSACTION, 1, 1),
    "RSET": Command(TRANSACTION),
}
SASL_MECHANISMS = ("PLAIN",)
FAULT_REPLY = "-ERR [SYS/TEMP] temporary failure (injected)"


class BadCommand(Exception):
    """A command that gets ``-ERR <message>``; the session goes on."""


@implementer(pop3.IMailbox)
class StoreMailbox:
    """One session's view of a user's INBOX (twisted.mail.pop3.IMailbox)."""

    def __init__(self, store: MailStore, user: str):
        self.store = store
        self.user = user
        self.snapshot: list[MessageInfo] = store.messages(user, INBOX)
        self.deleted: set[int] = set()

    def live(self) -> list[tuple[int, MessageInfo]]:
        """(1-based number, message) of messages not marked deleted."""
        return [(n + 1, m) for n, m in enumerate(self.snapshot) if n not in self.deleted]

    def get(self, number_text: bytes) -> MessageInfo:
        try:
            index = int(number_text) - 1
        except ValueError:
            raise BadCommand("invalid message number") from None
        if not 0 <= index < len(self.snapshot):
            raise BadCommand("no such message")
        if index in self.deleted:
            raise BadCommand("message already deleted")
        return self.snapshot[index]

    # -- IMailbox --------------------------------------------------------------------
    def listMessages(self, i: int | None = None) -> Any:
        if i is None:
            return [0 if n in self.deleted else m.size for n, m in enumerate(self.snapshot)]
        if not 0 <= i < len(self.snapshot):
            raise ValueError(i)
        return 0 if i in self.deleted else self.snapshot[i].size

    def getMessage(self, i: int) -> BytesIO:
        return BytesIO(self.store.read(self.user, self.snapshot[i].key))

    def getUidl(self, i: int) -> bytes:
        return self.snapshot[i].key.encode()

    def deleteMessage(self, i: int) -> None:
        self.deleted.add(i)

    def undeleteMessages(self) -> None:
        self.deleted.clear()

    def sync(self) -> None:
        keys = [self.snapshot[i].key for i in sorted(self.deleted)]
        if keys:
            self.store.delete(self.user, keys, INBOX)
        self.deleted.clear()


@implementer(ICredentialsChecker)
class StoreChecker:
    """USER/PASS and APOP against the store's accounts (table users, address mailboxes)."""

    credentialInterfaces = (credentials.IUsernamePassword, credentials.IUsernameHashedPassword)

    def __init__(self, store: MailStore):
        self.store = store

    def requestAvatarId(self, given: Any) -> Any:
        name = given.username.decode("utf-8", "replace")
        if credentials.IUsernamePassword.providedBy(given):
            user = self.store.authenticate(name, given.password.decode("utf-8", "replace"))
        else:  # APOP: the digest needs the clear-text password
            password = self.store.password_of(name)
            user = name if password is not None and apop_matches(given, password) else None
        if user is None:
            return defer.fail(error.UnauthorizedLogin())
        return defer.succeed(user)


def apop_matches(given: Any, password: str) -> bool:
    """RFC 1939 7: MD5(challenge + password) in hex. Done here because Twisted's
    ``APOPCredentials.checkPassword`` compares a str digest with the bytes sent."""
    magic = given.magic if isinstance(given.magic, bytes) else str(given.magic).encode()
    expected = hashlib.md5(magic + password.encode()).hexdigest().encode()
    return hmac.compare_digest(expected, bytes(given.digest).lower())


@implementer(portal.IRealm)
class MailboxRealm:
    def __init__(self, store: MailStore):
        self.store = store

    def requestAvatar(self, avatar_id: Any, mind: Any, *interfaces: Any) -> Any:
        if pop3.IMailbox not in interfaces:
            raise NotImplementedError("POP3 realm offers IMailbox only")
        user = avatar_id.decode() if isinstance(avatar_id, bytes) else avatar_id
        return pop3.IMailbox, StoreMailbox(self.store, user), lambda: None


class Pop3Protocol(pop3.POP3):
    """One POP3 connection (see the module docstring for what is Twisted's)."""

    # Twisted's stubs type these as None or as interfaces; they are plain objects here.
    factory: Any
    mbox: Any
    portal: Any
    blocked: Any
    transport: Any

    def __init__(self, server: Pop3Server, implicit_tls: bool):
        self.server = server
        self.secure = implicit_tls
        self.portal = server.portal
        self.timeOut = int(server.settings.idle_timeout)
        self.peer = ""
        self._login_name = ""
        self._stls_pending = False

    # -- connection ---------------------------------------------------------------------
    def connectionMade(self) -> None:
        self.peer = peer_of(self.transport)
        self.server.record("connect", self.peer, tls=self.secure)
        rule = self.server.core.faults.check(self.server.name, "connect", self.peer)
        if rule is not None and rule.action != "delay":
            self._carry_out(rule)
            return
        if rule is not None:
            self.blocked = []  # hold early pipelined commands until the greeting is out
            twisted_reactor().callLater(rule.params["seconds"], self._greet_late)
            return
        super().connectionMade()

    def _greet_late(self) -> None:
        if self.transport is None or not self.transport.connected:
            return
        pending, self.blocked = self.blocked, None
        super().connectionMade()
        command: bytes
        args: tuple[bytes, ...]
        for command, args in pending or []:
            self.processCommand(command, *args)

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        self.server.record("disconnect", self.peer)
        super().connectionLost(reason)

    # -- lines in and out --------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        if self._stls_pending:
            # RFC 2595 / RFC 3207 injection rule: plaintext after STLS is discarded.
            self._stls_pending = False
            self._buffer = b""

    def lineReceived(self, line: bytes) -> None:
        if self._stls_pending:
            return
        if self.server.wire.enabled:
            self.server.wire.received(self.peer, line, secret=self.state == "AUTH")
        # Twisted's POP3.lineReceived, without its getattr of "state_" + state per line
        # (the states are COMMAND and our AUTH).
        self.resetTimeout()
        if self.state == "COMMAND":
            self.state_COMMAND(line)
        else:
            self.state_AUTH(line)

    def sendLine(self, line: bytes) -> None:
        self.server.wire.sent(self.peer, line)
        super().sendLine(line)

    def successResponse(self, message: Any = "") -> None:
        line = pop3.successResponse(message)
        self.server.wire.sent(self.peer, line.rstrip(b"\r\n"))
        self.transport.write(line)

    def failResponse(self, message: Any = b"") -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        self.sendLine(b"-ERR " + text.encode("utf-8"))

    def _write_multiline(self, first: str, lines: list[bytes]) -> None:
        self.successResponse(first)
        self.transport.write(b"".join(line + b"\r\n" for line in lines) + b".\r\n")
        self.server.wire.sent(self.peer, f"<{len(lines)} lines>")

    # -- dispatch -----------------------------------------------------------------------
    def state_COMMAND(self, line: bytes) -> None:
        self.processCommand(*line.split(b" "))
        send_now(self.transport)  # the reply, in this reactor turn (see send_now)

    def processCommand(self, command: bytes, *args: bytes) -> Any:
        if self.blocked is not None:
            self.blocked.append((command, args))
            return None
        verb = command.upper().decode("ascii", "replace")
        # One decode of the joined arguments: UTF-8 never puts a space inside a
        # character, so this reads exactly as decoding each argument apart.
        text = mask_credentials(f"{verb} {b' '.join(args).decode('utf-8', 'replace')}" if args else verb)
        self.server.record("command", self.peer, command=text, user=self.mbox.user if self.mbox else None)
        rule = self.server.core.faults.check(self.server.name, text, self.peer, users=self._fault_users(verb, args))
        if rule is not None:
            if rule.action != "delay":
                self._carry_out(rule)
                return None
            self.blocked = []
            twisted_reactor().callLater(rule.params["seconds"], self._run_delayed, verb, args)
            return None
        return self._dispatch(verb, args)

    def _fault_users(self, verb: str, args: tuple[bytes, ...]) -> list[str | None]:
        """Who a command is about, for user-scoped fault rules: the logged-in user, else
        the name being logged in (USER and APOP name it, PASS follows USER)."""
        if self.mbox is not None:
            return [self.mbox.user]
        if verb in ("USER", "APOP") and args:
            return [args[0].decode("utf-8", "replace")]
        return [self._userIs.decode("utf-8", "replace") if isinstance(self._userIs, bytes) else self._userIs]

    def _run_delayed(self, verb: str, args: tuple[bytes, ...]) -> None:
        pending, self.blocked = self.blocked, None
        if self.transport is not None and self.transport.connected:
            self._dispatch(verb, args)
        command: bytes
        queued_args: tuple[bytes, ...]
        for command, queued_args in pending or []:
            self.processCommand(command, *queued_args)

    def _dispatch(self, verb: str, args: tuple[bytes, ...]) -> Any:
        spec = COMMANDS.get(verb)
        if spec is None:
            self.failResponse(f"unknown command {verb[:20]}")
            return None
        state = TRANSACTION if self.mbox is not None else AUTHORIZATION
        if spec.state is not None and spec.state != state:
            self.failResponse(f"{verb} not allowed {'before login' if state == AUTHORIZATION else 'after login'}")
            return None
        if verb != "PASS" and b"" in args:
            args = tuple(a for a in args if a)  # tolerate doubled spaces
        if len(args) < spec.min_args or (spec.max_args is not None and len(args) > spec.max_args):
            self.failResponse(f"wrong number of arguments for {verb}")
            return None
        try:
            return getattr(self, "do_" + verb)(*args)
        except BadCommand as problem:
            self.failResponse(str(problem))
            return None

    def _carry_out(self, rule: Any) -> None:
        if rule.action == "error":
            self.sendLine(rule.params["reply"].encode("utf-8"))
            if rule.params["close"]:
                self.transport.loseConnection()
        else:  # disconnect
            self.transport.abortConnection()

    # -- authorization state --------------------------------------------------------------
    def listCapabilities(self) -> list[bytes]:
        capabilities = [b"TOP", b"UIDL", b"RESP-CODES", b"PIPELINING", b"USER", b"SASL " + " ".join(SASL_MECHANISMS).encode()]
        if not self.secure and self.mbox is None and self.server.tls_options is not None:
            capabilities.append(b"STLS")
        capabilities.append(b"IMPLEMENTATION refservers")
        return capabilities

    def do_CAPA(self) -> None:
        self._write_multiline("Capability list follows", self.listCapabilities())

    def do_STLS(self) -> None:
        if self.secure:
            raise BadCommand("TLS already active")
        self.successResponse("Begin TLS negotiation")
        self._stls_pending = True
        self.secure = True
        self.transport.startTLS(self.server.tls_options)

    def do_USER(self, user: bytes) -> None:
        self._login_name = user.decode("utf-8", "replace")
        super().do_USER(user)

    def do_PASS(self, password: bytes, *words: bytes) -> None:
        if self._userIs is None:
            raise BadCommand("USER required before PASS")
        super().do_PASS(password, *words)

    def do_APOP(self, user: bytes, digest: bytes) -> None:
        self._login_name = user.decode("utf-8", "replace")
        super().do_APOP(user, digest)

    def do_AUTH(self, mechanism: bytes | None = None, initial: bytes | None = None) -> None:
        if mechanism is None:
            self._write_multiline("Supported SASL mechanisms", [m.encode() for m in SASL_MECHANISMS])
            return
        if mechanism.upper() != b"PLAIN":
            raise BadCommand("unsupported SASL mechanism")
        if initial is not None and initial != b"=":
            self._auth_plain(initial)
            return
        self.state = "AUTH"
        self.sendLine(b"+ ")

    def state_AUTH(self, line: bytes) -> None:
        self.state = "COMMAND"
        if line.strip() == b"*":
            self.failResponse("authentication cancelled")
            return
        self._auth_plain(line)

    def _auth_plain(self, encoded: bytes) -> None:
        try:
            _authzid, name, password = base64.b64decode(encoded.strip(), validate=True).split(b"\0")
        except (binascii.Error, ValueError):
            raise BadCommand("malformed AUTH PLAIN response") from None
        self._login_name = name.decode("utf-8", "replace")
        deferred = self.portal.login(credentials.UsernamePassword(name, password), None, pop3.IMailbox)
        deferred.addCallbacks(self._cbMailbox, self._ebMailbox, callbackArgs=(name,)).addErrback(self._ebUnexpected)

    def _cbMailbox(self, result: Any, user: bytes) -> None:
        self.server.record("auth", self.peer, ok=True, user=self._login_name)
        # Twisted private (checked against the pinned Twisted 26.10; tests/core/test_library_internals.py fails if it moves)
        super()._cbMailbox(result, user)

    def _ebMailbox(self, failure: Any) -> None:
        self.server.record("auth", self.peer, ok=False, user=self._login_name)
        failure.trap(error.UnauthorizedLogin, error.LoginDenied, error.LoginFailed)
        self.failResponse("[AUTH] authentication failed")

    def _ebUnexpected(self, failure: Any) -> None:
        self.server.log.error("POP3 login error: %s", failure.getErrorMessage())
        self.failResponse("[SYS/TEMP] server error")

    # -- transaction state (mbox is set) ----------------------------------------------------
    @property
    def box(self) -> StoreMailbox:
        assert self.mbox is not None  # the COMMANDS table only lets these run after login
        return self.mbox

    def do_STAT(self) -> None:
        live = self.box.live()
        self.successResponse(f"{len(live)} {sum(m.size for _, m in live)}")

    def do_LIST(self, number: bytes | None = None) -> None:
        if number is not None:
            message = self.box.get(number)
            self.successResponse(f"{int(number)} {message.size}")
            return
        live = self.box.live()
        self._write_multiline(f"{len(live)} messages", [f"{n} {m.size}".encode() for n, m in live])

    def do_UIDL(self, number: bytes | None = None) -> None:
        if number is not None:
            self.successResponse(f"{int(number)} {self.box.get(number).key}")
            return
        self._write_multiline("unique-id listing follows", [f"{n} {m.key}".encode() for n, m in self.box.live()])

    def do_RETR(self, number: bytes) -> None:
        box = self.box
        message = box.get(number)
        self._send_message(message, box.store.read(box.user, message.key), f"{message.size} octets")
        self.server.record("retrieve", self.peer, user=box.user, key=message.key, size=message.size)

    def do_TOP(self, number: bytes, lines: bytes) -> None:
        message = self.box.get(number)
        try:
            count = int(lines)
            if count < 0:
                raise ValueError
        except ValueError:
            raise BadCommand("invalid line count") from None
        data = self.box.store.read(self.box.user, message.key)
        head, separator, body = data.partition(b"\r\n\r\n")
        kept = b"".join(line + b"\r\n" for line in body.split(b"\r\n")[:count]) if count else b""
        self._send_message(message, head + separator + kept, "top of message follows")

    def _send_message(self, message: MessageInfo, data: bytes, first: str) -> None:
        # Dot-stuffing (RFC 1939 3) over the whole message; the store already holds CRLF.
        if data.startswith(b"."):
            data = b"." + data
        data = data.replace(b"\r\n.", b"\r\n..")
        if data and not data.endswith(b"\r\n"):
            data += b"\r\n"
        line = pop3.successResponse(first)
        wire = self.server.wire  # its lines are only made when the trace is on
        if wire.enabled:
            wire.sent(self.peer, line.rstrip(b"\r\n"))
        write_now(self.transport, line + data + b".\r\n")  # the whole reply in one send
        if wire.enabled:
            wire.sent(self.peer, f"<message {message.key}: {len(data)} bytes>")

    def do_DELE(self, number: bytes) -> None:
        message = self.box.get(number)
        self.box.deleteMessage(self.box.snapshot.index(message))
        self.successResponse(f"message {int(number)} deleted")

    def do_QUIT(self) -> None:
        if self.mbox is not None:
            deleted = [self.box.snapshot[i].key for i in sorted(self.box.deleted)]
            try:
                self.box.sync()
            except OSError as problem:
                self.failResponse(f"[SYS/TEMP] some deleted messages not removed: {problem.strerror}")
                self.transport.loseConnection()
                return
            if deleted:
                self.server.record("delete", self.peer, user=self.box.user, keys=deleted)
        self.successResponse("bye")
        self.transport.loseConnection()


class Pop3Factory(protocol.ServerFactory):
    noisy = False

    def __init__(self, server: Pop3Server, implicit_tls: bool):
        self.server = server
        self.implicit_tls = implicit_tls

    def buildProtocol(self, addr: Any) -> Any:
        proto = Pop3Protocol(self.server, self.implicit_tls)
        proto.factory = self
        return proto


class Pop3Server(TwistedServer):
    name = "pop3"
    description = "POP3 with STLS, POP3S, APOP and AUTH PLAIN over the shared Maildir store"
    scheme = "pop3"
    options = (
        Option("port", PORT, 1110, "POP3 port (STLS offered)"),
        Option("tls_port", PORT, 1995, "POP3S port (implicit TLS, RFC 8314)"),
        Option("idle_timeout", FLOAT, 600.0, "seconds of client silence before the connection is closed (RFC 1939: at least 600)"),
    )
    stores = ("users", "mail")
    fault_subject = 'connect, then the command line, PASS masked ("USER demo", "RETR 1")'
    fault_user = "the name of USER or APOP (PASS follows USER), then the logged-in user"
    fault_actions = {
        "error": reply_error(POP3_ERROR, FAULT_REPLY, "the -ERR line sent instead"),
        "delay": DELAY,
        "disconnect": DISCONNECT,
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.store = self.core.shared(MailStore)
        realm: Any = MailboxRealm(self.store)
        checker: Any = StoreChecker(self.store)
        self.portal = portal.Portal(realm, [checker])
        self.tls_options: Any = None

    def _bind(self) -> None:
        self.tls_options = self.core.tls.twisted_options()
        self.listen("main", Pop3Factory(self, implicit_tls=False), self.settings.port)
        self.listen("tls", Pop3Factory(self, implicit_tls=True), self.settings.tls_port, tls=True)

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        def attempt(remaining: float) -> str:
            try:
                client = poplib.POP3(host, port, timeout=remaining)
                try:
                    welcome = client.getwelcome().decode("utf-8", "replace")
                    client.capa()
                finally:
                    client.quit()
            except ConnectionRefusedError:
                raise
            except (OSError, poplib.error_proto, ssl.SSLError) as problem:
                raise ProbeError(f"{host}:{port}: {problem}") from None
            return welcome

        return retry_until(timeout, attempt)



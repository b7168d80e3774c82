"""SMTP server (aiosmtpd, RFC 5321) delivering into the shared MailStore.

What this module owns: the ESMTP dialogue on the plain port (STARTTLS, RFC 3207) and
the implicit-TLS port (RFC 8314), AUTH PLAIN/LOGIN (aiosmtpd) and CRAM-MD5 (RFC 2195,
added here), SIZE (RFC 1870), 8BITMIME, SMTPUTF8 (RFC 6531), PIPELINING (RFC 2920),
ENHANCEDSTATUSCODES (RFC 2034/3463), the Received header, the recipient limit, fault
rules, journal events and the wire trace. Storage and the recipient policy belong to
:mod:`servers.mail.store`; this module only asks it.

aiosmtpd's ``Controller`` is not used: its readiness probe connects to the configured
port, which is 0 in tests. The asyncio server is created on the shared core loop and
the bound port read from ``server.sockets``.

Hook points on aiosmtpd's ``SMTP`` class, and why:
- every ``smtp_<VERB>`` method is reached through ``_guarded`` to journal the command,
  apply fault rules and ``require_auth``/``require_tls`` with enhanced codes;
- ``push`` adds RFC 3463 enhanced codes to replies that lack them, traces them, and
  sends a multi-line reply (EHLO's ten lines) in one write instead of one per line;
- ``smtp_DATA`` keeps aiosmtpd's checks and replies but reads the message data in bulk
  (:mod:`servers.smtp.data`), not one ``readuntil`` per line;
- the stream reader is wrapped to trace what the client sends, with AUTH
  continuation lines marked secret; message data is traced as its size.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import hmac
import inspect
import os
import random
import re
import smtplib
import ssl
import sys
import time
from typing import Any, ClassVar

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session, _AuthMechAttr, syntax

from ..core.batch_worker import BatchWorker
from ..core.config import BOOL, FLOAT, PORT, STR, Option, int_range
from ..core.faults import DELAY, DISCONNECT, SMTP_REPLY, reply_error
from ..core.lifecycle import BindError, ProbeError, Server, retry_until
from ..core.logs import mask_credentials
from ..mail.store import Delivery, MailStore
from .data import MessageDataParser

DEFAULT_MAX_SIZE = 50 * 1024 * 1024
# Delivery threads, each storing every message that finished DATA while it was busy as
# one batch (MailStore.deliver_many). A second thread keeps small messages moving while
# the first writes a large one; more would only take turns at the GIL with the loop.
DELIVERY_THREADS = 2
# While DATA runs, the stream reader may buffer this much before it pauses the socket.
# Its usual limit is one line (max_line_length), and a message of a few KiB overran it:
# every message paid a pause and a resume of reading (two epoll_ctl calls).
DATA_BUFFER_LIMIT = 1024 * 1024
PARSED_ADDRESSES_KEPT = 4096  # MAIL/RCPT arguments whose parse is remembered

# RFC 3463 enhanced code for each basic reply code, used when a reply has none.
ENHANCED_CODES = {
    "211": "2.0.0", "214": "2.0.0", "220": "2.0.0", "221": "2.0.0", "235": "2.7.0",
    "250": "2.0.0", "251": "2.1.5", "252": "2.5.0",
    "421": "4.3.0", "450": "4.2.0", "451": "4.3.0", "452": "4.5.3", "454": "4.7.0",
    "500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4",
    "530": "5.7.0", "535": "5.7.8", "538": "5.7.11", "550": "5.1.1", "551": "5.1.6",
    "552": "5.3.4", "553": "5.1.3", "554": "5.7.0", "555": "5.5.4",
}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}\b")

# Replies of this server (named, so tests and code read the same words).
R_NEED_AUTH = "530 5.7.0 Authentication required"
R_NEED_TLS = "530 5.7.0 Must issue a STARTTLS command first"
R_TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
R_NO_SUCH_USER = "550 5.1.1 No such user here"
R_LOCAL_ERROR = "451 4.3.0 Local error in processing"
R_FAULT = "451 4.3.0 Temporary failure (injected)"
# The address of a RCPT argument ("TO:<a@example.test> NOTIFY=NEVER"), for user-scoped faults.
RCPT_ADDRESS = re.compile(r"\s*TO:\s*<?([^<>\s]+)>?", re.IGNORECASE)

# Verbs that stay allowed before authentication / before STARTTLS.
OPEN_VERBS = {"EHLO", "HELO", "NOOP", "QUIT", "RSET", "HELP", "STARTTLS", "AUTH"}
ENVELOPE_VERBS = {"MAIL", "RCPT", "DATA"}


class MailEnvelope(Envelope):
    """aiosmtpd's envelope plus the user each accepted recipient resolved to."""

    def __init__(self) -> None:
        super().__init__()
        self.recipient_users: dict[str, str] = {}


class MailSession(Session):
    """aiosmtpd's session without the deprecation log line its smtp_AUTH triggers on
    every successful login (it still sets the legacy ``login_data``)."""

    @property  # type: ignore[override]
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class TracingReader:
    """Wraps aiosmtpd's StreamReader to trace client lines.

    aiosmtpd reads commands with ``readuntil()`` and AUTH continuation lines with
    ``readline()``, so the method tells what a line is: continuation lines are
    credentials by position. Message data does not come through here (smtp_DATA).
    """

    def __init__(self, reader: asyncio.StreamReader, protocol: SmtpProtocol):
        object.__setattr__(self, "_real", reader)
        object.__setattr__(self, "_protocol", protocol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # aiosmtpd swaps the reader's transport and clears its buffer at STARTTLS.
        setattr(self._real, name, value)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        line = await self._real.readuntil(separator)
        self._protocol.trace_in(line)
        return line

    async def readline(self) -> bytes:
        line = await self._real.readline()
        self._protocol.trace_in(line, secret=True)
        return line


class SmtpProtocol(SMTP):
    """One SMTP connection: aiosmtpd's state machine with our policy around it."""

    # MAIL/RCPT arguments already parsed by any connection, with aiosmtpd's result.
    _parsed_addresses: ClassVar[dict[str | None, tuple[str | None, str | None]]] = {}

    def __init__(self, server: SmtpServer, implicit_tls: bool):
        self.server = server
        self.implicit_tls = implicit_tls
        # aiosmtpd reads this class attribute for its StreamReader limit too; +1 for the
        # transparency dot (RFC 5321 4.5.3.1.6).
        self.line_length_limit = server.settings.max_line_length + 1
        self._init_aiosmtpd(**self.aiosmtpd_options(server, implicit_tls))
        # aiosmtpd private command table (checked against the pinned aiosmtpd 1.4.6; tests/core/test_library_internals.py fails if it moves)
        guarded = self._guarded
        self._smtp_methods = {verb: functools.partial(guarded, verb) for verb in self._smtp_methods}
        self.peer_text = ""
        self._greeted = False
        self._plain_replies = False  # EHLO/HELO lines carry no enhanced codes
        self._reply_lines: list[str] = []  # the first lines of a multi-line reply
        self._unwrapped_reader: asyncio.StreamReader | None = None  # unwrapped, for DATA

    @staticmethod
    def aiosmtpd_options(server: SmtpServer, implicit_tls: bool) -> dict[str, Any]:
        """The arguments of aiosmtpd's ``SMTP.__init__`` for one connection."""
        settings = server.settings
        return {
            "handler": server.handler,
            "data_size_limit": settings.max_size,
            "enable_SMTPUTF8": True,
            "decode_data": False,
            "hostname": settings.hostname,
            "ident": "ESMTP refservers",
            "tls_context": None if implicit_tls else server.tls_context,
            "require_starttls": False,  # enforced by _guarded, which knows about the TLS port
            "timeout": settings.idle_timeout,
            "auth_require_tls": False,  # same
            "authenticator": server.authenticate,
            "loop": server.core.loop.loop,
        }

    def _init_aiosmtpd(self, handler: Any, **options: Any) -> None:
        """What aiosmtpd 1.4.6's ``SMTP.__init__`` does with these options, but with the
        method tables it looks up by introspection found once per class.

        Its ``__init__`` runs ``inspect.getmembers`` on the protocol and the handler,
        ``dir()`` twice and ``inspect.signature`` for every connection: 10-18% of the
        loop thread under 20 parallel senders, one connection per message.
        tests/smtp/test_smtp_data.py compares the state this sets with a real
        ``SMTP.__init__`` run, so an aiosmtpd upgrade that adds state fails there.
        """
        loop = options["loop"]
        asyncio.StreamReaderProtocol.__init__(
            self,
            asyncio.StreamReader(loop=loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=loop,
        )
        # aiosmtpd private state, set as its __init__ sets it for these options.
        self.__ident__ = options["ident"]
        self.loop = loop
        self.event_handler = handler
        self.data_size_limit = options["data_size_limit"]
        self.enable_SMTPUTF8 = options["enable_SMTPUTF8"]
        self._decode_data = options["decode_data"]
        self.command_size_limits.clear()  # a class attribute, as aiosmtpd does
        self.hostname = options["hostname"]
        self.tls_context = options["tls_context"]
        self.require_starttls = self.tls_context and options["require_starttls"]
        self._timeout_duration = options["timeout"]
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = options["auth_require_tls"]
        self._proxy_timeout = None
        self._authenticator = options["authenticator"]
        self._auth_callback = None
        self._auth_required = False
        tables = _aiosmtpd_tables(type(self), type(handler))
        self._auth_methods = {
            mechanism: _AuthMechAttr(getattr(self if builtin else handler, name), builtin)
            for mechanism, (name, builtin) in tables.auth_methods.items()
        }
        self._handle_hooks = {hook: getattr(handler, f"handle_{hook}") for hook in tables.handler_hooks}
        self._ehlo_hook_ver = tables.ehlo_hook_version
        self._smtp_methods = {verb: getattr(self, f"smtp_{verb}") for verb in tables.verbs}
        self._enforce_call_limit = False

    # aiosmtpd private: MAIL, RCPT and VRFY parse their argument here (checked against the pinned aiosmtpd 1.4.6; tests/core/test_library_internals.py fails if it moves)
    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's parse, remembered: it runs email's header parser and defines a
        ``typing.Protocol`` class on every call (11% of the loop thread under 20
        senders), and clients send the same few addresses again and again. The result
        depends on the argument alone (``local_part_limit`` is the class's)."""
        parsed = self._parsed_addresses.get(arg)
        if parsed is None:
            parsed = super()._getaddr(arg)
            if len(self._parsed_addresses) >= PARSED_ADDRESSES_KEPT:
                self._parsed_addresses.clear()
            self._parsed_addresses[arg] = parsed
        return parsed

    # -- connection ----------------------------------------------------------------
    def _create_envelope(self) -> MailEnvelope:
        return MailEnvelope()

    def _create_session(self) -> MailSession:
        return MailSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            peer = transport.get_extra_info("peername") or ("?", 0)
            self.peer_text = f"{peer[0]}:{peer[1]}"
            self.server.connections.add(self)
            self.server.record("connect", self.peer_text, tls=self.implicit_tls)

    def connection_lost(self, error: Exception | None) -> None:
        self.server.connections.discard(self)
        self.server.record("disconnect", self.peer_text)
        super().connection_lost(error)

    # aiosmtpd private: no public hook sees the stream reader (checked against the pinned aiosmtpd 1.4.6; tests/core/test_library_internals.py fails if it moves)
    def _cb_client_connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super()._cb_client_connected(reader, writer)
        self._unwrapped_reader = reader
        self._reader = TracingReader(reader, self)  # type: ignore[assignment]

    # aiosmtpd private: no public hook runs before the greeting (checked against the pinned aiosmtpd 1.4.6; tests/core/test_library_internals.py fails if it moves)
    async def _handle_client(self) -> None:
        rule = self.server.core.faults.check(self.server.name, "connect", self.peer_text)
        if rule is not None and not await self._carry_out(rule):
            return
        await super()._handle_client()

    @property
    def secure(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    # -- lines in and out ----------------------------------------------------------
    def trace_in(self, line: bytes | str, secret: bool = False) -> None:
        self.server.wire.received(self.peer_text, line.rstrip(b"\r\n") if isinstance(line, bytes) else line, secret)

    async def push(self, status: str | bytes) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if not self._greeted:
            self._greeted = True  # the greeting carries no enhanced code
        elif not self._plain_replies:
            text = with_enhanced_code(text)
        self.server.wire.sent(self.peer_text, text)
        if text[3:4] == "-":
            # Not the last line of its reply (RFC 5321 4.2.1): the client waits for the
            # whole reply anyway, so it leaves in one write with its last line. One send
            # per line made EHLO ten sends, the largest cost of a short SMTP session.
            self._reply_lines.append(text)
            return
        if self._reply_lines:
            text = "\r\n".join([*self._reply_lines, text])
            self._reply_lines.clear()
        await super().push(text)

    # -- DATA ------------------------------------------------------------------------
    @syntax("HELP [command]")
    async def smtp_HELP(self, arg: str) -> None:
        """aiosmtpd's HELP reads each command's syntax off the method in the command
        table, and the guarded partials carry none (HELP listed no commands); it gets
        the plain methods for the length of its reply."""
        guarded = self._smtp_methods
        self._smtp_methods = {verb: getattr(self, f"smtp_{verb}") for verb in guarded}
        try:
            await super().smtp_HELP(arg)
        finally:
            self._smtp_methods = guarded

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        """aiosmtpd 1.4.6's ``smtp_DATA``, same checks and replies, reading the data in
        bulk (:class:`MessageDataParser`) instead of one ``readuntil`` per line, which
        was most of the time a 15 MiB message took to its 250. aiosmtpd runs with
        ``decode_data=False`` here, so the content stays bytes, as before."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope, session = self.envelope, self.session
        assert isinstance(envelope, MailEnvelope) and session is not None
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = await self._receive_message_data()
        self.trace_in(f"<message data: {data.size} bytes>")
        if data.error is not None:
            await self.push(data.error)
            # aiosmtpd private: its post-DATA reset (checked against the pinned aiosmtpd 1.4.6; tests/core/test_library_internals.py fails if it moves)
            self._set_post_data_state()
            return
        envelope.content = envelope.original_content = data.content
        status = await self.server.handler.handle_DATA(self, session, envelope)
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _receive_message_data(self) -> MessageDataParser:
        """Everything the client sends up to its terminator line, parsed. Bytes after
        the terminator (pipelined commands) stay in the reader for the command loop."""
        parser = MessageDataParser(self.line_length_limit, self.data_size_limit)
        reader = self._unwrapped_reader
        assert reader is not None
        # asyncio private: StreamReader._limit, the buffer size at which it pauses reading
        # (no public setter; checked in tests/core/test_library_internals.py).
        reader._limit = max(self.line_length_limit, DATA_BUFFER_LIMIT)  # type: ignore[attr-defined]
        try:
            while True:
                # sys.maxsize: all that is buffered, so the reader is empty afterwards.
                chunk = await reader.read(sys.maxsize)
                if not chunk:  # EOF; aiosmtpd's eof_received cancels this task anyway
                    raise ConnectionResetError("connection closed during DATA")
                used = parser.feed(chunk)
                if used is not None:
                    break
        finally:
            reader._limit = self.line_length_limit  # type: ignore[attr-defined]
        if used < len(chunk) and not reader.at_eof():
            # The reader is empty and nothing arrived since read() (no await between):
            # feeding the rest back puts it where it was, in front of what comes next.
            reader.feed_data(chunk[used:])
        return parser

    # -- policy around every command -----------------------------------------------
    async def _guarded(self, verb: str, arg: str | None) -> None:
        """aiosmtpd's ``smtp_<verb>(arg)`` with the journal, fault rules and the TLS and
        AUTH requirements before it (one ``functools.partial`` per verb and connection
        in the command table: a closure per verb per connection was 7% of the loop)."""
        line = mask_credentials(verb if arg is None else f"{verb} {arg}")
        self.server.record("command", self.peer_text, command=line)
        rule = self.server.core.faults.check(self.server.name, line, self.peer_text, users=self._fault_users(verb, arg))
        if rule is not None and not await self._carry_out(rule):
            return
        settings = self.server.settings
        if settings.require_tls and not self.secure and verb not in OPEN_VERBS - {"AUTH"}:
            await self.push(R_NEED_TLS)
            return
        if settings.require_auth and verb in ENVELOPE_VERBS and not (self.session and self.session.authenticated):
            await self.push(R_NEED_AUTH)
            return
        self._plain_replies = verb in ("EHLO", "HELO")
        try:
            await getattr(self, f"smtp_{verb}")(arg)
        finally:
            self._plain_replies = False

    def _fault_users(self, verb: str, arg: str | None) -> list[str | None]:
        """Who a command is about, for user-scoped fault rules: the AUTH user, the
        recipient of RCPT, every recipient (address and mailbox user) at DATA."""
        users = [_login_of(self.session)] if self.session is not None else []
        if verb == "RCPT" and arg:
            found = RCPT_ADDRESS.match(arg)
            users.append(found.group(1) if found else None)
        elif verb == "DATA" and self.envelope is not None:
            users += self.envelope.rcpt_tos
            users += getattr(self.envelope, "recipient_users", {}).values()
        return users

    async def _carry_out(self, rule: Any) -> bool:
        """Apply a fault rule; True when the command should still be handled."""
        if rule.action == "delay":
            await asyncio.sleep(rule.params["seconds"])
            return True
        if rule.action == "error":
            await self.push(rule.params["reply"])
            if rule.params["close"] and self.transport is not None:
                self.transport.close()
            return False
        # disconnect: drop the connection without a reply
        transport: Any = self.transport
        if transport is not None:
            transport.abort()
        return False

    # -- CRAM-MD5 (RFC 2195): aiosmtpd has PLAIN and LOGIN only --------------------
    async def auth_CRAM__MD5(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) > 1:
            await self.push("501 5.5.4 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = f"<{os.urandom(8).hex()}.{int(time.time())}@{self.hostname}>".encode()
        response = await self.challenge_auth(challenge)
        if not isinstance(response, bytes):
            return AuthResult(success=False, handled=True)  # "*" or bad base64: already answered
        name, _, digest = response.decode("utf-8", "replace").rpartition(" ")
        password = self.server.store.password_of(name) if name else None
        expected = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest() if password is not None else ""
        ok = bool(expected) and hmac.compare_digest(expected, digest.lower())
        self.server.record("auth", self.peer_text, ok=ok, user=name, mechanism="CRAM-MD5")
        if not ok:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=LoginPassword(name.encode(), b""))


class _AiosmtpdTables:
    """The names aiosmtpd's ``SMTP.__init__`` finds by introspection, per class pair."""

    def __init__(self, protocol_class: type[SMTP], handler_class: type):
        # AUTH mechanisms: auth_<NAME> methods of the protocol, then of the handler
        # (which win), named by @auth_mechanism or by the method name, "__" as "-".
        self.auth_methods: dict[str, tuple[str, bool]] = {}
        for owner, builtin in ((protocol_class, True), (handler_class, False)):
            for name in dir(owner):
                if name.startswith("auth_"):
                    method = getattr(owner, name)
                    mechanism = getattr(method, "__auth_mechanism_name__", name.replace("auth_", "").replace("__", "-"))
                    self.auth_methods[mechanism] = (name, builtin)
        self.handler_hooks = [name.replace("handle_", "") for name in dir(handler_class) if name.startswith("handle_")]
        self.ehlo_hook_version: str | None = None
        if "EHLO" in self.handler_hooks:
            # Parameters of the bound hook: the class's function less ``self``.
            parameters = len(inspect.signature(handler_class.handle_EHLO).parameters) - 1  # type: ignore[attr-defined]
            self.ehlo_hook_version = {4: "old", 5: "new"}[parameters]
        self.verbs = [name.replace("smtp_", "") for name in dir(protocol_class) if name.startswith("smtp_")]


_AIOSMTPD_TABLES: dict[tuple[type, type], _AiosmtpdTables] = {}


def _aiosmtpd_tables(protocol_class: type[SMTP], handler_class: type) -> _AiosmtpdTables:
    tables = _AIOSMTPD_TABLES.get((protocol_class, handler_class))
    if tables is None:  # a race only builds the same tables twice
        tables = _AIOSMTPD_TABLES[protocol_class, handler_class] = _AiosmtpdTables(protocol_class, handler_class)
    return tables


def with_enhanced_code(reply: str) -> str:
    """Insert the RFC 3463 code for the reply's basic code when it has none."""
    code = reply[:3]
    if len(reply) < 4 or reply[3] not in " -" or code not in ENHANCED_CODES or _HAS_ENHANCED.match(reply):
        return reply
    return f"{code}{reply[3]}{ENHANCED_CODES[code]} {reply[4:]}"


class SmtpHandler:
    """aiosmtpd handler hooks: EHLO keywords, recipient policy, delivery."""

    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_EHLO(self, protocol: SmtpProtocol, session: Session, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.server.settings.require_tls and not protocol.secure:
            responses = [line for line in responses if not line.startswith("250-AUTH")]
        # aiosmtpd lists SIZE, 8BITMIME, SMTPUTF8, STARTTLS and AUTH; we add the two it
        # implements without announcing, before its closing "250 HELP".
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_RCPT(self, protocol: SmtpProtocol, session: Session, envelope: MailEnvelope, address: str, options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.server.settings.max_recipients:
            return R_TOO_MANY_RCPT
        user = self.server.store.resolve_recipient(address)
        if user is None:
            return R_NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.recipient_users[address] = user
        return "250 2.1.5 OK"

    async def handle_DATA(self, protocol: SmtpProtocol, session: Session, envelope: MailEnvelope) -> str:
        content = envelope.original_content or b""
        message = self.received_header(protocol, session, envelope).encode("utf-8") + content
        by_user: dict[str, list[str]] = {}
        for address in envelope.rcpt_tos:
            by_user.setdefault(envelope.recipient_users[address], []).append(address)
        sender = envelope.mail_from or ""
        deliveries = [Delivery(user, message, {"mail_from": sender, "rcpt_to": rcpts}) for user, rcpts in by_user.items()]
        # fsync happens on a delivery thread, off the loop, and before we answer 250.
        stored: asyncio.Future[list[str | Exception] | Exception] = protocol.loop.create_future()

        def done(outcome: list[str | Exception] | Exception) -> None:
            if not stored.done():  # else the session is gone
                stored.set_result(outcome)

        self.server.deliveries.submit(deliveries, done)
        outcomes = await stored
        keys = []
        for outcome in [outcomes] if isinstance(outcomes, Exception) else outcomes:
            if isinstance(outcome, Exception):
                # The client gets a 451 and may retry.
                self.server.log.error("delivery failed", exc_info=outcome)
                return R_LOCAL_ERROR
            keys.append(outcome)
        self.server.record(
            "message",
            protocol.peer_text,
            users=list(by_user),
            sender=sender,
            to=list(envelope.rcpt_tos),
            size=len(content),
            keys=keys,
            key=keys[0],
            auth_user=_login_of(session),
        )
        return f"250 2.0.0 OK queued as {keys[0]}"

    def received_header(self, protocol: SmtpProtocol, session: Session, envelope: MailEnvelope) -> str:
        # RFC 5321 4.4: the "with" keyword follows RFC 3848 (ESMTPS, ESMTPA, ESMTPSA).
        with_type = "ESMTP" + ("S" if protocol.secure else "") + ("A" if session.authenticated else "")
        if with_type == "ESMTP" and not session.extended_smtp:
            with_type = "SMTP"
        if envelope.smtp_utf8:
            with_type = "UTF8" + with_type
        peer_host = protocol.peer_text.rpartition(":")[0]
        helo = re.sub(r"[\r\n()]", "", session.host_name or "unknown")
        recipient = f"\r\n\tfor <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        stamp = _date_header(int(time.time()))
        # Postfix's smtpd_sasl_authenticated_header comment: the AUTH user travels with
        # the message, so the console's envelope view can show it after a restart too.
        login = re.sub(r"[\r\n()]", "", _login_of(session) or "")
        authenticated = f"\r\n\t(Authenticated sender: {login})" if login else ""
        # The id only tells messages apart in logs: the random module's generator, not
        # os.urandom, whose system call lets the delivery threads take the GIL (the loop
        # waited 120 us on average to get it back, under 20 parallel senders).
        return (
            f"Received: from {helo} ([{peer_host}]){authenticated}\r\n\tby {protocol.hostname} (refservers) "
            f"with {with_type} id {random.randbytes(6).hex()}{recipient};\r\n\t{stamp}\r\n"
        )


@functools.lru_cache(maxsize=2)
def _date_header(second: int) -> str:
    """RFC 5322 date of a second: every message received within it shares the text."""
    return email.utils.formatdate(second, localtime=True)


def _login_of(session: Session) -> str | None:
    login = getattr(session.auth_data, "login", None) if session.authenticated else None
    return login.decode("utf-8", "replace") if isinstance(login, bytes) else None


class SmtpServer(Server):
    name = "smtp"
    description = "SMTP submission with STARTTLS, SMTPS, AUTH, delivering into the shared Maildir store"
    scheme = "smtp"
    options = (
        Option("port", PORT, 1025, "SMTP port (STARTTLS offered)"),
        Option("tls_port", PORT, 1465, "SMTPS port (implicit TLS, RFC 8314)"),
        Option("hostname", STR, "localhost", "name in the greeting, EHLO reply and Received header"),
        Option("max_size", int_range(1, 2**40), DEFAULT_MAX_SIZE, "SIZE limit in bytes (552 beyond it)"),
        Option("max_recipients", int_range(1, 100_000), 100, "recipients per message (452 beyond it)"),
        Option("max_line_length", int_range(100, 1_000_000), 1000, "line length limit with CRLF (RFC 5321: 1000)"),
        Option("require_auth", BOOL, False, "refuse MAIL/RCPT/DATA before AUTH (530)"),
        Option("require_tls", BOOL, False, "refuse AUTH and MAIL before STARTTLS on the plain port (530)"),
        Option("idle_timeout", FLOAT, 300.0, "seconds of client silence before the connection is closed"),
    )
    stores = ("users", "mail")
    fault_subject = 'connect, then the command line, credentials masked ("RCPT TO:<a@example.test>", "DATA")'
    fault_user = "the recipient at RCPT, every recipient (address or mailbox user) at DATA, the AUTH user"
    fault_actions = {
        "error": reply_error(SMTP_REPLY, R_FAULT, "the reply line sent instead"),
        "delay": DELAY,
        "disconnect": DISCONNECT,
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.store = self.core.shared(MailStore)
        self.handler = SmtpHandler(self)
        self.connections: set[SmtpProtocol] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self.tls_context: ssl.SSLContext | None = None
        self.deliveries = self._delivery_worker()

    def authenticate(self, protocol: Any, session: Session, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        """aiosmtpd authenticator for PLAIN and LOGIN, against the store's accounts."""
        name = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        user = self.store.authenticate(name, password)
        self.record("auth", protocol.peer_text, ok=user is not None, user=name, mechanism=mechanism)
        # handled=False: aiosmtpd then answers 535 itself (its default True means "already replied").
        return AuthResult(success=user is not None, handled=False, auth_data=LoginPassword(auth_data.login, b""))

    def _bind(self) -> None:
        self.tls_context = self.core.tls.server_context()
        self._listen("main", self.settings.port, implicit_tls=False)
        self._listen("tls", self.settings.tls_port, implicit_tls=True)

    def _listen(self, name: str, port: int, implicit_tls: bool) -> None:
        loop = self.core.loop.loop

        async def create() -> asyncio.AbstractServer:
            return await loop.create_server(
                lambda: SmtpProtocol(self, implicit_tls),
                host=self.host or None,
                port=port,
                ssl=self.tls_context if implicit_tls else None,
            )

        try:
            server = self.core.loop.run_coroutine(create())
        except OSError as error:
            raise BindError(f"{self.name}: cannot listen on {self.host}:{port} ({name}): {error.strerror}") from None
        self._servers.append(server)
        self.listeners[name] = server.sockets[0].getsockname()[1]

    def _unbind(self) -> None:
        servers, self._servers = self._servers, []

        def close() -> None:
            for server in servers:
                server.close()
            for protocol in list(self.connections):
                transport: Any = protocol.transport
                if transport is not None:
                    transport.abort()
            self.connections.clear()

        if servers:
            self.core.loop.call(close)
        # Deliveries already handed over finish (their client was told nothing yet, or
        # is gone); stop() does not wait for their fsyncs. A fresh worker for a restart.
        self.deliveries.close()
        self.deliveries = self._delivery_worker()

    def _delivery_worker(self) -> BatchWorker[list[Delivery], list[str | Exception]]:
        def deliver(messages: list[list[Delivery]]) -> list[list[str | Exception]]:
            outcomes = iter(self.store.deliver_many([delivery for deliveries in messages for delivery in deliveries]))
            return [[next(outcomes) for _ in deliveries] for deliveries in messages]

        return BatchWorker(deliver, self.core.loop.loop.call_soon_threadsafe, DELIVERY_THREADS, "smtp-deliver")

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        def attempt(remaining: float) -> str:
            try:
                with smtplib.SMTP(host, port, timeout=remaining, local_hostname="refservers-probe") as client:
                    code, _ = client.ehlo()
                    if code != 250:
                        raise ProbeError(f"{host}:{port}: EHLO answered {code}")
                    return f"EHLO 250 ({', '.join(sorted(client.esmtp_features))})"
            except ConnectionRefusedError:
                raise
            except (OSError, smtplib.SMTPException) as error:
                raise ProbeError(f"{host}:{port}: {error}") from None

        return retry_until(timeout, attempt)


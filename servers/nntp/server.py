"""NNTP reader server (RFC 3977) over the NewsSpool, on Twisted's LineReceiver.

What this module owns: the NNTP dialogue on the plain port (STARTTLS, RFC 4642) and the
NNTPS port (implicit TLS); AUTHINFO USER/PASS and AUTHINFO SASL PLAIN (RFC 4643) against
the core user table; the reader commands of RFC 3977 (CAPABILITIES, MODE READER, GROUP,
LISTGROUP, LIST ACTIVE/NEWSGROUPS/OVERVIEW.FMT/ACTIVE.TIMES/HEADERS, ARTICLE/HEAD/BODY/
STAT, NEXT/LAST, OVER, HDR, NEWGROUPS, NEWNEWS, POST, IHAVE, DATE, HELP, QUIT) with the
RFC 2980 aliases XOVER and XHDR; the session state (selected group, current article,
login); dot-stuffing both ways; fault rules, journal events and the wire trace.
Articles, numbers, Message-IDs and durability belong to the spool (store.py).

Why by hand: Twisted dropped ``twisted.news``; the one NNTP server library on PyPI
(``nntpserver``, 0.0.3, last release 2022) is a blocking socketserver loop without
AUTHINFO, STARTTLS or posting, so it fits neither the reactor nor the issue. Framing
is Twisted's ``LineReceiver`` like the other Twisted servers; dispatch goes through the
``COMMANDS`` table (argument counts and the login requirement checked in one place,
every command journalled and offered to the fault rules), like POP3's.

Rules kept here:
1. Every reply is ``<code> <text>`` with the RFC 3977 code; bad input gets 500/501 and
   the session goes on. Command lines longer than 512 octets (RFC 3977 3.1) get 501.
2. A posted article is acknowledged (240/235) only after the spool made it durable; the
   write runs on the post worker (a BatchWorker thread storing every article that
   arrived meanwhile as one batch) and commands pipelined behind it wait their turn.
3. Multi-line data is dot-stuffed on the way out and un-stuffed on the way in, byte for
   byte; articles are served exactly as stored.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import fnmatch
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import protocol
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin

from ..core.batch_worker import BatchWorker
from ..core.config import BOOL, FLOAT, PORT, STR, STR_LIST, STR_TABLE, Option, int_range
from ..core.faults import DELAY, DISCONNECT, NNTP_REPLY, reply_error
from ..core.lifecycle import ProbeError, retry_until
from ..core.loop import twisted_reactor
from ..core.twisted_listen import TwistedServer, peer_of, write_now
from ..core.users import User
from .api import news_routes
from .store import (
    OVERVIEW_HEADERS,
    ArticleEntry,
    DuplicateArticle,
    GroupStatus,
    NewsSpool,
    NoSuchArticle,
    NoSuchGroup,
    Posting,
    PostingRefused,
    overview_text,
    parse_headers,
    split_article,
)

# -- reply codes (RFC 3977 3.2, RFC 4643, RFC 4642) ------------------------------------------
HELP_FOLLOWS = 100
CAPABILITY_LIST = 101
DATE_FOLLOWS = 111
READY_POSTING = 200
READY_NO_POSTING = 201
CLOSING = 205
GROUP_SELECTED = 211
LIST_FOLLOWS = 215
ARTICLE_FOLLOWS = 220
HEAD_FOLLOWS = 221
BODY_FOLLOWS = 222
ARTICLE_EXISTS = 223
OVERVIEW_FOLLOWS = 224
HEADERS_FOLLOW = 225
NEW_ARTICLES_FOLLOW = 230
NEW_GROUPS_FOLLOW = 231
TRANSFERRED = 235
POSTED = 240
AUTH_ACCEPTED = 281
SEND_TRANSFER = 335
SEND_ARTICLE = 340
PASSWORD_REQUIRED = 381
TLS_CONTINUE = 382
SASL_CONTINUE = 383
SERVICE_UNAVAILABLE = 400
NO_SUCH_GROUP = 411
NO_GROUP_SELECTED = 412
CURRENT_INVALID = 420
NO_NEXT = 421
NO_PREVIOUS = 422
NO_SUCH_NUMBER = 423
NO_SUCH_MESSAGE_ID = 430
NOT_WANTED = 435
TRANSFER_LATER = 436
TRANSFER_REJECTED = 437
POSTING_NOT_PERMITTED = 440
POSTING_FAILED = 441
AUTH_REQUIRED = 480
AUTH_REJECTED = 481
AUTH_OUT_OF_SEQUENCE = 482
ENCRYPTION_REQUIRED = 483
UNKNOWN_COMMAND = 500
SYNTAX_ERROR = 501
NOT_PERMITTED = 502
FEATURE_NOT_SUPPORTED = 503
BASE64_ERROR = 504
TLS_FAILED = 580

MAX_COMMAND_LINE = 512  # octets including CRLF (RFC 3977 3.1)
FAULT_REPLY = "403 temporary failure (injected)"
OVERVIEW_FORMAT = ("Subject:", "From:", "Date:", "Message-ID:", "References:", ":bytes", ":lines", "Xref:full")
# Header names HDR answers from the overview index instead of reading the article.
INDEXED_FIELDS = frozenset(name.lower() for name in (*OVERVIEW_HEADERS, "Xref", ":bytes", ":lines"))
LIST_KEYWORDS = ("ACTIVE", "NEWSGROUPS", "OVERVIEW.FMT", "ACTIVE.TIMES", "HEADERS")
# Threads storing posted articles, each taking every article that arrived while it was
# busy as one batch. One keeps the batches as large as they can be; a second lets small
# posts move while the first writes a large article.
POST_THREADS = 1


@dataclass(frozen=True)
class Command:
    min_args: int = 0
    max_args: int | None = 0  # None: any number (AUTHINFO PASS: a password may contain spaces)
    reads: bool = False  # reads articles or groups: needs a login when require_auth_to_read
    usage: str = ""


COMMANDS: dict[str, Command] = {
    "CAPABILITIES": Command(0, 1, usage="CAPABILITIES [keyword]"),
    "MODE": Command(1, 1, usage="MODE READER"),
    "AUTHINFO": Command(1, None, usage="AUTHINFO USER name|PASS password|SASL PLAIN [initial-response]"),
    "STARTTLS": Command(usage="STARTTLS"),
    "GROUP": Command(1, 1, True, "GROUP newsgroup"),
    "LISTGROUP": Command(0, 2, True, "LISTGROUP [newsgroup [range]]"),
    "LIST": Command(0, 2, True, "LIST [ACTIVE|NEWSGROUPS|ACTIVE.TIMES [wildmat]|OVERVIEW.FMT|HEADERS]"),
    "ARTICLE": Command(0, 1, True, "ARTICLE [message-id|number]"),
    "HEAD": Command(0, 1, True, "HEAD [message-id|number]"),
    "BODY": Command(0, 1, True, "BODY [message-id|number]"),
    "STAT": Command(0, 1, True, "STAT [message-id|number]"),
    "NEXT": Command(0, 0, True, "NEXT"),
    "LAST": Command(0, 0, True, "LAST"),
    "OVER": Command(0, 1, True, "OVER [range|message-id]"),
    "XOVER": Command(0, 1, True, "XOVER [range]"),
    "HDR": Command(1, 2, True, "HDR field [range|message-id]"),
    "XHDR": Command(1, 2, True, "XHDR field [range|message-id]"),
    "NEWGROUPS": Command(2, 3, True, "NEWGROUPS [yy]yymmdd hhmmss [GMT]"),
    "NEWNEWS": Command(3, 4, True, "NEWNEWS wildmat [yy]yymmdd hhmmss [GMT]"),
    "POST": Command(usage="POST"),
    "IHAVE": Command(1, 1, usage="IHAVE message-id"),
    "DATE": Command(usage="DATE"),
    "HELP": Command(usage="HELP"),
    "QUIT": Command(usage="QUIT"),
}
SASL_MECHANISMS = ("PLAIN",)


class CommandError(Exception):
    """A command that gets ``<code> <text>``; the session goes on."""

    def __init__(self, code: int, text: str):
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


def masked_command(words: list[str]) -> str:
    """The command line as the journal, the fault rules and the wire trace see it."""
    if len(words) >= 2 and words[0].upper() == "AUTHINFO":
        sub = words[1].upper()
        if sub == "PASS" and len(words) > 2:
            return "AUTHINFO PASS ****"
        if sub == "SASL" and len(words) > 3:
            return f"AUTHINFO SASL {words[2]} ****"
    return " ".join(words)


def wildmat_matches(wildmat: str, name: str) -> bool:
    """RFC 3977 4.2: comma-separated patterns, ``!`` negates, the last match wins."""
    matched = False
    for pattern in wildmat.split(","):
        negated = pattern.startswith("!")
        if fnmatch.fnmatchcase(name, pattern[1:] if negated else pattern):
            matched = not negated
    return matched


def parse_range(text: str, high: int) -> tuple[int, int]:
    """RFC 3977 range ``n``, ``n-`` or ``n-m`` as (low, high); raises CommandError 501."""
    first, dash, last = text.partition("-")
    try:
        low = int(first)
        top = (int(last) if last else high) if dash else low
    except ValueError:
        raise CommandError(SYNTAX_ERROR, f"invalid range {text[:40]!r}") from None
    if low < 0 or top < 0:
        raise CommandError(SYNTAX_ERROR, f"invalid range {text[:40]!r}")
    return low, top


def parse_when(date: str, clock: str, zone: str | None, now: datetime.datetime | None = None) -> float:
    """RFC 3977 7.3 date and time (``yymmdd``/``yyyymmdd hhmmss [GMT]``) as epoch seconds.

    Times without GMT are the server's local time, which is UTC here (containers, CI).
    """
    if zone is not None and zone.upper() != "GMT":
        raise CommandError(SYNTAX_ERROR, "the third argument may only be GMT")
    if not (date.isdigit() and clock.isdigit() and len(date) in (6, 8) and len(clock) == 6):
        raise CommandError(SYNTAX_ERROR, "expected [yy]yymmdd hhmmss")
    if len(date) == 6:
        # Two-digit years: this century if not after the current year, else the last one.
        this_year = (now or datetime.datetime.now(datetime.UTC)).year
        year = this_year // 100 * 100 + int(date[:2])
        if year > this_year:
            year -= 100
        date = f"{year:04d}{date[2:]}"
    try:
        moment = datetime.datetime.strptime(date + clock, "%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)
    except ValueError:
        raise CommandError(SYNTAX_ERROR, "no such date or time") from None
    return moment.timestamp()


def dot_stuffed(data: bytes) -> bytes:
    """A CRLF text as the body of a multi-line response, terminator included (RFC 3977 3.1.1)."""
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


class NntpProtocol(LineReceiver, TimeoutMixin):
    """One NNTP connection (see the module docstring for the rules it keeps)."""

    delimiter = b"\r\n"
    # Article lines may be long (RFC 5536 allows 998 octets; real posts exceed it);
    # beyond this the connection is closed rather than buffered.
    MAX_LENGTH = 64 * 1024
    transport: Any

    def __init__(self, server: NntpServer, implicit_tls: bool):
        self.server = server
        self.spool = server.spool
        self.secure = implicit_tls
        self.peer = ""
        self.user: User | None = None
        self.pending_user: str | None = None
        self.group_name: str | None = None
        self.article_number: int | None = None
        self.mode = "command"  # command | article (POST/IHAVE data) | sasl (awaiting the response)
        self.article_data: list[bytes] = []  # un-stuffed article lines, CRLF kept, in chunks
        self.article_line_count = 0  # the lines kept in article_data
        self.article_size = 0
        self.article_verb = ""
        self.article_partial = b""  # an article line still arriving (raw mode)
        self.held: list[bytes] | None = None  # lines waiting while a post or a delay runs
        self._tls_pending = False

    # -- connection ---------------------------------------------------------------------
    def connectionMade(self) -> None:
        self.peer = peer_of(self.transport)
        self.server.record("connect", self.peer, tls=self.secure)
        self.setTimeout(self.server.settings.idle_timeout or None)
        if self._consult_faults("connect", then=self._greet):
            return
        self._greet()

    def _greet(self) -> None:
        if self.server.any_posting:
            self.reply(READY_POSTING, "refservers NNTP service ready, posting allowed")
        else:
            self.reply(READY_NO_POSTING, "refservers NNTP service ready, posting prohibited")

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        self.setTimeout(None)
        self.server.record("disconnect", self.peer)

    def timeoutConnection(self) -> None:
        self.reply(SERVICE_UNAVAILABLE, "idle timeout, closing connection")
        self.transport.loseConnection()

    # -- lines in and out --------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        super().dataReceived(data)
        if self._tls_pending:
            # RFC 4642 2.2.2 (injection): plaintext pipelined after STARTTLS is discarded.
            self._tls_pending = False
            self._buffer = b""

    def lineLengthExceeded(self, line: bytes) -> None:
        self.reply(SERVICE_UNAVAILABLE, f"line longer than {self.MAX_LENGTH} octets, closing connection")
        self.transport.loseConnection()

    def lineReceived(self, line: bytes) -> None:
        if self._tls_pending:
            return
        if self.held is not None:
            self.held.append(line)
            return
        self._handle(line)

    def _handle(self, line: bytes) -> None:
        if self.mode == "article":
            self._article_line(line)
        elif self.mode == "sasl":
            self.server.wire.received(self.peer, line, secret=True)
            self.mode = "command"
            self._sasl_response(line)
        else:
            self._command_line(line)

    def hold(self) -> None:
        """Queue incoming lines until :meth:`release` (a post or a delay is running)."""
        if self.held is None:
            self.held = []

    def release(self) -> None:
        pending, self.held = self.held or [], None
        for position, line in enumerate(pending):
            # As LineReceiver does: nothing more is handled once QUIT (or a fault) closes.
            if self.transport is None or not self.transport.connected or self.transport.disconnecting:
                return
            self._handle(line)
            if self.held is not None:  # a queued command held again: keep the rest queued
                self.held.extend(pending[position + 1 :])
                return

    def reply(self, code: int, text: str, block: bytes = b"") -> None:
        """The status line, then ``block`` (a multi-line body, already dot-stuffed), in
        one write sent in this reactor turn (see write_now)."""
        line = f"{code} {text}".encode("utf-8", "replace")
        self.server.wire.sent(self.peer, line)
        write_now(self.transport, line + b"\r\n" + block)

    def reply_lines(self, code: int, text: str, lines: Iterable[str | bytes]) -> None:
        """A multi-line response: the status line, the lines dot-stuffed, the terminator."""
        encoded = [line.encode("utf-8", "replace") if isinstance(line, str) else line for line in lines]
        self.reply(code, text, dot_stuffed(b"".join(line + b"\r\n" for line in encoded)))
        self.server.wire.sent(self.peer, f"<{len(encoded)} lines>")

    def reply_data(self, code: int, text: str, data: bytes) -> None:
        self.reply(code, text, dot_stuffed(data))
        self.server.wire.sent(self.peer, f"<{len(data)} bytes>")

    # -- dispatch -----------------------------------------------------------------------
    def _command_line(self, line: bytes) -> None:
        words = line.decode("utf-8", "replace").split()
        text = masked_command(words)
        self.server.wire.received(self.peer, text)
        if not words:
            self.reply(SYNTAX_ERROR, "empty command line")
            return
        verb = words[0].upper()
        self.server.record("command", self.peer, command=text[:200], user=self.user.name if self.user else None)
        if len(line) + 2 > MAX_COMMAND_LINE:
            self.reply(SYNTAX_ERROR, f"command line longer than {MAX_COMMAND_LINE} octets")
            return
        if self._consult_faults(text, then=lambda: self._dispatch(verb, words[1:])):
            return
        self._dispatch(verb, words[1:])

    def _dispatch(self, verb: str, args: list[str]) -> None:
        spec = COMMANDS.get(verb)
        if spec is None:
            self.reply(UNKNOWN_COMMAND, f"unknown command {verb[:20]}")
            return
        if len(args) < spec.min_args or (spec.max_args is not None and len(args) > spec.max_args):
            self.reply(SYNTAX_ERROR, f"usage: {spec.usage}")
            return
        try:
            if spec.reads and self.user is None and self.server.settings.require_auth_to_read:
                raise CommandError(AUTH_REQUIRED, "authentication required")
            getattr(self, "do_" + verb)(*args)
        except CommandError as problem:
            self.reply(problem.code, problem.text)

    # -- fault rules: the one place they are read and carried out --------------------------
    def _consult_faults(self, subject: str, then: Callable[[], None]) -> bool:
        """Apply the first fault rule matching ``subject``; True when it took over.

        error: reply ``params.reply`` (default a 403) instead of running the command,
        and close when ``params.close``; delay: run ``then`` after ``params.seconds``,
        queueing what the client sends meanwhile; disconnect: drop the connection.
        """
        rule = self.server.core.faults.check(self.server.name, subject, self.peer, users=self._fault_users(subject))
        if rule is None:
            return False
        if rule.action == "delay":
            self.hold()

            def resume() -> None:
                if self.transport is None or not self.transport.connected:
                    return
                pending, self.held = self.held or [], None
                then()
                self.held = pending + (self.held or [])
                if self.article_verb != "storing":
                    self.release()

            twisted_reactor().callLater(rule.params["seconds"], resume)
        elif rule.action == "error":
            reply = rule.params["reply"].encode("utf-8")
            self.server.wire.sent(self.peer, reply)
            self.transport.write(reply + b"\r\n")
            if rule.params["close"]:
                self.transport.loseConnection()
        else:  # disconnect
            self.transport.abortConnection()
        return True

    def _fault_users(self, subject: str) -> list[str | None]:
        """Who a step is about, for user-scoped rules (the server's ``fault_user``)."""
        if self.user is not None:
            return [self.user.name]
        words = subject.split()
        if len(words) == 3 and words[0].upper() == "AUTHINFO" and words[1].upper() == "USER":
            return [words[2]]
        if len(words) >= 2 and words[0].upper() == "AUTHINFO" and words[1].upper() == "PASS":
            return [self.pending_user]
        return [None]  # connect, and commands before a login: about nobody

    # -- capabilities, modes, help, date, quit ----------------------------------------------
    @property
    def may_post(self) -> bool:
        if not self.server.any_posting or (self.user is not None and self.user.read_only):
            return False
        return self.user is not None or not self.server.settings.require_auth

    def do_CAPABILITIES(self, keyword: str | None = None) -> None:
        capabilities = ["VERSION 2", "READER"]
        if self.may_post:
            capabilities += ["POST", "IHAVE"]
        capabilities += [
            "OVER MSGID",
            "HDR",
            "LIST " + " ".join(LIST_KEYWORDS),
            "NEWNEWS",
        ]
        if not self.secure and self.user is None and self.server.tls_options is not None:
            capabilities.append("STARTTLS")
        if self.user is None and (self.secure or not self.server.settings.auth_requires_tls):
            capabilities += ["AUTHINFO USER SASL", "SASL " + " ".join(SASL_MECHANISMS)]
        capabilities.append("IMPLEMENTATION refservers")
        self.reply_lines(CAPABILITY_LIST, "capability list follows", capabilities)

    def do_MODE(self, mode: str) -> None:
        if mode.upper() != "READER":
            raise CommandError(SYNTAX_ERROR, "only MODE READER is known")
        if self.may_post:
            self.reply(READY_POSTING, "reader mode, posting allowed")
        else:
            self.reply(READY_NO_POSTING, "reader mode, posting prohibited")

    def do_HELP(self) -> None:
        self.reply_lines(HELP_FOLLOWS, "help text follows", [f"  {spec.usage}" for spec in COMMANDS.values()])

    def do_DATE(self) -> None:
        self.reply(DATE_FOLLOWS, time.strftime("%Y%m%d%H%M%S", time.gmtime()))

    def do_QUIT(self) -> None:
        self.reply(CLOSING, "closing connection")
        self.transport.loseConnection()

    # -- TLS and authentication ---------------------------------------------------------------
    def do_STARTTLS(self) -> None:
        if self.secure or self.user is not None:
            raise CommandError(
                NOT_PERMITTED, "TLS already active" if self.secure else "STARTTLS not allowed after login"
            )
        if self.server.tls_options is None:
            raise CommandError(TLS_FAILED, "TLS not available")
        self.reply(TLS_CONTINUE, "begin TLS negotiation")
        self._tls_pending = True
        self.secure = True
        self.transport.startTLS(self.server.tls_options)

    def do_AUTHINFO(self, sub: str, *words: str) -> None:
        sub = sub.upper()
        if sub not in ("USER", "PASS", "SASL"):
            raise CommandError(SYNTAX_ERROR, "AUTHINFO USER, PASS or SASL")
        if self.user is not None:
            raise CommandError(NOT_PERMITTED, "already authenticated")
        if not self.secure and self.server.settings.auth_requires_tls:
            raise CommandError(ENCRYPTION_REQUIRED, "encryption required: STARTTLS first")
        if sub == "USER":
            if len(words) != 1:
                raise CommandError(SYNTAX_ERROR, "usage: AUTHINFO USER name")
            self.pending_user = words[0]
            self.reply(PASSWORD_REQUIRED, "password required")
        elif sub == "PASS":
            if not words:
                raise CommandError(SYNTAX_ERROR, "usage: AUTHINFO PASS password")
            if self.pending_user is None:
                raise CommandError(AUTH_OUT_OF_SEQUENCE, "AUTHINFO USER first")
            name, self.pending_user = self.pending_user, None
            self._login(name, " ".join(words))
        else:
            if not words or len(words) > 2:
                raise CommandError(SYNTAX_ERROR, "usage: AUTHINFO SASL PLAIN [initial-response]")
            if words[0].upper() not in SASL_MECHANISMS:
                raise CommandError(FEATURE_NOT_SUPPORTED, f"SASL mechanism {words[0][:20]} not supported")
            if len(words) == 2 and words[1] != "=":
                self._sasl_response(words[1].encode())
                return
            self.mode = "sasl"
            self.reply(SASL_CONTINUE, "")

    def _sasl_response(self, encoded: bytes) -> None:
        if encoded.strip() == b"*":
            self.reply(AUTH_REJECTED, "authentication cancelled")
            return
        try:
            _authzid, name, password = base64.b64decode(encoded.strip(), validate=True).split(b"\0")
        except (binascii.Error, ValueError):
            self.reply(BASE64_ERROR, "malformed SASL PLAIN response")
            return
        self._login(name.decode("utf-8", "replace"), password.decode("utf-8", "replace"))

    def _login(self, name: str, password: str) -> None:
        user = self.server.core.users.check_password(name, password)
        self.server.record("auth", self.peer, ok=user is not None, user=name)
        if user is None:
            self.reply(AUTH_REJECTED, "authentication failed")
            return
        self.user = user
        self.reply(AUTH_ACCEPTED, "authentication accepted")

    # -- groups ------------------------------------------------------------------------------
    def _select(self, name: str) -> GroupStatus:
        try:
            group = self.spool.group(name)
        except NoSuchGroup:
            raise CommandError(NO_SUCH_GROUP, f"no such newsgroup {name[:80]}") from None
        self.group_name = group.name
        self.article_number = group.numbers[0] if group.numbers else None
        return group

    def do_GROUP(self, name: str) -> None:
        group = self._select(name)
        self.reply(GROUP_SELECTED, f"{group.count} {group.low} {group.high_water} {group.name}")

    def do_LISTGROUP(self, name: str | None = None, range_text: str | None = None) -> None:
        if name is None:
            name = self._current_group().name
        group = self._select(name)
        low, high = parse_range(range_text, group.high_water) if range_text else (1, group.high_water)
        numbers = [str(n) for n in group.numbers if low <= n <= high]
        self.reply_lines(GROUP_SELECTED, f"{group.count} {group.low} {group.high_water} {group.name}", numbers)

    def _current_group(self) -> GroupStatus:
        if self.group_name is None:
            raise CommandError(NO_GROUP_SELECTED, "no newsgroup selected")
        return self.spool.group(self.group_name)

    def do_LIST(self, keyword: str = "ACTIVE", argument: str | None = None) -> None:
        keyword = keyword.upper()
        if keyword not in LIST_KEYWORDS:
            raise CommandError(SYNTAX_ERROR, f"unknown LIST keyword {keyword[:20]}")
        groups = [g for g in self.spool.groups() if argument is None or wildmat_matches(argument, g.name)]
        if keyword == "ACTIVE":
            lines = [f"{g.name} {g.high_water} {g.low} {'y' if g.config.posting else 'n'}" for g in groups]
            self.reply_lines(LIST_FOLLOWS, "list of newsgroups follows", lines)
        elif keyword == "NEWSGROUPS":
            self.reply_lines(LIST_FOLLOWS, "descriptions follow", [f"{g.name}\t{g.config.description}" for g in groups])
        elif keyword == "ACTIVE.TIMES":
            self.reply_lines(
                LIST_FOLLOWS, "creation times follow", [f"{g.name} {int(g.created)} {g.creator}" for g in groups]
            )
        elif keyword == "OVERVIEW.FMT":
            self.reply_lines(LIST_FOLLOWS, "order of fields in overview database", OVERVIEW_FORMAT)
        else:  # HEADERS: HDR takes any header (":") plus the two metadata items
            self.reply_lines(LIST_FOLLOWS, "headers supported", [":", ":bytes", ":lines"])

    def do_NEWGROUPS(self, date: str, clock: str, zone: str | None = None) -> None:
        since = parse_when(date, clock, zone)
        lines = [
            f"{g.name} {g.high_water} {g.low} {'y' if g.config.posting else 'n'}"
            for g in self.spool.groups()
            if g.created >= since
        ]
        self.reply_lines(NEW_GROUPS_FOLLOW, "list of new newsgroups follows", lines)

    def do_NEWNEWS(self, wildmat: str, date: str, clock: str, zone: str | None = None) -> None:
        since = parse_when(date, clock, zone)
        found: dict[str, None] = {}
        for group in self.spool.groups():
            if wildmat_matches(wildmat, group.name):
                for entry in self.spool.entries(group.name):
                    if entry.arrived >= since:
                        found.setdefault(entry.message_id)
        self.reply_lines(NEW_ARTICLES_FOLLOW, "list of new articles by message-id follows", list(found))

    # -- articles ------------------------------------------------------------------------------
    def _locate(self, argument: str | None) -> tuple[str, ArticleEntry, int]:
        """(group, entry, number to report) for ARTICLE/HEAD/BODY/STAT/HDR/OVER arguments."""
        if argument is not None and argument.startswith("<"):
            try:
                name, entry = self.spool.find(argument)
            except NoSuchArticle:
                raise CommandError(NO_SUCH_MESSAGE_ID, f"no article with message-id {argument[:80]}") from None
            return name, entry, 0  # RFC 3977 6.2.1.2: by message-id the number is 0
        group = self._current_group()
        if argument is None:
            if self.article_number is None:
                raise CommandError(CURRENT_INVALID, "current article number is invalid")
            number = self.article_number
        else:
            if not argument.isdigit():
                raise CommandError(SYNTAX_ERROR, f"not a number or message-id: {argument[:40]}")
            number = int(argument)
        try:
            entry = self.spool.entry(group.name, number)
        except NoSuchArticle:
            raise CommandError(NO_SUCH_NUMBER, f"no article numbered {number} in {group.name}") from None
        if argument is not None:
            self.article_number = number  # RFC 3977 6.2.1: a number argument moves the pointer
        return group.name, entry, number

    def _article(self, verb: str, argument: str | None) -> None:
        name, entry, number = self._locate(argument)
        status = f"{number} {entry.message_id}"
        if verb == "STAT":
            self.reply(ARTICLE_EXISTS, status)
            return
        try:
            data = self.spool.read(name, entry.number)
        except NoSuchArticle:
            raise CommandError(NO_SUCH_NUMBER if number else NO_SUCH_MESSAGE_ID, "article is gone") from None
        head, body = split_article(data)
        if verb == "ARTICLE":
            self.reply_data(ARTICLE_FOLLOWS, status, data)
        elif verb == "HEAD":
            self.reply_data(HEAD_FOLLOWS, status, head + b"\r\n" if head else b"")
        else:
            self.reply_data(BODY_FOLLOWS, status, body)

    def do_ARTICLE(self, argument: str | None = None) -> None:
        self._article("ARTICLE", argument)

    def do_HEAD(self, argument: str | None = None) -> None:
        self._article("HEAD", argument)

    def do_BODY(self, argument: str | None = None) -> None:
        self._article("BODY", argument)

    def do_STAT(self, argument: str | None = None) -> None:
        self._article("STAT", argument)

    def _step(self, forward: bool) -> None:
        group = self._current_group()
        if self.article_number is None:
            raise CommandError(CURRENT_INVALID, "current article number is invalid")
        numbers = group.numbers
        candidates = (
            [n for n in numbers if n > self.article_number]
            if forward
            else [n for n in numbers if n < self.article_number]
        )
        if not candidates:
            if forward:
                raise CommandError(NO_NEXT, "no next article in this group")
            raise CommandError(NO_PREVIOUS, "no previous article in this group")
        self.article_number = candidates[0] if forward else candidates[-1]
        entry = self.spool.entry(group.name, self.article_number)
        self.reply(ARTICLE_EXISTS, f"{self.article_number} {entry.message_id}")

    def do_NEXT(self) -> None:
        self._step(forward=True)

    def do_LAST(self) -> None:
        self._step(forward=False)

    def _entries(self, argument: str | None) -> list[tuple[int, str, ArticleEntry]]:
        """(number to report, group, entry) for OVER and HDR: a message-id, a range, or the current article."""
        if argument is None or argument.startswith("<"):
            name, entry, number = self._locate(argument)
            return [(number, name, entry)]
        group = self._current_group()
        low, high = parse_range(argument, group.high_water)
        found = [(entry.number, group.name, entry) for entry in self.spool.entries(group.name, low, high)]
        if not found:
            raise CommandError(NO_SUCH_NUMBER, "no articles in that range")
        return found

    def do_OVER(self, argument: str | None = None) -> None:
        lines = []
        for number, _, entry in self._entries(argument):
            fields = [str(number), entry.subject, entry.sender, entry.date, entry.message_id, entry.references]
            lines.append("\t".join([*fields, str(entry.size), str(entry.lines), entry.xref]))
        self.reply_lines(OVERVIEW_FOLLOWS, "overview information follows", lines)

    def do_XOVER(self, argument: str | None = None) -> None:
        self.do_OVER(argument)

    def _headers(self, code: int, field: str, argument: str | None) -> None:
        lines = []
        for number, name, entry in self._entries(argument):
            value = entry.header(field) if field.lower() in INDEXED_FIELDS else None
            if value is None:  # not in the overview index: read the article's own header
                head, _ = split_article(self.spool.read(name, entry.number))
                value = next((v for n, v in parse_headers(head) if n.lower() == field.lower()), "")
            lines.append(
                f"{number} {overview_text(value).removeprefix('Xref: ') if field.lower() == 'xref' else overview_text(value)}"
            )
        self.reply_lines(code, "headers follow", lines)

    def do_HDR(self, field: str, argument: str | None = None) -> None:
        self._headers(HEADERS_FOLLOW, field, argument)

    def do_XHDR(self, field: str, argument: str | None = None) -> None:
        self._headers(HEAD_FOLLOWS, field, argument)

    # -- posting ---------------------------------------------------------------------------------
    def _check_may_post(self) -> None:
        if self.may_post:
            return
        if self.user is None and self.server.settings.require_auth and self.server.any_posting:
            raise CommandError(AUTH_REQUIRED, "authentication required for posting")
        raise CommandError(POSTING_NOT_PERMITTED, "posting not permitted")

    def do_POST(self) -> None:
        self._check_may_post()
        self._start_article("POST")
        self.reply(SEND_ARTICLE, "send article to be posted; end with <CR-LF>.<CR-LF>")

    def do_IHAVE(self, message_id: str) -> None:
        if not self.may_post:
            if self.user is None and self.server.settings.require_auth:
                raise CommandError(AUTH_REQUIRED, "authentication required for transfer")
            raise CommandError(NOT_PERMITTED, "transfer not permitted")
        try:
            self.spool.find(message_id)
        except NoSuchArticle:
            pass
        else:
            raise CommandError(NOT_WANTED, "article not wanted (already have it)")
        self._start_article("IHAVE")
        self.reply(SEND_TRANSFER, "send article to be transferred; end with <CR-LF>.<CR-LF>")

    def _start_article(self, verb: str) -> None:
        self.mode = "article"
        self.article_verb = verb
        self.article_data = []
        self.article_line_count = 0
        self.article_size = 0
        self.article_partial = b""
        # The article's bytes go to rawDataReceived in whole chunks, not through
        # LineReceiver's per-line loop (most of a POST's CPU time when it did). Lines
        # already held (a POST pipelined behind another) still come one by one.
        self.setRawMode()

    def rawDataReceived(self, data: bytes) -> None:
        """Article data: its lines, with LineReceiver's length rule, until the ``.`` line;
        what follows the terminator is commands again. The lines of a chunk are taken
        together (one search for the terminator, one replace to un-stuff them), where a
        Python loop over each line cost a sixth of the reactor's time per post."""
        buffer = self.article_partial + data  # starts at the start of a line
        if buffer.startswith(b".\r\n"):
            end = 0
        else:
            found = buffer.find(b"\r\n.\r\n")
            end = found + 2 if found >= 0 else -1
        # The whole lines: up to the terminator, or up to the last CRLF while it is out.
        cut = end if end >= 0 else buffer.rfind(self.delimiter) + len(self.delimiter)
        complete = buffer[:cut] if cut >= len(self.delimiter) else b""  # rfind's -1: none yet
        if len(complete) > self.MAX_LENGTH:  # only then can one of its lines be too long
            longest = max(complete.split(self.delimiter), key=len)
            if len(longest) > self.MAX_LENGTH:
                self.lineLengthExceeded(longest)
                return
        if complete:
            self._article_lines(complete)
        if end >= 0:
            self.article_partial = b""
            self._article_line(b".")
            rest = buffer[end + 3 :]
            if rest:
                self.dataReceived(rest)  # LineReceiver is busy: it takes these as lines next
            return
        self.article_partial = buffer[len(complete) :]
        if len(self.article_partial) >= self.MAX_LENGTH + len(self.delimiter):
            self.lineLengthExceeded(self.article_partial)

    def _article_line(self, line: bytes) -> None:
        if line == b".":
            self.mode = "command"
            self.setLineMode()
            self._finish_article()
            return
        self._article_lines(line + self.delimiter)

    def _article_lines(self, lines: bytes) -> None:
        """Whole article lines (CRLF-terminated, no terminator among them): un-stuffed
        (RFC 3977 3.1.1: a leading dot removed), counted, kept while the article is
        within max_article_size."""
        unstuffed = (self.delimiter + lines).replace(b"\r\n.", b"\r\n")[len(self.delimiter) :]
        limit = self.server.settings.max_article_size
        if self.article_size + len(unstuffed) <= limit:
            self.article_size += len(unstuffed)
            self.article_data.append(unstuffed)
            self.article_line_count += unstuffed.count(self.delimiter)
            return
        for line in unstuffed.split(self.delimiter)[:-1]:  # the lines that still fit are kept
            self.article_size += len(line) + len(self.delimiter)
            if self.article_size <= limit:
                self.article_data.append(line + self.delimiter)
                self.article_line_count += 1

    def _finish_article(self) -> None:
        verb, data = self.article_verb, self.article_data
        self.article_data = []
        self.server.wire.received(self.peer, f"<article: {self.article_line_count} lines, {self.article_size} bytes>")
        failed = POSTING_FAILED if verb == "POST" else TRANSFER_REJECTED
        if self.article_size > self.server.settings.max_article_size:
            self.article_verb = ""
            self.reply(failed, f"article larger than {self.server.settings.max_article_size} bytes")
            return
        article = b"".join(data)
        self.article_verb = "storing"
        self.hold()  # pipelined commands wait for the 240: the post must be durable first
        self.server.posts.submit(
            Posting(article, require_message_id=verb == "IHAVE"),
            lambda outcome: self._post_done(outcome, verb, len(article)),
        )

    def _post_done(self, outcome: str | Exception, verb: str, size: int) -> None:
        try:
            if isinstance(outcome, Exception):
                self._post_failed(outcome, verb)
            else:
                self._posted(outcome, verb, size)
        finally:
            self.article_verb = ""
            self.release()

    def _posted(self, message_id: str, verb: str, size: int) -> None:
        self.server.record(
            "message",
            self.peer,
            action=verb.lower(),
            message_id=message_id,
            size=size,
            user=self.user.name if self.user else None,
        )
        if self.transport is not None and self.transport.connected:
            if verb == "POST":
                self.reply(POSTED, f"article received {message_id}")
            else:
                self.reply(TRANSFERRED, f"article transferred {message_id}")

    def _post_failed(self, problem: Exception, verb: str) -> None:
        if isinstance(problem, DuplicateArticle) and verb == "IHAVE":
            code = NOT_WANTED
        elif isinstance(problem, PostingRefused):
            code = POSTING_FAILED if verb == "POST" else TRANSFER_REJECTED
        elif isinstance(problem, OSError):
            self.server.log.error("cannot store article: %s", problem)
            code = POSTING_FAILED if verb == "POST" else TRANSFER_LATER
            problem = Exception(f"cannot store the article: {problem.strerror or problem}")
        else:
            raise problem  # a bug: for the reactor's log (BatchWorker hands it on)
        self.server.record("message", self.peer, action=f"{verb.lower()}-refused", reason=str(problem))
        if self.transport is not None and self.transport.connected:
            self.reply(code, str(problem))


class NntpFactory(protocol.ServerFactory):
    noisy = False

    def __init__(self, server: NntpServer, implicit_tls: bool):
        self.server = server
        self.implicit_tls = implicit_tls

    def buildProtocol(self, addr: Any) -> Any:
        proto = NntpProtocol(self.server, self.implicit_tls)
        proto.factory = self
        return proto


DEFAULT_GROUPS = {
    "comp.lang.python": "The Python computer language (sample articles included).",
    "local.test": "Local test postings.",
}


class NntpServer(TwistedServer):
    name = "nntp"
    description = "NNTP reader server (RFC 3977) with POST, OVER/HDR, AUTHINFO, STARTTLS and NNTPS"
    scheme = "nntp"
    options = (
        Option("port", PORT, 1119, "NNTP port (STARTTLS offered)"),
        Option("tls_port", PORT, 1563, "NNTPS port (implicit TLS)"),
        Option("groups", STR_TABLE, DEFAULT_GROUPS, "newsgroups served: name -> description"),
        Option("read_only_groups", STR_LIST, (), "groups listed with status n: POST to them gets 441"),
        Option(
            "sample_articles", BOOL, True, "seed comp.lang.python and local.test with sample articles on first start"
        ),
        Option("require_auth", BOOL, False, "true: POST and IHAVE need AUTHINFO first (480); read-only users get 440"),
        Option("require_auth_to_read", BOOL, False, "true: reading groups and articles needs AUTHINFO first (480)"),
        Option("auth_requires_tls", BOOL, False, "true: AUTHINFO on the plain port before STARTTLS gets 483"),
        Option("max_article_size", int_range(1, 2**31), 1048576, "bytes; a bigger POST gets 441"),
        Option("path_host", STR, "refservers", "this server's name in Path, Xref and generated Message-IDs"),
        Option(
            "idle_timeout",
            FLOAT,
            600.0,
            "seconds of client silence before the connection is closed with 400 (0: never; RFC 3977: at least 180)",
        ),
    )
    stores = ("users",)  # logins check the shared user table (its admin routes come along)
    fault_subject = (
        'connect, then the command line, credentials masked ("GROUP local.test", "POST", "AUTHINFO PASS ****")'
    )
    fault_user = "the name of AUTHINFO USER (and the AUTHINFO PASS after it), then the logged-in user"
    fault_actions = {
        "error": reply_error(NNTP_REPLY, FAULT_REPLY, "the 4xx/5xx line sent instead"),
        "delay": DELAY,
        "disconnect": DISCONNECT,
    }
    test_settings = {"sample_articles": "true"}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.spool = self.core.shared(NewsSpool)
        self.any_posting = any(group.config.posting for group in self.spool.groups())
        self.tls_options: Any = None
        self.posts = self._post_worker()

    def _post_worker(self) -> BatchWorker[Posting, str]:
        # Every article that finished arriving while the worker was busy is stored as
        # one batch (NewsSpool.post_many: one group commit), and its sessions hear in
        # one reactor wake-up.
        return BatchWorker(self.spool.post_many, self.core.loop.call_soon, POST_THREADS, "nntp-post")

    def _bind(self) -> None:
        self.tls_options = self.core.tls.twisted_options()
        self.listen("main", NntpFactory(self, implicit_tls=False), self.settings.port)
        self.listen("tls", NntpFactory(self, implicit_tls=True), self.settings.tls_port, tls=True)

    def _unbind(self) -> None:
        try:
            super()._unbind()
        finally:
            # Posts already handed over finish (their clients are gone); stop() does not
            # wait for their fsyncs. A fresh worker for a restart.
            self.posts.close()
            self.posts = self._post_worker()

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        """Greeting, CAPABILITIES (must say VERSION 2), QUIT, over a raw socket (nntplib
        is deprecated and warns on import)."""

        def attempt(remaining: float) -> str:
            try:
                with socket.create_connection((host, port), timeout=remaining) as sock:
                    reader = sock.makefile("rb")
                    greeting = reader.readline(4096)
                    if not greeting.startswith((b"200", b"201")):
                        raise ProbeError(f"{host}:{port}: unexpected greeting {greeting[:80]!r}")
                    sock.sendall(b"CAPABILITIES\r\n")
                    capabilities = [reader.readline(4096).strip()]
                    while capabilities[-1] != b"." and len(capabilities) < 100 and capabilities[0].startswith(b"101"):
                        capabilities.append(reader.readline(4096).strip())
                    sock.sendall(b"QUIT\r\n")
                    reader.readline(4096)
                    reader.close()
            except ConnectionRefusedError:
                raise
            except (OSError, ssl.SSLError) as problem:
                raise ProbeError(f"{host}:{port}: {problem}") from None
            if b"VERSION 2" not in capabilities:
                raise ProbeError(f"{host}:{port}: CAPABILITIES without VERSION 2: {capabilities[:3]!r}")
            return greeting.decode("utf-8", "replace").strip()

        return retry_until(timeout, attempt)

    def admin_routes(self) -> list[Any]:
        return news_routes(self.core)

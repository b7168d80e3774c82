"""ImapServer: IMAP4rev1 (RFC 3501) on twisted.mail.imap4, over the shared MailStore.

This room owns the IMAP side only: the session state Twisted's ``IMAP4Server`` leaves
to its ``IAccount``/``IMailbox``/``IMessage`` providers, and the protocol fixes a sync
client needs. Messages, flags, UIDs and folders live in :class:`~servers.mail.store.MailStore`
(Maildir), shared with SMTP and POP3.

What is ours rather than Twisted's, and why:

- **A per-session view.** A selected folder is a snapshot of (UID, key, flags) taken at
  SELECT. Sequence numbers only move when this session tells the client: new mail is
  announced with ``* n EXISTS`` (at once while idling, else before the next tagged
  reply), messages removed elsewhere (POP3 DELE, another IMAP session) with
  ``* n EXPUNGE`` only where RFC 3501 7.4.1 allows it (not during FETCH, STORE, SEARCH).
- **Byte-exact sections.** ``BODY[...]`` sections, partial ``<start.length>`` fetches
  and ``RFC822.HEADER`` are cut from the stored bytes (Twisted re-formats headers and
  ignores partial ranges), and a non-PEEK fetch sets ``\\Seen`` as RFC 3501 asks.
- **Big messages from their files.** ``BODY[]`` and ``RFC822`` of a message of
  STREAMED_MESSAGE_BYTES or more go from the Maildir file to the socket (core
  ``send_file``: ``sendfile``), never through memory (FetchResponse).
- **FETCH n at the cost of one round trip.** FETCH's arguments are parsed without
  Twisted's Deferred chain (``_run_now``; a lone number and an item list already seen
  take shortcuts), and a command's answer, folder updates and tagged line leave in one
  write straight to the socket (``_answer``); the bytes are Twisted's
  (tests/imap/test_imap_dispatch.py compares them).
- **SEARCH** is evaluated here (all RFC 3501 keys, dates by day, KEYWORD).
- **SELECT** also reports ``UIDNEXT``, ``PERMANENTFLAGS`` and ``UNSEEN``; **UIDPLUS**
  (RFC 4315: APPENDUID, COPYUID, UID EXPUNGE), **MOVE** (RFC 6851), **UNSELECT**
  (RFC 3691), **IDLE** (RFC 2177), ``AUTHENTICATE PLAIN`` with SASL-IR (RFC 4959),
  and plain-text ``LOGIN`` without STARTTLS (a local test server: no LOGINDISABLED).

Mailbox names use ``/`` as hierarchy delimiter, like the store; INBOX is
case-insensitive. Subscriptions are kept in memory per server (every folder starts
subscribed), which is all LSUB-based clients need.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime
import email.header
import email.message
import email.parser
import email.policy
import email.utils
import functools
import io
import itertools
import os
import re
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, protocol, task
from twisted.internet.error import ConnectionLost
from twisted.mail import imap4
from twisted.mail.imap4 import (
    IAccount,
    ICloseableMailbox,
    IllegalClientResponse,
    IMailbox,
    IMailboxInfo,
    IMessage,
    IMessageFile,
    IMessagePart,
    INamespacePresenter,
    ISearchableMailbox,
    MailboxException,
    parseIdList,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from ..core.config import PORT, Option
from ..core.faults import DELAY, DISCONNECT, IMAP_REPLY, FaultAction, Param
from ..core.lifecycle import probe_greeting
from ..core.loop import twisted_reactor
from ..core.twisted_listen import TwistedServer, peer_of, send_file, write_now
from ..mail.store import INBOX, FolderSnapshot, MailStore, MailStoreError, MessageInfo, NoSuchFolder, NoSuchMessage

DELIMITER = "/"
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
FOLDER_FLAGS = (*SYSTEM_FLAGS, "$Forwarded")
PERMANENT_FLAGS = (*FOLDER_FLAGS, "\\*")

# Commands during which an untagged EXPUNGE must not be sent (RFC 3501 7.4.1), and
# commands that end with no folder selected (nothing to report for it).
NO_EXPUNGE_VERBS = frozenset({b"FETCH", b"STORE", b"SEARCH"})
NO_UPDATE_VERBS = frozenset({b"SELECT", b"EXAMINE", b"CLOSE", b"UNSELECT", b"LOGOUT"})
# Secret by position: the SASL response lines and a LOGIN password sent as a literal.
CREDENTIAL_VERBS = frozenset({b"LOGIN", b"AUTHENTICATE"})

DEFAULT_FAULT_REPLY = "NO [UNAVAILABLE] fault injected"
# FETCH items whose writers (ours or Twisted's spew_*) write at once, without a
# producer: a FETCH of only these is answered in one write (ImapProtocol.do_FETCH) ...
INLINE_FETCH_PARTS = frozenset(
    {"body", "bodystructure", "envelope", "flags", "internaldate", "rfc822", "rfc822header", "rfc822size", "rfc822text", "uid"}
)
# ... unless it spans several messages of more than this many bytes in all to hold in
# memory (a streamed message counts only if an item reads it): then Twisted writes
# them in slices, letting other clients in between.
INLINE_FETCH_BYTES = 16 * 1024 * 1024
# A message this big is not read into memory for FETCH BODY[] or RFC822: the kernel
# sends its file (sendfile). Reading 15 MiB into bytes and through Twisted's write
# buffer cost three copies and as many page-faulted allocations; below this, one
# read and one joined write of many messages costs less than a send per message.
STREAMED_MESSAGE_BYTES = 1024 * 1024
# A FETCH keeps at most this many message files open (the process may have 1,024
# descriptors in all); one naming more big messages is read into memory as before.
STREAMED_FILES_PER_FETCH = 64


@functools.lru_cache(maxsize=256)
def _fetch_items(line: bytes) -> tuple[Any, ...]:
    # Twisted private (_FetchParser: the parser behind IMAP4Server.arg_fetchatt) (checked against the pinned Twisted 26.10; tests/core/test_library_internals.py fails if it moves)
    parser = imap4._FetchParser()
    parser.parseString(line)
    return tuple(parser.result)


def arg_fetchatt(protocol: Any, line: bytes | None) -> tuple[list[Any], bytes]:
    """Twisted's ``arg_fetchatt``, remembered per text: a client syncing one message at a
    time sends the same items a thousand times, and parsing them was a twentieth of a
    ``FETCH n``. The parsed items are only read after parsing (by the ``spew_*``
    writers), so one parse can serve every command; each gets its own list, which
    do_FETCH may extend. A line that does not parse raises each time, as before."""
    if line is None:
        return imap4.IMAP4Server.arg_fetchatt(protocol, line)  # Twisted's error for it
    return list(_fetch_items(line)), b""


def arg_seqset(protocol: Any, line: bytes | None) -> tuple[Any, bytes]:
    """Twisted's ``arg_seqset``, with a lone message number (``FETCH n``) made into its
    one-range MessageSet directly instead of through parseIdList's general loop (a
    twentieth of a FETCH n). Anything else, errors included, is Twisted's."""
    if line:
        number, _, rest = line.partition(b" ")
        if number.isdigit() and (value := int(number)) > 0:
            # The ranges MessageSet([(n, n)]) ends with, without its sort-and-merge
            # pass (clean()) over a list of one range.
            single = imap4.MessageSet()
            single.ranges = [(value, value)]
            return single, rest
    return imap4.IMAP4Server.arg_seqset(protocol, line)


# Argument parsers of the command table that return at once, never a Deferred (no
# literal to wait for): commands taking only these run without Deferreds (_run_now).
SYNCHRONOUS_PARSERS = frozenset(
    {
        imap4.IMAP4Server.arg_seqset,
        imap4.IMAP4Server.arg_fetchatt,
        imap4.IMAP4Server.arg_atom,
        imap4.IMAP4Server.arg_line,
        arg_fetchatt,
        arg_seqset,
    }
)


def _folder_key(name: str) -> str:
    return INBOX if name.upper() == INBOX else name


# -- messages: byte-exact MIME sections -------------------------------------------------


@implementer(IMessagePart)
class MessagePart:
    """A message or MIME part over its raw CRLF bytes; sections are slices of them.

    ``getSize``/``getBodyFile`` describe the body (what BODYSTRUCTURE counts); the
    whole message's size is ``len(raw)``.
    """

    def __init__(self, raw: bytes):
        self.raw = raw
        end = raw.find(b"\r\n\r\n")
        if raw.startswith(b"\r\n"):
            self.header, self._body_start = b"\r\n", 2
        elif end < 0:
            self.header, self._body_start = raw + (b"" if raw.endswith(b"\r\n") else b"\r\n") + b"\r\n", len(raw)
        else:
            self.header, self._body_start = raw[: end + 4], end + 4
        self._subparts: list[MessagePart] | None = None

    @property
    def size(self) -> int:
        """The whole message's size: the length of its literal."""
        return len(self.raw)

    @functools.cached_property
    def body(self) -> bytes:
        # Sliced on first use: FETCH BODY[] sends ``raw`` and never needs this copy,
        # which for a 15 MiB attachment costs as much as the send.
        return self.raw[self._body_start :]

    @functools.cached_property
    def _parsed(self) -> email.message.Message:
        # Parsed on first use: FETCH BODY[] and SEARCH BODY/TEXT never need the headers.
        return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(self.header)

    # -- IMessagePart, as Twisted's ENVELOPE/BODYSTRUCTURE code reads it
    def getHeaders(self, negate: bool, *names: str) -> dict[str, str]:
        wanted = {name.lower() for name in names}
        headers: dict[str, str] = {}
        for name, value in self._parsed.items():
            key = name.lower()
            if names and (key in wanted) == negate:
                continue
            headers.setdefault(key, _unfold(value))
        # RFC 2045 defaults, so BODYSTRUCTURE never has NIL where the grammar needs a string.
        for key, default in (
            ("content-type", self._parsed.get_default_type() + "; charset=us-ascii"),
            ("content-transfer-encoding", "7BIT"),
        ):
            if key not in headers and (not names or (key in wanted) != negate):
                headers[key] = default
        return headers

    def getBodyFile(self) -> io.BytesIO:
        return io.BytesIO(self.body)

    def getSize(self) -> int:
        return len(self.body)

    def isMultipart(self) -> bool:
        return self._parsed.get_content_maintype() == "multipart"

    def getSubPart(self, part: int) -> MessagePart:
        if self.is_message():
            if part != 0:
                raise IndexError(part)
            return MessagePart(self.body)
        return self.subparts()[part]

    # -- sections
    def is_message(self) -> bool:
        return self._parsed.get_content_type() == "message/rfc822"

    def subparts(self) -> list[MessagePart]:
        """The parts between the boundary lines, cut from the raw body (RFC 2046 5.1.1)."""
        if self._subparts is None:
            self._subparts = []
            boundary = self._parsed.get_param("boundary") if self.isMultipart() else None
            if isinstance(boundary, str) and boundary:
                delimiter = b"\r\n--" + boundary.encode("utf-8", "surrogateescape")
                text = b"\r\n" + self.body
                starts = [m.start() for m in re.finditer(re.escape(delimiter) + rb"(--)?[ \t]*(?=\r\n|$)", text)]
                for here, following in zip(starts, starts[1:], strict=False):
                    if text[here + len(delimiter) : here + len(delimiter) + 2] == b"--":
                        break
                    line_end = text.find(b"\r\n", here + 2)
                    self._subparts.append(MessagePart(text[line_end + 2 : following]))
        return self._subparts

    def section(self, path: Iterable[int], specifier: str, fields: Iterable[bytes] = (), negate: bool = False) -> bytes:
        """The bytes of ``BODY[path.specifier]`` (path 0-based, specifier "", HEADER, TEXT, MIME...).

        :raises LookupError: for a part the message does not have.
        """
        part: MessagePart = self
        path = list(path)
        for index in path:
            if part.is_message():
                part = MessagePart(part.body)
            if part.isMultipart():
                try:
                    part = part.subparts()[index]
                except IndexError:
                    raise LookupError("no such body part") from None
            elif index != 0:
                raise LookupError("no such body part")
        if specifier == "MIME":
            return part.header
        if not specifier:
            return part.raw if not path else part.body
        if path:
            if not part.is_message():
                raise LookupError("HEADER/TEXT of a part that is not a message")
            part = MessagePart(part.body)
        if specifier == "TEXT":
            return part.body
        if specifier == "HEADER" and not fields:
            return part.header
        return _header_fields(part.header, {f.decode("ascii", "replace").lower() for f in fields}, negate)


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", str(value))


def _header_fields(header: bytes, wanted: set[str], negate: bool) -> bytes:
    """The header lines (with their continuations) whose names are (not) in ``wanted``."""
    kept: list[bytes] = []
    keeping = False
    for line in header.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if keeping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        keeping = bool(line) and (name in wanted) != negate
        if keeping:
            kept.append(line)
    return b"".join(line + b"\r\n" for line in kept) + b"\r\n"


@implementer(IMessage, IMessageFile)
class StoredMessage(MessagePart):
    """One message of a folder as a session sees it: stored bytes plus UID and flags.

    Made from the message's bytes, or from its open file (SelectedFolder.message
    streams a message of STREAMED_MESSAGE_BYTES or more): then it keeps the file open
    (``file``) and its bytes are read only if an item needs more than the whole
    message, which FETCH sends from the file (see FetchResponse). ``close()`` closes it
    (garbage collection too, should a message escape it).
    """

    def __init__(self, info: MessageInfo, source: bytes | BinaryIO, recent: bool):
        self.info = info
        self.recent = recent
        self.file: BinaryIO | None = None
        if isinstance(source, bytes):
            super().__init__(source)
            return
        file = self.file = source
        self._size = os.fstat(file.fileno()).st_size  # what sendfile will send
        self._close_file = weakref.finalize(self, file.close)

    def __getattr__(self, name: str) -> Any:
        # Only for attributes not set yet: a streamed message's bytes and what
        # MessagePart derives from them, read on first use. Properties instead would
        # cost every in-memory message of a SEARCH or FETCH 1:* a call per access.
        file = self.__dict__.get("file")
        if name in ("raw", "header", "_body_start", "_subparts") and file is not None:
            MessagePart.__init__(self, os.pread(file.fileno(), self._size, 0))
            return getattr(self, name)
        raise AttributeError(name)

    @property
    def size(self) -> int:
        return self._size if self.file is not None else len(self.raw)

    def close(self) -> None:
        """Close the file of a streamed message (nothing to do for the others)."""
        if self.file is not None:
            self._close_file()

    def getUID(self) -> int:
        return self.info.uid

    def getFlags(self) -> list[str]:
        return sorted(self.info.flags) + (["\\Recent"] if self.recent else [])

    def getInternalDate(self) -> str:
        return email.utils.formatdate(self.info.internal_date, usegmt=True)

    def open(self) -> io.BytesIO:
        return io.BytesIO(self.raw)


class FetchResponse:
    """The untagged FETCH responses of one command as the ``spew_*`` writers build them:
    bytes, and whole streamed messages (StoredMessage.file) for their literals, which
    ImapProtocol sends from the file (core ``send_file``) rather than from memory."""

    def __init__(self) -> None:
        self.pieces: list[bytes | StoredMessage] = []
        self.has_files = False

    def __call__(self, data: bytes) -> None:
        self.pieces.append(data)

    def message_file(self, message: StoredMessage) -> None:
        self.pieces.append(message)
        self.has_files = True

    def runs(self) -> Iterator[bytes | StoredMessage]:
        """The pieces to send in order, each run of bytes joined into one write."""
        for is_bytes, run in itertools.groupby(self.pieces, key=lambda piece: isinstance(piece, bytes)):
            if is_bytes:
                yield b"".join(cast("Iterator[bytes]", run))
            else:
                yield from run


# -- SEARCH (RFC 3501 6.4.4) ------------------------------------------------------------

# Keys that test one flag: key -> (flag, wanted).
SEARCH_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
SEARCH_HEADER_KEYS = {"BCC": "bcc", "CC": "cc", "FROM": "from", "SUBJECT": "subject", "TO": "to"}
SEARCH_DATE_KEYS = {"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"}


class SearchQuery:
    """Evaluates a parsed search program (``imap4.parseNestedParens``) against messages."""

    def __init__(self, program: list[Any], last_seq: int, last_uid: int):
        self.program = program
        self.last_seq = last_seq
        self.last_uid = last_uid

    def matches(self, seq: int, message: StoredMessage) -> bool:
        terms = list(self.program)
        result = True
        while terms:
            result = self._one(terms, seq, message) and result
        return result

    def _one(self, terms: list[Any], seq: int, message: StoredMessage) -> bool:
        """Pop one key with its arguments from ``terms``; whether ``message`` matches it."""
        term = terms.pop(0)
        if isinstance(term, list):
            inner = list(term)
            result = True
            while inner:
                result = self._one(inner, seq, message) and result
            return result
        key = _text(term).upper()
        if key in ("ALL",):
            return True
        if key[:1].isdigit() or key[:1] == "*":
            return seq in _message_set(term, self.last_seq)
        if key in SEARCH_FLAG_KEYS:
            flag, wanted = SEARCH_FLAG_KEYS[key]
            return _has_flag(message, flag) == wanted
        if key in ("NEW", "OLD", "RECENT"):
            return {"NEW": message.recent and not _has_flag(message, "\\Seen"), "OLD": not message.recent}.get(
                key, message.recent
            )
        if key == "NOT":
            return not self._one(terms, seq, message)
        if key == "OR":
            first = self._one(terms, seq, message)
            second = self._one(terms, seq, message)
            return first or second
        argument = _text(self._argument(terms, key))
        if key in ("KEYWORD", "UNKEYWORD"):
            return _has_flag(message, argument) == (key == "KEYWORD")
        if key in SEARCH_HEADER_KEYS:
            return _contains(_header_text(message, SEARCH_HEADER_KEYS[key]), argument)
        if key == "HEADER":
            value = _text(self._argument(terms, key))
            header = _header_text(message, argument.lower())
            return header is not None and _contains(header, value)
        if key == "BODY":
            return argument.lower().encode("utf-8") in message.body.lower()
        if key == "TEXT":
            return argument.lower().encode("utf-8") in message.raw.lower()
        if key in ("LARGER", "SMALLER"):
            size = _number(argument, key)
            return message.size > size if key == "LARGER" else message.size < size
        if key == "UID":
            return message.getUID() in _message_set(argument.encode(), self.last_uid)
        if key in SEARCH_DATE_KEYS:
            return _date_matches(key, argument, message)
        raise IllegalClientResponse(f"unknown search key {key}")

    @staticmethod
    def _argument(terms: list[Any], key: str) -> Any:
        if not terms or isinstance(terms[0], list):
            raise IllegalClientResponse(f"search key {key} needs an argument")
        return terms.pop(0)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _number(text: str, key: str) -> int:
    if not text.isdigit():
        raise IllegalClientResponse(f"{key} needs a number, got {text!r}")
    return int(text)


def _has_flag(message: StoredMessage, flag: str) -> bool:
    return flag.lower() in {f.lower() for f in message.getFlags()}


def _contains(haystack: str | None, needle: str) -> bool:
    return haystack is not None and needle.lower() in haystack.lower()


def _header_text(message: StoredMessage, name: str) -> str | None:
    values = message._parsed.get_all(name)
    if not values:
        return None
    decoded = []
    for value in values:
        try:
            decoded.append(str(email.header.make_header(email.header.decode_header(_unfold(value)))))
        except (ValueError, LookupError, UnicodeError):
            decoded.append(_unfold(value))
    return "\n".join(decoded)


def _date_matches(key: str, argument: str, message: StoredMessage) -> bool:
    try:
        wanted = datetime.datetime.strptime(argument.strip(), "%d-%b-%Y").date()
    except ValueError:
        raise IllegalClientResponse(f"{key} needs a date like 1-Feb-1994, got {argument!r}") from None
    if key.startswith("SENT"):
        sent = message._parsed.get("date")
        try:
            day = email.utils.parsedate_to_datetime(_unfold(sent)).date() if sent else None
        except (TypeError, ValueError):
            day = None
        if day is None:
            return False
        key = key[4:]
    else:
        day = datetime.datetime.fromtimestamp(message.info.internal_date, datetime.UTC).date()
    return {"BEFORE": day < wanted, "ON": day == wanted, "SINCE": day >= wanted}[key]


class NumberRanges:
    """A sequence set or UID set with ``*`` resolved; ``n in ranges`` without expanding it
    (clients send ``1:4294967295``)."""

    def __init__(self, message_set: Any, last: int):
        self.ranges = []
        for low, high in message_set.ranges:
            low = last if low is None else low
            high = last if high is None else high
            self.ranges.append((min(low, high), max(low, high)))

    def __contains__(self, number: object) -> bool:
        return isinstance(number, int) and any(low <= number <= high for low, high in self.ranges)


def _message_set(text: bytes | str, last: int) -> NumberRanges:
    raw = text.encode() if isinstance(text, str) else text
    try:
        message_set = parseIdList(raw)
    except (imap4.IllegalIdentifierError, ValueError) as error:
        raise IllegalClientResponse(f"bad message set {raw!r}: {error}") from None
    return NumberRanges(message_set, last)


# -- folders ------------------------------------------------------------------------------


@implementer(IMailboxInfo)
class FolderListing:
    """A LIST/LSUB entry: name attributes (not message flags, which SELECT reports)."""

    def __init__(self, attributes: Iterable[str]):
        self.attributes = list(attributes)

    def getFlags(self) -> list[str]:
        return self.attributes

    def getHierarchicalDelimiter(self) -> str:
        return DELIMITER


@implementer(IMailbox, ICloseableMailbox, ISearchableMailbox)
class SelectedFolder:
    """A session's view of one folder: the message list the client's sequence numbers index."""

    def __init__(self, account: MailAccount, folder: str, writeable: bool):
        self.account = account
        self.mail_store = account.store
        self.user = account.user
        self.folder = _folder_key(folder)
        self.writeable = writeable
        snapshot = self.mail_store.snapshot(self.user, self.folder)
        self.view: list[MessageInfo] = list(snapshot.messages)
        # The store snapshot the view last fully matched: while the store hands back
        # this same object, nothing changed and a sync has nothing to say.
        self.synced: FolderSnapshot | None = snapshot
        self.recent_uids = {info.uid for info in self.view if info.recent}
        self.uidvalidity = snapshot.uidvalidity
        self.listeners: list[Any] = []

    # -- IMailboxInfo / IMailbox state
    def getFlags(self) -> list[str]:
        return list(FOLDER_FLAGS)

    def getHierarchicalDelimiter(self) -> str:
        return DELIMITER

    def getUIDValidity(self) -> int:
        return self.uidvalidity

    def getUIDNext(self) -> int:
        last = self.view[-1].uid if self.view else 0
        return max(self.mail_store.next_uid(self.user, self.folder), last + 1)

    def getUID(self, message: int) -> int:
        return self.view[message - 1].uid

    def getMessageCount(self) -> int:
        return len(self.view)

    def getRecentCount(self) -> int:
        return sum(1 for info in self.view if info.uid in self.recent_uids)

    def getUnseenCount(self) -> int:
        return sum(1 for info in self.view if "\\Seen" not in info.flags)

    def first_unseen(self) -> int | None:
        return next((seq for seq, info in enumerate(self.view, 1) if "\\Seen" not in info.flags), None)

    def isWriteable(self) -> bool:
        return self.writeable

    def destroy(self) -> None:
        raise MailboxException("use DELETE")

    def requestStatus(self, names: Iterable[str]) -> dict[str, int]:
        fresh = self.mail_store.messages(self.user, self.folder)
        values = {
            "MESSAGES": len(fresh),
            "RECENT": sum(1 for info in fresh if info.recent),
            "UIDNEXT": self.mail_store.next_uid(self.user, self.folder),
            "UIDVALIDITY": self.uidvalidity,
            "UNSEEN": sum(1 for info in fresh if "\\Seen" not in info.flags),
        }
        return {name.upper(): values[name.upper()] for name in names if name.upper() in values}

    def addListener(self, listener: Any) -> None:
        self.listeners.append(listener)
        self.account.server.watch(self)

    def removeListener(self, listener: Any) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)
        if not self.listeners:
            self.account.server.unwatch(self)

    def close(self) -> None:
        self.listeners.clear()
        self.account.server.unwatch(self)

    # -- messages
    def sequence_numbers(self, messages: Any, uid: bool) -> list[int]:
        """The 1-based positions in the view that ``messages`` (a MessageSet) names.

        Cut from the ranges, not tested message by message: ``FETCH n`` costs the same
        in a folder of ten messages as in one of ten thousand. The view is in UID order.
        """
        if not self.view:
            return []
        count = len(self.view)
        if not uid and len(messages.ranges) == 1:  # FETCH n, FETCH 1:*: no set to sort
            low, high = NumberRanges(messages, count).ranges[0]
            return list(range(max(low, 1), min(high, count) + 1))
        seqs: set[int] = set()
        if uid:
            for low, high in NumberRanges(messages, self.view[-1].uid).ranges:
                start = bisect.bisect_left(self.view, low, key=_uid_of)
                end = bisect.bisect_right(self.view, high, key=_uid_of)
                seqs.update(range(start + 1, end + 1))
        else:
            for low, high in NumberRanges(messages, count).ranges:
                seqs.update(range(max(low, 1), min(high, count) + 1))
        return sorted(seqs)

    def message(self, seq: int, stream: bool = False) -> StoredMessage | None:
        """The message at ``seq`` (None if it is gone); ``stream``: see StoredMessage."""
        info = self.view[seq - 1]
        source: bytes | BinaryIO
        try:
            if stream and info.size >= STREAMED_MESSAGE_BYTES:  # the size the store's scan saw
                source = self.mail_store.open_message(self.user, info.key, self.folder)
            else:  # open, one read, close (MailStore.read)
                source = self.mail_store.read(self.user, info.key, self.folder)
        except (NoSuchMessage, NoSuchFolder):
            return None  # expunged elsewhere; the client hears of it at the next sync
        return StoredMessage(info, source, info.uid in self.recent_uids)

    def fetch(self, messages: Any, uid: bool) -> list[tuple[int, StoredMessage]]:
        """IMailbox.fetch (Twisted's FETCH)."""
        return self.fetch_numbered(self.sequence_numbers(messages, uid))

    def fetch_numbered(self, seqs: Iterable[int], stream: bool = False) -> list[tuple[int, StoredMessage]]:
        """The messages at these sequence numbers; ``stream``: see StoredMessage."""
        found = []
        for seq in seqs:
            message = self.message(seq, stream)
            if message is not None:
                found.append((seq, message))
        self.account.record_fetch(self.folder, len(found))
        return found

    def store(self, messages: Any, flags: list[str], mode: int, uid: bool) -> dict[int, list[str]]:
        if not self.writeable:
            raise imap4.ReadOnlyMailbox()
        given = {f for f in flags if f.lower() != "\\recent"}
        lowered = {f.lower() for f in given}
        seqs = self.sequence_numbers(messages, uid)
        wanted: dict[str, set[str]] = {}
        for seq in seqs:
            info = self.view[seq - 1]
            if mode > 0:
                new = set(info.flags) | given
            elif mode < 0:
                new = {f for f in info.flags if f.lower() not in lowered}
            else:
                new = set(given)
            if new != set(info.flags):
                wanted[info.key] = new
        # One store call for the whole range: one lock, one directory fsync.
        stored = self.mail_store.set_flags_many(self.user, wanted, self.folder) if wanted else {}
        changed: dict[int, list[str]] = {}
        for seq in seqs:
            info = self.view[seq - 1]
            if info.key in wanted:
                if info.key not in stored:
                    continue  # expunged elsewhere; the client hears of it at the next sync
                info = self.view[seq - 1] = stored[info.key]
            changed[seq] = self._flags_of(info)
        return changed

    def mark_seen(self, seqs: Iterable[int]) -> None:
        """A non-PEEK body fetch sets \\Seen (RFC 3501 6.4.5), for the whole set in one store call."""
        unseen = {seq: self.view[seq - 1] for seq in seqs if "\\Seen" not in self.view[seq - 1].flags}
        if not unseen:
            return
        wanted = {info.key: {*info.flags, "\\Seen"} for info in unseen.values()}
        stored = self.mail_store.set_flags_many(self.user, wanted, self.folder)
        for seq, info in unseen.items():
            if info.key in stored:
                self.view[seq - 1] = stored[info.key]

    def _flags_of(self, info: MessageInfo) -> list[str]:
        return sorted(info.flags) + (["\\Recent"] if info.uid in self.recent_uids else [])

    def expunge(self, only_uids: set[int] | None = None) -> list[int]:
        """Remove \\Deleted messages; their sequence numbers as EXPUNGE responses give them."""
        doomed = [
            seq
            for seq, info in enumerate(self.view, 1)
            if "\\Deleted" in info.flags and (only_uids is None or info.uid in only_uids)
        ]
        return self.remove(doomed)

    def remove(self, seqs: list[int]) -> list[int]:
        """Delete these messages from the store and the view; highest first, so each
        number is still valid when the client applies the EXPUNGE before it."""
        if seqs:
            self.mail_store.delete(self.user, [self.view[seq - 1].key for seq in seqs], self.folder)
        for seq in sorted(seqs, reverse=True):
            del self.view[seq - 1]
        return sorted(seqs, reverse=True)

    def addMessage(self, message: Any, flags: Iterable[str] = (), date: Any = None) -> defer.Deferred[int]:
        info = self.mail_store.append(self.user, self.folder, message.read(), flags, _append_date(date))
        return defer.succeed(info.uid)

    def search(self, query: list[Any], uid: bool) -> list[int]:
        program = SearchQuery(query, len(self.view), self.view[-1].uid if self.view else 0)
        found = []
        for seq in range(1, len(self.view) + 1):
            message = self.message(seq, stream=True)  # one open at a time, read if a key needs it
            if message is not None:
                if program.matches(seq, message):
                    found.append(seq)
                message.close()
        return found

    def sync(self, allow_expunge: bool) -> list[bytes]:
        """Bring the view up to date with the store; the untagged responses that say so."""
        try:
            snapshot: FolderSnapshot | None = self.mail_store.snapshot(self.user, self.folder)
        except NoSuchFolder:
            snapshot = None
        if snapshot is not None and snapshot is self.synced:
            return []
        current = {info.uid: info for info in snapshot.messages} if snapshot is not None else {}
        responses: list[bytes] = []
        if allow_expunge:
            for seq in range(len(self.view), 0, -1):
                if self.view[seq - 1].uid not in current:
                    del self.view[seq - 1]
                    responses.append(b"%d EXPUNGE" % seq)
        for seq, info in enumerate(self.view, 1):
            fresh = current.get(info.uid)
            if fresh is not None and fresh.flags != info.flags:
                self.view[seq - 1] = fresh
                flags = " ".join(self._flags_of(fresh)).encode()
                responses.append(b"%d FETCH (UID %d FLAGS (%s))" % (seq, fresh.uid, flags))
        last = self.view[-1].uid if self.view else 0
        arrived = [info for uid, info in sorted(current.items()) if uid > last]
        if arrived:
            self.view.extend(arrived)
            self.recent_uids.update(info.uid for info in arrived if info.recent)
            responses.append(b"%d EXISTS" % len(self.view))
            responses.append(b"%d RECENT" % self.getRecentCount())
        # Only a view that now holds exactly the snapshot's messages (no EXPUNGE held
        # back for later) may skip the next comparison.
        complete = (
            snapshot is not None
            and len(self.view) == len(current)
            and all(info.uid in current for info in self.view)
        )
        self.synced = snapshot if complete else None
        return responses


def _uid_of(info: MessageInfo) -> int:
    return info.uid


def _append_date(date: Any) -> float | None:
    """APPEND's date-time ("17-Jul-1996 02:44:25 -0700") as epoch seconds."""
    if not date:
        return None
    text = _text(date).strip()
    try:
        return datetime.datetime.strptime(text, "%d-%b-%Y %H:%M:%S %z").timestamp()
    except ValueError:
        raise IllegalClientResponse(f"bad date-time {text!r}") from None


# -- the account ---------------------------------------------------------------------------


@implementer(IAccount, INamespacePresenter)
class MailAccount:
    """One logged-in user's folders, as Twisted's IMAP4Server asks for them."""

    def __init__(self, server: ImapServer, user: str, peer: str):
        self.server = server
        self.journal = server.core.journal
        self.store = server.store
        self.user = user
        self.peer = peer

    def record_fetch(self, folder: str, count: int) -> None:
        # Straight to the journal (Server.record's own call and keyword repacking were
        # a share of every FETCH n).
        self.journal.record(
            self.server.name, "message", self.peer, action="fetch", user=self.user, folder=folder, count=count
        )

    # -- namespaces: one personal namespace, no others
    def getPersonalNamespaces(self) -> list[list[str]]:
        return [["", DELIMITER]]

    def getSharedNamespaces(self) -> None:
        return None

    def getOtherNamespaces(self) -> None:
        return None

    getUserNamespaces = getOtherNamespaces

    # -- folders
    def addMailbox(self, name: str, mbox: Any = None) -> bool:
        return self.create(name)

    def create(self, pathspec: str) -> bool:
        name = pathspec.rstrip(DELIMITER)
        if not name or name.upper() == INBOX:
            raise imap4.MailboxCollision(name or pathspec)
        try:
            self.store.create_folder(self.user, name)
        except MailStoreError as error:
            raise MailboxException(str(error)) from None
        return True

    def select(self, name: str, rw: bool = True) -> SelectedFolder | None:
        name = name.rstrip(DELIMITER) if name != DELIMITER else name
        try:
            if not self.store.folder_exists(self.user, _folder_key(name)) and name.upper() != INBOX:
                return None
            return SelectedFolder(self, name, bool(rw))
        except MailStoreError:
            return None

    def delete(self, name: str) -> None:
        try:
            self.store.delete_folder(self.user, name)
        except MailStoreError as error:
            raise MailboxException(str(error)) from None

    def rename(self, oldname: str, newname: str) -> None:
        try:
            self.store.rename_folder(self.user, oldname, newname.rstrip(DELIMITER))
        except MailStoreError as error:
            raise MailboxException(str(error)) from None

    def isSubscribed(self, name: str) -> bool:
        return _folder_key(name) not in self.server.unsubscribed.get(self.user, set())

    def subscribe(self, name: str) -> None:
        self.server.unsubscribed.setdefault(self.user, set()).discard(_folder_key(name))

    def unsubscribe(self, name: str) -> None:
        self.server.unsubscribed.setdefault(self.user, set()).add(_folder_key(name))

    def listMailboxes(self, ref: str, wildcard: str) -> list[tuple[str, FolderListing]]:
        if not wildcard:
            # LIST "" "": the hierarchy delimiter and root (RFC 3501 6.3.8).
            return [("", FolderListing(["\\Noselect"]))]
        existing = self.store.folders(self.user)
        names = set(existing)
        for name in existing:  # parents of "a/b" are listed even if never created
            parts = name.split(DELIMITER)
            names.update(DELIMITER.join(parts[:i]) for i in range(1, len(parts)))
        pattern = _list_pattern(ref + wildcard)
        listed = []
        for name in sorted(names, key=lambda n: (n != INBOX, n)):
            if not pattern.fullmatch(name) and not (name == INBOX and pattern.fullmatch(name.lower())):
                continue
            children = any(other.startswith(name + DELIMITER) for other in names)
            attributes = ["\\HasChildren" if children else "\\HasNoChildren"]
            if name not in existing:
                attributes.insert(0, "\\Noselect")
            listed.append((name, FolderListing(attributes)))
        return listed


def _list_pattern(pattern: str) -> re.Pattern[str]:
    """LIST wildcards: ``*`` matches anything, ``%`` anything but the delimiter."""
    if pattern.upper().startswith(INBOX) and (len(pattern) == 5 or pattern[5] in (DELIMITER, "*", "%")):
        pattern = INBOX + pattern[5:]
    parts = [re.escape(c) if c not in "*%" else (".*" if c == "*" else f"[^{re.escape(DELIMITER)}]*") for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


# -- the protocol ----------------------------------------------------------------------------

_S = imap4.IMAP4Server


def _command(handler: Callable[..., Any], *parsers: Any) -> Any:
    """An IMAP4Server command table entry: the handler, then its argument parsers
    (``<state>_<VERB> = _command(do_VERB, arg_x, ...)``)."""
    return (handler, *parsers)


class ImapProtocol(imap4.IMAP4Server):
    """Twisted's IMAP4rev1 server with the session behaviour the module docstring lists."""

    IDENT = b"refservers IMAP4rev1 ready"
    # Set by Twisted's state machine; typed loosely, as its stubs declare None.
    mbox: Any = None
    account: Any = None
    transport: Any = None
    tags: Any = None
    # Twisted private: IMAP4Server queues lines in `blocked` and replays them with `_unblock()` (checked against the pinned Twisted 26.10; tests/core/test_library_internals.py fails if it moves)
    blocked: Any = None
    _pendingLiteral: Any = None
    _onLogout: Any = None

    def __init__(self, server: ImapServer, tls_options: Any):
        super().__init__(chal={}, contextFactory=tls_options, scheduler=server.run_in_slices)
        self.server = server
        # Each command is journalled; straight to the journal, as Server.record would.
        self.journal = server.core.journal
        self.peer = ""
        self.verb = b""  # the command being processed (inner verb for UID commands)
        self.idling = False
        self._synchronous_entries: dict[tuple[str, bytes], tuple[Any, ...] | None] = {}
        # The lines of a command's last answer while it is being put together (_answer).
        self._reply: list[bytes] | None = None

    # -- connection
    def connectionMade(self) -> None:
        # Replies go out as they are complete (as Dovecot does): with Nagle, the tagged OK
        # after a big FETCH waited for the client's delayed ACK, 40 ms every other time.
        self.transport.setTcpNoDelay(True)
        self.peer = peer_of(self.transport)
        self.server.record("connect", self.peer)
        rule = self.server.core.faults.check(self.server.name, "CONNECT", self.peer)
        if rule is not None and rule.action != "delay":
            if rule.action == "error":
                reply = rule.params["reply"]
                self.sendLine(b"* BYE " + re.sub(r"^(NO|BAD)\s+", "", reply, flags=re.IGNORECASE).encode())
            self.transport.loseConnection()
            return
        if rule is not None:
            self.tags = {}
            self.blocked = []  # queue whatever the client sends until the greeting
            twisted_reactor().callLater(_delay_of(rule), self._greet_late)
            return
        super().connectionMade()

    def _greet_late(self) -> None:
        if self.transport.connected:
            super().connectionMade()
            self._unblock()

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        if self.mbox is not None:
            self.mbox.removeListener(self)
            self.mbox = None
        super().connectionLost(reason)
        self.server.record("disconnect", self.peer)

    # -- wire trace
    def lineReceived(self, line: bytes) -> None:
        if self.server.wire.enabled:
            secret = self.parseState == "pending" and self.verb in CREDENTIAL_VERBS
            self.server.wire.received(self.peer, line, secret=secret)
        super().lineReceived(line)

    def rawDataReceived(self, data: bytes) -> None:
        if self.verb in CREDENTIAL_VERBS:
            self.server.wire.received(self.peer, data, secret=True)
        super().rawDataReceived(data)

    def sendLine(self, line: bytes) -> Any:
        if self.server.wire.enabled:
            self.server.wire.sent(self.peer, line)
        if self._reply is not None:  # the end of a command's answer: see _answer
            self._reply.append(line + self.delimiter)
            return None
        return super().sendLine(line)

    # -- capabilities
    def capabilities(self) -> dict[bytes, Any]:
        capabilities: dict[bytes, Any] = {b"AUTH": [b"PLAIN"], b"SASL-IR": None}
        if self.ctx and self.canStartTLS and not self.startedTLS:
            from twisted.internet.interfaces import ISSLTransport

            if ISSLTransport(self.transport, None) is None:
                capabilities[b"STARTTLS"] = None
        for name in (b"NAMESPACE", b"IDLE", b"UIDPLUS", b"MOVE", b"UNSELECT", b"CHILDREN"):
            capabilities[name] = None
        return capabilities

    # -- dispatch: journal, faults, pending updates
    def dispatchCommand(self, tag: bytes, cmd: bytes, rest: bytes | None, uid: Any = None) -> Any:
        verb = cmd.upper()
        self.verb = verb
        if uid is not None:
            return self._dispatch_guarded(tag, cmd, rest, uid)
        verb_text = _text(verb)
        self.journal.record(self.server.name, "command", self.peer, tag=_text(tag), verb=verb_text)
        subject = _text(self._fault_subject(verb, rest)) if verb == b"UID" else verb_text
        rule = self.server.core.faults.check(self.server.name, subject, self.peer, users=[self._fault_user(verb, rest)])
        if rule is None:
            return self._dispatch_guarded(tag, cmd, rest)
        if rule.action == "error":
            self.sendLine(tag + b" " + rule.params["reply"].encode())
        elif rule.action == "disconnect":
            self.transport.abortConnection()
        else:  # delay, then carry on; lines that arrive meanwhile wait in self.blocked
            self.blocked = []

            def resume() -> None:
                blocked, self.blocked = self.blocked, None
                if self.transport.connected:
                    try:
                        self._dispatch_guarded(tag, cmd, rest)
                    except IllegalClientResponse as error:
                        self.sendBadResponse(tag, b"Illegal syntax: " + str(error).encode())
                    except (imap4.IllegalOperation, imap4.IllegalMailboxEncoding) as error:
                        self.sendNegativeResponse(tag, str(error).encode())
                    if self.blocked is None:
                        self.blocked = blocked
                        self._unblock()
                    else:
                        self.blocked[:0] = blocked or []

            twisted_reactor().callLater(_delay_of(rule), resume)
        return None

    def _dispatch_guarded(self, tag: bytes, cmd: bytes, rest: bytes | None, uid: Any = None) -> Any:
        """Run the command; a bug in a handler is a tagged BAD for this client only.

        (Twisted would answer an untagged ``* BAD`` and leave the client waiting.)
        Syntax and state errors pass through to Twisted, which words them.
        """
        try:
            entry = self._synchronous_entry(cmd)
            if entry is not None:
                self._run_now(tag, entry, rest, uid)
                return None
            if uid is None:
                return super().dispatchCommand(tag, cmd, rest)
            return super().dispatchCommand(tag, cmd, rest, uid)
        except (IllegalClientResponse, imap4.IllegalOperation, imap4.IllegalMailboxEncoding):
            raise
        except Exception as error:  # noqa: BLE001 - reported to the client and the log
            self.server.log.exception("imap: %s failed", _text(cmd))
            self.sendBadResponse(tag, b"Server error: " + str(error).encode("utf-8", "replace")[:200])
            return None

    def _synchronous_entry(self, cmd: bytes) -> tuple[Any, ...] | None:
        """The command table entry for ``cmd`` in this state if every argument parser of
        it is synchronous (see _run_now), else None. The answer is kept for the
        connection, per state and verb (the table does not change while it lasts; verbs
        the table does not have are not kept): looking it up again for every command
        was a share of a ``FETCH n``."""
        key = (self.state, cmd)
        try:
            return self._synchronous_entries[key]
        except KeyError:
            pass
        entry = self.lookupCommand(cmd)
        if not entry:
            return None
        synchronous = len(entry) > 1 and all(parser in SYNCHRONOUS_PARSERS for parser in entry[1:])
        found = self._synchronous_entries[key] = entry if synchronous else None
        return found

    def _run_now(self, tag: bytes, entry: tuple[Any, ...], rest: bytes | None, uid: Any) -> None:
        """What Twisted's dispatch does for a command table ``entry``, without its chain of
        Deferreds: each argument parser returns at once here (SYNCHRONOUS_PARSERS), and
        a Deferred, two callbacks and an errback per argument were a tenth of the CPU
        of a ``FETCH n``. Errors are answered by Twisted's own errback, so a client sees
        the same BAD or NO as before."""
        handler, *parsers = entry
        args: list[Any] = [self, tag]
        try:
            for parser in parsers:
                arg, rest = parser(self, rest)
                args.append(arg)
            if rest:
                raise IllegalClientResponse("Too many arguments for command: " + repr(rest))
            if uid is None:
                handler(*args)
            else:
                handler(*args, uid=uid)
        except Exception:  # noqa: BLE001 - worded for the client as Twisted's dispatch does
            # Twisted private (IMAP4Server.__ebDispatch: the errback of its command dispatch) (checked against the pinned Twisted 26.10; tests/core/test_library_internals.py fails if it moves)
            cast(Any, self)._IMAP4Server__ebDispatch(Failure(), tag)

    @staticmethod
    def _fault_subject(verb: bytes, rest: bytes | None) -> bytes:
        """What fault rules match: the verb ("FETCH"), UID commands as their inner verb."""
        if verb == b"UID" and rest:
            return rest.split(None, 1)[0].upper()
        return verb

    def _fault_user(self, verb: bytes, rest: bytes | None) -> str | None:
        """Who a command is about, for user-scoped fault rules: the logged-in user, else
        the name LOGIN or AUTHENTICATE PLAIN (with an initial response) is logging in."""
        if self.account is not None:
            return str(self.account.user)
        if verb == b"LOGIN" and rest:
            try:
                name = imap4.splitQuoted(rest)[0]
            except (IndexError, imap4.MismatchedQuoting):
                return None
            return None if name.startswith(b"{") else _text(name)  # a literal: not read yet
        if verb == b"AUTHENTICATE" and rest:
            mechanism, _, initial = rest.strip().partition(b" ")
            if mechanism.upper() == b"PLAIN" and initial:
                try:
                    return _text(base64.b64decode(initial, validate=True).split(b"\0")[1])
                except (binascii.Error, IndexError):
                    return None
        return None

    def sendPositiveResponse(self, tag: Any = None, message: bytes = b"") -> None:
        if tag is None:
            super().sendPositiveResponse(tag, message)
        else:
            self._answer(super().sendPositiveResponse, tag, message)

    def sendNegativeResponse(self, tag: Any = None, message: Any = b"") -> None:
        message = message.encode() if isinstance(message, str) else message
        if tag is None:
            super().sendNegativeResponse(tag, message)
        else:
            self._answer(super().sendNegativeResponse, tag, message)

    def _answer(self, respond: Callable[[Any, bytes], None], tag: bytes, message: bytes, before: bytes = b"") -> None:
        """End a command: ``before`` (a FETCH answer), the updates for the selected folder
        and the tagged line from ``respond``, in that order, as one write, sent in this
        reactor turn and straight to the socket when nothing is queued before it
        (core ``write_now``).

        Written one by one, each reply registered the socket as a writer with the reactor
        and removed it again after the send: two epoll changes and most of a write
        buffer's work per command, a large share of a ``FETCH n`` round trip.
        """
        self._reply = [before] if before else []
        try:
            self.flush_updates()
            respond(tag, message)
        finally:
            reply, self._reply = self._reply, None
        write_now(self.transport, b"".join(reply))

    def flush_updates(self, idle: bool = False) -> None:
        """Tell the client what changed in its folder since it last heard."""
        if self.mbox is None or (not idle and self.verb in NO_UPDATE_VERBS):
            return
        allow_expunge = idle or self.verb not in NO_EXPUNGE_VERBS
        for line in self.mbox.sync(allow_expunge):
            self.sendUntaggedResponse(line, isAsync=not idle)

    def folder_changed(self) -> None:
        """The store announced a delivery to the selected folder (loop thread)."""
        if self.idling:
            self.flush_updates(idle=True)

    # -- authentication
    def authenticateLogin(self, user: bytes, passwd: bytes) -> Any:
        account = self._login(_text(user), _text(passwd), "LOGIN")
        if account is None:
            raise UnauthorizedLogin()
        return (IAccount, account, self._logged_out)

    def _login(self, user: str, password: str, mechanism: str) -> MailAccount | None:
        name = self.server.store.authenticate(user, password)
        self.server.record("auth", self.peer, ok=name is not None, user=user, mechanism=mechanism)
        return None if name is None else MailAccount(self.server, name, self.peer)

    def _logged_out(self) -> None:
        self.account = None

    def do_AUTHENTICATE(self, tag: bytes, line: bytes) -> None:
        mechanism, _, initial = line.strip().partition(b" ")
        if mechanism.upper() != b"PLAIN":
            self.sendNegativeResponse(tag, b"AUTHENTICATE mechanism not supported (PLAIN is)")
            return
        if initial:
            self._authenticate_plain(initial, tag)
            return
        response: defer.Deferred[bytes] = defer.Deferred()
        response.addCallback(self._authenticate_plain, tag)
        self.parseState = "pending"
        self._pendingLiteral = response
        self.sendContinuationRequest(b"")

    def _authenticate_plain(self, encoded: bytes, tag: bytes) -> None:
        if encoded.strip() == b"*":
            self.sendBadResponse(tag, b"AUTHENTICATE cancelled")
            return
        try:
            fields = base64.b64decode(encoded.strip() if encoded.strip() != b"=" else b"", validate=True).split(b"\0")
        except binascii.Error:
            self.sendBadResponse(tag, b"AUTHENTICATE response is not base64")
            return
        if len(fields) != 3:
            self.sendBadResponse(tag, b"AUTHENTICATE PLAIN expects authzid NUL authcid NUL password")
            return
        _, user, password = (_text(f) for f in fields)
        account = self._login(user, password, "PLAIN")
        if account is None:
            self.sendNegativeResponse(tag, b"[AUTHENTICATIONFAILED] Authentication failed")
            return
        self.account, self._onLogout, self.state = account, self._logged_out, "auth"
        self.sendPositiveResponse(tag, b"Authentication successful")
        self.setTimeout(self.POSTAUTH_TIMEOUT)

    unauth_AUTHENTICATE = _command(do_AUTHENTICATE, _S.arg_line)

    # -- selection
    def _cbSelectWork(self, mbox: SelectedFolder | None, cmdName: bytes, tag: bytes) -> None:
        if mbox is None:
            self.sendNegativeResponse(tag, b"[NONEXISTENT] No such mailbox")
            return
        flags = " ".join(mbox.getFlags()).encode()
        self.sendUntaggedResponse(b"FLAGS (%s)" % flags)
        self.sendUntaggedResponse(b"%d EXISTS" % mbox.getMessageCount())
        self.sendUntaggedResponse(b"%d RECENT" % mbox.getRecentCount())
        unseen = mbox.first_unseen()
        if unseen is not None:
            self.sendUntaggedResponse(b"OK [UNSEEN %d] first unseen" % unseen)
        permanent = " ".join(PERMANENT_FLAGS).encode() if mbox.isWriteable() else b""
        self.sendUntaggedResponse(b"OK [PERMANENTFLAGS (%s)] flags kept in Maildir" % permanent)
        self.sendUntaggedResponse(b"OK [UIDVALIDITY %d] UIDs valid" % mbox.getUIDValidity())
        self.sendUntaggedResponse(b"OK [UIDNEXT %d] predicted next UID" % mbox.getUIDNext())
        mode = b"READ-WRITE" if mbox.isWriteable() else b"READ-ONLY"
        mbox.addListener(self)
        self.mbox = mbox
        self.state = "select"
        self.sendPositiveResponse(tag, b"[" + mode + b"] " + cmdName + b" completed")

    def do_UNSELECT(self, tag: bytes) -> None:
        self.mbox.removeListener(self)
        self.mbox = None
        self.state = "auth"
        self.sendPositiveResponse(tag, b"UNSELECT completed")

    select_UNSELECT = _command(do_UNSELECT)

    # -- IDLE (RFC 2177)
    def do_IDLE(self, tag: bytes) -> None:
        self.flush_updates(idle=True)
        self.idling = True
        super().do_IDLE(tag)

    def parse_idle(self, *args: Any) -> None:
        self.idling = False
        super().parse_idle(*args)

    select_IDLE = _command(do_IDLE)
    auth_IDLE = select_IDLE

    # -- FETCH: \Seen on non-PEEK bodies, byte-exact sections
    def do_FETCH(self, tag: bytes, messages: Any, query: list[Any], uid: int = 0) -> None:
        plan = _fetch_plan(tuple(query))
        seqs = self.mbox.sequence_numbers(messages, bool(uid))
        if plan.sets_seen and self.mbox.isWriteable():
            self.mbox.mark_seen(seqs)
            if not plan.has_flags:
                query.append(imap4._FetchParser.Flags())
        if not plan.inline or self._large(seqs, plan):
            super().do_FETCH(tag, messages, query, uid)
            return
        found = self.mbox.fetch_numbered(seqs, stream=True)
        response = FetchResponse()
        self._fetch_responses(found, query, bool(uid), response)
        if not response.has_files:
            for _, message in found:
                message.close()
            answer = b"".join(cast("list[bytes]", response.pieces))
            self._answer(super().sendPositiveResponse, tag, b"FETCH completed", before=answer)
            return
        self._send_streamed(tag, response, found).addErrback(self._streaming_failed)

    @defer.inlineCallbacks
    def _send_streamed(
        self, tag: bytes, response: FetchResponse, found: list[tuple[int, StoredMessage]]
    ) -> Generator[defer.Deferred[None], None, None]:
        """Send a FETCH answer with message files in it; lines the client sends meanwhile
        wait (``blocked``, as during Twisted's own FETCH) and the idle timeout is off."""
        if self.blocked is None:
            self.blocked = []
        idle_timeout = self.setTimeout(None)
        try:
            for piece in response.runs():
                if isinstance(piece, bytes):
                    self.transport.write(piece)
                else:
                    assert piece.file is not None
                    yield send_file(self.transport, piece.file, piece.size)
        except ConnectionLost:
            return  # nothing more to say to a client that left
        finally:
            for _, message in found:
                message.close()
        self.setTimeout(idle_timeout)
        self.sendPositiveResponse(tag, b"FETCH completed")
        self._unblock()

    def _large(self, seqs: list[int], plan: FetchPlan) -> bool:
        """Several messages of more than INLINE_FETCH_BYTES in all to hold in memory (sizes
        from the view, unread): a streamed one counts only if some item reads its bytes."""
        if len(seqs) < 2:
            return False
        sizes = [self.mbox.view[seq - 1].size for seq in seqs]
        streamed = sum(1 for size in sizes if size >= STREAMED_MESSAGE_BYTES)
        if streamed > STREAMED_FILES_PER_FETCH or plan.reads_bytes:
            return sum(sizes) > INLINE_FETCH_BYTES
        return sum(size for size in sizes if size < STREAMED_MESSAGE_BYTES) > INLINE_FETCH_BYTES

    def _streaming_failed(self, failure: Any) -> None:
        # As Twisted does when its FETCH writer fails: part of the answer may be out, so
        # nothing can be said to the client reliably.
        self.server.log.error("imap: FETCH failed mid-answer: %s", failure.getTraceback())
        self.transport.loseConnection()

    def _fetch_responses(
        self, found: list[tuple[int, StoredMessage]], query: list[Any], uid: bool, write: FetchResponse
    ) -> None:
        """The untagged FETCH responses, as Twisted's spewMessage words them, built at once.

        Twisted writes each message through a chain of Deferreds and a scheduler turn
        per message, several times the work of the response itself for ``FETCH n``
        (py-spy: Deferred callbacks, the Cooperator's timer, the write buffer); every
        part writer used here is synchronous, so the whole answer is one write (or, with
        big messages in it, a few: see FetchResponse).
        """
        for seq, message in found:
            write(b"* %d FETCH (" % seq)
            saw_uid = False
            for part in query:
                if part.type == "uid":
                    saw_uid = True
                if part.type == "body":
                    self.spew_body(part, seq, message, write, None)
                else:
                    getattr(self, "spew_" + part.type)(seq, message, write, None)
                if part is not query[-1]:
                    write(b" ")
            if uid and not saw_uid:
                write(b" ")
                self.spew_uid(seq, message, write, None)
            write(b")\r\n")

    select_FETCH = _command(do_FETCH, arg_seqset, arg_fetchatt)

    # Twisted internal (spew_*: undocumented FETCH writers) (checked against the pinned Twisted 26.10; tests/core/test_library_internals.py fails if it moves)
    def spew_body(self, part: Any, id: int, msg: StoredMessage, _w: Any = None, _f: Any = None) -> None:
        if not (part.header or part.text or part.mime or part.empty or part.part):
            _w(b"BODY " + imap4.collapseNestedLists([imap4.getBodyStructure(msg)]))
            return
        specifier, fields, negate = "", [], False
        if part.header:
            specifier, fields, negate = "HEADER", list(part.header.fields or []), bool(part.header.negate)
        elif part.text:
            specifier = "TEXT"
        elif part.mime:
            specifier = "MIME"
        if _is_whole_message(part):
            _write_message(_w, b"BODY[]", msg)
            return
        try:
            data = msg.section(part.part or (), specifier, fields, negate)
        except LookupError:
            data = b""
        name = ".".join(str(index + 1) for index in (part.part or ()))
        if specifier:
            name = f"{name}.{specifier}" if name else specifier
            if fields:
                name += ".FIELDS" + (".NOT" if negate else "") + " (" + " ".join(_text(f).upper() for f in fields) + ")"
        label = b"BODY[" + name.encode() + b"]"
        if part.partialBegin is not None:
            data = data[part.partialBegin : part.partialBegin + part.partialLength]
            label += b"<%d>" % part.partialBegin
        _write_literal(_w, label, data)

    def spew_rfc822header(self, id: int, msg: StoredMessage, _w: Any = None, _f: Any = None) -> None:
        _write_literal(_w, b"RFC822.HEADER", msg.header)

    def spew_rfc822text(self, id: int, msg: StoredMessage, _w: Any = None, _f: Any = None) -> None:
        _write_literal(_w, b"RFC822.TEXT", msg.body)

    def spew_rfc822(self, id: int, msg: StoredMessage, _w: Any = None, _f: Any = None) -> None:
        _write_message(_w, b"RFC822", msg)

    def spew_flags(self, id: int, msg: StoredMessage, _w: Any = None, _f: Any = None) -> None:
        # Twisted's bytes, joined once instead of a networkString call per flag.
        write = self.transport.write if _w is None else _w
        write(b"FLAGS (" + " ".join(msg.getFlags()).encode("ascii") + b")")

    def spew_rfc822size(self, id: int, msg: StoredMessage, _w: Any = None, _f: Any = None) -> None:
        _w(b"RFC822.SIZE %d" % msg.size)

    # -- STORE on a read-only folder is NO, not a server error
    def do_STORE(self, tag: bytes, messages: Any, mode: bytes, flags: list[bytes], uid: int = 0) -> None:
        if not self.mbox.isWriteable():
            self.sendNegativeResponse(tag, b"[READ-ONLY] folder selected with EXAMINE")
            return
        super().do_STORE(tag, messages, mode, flags, uid)

    select_STORE = _command(do_STORE, _S.arg_seqset, _S.arg_atom, _S.arg_flaglist)

    # -- APPEND, COPY, MOVE, UID EXPUNGE with UIDPLUS response codes (RFC 4315)
    def do_APPEND(self, tag: bytes, mailbox: bytes, flags: Any, date: Any, message: Any) -> None:
        folder = _folder_key(imap4._parseMbox(mailbox))  # Twisted private, as Twisted decodes names
        if not self.server.store.folder_exists(self.account.user, folder):
            self.sendNegativeResponse(tag, b"[TRYCREATE] No such mailbox")
            return
        try:
            info = self.server.store.append(
                self.account.user, folder, message.read(), [_text(f) for f in flags or ()], _append_date(date)
            )
        except MailStoreError as error:
            self.sendNegativeResponse(tag, str(error).encode())
            return
        self.server.record("message", self.peer, action="append", user=self.account.user, folder=folder, count=1)
        uidvalidity = self.server.store.uidvalidity(self.account.user, folder)
        self.sendPositiveResponse(tag, b"[APPENDUID %d %d] APPEND completed" % (uidvalidity, info.uid))

    auth_APPEND = _command(do_APPEND, _S.arg_astring, _S.opt_plist, _S.opt_datetime, _S.arg_literal)
    select_APPEND = auth_APPEND

    def _copy(self, tag: bytes, messages: Any, mailbox: bytes, uid: int, move: bool) -> None:
        user = self.account.user
        target = _folder_key(imap4._parseMbox(mailbox))
        if not self.server.store.folder_exists(user, target):
            self.sendNegativeResponse(tag, b"[TRYCREATE] No such mailbox")
            return
        seqs = self.mbox.sequence_numbers(messages, bool(uid))
        pairs = []
        for seq in seqs:
            info = self.mbox.view[seq - 1]
            try:
                copied = self.server.store.copy(user, info.key, self.mbox.folder, target)
            except NoSuchMessage:
                continue
            pairs.append((info.uid, copied.uid))
        verb = "move" if move else "copy"
        self.server.record("message", self.peer, action=verb, user=user, folder=target, count=len(pairs))
        code = b""
        if pairs:
            uidvalidity = self.server.store.uidvalidity(user, target)
            code = b"[COPYUID %d %s %s] " % (
                uidvalidity,
                ",".join(str(src) for src, _ in pairs).encode(),
                ",".join(str(dst) for _, dst in pairs).encode(),
            )
        if move:
            if code:
                self.sendUntaggedResponse(b"OK " + code.strip())
            for seq in self.mbox.remove(seqs):
                self.sendUntaggedResponse(b"%d EXPUNGE" % seq)
            self.sendPositiveResponse(tag, b"MOVE completed")
        else:
            self.sendPositiveResponse(tag, code + b"COPY completed")

    def do_COPY(self, tag: bytes, messages: Any, mailbox: bytes, uid: int = 0) -> None:
        self._copy(tag, messages, mailbox, uid, move=False)

    def do_MOVE(self, tag: bytes, messages: Any, mailbox: bytes, uid: int = 0) -> None:
        if not self.mbox.isWriteable():
            self.sendNegativeResponse(tag, b"[READ-ONLY] folder selected with EXAMINE")
            return
        self._copy(tag, messages, mailbox, uid, move=True)

    select_COPY = _command(do_COPY, _S.arg_seqset, _S.arg_finalastring)
    select_MOVE = _command(do_MOVE, _S.arg_seqset, _S.arg_finalastring)

    def do_UID(self, tag: bytes, command: bytes, line: bytes) -> None:
        command = command.upper()
        if command == b"EXPUNGE":
            self._uid_expunge(tag, line)
        elif command in (b"COPY", b"MOVE", b"FETCH", b"STORE", b"SEARCH"):
            self.dispatchCommand(tag, command, line, uid=1)
        else:
            raise IllegalClientResponse(_text(command))

    select_UID = _command(do_UID, _S.arg_atom, _S.arg_line)

    def _uid_expunge(self, tag: bytes, line: bytes) -> None:
        if not self.mbox.isWriteable():
            self.sendNegativeResponse(tag, b"[READ-ONLY] folder selected with EXAMINE")
            return
        uids = _message_set(line.strip(), self.mbox.view[-1].uid if self.mbox.view else 0)
        wanted = {info.uid for info in self.mbox.view if info.uid in uids}
        for seq in self.mbox.expunge(only_uids=wanted):
            self.sendUntaggedResponse(b"%d EXPUNGE" % seq)
        self.sendPositiveResponse(tag, b"UID EXPUNGE completed")


@dataclass(frozen=True)
class FetchPlan:
    """What do_FETCH needs to know of a FETCH's items, worked out once per parsed item
    list (_fetch_plan): a client syncing one message at a time sends the same items a
    thousand times."""

    sets_seen: bool  # a non-PEEK body item: \Seen is set (RFC 3501 6.4.5)
    has_flags: bool  # FLAGS asked for (else a \Seen change adds it)
    inline: bool  # items, and all of them written at once (INLINE_FETCH_PARTS)
    reads_bytes: bool  # some item needs a streamed message's bytes in memory


@functools.lru_cache(maxsize=256)
def _fetch_plan(items: tuple[Any, ...]) -> FetchPlan:
    # Keyed by the parsed items themselves (by identity): arg_fetchatt hands out the
    # same ones for the same text.
    return FetchPlan(
        sets_seen=any(_sets_seen(part) for part in items),
        has_flags=any(part.type == "flags" for part in items),
        inline=bool(items) and all(part.type in INLINE_FETCH_PARTS for part in items),
        reads_bytes=any(_reads_message_bytes(part) for part in items),
    )


def _is_whole_message(part: Any) -> bool:
    """``BODY[]`` (or BODY.PEEK[]) or ``RFC822``: what a streamed message sends from its file."""
    if part.type == "rfc822":
        return True
    return part.type == "body" and bool(part.empty) and not part.part and part.partialBegin is None


def _reads_message_bytes(part: Any) -> bool:
    """Whether a FETCH item needs a streamed message's bytes in memory."""
    return part.type not in ("uid", "flags", "internaldate", "rfc822size") and not _is_whole_message(part)


def _sets_seen(part: Any) -> bool:
    if part.type in ("rfc822", "rfc822text"):
        return True
    if part.type != "body" or part.peek:
        return False
    return bool(part.header or part.text or part.mime or part.empty or part.part)


def _write_literal(write: Callable[[bytes], object], label: bytes, data: bytes) -> None:
    """``label {n}CRLF`` then the n bytes, as two writes: concatenating them copied the
    whole message (15 MiB for a big attachment) twice before the send."""
    write(label + b" {%d}\r\n" % len(data))
    write(data)


def _write_message(write: Callable[[bytes], object], label: bytes, message: StoredMessage) -> None:
    """``label {n}CRLF`` and the whole message: from its file when ``write`` builds a
    FetchResponse and the message is a streamed one, else from its bytes."""
    if isinstance(write, FetchResponse) and message.file is not None:
        write(label + b" {%d}\r\n" % message.size)
        write.message_file(message)
    else:
        _write_literal(write, label, message.raw)


def _delay_of(rule: Any) -> float:
    return float(rule.params["seconds"])


class ImapFactory(protocol.ServerFactory):
    noisy = False

    def __init__(self, server: ImapServer, starttls: bool):
        self.server = server
        self.starttls = starttls

    def buildProtocol(self, addr: Any) -> ImapProtocol:
        built = ImapProtocol(self.server, self.server.tls_options if self.starttls else None)
        built.factory = self
        return built


# -- the server --------------------------------------------------------------------------------


class ImapServer(TwistedServer):
    name = "imap"
    description = "IMAP4rev1 (IDLE, UIDPLUS, MOVE, STARTTLS) on the shared Maildir mail store"
    scheme = "imap"
    options = (
        Option("port", PORT, 1143, "IMAP port (STARTTLS offered)"),
        Option("tls_port", PORT, 1993, "IMAP over implicit TLS (imaps)"),
    )
    stores = ("users", "mail")
    fault_subject = 'CONNECT, then the command verb ("LOGIN", "FETCH"; UID FETCH as "FETCH")'
    fault_user = "the name of LOGIN or AUTHENTICATE PLAIN (with an initial response), then the logged-in user"
    fault_actions = {
        "error": FaultAction(
            "answer the command with the tagged params.reply instead (at CONNECT: * BYE and a close)",
            (Param("reply", IMAP_REPLY, default=DEFAULT_FAULT_REPLY, help="NO or BAD and text; the tag is added"),),
        ),
        "delay": DELAY,
        "disconnect": DISCONNECT,
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.store = self.core.shared(MailStore)
        self.unsubscribed: dict[str, set[str]] = {}
        self._watchers: dict[tuple[str, str], list[SelectedFolder]] = {}
        self._unsubscribe_store: Callable[[], None] | None = None
        self.tls_options: Any = None
        # FETCH responses are written by an iterator of steps (Twisted's spewMessage).
        # Its default scheduler takes one step per reactor turn: ~4,000 turns for
        # FETCH 1:1000. A Cooperator runs steps back to back for 10 ms slices, then
        # lets the reactor turn (other clients, a paused transport) as before.
        self._cooperator = task.Cooperator(scheduler=lambda step: twisted_reactor().callLater(0, step))

    def run_in_slices(self, steps: Iterable[Any]) -> defer.Deferred[Any]:
        """An IMAP4Server scheduler: run ``steps`` (waiting on any Deferred one yields)."""
        return self._cooperator.cooperate(iter(steps)).whenDone()

    def _bind(self) -> None:
        self.tls_options = self.core.tls.twisted_options()  # one TLS context for every STARTTLS
        self._unsubscribe_store = self.store.subscribe(self._store_changed)
        self.listen("main", ImapFactory(self, starttls=True), self.settings.port)
        self.listen("tls", ImapFactory(self, starttls=False), self.settings.tls_port, tls=True)

    def _unbind(self) -> None:
        if self._unsubscribe_store is not None:
            self._unsubscribe_store()
            self._unsubscribe_store = None
        super()._unbind()
        self._watchers.clear()

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        return probe_greeting(host, port, timeout, expect=b"* OK", send_after=b"p LOGOUT\r\n")

    # -- new mail for selected folders (the store calls from any thread)
    def watch(self, folder: SelectedFolder) -> None:
        watchers = self._watchers.setdefault((folder.user, folder.folder), [])
        if folder not in watchers:
            watchers.append(folder)

    def unwatch(self, folder: SelectedFolder) -> None:
        watchers = self._watchers.get((folder.user, folder.folder), [])
        if folder in watchers:
            watchers.remove(folder)

    def _store_changed(self, user: str, folder: str) -> None:
        if self.core.loop.in_loop_thread:
            self._announce(user, folder)
        else:
            self.core.loop.call_soon(self._announce, user, folder)

    def _announce(self, user: str, folder: str) -> None:
        for selected in list(self._watchers.get((user, _folder_key(folder)), [])):
            for listener in list(selected.listeners):
                listener.folder_changed()

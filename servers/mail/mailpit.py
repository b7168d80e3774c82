"""MailpitView: the mail store seen as Mailpit sees its mailbox, in Mailpit's JSON shapes.

Follows Mailpit's source (github.com/axllent/mailpit: ``internal/storage``,
``server/apiv1``, ``internal/tools``): one message per SMTP transaction, an ID per
message, a Read state, tags, summaries with a snippet, and messages with their parts.
The store stays the only state (the contract of :mod:`servers.mail.store`):

- **One message, many copies.** SMTP delivers one copy per recipient mailbox. Copies of
  one transaction have the same bytes after the envelope headers the store prepends
  (``Return-Path``, ``Delivered-To``), so they form one Mailpit message whose ID is the
  smallest store key among them: path-safe, unique, and stable while that copy exists.
- **Read is \\Seen.** A message is read when every copy has the Maildir ``S`` flag, so
  reading in the API is what an IMAP client sees as \\Seen, and the reverse.
- **Tags are IMAP keywords** kept in the folder's uidlist (a space, which Mailpit allows
  in tags and IMAP does not in keywords, is stored as ``~``, which tags never contain).
  Tags Mailpit derives on arrival (``X-Tags``, plus addresses) are written once and
  marked with the keyword ``$MailpitTagged`` so a removed tag stays removed.

Parsing is cached per store key: a Maildir message's bytes never change, only its flags.
The cache is also kept on disk (``.mailpit-index.json`` in the store's root, a name the
store never takes for a mailbox), so the first list after a restart does not re-parse
every message; an entry is used only for a key of that user and folder whose file has the
recorded size, so it cannot describe other bytes. The grouped, sorted list is reused
while every folder's :class:`~servers.mail.store.FolderSnapshot` is the same object
(the store keeps it while the folder is unchanged on disk) and no login was noted.
"""

from __future__ import annotations

import base64
import collections
import datetime
import email
import email.policy
import email.utils
import hashlib
import html
import html.parser
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from typing import Any

from ..core.durable import write_atomic
from .store import MailStore, MailStoreError, MessageInfo

SEEN = "\\Seen"
TAGGED_MARK = "$MailpitTagged"
PARSED_KEPT = 20_000  # parsed messages cached (by store key)
SNIPPET_LIMIT = 200  # bytes, as tools.CreateSnippet
TAG_INVALID = re.compile(r"[^a-zA-Z0-9\-\ \_\.@]")  # tools.tagsInvalidChars
TAG_VALID = re.compile(r"^([a-zA-Z0-9\-\ \_\.@]){1,100}$")  # config.ValidTagRegexp
PLUS_ADDRESS = re.compile(r"^(.+?)\+(.*)@")  # storage.addressPlusRe ((?U) makes Go's lazy)
ENVELOPE_HEADERS = (b"return-path:", b"delivered-to:")
INDEX_FILE = ".mailpit-index.json"  # in the store's root; dot names are never mailboxes
INDEX_FORMAT = 1  # bump when Parsed or parse_message changes: older files are ignored
INDEX_SAVE_INTERVAL = 5.0  # seconds between saves of the on-disk parse cache
TOKEN_PUNCTUATION = "!#$%&'*+-.^_`|~"


# -- formats shared with Go --------------------------------------------------------------


def go_time(moment: datetime.datetime) -> str:
    """A time as Go's encoding/json writes it (RFC 3339, trailing zeros of the
    fraction dropped, ``Z`` for a zero offset)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    if fraction:
        text += "." + fraction
    offset = moment.utcoffset()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def received_time(epoch: float) -> datetime.datetime:
    """Mailpit keeps Created in milliseconds, in the server's local zone."""
    return datetime.datetime.fromtimestamp(int(epoch * 1000) / 1000).astimezone()


def canonical_header_key(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: ``message-id`` -> ``Message-Id``; a name
    with a byte that is not an RFC 7230 token character is returned unchanged."""
    if not name or any(not (c.isascii() and (c.isalnum() or c in TOKEN_PUNCTUATION)) for c in name):
        return name
    result, upper = [], True
    for char in name:
        result.append(char.upper() if upper else char.lower())
        upper = char == "-"
    return "".join(result)


def clean_tag(tag: str) -> str:
    """tools.CleanTag: invalid characters become spaces, spaces collapse, 100 at most."""
    return re.sub(r"\s+", " ", TAG_INVALID.sub(" ", tag)).strip()[:100]


def tag_to_keyword(tag: str) -> str:
    return tag.replace(" ", "~")


def keyword_to_tag(keyword: str) -> str | None:
    if keyword.startswith(("\\", "$")):
        return None
    tag = keyword.replace("~", " ")
    return tag if TAG_VALID.match(tag) else None


class _TextExtractor(html.parser.HTMLParser):
    """html2text.Strip: the text nodes, minus script/style/head and similar."""

    SKIPPED = {"script", "title", "head", "link", "meta", "style", "noscript"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIPPED and tag not in ("link", "meta"):
            self.skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED and tag not in ("link", "meta") and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


_BLOCK_END = re.compile(
    r"(?mi)</(div|p|td|th|h[1-6]|ul|ol|li|address|article|aside|blockquote|dl|dt|footer|header|hr|main|nav|pre|table|thead|tfoot|video)><"
)


def strip_html(markup: str) -> str:
    markup = _BLOCK_END.sub(r"</\1> <", markup)
    markup = re.sub(r"(?mi)<(br /|br)>", " ", markup)
    markup = re.sub(r"(?mi)<(img)", r" <\1", markup)
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    text = "".join(extractor.parts).replace("\ufeff", " ")
    text = "".join(c if c.isprintable() else " " for c in text)
    return re.sub(r"\s+", " ", text).strip()


def _truncate(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore") + "..."


def snippet(text: str, markup: str) -> str:
    """tools.CreateSnippet: from the stripped HTML if there is HTML, else the text."""
    text, markup = text.strip(), markup.strip()
    if markup:
        return _truncate(strip_html(markup), SNIPPET_LIMIT)
    if text:
        return _truncate(re.sub(r"\s+", " ", text.replace("\ufeff", " ")).strip(), SNIPPET_LIMIT)
    return ""


def search_clean(text: str) -> str:
    """storage.cleanString: what search text and search words are compared as."""
    text = text.replace("\ufeff", " ")
    text = re.sub(r"(\r?\n|\t|>|<|\"|,|;|\(|\))", " ", text)
    return " ".join(text.split()).lower()


# -- one parsed message --------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """An attachment or inline part (storage.Attachment), with its decoded content."""

    part_id: str
    file_name: str
    content_type: str
    content_id: str
    content: bytes
    inline: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "PartID": self.part_id,
            "FileName": self.file_name or self.content_id,
            "ContentType": self.content_type,
            "ContentID": self.content_id,
            "Size": len(self.content),
            "Checksums": {
                "MD5": hashlib.md5(self.content, usedforsecurity=False).hexdigest(),
                "SHA1": hashlib.sha1(self.content, usedforsecurity=False).hexdigest(),
                "SHA256": hashlib.sha256(self.content).hexdigest(),
            },
        }


@dataclass(frozen=True)
class Parsed:
    """What Mailpit stores about a message, computed once per store key."""

    group: str  # copies of one delivery share it
    message_id: str
    sender: dict[str, str]
    to: list[dict[str, str]]
    cc: list[dict[str, str]]
    bcc: list[dict[str, str]]
    reply_to: list[dict[str, str]]
    subject: str
    date: datetime.datetime | None
    return_path: str
    envelope_to: tuple[str, ...]
    snippet: str
    attachments: int
    inlines: int
    search_text: str
    derived_tags: tuple[str, ...]


def parsed_to_json(parsed: Parsed) -> dict[str, Any]:
    data = {name: getattr(parsed, name) for name in Parsed.__dataclass_fields__}
    data["date"] = parsed.date.isoformat() if parsed.date is not None else None
    return data


def parsed_from_json(data: dict[str, Any]) -> Parsed:
    return Parsed(
        **{
            **data,
            "date": datetime.datetime.fromisoformat(data["date"]) if data["date"] is not None else None,
            "envelope_to": tuple(data["envelope_to"]),
            "derived_tags": tuple(data["derived_tags"]),
        }
    )


def body_offset(data: bytes) -> int:
    """Where the message starts after the envelope headers the store prepends."""
    offset = 0
    while True:
        end = data.find(b"\n", offset)
        if end < 0 or not data[offset : offset + 16].lower().startswith(ENVELOPE_HEADERS):
            return offset
        offset = end + 1


def _addresses(message: Message, name: str, values: list[str] | None = None) -> list[dict[str, str]]:
    if values is None:
        values = [str(value) for value in message.get_all(name, [])]
    found = []
    for display, address in email.utils.getaddresses(values):
        if address or display:
            found.append({"Name": display, "Address": address})
    return found


def _decoded_text(part: Message) -> str:
    try:
        text = part.get_content()  # type: ignore[attr-defined]
        if isinstance(text, str):
            return text
    except (LookupError, ValueError, KeyError, AttributeError):
        pass
    payload = part.get_payload(decode=True)
    return bytes(payload).decode("utf-8", "replace") if isinstance(payload, bytes) else ""


@dataclass
class MimeTree:
    """enmime's sorting of the parts: the text and HTML bodies, inlines, attachments."""

    text: str = ""
    html: str = ""
    inline: list[Part] = field(default_factory=list)
    attachments: list[Part] = field(default_factory=list)

    def parts(self) -> Iterator[Part]:
        yield from self.inline
        yield from self.attachments


def parse_mime(message: Message) -> MimeTree:
    """Walk the MIME tree with enmime's part IDs (root "0", children "1", "2", "1.1")."""
    tree = MimeTree()

    def visit(part: Message, part_id: str) -> None:
        if part.is_multipart():
            for index, child in enumerate(part.get_payload(), start=1):  # type: ignore[union-attr, arg-type]
                visit(child, str(index) if part_id == "0" else f"{part_id}.{index}")
            return
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        file_name = part.get_filename() or ""
        content_id = str(part.get("Content-Id", "")).strip().strip("<>")
        if disposition != "attachment" and not file_name and content_type in ("text/plain", "text/html"):
            if content_type == "text/plain" and not tree.text:
                tree.text = _decoded_text(part).replace("\r\n", "\n")
                return
            if content_type == "text/html" and not tree.html:
                tree.html = _decoded_text(part).replace("\r\n", "\n")
                return
        payload = part.get_payload(decode=True)
        content = bytes(payload) if isinstance(payload, bytes) else b""
        if content_type == "message/rfc822" and not content:
            inner = part.get_payload()
            content = (
                inner[0].as_bytes() if isinstance(inner, list) and inner and isinstance(inner[0], Message) else b""
            )
        inline = disposition == "inline" or (disposition is None and bool(content_id))
        if not (file_name or content_id):
            inline = False
        target = tree.inline if inline else tree.attachments
        target.append(Part(part_id, file_name, content_type, content_id, content, inline))

    visit(message, "0")
    if not tree.text and tree.html:
        # enmime down-converts the HTML when there is no text part (Mailpit shows that Text)
        tree.text = strip_html(tree.html)
    return tree


def parse_message(data: bytes) -> tuple[Parsed, EmailMessage, MimeTree]:
    offset = body_offset(data)
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    tree = parse_mime(message)
    # every header value once: policy.default parses a header again on each get()
    fetched: dict[str, list[str]] = {}

    def values(name: str) -> list[str]:
        if name not in fetched:
            fetched[name] = [str(value) for value in message.get_all(name, [])]
        return fetched[name]

    def first(name: str) -> str:
        found = values(name)
        return found[0] if found else ""

    sender_list = _addresses(message, "From", values("From"))
    sender = sender_list[0] if sender_list else {"Name": first("From"), "Address": ""}
    to, cc, bcc = (_addresses(message, name, values(name)) for name in ("To", "Cc", "Bcc"))
    try:
        date = email.utils.parsedate_to_datetime(first("Date")) if first("Date") else None
    except (TypeError, ValueError):
        date = None
    search_parts = [first(name) for name in ("From", "Subject", "To", "Cc", "Bcc", "Reply-To", "Return-Path")]
    stripped = strip_html(tree.html) if tree.html else ""
    search_parts.append(stripped or tree.text)
    search_parts += [part.file_name for part in tree.attachments]
    derived: list[str] = []
    x_tags = first("X-Tags").strip()
    if x_tags:
        derived += x_tags.split(",")
    for address in [*(a["Address"] for a in to + cc + bcc), sender["Address"]]:
        found = PLUS_ADDRESS.match(address)
        if found:
            derived += found.group(2).split("+")
    tags: list[str] = []
    for tag in (clean_tag(tag) for tag in derived):
        if tag and TAG_VALID.match(tag) and tag.lower() not in (t.lower() for t in tags):
            tags.append(tag)
    parsed = Parsed(
        group=hashlib.sha1(data[offset:], usedforsecurity=False).hexdigest(),
        message_id=first("Message-Id").strip().strip("<>"),
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=_addresses(message, "Reply-To", values("Reply-To")),
        subject=first("Subject"),
        date=date,
        return_path=first("Return-Path").strip().strip("<>"),
        envelope_to=tuple(values("Delivered-To")),
        snippet=snippet(tree.text, tree.html),
        attachments=len(tree.attachments),
        inlines=len(tree.inline),
        search_text=search_clean(" ".join(search_parts)),
        derived_tags=tuple(tags),
    )
    return parsed, message, tree


# -- the mailbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    user: str
    folder: str
    info: MessageInfo


@dataclass
class Entry:
    """One Mailpit message: every stored copy of one delivery."""

    id: str
    parsed: Parsed
    copies: list[Copy]
    envelope_to: list[str] = field(default_factory=list)  # every copy's Delivered-To
    username: str = ""  # the SMTP AUTH login that delivered it, when known

    @property
    def bcc(self) -> list[dict[str, str]]:
        """smtpd.SaveToDatabase adds envelope recipients missing from the headers to Bcc."""
        parsed = self.parsed
        named = {a["Address"].lower() for a in (*parsed.to, *parsed.cc, *parsed.bcc)}
        missing = [a for a in self.envelope_to if a.lower() not in named]
        return [*parsed.bcc, *({"Name": "", "Address": a} for a in dict.fromkeys(missing))]

    @property
    def first(self) -> Copy:
        return next(copy for copy in self.copies if copy.info.key == self.id)

    @property
    def created(self) -> float:
        return min(copy.info.internal_date for copy in self.copies)

    @property
    def size(self) -> int:
        return self.first.info.size

    @property
    def read(self) -> bool:
        return all(SEEN in copy.info.flags for copy in self.copies)

    @property
    def tags(self) -> list[str]:
        found: dict[str, str] = {}
        for copy in self.copies:
            for keyword in copy.info.flags:
                tag = keyword_to_tag(keyword)
                if tag is not None:
                    found.setdefault(tag.lower(), tag)
        return sorted(found.values())  # Mailpit: ORDER BY Name (SQLite's binary collation)

    @property
    def users(self) -> list[str]:
        return sorted({copy.user for copy in self.copies})

    def summary(self) -> dict[str, Any]:
        """storage.MessageSummary as List() returns it: empty address lists are null
        (the metadata is stored with omitempty), ReplyTo excepted."""
        parsed = self.parsed
        return {
            "ID": self.id,
            "MessageID": parsed.message_id,
            "Read": self.read,
            "From": parsed.sender,
            "To": parsed.to or None,
            "Cc": parsed.cc or None,
            "Bcc": self.bcc or None,
            "ReplyTo": parsed.reply_to,
            "Subject": parsed.subject,
            "Created": go_time(received_time(self.created)),
            "Username": self.username,
            "Tags": self.tags,
            "Size": self.size,
            "Attachments": parsed.attachments,
            "Snippet": parsed.snippet,
            # refservers' additions (Mailpit clients ignore unknown keys):
            "Users": self.users,
            "Envelope": {"From": parsed.return_path, "To": self.envelope_to},
        }

    def broadcast_summary(self) -> dict[str, Any]:
        """The summary of a "new" event: Mailpit sends empty lists there, not null."""
        data = self.summary()
        for name in ("To", "Cc", "Bcc"):
            data[name] = data[name] or []
        return data


class MailpitView:
    """Mailpit's mailbox over a :class:`MailStore` (thread-safe; runs on executor threads).

    One per Core (``core.shared(MailpitView)``), so the API and the events share the cache.
    """

    def __init__(self, store: MailStore):
        self.store = store
        self._parsed: collections.OrderedDict[str, Parsed] = collections.OrderedDict()
        self._usernames: dict[str, str] = {}  # store key -> login that delivered it
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] = lambda: None
        # the last entries() build, reused while its snapshots and logins are unchanged
        self._built: tuple[int, list[tuple[str, str, Any]], list[Entry]] | None = None
        self._logins_noted = 0  # bumped by _note_login: Username is part of a build
        # the on-disk parse cache: (user, folder, key) -> (size, Parsed), loaded lazily
        self._stored: dict[tuple[str, str, str], tuple[int, Parsed]] | None = None
        self._unsaved = 0
        self._saved_at = 0.0

    @classmethod
    def from_core(cls, core: Any) -> MailpitView:
        view = cls(core.shared(MailStore))
        view._unsubscribe = core.journal.subscribe(view._note_login)
        return view

    def close(self) -> None:
        self._unsubscribe()
        self._save_index(force=True)

    def _note_login(self, event: Any) -> None:
        """Mailpit's Username: the SMTP AUTH login (or the send API's Basic user) that
        delivered the message. The journal says which keys a login delivered; this is
        kept in memory, so it is empty for messages delivered before a restart."""
        login = event.details.get("auth_user") if event.kind == "message" else None
        if login:
            with self._lock:
                self._logins_noted += 1
                for key in event.details.get("keys", ()):
                    self._usernames[key] = str(login)
                    if len(self._usernames) > PARSED_KEPT:
                        self._usernames.pop(next(iter(self._usernames)))

    def username(self, entry: Entry) -> str:
        with self._lock:
            return next((self._usernames[c.info.key] for c in entry.copies if c.info.key in self._usernames), "")

    # -- reading -------------------------------------------------------------------------
    def copies(self, user: str | None = None) -> Iterator[Copy]:
        for name, folder, snapshot in self._snapshots([user] if user else self.store.mailbox_users()):
            for info in snapshot.messages:
                yield Copy(name, folder, info)

    def _snapshots(self, users: Iterable[str]) -> list[tuple[str, str, Any]]:
        found = []
        for name in users:
            try:
                if not self.store.user_dir(name).is_dir():
                    continue
                for folder in self.store.folders(name):
                    found.append((name, folder, self.store.snapshot(name, folder)))
            except MailStoreError:
                continue
        return found

    def entries(self, user: str | None = None) -> list[Entry]:
        """Every message, newest first (Mailpit orders by Created, descending)."""
        found = self._all_entries()
        if user:
            return [entry for entry in found if any(copy.user == user for copy in entry.copies)]
        return list(found)  # a copy: callers may reorder or filter theirs

    def _all_entries(self) -> list[Entry]:
        snapshots = self._snapshots(self.store.mailbox_users())
        with self._lock:
            logins, built = self._logins_noted, self._built
        if (
            built is not None
            and built[0] == logins
            and len(built[1]) == len(snapshots)
            and all(
                (name, folder) == kept[:2] and snapshot is kept[2]
                for (name, folder, snapshot), kept in zip(snapshots, built[1], strict=True)
            )
        ):
            return built[2]
        found = self._build(snapshots)
        with self._lock:
            # keyed on the snapshots read before the build: one that wrote derived tags
            # changed them, so the next call builds once more and sees the tags
            self._built = (logins, snapshots, found)
        self._save_index()
        return found

    def _build(self, snapshots: list[tuple[str, str, Any]]) -> list[Entry]:
        groups: dict[str, Entry] = {}
        for name, folder, snapshot in snapshots:
            for info in snapshot.messages:
                copy = Copy(name, folder, info)
                parsed = self._parse(copy)
                if parsed is None:
                    continue
                entry = groups.get(parsed.group)
                if entry is None:
                    entry = groups[parsed.group] = Entry(copy.info.key, parsed, [])
                entry.copies.append(copy)
                entry.id = min(entry.id, copy.info.key)
                entry.envelope_to += [a for a in parsed.envelope_to if a not in entry.envelope_to]
        found = list(groups.values())
        self._apply_derived_tags(found)
        for entry in found:
            entry.username = self.username(entry)
        found.sort(key=lambda entry: (entry.created, entry.id), reverse=True)
        return found

    def entry(self, message_id: str) -> Entry | None:
        for entry in self.entries():
            if entry.id == message_id or any(copy.info.key == message_id for copy in entry.copies):
                return entry
        return None

    def raw(self, entry: Entry) -> bytes:
        first = entry.first
        return self.store.read(first.user, first.info.key, first.folder)

    def full(self, entry: Entry) -> tuple[EmailMessage, MimeTree, bytes]:
        data = self.raw(entry)
        _, message, tree = parse_message(data)
        return message, tree, data

    # -- changing ------------------------------------------------------------------------
    def set_read(self, entries: Iterable[Entry], read: bool) -> list[Entry]:
        """Set or clear \\Seen on every copy; the entries whose state changed."""
        changed = [entry for entry in entries if entry.read != read]
        self._change_flags(
            (copy for entry in changed for copy in entry.copies),
            lambda flags: flags | {SEEN} if read else flags - {SEEN},
        )
        return changed

    def set_tags(self, entry: Entry, tags: Iterable[str]) -> list[str]:
        """storage.SetMessageTags: replace the message's tags; returns the tags applied."""
        applied: list[str] = []
        for tag in (clean_tag(tag) for tag in tags):
            if tag and TAG_VALID.match(tag) and tag.lower() not in (t.lower() for t in applied):
                applied.append(tag)
        keywords = {tag_to_keyword(tag) for tag in applied}

        def replace(flags: frozenset[str]) -> frozenset[str]:
            kept = {flag for flag in flags if keyword_to_tag(flag) is None}
            return frozenset(kept | keywords | {TAGGED_MARK})

        self._change_flags(entry.copies, replace)
        return applied

    def rename_tag(self, old: str, new: str, entries: Iterable[Entry]) -> None:
        new = clean_tag(new)
        if not new or not TAG_VALID.match(new):
            raise ValueError(f"invalid tag name: {new!r}")
        for entry in entries:
            tags = entry.tags
            if any(tag.lower() == old.lower() for tag in tags):
                self.set_tags(entry, [new if tag.lower() == old.lower() else tag for tag in tags])

    def delete(self, entries: Iterable[Entry]) -> list[str]:
        """Remove every copy; the IDs of the messages removed."""
        by_folder: dict[tuple[str, str], list[str]] = {}
        removed = []
        for entry in entries:
            removed.append(entry.id)
            for copy in entry.copies:
                by_folder.setdefault((copy.user, copy.folder), []).append(copy.info.key)
        for (user, folder), keys in by_folder.items():
            try:
                self.store.delete(user, keys, folder)
            except MailStoreError:
                continue
        return removed

    # -- internals -----------------------------------------------------------------------
    def _parse(self, copy: Copy) -> Parsed | None:
        key = copy.info.key
        with self._lock:
            parsed = self._parsed.get(key)
            if parsed is not None:
                self._parsed.move_to_end(key)
                return parsed
            stored = self._load_index().get((copy.user, copy.folder, key))
        if stored is not None and stored[0] == copy.info.size:
            parsed = stored[1]
        else:
            try:
                data = self.store.read(copy.user, key, copy.folder)
            except MailStoreError:
                return None
            parsed = parse_message(data)[0]
        with self._lock:
            if self._stored is not None and (stored is None or stored[1] is not parsed):
                self._stored[(copy.user, copy.folder, key)] = (copy.info.size, parsed)
                self._unsaved += 1
            self._parsed[key] = parsed
            while len(self._parsed) > PARSED_KEPT:
                self._parsed.popitem(last=False)
        return parsed

    # -- the on-disk parse cache ---------------------------------------------------------
    @property
    def _index_path(self) -> Any:
        return self.store.root / INDEX_FILE

    def _load_index(self) -> dict[tuple[str, str, str], tuple[int, Parsed]]:
        """The parse cache a previous run saved (lock held); empty if absent or unreadable."""
        if self._stored is None:
            self._stored = {}
            try:
                saved = json.loads(self._index_path.read_bytes())
                if saved.get("format") == INDEX_FORMAT:
                    for user, folder, key, size, parsed in saved["messages"]:
                        self._stored[(user, folder, key)] = (size, parsed_from_json(parsed))
            except (OSError, ValueError, TypeError, KeyError):
                self._stored = {}  # a cache: a missing or damaged one is rebuilt
        return self._stored

    def _save_index(self, force: bool = False) -> None:
        """Write the parse cache of the messages that exist now (at most every few seconds)."""
        with self._lock:
            if self._stored is None or not self._unsaved:
                return
            if not force and time.monotonic() - self._saved_at < INDEX_SAVE_INTERVAL:
                return
            self._unsaved, self._saved_at = 0, time.monotonic()
            stored = dict(self._stored)
        live = {
            (name, folder, info.key)
            for name, folder, snapshot in self._snapshots(self.store.mailbox_users())
            for info in snapshot.messages
        }
        messages = [[*place, size, parsed_to_json(parsed)] for place, (size, parsed) in stored.items() if place in live]
        with self._lock:
            if self._stored is not None:
                for place in [place for place in self._stored if place not in live and place in stored]:
                    del self._stored[place]
        try:
            write_atomic(
                self._index_path, json.dumps({"format": INDEX_FORMAT, "messages": messages}).encode(), sync_dir=False
            )
        except OSError:
            pass  # a cache: the next save tries again

    def _apply_derived_tags(self, entries: list[Entry]) -> None:
        """Write the tags Mailpit derives on arrival, once per message (see module doc)."""
        for entry in entries:
            if not entry.parsed.derived_tags or any(TAGGED_MARK in copy.info.flags for copy in entry.copies):
                continue
            self.set_tags(entry, [*entry.tags, *entry.parsed.derived_tags])
            entry.copies = [self._refreshed(copy) for copy in entry.copies]

    def _refreshed(self, copy: Copy) -> Copy:
        try:
            return Copy(copy.user, copy.folder, self.store.message(copy.user, copy.info.key, copy.folder))
        except MailStoreError:
            return copy

    def _change_flags(self, copies: Iterable[Copy], change: Any) -> None:
        by_folder: dict[tuple[str, str], dict[str, frozenset[str]]] = {}
        for copy in copies:
            by_folder.setdefault((copy.user, copy.folder), {})[copy.info.key] = change(copy.info.flags)
        for (user, folder), flags in by_folder.items():
            try:
                self.store.set_flags_many(user, flags, folder)
            except MailStoreError:
                continue


def headers_json(data: bytes) -> dict[str, list[str]]:
    """Go's mail.ReadMessage(...).Header: canonical keys, values in order, unfolded."""
    headers: dict[str, list[str]] = {}
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines: list[str] = []
    for raw_line in head.decode("utf-8", "replace").splitlines():
        if raw_line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + raw_line.strip()
        else:
            lines.append(raw_line.rstrip())
    for line in lines:
        name, colon, value = line.partition(":")
        if colon and name.strip():
            headers.setdefault(canonical_header_key(name.strip()), []).append(value.strip())
    return headers


def message_json(entry: Entry, message: EmailMessage, tree: MimeTree, data: bytes) -> dict[str, Any]:
    """storage.Message as GetMessage returns it, plus ``Read`` (older clients need it)."""
    parsed = entry.parsed
    date = parsed.date or received_time(entry.created)
    unsubscribe = str(message.get("List-Unsubscribe", ""))
    links = re.findall(r"<([^>]+)>", unsubscribe)
    return {
        "ID": entry.id,
        "MessageID": parsed.message_id,
        "From": parsed.sender,
        "To": parsed.to,
        "Cc": parsed.cc,
        "Bcc": entry.bcc,
        "ReplyTo": parsed.reply_to,
        "ReturnPath": parsed.return_path or parsed.sender.get("Address", ""),
        "Subject": parsed.subject,
        "ListUnsubscribe": {
            "Header": unsubscribe,
            "Links": links,
            "Errors": "",
            "HeaderPost": str(message.get("List-Unsubscribe-Post", "")),
        },
        "Date": go_time(date),
        "Tags": entry.tags,
        "Username": entry.username,
        "Text": tree.text,
        "HTML": tree.html,
        "Size": len(data),
        "Inline": [part.as_json() for part in tree.inline],
        "Attachments": [part.as_json() for part in tree.attachments],
        # superset: mailpit-api-client 1.0.0 requires Read (Mailpit marks the message read)
        "Read": True,
        "Users": entry.users,
        "Envelope": {"From": parsed.return_path, "To": entry.envelope_to},
    }


def data_uri_payload(content: str) -> bytes:
    """send.go: attachment content is base64, optionally a data URI (after the last comma)."""
    return base64.b64decode(content.split(",")[-1], validate=True)

"""MailStore: the per-user Maildir mailboxes SMTP delivers into and POP3/IMAP read.

One instance per Core (``core.shared(MailStore)``), rooted at ``<data_dir>/mail``.
Everything is plain Maildir / Maildir++ on disk, so any tool (mutt, Python's
``mailbox``, Dovecot, ``ls``) can read it and several processes or containers can
share it through a volume.

Layout::

    <root>/<user>/                    Maildir (cur/ new/ tmp/) = INBOX
    <root>/<user>/.<Folder>/          Maildir++ folder; hierarchy "A/B" is ".A.B"
    <folder>/refservers-uidlist       UIDVALIDITY, next UID, key -> UID and keywords
    <folder>/refservers-uidlist.lock  flock()ed around every change of the folder

User names are percent-encoded for the directory (``/``, ``%`` and a leading ``.``
never reach the file system as such), so ``alice@example.com`` is a plain directory
and no user name can escape the root. Folder names use ``/`` as the hierarchy
delimiter; within a component ``.`` is stored as ``%2E`` and ``%`` as ``%25``.
"INBOX" is case-insensitive and always exists.

The contract other protocol rooms rely on:

1. **Atomic, durable delivery.** :meth:`deliver` and :meth:`append` write the message
   into ``tmp/``, fsync it, rename it into ``new/`` (or ``cur/`` with flags) and fsync
   the directory before returning. A reader never sees a half-written message, and a
   message SMTP acknowledged with 250 survives a crash. :meth:`deliver` takes no lock
   (Maildir delivery is lock-free by design: the rename is atomic); :meth:`deliver_many`
   stores a batch with one fsync of each ``new/``, and parallel callers share that fsync
   too (group commit: each still waits for a fsync that started after its own rename).
2. **Bytes.** Messages are stored with CRLF line endings (what SMTP, POP3 and IMAP put
   on the wire), so ``size`` is the wire size and the body round-trips byte for byte.
   :meth:`deliver` prepends ``Return-Path`` and one ``Delivered-To`` per envelope
   recipient, which keeps the envelope with the message in a form every tool reads.
3. **Keys.** A message's key is its Maildir base name (the file name before ``:2,``);
   keys are unique across the whole store (they name host, pid, time, a counter and
   random bits), never change while the message exists, and are safe as POP3 UIDL
   values and URL path segments.
4. **Flags.** IMAP system flags live in the Maildir info (``:2,DFPRST``: D \\Draft,
   F \\Flagged, P $Forwarded, R \\Answered, S \\Seen, T \\Deleted); other keywords
   live in the uidlist. ``\\Recent`` is not a stored flag: ``MessageInfo.recent`` is
   true while the file is still in ``new/``.
5. **UIDs.** Each folder has a persistent UIDVALIDITY and strictly ascending UIDs,
   assigned under the folder's flock the first time any process lists the folder and
   sees a key (as Dovecot does), so separate processes agree; keys first seen together
   are numbered in arrival order (mtime, then key). :meth:`deliver` leaves the uidlist
   alone; :meth:`append` and :meth:`copy` number the message at once, since IMAP
   reports its UID (APPENDUID, COPYUID). A deleted and re-created folder gets a new
   UIDVALIDITY.
6. **Notifications.** :meth:`subscribe` callbacks run as ``callback(user, folder)``
   after every delivery (once per mailbox for a batch), append and copy made through
   this instance, on whatever thread made it (a delivery thread for SMTP): hop to your
   own loop yourself.
7. **Scans are cached.** :meth:`snapshot` (behind :meth:`messages`) reuses a folder's
   last scan while ``new/``, ``cur/`` and the uidlist keep their inode and nanosecond
   mtime, and only once those mtimes were 2 s old at the scan (a change within the same
   clock tick could leave an mtime unchanged: Dovecot's rule; 0.1 s where the file
   system keeps sub-second mtimes, see SCAN_SETTLE_FINE_NS); until then, while new/
   and cur/ list the same names. Another process's change is therefore always seen at
   the next listing. :meth:`read` opens the file where the last scan saw it and falls
   back to a lookup when it moved; :meth:`set_flags_many` changes many messages under
   one lock with one fsync per directory.
8. **Errors.** :class:`NoSuchFolder`, :class:`FolderExists`, :class:`NoSuchMessage`
   and :class:`InvalidName` (all :class:`MailStoreError`) with one-line messages.

Recipient policy (options of the ``[smtp]`` section, read here so SMTP, POP3 and IMAP
agree): known users receive ``name`` and ``name@<any of domains>`` (a user named by a
full address receives that address, whatever its domain); an unknown
recipient is created on the fly (login and password both the full address, like
GreenMail), rejected, or delivered to ``catchall_user``.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.utils
import fcntl
import functools
import itertools
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TypeVar, cast
from urllib.parse import quote, unquote

from ..core.config import STR, STR_LIST, ConfigError, Option, choice
from ..core.durable import fsync_dir, write_atomic, write_synced
from ..core.store import Store
from ..core.users import User

if TYPE_CHECKING:
    from ..core.context import Core
    from ..core.web import Route

INBOX = "INBOX"
UIDLIST = "refservers-uidlist"
UIDLIST_LOCK = "refservers-uidlist.lock"
UIDVALIDITY_FILE = "refservers-uidvalidity"

# A folder's last scan is reused only while new/, cur/ and the uidlist still have the
# inode and nanosecond mtime they had, AND those mtimes were already this much older
# than the scan: a directory's mtime moves in kernel clock ticks (up to 10 ms), so a
# change in the same tick as the scan could leave it unchanged; on a network volume
# the server's clock may be off by more. Dovecot's Maildir sync has the same rule.
SCAN_SETTLE_NS = 2_000_000_000
# ... unless the file system keeps sub-second mtimes (every mtime of the signature has
# a fraction: ext4, xfs, btrfs, tmpfs, overlayfs): there a directory's mtime moves at
# least every kernel tick (<= 10 ms), so a tenth of a second is ten ticks of margin.
# Inside the window every call lists new/ and cur/ (a few ms for 1,000 messages).
SCAN_SETTLE_FINE_NS = 100_000_000
SCANS_KEPT = 256  # folders whose last scan is kept (a test server has a handful)

# The store's options: the [mail] section (REFSERVERS_MAIL_*).
POLICY_OPTIONS = (
    Option("domains", STR_LIST, ("localhost", "example.com"), "mail domains of the users in the user table"),
    Option(
        "unknown_recipients",
        choice("create", "reject", "catchall"),
        "create",
        "unknown recipient: create a mailbox (login = password = address), reject (550), or catchall",
    ),
    Option("catchall_user", STR, "", "user receiving mail for unknown recipients (unknown_recipients = catchall)"),
)

# Maildir info letters <-> IMAP flags. P (passed) has no IMAP system flag; $Forwarded
# is the keyword clients use for it.
LETTER_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "P": "$Forwarded", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}
FLAG_LETTERS = {flag.lower(): letter for letter, flag in LETTER_FLAGS.items()}

_Opened = TypeVar("_Opened")  # what MailStore._open's opener makes of a path

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:20] or "localhost"
_USER_SAFE = "@+-_.~=,!$&'()*;"


class MailStoreError(Exception):
    """A mail store operation that cannot be done; ``str()`` is one line."""


class NoSuchFolder(MailStoreError):
    pass


class FolderExists(MailStoreError):
    pass


class NoSuchMessage(MailStoreError):
    pass


class InvalidName(MailStoreError):
    pass


class Delivery(NamedTuple):
    """One incoming message for one user's INBOX (:meth:`MailStore.deliver_many`).

    ``envelope``: ``mail_from`` (str) and ``rcpt_to`` (the addresses of this user),
    kept as ``Return-Path`` and ``Delivered-To`` headers.
    """

    user: str
    message: bytes
    envelope: Mapping[str, Any]


@dataclass(frozen=True)
class MessageInfo:
    key: str
    uid: int
    size: int
    flags: frozenset[str]
    internal_date: float
    path: Path
    recent: bool = False


@dataclass(frozen=True)
class FolderSnapshot:
    """A folder as one scan saw it (:meth:`MailStore.snapshot`).

    The same object comes back while the folder is unchanged, so a reader that kept
    the last one can tell "nothing changed" with ``is``.
    """

    uidvalidity: int
    next_uid: int
    messages: tuple[MessageInfo, ...]  # in UID order
    by_key: Mapping[str, MessageInfo]


@dataclass(frozen=True)
class MessageSummary:
    """One message as the admin API and :meth:`MailStore.wait_for_message` see it."""

    id: str
    user: str
    folder: str
    sender: str
    to: tuple[str, ...]
    subject: str
    date: str
    internal_date: float
    size: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "folder": self.folder,
            "from": self.sender,
            "to": list(self.to),
            "subject": self.subject,
            "date": self.date,
            "received": self.internal_date,
            "size": self.size,
        }


@dataclass
class _UidList:
    uidvalidity: int
    next_uid: int
    entries: dict[str, tuple[int, tuple[str, ...]]] = field(default_factory=dict)  # key -> (uid, keywords)


class _File:
    """One message file as a listing saw it. Its Path is built only when asked for:
    a rescan lists every file, and most of them are the ones the last scan knew."""

    __slots__ = ("key", "directory", "name", "info", "recent", "_path")

    def __init__(self, key: str, directory: Path, name: str, info: str, recent: bool):
        self.key, self.directory, self.name, self.info, self.recent = key, directory, name, info, recent
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = self.directory / self.name
        return self._path


# The names in a folder's new/ and cur/ (dot files left out), as one listing saw them.
_Listing = tuple[frozenset[str], frozenset[str]]


@dataclass(frozen=True)
class _CachedScan:
    path: Path  # the folder directory
    signature: tuple[Any, ...] | None  # None: rescan next time
    snapshot: FolderSnapshot
    # Set while the signature's mtimes are too fresh to trust alone (SCAN_SETTLE_NS):
    # the listing of that scan, which a fresh listing must match for the scan to be reused.
    listing: _Listing | None = None
    # What the signature stats (new/, cur/, the uidlist), joined once: every IMAP
    # command checks the signature, and joining the paths from ``path`` cost as much
    # as the three stat calls.
    stat_paths: tuple[str, str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stat_paths", _signature_paths(self.path))


class _GroupSync:
    """Group commit of one directory: the fsync that makes a rename into it durable,
    shared by every thread that renamed meanwhile.

    Parallel SMTP deliveries into one INBOX each renamed into new/ and fsynced new/:
    20 senders meant 20 directory fsyncs queued behind each other for what one fsync
    covers. Here a caller takes a ticket after its rename; one caller at a time (the
    leader) fsyncs on behalf of every ticket taken before that fsync started, and the
    others wait for a fsync that covers their ticket. So :meth:`sync` still returns
    only once the caller's own rename is durable (the contract SMTP's 250 relies on),
    and a failed fsync covers nobody: the next caller in line tries again.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self._changed = threading.Condition()
        self._taken = 0  # tickets handed out (one per rename)
        self._durable = 0  # every ticket up to this one is covered by a finished fsync
        self._syncing = False

    def sync(self) -> None:
        """Return once a fsync of the directory that started after this call has finished."""
        with self._changed:
            self._taken += 1
            ticket = self._taken
            while self._durable < ticket:
                if self._syncing:
                    self._changed.wait()
                    continue
                self._syncing = True
                covered = self._taken
                self._changed.release()
                try:
                    fsync_dir(self.directory)
                finally:
                    self._changed.acquire()
                    self._syncing = False
                    self._changed.notify_all()
                self._durable = max(self._durable, covered)


def to_crlf(data: bytes) -> bytes:
    """Every line ending as CRLF (bare LF and CRLF alike)."""
    # Same result as re.sub(rb"\r?\n", b"\r\n", data), at C speed: the regex made one
    # replacement per line, 250 ms of a 15 MiB delivery (200,000 base64 lines).
    if data.count(b"\n") == data.count(b"\r\n"):
        return data  # already CRLF throughout: the usual case for SMTP, no copy
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class MailStore(Store):
    name = "mail"
    description = "per-user Maildir store: SMTP delivers, POP3 and IMAP read"
    options = POLICY_OPTIONS

    def __init__(
        self,
        root: Path,
        users: Any,
        domains: Iterable[str] = ("localhost", "example.com"),
        unknown_recipients: str = "create",
        catchall_user: str = "",
    ):
        self.root = Path(root)
        self.users = users
        self.configure(domains, unknown_recipients, catchall_user)
        self._subscribers: list[Callable[[str, str], None]] = []
        self._subscribers_lock = threading.Condition()
        self._delivered = threading.Condition()
        self._generation = 0  # bumped on every delivery; wait_for_message watches it
        self._counter = itertools.count(1)
        self._scans: dict[tuple[str, str], _CachedScan] = {}  # (user, folder) -> last scan
        self._scans_lock = threading.Lock()
        self._dir_syncs: dict[Path, _GroupSync] = {}  # a user's new/ -> its shared fsync
        self._dir_syncs_lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_core(cls, core: Core) -> MailStore:
        section = core.config.sections.get(cls.name)
        policy = {o.key: o.default for o in POLICY_OPTIONS}
        if section is not None:
            policy = {key: getattr(section, key) for key in policy}
        return cls(core.data_dir / "mail", core.users, **policy)

    def admin_routes(self, core: Core) -> list[Route]:
        from .api import mail_routes

        return mail_routes(core)

    def configure(self, domains: Iterable[str], unknown_recipients: str, catchall_user: str) -> None:
        """Set the recipient policy ([mail] options; the pytest plugin's refservers_store too)."""
        if unknown_recipients == "catchall" and not catchall_user:
            raise ConfigError("[mail] unknown_recipients = catchall needs catchall_user")
        self.domains = {domain.lower() for domain in domains}
        self.unknown_recipients = unknown_recipients
        self.catchall_user = catchall_user

    # -- recipients and accounts ---------------------------------------------------
    def resolve_recipient(self, address: str) -> str | None:
        """The user that receives mail for ``address``, or None to reject it (550);
        under the "create" policy an unknown full address becomes an account."""
        name = self.recipient_of(address, self.users)
        if name is not None and self.unknown_recipients == "create" and name not in self.users:
            self.users.add(User(name, name))
        return name

    def recipient_of(self, address: str, known: Container[str]) -> str | None:
        """Who receives ``address`` under this store's policy if ``known`` were the
        accounts, creating nobody (a scenario checks its messages against its own users)."""
        address = address.strip().strip("<>").strip()
        if not address or any(c in address for c in "\r\n\0/"):
            return None
        local, at, domain = address.rpartition("@")
        if not at:
            local, domain = address, ""
        if not local:
            return None
        full = f"{local}@{domain.lower()}" if at else ""
        if full in known:  # an account named by its address receives it (a test's tenant)
            return full
        if not domain or domain.lower() in self.domains:
            for name in (local, local.lower()):
                if name in known:
                    return name
        if self.unknown_recipients == "reject":
            return None
        if self.unknown_recipients == "catchall":
            return self.catchall_user
        return full or None  # "create" makes mailboxes for full addresses only

    def password_of(self, name: str) -> str | None:
        """The clear-text password (APOP and CRAM-MD5 need it), or None for no such user.

        With the "create" policy any full address is an account whose password is the
        address itself (made on first use), so a mailbox created by another process
        sharing the store can log in here too.
        """
        user = self.users.get(name)
        if user is not None:
            return str(user.password)
        if self.unknown_recipients == "create" and self.resolve_recipient(name) == name:
            return name
        return None

    def authenticate(self, name: str, password: str) -> str | None:
        """The user name if ``password`` is right (see :meth:`password_of`), else None."""
        if self.users.get(name) is None:
            self.password_of(name)  # creates an address account under the "create" policy
        user = self.users.check_password(name, password)
        return None if user is None else str(user.name)

    # -- folders ---------------------------------------------------------------------
    def user_dir(self, user: str) -> Path:
        if not user or "\0" in user:
            raise InvalidName(f"invalid user name {user!r}")
        encoded = quote(user, safe=_USER_SAFE)
        if encoded.startswith("."):
            encoded = "%2E" + encoded[1:]
        return self.root / encoded

    def mailbox_users(self) -> list[str]:
        """Users that have a mailbox on disk (whoever created it)."""
        try:
            names = [entry.name for entry in os.scandir(self.root) if entry.is_dir() and not entry.name.startswith(".")]
        except FileNotFoundError:
            return []
        return sorted(unquote(name) for name in names)

    def ensure_user(self, user: str) -> Path:
        directory = self.user_dir(user)
        _make_maildir(directory)
        return directory

    def folders(self, user: str) -> list[str]:
        directory = self.ensure_user(user)
        names = []
        for entry in os.scandir(directory):
            if _is_folder_dir(entry.name) and (Path(entry.path) / "cur").is_dir():
                names.append(_decode_folder(entry.name))
        return [INBOX, *sorted(names)]

    def folder_exists(self, user: str, folder: str) -> bool:
        return (self._folder_path(user, folder) / "cur").is_dir()

    def create_folder(self, user: str, folder: str) -> None:
        if _is_inbox(folder):
            raise FolderExists("INBOX always exists")
        path = self._folder_path(user, folder)
        self.ensure_user(user)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            raise FolderExists(f"folder {folder!r} exists") from None
        _make_maildir(path)
        # Maildir++ marks folders with this empty file (Courier, Dovecot look for it).
        (path / "maildirfolder").touch()
        with self._locked(path):
            self._load_uidlist(path, user)
        fsync_dir(path.parent)

    def delete_folder(self, user: str, folder: str) -> None:
        if _is_inbox(folder):
            raise InvalidName("INBOX cannot be deleted")
        path = self._existing_folder(user, folder)
        # Rename first so other processes stop seeing it at once, then remove.
        # ("..x" is never an encoded folder name: empty components are refused.)
        doomed = path.with_name(f"..refservers-deleted-{os.getpid()}-{next(self._counter)}")
        path.rename(doomed)
        _remove_tree(doomed)
        fsync_dir(path.parent)

    def rename_folder(self, user: str, old: str, new: str) -> None:
        """Rename a folder and its subfolders; renaming INBOX moves its messages (RFC 3501)."""
        target = self._folder_path(user, new)
        if _is_inbox(new) or target.exists():
            raise FolderExists(f"folder {new!r} exists")
        if _is_inbox(old):
            self.create_folder(user, new)
            self.move(user, [m.key for m in self.messages(user)], INBOX, new)
            return
        source = self._existing_folder(user, old)
        prefix = source.name + "."
        children = [entry.name for entry in os.scandir(source.parent) if entry.name.startswith(prefix)]
        source.rename(target)
        for child in children:
            (source.parent / child).rename(source.parent / (target.name + child[len(source.name) :]))
        fsync_dir(source.parent)

    # -- messages ----------------------------------------------------------------------
    def messages(self, user: str, folder: str = INBOX) -> list[MessageInfo]:
        """The folder's messages in UID order (assigning UIDs to messages seen for the first time)."""
        return list(self.snapshot(user, folder).messages)

    def snapshot(self, user: str, folder: str = INBOX) -> FolderSnapshot:
        """The folder's messages, UIDVALIDITY and next UID, as :meth:`messages` sees them.

        A rescan lists new/ and cur/ under the folder's lock (and numbers new keys).
        It is skipped, and the previous snapshot returned as the same object, while
        new/, cur/ and the uidlist keep the inode and mtime they had at the last scan
        (see SCAN_SETTLE_NS): any process adding, renaming or removing a message or
        rewriting the uidlist changes one of them.
        """
        name = (user, INBOX if _is_inbox(folder) else folder)
        with self._scans_lock:
            cached = self._scans.get(name)
        if (
            cached is not None
            and cached.signature is not None
            and _stat_signature(cached.stat_paths) == cached.signature
        ):
            if cached.listing is None:
                return cached.snapshot
            if self._still_listed(name, cached):
                return cached.snapshot
        path = self._existing_folder(user, folder)
        with self._locked(path):
            started = time.time_ns()
            # The directories before listing them (a change after this shows at the
            # next call); the uidlist after _sync, which may rewrite it (lock held:
            # nobody else changes it meanwhile).
            directories = _directory_signature(path)
            listing = _listing(path)
            uidlist, files = self._sync(path, user, listing)
            signature = _scan_signature(path, directories)
        previous = cached.snapshot if cached is not None else None
        known = previous.by_key if previous is not None else {}
        infos = sorted(
            (self._info(files[key], uidlist.entries[key], known.get(key)) for key in files if key in uidlist.entries),
            key=lambda info: info.uid,
        )
        if (
            previous is not None
            and (previous.uidvalidity, previous.next_uid) == (uidlist.uidvalidity, uidlist.next_uid)
            and len(previous.messages) == len(infos)
            and all(old is new for old, new in zip(previous.messages, infos, strict=True))
        ):
            snapshot = previous  # rescanned, nothing changed: keep the identity
        else:
            snapshot = FolderSnapshot(uidlist.uidvalidity, uidlist.next_uid, tuple(infos), {i.key: i for i in infos})
        settled = signature is not None and _settled(signature, started)
        self._keep_scan(name, _CachedScan(path, signature, snapshot, None if settled else listing))
        return snapshot

    def _still_listed(self, name: tuple[str, str], cached: _CachedScan) -> bool:
        """Whether a scan whose signature still matches but is too fresh to trust alone
        may be reused: new/ and cur/ list the same names as at that scan (a change in
        the same clock tick as the scan leaves the mtimes alone but not the names; the
        uidlist is replaced by rename, so its inode in the signature always moves).

        Two listings instead of a rescan (lock, uidlist, numbering) while the folder
        settles, e.g. every command just after an IMAP FETCH set \\Seen on a range.
        Once the mtimes are settled (_settled) at a listing that still matches, no later
        change can keep them, and the signature alone is trusted again.
        """
        assert cached.signature is not None and cached.listing is not None
        now = time.time_ns()
        if _listing(cached.path) != cached.listing:
            return False
        if _settled(cached.signature, now):
            self._keep_scan(name, _CachedScan(cached.path, cached.signature, cached.snapshot))
        return True

    def message(self, user: str, key: str, folder: str = INBOX) -> MessageInfo:
        info = self.snapshot(user, folder).by_key.get(key)
        if info is None:
            raise NoSuchMessage(f"no message {key!r} in {user}/{folder}")
        return info

    def read(self, user: str, key: str, folder: str = INBOX) -> bytes:
        """The message's bytes.

        :raises NoSuchMessage: no such message in the folder.
        :raises NoSuchFolder: no such folder.
        """
        # A bare descriptor, not a file object: open, one read, close are the three
        # system calls of a POP3 RETR's file access, where a FileIO's readall() also
        # asked fstat (twice) and lseek, and read again to see the end of the file.
        fd, known = self._open(user, key, folder, lambda path: os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        try:
            return _read_to_end(fd, known.size if known is not None else os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def open_message(self, user: str, key: str, folder: str = INBOX) -> BinaryIO:
        """The message's file, open for reading (the caller closes it).

        Its content is the message for as long as it stays open, whatever renames or
        deletes happen meanwhile: a reader can send it later (IMAP sends a big message
        with ``sendfile``) without reading it into memory first.

        :raises NoSuchMessage: no such message in the folder.
        :raises NoSuchFolder: no such folder.
        """
        # Unbuffered (one FileIO, no BufferedReader): readers take the whole file at
        # once or hand its descriptor to sendfile (IMAP, for big messages), and a
        # buffered open also asked the kernel whether the file is a terminal (ioctl)
        # and where it stands (lseek). Whole messages are cheaper through read().
        handle, _ = self._open(user, key, folder, lambda path: cast(BinaryIO, open(path, "rb", buffering=0)))
        return handle

    def _open(
        self, user: str, key: str, folder: str, opener: Callable[[Path], _Opened]
    ) -> tuple[_Opened, MessageInfo | None]:
        """``opener(path)`` of the message's file, and the message as the last scan saw
        it when the file is still where that scan saw it (None after a lookup)."""
        # Where the last scan saw it: a message file's content never changes, only its
        # name (flags) and directory, so a file still at that path is this message.
        with self._scans_lock:
            cached = self._scans.get((user, INBOX if _is_inbox(folder) else folder))
        known = cached.snapshot.by_key.get(key) if cached is not None else None
        if known is not None:
            try:
                return opener(known.path), known
            except FileNotFoundError:
                pass  # renamed or removed since: look it up
        path = self._existing_folder(user, folder)
        # A flag change in another process renames the file; look it up again then.
        for _ in range(5):
            found = self._find(path, key)
            if found is None:
                break
            try:
                return opener(found.path), None
            except FileNotFoundError:
                continue
        raise NoSuchMessage(f"no message {key!r} in {user}/{folder}")

    def deliver(self, user: str, message: bytes, envelope: Mapping[str, Any]) -> str:
        """Store an incoming message in ``user``'s INBOX durably; return its key
        (``envelope``: see :class:`Delivery`)."""
        (outcome,) = self.deliver_many([Delivery(user, message, envelope)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def deliver_many(self, deliveries: Sequence[Delivery]) -> list[str | Exception]:
        """Store several incoming messages durably at once; for each, its key or the
        error that stopped it (the others are stored all the same).

        The steps of one delivery (write into tmp/ and fsync, rename into new/, fsync
        new/) taken by the whole batch one step at a time, so each INBOX's new/ is
        fsynced once for all its messages: SMTP hands over what its sessions finished
        meanwhile, from one thread, where a thread per message took turns at the GIL
        around every system call (70 futex calls per message at 20 senders).
        """
        outcomes: list[str | Exception] = []
        renamed: dict[str, list[int]] = {}  # user -> their deliveries now in new/
        for delivery in deliveries:
            try:
                directory = self.user_dir(delivery.user)
                data = _envelope_headers(delivery.envelope) + to_crlf(delivery.message)
                key = self._new_key(len(data))
                temporary = self._write_temporary(directory, key, data, None, make_maildir=True)
            except Exception as error:  # noqa: BLE001 - this delivery's outcome
                outcomes.append(error)
                continue
            try:
                # No folder lock: the rename is atomic, and the message gets its UID from
                # the first reader that lists the folder (_sync, under the lock). Taking
                # the lock and rewriting the uidlist here serialized every SMTP session.
                try:
                    os.rename(temporary, directory / "new" / key)
                except FileNotFoundError:  # new/ removed from outside: made again
                    _make_maildir(directory)
                    os.rename(temporary, directory / "new" / key)
            except Exception as error:  # noqa: BLE001 - this delivery's outcome
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()
                outcomes.append(error)
                continue
            renamed.setdefault(delivery.user, []).append(len(outcomes))
            outcomes.append(key)
        for user, indexes in renamed.items():
            try:
                self._new_dir_sync(self.user_dir(user)).sync()
            except Exception as error:  # noqa: BLE001 - not durable: no key for any of them
                for index in indexes:
                    outcomes[index] = error
                continue
            self._announce(user, INBOX)
        return outcomes

    def append(
        self,
        user: str,
        folder: str,
        message: bytes,
        flags: Iterable[str] = (),
        internal_date: float | None = None,
    ) -> MessageInfo:
        """Add a message to a folder (IMAP APPEND), durably; returns it with its UID."""
        return self._store(user, folder, to_crlf(message), set(flags), internal_date)

    def copy(self, user: str, key: str, src: str, dst: str) -> MessageInfo:
        info = self.message(user, key, src)
        data = self.read(user, key, src)
        return self._store(user, dst, data, set(info.flags), info.internal_date)

    def move(self, user: str, keys: Iterable[str], src: str, dst: str) -> list[MessageInfo]:
        keys = list(keys)
        moved = [self.copy(user, key, src, dst) for key in keys]
        self.delete(user, keys, src)
        return moved

    def set_flags(self, user: str, key: str, flags: Iterable[str], folder: str = INBOX) -> MessageInfo:
        """Replace the message's flags (system flags and keywords); returns the new state."""
        changed = self.set_flags_many(user, {key: flags}, folder)
        if key not in changed:
            raise NoSuchMessage(f"no message {key!r} in {user}/{folder}")
        return changed[key]

    def set_flags_many(
        self, user: str, flags_by_key: Mapping[str, Iterable[str]], folder: str = INBOX
    ) -> dict[str, MessageInfo]:
        """Replace the flags of several messages under one lock, with one fsync per
        directory (IMAP STORE on a range, FETCH's implicit \\Seen); the new state of
        each message found (missing keys are left out). Durable when it returns."""
        path = self._existing_folder(user, folder)
        wanted = {key: _split_flags(flags) for key, flags in flags_by_key.items()}  # refuse bad flags first
        with self._scans_lock:
            cached = self._scans.get((user, INBOX if _is_inbox(folder) else folder))
        known = cached.snapshot.by_key if cached is not None else {}
        changed: dict[str, MessageInfo] = {}
        renamed_in: set[str] = set()
        keywords_changed = False
        with self._locked(path):
            uidlist, files = self._sync(path, user)
            try:
                for key, (letters, keywords) in wanted.items():
                    current = files.get(key)
                    if current is None or key not in uidlist.entries:
                        continue
                    target = path / "cur" / f"{key}:2,{letters}"
                    if current.path != target:
                        try:
                            os.rename(current.path, target)
                        except FileNotFoundError:
                            continue  # removed meanwhile by a process that does not lock
                        renamed_in.update(("cur", "new") if current.recent else ("cur",))
                    uid, old_keywords = uidlist.entries[key]
                    if old_keywords != keywords:
                        uidlist.entries[key] = (uid, keywords)
                        keywords_changed = True
                    found = _File(key, target.parent, target.name, "2," + letters, False)
                    changed[key] = self._info(found, uidlist.entries[key], known.get(key))
            finally:
                # Whatever was renamed is made durable, even if a later rename failed.
                for sub in sorted(renamed_in):
                    fsync_dir(path / sub)
                if keywords_changed:
                    self._write_uidlist(path, uidlist)
        if changed and cached is not None:
            # Later reads find the files at their new names; the next snapshot rescans.
            infos = tuple(changed.get(info.key, info) for info in cached.snapshot.messages)
            by_key = {info.key: info for info in infos}
            snapshot = FolderSnapshot(cached.snapshot.uidvalidity, cached.snapshot.next_uid, infos, by_key)
            self._keep_scan((user, INBOX if _is_inbox(folder) else folder), _CachedScan(cached.path, None, snapshot))
        return changed

    def delete(self, user: str, keys: Iterable[str], folder: str = INBOX) -> int:
        """Remove messages for good (POP3 QUIT, IMAP EXPUNGE); unknown keys are ignored."""
        path = self._existing_folder(user, folder)
        wanted = set(keys)
        removed = 0
        with self._locked(path):
            uidlist, files = self._sync(path, user)
            for key in wanted:
                found = files.get(key)
                if found is None:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    found.path.unlink()
                    removed += 1
                uidlist.entries.pop(key, None)
            if removed:
                fsync_dir(path / "cur")
                fsync_dir(path / "new")
                self._write_uidlist(path, uidlist)
        return removed

    def uidvalidity(self, user: str, folder: str = INBOX) -> int:
        path = self._existing_folder(user, folder)
        with self._locked(path):
            return self._load_uidlist(path, user).uidvalidity

    def next_uid(self, user: str, folder: str = INBOX) -> int:
        return self.snapshot(user, folder).next_uid

    # -- notifications -------------------------------------------------------------------
    def subscribe(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``callback(user, folder)`` after every delivery/append/copy; returns unsubscribe."""
        with self._subscribers_lock:
            self._subscribers.append(callback)
            self._subscribers_lock.notify_all()

        def unsubscribe() -> None:
            with self._subscribers_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def wait_for_subscribers(self, count: int = 1, timeout: float = 30.0) -> None:
        """Block until at least ``count`` subscriptions exist (an admin /wait, an IDLE).

        Lets a test send only once its waiter is really listening.
        :raises TimeoutError: if they did not appear in time.
        """
        with self._subscribers_lock:
            if not self._subscribers_lock.wait_for(lambda: len(self._subscribers) >= count, timeout):
                raise TimeoutError(f"fewer than {count} subscribers after {timeout}s")

    # -- inspection (admin API, tests) ---------------------------------------------------
    def summaries(self, user: str | None = None) -> list[MessageSummary]:
        """Every message of every folder (of ``user``), newest first."""
        found = []
        for name in [user] if user else self.mailbox_users():
            if not self.user_dir(name).is_dir():
                continue
            for folder in self.folders(name):
                for info in self.messages(name, folder):
                    summary = self._summary(name, folder, info)
                    if summary is not None:
                        found.append(summary)
        found.sort(key=lambda s: (s.internal_date, s.id), reverse=True)
        return found

    def find(
        self,
        user: str | None = None,
        to: str | None = None,
        sender: str | None = None,
        subject: str | None = None,
        since: float | None = None,
    ) -> list[MessageSummary]:
        """Summaries matching every given filter: ``user`` the mailbox and ``to`` a recipient
        address exactly (``to`` ignoring case), ``sender`` and ``subject`` case-insensitive
        substrings, ``since`` epoch seconds."""
        return [s for s in self.summaries(user) if _summary_matches(s, to, sender, subject, since)]

    def locate(self, message_id: str) -> tuple[str, str, MessageInfo]:
        """(user, folder, info) of a message by its id (its key), anywhere in the store."""
        for user in self.mailbox_users():
            for folder in self.folders(user):
                path = self._folder_path(user, folder)
                if self._find(path, message_id) is not None:
                    return user, folder, self.message(user, message_id, folder)
        raise NoSuchMessage(f"no message {message_id!r}")

    def clear(self, user: str | None = None) -> int:
        """Delete every message (of ``user``), keeping mailboxes and folders.

        One pass per folder under its lock: the files of new/ and cur/ are unlinked
        as they are, without first giving UIDs to the new ones (what a delete by key
        needs), so emptying a large store (a scenario reset) stays quick.
        """
        removed = 0
        for name in [user] if user else self.mailbox_users():
            if not self.user_dir(name).is_dir():
                continue
            for folder in self.folders(name):
                path = self._existing_folder(name, folder)
                with self._locked(path):
                    for sub in ("new", "cur"):
                        for entry in os.scandir(path / sub):
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(entry.path)
                                removed += 1
                        fsync_dir(path / sub)
                    self._sync(path, name)  # forgets the vanished keys in the uidlist
        return removed

    def wait_for_message(
        self,
        timeout: float = 10.0,
        user: str | None = None,
        to: str | None = None,
        sender: str | None = None,
        subject: str | None = None,
        since: float | None = None,
    ) -> MessageSummary:
        """Block until a matching message is stored (by this process or any other).

        Deliveries through this instance wake the waiter at once; the store is also
        re-read every half second to see deliveries by other processes sharing it.
        :raises TimeoutError: when none arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._delivered:
                generation = self._generation
            found = self.find(user, to, sender, subject, since)
            if found:
                return found[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching message within {timeout}s")
            with self._delivered:
                if self._generation == generation:
                    self._delivered.wait(min(remaining, 0.5))

    def close(self) -> None:
        with self._subscribers_lock:
            self._subscribers.clear()

    # -- internals ---------------------------------------------------------------------
    def _folder_path(self, user: str, folder: str) -> Path:
        if _is_inbox(folder):
            return self.user_dir(user)
        return self.user_dir(user) / _encode_folder(folder)

    def _existing_folder(self, user: str, folder: str) -> Path:
        if _is_inbox(folder):
            return self.ensure_user(user)
        path = self._folder_path(user, folder)
        if not (path / "cur").is_dir():
            raise NoSuchFolder(f"no folder {folder!r}")
        return path

    @contextlib.contextmanager
    def _locked(self, folder_path: Path) -> Iterator[None]:
        # flock on a separate, never-replaced file: the uidlist itself is replaced by
        # rename, and a lock on a replaced inode would protect nothing. Separate
        # open() calls conflict even within one process, so threads are covered too.
        fd = os.open(folder_path / UIDLIST_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _store(self, user: str, folder: str, data: bytes, flags: set[str], internal_date: float | None) -> MessageInfo:
        path = self._existing_folder(user, folder)
        letters, keywords = _split_flags(flags)
        key = self._new_key(len(data))
        temporary = self._write_temporary(path, key, data, internal_date)
        try:
            target = path / "cur" / f"{key}:2,{letters}" if flags else path / "new" / key
            # The rename and the UID assignment happen under the folder lock, so other
            # processes see the message and its UID (and keywords) at the same moment.
            with self._locked(path):
                os.rename(temporary, target)
                fsync_dir(target.parent)
                uidlist, files = self._sync(path, user)
                uid, _ = uidlist.entries[key]
                if keywords:
                    uidlist.entries[key] = (uid, keywords)
                    self._write_uidlist(path, uidlist)
                info = self._info(files[key], uidlist.entries[key])
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        self._announce(user, INBOX if _is_inbox(folder) else folder)
        return info

    def _write_temporary(
        self, folder_path: Path, key: str, data: bytes, internal_date: float | None, make_maildir: bool = False
    ) -> Path:
        """``data`` in ``tmp/<key>``, fsynced (not yet visible: Maildir readers skip tmp/).

        ``make_maildir``: a missing Maildir is made first (a delivery's first message,
        or a mailbox removed from outside), where checking for it cost three stat calls
        on every message.
        """
        temporary = folder_path / "tmp" / key
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            if not make_maildir:
                raise
            _make_maildir(folder_path)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                write_synced(fd, data)
            finally:
                os.close(fd)
            if internal_date is not None:
                os.utime(temporary, (internal_date, internal_date))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        return temporary

    def _announce(self, user: str, folder: str) -> None:
        with self._delivered:
            self._generation += 1
            self._delivered.notify_all()
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(user, folder)

    def _new_dir_sync(self, folder_path: Path) -> _GroupSync:
        with self._dir_syncs_lock:
            group = self._dir_syncs.get(folder_path)
            if group is None:
                group = self._dir_syncs[folder_path] = _GroupSync(folder_path / "new")
            return group

    def _new_key(self, size: int) -> str:
        now = time.time()
        seconds, micro = int(now), int((now % 1) * 1_000_000)
        # R: the random module's bits (reseeded in a forked child), not os.urandom: its
        # system call hands the GIL to the event loop and back for every message.
        unique = f"M{micro:06d}P{os.getpid()}Q{next(self._counter)}R{random.getrandbits(32):08x}"
        return f"{seconds}.{unique}.{_HOST},S={size}"

    def _scan(self, folder_path: Path, listing: _Listing | None = None) -> dict[str, _File]:
        files: dict[str, _File] = {}
        new, cur = listing if listing is not None else _listing(folder_path)
        for sub, recent, names in (("new", True, new), ("cur", False, cur)):
            directory = folder_path / sub
            for name in names:
                key, _, info = name.partition(":")
                if key not in files or not recent:
                    files[key] = _File(key, directory, name, info, recent)
        return files

    def _find(self, folder_path: Path, key: str) -> _File | None:
        if not key or "/" in key or key.startswith("."):
            return None
        fresh = folder_path / "new" / key
        if fresh.exists():
            return _File(key, fresh.parent, key, "", True)
        prefix = key + ":"
        try:
            for name in os.listdir(folder_path / "cur"):
                if name == key or name.startswith(prefix):
                    return _File(key, folder_path / "cur", name, name[len(prefix) :], False)
        except FileNotFoundError:
            pass
        return None

    def _sync(
        self, folder_path: Path, user: str, listing: _Listing | None = None
    ) -> tuple[_UidList, dict[str, _File]]:
        """Read the uidlist and the files (as ``listing`` saw them, or list them now);
        give new files UIDs; forget vanished ones. Lock held."""
        uidlist = self._load_uidlist(folder_path, user)
        files = self._scan(folder_path, listing)
        changed = False
        for key in [k for k in uidlist.entries if k not in files]:
            del uidlist.entries[key]
            changed = True
        unseen = [key for key in files if key not in uidlist.entries]
        if unseen:

            def arrival(key: str) -> tuple[float, str]:
                try:
                    return (files[key].path.stat().st_mtime, key)
                except FileNotFoundError:
                    return (0.0, key)

            for key in sorted(unseen, key=arrival):
                uidlist.entries[key] = (uidlist.next_uid, ())
                uidlist.next_uid += 1
            changed = True
        if changed:
            self._write_uidlist(folder_path, uidlist)
        return uidlist, files

    def _load_uidlist(self, folder_path: Path, user: str) -> _UidList:
        try:
            text = (folder_path / UIDLIST).read_text("utf-8")
        except FileNotFoundError:
            uidlist = _UidList(self._fresh_uidvalidity(user), 1)
            self._write_uidlist(folder_path, uidlist)
            return uidlist
        lines = text.splitlines()
        head = lines[0].split() if lines else []
        if len(head) != 3 or head[0] != "V1":
            raise MailStoreError(f"{folder_path / UIDLIST}: not a refservers uidlist")
        uidlist = _UidList(int(head[1]), int(head[2]))
        for line in lines[1:]:
            parts = line.split()
            if len(parts) >= 2:
                uidlist.entries[parts[1]] = (int(parts[0]), tuple(parts[2:]))
        return uidlist

    def _write_uidlist(self, folder_path: Path, uidlist: _UidList) -> None:
        lines = [f"V1 {uidlist.uidvalidity} {uidlist.next_uid}\n"]
        for key, (uid, keywords) in sorted(uidlist.entries.items(), key=lambda item: item[1][0]):
            lines.append(" ".join((str(uid), key, *keywords)) + "\n")
        write_atomic(folder_path / UIDLIST, "".join(lines).encode("utf-8"), mode=0o600)

    def _fresh_uidvalidity(self, user: str) -> int:
        # Strictly increasing per user (kept in a file under its own lock, which is
        # never held while taking another), so a folder deleted and re-created within
        # the same second still gets a new UIDVALIDITY.
        directory = self.ensure_user(user)
        fd = os.open(directory / (UIDVALIDITY_FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                last = int((directory / UIDVALIDITY_FILE).read_text().strip() or 0)
            except (FileNotFoundError, ValueError):
                last = 0
            value = max(int(time.time()), last + 1)
            write_atomic(directory / UIDVALIDITY_FILE, f"{value}\n".encode(), mode=0o600)
            return value
        finally:
            os.close(fd)

    def _info(self, found: _File, entry: tuple[int, tuple[str, ...]], known: MessageInfo | None = None) -> MessageInfo:
        uid, keywords = entry
        letter_flags = _letter_flags(found.info)
        if (
            known is not None
            and known.uid == uid
            and known.recent == found.recent
            and known.path.name == found.name
            and known.internal_date
            and known.flags == (letter_flags.union(keywords) if keywords else letter_flags)
        ):
            return known  # unchanged since the last scan (the common case): nothing to build
        flags = set(letter_flags)
        if known is not None and known.internal_date:
            # The same message seen before: its file was at most renamed since (flags),
            # which keeps size and mtime, so no stat; and the same object if unchanged.
            size, mtime = known.size, known.internal_date
        else:
            try:
                stat = found.path.stat()
                size, mtime = stat.st_size, stat.st_mtime
            except FileNotFoundError:
                size, mtime = 0, 0.0
        info = MessageInfo(found.key, uid, size, frozenset(flags | set(keywords)), mtime, found.path, found.recent)
        return known if info == known else info

    def _keep_scan(self, name: tuple[str, str], scan: _CachedScan) -> None:
        with self._scans_lock:
            self._scans.pop(name, None)
            self._scans[name] = scan  # most recently used last
            while len(self._scans) > SCANS_KEPT:
                del self._scans[next(iter(self._scans))]

    def _summary(self, user: str, folder: str, info: MessageInfo) -> MessageSummary | None:
        # Imported here: every `run X` loads this module for the [mail] options alone, and
        # email.policy with its header registry was a visible share of its start-up (issue 16).
        from email import policy

        try:
            with open(info.path, "rb") as handle:
                headers = email.parser.BytesHeaderParser(policy=policy.default).parse(handle)
        except FileNotFoundError:
            return None
        recipients: list[str] = []
        for name in ("To", "Cc", "Delivered-To"):
            for value in headers.get_all(name, []):
                for _, address in email.utils.getaddresses([str(value)]):
                    if address and address not in recipients:
                        recipients.append(address)
        return MessageSummary(
            id=info.key,
            user=user,
            folder=folder,
            sender=str(headers.get("From", "") or headers.get("Return-Path", "")),
            to=tuple(recipients),
            subject=str(headers.get("Subject", "")),
            date=str(headers.get("Date", "")),
            internal_date=info.internal_date,
            size=info.size,
        )


# -- names, flags and files ---------------------------------------------------------------


def _is_inbox(folder: str) -> bool:
    return folder.upper() == INBOX


def _is_folder_dir(name: str) -> bool:
    return name.startswith(".") and not name.startswith("..") and len(name) > 1


def _encode_folder(folder: str) -> str:
    parts = folder.split("/")
    if not folder or any(part == "" for part in parts) or "\0" in folder:
        raise InvalidName(f"invalid folder name {folder!r}")
    return "." + ".".join(part.replace("%", "%25").replace(".", "%2E") for part in parts)


def _decode_folder(directory_name: str) -> str:
    return "/".join(unquote(part) for part in directory_name[1:].split("."))


def _split_flags(flags: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """Maildir info letters (sorted, as the spec asks) and the remaining keywords."""
    letters, keywords = set(), []
    for flag in flags:
        if flag.lower() == "\\recent":
            continue  # session state, never stored
        letter = FLAG_LETTERS.get(flag.lower())
        if letter is not None:
            letters.add(letter)
        elif not flag or any(c.isspace() for c in flag):
            raise InvalidName(f"invalid flag {flag!r}")
        elif flag not in keywords:
            keywords.append(flag)
    return "".join(sorted(letters)), tuple(sorted(keywords))


def _summary_matches(
    summary: MessageSummary, to: str | None, sender: str | None, subject: str | None, since: float | None
) -> bool:
    if to and not any(to.lower() == address.lower() for address in (*summary.to, summary.user)):
        return False
    if sender and sender.lower() not in summary.sender.lower():
        return False
    if subject and subject.lower() not in summary.subject.lower():
        return False
    return not (since is not None and summary.internal_date < since)


def _envelope_headers(envelope: Mapping[str, Any]) -> bytes:
    sender = _header_safe(str(envelope.get("mail_from", "")))
    lines = [f"Return-Path: <{sender}>\r\n"]
    lines += [f"Delivered-To: {_header_safe(str(rcpt))}\r\n" for rcpt in envelope.get("rcpt_to", ())]
    return "".join(lines).encode("utf-8")


def _header_safe(text: str) -> str:
    return re.sub(r"[\r\n\0]", "", text)


def _make_maildir(directory: Path) -> None:
    if all((directory / sub).is_dir() for sub in ("cur", "new", "tmp")):
        return
    missing = [parent for parent in (directory, *directory.parents) if not parent.exists()]
    for sub in ("cur", "new", "tmp"):
        (directory / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    # Make the new directories durable: a delivery fsyncs only new/, so a mailbox
    # created by the first message must not vanish in a crash with it.
    fsync_dir(directory)
    for created in missing:
        fsync_dir(created.parent)


@functools.lru_cache(maxsize=256)
def _letter_flags(info: str) -> frozenset[str]:
    """The IMAP system flags of a Maildir info ("2,FS"); a folder has few distinct ones."""
    return frozenset(LETTER_FLAGS[c] for c in info[2:] if c in LETTER_FLAGS) if info.startswith("2,") else frozenset()


def _listing(folder_path: Path) -> _Listing:
    """The names in new/ and cur/ (dot files are not messages); a missing one lists empty."""
    found: list[frozenset[str]] = []
    for sub in ("new", "cur"):
        try:
            names = os.listdir(os.path.join(folder_path, sub))
        except FileNotFoundError:
            names = []
        found.append(frozenset(name for name in names if not name.startswith(".")))
    return found[0], found[1]


def _signature_paths(folder_path: Path) -> tuple[str, str, str]:
    """The paths a _scan_signature stats: new/, cur/ and the uidlist."""
    return (os.path.join(folder_path, "new"), os.path.join(folder_path, "cur"), os.path.join(folder_path, UIDLIST))


def _stat_signature(paths: tuple[str, str, str]) -> tuple[Any, ...] | None:
    """The _scan_signature of the folder whose _signature_paths these are, now."""
    try:
        new, cur, uidlist = os.stat(paths[0]), os.stat(paths[1]), os.stat(paths[2])
    except FileNotFoundError:
        return None
    directories = (new.st_ino, new.st_mtime_ns, cur.st_ino, cur.st_mtime_ns)
    return (*directories, uidlist.st_ino, uidlist.st_mtime_ns, uidlist.st_size)


def _directory_signature(folder_path: Path) -> tuple[int, int, int, int] | None:
    """(inode, mtime in ns) of new/ and cur/; None if either is missing."""
    try:
        new = os.stat(os.path.join(folder_path, "new"))
        cur = os.stat(os.path.join(folder_path, "cur"))
    except FileNotFoundError:
        return None
    return (new.st_ino, new.st_mtime_ns, cur.st_ino, cur.st_mtime_ns)


def _scan_signature(
    folder_path: Path, directories: tuple[int, int, int, int] | None = None
) -> tuple[Any, ...] | None:
    """What changes whenever a message or the uidlist changes: new/, cur/ (given, or
    stat now) and the uidlist (replaced by rename: a new inode each time)."""
    if directories is None:
        directories = _directory_signature(folder_path)
        if directories is None:
            return None
    try:
        uidlist = os.stat(os.path.join(folder_path, UIDLIST))
    except FileNotFoundError:
        return None
    return (*directories, uidlist.st_ino, uidlist.st_mtime_ns, uidlist.st_size)


def _settled(signature: tuple[Any, ...], now_ns: int, fine_ns: int | None = None) -> bool:
    """Whether the signature's mtimes are old enough at ``now_ns`` to be trusted alone
    (``fine_ns``: the window for sub-second mtimes, SCAN_SETTLE_FINE_NS by default)."""
    mtimes = _mtimes(signature)
    fine = all(mtime % 1_000_000_000 for mtime in mtimes)
    window = (SCAN_SETTLE_FINE_NS if fine_ns is None else fine_ns) if fine else SCAN_SETTLE_NS
    return max(mtimes) <= now_ns - window


def _mtimes(signature: tuple[Any, ...]) -> tuple[int, int, int]:
    """The three mtimes of a _scan_signature (new/, cur/, uidlist)."""
    return (signature[1], signature[3], signature[5])


def _read_to_end(fd: int, expected: int) -> bytes:
    """What is left of the file ``fd``, ``expected`` bytes long by the last look at it.

    One read() when the file holds exactly that: a message file's content never
    changes, so the size its scan saw is its size, and a read asking for one byte more
    that gets ``expected`` bytes has met the end of the file (a regular file's read
    returns less than asked only there). Otherwise (a file changed against Maildir's
    rules) it reads on until the end of the file, as FileIO.readall does.
    """
    data = os.read(fd, expected + 1)
    if len(data) == expected:
        return data
    chunks = [data]
    while chunk := os.read(fd, max(expected, 65536)):
        chunks.append(chunk)
    return b"".join(chunks)


def _remove_tree(directory: Path) -> None:
    for current, subdirs, files in os.walk(directory, topdown=False):
        for name in files:
            os.unlink(os.path.join(current, name))
        for name in subdirs:
            os.rmdir(os.path.join(current, name))
    os.rmdir(directory)

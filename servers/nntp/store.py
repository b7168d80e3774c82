"""NewsSpool: the newsgroups, their numbered articles and the overview index NNTP serves.

One instance per Core (``core.shared(NewsSpool)``), rooted at ``<data_dir>/nntp``; the
NNTP server and the admin API read the same spool. Groups come from the ``[nntp]``
config (name, description, whether posting is allowed); articles follow RFC 5536.

Layout::

    <root>/<group>/created     creation time (epoch seconds) and creator, for NEWGROUPS
    <root>/<group>/<number>    one article, CRLF line endings, exactly as served
    <root>/<group>/overview    the index: one JSON line per article (number, Message-ID,
                               the overview fields, arrival time), appended and fsynced

The contract the protocol room relies on:

1. **Durable before acknowledged.** :meth:`post` writes each article file atomically
   (temp file, fsync, rename: ``durable.write_atomic``), then commits: fsync of the
   group directory, index line appended, index fsynced; only then is the article
   visible to readers and :meth:`post` returns (NNTP sends 240 after that, as SMTP sends
   250 after its Maildir delivery). Posts arriving together share one commit (one
   directory and one index fsync for the batch: a group commit), whether they come
   as one :meth:`post_many` batch (NNTP's way: its article files are fsynced side by
   side) or as :meth:`post` calls from several threads.
2. **Stable numbers.** Each group's numbers only grow and are never reused (RFC 3977
   6.1.1.2): a post reserves the next number before writing. A crash between the
   article file and its commit is repaired on open: article files missing from the
   index are indexed then, in number order. A post that failed or was cut short by a
   crash may leave its number unused (a gap, which RFC 3977 allows).
3. **Bytes.** What is stored is what is served: the article as received (dot-stuffing
   undone) plus the headers the server adds (Path, Xref, and Message-ID and Date when
   missing); the body is never touched.
4. **Message-IDs are unique** across the spool: a post whose Message-ID exists is
   refused (:class:`DuplicateArticle`). A cross-posted article is stored once per
   group, with one Xref header naming every group and number.
5. **Threads.** Every method is thread-safe; readers take one short lock and never
   wait for a disk write. :meth:`post` and :meth:`post_many` block on fsync, so callers
   on an event loop run them on a worker thread. One process owns a spool.
6. **Errors.** :class:`NoSuchGroup`, :class:`NoSuchArticle`, :class:`PostingRefused`
   (the 441 reasons) and :class:`DuplicateArticle`, all :class:`NewsSpoolError`, with
   one-line messages.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import ConfigError
from ..core.durable import fsync_dir, fsync_file, write_atomic, write_synced

if TYPE_CHECKING:
    from ..core.context import Core

# RFC 3977 4.1 / RFC 5536 3.1.4: a newsgroup name is dot-separated components of
# letters, digits and + - _ (lower case in practice); nothing that could name a path.
GROUP_NAME = re.compile(r"^[A-Za-z0-9+_-]+(\.[A-Za-z0-9+_-]+)*$")
MESSAGE_ID = re.compile(r"^<[^<>\s]+@[^<>\s]+>$")
# The overview fields RFC 3977 8.4 fixes, in order, then the Xref the server adds.
OVERVIEW_HEADERS = ("Subject", "From", "Date", "Message-ID", "References")
# Threads that write and fsync the article files of one batch side by side: the block
# layer lets concurrent fsyncs share a cache flush, where one after another each waited
# for its own (the one thread storing a batch spent half its time in them).
FSYNC_THREADS = 4
INDEX_NAME = "overview"
CREATED_NAME = "created"


class NewsSpoolError(Exception):
    """A spool operation that cannot be done; ``str()`` is one line."""


class NoSuchGroup(NewsSpoolError):
    pass


class NoSuchArticle(NewsSpoolError):
    pass


class PostingRefused(NewsSpoolError):
    """The article is not acceptable (NNTP 441 / 437)."""


class DuplicateArticle(PostingRefused):
    """The Message-ID is already in the spool (NNTP 441 / 435)."""


@dataclass(frozen=True)
class GroupConfig:
    name: str
    description: str
    posting: bool


@dataclass(frozen=True)
class ArticleEntry:
    """One line of a group's overview index."""

    number: int
    message_id: str
    subject: str
    sender: str
    date: str
    references: str
    size: int
    lines: int
    xref: str
    arrived: float

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "message_id": self.message_id,
            "subject": self.subject,
            "from": self.sender,
            "date": self.date,
            "references": self.references,
            "bytes": self.size,
            "lines": self.lines,
            "xref": self.xref,
            "arrived": self.arrived,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArticleEntry:
        return cls(
            number=int(data["number"]),
            message_id=str(data["message_id"]),
            subject=str(data["subject"]),
            sender=str(data["from"]),
            date=str(data["date"]),
            references=str(data["references"]),
            size=int(data["bytes"]),
            lines=int(data["lines"]),
            xref=str(data["xref"]),
            arrived=float(data["arrived"]),
        )

    def header(self, name: str) -> str | None:
        """The overview value of a header or metadata item (``:bytes``, ``:lines``)."""
        return {
            "subject": self.subject,
            "from": self.sender,
            "date": self.date,
            "message-id": self.message_id,
            "references": self.references,
            "xref": self.xref,
            ":bytes": str(self.size),
            "bytes": str(self.size),
            ":lines": str(self.lines),
            "lines": str(self.lines),
        }.get(name.lower())


@dataclass
class Group:
    """A group's live state, changed under the spool's lock (callers get a GroupStatus)."""

    config: GroupConfig
    directory: Path
    created: float
    creator: str
    articles: dict[int, ArticleEntry] = field(default_factory=dict)
    high_water: int = 0  # highest number committed (kept even if files vanish)
    next_number: int = 1  # the next number a post reserves (reserved ones are never reused)

    @property
    def name(self) -> str:
        return self.config.name

    def status(self) -> GroupStatus:
        return GroupStatus(self.config, self.created, self.creator, tuple(sorted(self.articles)), self.high_water)


@dataclass(frozen=True)
class GroupStatus:
    """A snapshot of one group, safe to read while posts land on other threads."""

    config: GroupConfig
    created: float
    creator: str
    numbers: tuple[int, ...]
    high_water: int

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def count(self) -> int:
        return len(self.numbers)

    @property
    def low(self) -> int:
        # RFC 3977 6.1.1.2: an empty group reports low = high + 1.
        return self.numbers[0] if self.numbers else self.high_water + 1


@dataclass(frozen=True)
class Posting:
    """One article for :meth:`NewsSpool.post_many` (see :meth:`NewsSpool.post`)."""

    article: bytes
    arrived: float | None = None  # None: now
    require_message_id: bool = False  # IHAVE: the sender must name the article
    enforce_posting: bool = True  # False lets the seeded samples into read-only groups


@dataclass(frozen=True)
class _Accepted:
    """A posting that passed the checks: its reserved Message-ID and numbers, its bytes."""

    message_id: str
    stored: bytes
    entries: list[tuple[Group, ArticleEntry]]


@dataclass
class _PendingCommit:
    """One post's entries waiting for the group commit, and how it ended."""

    entries: list[tuple[Group, ArticleEntry]]
    done: bool = False
    error: OSError | None = None


def parse_headers(head: bytes) -> list[tuple[str, str]]:
    """(name, unfolded value) pairs of an RFC 5322 header block (CRLF lines, no blank line)."""
    fields: list[tuple[str, str]] = []
    for raw in head.split(b"\r\n"):
        line = raw.decode("utf-8", "replace")
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if colon and name and " " not in name:
            fields.append((name, value.strip()))
    return fields


def first_values(fields: list[tuple[str, str]]) -> dict[str, str]:
    """The first value of each header, by lower-case name: one pass over the fields for
    the dozen lookups a post makes."""
    values: dict[str, str] = {}
    for name, value in fields:
        values.setdefault(name.lower(), value)
    return values


def overview_text(value: str) -> str:
    """RFC 3977 8.3.2: in overview data, CR, LF and TAB each become a space."""
    return value.replace("\r", " ").replace("\n", " ").replace("\t", " ")


def split_article(article: bytes) -> tuple[bytes, bytes]:
    """(header block without its ending blank line, body) of a CRLF article."""
    if article.startswith(b"\r\n"):
        return b"", article[2:]
    head, separator, body = article.partition(b"\r\n\r\n")
    if not separator:
        return article.removesuffix(b"\r\n"), b""
    return head, body


class NewsSpool:
    def __init__(self, root: Path, groups: Iterable[GroupConfig], path_host: str = "refservers", samples: bool = True):
        self.root = root
        self.path_host = path_host
        self._lock = threading.Lock()
        self._groups: dict[str, Group] = {}
        self._by_message_id: dict[str, tuple[str, int]] = {}
        self._in_flight: set[str] = set()  # Message-IDs being written (duplicates wait for none)
        self._commit_lock = threading.Lock()  # one committer at a time
        self._queue_lock = threading.Lock()
        self._commit_queue: list[_PendingCommit] = []
        self._writer_pool: ThreadPoolExecutor | None = None
        root.mkdir(parents=True, exist_ok=True)
        for config in groups:
            self._open_group(config)
        if samples:
            from .samples import SAMPLE_ARTICLES

            for group_name, articles in SAMPLE_ARTICLES.items():
                group = self._groups.get(group_name)
                # Seed only a group that never had an article, so a restart adds nothing.
                if group is not None and group.high_water == 0:
                    for article in articles:
                        # Samples "arrived" at their Date, so NEWNEWS since today lists only real posts.
                        date = first_values(parse_headers(split_article(article)[0])).get("date", "")
                        arrived = email.utils.parsedate_to_datetime(date).timestamp()
                        self.post(article, arrived=arrived, enforce_posting=False)

    @classmethod
    def from_core(cls, core: Core) -> NewsSpool:
        settings = core.config["nntp"]
        return cls(
            core.data_dir / "nntp",
            group_configs(settings.groups, settings.read_only_groups),
            path_host=settings.path_host,
            samples=settings.sample_articles,
        )

    # -- groups ---------------------------------------------------------------------------
    def _open_group(self, config: GroupConfig) -> None:
        directory = self.root / config.name
        created_file = directory / CREATED_NAME
        if not created_file.exists():
            directory.mkdir(parents=True, exist_ok=True)
            write_atomic(created_file, f"{int(time.time())} {self.path_host}\n".encode())
        created_text, _, creator = created_file.read_text().strip().partition(" ")
        group = Group(config, directory, float(created_text or 0), creator or self.path_host)
        index = directory / INDEX_NAME
        if index.exists():
            data = index.read_bytes()
            if data and not data.endswith(b"\n"):
                # A torn last line (a crash mid-append): cut it off, or the next append
                # would glue onto it. Its article is re-indexed below from its file.
                data = data[: data.rfind(b"\n") + 1]
                os.truncate(index, len(data))
                fsync_file(index)
            for line in data.decode("utf-8", "replace").splitlines():
                try:
                    entry = ArticleEntry.from_json(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue  # unreadable (written by hand?): its article is re-indexed below
                self._index(group, entry)
        self._groups[config.name] = group
        self._recover(group)
        group.next_number = group.high_water + 1

    def _index(self, group: Group, entry: ArticleEntry) -> None:
        group.articles[entry.number] = entry
        group.high_water = max(group.high_water, entry.number)
        self._by_message_id.setdefault(entry.message_id, (group.name, entry.number))

    def _recover(self, group: Group) -> None:
        """Index article files a crash left between their write and their commit."""
        orphans = sorted(
            int(p.name) for p in group.directory.iterdir() if p.name.isdigit() and int(p.name) not in group.articles
        )
        for number in orphans:
            path = group.directory / str(number)
            entry = self._entry_for(number, path.read_bytes(), path.stat().st_mtime)
            self._append_index(group, [entry])
            self._index(group, entry)

    def groups(self) -> list[GroupStatus]:
        with self._lock:
            return [group.status() for group in sorted(self._groups.values(), key=lambda g: g.name)]

    def group(self, name: str) -> GroupStatus:
        with self._lock:
            return self._group(name).status()

    def _group(self, name: str) -> Group:
        try:
            return self._groups[name]
        except KeyError:
            raise NoSuchGroup(f"no such newsgroup {name!r}") from None

    def entries(self, name: str, low: int = 1, high: int | None = None) -> list[ArticleEntry]:
        with self._lock:
            group = self._group(name)
            return [group.articles[n] for n in sorted(group.articles) if n >= low and (high is None or n <= high)]

    def entry(self, name: str, number: int) -> ArticleEntry:
        with self._lock:
            try:
                return self._group(name).articles[number]
            except KeyError:
                raise NoSuchArticle(f"no article {number} in {name}") from None

    def find(self, message_id: str) -> tuple[str, ArticleEntry]:
        """(group, entry) of an article by Message-ID; raises NoSuchArticle."""
        with self._lock:
            located = self._by_message_id.get(message_id)
            if located is None:
                raise NoSuchArticle(f"no article {message_id}")
            name, number = located
            return name, self._groups[name].articles[number]

    def read(self, name: str, number: int) -> bytes:
        self.entry(name, number)  # NoSuchGroup / NoSuchArticle first
        try:
            return (self.root / name / str(number)).read_bytes()
        except FileNotFoundError:
            raise NoSuchArticle(f"article {number} of {name} is gone from the spool") from None

    # -- posting ----------------------------------------------------------------------------
    def post(
        self,
        article: bytes,
        arrived: float | None = None,
        require_message_id: bool = False,
        enforce_posting: bool = True,
    ) -> str:
        """Store ``article`` (CRLF, dot-stuffing undone) in every group of its Newsgroups
        header that exists; return its Message-ID once it is durable.

        :raises PostingRefused: missing From/Subject/Newsgroups, no known group, a group
            that does not allow posting, a malformed Message-ID.
        :raises DuplicateArticle: the Message-ID is already in the spool.
        :raises OSError: the article could not be made durable.
        """
        (outcome,) = self.post_many([Posting(article, arrived, require_message_id, enforce_posting)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def post_many(self, postings: Sequence[Posting]) -> list[str | Exception]:
        """Store several articles at once; for each, its Message-ID once it is durable,
        or what refused or stopped it (:meth:`post`'s errors; the others are stored all
        the same).

        Each posting is checked and gets its numbers in turn, as one :meth:`post` would
        (of two with one Message-ID, the second is the duplicate). Then the article
        files are written and fsynced, side by side (FSYNC_THREADS), and the batch goes
        to one group commit: NNTP hands over what its sessions finished meanwhile from
        one thread, where a thread per post took turns at the GIL around every system
        call (133 futex calls per post at 10 posting sessions).
        """
        outcomes: list[str | Exception] = []
        accepted: list[tuple[int, _Accepted]] = []  # (place in outcomes, posting)
        # A posting's files start on a writing thread as soon as it is accepted, so the
        # disk works while the next ones are checked (a tenth of a batch's time).
        writers = self._writers() if len(postings) > 1 else None
        writing: list[Future[OSError | None]] = []
        try:
            for posting in postings:
                try:
                    taken = self._accept(posting)
                except Exception as refused:  # noqa: BLE001 - this posting's outcome, not the batch's
                    outcomes.append(refused)
                    continue
                accepted.append((len(outcomes), taken))
                outcomes.append(taken.message_id)
                if writers is not None:
                    writing.append(writers.submit(self._write, taken))
            if writers is not None:
                stored = [future.result() for future in writing]
            else:
                stored = [self._write(taken) for _, taken in accepted]
            written: list[tuple[int, _Accepted]] = []
            for (place, taken), problem in zip(accepted, stored, strict=True):
                if problem is None:
                    written.append((place, taken))
                else:
                    outcomes[place] = problem
            if written:
                try:
                    self._commit(_PendingCommit([pair for _, taken in written for pair in taken.entries]))
                except OSError as problem:
                    for place, _ in written:
                        outcomes[place] = problem
        finally:
            wait(writing)  # on an error too: no file may still land once its Message-ID is free
            with self._lock:
                for _, taken in accepted:
                    self._in_flight.discard(taken.message_id)
        return outcomes

    def _writers(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._writer_pool is None:
                self._writer_pool = ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="nntp-fsync")
            return self._writer_pool

    def close(self) -> None:
        """Let the file-writing threads end (Core.stop_all); a later post starts them again."""
        with self._lock:
            pool, self._writer_pool = self._writer_pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    @staticmethod
    def _write(taken: _Accepted) -> OSError | None:
        """Write and fsync one posting's article files (not their directory); the error
        that stopped it, if any."""
        try:
            for group, entry in taken.entries:
                # The reserved number names the temporary file too: no other
                # writer uses it, so no random names (mkstemp) are needed.
                write_atomic(
                    group.directory / str(entry.number),
                    taken.stored,
                    sync_dir=False,  # the commit syncs the directory
                    temporary=group.directory / f".{entry.number}.tmp",
                )
        except OSError as problem:
            return problem
        return None

    def _accept(self, posting: Posting) -> _Accepted:
        """Check one posting, reserve its Message-ID and numbers, and build what is stored."""
        head, body = split_article(posting.article)
        headers = first_values(parse_headers(head))
        for required in ("From", "Subject", "Newsgroups"):
            if not headers.get(required.lower()):
                raise PostingRefused(f"missing {required} header")
        wanted = [name.strip() for name in headers["newsgroups"].split(",") if name.strip()]
        message_id = headers.get("message-id")
        if message_id is not None and not MESSAGE_ID.match(message_id):
            raise PostingRefused(f"malformed Message-ID {message_id[:80]!r}")
        if message_id is None and posting.require_message_id:
            raise PostingRefused("missing Message-ID header")
        arrived = time.time() if posting.arrived is None else posting.arrived
        with self._lock:
            targets = [self._groups[name] for name in dict.fromkeys(wanted) if name in self._groups]
            if not targets:
                raise PostingRefused(f"no such newsgroup: {', '.join(wanted)[:200]}")
            closed = [group.name for group in targets if posting.enforce_posting and not group.config.posting]
            if closed:
                raise PostingRefused(f"posting to {closed[0]} is not allowed")
            if message_id is None:
                message_id = (
                    # The random part only tells posts of one second apart: the random module (reseeded
                    # in a forked child), not secrets, whose getrandom call hands the GIL around.
                    f"<{time.strftime('%Y%m%d%H%M%S', time.gmtime(arrived))}.{random.randbytes(6).hex()}@{self.path_host}>"
                )
            elif message_id in self._by_message_id or message_id in self._in_flight:
                raise DuplicateArticle(f"duplicate article {message_id}")
            numbers = {}
            for group in targets:
                numbers[group.name] = group.next_number
                group.next_number += 1
            self._in_flight.add(message_id)
        try:
            xref = f"{self.path_host} " + " ".join(f"{name}:{number}" for name, number in numbers.items())
            stored, stored_headers = self._with_server_headers(head, headers, body, message_id, arrived, xref)
            entries = [
                (group, self._entry(numbers[group.name], stored_headers, body, len(stored), arrived))
                for group in targets
            ]
        except BaseException:
            with self._lock:
                self._in_flight.discard(message_id)
            raise
        return _Accepted(message_id, stored, entries)

    def _commit(self, pending: _PendingCommit) -> None:
        """Make ``pending`` durable and visible, together with whatever else is queued.

        Whoever gets the commit lock commits the whole queue: fsync each group directory
        (the renames), append the index lines, fsync each index once. A post whose
        entries an earlier committer took just returns (or raises its error).
        """
        with self._queue_lock:
            self._commit_queue.append(pending)
        with self._commit_lock:
            if not pending.done and pending.error is None:
                with self._queue_lock:
                    batch, self._commit_queue = self._commit_queue, []
                by_group: dict[str, tuple[Group, list[ArticleEntry]]] = {}
                for queued in batch:
                    for group, entry in queued.entries:
                        by_group.setdefault(group.name, (group, []))[1].append(entry)
                try:
                    for group, entries in by_group.values():
                        fsync_dir(group.directory)
                        self._append_index(group, entries)
                except OSError as problem:
                    for queued in batch:
                        queued.error = problem
                else:
                    with self._lock:
                        for group, entries in by_group.values():
                            for entry in entries:
                                self._index(group, entry)
                    for queued in batch:
                        queued.done = True
        if pending.error is not None:
            raise pending.error

    def _with_server_headers(
        self, head: bytes, headers: Mapping[str, str], body: bytes, message_id: str, arrived: float, xref: str
    ) -> tuple[bytes, Mapping[str, str]]:
        """The article as stored, and what :func:`first_values` finds in its head (Path
        aside), given ``headers``, the first values of the client's ``head``."""
        # Path first (RFC 5536 3.1.5: each server prepends its name); the client's own
        # headers in their order, minus any Xref (only the serving host may write it);
        # then what was missing, and the Xref of this spool.
        lines = [line for line in head.split(b"\r\n") if line] if head else []
        kept: list[bytes] = []
        skipping = False
        rewritten = False  # a Path or Xref line of the client's moved or dropped
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                if not skipping:
                    kept.append(line)
                continue
            name, colon, value = line.partition(b":")
            name = name.strip().lower() if colon else b""  # a line without a colon is no header
            skipping = name in (b"xref", b"path")
            rewritten = rewritten or skipping
            if name == b"path":
                kept.insert(0, b"Path: " + self.path_host.encode() + b"!" + value.strip())
                continue
            if not skipping:
                kept.append(line)
        added = {"xref": xref}
        if "path" not in headers:
            kept.insert(0, b"Path: " + self.path_host.encode() + b"!not-for-mail")
        if "message-id" not in headers:
            kept.append(b"Message-ID: " + message_id.encode())
            added["message-id"] = message_id
        if "date" not in headers:
            added["date"] = email.utils.formatdate(arrived, usegmt=True)
            kept.append(b"Date: " + added["date"].encode())
        kept.append(b"Xref: " + xref.encode())
        stored_head = b"\r\n".join(kept)
        if rewritten:  # the lines around the moved or dropped ones may fold differently now
            return stored_head + b"\r\n\r\n" + body, first_values(parse_headers(stored_head))
        # The client's lines as they came, after the Path line and before what was added:
        # the same first values, and parsing the stored head again (a third of a post's
        # CPU time in the spool) would find nothing else.
        return stored_head + b"\r\n\r\n" + body, {**headers, **added}

    def _entry_for(self, number: int, article: bytes, arrived: float) -> ArticleEntry:
        head, body = split_article(article)
        return self._entry(number, first_values(parse_headers(head)), body, len(article), arrived)

    def _entry(self, number: int, headers: Mapping[str, str], body: bytes, size: int, arrived: float) -> ArticleEntry:
        """The index entry of an article of ``size`` bytes whose head has ``headers``
        (:func:`first_values`)."""

        def value(name: str) -> str:
            return overview_text(headers.get(name, ""))

        body_lines = body.count(b"\r\n") + (0 if not body or body.endswith(b"\r\n") else 1)
        xref = value("xref")
        return ArticleEntry(
            number=number,
            message_id=value("message-id"),
            subject=value("subject"),
            sender=value("from"),
            date=value("date"),
            references=value("references"),
            size=size,
            lines=body_lines,
            xref=f"Xref: {xref}" if xref else "",
            arrived=arrived,
        )

    def _append_index(self, group: Group, entries: list[ArticleEntry]) -> None:
        index = group.directory / INDEX_NAME
        created = not index.exists()
        lines = "".join(json.dumps(entry.as_json(), ensure_ascii=False) + "\n" for entry in entries).encode("utf-8")
        fd = os.open(index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            write_synced(fd, lines)
        finally:
            os.close(fd)
        if created:
            fsync_dir(group.directory)


def group_configs(groups: Mapping[str, str], read_only: Iterable[str]) -> list[GroupConfig]:
    """Groups of the ``[nntp]`` config; raises ConfigError naming a bad group name."""
    read_only = set(read_only)
    for name in [*groups, *read_only]:
        if not GROUP_NAME.match(name):
            raise ConfigError(f"[nntp] groups: {name!r} is not a newsgroup name (letters, digits, + - _ and dots)")
    unknown = read_only - set(groups)
    if unknown:
        raise ConfigError(f"[nntp] read_only_groups: {sorted(unknown)[0]!r} is not in [nntp] groups")
    return [GroupConfig(name, description, name not in read_only) for name, description in groups.items()]

"""FileRoot: the one directory tree FTP and SFTP serve, a home per user, confined.

Owned here: where homes live, how a client path becomes a disk path, who may write,
how transfers are journalled, and how an upload is made durable. The protocols
(servers/ftp, servers/sftp) and the files admin API only call this module, so a file
put over one protocol is the same file fetched over the other.

Layout under ``<data_dir>/files``::

    home/<user>/     one per user of the shared UserTable (created on first use)
    public/          the anonymous FTP directory (read-only), unless public_dir is set

Contract (the rules every caller relies on):

1. ``FileRoot.from_core(core)`` (through ``core.shared(FileRoot)``) builds one root per
   Core. Its options are read from the ``[ftp]`` config section (``FILE_ROOT_OPTIONS``,
   which the FTP server declares); without that section the defaults apply.
2. ``home(user)`` creates the home on first use, copies ``seed_dir`` into it without
   overwriting anything, and leaves every directory ``u+rwx`` and every seeded file
   ``u+rw`` so the server process can always write what it serves (no permission
   fights with read-only seed files). User names that are not a single plain path
   segment are refused.
3. ``resolve(user, virtual_path, cwd)`` maps a client path to a disk path inside the
   user's home, chroot style: ``/`` is the home, so absolute client paths are rooted
   there and never reach the real filesystem root. It raises :class:`PathEscapeError`
   (a ``PermissionError``, so protocol code maps it like any permission failure) for:
   a ``..`` that would climb above the home, a NUL byte, percent-encoded traversal
   (``%2e%2e``, ``%2f``) and any path whose real location (symlinks followed) is
   outside the home. ``follow_symlinks=False`` checks the parent only, for operations
   on a link itself (lstat, remove, readlink).
4. ``can_write(user)``: false for read-only users, unknown users and anonymous.
5. ``record_transfer(...)`` journals one ``file`` event per transfer with the user,
   virtual path, byte count, direction (``upload``/``download``) and ``complete``.
6. ``make_durable(path)`` / ``write_atomic(path, data)``: an upload reported complete
   to a client (FTP 226, SFTP close OK) has been fsynced, file and directory entry.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..core.config import BOOL, PATH, Option
from ..core.durable import fsync_file, write_atomic
from ..core.store import Store

if TYPE_CHECKING:
    from ..core.context import Core
    from ..core.web import Route

# The store's options: the [files] section (REFSERVERS_FILES_*).
FILE_ROOT_OPTIONS = (
    Option("seed_dir", PATH, None, "directory copied into every home at start (existing files are kept)"),
    Option("anonymous", BOOL, False, "allow anonymous FTP login, read-only, on public_dir"),
    Option("public_dir", PATH, None, "directory anonymous users see (default <data_dir>/files/public)"),
)
OPTIONS_SECTION = "files"
ANONYMOUS = "anonymous"
TRANSFER_DIRECTIONS = ("upload", "download")


class PathEscapeError(PermissionError):
    """A client path that would leave its home; ``str()`` says why, for the log."""


@dataclass(frozen=True)
class FileEntry:
    """One node of a home, as the admin API lists it."""

    path: str  # virtual, "/"-rooted
    kind: str  # "file", "dir" or "link"
    size: int
    mtime: float

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.kind, "size": self.size, "mtime": self.mtime}


class FileRoot(Store):
    name = OPTIONS_SECTION
    description = "per-user file homes: FTP, SFTP and the shell"
    options = FILE_ROOT_OPTIONS

    def __init__(
        self,
        root: Path,
        users: Any,
        journal: Any,
        seed_dir: Path | None = None,
        anonymous: bool = False,
        public_dir: Path | None = None,
    ):
        self.root = Path(root).absolute()
        self.users = users
        self.journal = journal
        self._prepared: set[str] = set()
        self._lock = threading.Lock()
        self.configure(seed_dir, anonymous, public_dir)

    def configure(self, seed_dir: Path | None, anonymous: bool, public_dir: Path | None) -> None:
        """Set the options ([files] options; the pytest plugin's refservers_store too)."""
        if seed_dir is not None and not Path(seed_dir).is_dir():
            from ..core.config import ConfigError

            raise ConfigError(f"[{OPTIONS_SECTION}] seed_dir: {seed_dir} is not a directory")
        with self._lock:
            self.seed_dir = Path(seed_dir).absolute() if seed_dir else None
            self.anonymous = anonymous
            self._public_is_default = public_dir is None
            self.public_dir = Path(public_dir).absolute() if public_dir else self.root / "public"
            self._prepared.clear()  # homes are seeded again (never overwriting) on next use

    @classmethod
    def from_core(cls, core: Core) -> FileRoot:
        try:
            settings = core.config[OPTIONS_SECTION]
            seed_dir, anonymous, public_dir = settings.seed_dir, settings.anonymous, settings.public_dir
        except (KeyError, AttributeError):
            seed_dir, anonymous, public_dir = None, False, None
        return cls(core.data_dir / "files", core.users, core.journal, seed_dir, anonymous, public_dir)

    def admin_routes(self, core: Core) -> list[Route]:
        from .api import file_routes

        return file_routes(core)

    # -- homes -------------------------------------------------------------------
    def home(self, user_name: str) -> Path:
        """The user's home directory, created and seeded on first use.

        ``anonymous`` (when the switch is on and no real user has that name) gets the
        public directory.
        """
        if self.is_anonymous(user_name):
            return self._prepare(ANONYMOUS, self.public_dir, seed=self._public_is_default)
        _check_user_name(user_name)
        return self._prepare(user_name, self.root / "home" / user_name, seed=True)

    def prepare_homes(self) -> list[Path]:
        """Create and seed the home of every user in the table (what servers do at start)."""
        homes = [self.home(name) for name in self.users.names()]
        if self.anonymous:
            homes.append(self.home(ANONYMOUS))
        return homes

    def is_anonymous(self, user_name: str) -> bool:
        return self.anonymous and user_name == ANONYMOUS and user_name not in self.users

    def _prepare(self, key: str, path: Path, seed: bool) -> Path:
        with self._lock:
            if key in self._prepared and path.is_dir():
                return path
            _make_writable_dir(path)
            if seed and self.seed_dir is not None:
                _copy_missing(self.seed_dir, path)
            self._prepared.add(key)
        return path

    # -- confinement ----------------------------------------------------------------
    def resolve(self, user_name: str, virtual_path: str, cwd: str = "/", follow_symlinks: bool = True) -> Path:
        """The disk path of ``virtual_path`` (relative to ``cwd``) inside the user's home.

        :raises PathEscapeError: when the path would leave the home (see the module rules).
        """
        home = self.home(user_name)
        return confine(home, self.normalize(virtual_path, cwd), follow_symlinks)

    @staticmethod
    def normalize(virtual_path: str, cwd: str = "/") -> str:
        """The absolute virtual path ("/"-rooted, no ``.``/``..``) of a client path.

        :raises PathEscapeError: for NUL bytes, encoded traversal, or ``..`` above ``/``.
        """
        for text in (virtual_path, cwd):
            if "\0" in text:
                raise PathEscapeError("NUL byte in path")
            decoded = unquote(text)
            # A file may be literally named "%41.txt"; what is refused is an encoding
            # that decodes to a separator, a NUL or a parent step, the classic
            # %2e%2e%2f bypass of filters that look only at the raw text.
            encoded_separator = "%2f" in text.lower() or "%5c" in text.lower()
            if decoded != text and ("\0" in decoded or encoded_separator or _has_parent_step(decoded)):
                raise PathEscapeError(f"encoded traversal in {text!r}")
        joined = virtual_path if virtual_path.startswith("/") else posixpath.join(cwd or "/", virtual_path)
        if not joined.startswith("/"):
            joined = "/" + joined
        parts: list[str] = []
        for segment in joined.split("/"):
            if segment in ("", "."):
                continue
            if segment == "..":
                if not parts:
                    raise PathEscapeError(f"{virtual_path!r} climbs above the home")
                parts.pop()
            else:
                parts.append(segment)
        return "/" + "/".join(parts)

    def virtual(self, user_name: str, disk_path: Path | str) -> str:
        """The client-visible path of a disk path inside the user's home."""
        home = self.home(user_name)
        relative = Path(os.path.abspath(disk_path)).relative_to(home)
        return "/" + relative.as_posix() if str(relative) != "." else "/"

    # -- permissions -------------------------------------------------------------------
    def can_write(self, user_name: str) -> bool:
        if self.is_anonymous(user_name):
            return False
        user = self.users.get(user_name)
        return user is not None and not user.read_only

    # -- journal -------------------------------------------------------------------------
    def record_transfer(
        self,
        server: str,
        peer: str,
        user: str,
        path: str,
        size: int,
        direction: str,
        complete: bool,
    ) -> None:
        """One ``file`` event: ``user``, virtual ``path``, ``bytes``, ``direction``, ``complete``."""
        if direction not in TRANSFER_DIRECTIONS:
            raise ValueError(f"direction: expected upload or download, got {direction!r}")
        self.journal.record(
            server, "file", peer, user=user, path=path, bytes=size, direction=direction, complete=complete
        )

    # -- durability ----------------------------------------------------------------------
    @staticmethod
    def make_durable(path: Path | str) -> None:
        """fsync a finished file and its directory entry (call before reporting success)."""
        fsync_file(path)

    @staticmethod
    def write_atomic(path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` all or nothing: temp file, fsync, rename, fsync dir."""
        write_atomic(path, data)

    # -- inspection ----------------------------------------------------------------------
    def tree(self, user_name: str) -> list[FileEntry]:
        """Every entry of the home, depth first, sorted by path; links are not followed."""
        home = self.home(user_name)
        entries = []
        for directory, dirnames, filenames in os.walk(home):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                disk = Path(directory) / name
                info = disk.lstat()
                kind = "link" if stat.S_ISLNK(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else "file"
                virtual = "/" + disk.relative_to(home).as_posix()
                entries.append(FileEntry(virtual, kind, info.st_size if kind == "file" else 0, info.st_mtime))
        return sorted(entries, key=lambda entry: entry.path)

    def clear_homes(self) -> None:
        """Empty every home (a scenario reset); each is seeded again on its next use."""
        with self._lock:
            homes = self.root / "home"
            if homes.is_dir():
                for entry in os.scandir(homes):
                    shutil.rmtree(entry.path, ignore_errors=True)
            self._prepared.clear()

    def close(self) -> None:
        """Nothing is held open; here for ``Core.stop_all``."""


# -- helpers of this module ------------------------------------------------------------


def confine(home: Path, normalized: str, follow_symlinks: bool = True) -> Path:
    """``home`` joined with a normalized virtual path, refused if it really lies outside."""
    candidate = home.joinpath(*[part for part in normalized.split("/") if part])
    real_home = os.path.realpath(home)
    checked = candidate if follow_symlinks else candidate.parent
    real = os.path.realpath(checked)
    if real != real_home and not real.startswith(real_home + os.sep):
        raise PathEscapeError(f"{normalized!r} resolves outside the home")
    return candidate


def _has_parent_step(path: str) -> bool:
    return any(segment == ".." for segment in path.replace("\\", "/").split("/"))


def _check_user_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        raise PathEscapeError(f"user name {name!r} cannot name a home directory")


def _make_writable_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode
    if mode & 0o700 != 0o700:
        path.chmod(mode | 0o700)


def _copy_missing(source: Path, target: Path) -> None:
    """Copy the tree ``source`` into ``target``, keeping whatever already exists there."""
    for directory, dirnames, filenames in os.walk(source):
        relative = Path(directory).relative_to(source)
        for name in dirnames:
            _make_writable_dir(target / relative / name)
        for name in filenames:
            destination = target / relative / name
            if destination.exists() or destination.is_symlink():
                continue
            origin = Path(directory) / name
            if origin.is_symlink():
                continue  # a link in the seed could point anywhere: not copied
            shutil.copy2(origin, destination)
            destination.chmod(destination.stat().st_mode | 0o600)

"""Durable writes: what a server told a client is stored survives a crash.

Rule: data is fsynced before it becomes visible under its final name, and the
directory entry is fsynced after the rename, so after a crash a file is either
absent or complete. Every store (mail, files, uploads, keys, certificates) uses
these three functions rather than its own copy.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from pathlib import Path

# How much a growing file takes in between two background write-backs (EarlyWriteback).
WRITEBACK_STEP = 16 * 1024 * 1024


def fsync_dir(directory: Path | str) -> None:
    """Make a rename or creation inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` and fsync it: one write for a regular file, more
    only past Linux's 2 GiB cap on a write or when a signal splits it."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def fsync_file(path: Path | str) -> None:
    """fsync a finished file and its directory entry (call before reporting success)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(Path(path).parent)


class EarlyWriteback(io.BufferedWriter):
    """A file being received whose data heads for the disk while the rest still arrives.

    An upload's data sits in the page cache until the fsync owed before its success
    reply, which then writes all of it while the client waits: for 256 MiB on this
    project's test machines that was a third to half a second after the last byte. Every
    ``step`` bytes written here, a thread fdatasyncs what has been written so far, so
    the disk works during the transfer and the final fsync finds only the tail.

    The final fsync is still the owner's (nothing here replaces it). The thread opens
    the file anew rather than sharing the owner's descriptor: Linux reports a write-back
    error once per open file description, and it must reach the owner's fsync. Its own
    errors are ignored for the same reason. At most one such thread runs per file; a
    step that finds the previous one still syncing is folded into the next.
    """

    def __init__(self, path: str, mode: str, step: int = WRITEBACK_STEP):
        super().__init__(io.FileIO(path, mode.replace("b", "")))
        self._step = step
        self._unsynced = 0
        self._syncing: threading.Thread | None = None

    def write(self, data: bytes) -> int:  # type: ignore[override]
        written = super().write(data)
        self._unsynced += written
        if self._unsynced >= self._step and not (self._syncing and self._syncing.is_alive()):
            self._unsynced = 0
            self.flush()
            self._syncing = threading.Thread(target=_sync_quietly, args=(self.name,), name="writeback", daemon=True)
            self._syncing.start()
        return written

    def join_writeback(self) -> None:
        """Wait for the background sync under way, if any (the owner's fsync need not)."""
        if self._syncing is not None:
            self._syncing.join()

    @property
    def writeback_started(self) -> bool:
        return self._syncing is not None


def _sync_quietly(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fdatasync(fd)
    except OSError:
        pass  # the owner's own fsync reports it
    finally:
        os.close(fd)


def write_atomic(
    path: Path, data: bytes, mode: int = 0o644, sync_dir: bool = True, temporary: Path | None = None
) -> None:
    """Write ``data`` to ``path`` all or nothing: temp file, fsync, rename, fsync dir.

    The temporary name is unique (mkstemp), so concurrent writers in other threads or
    processes never share one; the last rename wins. ``sync_dir=False`` leaves the
    directory fsync to the caller, who then owes one ``fsync_dir`` before reporting
    success (a store committing many files at once pays it once). ``temporary`` names
    the temporary file instead, for a caller that owns that name (a store naming it
    after a number it reserved): no random names to try, and a leftover of a crash
    there is overwritten; ``mode`` is then subject to the umask, as for any new file.
    """
    if temporary is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        temporary = Path(name)
        set_mode = True
    else:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        try:
            fd = os.open(temporary, flags, mode)
        except FileNotFoundError:  # the directory is gone (removed from outside): made again
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, flags, mode)
        set_mode = False
    try:
        try:
            if set_mode:
                os.fchmod(fd, mode)
            write_synced(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)

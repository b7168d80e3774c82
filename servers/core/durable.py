"""Durable writes: what a server told a client is stored survives a crash.

Rule: data is fsynced before it becomes visible under its final name, and the
directory entry is fsynced after the rename, so after a crash a file is either
absent or complete. Every store (mail, files, uploads, keys, certificates) uses
these three functions rather than its own copy.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(directory: Path | str) -> None:
    """Make a rename or creation inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path | str) -> None:
    """fsync a finished file and its directory entry (call before reporting success)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(Path(path).parent)


def write_atomic(path: Path, data: bytes, mode: int = 0o644, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` all or nothing: temp file, fsync, rename, fsync dir.

    The temporary name is unique (mkstemp), so concurrent writers in other threads or
    processes never share one; the last rename wins. ``sync_dir=False`` leaves the
    directory fsync to the caller, who then owes one ``fsync_dir`` before reporting
    success (a store committing many files at once pays it once).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)

"""ConfinedFS: pyftpdlib's filesystem layer, with every client path sent through FileRoot.

pyftpdlib normalizes client paths itself (``ftpnorm``) and clamps ``..`` at the home;
here the normalization is :meth:`FileRoot.normalize` instead, so FTP refuses exactly
what SFTP refuses (``..`` above the home, encoded traversal, NUL bytes) and the
real-path check (:func:`confine`) refuses symlinks that lead out. A refusal is a
:class:`PathEscapeError` (a ``PermissionError``): inside pyftpdlib's command methods it
becomes their usual ``550``; the control channel turns the rest into ``550`` too.

Unlike pyftpdlib's ``chdir``, ours never calls ``os.chdir``: the process is shared with
every other server, and its working directory is not ours to move.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyftpdlib.filesystems import AbstractedFS

from ..core.durable import EarlyWriteback
from ..files.root import FileRoot, PathEscapeError, confine


class ConfinedFS(AbstractedFS):  # type: ignore[misc]
    """A user's home as pyftpdlib sees it; ``cmd_channel`` carries ``file_root``."""

    def __init__(self, root: str, cmd_channel: Any):
        super().__init__(os.path.realpath(root), cmd_channel)
        self._home = Path(self.root)

    # -- client path -> disk path ------------------------------------------------------
    def ftpnorm(self, ftppath: str) -> str:
        return FileRoot.normalize(ftppath, self.cwd)

    def ftp2fs(self, ftppath: str) -> str:
        return str(confine(self._home, self.ftpnorm(ftppath)))

    def validpath(self, path: str) -> bool:
        """True when ``path`` really (symlinks followed) lies inside the home."""
        real = os.path.realpath(path)
        return real == self.root or real.startswith(self.root + os.sep)

    # -- operations ----------------------------------------------------------------------
    def chdir(self, path: str) -> None:
        if not self.validpath(path):
            raise PathEscapeError("outside the home")
        if not os.path.isdir(path):
            raise NotADirectoryError(20, "Not a directory", path)
        if not os.access(path, os.X_OK):
            raise PermissionError(13, "Permission denied", path)
        self.cwd = self.fs2ftp(path)

    def stat(self, path: str) -> os.stat_result:
        # Listings stat every entry; a link leading out must not reveal its target's
        # size or times (MLSD skips entries whose stat fails).
        if not self.validpath(path):
            raise PathEscapeError("symbolic link leads outside the home")
        return os.stat(path)

    def open(self, filename: str, mode: str) -> Any:
        if not self.validpath(filename):
            raise PathEscapeError("outside the home")
        if "r" in mode and "+" not in mode:
            return open(filename, mode)  # noqa: SIM115 - pyftpdlib closes it
        # An upload (STOR, APPE, STOR after REST): its data starts for the disk while
        # it arrives, so the fsync before the 226 (DurableUploads) waits for the tail only.
        return EarlyWriteback(filename, mode)

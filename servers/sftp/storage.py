"""HomeSftpServer: the SFTP backend (draft-ietf-secsh-filexfer-02, SFTP v3) on the shared
file root, one instance per SFTP or legacy-scp channel.

asyncssh's :class:`asyncssh.SFTPServer` already mirrors POSIX; this subclass adds what
refservers needs, and nothing else:

1. The chroot is the user's home in :class:`~servers.files.root.FileRoot`: every client
   path goes through ``FileRoot.resolve``, so ``..`` above the home, encoded traversal
   and symlinks whose real target is outside are refused (SSH_FX_PERMISSION_DENIED)
   exactly like FTP refuses them. Operations on a link itself (lstat, remove, rename,
   readlink) check only its parent, as POSIX does.
2. Symlinks may be created only when their target is inside the home; the link is
   written relative, so it never records a host path.
3. Read-only users get SSH_FX_PERMISSION_DENIED for every write (open for writing,
   remove, rename, mkdir, rmdir, setstat, symlink, link).
4. Every file handle is one transfer in the journal (``FileRoot.record_transfer``):
   complete when the client closed it, incomplete when the session ended with the
   handle still open. An upload is fsynced (file and directory entry) before the close
   is acknowledged, so a client told "ok" never loses the data to a crash.
5. Ending the session sends exit-status 0 before the channel closes. asyncssh closes
   an SFTP subsystem channel without one, and OpenSSH 9's ``scp`` (which runs over
   SFTP) then exits 1 after a good transfer (the trap named in the house style).
6. Fault rules (``server = "sftp"``) are consulted before each operation on a name, with
   the subject ``"<OPERATION> <path>"`` (the client's path, normalized): ``OPEN``,
   ``OPENDIR`` (at the first read of the listing), ``REMOVE``, ``MKDIR``, ``RMDIR``,
   ``RENAME`` (the old path), ``SETSTAT``, ``SYMLINK`` and ``LINK`` (the new path), and
   before every ``READ`` and ``WRITE`` request on an open file (the path it was opened
   with; clients send one request per chunk, 32 KiB for OpenSSH). A rule with ``user``
   fires only in that user's sessions.
   ``error`` fails the request with an SFTP status (``params.status``: a number or a
   name such as ``"no_such_file"``, ``"permission_denied"``, ``"failure"`` (default),
   and ``params.message``); ``delay`` answers after ``params.seconds`` (asyncssh awaits
   the request, other channels go on); ``disconnect`` drops the SSH connection.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import posixpath
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

from ..core.faults import SFTP_STATUS_NAMES
from ..files.root import FileRoot, PathEscapeError

if TYPE_CHECKING:
    from .server import SftpServer

# Open flags that change the file: such an open is an upload and needs write permission.
_V3_WRITE_FLAGS = asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC
_V5_WRITE_ACCESS = asyncssh.ACE4_WRITE_DATA | asyncssh.ACE4_APPEND_DATA
FAULT_MESSAGE = "Failure (injected fault)"


def sftp_status(value: int | str) -> int:
    """An SFTP status code from a fault rule's ``params.status`` (checked when the rule was
    added): a number, or a name like ``"no_such_file"`` (asyncssh's ``FX_*`` constants)."""
    return value if isinstance(value, int) else SFTP_STATUS_NAMES[value]


@dataclass
class OpenFile:
    """One open handle: the OS file plus what the journal needs to know about it."""

    file: Any  # the unbuffered file object asyncssh's open() returns
    virtual_path: str
    disk_path: Path
    upload: bool
    transferred: int = 0
    read_up_to: int = 0  # the furthest offset read: a download reaching the size is complete


def _fs_text(path: bytes) -> str:
    # SFTP v3 paths are bytes; undecodable bytes survive as surrogates, like os.fsdecode.
    return path.decode("utf-8", "surrogateescape")


def _fs_bytes(path: str | Path) -> bytes:
    return os.fsencode(str(path))


class HomeSftpServer(asyncssh.SFTPServer):
    """SFTP confined to one user's home in the shared file root.

    :raises asyncssh.SFTPError: from every request the client may not make; OSError
        from the file system is mapped by asyncssh to the matching SSH_FX_* status.
    """

    def __init__(self, chan: asyncssh.SSHServerChannel, server: SftpServer):
        super().__init__(chan)
        self.server = server
        self.root: FileRoot = server.file_root
        self.user_name: str = chan.get_extra_info("username")
        self.peer: str = server.peer_text(chan.get_extra_info("peername"))
        self.home = Path(os.path.realpath(self.root.home(self.user_name)))
        self.writable = self.root.can_write(self.user_name)
        command = chan.get_command()
        if command:  # legacy scp: asyncssh runs it on this same backend
            server.record("command", self.peer, user=self.user_name, command=command)
        else:
            server.record("command", self.peer, user=self.user_name, subsystem=chan.get_subsystem() or "sftp")

    # -- confinement ------------------------------------------------------------------
    def _disk(self, path: bytes, follow_symlinks: bool = True) -> Path:
        try:
            return self.root.resolve(self.user_name, _fs_text(path), "/", follow_symlinks)
        except PathEscapeError as error:
            self.server.log.info("%s %s: refused path: %s", self.peer, self.user_name, error)
            raise asyncssh.SFTPPermissionDenied("Permission denied: path outside your home") from None

    def _virtual(self, disk: str | Path) -> str:
        """The client-visible path of a real (symlink-free) disk path inside the home."""
        relative = os.path.relpath(disk, self.home)
        if relative == ".":
            return "/"
        if relative == ".." or relative.startswith("../") or os.path.isabs(relative):
            raise asyncssh.SFTPNoSuchFile("No such file")
        return "/" + relative

    def _require_write(self, operation: str, path: bytes) -> None:
        self.server.wire.received(self.peer, f"{operation} {_fs_text(path)}")
        if not self.writable:
            raise asyncssh.SFTPPermissionDenied("Permission denied: read-only account")

    # -- fault rules (rule 6) --------------------------------------------------------------
    def _fault_delay(self, subject: str) -> float:
        """Seconds a delay rule holds this request (0: none); raises for error and disconnect."""
        rule = self.server.core.faults.check(self.server.name, subject, self.peer, users=[self.user_name])
        if rule is None:
            return 0.0
        if rule.action == "error":
            raise asyncssh.SFTPError(sftp_status(rule.params["status"]), rule.params["message"])
        if rule.action == "disconnect":
            self.channel.get_connection().abort()
            raise asyncssh.SFTPConnectionLost("Connection dropped (injected fault)")
        return float(rule.params["seconds"])

    def _unless_faulted(self, operation: str, path: bytes, run: Callable[[], Any]) -> Any:
        """``run()`` now, or an awaitable that runs it after a delay rule's wait (asyncssh awaits it)."""
        return self._run_unless_faulted(self._fault_subject(operation, path), run)

    def _fault_subject(self, operation: str, path: bytes) -> str:
        text = _fs_text(path)
        try:
            text = self.root.normalize(text)
        except PathEscapeError:
            pass  # matched as given; the operation itself refuses it
        return f"{operation} {text}"

    def _run_unless_faulted(self, subject: str, run: Callable[[], Any]) -> Any:
        delay = self._fault_delay(subject)
        if not delay:
            return run()

        async def later() -> Any:
            await asyncio.sleep(delay)
            result = run()
            return await result if inspect.isawaitable(result) else result

        return later()

    def map_path(self, path: bytes) -> bytes:
        return _fs_bytes(self._disk(path))

    def reverse_map_path(self, path: bytes) -> bytes:
        return _fs_bytes(self._virtual(os.path.realpath(_fs_text(path))))

    def realpath(self, path: bytes) -> bytes:
        return _fs_bytes(self._virtual(os.path.realpath(self._disk(path))))

    # -- files: open, read, write, close ----------------------------------------------
    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> Any:
        upload = bool(pflags & _V3_WRITE_FLAGS)
        return self._unless_faulted(
            "OPEN", path, lambda: self._open(path, upload, lambda: super(HomeSftpServer, self).open(path, pflags, attrs))
        )

    def open56(self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs) -> Any:
        disposition = flags & asyncssh.FXF_ACCESS_DISPOSITION
        upload = bool(desired_access & _V5_WRITE_ACCESS) or disposition != asyncssh.FXF_OPEN_EXISTING
        return self._unless_faulted("OPEN", path, lambda: self._open(
            path, upload, lambda: super(HomeSftpServer, self).open56(path, desired_access, flags, attrs)
        ))

    def _open(self, path: bytes, upload: bool, open_file: Callable[[], Any]) -> OpenFile:
        if upload:
            self._require_write("OPEN(write)", path)
        else:
            self.server.wire.received(self.peer, f"OPEN(read) {_fs_text(path)}")
        disk = self._disk(path)
        return OpenFile(open_file(), self.root.normalize(_fs_text(path)), disk, upload)

    def read(self, file_obj: object, offset: int, size: int) -> Any:
        handle: OpenFile = file_obj  # type: ignore[assignment]
        return self._run_unless_faulted(f"READ {handle.virtual_path}", lambda: self._read(handle, offset, size))

    def _read(self, handle: OpenFile, offset: int, size: int) -> bytes:
        # One pread(2) per request, not lseek(2) then read(2) as asyncssh's default does:
        # the same bytes (one read call either way, short reads included), a syscall less
        # on each of the 4096 requests of a 128 MiB download.
        data = os.pread(handle.file.fileno(), size, offset)
        handle.transferred += len(data)
        handle.read_up_to = max(handle.read_up_to, offset + len(data))
        return data

    def write(self, file_obj: object, offset: int, data: bytes) -> Any:
        handle: OpenFile = file_obj  # type: ignore[assignment]
        return self._run_unless_faulted(f"WRITE {handle.virtual_path}", lambda: self._write(handle, offset, data))

    def _write(self, handle: OpenFile, offset: int, data: bytes) -> int:
        # pwrite(2) for the same reason as _read; with O_APPEND Linux appends whatever the
        # offset, as lseek(2) then write(2) did.
        written = os.pwrite(handle.file.fileno(), data, offset)
        handle.transferred += written
        return written

    async def close(self, file_obj: object) -> None:
        handle: OpenFile = file_obj  # type: ignore[assignment]
        # Handles still open when the channel is going away were not closed by the
        # client: asyncssh's session cleanup closes them, and the transfer is incomplete.
        complete = not self.channel.is_closing()
        if handle.upload:
            await asyncio.get_running_loop().run_in_executor(None, self._close_durably, handle)
        else:
            complete = complete and handle.read_up_to >= os.fstat(handle.file.fileno()).st_size
            handle.file.close()
        self.root.record_transfer(
            self.server.name,
            self.peer,
            self.user_name,
            handle.virtual_path,
            handle.transferred,
            "upload" if handle.upload else "download",
            complete,
        )

    def _close_durably(self, handle: OpenFile) -> None:
        try:
            os.fsync(handle.file.fileno())
        finally:
            handle.file.close()
        directory = os.open(handle.disk_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def fstat(self, file_obj: object) -> os.stat_result:
        return os.fstat(file_obj.file.fileno())  # type: ignore[attr-defined]

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        handle: OpenFile = file_obj  # type: ignore[assignment]
        if not self.writable:
            raise asyncssh.SFTPPermissionDenied("Permission denied: read-only account")
        super().fsetstat(handle.file, attrs)

    def fsync(self, file_obj: object) -> None:
        os.fsync(file_obj.file.fileno())  # type: ignore[attr-defined]

    def fstatvfs(self, file_obj: object) -> os.statvfs_result:
        return os.statvfs(file_obj.file.fileno())  # type: ignore[attr-defined]

    # -- names: the link itself, not its target ----------------------------------------
    def lstat(self, path: bytes) -> os.stat_result:
        return os.lstat(self._disk(path, follow_symlinks=False))

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> Any:
        return self._unless_faulted("SETSTAT", path, lambda: self._lsetstat(path, attrs))

    def _lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._require_write("LSETSTAT", path)
        super().lsetstat(path, attrs)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> Any:
        return self._unless_faulted("SETSTAT", path, lambda: self._setstat(path, attrs))

    def _setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._require_write("SETSTAT", path)
        super().setstat(path, attrs)

    def remove(self, path: bytes) -> Any:
        return self._unless_faulted("REMOVE", path, lambda: self._remove(path))

    def _remove(self, path: bytes) -> None:
        self._require_write("REMOVE", path)
        disk = self._disk(path, follow_symlinks=False)
        if disk.is_dir() and not disk.is_symlink():
            raise asyncssh.SFTPFileIsADirectory("Is a directory: use rmdir")
        os.remove(disk)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> Any:
        return self._unless_faulted("MKDIR", path, lambda: self._mkdir(path, attrs))

    def _mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._require_write("MKDIR", path)
        super().mkdir(path, attrs)

    def rmdir(self, path: bytes) -> Any:
        return self._unless_faulted("RMDIR", path, lambda: self._rmdir(path))

    def _rmdir(self, path: bytes) -> None:
        self._require_write("RMDIR", path)
        disk = self._disk(path, follow_symlinks=False)
        if disk == self.home or Path(os.path.realpath(disk)) == self.home:
            raise asyncssh.SFTPPermissionDenied("Permission denied: cannot remove your home")
        os.rmdir(disk)

    def rename(self, oldpath: bytes, newpath: bytes) -> Any:
        return self._unless_faulted("RENAME", oldpath, lambda: self._rename(oldpath, newpath))

    def _rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._require_write("RENAME", oldpath + b" -> " + newpath)
        old, new = self._disk(oldpath, False), self._disk(newpath, False)
        if new.exists() or new.is_symlink():
            # SFTP v3 rename must not replace (posix-rename@openssh.com does).
            raise asyncssh.SFTPFileAlreadyExists("File already exists")
        os.rename(old, new)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> Any:
        return self._unless_faulted("RENAME", oldpath, lambda: self._posix_rename(oldpath, newpath))

    def _posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._require_write("POSIX-RENAME", oldpath + b" -> " + newpath)
        os.replace(self._disk(oldpath, False), self._disk(newpath, False))

    def readlink(self, path: bytes) -> bytes:
        target = os.readlink(self._disk(path, follow_symlinks=False))
        if not os.path.isabs(target):
            return _fs_bytes(target)  # relative links read the same inside the chroot
        return _fs_bytes(self._virtual(os.path.realpath(target)))

    def symlink(self, oldpath: bytes, newpath: bytes) -> Any:
        return self._unless_faulted("SYMLINK", newpath, lambda: self._symlink(oldpath, newpath))

    def _symlink(self, oldpath: bytes, newpath: bytes) -> None:
        """Create ``newpath`` pointing at ``oldpath``; the target must stay inside the home.

        :raises asyncssh.SFTPPermissionDenied: for a target outside the home.
        """
        self._require_write("SYMLINK", newpath + b" -> " + oldpath)
        link = self._disk(newpath, follow_symlinks=False)
        target_text = _fs_text(oldpath)
        link_dir = self.root.normalize(posixpath.dirname(self.root.normalize(_fs_text(newpath))))
        try:
            target_virtual = self.root.normalize(target_text, link_dir)
        except PathEscapeError:
            raise asyncssh.SFTPPermissionDenied("Permission denied: link target outside your home") from None
        target = self._disk(_fs_bytes(target_virtual))
        os.symlink(os.path.relpath(target, link.parent), link)

    def link(self, oldpath: bytes, newpath: bytes) -> Any:
        return self._unless_faulted("LINK", newpath, lambda: self._link(oldpath, newpath))

    def _link(self, oldpath: bytes, newpath: bytes) -> None:
        self._require_write("LINK", newpath + b" -> " + oldpath)
        os.link(self._disk(oldpath), self._disk(newpath, False))

    # -- directories ----------------------------------------------------------------------
    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        # Not the base class's: it lstat()s "<dir>/..", which for the home is above the
        # chroot; here ".." of the home is the home itself, as in any chroot.
        delay = self._fault_delay(self._fault_subject("OPENDIR", path))
        if delay:
            await asyncio.sleep(delay)
        directory = self._disk(path)
        if not directory.is_dir():
            raise asyncssh.SFTPNoSuchFile("Not a directory")
        parent = directory if Path(os.path.realpath(directory)) == self.home else directory.parent
        for name, where in ((b".", directory), (b"..", parent)):
            yield asyncssh.SFTPName(name, attrs=asyncssh.SFTPAttrs.from_local(os.stat(where)))
        with os.scandir(directory) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                yield asyncssh.SFTPName(os.fsencode(entry.name), attrs=asyncssh.SFTPAttrs.from_local(info))

    # -- end of session -------------------------------------------------------------------
    def exit(self) -> None:
        # See rule 5 of the module docstring. A no-op when the channel already closed
        # (connection lost) or legacy scp already sent its own status.
        self.channel.exit(0)

"""The FTP control and data channels: pyftpdlib's handlers plus what refservers adds.

pyftpdlib (RFC 959, 2228/4217 FTPS, 2389 FEAT, 2428 EPSV/EPRT, 2640 UTF-8, 3659
MLST/MLSD/SIZE/MDTM/REST) keeps the protocol; these subclasses add, at its documented
hooks:

- the journal: ``connect``/``disconnect``, ``command`` (never the PASS argument),
  ``auth`` ok or failed, and one ``file`` event per transfer through
  :meth:`FileRoot.record_transfer`, complete or not;
- the wire trace (``respond`` and ``pre_process_command`` see every line);
- fault rules matched against the command line (``error``, ``delay``, ``disconnect``);
- refusals of paths outside the home as ``550`` (see filesystem.py);
- implicit FTPS: TLS from the first byte, which pyftpdlib does not offer;
- durable uploads: the data channel fsyncs a received file before the ``226``;
- the 426 rule: an upload whose data connection was cut (a reset, or on TLS an end
  without close_notify) gets ``426`` and is journalled incomplete, never ``226``
  (pyftpdlib takes a reset for the end of the file). See docs/ftp.md.

Class attributes (``refserver``, ``file_root``, ``authorizer``, TLS context, passive
ports...) are set per server on a subclass made by :func:`control_channel_class`,
because pyftpdlib reads its configuration from handler class attributes.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from OpenSSL import SSL

# pyftpdlib's private "nothing to read yet, retry" signal, the only way a recv() tells
# DTPHandler.handle_read that no data is not the end of the stream. Checked against
# pyftpdlib 2.2.0 (present since 1.0); if it moves, this import fails at start-up.
from pyftpdlib.exceptions import _RetryError
from pyftpdlib.handlers import ThrottledDTPHandler, TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.log import logger

from ..core.logs import mask_credentials
from ..files.root import FileRoot, PathEscapeError

if TYPE_CHECKING:
    from .server import FtpServer

DEFAULT_FAULT_REPLY = "451 Local error"
REFUSED_PATH_REPLY = "550 Permission denied: the path leads outside your home."


# A socket read that failed with one of these is worth retrying, not a cut connection.
RETRY_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR})
# Reads (of up to 64 KiB) a hung-up upload gets to reach its end before it counts as cut.
DRAIN_READS = 4096


class CutUploadsGet426:
    """Data-channel mixin: an upload ends only at a clean end of stream; a cut one gets 426.

    The clean ends are a TCP FIN on a clear-text data connection (RFC 959 stream mode:
    the close is the end of file) and a TLS close_notify on a protected one (RFC 4217
    section 8; vsftpd's ``strict_ssl_read_eof``). Anything else (a reset, a FIN without
    close_notify, a TLS error) cuts the upload: the client gets ``426``, the journal
    ``complete: false``, the file is not fsynced and the bytes received are kept, as
    vsftpd keeps them, so the client can resume with ``REST``/``APPE``.

    pyftpdlib's own recv() turns a reset and a missing close_notify into an ordinary
    end of file (and so a ``226``); for uploads this recv() takes its place. Downloads
    keep pyftpdlib's path: there the 226 depends on what was sent, not on the close.
    """

    receive: bool
    transfer_finished: bool
    read_limit: int = 0
    socket: Any
    cmd_channel: Any
    _ssl_requested: bool
    _ssl_want_read: bool
    _ssl_want_write: bool
    _error: bool
    _resp: tuple[str, Any]
    _closed: bool
    file_obj: Any
    cut_reason: str | None = None
    _clean_end = False

    def close(self) -> None:
        if (
            not self._closed
            and not self._resp
            and self.file_obj is not None
            and not self.transfer_finished
            and not self.cmd_channel._closed
        ):
            # pyftpdlib closes without a reply when the peer goes away during the TLS
            # handshake; the client's STOR/RETR must still get an answer.
            self._resp = ("426 Data connection closed; transfer aborted.", logger.info)
        super().close()  # type: ignore[misc]
        # A data connection reset before pyftpdlib could use it (even before accept)
        # leaves a queued STOR/RETR waiting for a connection that will never come.
        self.cmd_channel.fail_orphaned_transfer()

    def handle_close(self) -> None:
        if self.receive and not self._closed and not self._clean_end:
            # The poller calls this on a hang-up (an error or HUP while READ was not among
            # the events asked for), which pyftpdlib takes for the end of the file. Read
            # what is left instead: recv() tells a clean end from a cut one.
            for _ in range(DRAIN_READS):
                if self._closed:
                    return
                try:  # the poller calls handle_close unguarded: an error here would stop the loop
                    self.handle_read_event()  # type: ignore[attr-defined]
                except Exception:  # noqa: BLE001 - pyftpdlib's handle_error answers 426 and closes
                    self.handle_error()  # type: ignore[attr-defined]
                    return
            if not self._closed:
                self._cut("the data connection hung up")
            return
        super().handle_close()  # type: ignore[misc]

    def _end_of_file(self) -> bytes:
        self._clean_end = True
        self.handle_close()
        return b""

    def secure_connection(self, ssl_context: Any) -> None:
        # The data channel has a context of its own: no session tickets (see
        # FtpServer._tls_context), which pyftpdlib would take from the control channel.
        super().secure_connection(self.cmd_channel.data_ssl_context)  # type: ignore[misc]

    def recv(self, buffer_size: int) -> bytes:
        if not self.receive:
            return super().recv(buffer_size)  # type: ignore[misc,no-any-return]
        try:
            chunk: bytes = self.socket.recv(buffer_size)
        except SSL.WantReadError as error:
            self._ssl_want_read = True
            raise _RetryError from error
        except SSL.WantWriteError as error:
            self._ssl_want_write = True
            raise _RetryError from error
        except SSL.ZeroReturnError:  # close_notify: the sender's end of file
            return self._end_of_file()
        except SSL.SysCallError as error:
            code, text = error.args
            if code in RETRY_ERRNOS:
                raise _RetryError from error
            return self._cut("closed without TLS close_notify" if text == "Unexpected EOF" else _describe(code, text))
        except SSL.Error as error:  # OpenSSL 3 reports a bare FIN as "unexpected eof while reading"
            return self._cut(f"TLS error: {_ssl_reason(error)}")
        except OSError as error:
            if error.errno in RETRY_ERRNOS:
                raise _RetryError from error
            return self._cut(_describe(error.errno, error.strerror))
        if not chunk:
            if self._ssl_requested:  # pyOpenSSL raises instead, but a bare FIN is never an end on TLS
                return self._cut("closed without TLS close_notify")
            return self._end_of_file()  # clear text: the FIN is the end of file
        if self.read_limit:  # ThrottledDTPHandler's accounting, which its recv() would do
            self._throttle_bandwidth(len(chunk), self.read_limit)  # type: ignore[attr-defined]
        return chunk

    def _cut(self, reason: str) -> bytes:
        self.cut_reason = reason
        self.transfer_finished = False
        received = self.get_transmitted_bytes()  # type: ignore[attr-defined]
        self._resp = (
            f"426 Upload cut short ({reason}); {received} bytes received and kept, file incomplete.",
            logger.info,
        )
        self._error = True  # the connection is gone: no TLS shutdown (SSLConnectionMixin.close)
        self.cmd_channel.refserver.log.info("%s upload cut: %s", self.cmd_channel.peer, reason)
        self.close()  # type: ignore[attr-defined]
        return b""


def _describe(code: int | None, text: str | None) -> str:
    if code == errno.ECONNRESET:
        return "data connection reset by peer"
    return f"data connection error: {text or code}"


def _ssl_reason(error: SSL.Error) -> str:
    details = error.args[0] if error.args else None
    if isinstance(details, list) and details and isinstance(details[-1], tuple):
        return str(details[-1][-1])
    return str(error)


class DurableUploads:
    """Data-channel mixin: a received file is fsynced before the 226 is sent.

    pyftpdlib closes the file, then replies 226; close() is where we step in first.
    If fsync fails (disk full on flush), the client gets 451 instead and the journal
    marks the upload incomplete.
    """

    receive: bool
    transfer_finished: bool
    file_obj: Any
    _closed: bool
    _resp: tuple[str, Any]

    def close(self) -> None:
        if (
            not self._closed
            and self.receive
            and self.transfer_finished
            and self.file_obj is not None
            and not self.file_obj.closed
        ):
            try:
                self.file_obj.flush()
                os.fsync(self.file_obj.fileno())
                FileRoot.make_durable(self.file_obj.name)
            except OSError as error:
                self.transfer_finished = False
                self._resp = (f"451 File not stored: {error.strerror or error}.", logger.warning)
        super().close()  # type: ignore[misc]


class HandshakeBeforeClose:
    """Data-channel mixin: a PROT P transfer that finished before the client's TLS
    handshake did (an empty listing) waits for the handshake before closing.

    pyftpdlib closes such a channel at once and, the handshake being unfinished, skips
    the TLS shutdown: clients then fail with SHUTDOWN_WHILE_IN_INIT on an empty
    directory. Only a finished transfer is held back, and only once: a second close()
    (an error, the server stopping) closes for real.
    """

    _ssl_accepting: bool
    _error: bool
    _closed: bool
    transfer_finished: bool
    _close_after_handshake = False

    def close(self) -> None:
        if (
            self._ssl_accepting
            and self.transfer_finished
            and not self._error
            and not self._closed
            and not self._close_after_handshake
        ):
            self._close_after_handshake = True
            return
        super().close()  # type: ignore[misc]

    def handle_ssl_established(self) -> None:
        super().handle_ssl_established()  # type: ignore[misc]
        if self._close_after_handshake:
            self.close()


# What one recv() of an upload may take (pyftpdlib's ac_in_buffer_size, 64 KiB by
# default). Each chunk is a turn of the I/O loop and a write() to the file: a 256 MiB STOR
# went at 190-290 MiB/s with 64 KiB and 290-420 with 1 MiB (six alternating runs each,
# under load), with a third less system time. A TLS recv() still returns one record.
UPLOAD_CHUNK = 1024 * 1024


class DataChannel(CutUploadsGet426, HandshakeBeforeClose, DurableUploads, TLS_DTPHandler):  # type: ignore[misc]
    """Plain or PROT P data connection (TLS only after PROT P)."""

    ac_in_buffer_size = UPLOAD_CHUNK


class ThrottledDataChannel(  # type: ignore[misc]
    CutUploadsGet426, HandshakeBeforeClose, DurableUploads, TLS_DTPHandler, ThrottledDTPHandler
):
    """The same, bandwidth-limited by ``read_limit``/``write_limit`` (bytes per second)."""

    ac_in_buffer_size = UPLOAD_CHUNK  # pyftpdlib halves it down to read_limit


class ControlChannel(TLS_FTPHandler):  # type: ignore[misc]
    """One client's control connection."""

    refserver: FtpServer
    file_root: FileRoot
    data_ssl_context: Any = None  # the data channels' TLS context (FtpServer._tls_context)
    implicit_tls = False
    # pyftpdlib's (2.2.0) transfer state, read by fail_orphaned_transfer
    _in_dtp_queue: Any
    _out_dtp_queue: Any
    _dtp_acceptor: Any
    _dtp_connector: Any

    @property
    def peer(self) -> str:
        return f"{self.remote_ip}:{self.remote_port}"

    # -- connection ------------------------------------------------------------------------
    def handle(self) -> None:
        if not self.implicit_tls:
            super().handle()
            return
        # Implicit FTPS (port 990 style): the TLS handshake comes first and the 220
        # greeting goes out encrypted once it completes (handle_ssl_established).
        self.on_connect()
        self._greeting_pending = True
        self._pbsz = True
        self._prot = True  # implicit FTPS clients expect protected data by default
        self.secure_connection(self.ssl_context)

    def handle_ssl_established(self) -> None:
        if getattr(self, "_greeting_pending", False):
            self._greeting_pending = False
            self.respond(f"220 {self.banner}")

    def on_connect(self) -> None:
        self.refserver.record("connect", self.peer, tls="implicit" if self.implicit_tls else "none")

    def on_disconnect(self) -> None:
        self.refserver.record("disconnect", self.peer, user=self.username or None)

    def on_login(self, username: str) -> None:
        self.refserver.record("auth", self.peer, user=username, ok=True)

    def on_login_failed(self, username: str, password: str) -> None:
        self.refserver.record("auth", self.peer, user=username, ok=False)

    # pyftpdlib pauses a channel by taking it out of the loop's map (after a failed login;
    # our delay fault does the same). A paused channel is invisible to IOLoop.close(), so
    # the server keeps them to close on stop.
    def del_channel(self, map: Any = None) -> None:
        super().del_channel(map)
        if not self._closed:
            self.refserver.paused_channels.add(self)

    def add_channel(self, map: Any = None, events: Any = None) -> None:
        super().add_channel(map, events)
        self.refserver.paused_channels.discard(self)

    def close(self) -> None:
        super().close()
        self.refserver.paused_channels.discard(self)

    # -- commands ----------------------------------------------------------------------------
    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        secret = cmd == "PASS"
        self.refserver.wire.received(self.peer, line, secret=secret)
        shown = f"{cmd} ****" if secret else mask_credentials(line)
        self.refserver.record(
            "command", self.peer, user=self.username or None, command=cmd, arg=None if secret else arg
        )
        # Who the command is about, for user-scoped rules: USER names the login, and
        # pyftpdlib keeps that name from USER on (through PASS and the session).
        about = arg if cmd == "USER" else self.username
        rule = self.refserver.core.faults.check(self.refserver.name, shown, self.peer, users=[about])
        if rule is not None and self._carry_out_fault(rule, line, cmd, arg):
            return
        self._process(line, cmd, arg)

    def _process(self, line: str, cmd: str, arg: str) -> None:
        try:
            super().pre_process_command(line, cmd, arg)
        except PathEscapeError as error:
            self.refserver.log.info("%s %s refused: %s", self.peer, cmd, error)
            self.respond(REFUSED_PATH_REPLY)
        self.fail_orphaned_transfer()

    def fail_orphaned_transfer(self) -> None:
        """A transfer queued for a data connection that can no longer come gets 425.

        pyftpdlib answers ``150`` and waits when STOR/RETR arrives before the data
        connection; if that connection was reset meanwhile (it is then dropped when
        accepted), nothing else would ever answer the command. The private queue and
        acceptor attributes are pyftpdlib 2.2.0's (ControlChannel docstring).
        """
        # pyftpdlib closes the passive acceptor before it hands the connection on, and
        # keeps it as _dtp_acceptor when the handover fails: a closed one waits for nothing.
        acceptor_waiting = self._dtp_acceptor is not None and self._dtp_acceptor.accepting
        if self._closed or self.data_channel is not None or acceptor_waiting or self._dtp_connector is not None:
            return
        upload, download = self._in_dtp_queue, self._out_dtp_queue
        if upload is None and download is None:
            return
        self._in_dtp_queue = self._out_dtp_queue = None
        file, cmd = (upload[0], upload[1]) if upload is not None else (download[2], download[3])
        if file is not None:
            file.close()
            self.log_transfer(cmd, file.name, upload is not None, False, 0.0, 0)
        self.respond("425 Data connection closed before the transfer started.")

    def _carry_out_fault(self, rule: Any, line: str, cmd: str, arg: str) -> bool:
        """Apply a fault rule; True when the command must not run now."""
        if rule.action == "error":
            self.respond(rule.params["reply"])
            return True
        if rule.action == "disconnect":
            self.close()
            return True
        if rule.action == "delay":
            # Stop reading until the delayed command ran, so later commands keep their order.
            self.del_channel()
            self.ioloop.call_later(
                rule.params["seconds"], self._resume, line, cmd, arg, _errback=self.handle_error
            )
            return True
        return False

    def _resume(self, line: str, cmd: str, arg: str) -> None:
        if self._closed:
            return
        self.add_channel()
        self._process(line, cmd, arg)

    def respond(self, resp: str, logfun: Any = logger.debug) -> None:
        self.refserver.wire.sent(self.peer, resp)
        super().respond(resp, logfun)

    # -- transfers ---------------------------------------------------------------------------
    def log_transfer(
        self, cmd: str, filename: str, receive: bool, completed: bool, elapsed: float, bytes: int
    ) -> None:
        try:
            path = self.file_root.virtual(self.username, filename)
        except ValueError:
            path = filename
        self.file_root.record_transfer(
            self.refserver.name,
            self.peer,
            self.username,
            path,
            int(bytes),
            "upload" if receive else "download",
            bool(completed),
        )


def control_channel_class(base: type[ControlChannel], name: str, **attributes: Any) -> type[ControlChannel]:
    """A per-server subclass carrying pyftpdlib's class-attribute configuration."""
    return type(name, (base,), attributes)

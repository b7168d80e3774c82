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
- durable uploads: the data channel fsyncs a received file before the ``226``.

Class attributes (``refserver``, ``file_root``, ``authorizer``, TLS context, passive
ports...) are set per server on a subclass made by :func:`control_channel_class`,
because pyftpdlib reads its configuration from handler class attributes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pyftpdlib.handlers import ThrottledDTPHandler, TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.log import logger

from ..core.logs import mask_credentials
from ..files.root import FileRoot, PathEscapeError

if TYPE_CHECKING:
    from .server import FtpServer

DEFAULT_FAULT_REPLY = "451 Local error"
REFUSED_PATH_REPLY = "550 Permission denied: the path leads outside your home."


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


class DataChannel(HandshakeBeforeClose, DurableUploads, TLS_DTPHandler):  # type: ignore[misc]
    """Plain or PROT P data connection (TLS only after PROT P)."""


class ThrottledDataChannel(HandshakeBeforeClose, DurableUploads, TLS_DTPHandler, ThrottledDTPHandler):  # type: ignore[misc]
    """The same, bandwidth-limited by ``read_limit``/``write_limit`` (bytes per second)."""


class ControlChannel(TLS_FTPHandler):  # type: ignore[misc]
    """One client's control connection."""

    refserver: FtpServer
    file_root: FileRoot
    implicit_tls = False

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

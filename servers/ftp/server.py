"""FtpServer: FTP with explicit FTPS (port 2121) and implicit FTPS (port 2990), on pyftpdlib.

pyftpdlib runs its own IOLoop; here that loop gets a thread of its own per server.
Both listeners are bound in :meth:`_bind` (port 0 allowed, the bound ports read back
before the thread starts), served by the one loop, and :meth:`_unbind` stops the loop,
which then closes the listeners and every open control and data connection from its
own thread (pyftpdlib's loop is not thread-safe, so nothing else touches it).

Users, homes and permissions come from the shared UserTable and FileRoot (see
authorizer.py, filesystem.py and servers/files/root.py); the protocol additions live in
channels.py. The files admin API is contributed from servers/files/api.py.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from typing import Any

from OpenSSL import SSL
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from ..core.config import BOOL, FLOAT, INT, PORT, STR, ConfigError, Kind, Option, Settings
from ..core.context import Core
from ..core.faults import DELAY, DISCONNECT, FTP_REPLY, FaultAction, Param
from ..core.lifecycle import BindError, Server, probe_greeting
from ..files.root import FileRoot
from .authorizer import UserTableAuthorizer
from .channels import DEFAULT_FAULT_REPLY, ControlChannel, DataChannel, ThrottledDataChannel, control_channel_class
from .filesystem import ConfinedFS

# How long the loop thread waits for I/O before checking whether stop() was called:
# the upper bound on how long stop() takes.
LOOP_POLL_SECONDS = 0.05
BANNER = "refservers FTP ready."


def _passive_ports(value: Any) -> tuple[int, int] | None:
    text = str(value).strip()
    if text in ("0", "", "any"):
        return None  # any free port the kernel picks
    low_text, sep, high_text = text.partition("-")
    low, high = int(low_text), int(high_text) if sep else int(low_text)
    if not 1 <= low <= high <= 65535:
        raise ValueError
    return (low, high)


PASSIVE_PORTS = Kind("a port range such as 30000-30009, or 0 for any free port", _passive_ports, _passive_ports)


class FtpServer(Server):
    name = "ftp"
    description = "FTP with explicit (AUTH TLS) and implicit FTPS, on the shared per-user file root"
    scheme = "ftp"
    options = (
        Option("port", PORT, 2121, "FTP port (explicit FTPS with AUTH TLS on the same port)"),
        Option("tls_port", PORT, 2990, "implicit FTPS port (TLS from the first byte)"),
        Option("passive_ports", PASSIVE_PORTS, (30000, 30009), "passive data ports (publish them from containers); 0: any free port"),
        Option("masquerade_address", STR, "", "IPv4 address announced in PASV replies (the host's address behind Docker port mapping)"),
        Option("require_tls", BOOL, False, "refuse USER/PASS before AUTH TLS and data before PROT P"),
        Option("upload_limit", INT, 0, "upload bandwidth limit per transfer in bytes/s (0: none)"),
        Option("download_limit", INT, 0, "download bandwidth limit per transfer in bytes/s (0: none)"),
        Option("idle_timeout", FLOAT, 300.0, "seconds a control connection may stay idle"),
        Option("auth_failed_delay", FLOAT, 1.0, "seconds before answering a failed login (slows guessing)"),
    )
    stores = ("users", "files")
    fault_subject = 'the command line, PASS masked ("RETR *", "PASS ****")'
    fault_user = "the name of USER, for every command from USER on"
    fault_actions = {
        "error": FaultAction(
            "answer params.reply instead of running the command",
            (Param("reply", FTP_REPLY, default=DEFAULT_FAULT_REPLY, help="the reply line sent instead"),),
        ),
        "delay": DELAY,
        "disconnect": DISCONNECT,
    }
    test_settings = {"passive_ports": "0", "auth_failed_delay": "0"}

    def __init__(self, settings: Settings, core: Core):
        super().__init__(settings, core)
        if settings.masquerade_address:
            try:
                ipaddress.IPv4Address(settings.masquerade_address)
            except ValueError:
                raise ConfigError(
                    f"[ftp] masquerade_address: expected an IPv4 address (PASV replies carry IPv4), "
                    f"got {settings.masquerade_address!r}"
                ) from None
        self.file_root = core.shared(FileRoot)
        self._ioloop: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # Control channels pyftpdlib took out of the loop for a while (touched only on
        # the loop thread); see ControlChannel.del_channel.
        self.paused_channels: set[Any] = set()
        _route_library_logs(self.log)

    # -- lifecycle ---------------------------------------------------------------------------
    def _bind(self) -> None:
        self.file_root.prepare_homes()
        control = self._control_class()
        implicit = control_channel_class(control, "ImplicitTlsControlChannel", implicit_tls=True)
        self._ioloop = IOLoop()
        self._stopping.clear()
        for listener, port, handler in (
            ("main", self.settings.port, control),
            ("tls", self.settings.tls_port, implicit),
        ):
            sock = self._listen_socket(listener, port)
            FTPServer(sock, handler, ioloop=self._ioloop)
            self.listeners[listener] = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"refservers-{self.name}", daemon=True)
        self._thread.start()

    def _unbind(self) -> None:
        thread, self._thread = self._thread, None
        self._stopping.set()
        if thread is not None:
            thread.join(timeout=10)
            if thread.is_alive():
                self.log.warning("FTP loop thread did not stop within 10s")
        elif self._ioloop is not None:
            self._ioloop.close()  # bound but never served (start failed early)
        self._ioloop = None

    def _serve(self) -> None:
        loop = self._ioloop
        try:
            while not self._stopping.is_set():
                loop.loop(timeout=LOOP_POLL_SECONDS, blocking=False)
        except Exception:  # noqa: BLE001 - a crashed loop must still release its sockets
            self.log.exception("FTP loop failed")
        finally:
            for channel in list(self.paused_channels):
                channel.close()
            loop.close()

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        return probe_greeting(host, port, timeout, expect=b"220", send_after=b"QUIT\r\n")

    # -- construction --------------------------------------------------------------------------
    def _control_class(self) -> type[ControlChannel]:
        settings = self.settings
        limits = {"read_limit": settings.upload_limit, "write_limit": settings.download_limit}
        if settings.upload_limit or settings.download_limit:
            data: type = type("LimitedDataChannel", (ThrottledDataChannel,), limits)
        else:
            data = DataChannel
        ports = settings.passive_ports
        return control_channel_class(
            ControlChannel,
            "FtpControlChannel",
            refserver=self,
            file_root=self.file_root,
            authorizer=UserTableAuthorizer(self.core.users, self.file_root),
            dtp_handler=data,
            abstracted_fs=ConfinedFS,
            banner=BANNER,
            passive_ports=list(range(ports[0], ports[1] + 1)) if ports else None,
            masquerade_address=settings.masquerade_address or None,
            tls_control_required=settings.require_tls,
            tls_data_required=settings.require_tls,
            ssl_context=self._tls_context(),
            data_ssl_context=self._tls_context(data_channel=True),
            timeout=settings.idle_timeout or None,
            auth_failed_timeout=settings.auth_failed_delay,
        )

    def _tls_context(self, data_channel: bool = False) -> Any:
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_options(SSL.OP_NO_SSLv2 | SSL.OP_NO_SSLv3 | SSL.OP_NO_COMPRESSION)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        if data_channel:
            # No session tickets on data channels. A client that sends its file, then
            # close_notify, and closes without reading (curl does) leaves the tickets
            # unread, and its kernel answers that close with an RST: the server would
            # see a cut upload (the 426 rule, channels.py). TLS 1.3 sends tickets after
            # the handshake even with OP_NO_TICKET (stateful ones), and pyOpenSSL has no
            # SSL_CTX_set_num_tickets; TLS 1.2 with OP_NO_TICKET sends none at all.
            context.set_options(SSL.OP_NO_TICKET)
            context.set_max_proto_version(SSL.TLS1_2_VERSION)
        context.use_certificate_chain_file(str(self.core.tls.cert_file))
        context.use_privatekey_file(str(self.core.tls.key_file))
        return context

    def _listen_socket(self, listener: str, port: int) -> socket.socket:
        try:
            family = socket.getaddrinfo(self.host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
            return socket.create_server((self.host, port), family=family, backlog=100)
        except OSError as error:
            raise BindError(
                f"{self.name}: cannot listen on {self.host}:{port} ({listener}): {error.strerror or error}"
            ) from None


class _ForwardToServerLog(logging.Handler):
    """Sends pyftpdlib's own warnings and errors to the ftp server's logger."""

    def __init__(self, target: logging.Logger):
        super().__init__(logging.WARNING)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.log(record.levelno, "pyftpdlib: %s", record.getMessage(), exc_info=record.exc_info)


def _route_library_logs(target: logging.Logger) -> None:
    # pyftpdlib logs every session at INFO and, if nothing is configured, installs a
    # root handler of its own; our journal and wire trace already say all of that.
    library = logging.getLogger("pyftpdlib")
    library.propagate = False
    library.setLevel(logging.WARNING)
    if not any(isinstance(handler, _ForwardToServerLog) for handler in library.handlers):
        library.addHandler(_ForwardToServerLog(target))

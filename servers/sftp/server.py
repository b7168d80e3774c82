"""SftpServer: SSH on asyncssh (RFC 4251-4254) serving SFTP, scp and a scripted shell.

What runs where:

- the listener and every connection live on the shared asyncio loop
  (``core.loop.loop``); ``_bind``/``_unbind`` hop onto it with ``core.loop``;
- :mod:`.connection` authenticates against the shared user table and journals;
- :mod:`.storage` is the SFTP backend on the shared file root (also used by legacy
  ``scp -O``, which asyncssh runs on the same backend);
- :mod:`.session` answers exec requests and shells with :mod:`servers.shell`;
- :mod:`.keys` keeps the persistent ed25519 host key and the authorized keys.

The readiness probe is the RFC 4253 section 4.2 identification exchange: it reads the
server's ``SSH-2.0-`` line and answers with its own, as every SSH client starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncssh

from ..core.config import BOOL, PATH, PORT, STR, STR_TABLE, Option
from ..core.faults import DELAY, DISCONNECT, SFTP_STATUS, STRING, FaultAction, Param
from ..core.lifecycle import BindError, Server, probe_greeting
from ..files.root import FileRoot
from . import chacha, keys
from .connection import SshConnection
from .keys import AuthorizedKeys, fingerprint, load_host_key
from .session import SessionChannel
from .storage import FAULT_MESSAGE, HomeSftpServer

PROBE_IDENTIFICATION = b"SSH-2.0-refservers_probe\r\n"


class SftpServer(Server):
    name = "sftp"
    description = "SFTP, scp (legacy and SFTP-based) and SSH exec/shell on the shared file root"
    scheme = "sftp"
    stores = ("users", "files")
    # Logins (connection.py), SFTP requests (storage.py), exec/shell lines (session.py).
    fault_subject = (
        'login NAME (a password or a public key), SFTP requests "OPEN /path" (OPENDIR, READ, WRITE,'
        " REMOVE, MKDIR, RMDIR, RENAME, SETSTAT, SYMLINK, LINK), exec and shell command lines"
    )
    fault_user = "the login name, then the logged-in user"
    fault_actions = {
        "error": FaultAction(
            "refuse the login, fail the SFTP request with params.status, or answer a command"
            " line with params.output on stderr and exit status params.status",
            (
                Param(
                    "status",
                    SFTP_STATUS,
                    default="failure",
                    help="SFTP status of a failed request; for a command line, a number is its exit status",
                ),
                Param("message", STRING, default=FAULT_MESSAGE, help="the SFTP status message"),
                Param("output", STRING, help="stderr of a faulted command line (default: NAME: Input/output error)"),
            ),
        ),
        "delay": DELAY,
        "disconnect": DISCONNECT,
    }
    options = (
        Option("port", PORT, 2222, "SSH port (SFTP, scp, exec, shell)"),
        Option("host_key", PATH, None, "private host key file to use (default: an ed25519 key generated once under the data dir)"),
        Option("authorized_keys_dir", PATH, None, "directory of <user>.pub or <user> authorized_keys files, read at each login"),
        Option("password_auth", BOOL, True, "offer password authentication (public keys are always offered)"),
        Option("hostname", STR, "refservers", "host name the shell's hostname and uname -n print"),
        Option("commands", STR_TABLE, {}, "extra shell commands with fixed output (command line = output)"),
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.host_key: asyncssh.SSHKey | None = None
        self.host_key_fingerprint = ""
        self._acceptor: Any = None

    # -- lifecycle -------------------------------------------------------------------
    def _bind(self) -> None:
        self.host_key = load_host_key(self.data_dir, self.settings.host_key)
        self.host_key_fingerprint = fingerprint(self.host_key)
        self.authorized_keys = AuthorizedKeys(self.core.users, self.settings.authorized_keys_dir, self.log.warning)
        self.file_root = self.core.shared(FileRoot)
        self.file_root.prepare_homes()
        chacha.use_two_contexts_per_packet()  # the same bytes, less CPU per packet (see .chacha)
        try:
            self._acceptor = self.core.loop.run_coroutine(self._listen())
        except OSError as error:
            raise BindError(
                f"{self.name}: cannot listen on {self.host}:{self.settings.port} (main): {error.strerror or error}"
            ) from None
        self.listeners["main"] = self._acceptor.get_port()
        self.log.info("sftp host key %s %s", self.host_key.get_algorithm(), self.host_key_fingerprint)

    async def _listen(self) -> Any:
        return await asyncssh.listen(
            self.host,
            self.settings.port,
            server_factory=lambda: SshConnection(self),
            server_host_keys=[self.host_key],
            process_factory=SessionChannel(self),
            sftp_factory=lambda chan: HomeSftpServer(chan, self),
            allow_scp=True,
            # No agent or port forwarding: this is a file and command endpoint, not a jump host.
            agent_forwarding=False,
            allow_pty=True,
            x11_forwarding=False,
        )

    def _unbind(self) -> None:
        if self._acceptor is None:
            return
        acceptor, self._acceptor = self._acceptor, None

        async def close() -> None:
            acceptor.close()
            for conn in list(self.connections):
                conn.abort()  # stop() drops clients at once rather than waiting for them
            self.connections.clear()
            await acceptor.wait_closed()

        self.core.loop.run_coroutine(close())

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        return probe_greeting(host, port, timeout, expect=b"SSH-2.0-", send_after=PROBE_IDENTIFICATION)

    # -- surface ---------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "host_key_fingerprint": self.host_key_fingerprint}

    def known_hosts_line(self) -> str:
        """A ``known_hosts`` line pinning this server's host key at its bound port."""
        assert self.host_key is not None, "start the server first"
        return keys.known_hosts_line(self.host_key, self.probe_host, self.port)

    def peer_text(self, peername: Any) -> str:
        if not peername:
            return ""
        host, port = str(peername[0]), peername[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def host_key_file(self) -> Path:
        return Path(self.settings.host_key) if self.settings.host_key else self.data_dir / keys.HOST_KEY_FILE

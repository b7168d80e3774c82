"""SSH keys of the SFTP server: its persistent host key and the users' authorized keys.

Owned here:

1. The host key (RFC 4253 section 6.6, ed25519 per RFC 8709) is generated once and
   kept under the server's data dir, so a client that pinned it in ``known_hosts``
   keeps trusting the server across restarts. It is written atomically (temp file,
   fsync, rename) with mode 0600: a half-written key after a crash would change the
   server's identity. A configured ``host_key`` file is used as it is, never written.
2. Authorized keys are OpenSSH ``authorized_keys`` lines (sshd(8) AUTHORIZED_KEYS FILE
   FORMAT, options such as ``from=`` included). They come from the user table
   (``[users.<name>] authorized_keys``, checked at start: a bad line is a ConfigError)
   and from an optional directory holding ``<user>.pub`` or ``<user>`` files, read on
   every login like sshd reads ``~/.ssh/authorized_keys``, so a key dropped in later
   works without a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh

from ..core.config import ConfigError
from ..core.durable import write_atomic
from ..core.users import UserTable

HOST_KEY_ALGORITHM = "ssh-ed25519"
HOST_KEY_FILE = "ssh_host_ed25519_key"


def load_host_key(data_dir: Path, configured: Path | None = None) -> asyncssh.SSHKey:
    """The server's private host key: ``configured`` if given, else the persisted one.

    :raises ConfigError: when a key file exists but cannot be read as a private key.
    """
    path = Path(configured) if configured else Path(data_dir) / HOST_KEY_FILE
    if configured is None and not path.exists():
        _write_new_host_key(path)
    try:
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError) as error:
        raise ConfigError(f"sftp host key {path}: cannot read a private key ({error})") from None


def _write_new_host_key(path: Path) -> None:
    key = asyncssh.generate_private_key(HOST_KEY_ALGORITHM, comment="refservers host key")
    write_atomic(path, key.export_private_key(), mode=0o600)
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())


def fingerprint(key: asyncssh.SSHKey) -> str:
    """``SHA256:...``, the form ``ssh-keygen -lf`` and OpenSSH's host key prompt print."""
    return key.get_fingerprint("sha256")


def known_hosts_line(key: asyncssh.SSHKey, host: str, port: int) -> str:
    """A ``known_hosts`` line pinning ``key`` for ``host:port`` (``[host]:port`` unless 22)."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key.export_public_key().decode().strip()}\n"


class AuthorizedKeys:
    """Which public keys may log in as which user.

    Keys from the user table are read through the table at each login (protocols may
    add users while running) and parsed once per distinct set of lines.
    """

    def __init__(
        self,
        users: UserTable,
        directory: Path | None = None,
        warn: Callable[[str], None] = lambda message: None,
    ):
        self.users = users
        self._warn = warn
        self._parsed: dict[tuple[str, ...], asyncssh.SSHAuthorizedKeys | None] = {}
        if directory is not None and not Path(directory).is_dir():
            raise ConfigError(f"[sftp] authorized_keys_dir: {directory} is not a directory")
        self.directory = Path(directory) if directory is not None else None
        for user in users:  # a bad key line in config stops start-up, with its user named
            try:
                self._parse(user.authorized_keys)
            except (ValueError, asyncssh.KeyImportError) as error:
                raise ConfigError(f"[users.{user.name}] authorized_keys: {error}") from None

    def accepts(self, user_name: str, key: asyncssh.SSHKey, client_host: str, client_addr: str) -> bool:
        return any(
            keys.validate(key, client_host, client_addr) is not None for keys in self._sets_for(user_name)
        )

    def _parse(self, lines: tuple[str, ...]) -> asyncssh.SSHAuthorizedKeys | None:
        if lines not in self._parsed:
            text = "\n".join(line for line in lines if line.strip())
            self._parsed[lines] = asyncssh.import_authorized_keys(text + "\n") if text else None
        return self._parsed[lines]

    def _sets_for(self, user_name: str) -> Iterator[asyncssh.SSHAuthorizedKeys]:
        user = self.users.get(user_name)
        if user is None:
            return
        try:
            from_config = self._parse(user.authorized_keys)
        except (ValueError, asyncssh.KeyImportError) as error:
            self._warn(f"ignoring authorized_keys of user {user_name}: {error}")
            from_config = None
        if from_config is not None:
            yield from_config
        if self.directory is None or not _plain_name(user_name):
            return
        for candidate in (self.directory / f"{user_name}.pub", self.directory / user_name):
            if not candidate.is_file():
                continue
            try:
                yield asyncssh.import_authorized_keys(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError, asyncssh.KeyImportError) as error:
                self._warn(f"ignoring authorized keys file {candidate}: {error}")


def _plain_name(name: str) -> bool:
    # The user name comes from the client: it must not pick a file outside the directory.
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name and not name.startswith(".")

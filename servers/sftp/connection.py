"""SshConnection: one client connection's authentication and journal (RFC 4252).

asyncssh runs the transport and the channels; this object answers its questions
about one connection: which methods are offered (password unless switched off, and
public key), whether a password or key is good for a user of the shared user table,
and what goes in the journal: ``connect``, ``auth`` (ok or not, user, method, never
the password), ``disconnect``.

A pubkey login is journalled once, in ``auth_completed``: OpenSSH first asks whether
a key would be accepted, then signs with it, and asyncssh asks us both times.

Fault rules (``server = "sftp"``) match ``login <name>`` for each password attempt and
each public key offered (a rule with ``user`` only for that name): ``error`` refuses it
even when the password or key is right, ``delay`` answers after ``params.seconds``
(asyncssh awaits the answer), ``disconnect`` drops the connection. OpenSSH offers a key
twice (a query, then the signed request); that is one login attempt, checked once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncssh

from .batched_writes import batch_writes
from .ignore_packets import skip_needless_ignores

if TYPE_CHECKING:
    from ..core.faults import FaultRule
    from .server import SftpServer


class SshConnection(asyncssh.SSHServer):
    def __init__(self, server: SftpServer):
        self.server = server
        self.peer = ""
        self.user_name = ""
        self.method = ""
        self._conn: asyncssh.SSHServerConnection | None = None
        # (user, key fingerprint) -> the fault rule that fired for that key's first offer
        self._key_faults: dict[tuple[str, str], FaultRule | None] = {}

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        batch_writes(conn)  # one socket write per loop turn, not per SSH packet (see .batched_writes)
        skip_needless_ignores(conn)  # asyncssh's IGNORE before each packet protects only CBC ciphers
        self.peer = self.server.peer_text(conn.get_extra_info("peername"))
        self.server.connections.add(conn)
        self.server.record("connect", self.peer, client=conn.get_extra_info("client_version") or "")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self.server.connections.discard(self._conn)
        details = {"user": self.user_name} if self.method else {}
        self.server.record("disconnect", self.peer, **details)

    def begin_auth(self, username: str) -> bool:
        self.user_name = username
        return True  # every login authenticates, unknown names included (no user probing)

    def password_auth_supported(self) -> bool:
        return bool(self.server.settings.password_auth)

    def validate_password(self, username: str, password: str) -> bool | Awaitable[bool]:
        self.server.wire.received(self.peer, f"userauth password {username} ****")
        rule = self._login_fault(username)
        return self._unless_faulted(rule, username, "password", lambda: self._check_password(username, password))

    def _login_fault(self, username: str) -> FaultRule | None:
        return self.server.core.faults.check(self.server.name, f"login {username}", self.peer, users=[username])

    def _unless_faulted(
        self, rule: FaultRule | None, username: str, method: str, check: Callable[[], bool]
    ) -> bool | Awaitable[bool]:
        """``check()`` now, after a delay rule's wait (asyncssh awaits it), or a refusal."""
        if rule is None:
            return check()
        if rule.action == "error":
            self.server.record("auth", self.peer, ok=False, user=username, method=method, fault=True)
            return False
        if rule.action == "disconnect":
            if self._conn is not None:
                self._conn.abort()
            return False

        async def later() -> bool:
            await asyncio.sleep(rule.params["seconds"])
            return check()

        return later()

    def _check_password(self, username: str, password: str) -> bool:
        if self.server.core.users.check_password(username, password) is None:
            self.server.record("auth", self.peer, ok=False, user=username, method="password")
            return False
        self.method = "password"
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool | Awaitable[bool]:
        fingerprint = key.get_fingerprint("sha256")
        self.server.wire.received(self.peer, f"userauth publickey {username} {fingerprint}")
        attempt = (username, fingerprint)
        if attempt in self._key_faults:  # the signed request after the query: already decided
            earlier = self._key_faults[attempt]
            if earlier is not None and earlier.action != "delay":
                return False
            return self._check_public_key(username, key, fingerprint)
        rule = self._key_faults[attempt] = self._login_fault(username)
        return self._unless_faulted(rule, username, "publickey", lambda: self._check_public_key(username, key, fingerprint))

    def _check_public_key(self, username: str, key: asyncssh.SSHKey, fingerprint: str) -> bool:
        client_host, client_addr = self._client_address()
        accepted = username in self.server.core.users and self.server.authorized_keys.accepts(
            username, key, client_host, client_addr
        )
        if not accepted:
            self.server.record("auth", self.peer, ok=False, user=username, method="publickey", key=fingerprint)
            return False
        self.method = "publickey"
        return True

    def auth_completed(self) -> None:
        self.server.record("auth", self.peer, ok=True, user=self.user_name, method=self.method or "none")

    def _client_address(self) -> tuple[str, str]:
        peername = self._conn.get_extra_info("peername") if self._conn is not None else None
        address = str(peername[0]) if peername else ""
        return address, address

"""The one Server shape every protocol follows, whatever library runs it.

``start()`` binds every listener (port 0 allowed: the bound port is read back into
``listeners``), then returns only once a real client probe of the main port
succeeded. ``stop()`` is idempotent, frees the ports and drops open connections.
Subclasses implement ``_bind()``/``_unbind()`` and a classmethod ``probe()``, which
``refservers check`` also uses against servers in other processes or containers.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .config import BOOL, STR, Option, Settings
from .faults import FaultAction, FaultTable

if TYPE_CHECKING:
    from .context import Core
    from .web import Route


class ProbeError(Exception):
    """A readiness probe failed; ``str()`` is a one-line reason."""


class BindError(Exception):
    """A listener could not bind; ``str()`` names the server, address and cause."""


COMMON_OPTIONS = (
    Option("enabled", BOOL, True, "start this server with `refservers up`"),
    Option("host", STR, "", "bind address (empty: the core host)"),
)


class Server:
    name: ClassVar[str]
    description: ClassVar[str]
    # Options of this server besides COMMON_OPTIONS; the first PORT option is the main one.
    options: ClassVar[tuple[Option, ...]] = ()
    # Scheme shown in URLs and the `up` table.
    scheme: ClassVar[str] = "tcp"
    # Servers this one starts itself when the process runs none (their config sections
    # are read with this one's: `run toxiproxy` needs [proxy]).
    companions: ClassVar[tuple[str, ...]] = ()
    # Shared stores this server uses (registry.STORES names): their admin routes are
    # mounted while it runs.
    stores: ClassVar[tuple[str, ...]] = ()
    # Fault actions this server carries out, with their params (see core/faults.py):
    # plain data, so the table can be read without starting anything. Empty: no rules.
    fault_actions: ClassVar[Mapping[str, FaultAction]] = {}
    # What a rule's `match` is matched against, and who its `user` names here (empty:
    # this server has no users, and a rule with `user` is refused).
    fault_subject: ClassVar[str] = ""
    fault_user: ClassVar[str] = ""
    # Settings the pytest fixtures apply (e.g. shorter delays), as option -> text value.
    test_settings: ClassVar[dict[str, str]] = {}

    def __init__(self, settings: Settings, core: Core):
        self.settings = settings
        self.core = core
        self.log = core.logger(self.name)
        self.wire = core.wire_trace(self.name)
        self.listeners: dict[str, int] = {}
        self.state = "stopped"
        self._lifecycle_lock = threading.Lock()
        core.servers.append(self)

    # -- the uniform surface -------------------------------------------------
    @classmethod
    def all_options(cls) -> tuple[Option, ...]:
        return COMMON_OPTIONS + cls.options

    @classmethod
    def fault_table(cls) -> FaultTable:
        return FaultTable(cls.fault_actions, cls.fault_subject, cls.fault_user)

    @property
    def host(self) -> str:
        return self.settings.host or self.core.config.core.host

    @property
    def probe_host(self) -> str:
        """Where a local client connects: wildcard binds are probed on loopback."""
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)

    @property
    def port(self) -> int:
        """The main bound port (the first listener)."""
        return next(iter(self.listeners.values()))

    @property
    def url(self) -> str:
        host = f"[{self.probe_host}]" if ":" in self.probe_host else self.probe_host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def journal(self) -> Any:
        return self.core.journal

    @property
    def data_dir(self) -> Any:
        return self.core.data_dir / self.name

    def start(self) -> Server:
        with self._lifecycle_lock:
            if self.state == "ready":
                return self
            self.state = "starting"
            try:
                self._bind()
                self.probe(self.probe_host, self.port, self.core.config.core.probe_timeout)
            except BaseException:
                self.state = "failed"
                self._unbind_quietly()
                raise
            self.state = "ready"
            self.log.info("%s ready on %s", self.name, self._listeners_text())
            return self

    def stop(self) -> None:
        with self._lifecycle_lock:
            if self.state == "stopped":
                return
            self._unbind_quietly()
            self.state = "stopped"
            self.listeners = {}

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        """What health checks and the `up` table show."""
        return {
            "name": self.name,
            "state": self.state,
            "host": self.host,
            "listeners": dict(self.listeners),
            "url": self.url if self.listeners else None,
        }

    def admin_routes(self) -> list[Route]:
        """Admin API routes this server contributes (same-pattern routes are deduplicated)."""
        return []

    def record(self, kind: str, peer: str = "", **details: Any) -> None:
        self.core.journal.record(self.name, kind, peer, **details)

    # -- for subclasses --------------------------------------------------------
    def _bind(self) -> None:
        raise NotImplementedError

    def _unbind(self) -> None:
        raise NotImplementedError

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        """Talk to a running server like a client would; return a one-line summary.

        :raises ProbeError: with a one-line reason when the server is not answering.
        """
        raise NotImplementedError

    def _unbind_quietly(self) -> None:
        try:
            self._unbind()
        except Exception:  # noqa: BLE001 - stop() must always free what it can
            self.log.exception("error while stopping %s", self.name)

    def _listeners_text(self) -> str:
        return ", ".join(f"{name} {self.probe_host}:{port}" for name, port in self.listeners.items())


# -- probes shared by the line-based protocols --------------------------------------


def retry_until(deadline_seconds: float, attempt: Callable[[float], str]) -> str:
    """Call ``attempt(remaining)`` until it succeeds or time runs out.

    Probes retry only on connection refusal, which is what a server still binding
    in another process (a container starting) looks like.
    """
    deadline = time.monotonic() + deadline_seconds
    while True:
        remaining = deadline - time.monotonic()
        try:
            return attempt(max(remaining, 0.1))
        except ConnectionRefusedError as error:
            if remaining <= 0:
                raise ProbeError(f"connection refused: {error}") from None
            time.sleep(0.05)  # poll interval for a server in another process


def probe_greeting(
    host: str,
    port: int,
    timeout: float,
    expect: bytes,
    tls: ssl.SSLContext | None = None,
    send_after: bytes = b"",
) -> str:
    """Connect, read the first line, check it starts with ``expect``; return the line."""

    def attempt(remaining: float) -> str:
        try:
            with socket.create_connection((host, port), timeout=remaining) as raw:
                sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
                line = _read_line(sock)
                if send_after:
                    sock.sendall(send_after)
        except ConnectionRefusedError:
            raise
        except (OSError, ssl.SSLError) as error:
            raise ProbeError(f"{host}:{port}: {error}") from None
        if not line.startswith(expect):
            raise ProbeError(f"{host}:{port}: unexpected greeting {line[:80]!r}")
        return line.decode("utf-8", "replace").strip()

    return retry_until(timeout, attempt)


def _read_line(sock: socket.socket, limit: int = 4096) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = sock.recv(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


def probe_http(host: str, port: int, timeout: float, path: str = "/", tls: ssl.SSLContext | None = None) -> str:
    """Send one HTTP/1.1 GET; any well-formed status line counts as ready."""
    import http.client

    def attempt(remaining: float) -> str:
        connection: http.client.HTTPConnection
        if tls:
            connection = http.client.HTTPSConnection(host, port, timeout=remaining, context=tls)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=remaining)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return f"HTTP {response.status} {response.reason}"
        except ConnectionRefusedError:
            raise
        except (OSError, http.client.HTTPException) as error:
            raise ProbeError(f"{host}:{port}: {error!r}") from None
        finally:
            connection.close()

    return retry_until(timeout, attempt)

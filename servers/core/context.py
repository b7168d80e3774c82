"""Core: the small shared context every server is given (never a module global).

It holds the resolved config, the data dir, the user table, the event journal, the
TLS material, the event loop, and the shared stores that several protocols use
(see store.py: the mail store for SMTP/POP3/IMAP, the file root for FTP/SFTP...),
created once per Core on first request through :meth:`Core.store` (by name) or
:meth:`Core.shared` (by class).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .config import Config, ConfigError
from .faults import FaultBook, FaultError, FaultTable
from .journal import EventJournal
from .logs import WireTrace, server_logger
from .loop import EventLoop
from .tls import TLSMaterial
from .users import UserTable

if TYPE_CHECKING:
    from .lifecycle import Server
    from .store import Store


class SharedResource(Protocol):
    @classmethod
    def from_core(cls, core: Core) -> Any: ...


R = TypeVar("R")


class Core:
    def __init__(
        self,
        config: Config,
        loop: EventLoop | None = None,
        fault_tables: Mapping[str, FaultTable] | None = None,
        stores: Mapping[str, Callable[[], type[Store]]] | None = None,
    ):
        """``stores`` maps each store name to a loader of its class (registry.STORES)."""
        self.config = config
        self.data_dir = Path(config.core.data_dir).absolute()
        self.users = UserTable(config.users)
        self.journal = EventJournal(config.core.journal_size)
        self.tls = TLSMaterial(
            self.data_dir / "tls", config.core.tls_names, config.core.tls_cert, config.core.tls_key
        )
        self.loop = loop or EventLoop.shared()
        # What servers and stores exist is the registry's to say (registry.make_core);
        # a Core given none accepts no fault rules and builds stores by class only.
        self.faults = FaultBook(self.journal, fault_tables if fault_tables is not None else {})
        for source, spec in config.faults:
            try:
                self.faults.add(spec)
            except FaultError as error:
                raise ConfigError(f"{source}: {error}") from None
        self.servers: list[Server] = []
        self._store_classes = dict(stores or {})
        self._shared: dict[type, Any] = {}
        # Reentrant: a shared resource may be built over another (MailpitView over MailStore).
        self._shared_lock = threading.RLock()

    def logger(self, server: str) -> logging.Logger:
        return server_logger(server)

    def wire_trace(self, server: str) -> WireTrace:
        def journal(peer: str, direction: str, line: str) -> None:
            self.journal.record(server, "wire", peer, direction=direction, line=line)

        return WireTrace(self.logger(server), self.config.core.trace, journal)

    def shared(self, resource: type[R]) -> R:
        """The one instance of ``resource`` for this Core, built by ``resource.from_core``."""
        with self._shared_lock:
            if resource not in self._shared:
                self._shared[resource] = resource.from_core(self)  # type: ignore[attr-defined]
            return self._shared[resource]  # type: ignore[no-any-return]

    def store(self, name: str) -> Store:
        """The one instance of the store called ``name`` (KeyError if none is known)."""
        try:
            loader = self._store_classes[name]
        except KeyError:
            raise KeyError(f"unknown store {name!r} (known: {', '.join(sorted(self._store_classes)) or 'none'})") from None
        return self.shared(loader())

    def built_store(self, name: str) -> Store | None:
        """The store called ``name`` if something already uses it, without building it."""
        loader = self._store_classes.get(name)
        with self._shared_lock:
            return self._shared.get(loader()) if loader is not None else None

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        for resource in self._shared.values():
            close = getattr(resource, "close", None)
            if close is not None:
                close()

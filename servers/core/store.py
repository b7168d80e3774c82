"""Store: the shape of a shared store, the state several servers use together.

The mail store (SMTP delivers, POP3 and IMAP read), the file root (FTP, SFTP and the
shell) and the user table (every login) are stores. Each is a room of its own beside
the servers: its options live in its own config section (``[mail]``, env
``REFSERVERS_MAIL_*``), its admin routes are mounted whenever a running server uses
it, and servers declare the stores they use (``Server.stores``) and are handed the
one instance of each per Core; no server changes a store's settings.

``registry.STORES`` lists them by name; ``core.store(name)`` builds one on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .config import Option

if TYPE_CHECKING:
    from .context import Core
    from .web import Route


class Store:
    # Config section and name in registry.STORES and Server.stores.
    name: ClassVar[str]
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def from_core(cls, core: Core) -> Store:
        """The store for ``core``, configured from ``core.config[cls.name]``."""
        raise NotImplementedError

    def admin_routes(self, core: Core) -> list[Route]:
        """Admin API routes over this store (mounted while a server using it runs)."""
        return []

    def close(self) -> None:
        """Release what the store holds when its Core stops (files, threads)."""

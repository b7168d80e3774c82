"""The tables of servers and of shared stores: name -> class, imported on first use.

Adding a server is one row here plus its module. ``up`` starts them in this order;
the admin API is not a row: ``up`` always adds it, ``run --admin`` adds it on request.
Stores (core/store.py) are the state servers share; a server names the ones it uses
in ``Server.stores``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache, partial
from typing import Any

from .core.config import Config, Option
from .core.context import Core
from .core.faults import FaultTable
from .core.lifecycle import Server
from .core.store import Store

SERVERS: dict[str, str] = {
    "http": "servers.http:HttpServer",
    "smtp": "servers.smtp:SmtpServer",
    "pop3": "servers.pop3:Pop3Server",
    "imap": "servers.imap:ImapServer",
    "ftp": "servers.ftp:FtpServer",
    "sftp": "servers.sftp:SftpServer",
    "telnet": "servers.telnet:TelnetServer",
    "proxy": "servers.proxy:ProxyServer",
    # After proxy: the Toxiproxy API serves the proxy server's TCP listeners (it starts
    # one itself only when this process runs none).
    "toxiproxy": "servers.toxiproxy:ToxiproxyServer",
    "jsonrpc": "servers.jsonrpc:JsonRpcServer",
    "sockets": "servers.sockets:SocketServers",
    "dns": "servers.dns:DnsServer",
    "xmlrpc": "servers.xmlrpc:XmlRpcServer",
    "nntp": "servers.nntp:NntpServer",
}
ADMIN = "servers.admin:AdminServer"

STORES: dict[str, str] = {
    "users": "servers.core.users:UserTable",
    "mail": "servers.mail.store:MailStore",
    "files": "servers.files.root:FileRoot",
}

# Options that moved to a store's section: still read, with a deprecation warning,
# for one release (0.2 drops them).
RENAMED_OPTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("smtp", "domains"): ("mail", "domains"),
    ("smtp", "unknown_recipients"): ("mail", "unknown_recipients"),
    ("smtp", "catchall_user"): ("mail", "catchall_user"),
    ("ftp", "seed_dir"): ("files", "seed_dir"),
    ("ftp", "anonymous"): ("files", "anonymous"),
    ("ftp", "public_dir"): ("files", "public_dir"),
}


@cache
def load(target: str) -> type[Server]:
    module_name, _, class_name = target.partition(":")
    cls: type[Server] = getattr(importlib.import_module(module_name), class_name)
    return cls


def server_class(name: str) -> type[Server]:
    if name == "admin":
        return load(ADMIN)
    try:
        return load(SERVERS[name])
    except KeyError:
        raise KeyError(f"unknown server {name!r} (known: {', '.join(SERVERS)})") from None


def store_class(name: str) -> type[Store]:
    try:
        target = STORES[name]
    except KeyError:
        raise KeyError(f"unknown store {name!r} (known: {', '.join(STORES)})") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Store] = getattr(importlib.import_module(module_name), class_name)
    return cls


def store_loaders() -> dict[str, Callable[[], type[Store]]]:
    """What a Core is given to build stores by name (each class imported on first use)."""
    return {name: partial(store_class, name) for name in STORES}


def schema(servers: Iterable[str] | None = None) -> dict[str, tuple[Option, ...]]:
    """Options of ``servers`` (default: every one), the admin API and every store, keyed
    by config section. Only those server classes are imported: `run http` reads and
    checks the [http] section, and the sections of servers it does not start are
    skipped (see :func:`unloaded_sections`)."""
    wanted = list(SERVERS if servers is None else servers)
    wanted += [companion for name in wanted for companion in server_class(name).companions if companion not in wanted]
    names = [*wanted, "admin"]
    sections = {name: server_class(name).all_options() for name in names}
    sections.update({name: store_class(name).options for name in STORES if store_class(name).options})
    return sections


def unloaded_sections(servers: Iterable[str]) -> list[str]:
    """Server sections a config may hold that :func:`schema` for ``servers`` left out."""
    loaded = set(servers) | {companion for name in servers for companion in server_class(name).companions}
    return [name for name in SERVERS if name not in loaded]


class FaultTables(Mapping[str, FaultTable]):
    """Every server's fault declaration (core/faults.py) by name, each server class
    imported only when a rule names it (or the schema of all is asked for)."""

    def __getitem__(self, name: str) -> FaultTable:
        if name not in SERVERS:
            raise KeyError(name)
        return server_class(name).fault_table()

    def __iter__(self) -> Iterator[str]:
        return iter(SERVERS)

    def __len__(self) -> int:
        return len(SERVERS)


def fault_tables() -> FaultTables:
    return FaultTables()


def make_core(config: Config, **options: Any) -> Core:
    """A Core that knows every server's fault actions and every store (what the CLI,
    the pytest plugin and the benchmarks run on)."""
    return Core(config, fault_tables=fault_tables(), stores=store_loaders(), **options)

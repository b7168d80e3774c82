"""The table of servers: name -> class, imported on first use.

Adding a server is one row here plus its module. ``up`` starts them in this order;
the admin API is not a row: ``up`` always adds it, ``run --admin`` adds it on request.
"""

from __future__ import annotations

import importlib
from functools import cache

from .core.config import Option
from .core.lifecycle import Server

SERVERS: dict[str, str] = {
    "http": "servers.http:HttpServer",
    "smtp": "servers.mail.smtp:SmtpServer",
    "pop3": "servers.mail.pop3:Pop3Server",
    "imap": "servers.mail.imap:ImapServer",
    "ftp": "servers.ftp:FtpServer",
    "sftp": "servers.sftp:SftpServer",
    "telnet": "servers.telnet:TelnetServer",
    "proxy": "servers.proxy:ProxyServer",
    "jsonrpc": "servers.jsonrpc:JsonRpcServer",
    "sockets": "servers.sockets:SocketServers",
    "dns": "servers.dns:DnsServer",
    "xmlrpc": "servers.xmlrpc:XmlRpcServer",
    "nntp": "servers.news:NntpServer",
}
ADMIN = "servers.admin:AdminServer"


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


def schema() -> dict[str, tuple[Option, ...]]:
    """Options of every server and the admin API, keyed by config section."""
    names = [*SERVERS, "admin"]
    return {name: server_class(name).all_options() for name in names}


def fault_actions() -> dict[str, tuple[str, ...]]:
    return {name: server_class(name).fault_actions for name in SERVERS}

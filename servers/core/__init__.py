"""The shared core: config, logging, lifecycle, TLS, users, journal, event loop.

Importing it has no side effect. Twisted's asyncio reactor is installed when the
first EventLoop is made (a Core, or a room whose library imports the reactor as it
loads: see pop3/server.py), before anything imports ``twisted.internet.reactor``.
"""

from .config import ConfigError, Option, Settings, load_config
from .context import Core
from .journal import Event, EventJournal
from .lifecycle import BindError, ProbeError, Server
from .loop import EventLoop
from .users import User, UserTable

__all__ = [
    "BindError",
    "ConfigError",
    "Core",
    "Event",
    "EventJournal",
    "EventLoop",
    "Option",
    "ProbeError",
    "Server",
    "Settings",
    "User",
    "UserTable",
    "load_config",
]

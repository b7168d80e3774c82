"""The shared core: config, logging, lifecycle, TLS, users, journal, event loop.

Importing it installs Twisted's asyncio reactor (see loop.py), so it must be
imported before anything imports ``twisted.internet.reactor``.
"""

from .config import ConfigError, Option, Settings, load_config
from .context import Core
from .journal import Event, EventJournal
from .lifecycle import BindError, ProbeError, Server
from .loop import EventLoop
from .users import User, UserTable

EventLoop.shared()

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

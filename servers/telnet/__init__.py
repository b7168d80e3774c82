"""Telnet reference server: login against the user table, then the scripted shell (see server.py)."""

from .server import TelnetServer

__all__ = ["TelnetServer"]

"""The classic small TCP and UDP services: echo, discard, daytime, timestamp, greeting (see server.py)."""

from .server import SocketServers

__all__ = ["SocketServers"]

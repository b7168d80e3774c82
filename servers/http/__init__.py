"""HTTP reference server: an httpbin-compatible stand-in (see server.py)."""

from .server import HttpServer

__all__ = ["HttpServer"]

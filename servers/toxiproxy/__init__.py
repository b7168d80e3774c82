"""Toxiproxy's HTTP API over the proxy server's TCP listeners (see server.py)."""

from .server import ToxiproxyServer

__all__ = ["ToxiproxyServer"]

"""NNTP: the reader server (server.py) over a durable spool of numbered articles (store.py),
with the spool's admin routes (api.py) and the sample articles it starts with (samples.py)."""

from .server import NntpServer

__all__ = ["NntpServer"]

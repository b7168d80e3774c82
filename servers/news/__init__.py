"""News: the NNTP reader server (nntp.py) over a durable spool of numbered articles (store.py)."""

from .nntp import NntpServer

__all__ = ["NntpServer"]

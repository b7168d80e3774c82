"""IMAP4rev1 over the shared mail store (twisted.mail.imap4): see server.py."""

from .server import ImapServer

__all__ = ["ImapServer"]

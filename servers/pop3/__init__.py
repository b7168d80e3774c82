"""POP3 over the shared mail store (twisted.mail.pop3): see server.py."""

from .server import Pop3Server

__all__ = ["Pop3Server"]

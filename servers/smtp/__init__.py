"""SMTP submission into the shared mail store (aiosmtpd): see server.py."""

from .server import SmtpServer

__all__ = ["SmtpServer"]

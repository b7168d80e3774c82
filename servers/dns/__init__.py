"""DNS: an authoritative server for the zones given in config, over UDP and TCP (see server.py)."""

from .server import DnsServer

__all__ = ["DnsServer"]

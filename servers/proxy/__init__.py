"""HTTP forward proxy and plain TCP proxies with Toxiproxy-style fault toxics."""

from .server import ProxyServer

__all__ = ["ProxyServer"]

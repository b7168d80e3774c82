"""XML-RPC over HTTP POST on Twisted web, with introspection and multicall (see server.py)."""

from .server import XmlRpcServer

__all__ = ["XmlRpcServer"]

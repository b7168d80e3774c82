"""JSON-RPC 2.0 server: HTTP POST (/ and /rpc) and newline-delimited JSON over TCP."""

from .server import JsonRpcServer

__all__ = ["JsonRpcServer"]

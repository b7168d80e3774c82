"""JSON-RPC 2.0 server: HTTP POST (/ and /rpc), WebSocket (/ws) and newline-delimited JSON over TCP."""

from .methods import MethodError
from .server import JsonRpcServer

__all__ = ["JsonRpcServer", "MethodError"]

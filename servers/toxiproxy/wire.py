"""Toxiproxy's API as its Go code puts it on the wire, for server.py's routes.

Owned here, each following the Go source it names: the toxic types and their
attributes (``toxics/*.go``), api.go's errors (same words and statuses), decoding a
request body as Go's ``encoding/json`` decodes it into Toxiproxy's structs (the first
JSON value, keys matched ignoring case, Go's type-mismatch words), listen addresses as
Go's ``net`` package reads and prints them, the reply shapes (compact JSON, errors as
``http.Error`` writes them, a proxy as ``proxyWithToxics`` marshals it) and request ids
in the shape of hlog's xid.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
from typing import Any

from ..core.lifecycle import BindError
from ..core.web import Reply
from ..proxy.server import TcpListener, format_address
from ..proxy.tcp import TcpRoute, parse_upstream

# Toxiproxy's toxic types and their attributes (toxics/*.go: every field is a Go int or
# int64, 0 when absent). The stages that carry them out are in servers/proxy/toxics.py,
# under the same names.
TOXIC_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
}
STREAMS = ("upstream", "downstream")


class ToxiproxyError(Exception):
    """An error reply, with Toxiproxy's message and status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


# api.go's errors, same words and statuses.
BAD_REQUEST_BODY = "bad request body"
MISSING_FIELD = "missing required field"
PROXY_NOT_FOUND = ToxiproxyError("proxy not found", 404)
PROXY_EXISTS = ToxiproxyError("proxy already exists", 409)
INVALID_STREAM = ToxiproxyError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ToxiproxyError("invalid toxic type", 400)
TOXIC_EXISTS = ToxiproxyError("toxic already exists", 409)
TOXIC_NOT_FOUND = ToxiproxyError("toxic not found", 404)


# -- decoding JSON as Go's encoding/json does it into Toxiproxy's structs ---------------


def decode_body(body: bytes) -> Any:
    """The first JSON value of the body (Go's Decoder ignores what follows)."""
    text = body.decode("utf-8", "replace").lstrip()
    if not text:
        raise ToxiproxyError(f"{BAD_REQUEST_BODY}: EOF", 400)
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError as error:
        raise ToxiproxyError(f"{BAD_REQUEST_BODY}: {error}", 400) from None
    return value


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), "value")


def type_mismatch(value: Any, where: str, go_type: str) -> ToxiproxyError:
    return ToxiproxyError(f"{BAD_REQUEST_BODY}: json: cannot unmarshal {_go_type(value)} into {where} of type {go_type}", 400)


def go_field(data: dict[str, Any], name: str) -> Any:
    """``data[name]``, matched as Go matches keys to fields: exactly, else ignoring case."""
    if name in data:
        return data[name]
    return next((value for key, value in data.items() if key.lower() == name), None)


def decode_object(value: Any, struct: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise type_mismatch(value, "Go value", struct)
    return value


def string_field(data: dict[str, Any], name: str, struct: str, default: str) -> str:
    value = go_field(data, name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise type_mismatch(value, f"Go struct field {struct}.{name}", "string")
    return value


def bool_field(data: dict[str, Any], name: str, struct: str, default: bool | None) -> bool | None:
    value = go_field(data, name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise type_mismatch(value, f"Go struct field {struct}.{name}", "bool")
    return value


def float_field(data: dict[str, Any], name: str, struct: str, default: float) -> float:
    value = go_field(data, name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_mismatch(value, f"Go struct field {struct}.{name}", "float32")
    return float(value)


def decode_attributes(toxic_type: str, value: Any, current: dict[str, int]) -> dict[str, int]:
    """``attributes`` decoded into the toxic's struct: ``current`` with what the JSON sets."""
    data = decode_object(value, f"toxics.{toxic_type}")
    attributes = dict(current)
    for name in TOXIC_ATTRIBUTES[toxic_type]:
        given = go_field(data, name)
        if given is None:
            continue
        if isinstance(given, bool) or not isinstance(given, int):
            raise type_mismatch(given, f"Go struct field ToxicWrapper.attributes.{name}", "int64")
        attributes[name] = given
    return attributes


# -- addresses as Go's net package prints them ----------------------------------------


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` -> ``(host, port)``, as net.Listen reads it; a Go-worded error."""
    host, sep, port_text = listen.rpartition(":")
    if not sep:
        raise ToxiproxyError(f"listen tcp: address {listen}: missing port in address", 500)
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ToxiproxyError(f"listen tcp: address {listen}: invalid port", 500)
    return host.strip("[]"), int(port_text)


def resolve_listen(listen: str) -> str:
    """What Go's ``net.ResolveTCPAddr("tcp", listen).String()`` gives: the address a
    proxy's bound ``listen`` is compared with to decide whether it changed."""
    host, port = split_listen(listen)
    if not host:
        return f":{port}"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise ToxiproxyError(f"lookup {host}: {error.strerror or error}", 500) from None
        # Go prefers an IPv4 address when a name has both.
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        address = ipaddress.ip_address(infos[0][4][0])
    return format_address(str(address), port)


# -- replies and shapes ---------------------------------------------------------------------


def json_reply(status: int, value: Any) -> Reply:
    """Go's json.Marshal: compact, no trailing newline."""
    return Reply(status, json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def error_reply(error: ToxiproxyError) -> Reply:
    """What api.go's apiError sends through http.Error: the JSON, a newline, text/plain."""
    body = json.dumps({"error": error.message, "status": error.status}, separators=(",", ":"), ensure_ascii=False) + "\n"
    return Reply(
        error.status,
        body.encode(),
        content_type="text/plain; charset=utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def proxy_json(listener: TcpListener) -> dict[str, Any]:
    """A proxy as api.go's proxyWithToxics marshals it, ``Logger`` included."""
    return {
        "name": listener.route.name,
        "listen": listener.address,
        "upstream": listener.route.upstream,
        "enabled": listener.enabled,
        "Logger": {},
        "toxics": [toxic.as_json() for toxic in listener.toxics.listing()],
    }


def differs(listener: TcpListener, listen: str, upstream: str) -> bool:
    """Proxy.Differs: the resolved listen address or the upstream text changed."""
    return listener.address != resolve_listen(listen) or listener.route.upstream != upstream


def make_route(name: str, listen: str, upstream: str) -> TcpRoute:
    host, port = split_listen(listen) if listen else ("", 0)
    try:
        upstream_host, upstream_port = parse_upstream(upstream)
    except ValueError as error:
        raise ToxiproxyError(f"{BAD_REQUEST_BODY}: upstream: {error}", 400) from None
    return TcpRoute(port, upstream_host, upstream_port, name, host)


def listen_error(listen: str, error: BindError) -> ToxiproxyError:
    """A bind failure in Go's words: ``listen tcp 127.0.0.1:80: bind: permission denied``."""
    reason = str(error).rpartition(": ")[2]
    return ToxiproxyError(f"listen tcp {listen}: bind: {reason[:1].lower()}{reason[1:]}", 500)


def request_id() -> str:
    """A fresh id in the shape of the xid Toxiproxy's hlog middleware puts in
    ``X-Toxiproxy-Request-Id``: 12 random bytes, 20 lower-case base32hex characters."""
    return base64.b32hexencode(secrets.token_bytes(12)).decode("ascii")[:20].lower()

"""The methods the JSON-RPC server offers: built-ins, and fixed results from config.

Built-ins cover the examples of the JSON-RPC 2.0 specification, section 7 (``subtract``
with positional and named params, ``sum``, ``notify_hello``, ``get_data``) and what a
client test needs (``echo``, ``ping``, ``add``, ``fail``, ``notify``). Every method
receives a :class:`CallContext` first (jsonrpcserver passes it), then the params.
``rpc.discover`` describes them all as an OpenRPC document.
"""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Number
from typing import Any

from ..core.config import ConfigError

with warnings.catch_warnings():
    # jsonrpcserver 5.0.9 reads its schema with importlib.resources.read_text at import
    # time, deprecated since Python 3.11; the warning is about the library, not us.
    warnings.simplefilter("ignore", DeprecationWarning)
    from jsonrpcserver import Error, InvalidParams, Success

Method = Callable[..., Any]
OPENRPC_VERSION = "1.2.6"


@dataclass(frozen=True)
class CallContext:
    """Who is calling, over what; handed to every method as its first argument."""

    peer: str
    transport: str
    record: Callable[..., None]  # Server.record bound to this server
    sleep_max: float = 0.0
    # Seconds the reply must wait (``sleep``); the transport waits on the reactor, so a
    # sleeping call never blocks other clients.
    delays: list[float] = field(default_factory=list)


def _numbers(*values: Any) -> Any:
    """None when every value is a JSON number, else an Invalid params result."""
    for value in values:
        if isinstance(value, bool) or not isinstance(value, Number):
            return InvalidParams(f"expected numbers, got {value!r}")
    return None


def echo(context: CallContext, *args: Any, **kwargs: Any) -> Any:
    """Return the params as given (the array, or the object)."""
    return Success(kwargs if kwargs else list(args))


def ping(context: CallContext) -> Any:
    """Return "pong"."""
    return Success("pong")


def add(context: CallContext, a: Any, b: Any) -> Any:
    """Return a + b."""
    return _numbers(a, b) or Success(a + b)


def subtract(context: CallContext, minuend: Any, subtrahend: Any) -> Any:
    """Return minuend - subtrahend (positional or named, as in the spec)."""
    return _numbers(minuend, subtrahend) or Success(minuend - subtrahend)


def sum_(context: CallContext, *numbers: Any) -> Any:
    """Return the sum of the positional params."""
    return _numbers(*numbers) or Success(sum(numbers))


def notify_hello(context: CallContext, *args: Any) -> Any:
    """Record a hello in the journal (meant as a notification); returns null."""
    context.record("message", context.peer, method="notify_hello", params=list(args))
    return Success(None)


def notify(context: CallContext, *args: Any, **kwargs: Any) -> Any:
    """Record the params in the journal (meant as a notification); returns null."""
    context.record("message", context.peer, method="notify", params=kwargs if kwargs else list(args))
    return Success(None)


def get_data(context: CallContext) -> Any:
    """Return ["hello", 5], as in the spec's batch example."""
    return Success(["hello", 5])


def sleep(context: CallContext, seconds: Any) -> Any:
    """Answer after that many seconds (capped by sleep_max); returns the seconds slept."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        return InvalidParams("expected a non-negative number of seconds")
    slept = min(float(seconds), context.sleep_max)
    context.delays.append(slept)
    return Success(slept)


def fail(context: CallContext, code: Any = -32000, message: Any = "Server error", data: Any = None) -> Any:
    """Answer with the error asked for (code, message, optional data)."""
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
        return InvalidParams("expected an integer code and a string message")
    return Error(code, message, data) if data is not None else Error(code, message)


BUILTINS: dict[str, Method] = {
    "echo": echo,
    "ping": ping,
    "add": add,
    "subtract": subtract,
    "sum": sum_,
    "notify_hello": notify_hello,
    "notify": notify,
    "get_data": get_data,
    "fail": fail,
    "sleep": sleep,
}


def fixed_result(name: str, result: Any) -> Method:
    def method(context: CallContext, *args: Any, **kwargs: Any) -> Any:
        return Success(result)

    method.__doc__ = f"Fixed result from config: {json.dumps(result)[:80]}"
    method.__name__ = name
    return method


def methods_from_config(table: Mapping[str, str]) -> dict[str, Method]:
    """``methods`` option (name -> JSON text) to methods; bad JSON is a ConfigError naming the key."""
    methods = {}
    for name, text in table.items():
        if not name or name.startswith("rpc."):
            raise ConfigError(f"[jsonrpc] methods.{name}: names starting with 'rpc.' are reserved by JSON-RPC 2.0")
        try:
            result = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"[jsonrpc] methods.{name}: expected JSON text, got {text!r} ({error})") from None
        methods[name] = fixed_result(name, result)
    return methods


def fixed_error(name: str, code: int, message: str, data: Any) -> Method:
    def method(context: CallContext, *args: Any, **kwargs: Any) -> Any:
        return Error(code, message, data) if data is not None else Error(code, message)

    method.__doc__ = f"Fixed error from config: {code} {message}"
    method.__name__ = name
    return method


def errors_from_config(table: Mapping[str, str]) -> dict[str, Method]:
    """``errors`` option (name -> JSON {"code", "message", "data"?}) to methods that always fail."""
    methods = {}
    for name, text in table.items():
        where = f"[jsonrpc] errors.{name}"
        if not name or name.startswith("rpc."):
            raise ConfigError(f"{where}: names starting with 'rpc.' are reserved by JSON-RPC 2.0")
        try:
            spec = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"{where}: expected JSON text, got {text!r} ({error})") from None
        code, message = (spec.get("code"), spec.get("message")) if isinstance(spec, dict) else (None, None)
        if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
            raise ConfigError(f'{where}: expected {{"code": integer, "message": string, "data": optional}}, got {text!r}')
        methods[name] = fixed_error(name, code, message, spec.get("data"))
    return methods


def openrpc_document(methods: Mapping[str, Method], title: str) -> dict[str, Any]:
    """An OpenRPC (https://spec.open-rpc.org) description of ``methods``."""
    described = []
    for name, function in sorted(methods.items()):
        parameters = list(inspect.signature(function).parameters.values())[1:]  # drop the context
        params = [
            {"name": p.name, "required": p.default is inspect.Parameter.empty, "schema": {}}
            for p in parameters
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        described.append(
            {
                "name": name,
                "summary": (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else "",
                "params": params,
                "result": {"name": "result", "schema": {}},
            }
        )
    return {"openrpc": OPENRPC_VERSION, "info": {"title": title, "version": "1.0.0"}, "methods": described}

"""The XML-RPC room's method table: the built-in methods, fixed-result methods from
config, the introspection methods (``system.listMethods``, ``system.methodHelp``,
``system.methodSignature``, as in the XML-RPC introspection convention) and
``system.multicall`` (the boxcarring convention). No transport: server.py parses the
methodCall documents and hands :meth:`MethodTable.call` the method name and params.

Fault codes follow the specification for fault code interoperability (xmlrpc-epi).
"""

from __future__ import annotations

import json
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.config import ConfigError

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603


@dataclass(frozen=True)
class RpcMethod:
    """One row of the method table. ``signatures`` as methodSignature returns them:
    a list of [return type, parameter types...] lists, or "undef" when not fixed."""

    name: str
    function: Callable[..., Any]
    signatures: list[list[str]] | str
    help: str


def echo(*values: Any) -> Any:
    return values[0] if len(values) == 1 else list(values)


def add(*numbers: Any) -> Any:
    if not numbers or not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
        raise xmlrpc.client.Fault(INVALID_PARAMS, "add: expected one or more numbers (int or double)")
    return sum(numbers)


def strlen(text: Any) -> int:
    if not isinstance(text, str):
        raise xmlrpc.client.Fault(INVALID_PARAMS, "strlen: expected a string")
    return len(text)


def fail(code: int = 1, message: str = "failure requested") -> Any:
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
        raise xmlrpc.client.Fault(INVALID_PARAMS, "fail: expected (int code, string message)")
    raise xmlrpc.client.Fault(code, message)


BUILTIN_METHODS = (
    RpcMethod("echo", echo, "undef", "Return the argument given (several arguments: an array of them)."),
    RpcMethod(
        "add", add, [["int", "int", "int"], ["double", "double", "double"]], "Return the sum of the numbers given."
    ),
    RpcMethod("strlen", strlen, [["int", "string"]], "Return the length of a string in characters."),
    RpcMethod(
        "fail", fail, [["undef"], ["undef", "int"], ["undef", "int", "string"]],
        "Raise a fault with the code (default 1) and message given.",
    ),
)


def xmlrpc_type(value: Any) -> str:
    """The XML-RPC type name of a value, for the signature of a fixed-result method."""
    if value is None:
        return "nil"
    for python_type, name in ((bool, "boolean"), (int, "int"), (float, "double"), (str, "string"), (list, "array"), (dict, "struct")):
        if isinstance(value, python_type):
            return name
    return "undef"


def fixed_result_method(name: str, text: str) -> RpcMethod:
    """A config method returning ``text`` decoded as JSON; ConfigError (one line) if it cannot."""
    where = f"[xmlrpc] methods: {name}"
    if name.startswith("system."):
        raise ConfigError(f"{where}: the system. prefix is reserved for introspection")
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{where}: not valid JSON ({error})") from None
    try:
        xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True)
    except (OverflowError, TypeError) as error:
        raise ConfigError(f"{where}: cannot be sent as XML-RPC ({error})") from None
    return RpcMethod(name, lambda: value, [[xmlrpc_type(value)]], f"Return a fixed {xmlrpc_type(value)} (from config).")


class MethodTable:
    """Every callable method by name, the introspection and multicall ones included."""

    def __init__(
        self,
        methods: list[RpcMethod],
        record: Callable[..., None],
        fault_check: Callable[..., Any] | None = None,
    ):
        self._record = record
        # FaultBook.check bound to this server: (method name, peer, actions) -> rule or None.
        self._fault_check = fault_check
        self.methods = {m.name: m for m in methods}
        for method in (
            RpcMethod("system.listMethods", self.list_methods, [["array"]], "List the methods this server offers."),
            RpcMethod("system.methodHelp", self.method_help, [["string", "string"]], "Describe a method."),
            RpcMethod(
                "system.methodSignature", self.method_signature, [["array", "string"]],
                "Signatures of a method: arrays of [return type, parameter types...], or \"undef\".",
            ),
            RpcMethod(
                "system.multicall", self.multicall, [["array", "array"]],
                "Call several methods: [{methodName, params}, ...] -> [[result] or {faultCode, faultString}, ...].",
            ),
        ):
            self.methods[method.name] = method

    def call(self, name: str, params: tuple[Any, ...], peer: str, delays: list[float] | None = None) -> Any:
        """The result of ``name(*params)``; raises Fault (protocol errors with their codes).

        A delay fault for ``name`` adds its seconds to ``delays``: the transport holds the reply.
        """
        method = self.methods.get(name)
        try:
            if self._fault_check is not None:
                delay = self._fault_check(name, peer, actions=("delay",))
                if delay is not None and delays is not None:
                    delays.append(float(delay.params["seconds"]))
                error = self._fault_check(name, peer, actions=("error",))
                if error is not None:
                    raise xmlrpc.client.Fault(error.params["code"], error.params["message"])
            if method is None:
                raise xmlrpc.client.Fault(METHOD_NOT_FOUND, f"method {name!r} not found")
            try:
                if method.name == "system.multicall":  # the one method that needs the caller
                    if len(params) != 1:
                        raise TypeError(f"takes 1 argument ({len(params)} given)")
                    result = self.multicall(params[0], peer, delays)
                else:
                    result = method.function(*params)
            except TypeError as error:  # wrong number of arguments
                raise xmlrpc.client.Fault(INVALID_PARAMS, f"{name}: {error}") from None
        except xmlrpc.client.Fault as fault:
            self._record("call", peer, method=name, params=len(params), fault=fault.faultCode)
            raise
        self._record("call", peer, method=name, params=len(params))
        return result

    # -- introspection -------------------------------------------------------------
    def list_methods(self) -> list[str]:
        return sorted(self.methods)

    def _lookup(self, name: Any) -> RpcMethod:
        if not isinstance(name, str) or name not in self.methods:
            raise xmlrpc.client.Fault(INVALID_PARAMS, f"no method {name!r}")
        return self.methods[name]

    def method_help(self, name: Any) -> str:
        return self._lookup(name).help

    def method_signature(self, name: Any) -> list[list[str]] | str:
        return self._lookup(name).signatures

    # -- boxcarring ------------------------------------------------------------------
    def multicall(self, calls: Any, peer: str = "", delays: list[float] | None = None) -> list[Any]:
        if not isinstance(calls, list):
            raise xmlrpc.client.Fault(INVALID_PARAMS, "system.multicall: expected an array of calls")
        results: list[Any] = []
        for call in calls:
            try:
                if not isinstance(call, dict) or not isinstance(call.get("methodName"), str):
                    raise xmlrpc.client.Fault(INVALID_REQUEST, "each call must be a struct with methodName and params")
                name, params = call["methodName"], call.get("params", [])
                if name == "system.multicall":
                    raise xmlrpc.client.Fault(INVALID_REQUEST, "system.multicall cannot be nested")
                if not isinstance(params, list):
                    raise xmlrpc.client.Fault(INVALID_PARAMS, "params must be an array")
                results.append([self.call(name, tuple(params), peer, delays)])
            except xmlrpc.client.Fault as fault:
                results.append({"faultCode": fault.faultCode, "faultString": fault.faultString})
        return results

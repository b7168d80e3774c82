"""XmlRpcServer: XML-RPC (the xmlrpc.com specification) over HTTP POST on Twisted web.

Owned here: the method table (built-ins and fixed-result methods from config), the
introspection methods (``system.listMethods``, ``system.methodHelp``,
``system.methodSignature``, as in the XML-RPC introspection convention) and
``system.multicall`` (the boxcarring convention: an array of ``{methodName, params}``
structs in, an array of one-element result arrays or fault structs out).
Messages are parsed and built with the standard library's :mod:`xmlrpc.client`; the
``nil`` extension is on, so ``None`` travels.

Endpoints: ``POST /`` and ``POST /RPC2`` (the path most clients default to).
Fault codes follow the specification for fault code interoperability (xmlrpc-epi):
-32700 parse error, -32600 invalid request, -32601 method not found, -32602 invalid
parameters, -32603 internal error; ``fail`` raises the code the caller asks for.

Config methods (``[xmlrpc] methods``): name -> JSON text of the fixed result, as the
JSON-RPC server takes them (``methods = {"version" = '"1.2.3"', "limits" = '{"max": 5}'}``).
Journal: one ``call`` event per method call (inside a multicall too): method,
parameter count, and ``fault`` (the code) when it failed.

Fault rules (``[[faults]] server = "xmlrpc"``, ``match`` a glob on the method name, each
call inside a multicall included): ``error`` answers that call with a Fault
(``params.code``, default -32500 "application error" of the interoperability codes, and
``params.message``); ``delay`` holds the whole HTTP response ``params.seconds`` (default 1),
waiting on the reactor so other clients are served meanwhile.
"""

from __future__ import annotations

import http.client
import json
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

from twisted.web import resource
from twisted.web import server as web_server

from .core.config import PORT, STR_TABLE, ConfigError, Option
from .core.faults import DELAY, INTEGER, STRING, FaultAction, Param
from .core.lifecycle import ProbeError, retry_until
from .core.loop import twisted_reactor
from .core.twisted_listen import TwistedServer, peer_of

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
MAX_BODY = 4 * 1024 * 1024  # bytes; a bigger request gets 413 before any parsing
PATHS = (b"/", b"/RPC2")
FAULT_CODE, FAULT_MESSAGE = -32500, "injected fault"  # an "error" fault rule without params


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


class XmlRpcResource(resource.Resource):
    isLeaf = True

    def __init__(self, rpc_server: XmlRpcServer):
        super().__init__()
        self.rpc_server = rpc_server  # not `server`: Resource has an attribute of that name

    def render_GET(self, request: Any) -> bytes:
        request.setResponseCode(405)
        request.setHeader(b"Allow", b"POST")
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b"XML-RPC: POST a methodCall document to / or /RPC2\n"

    def render_POST(self, request: Any) -> Any:
        peer = peer_of(request.transport)
        if request.path not in PATHS:
            request.setResponseCode(404)
            return b"not found: XML-RPC is served at / and /RPC2\n"
        body = request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            request.setResponseCode(413)
            return b"request body too large\n"
        self.rpc_server.wire.received(peer, body)
        request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
        delays: list[float] = []
        response = self.rpc_server.respond(body, peer, delays)
        if not delays:
            self.rpc_server.wire.sent(peer, response)
            return response
        # A delay fault: answer later from the reactor, unless the client gave up meanwhile.
        finished: list[bool] = []
        request.notifyFinish().addBoth(finished.append)

        def answer() -> None:
            if finished:
                return
            self.rpc_server.wire.sent(peer, response)
            request.setHeader(b"Content-Length", str(len(response)).encode())
            request.write(response)
            request.finish()

        twisted_reactor().callLater(max(delays), answer)
        return web_server.NOT_DONE_YET


class XmlRpcServer(TwistedServer):
    name = "xmlrpc"
    description = "XML-RPC over HTTP: echo, add, strlen, fail, config methods, introspection and multicall"
    scheme = "http"
    fault_subject = "the method name (each call of a system.multicall too)"
    fault_actions = {
        "error": FaultAction(
            "answer the call with an XML-RPC fault instead of running it",
            (
                Param("code", INTEGER, -(2**31), 2**31 - 1, default=FAULT_CODE, help="faultCode (an i4)"),
                Param("message", STRING, default=FAULT_MESSAGE, help="faultString"),
            ),
        ),
        "delay": DELAY,
    }
    options = (
        Option("port", PORT, 9000, "HTTP port (POST / or /RPC2)"),
        Option("methods", STR_TABLE, {}, "extra methods: name -> JSON text of their fixed result"),
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        configured = [fixed_result_method(name, text) for name, text in self.settings.methods.items()]
        by_name = {m.name: m for m in BUILTIN_METHODS}
        by_name.update({m.name: m for m in configured})  # config may replace a built-in
        self.table = MethodTable(
            list(by_name.values()),
            self.record,
            lambda method, peer, actions: self.core.faults.check(self.name, method, peer, actions=actions),
        )

    def respond(self, body: bytes, peer: str, delays: list[float] | None = None) -> bytes:
        """The methodResponse document for one methodCall document (fault delays go to ``delays``)."""
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=True)
        except (ExpatError, xmlrpc.client.ResponseError, ValueError, TypeError) as error:
            self.record("call", peer, method=None, fault=PARSE_ERROR)
            return _fault_document(PARSE_ERROR, f"parse error: {error}")
        if not method:
            self.record("call", peer, method=None, fault=INVALID_REQUEST)
            return _fault_document(INVALID_REQUEST, "not a methodCall document")
        try:
            result = self.table.call(method, params, peer, delays)
            return xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True, encoding="utf-8").encode()
        except xmlrpc.client.Fault as fault:
            return _fault_document(fault.faultCode, fault.faultString)
        except OverflowError as error:  # e.g. an add() result beyond XML-RPC's 32-bit int
            return _fault_document(INTERNAL_ERROR, f"result cannot be sent as XML-RPC: {error}")

    def _bind(self) -> None:
        site = web_server.Site(XmlRpcResource(self))
        site.noisy = False
        self.listen("main", site, self.settings.port)

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        """Call system.listMethods and check the answer is a list."""
        body = xmlrpc.client.dumps((), "system.listMethods").encode()

        def attempt(remaining: float) -> str:
            connection = http.client.HTTPConnection(host, port, timeout=remaining)
            try:
                connection.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
                reply = connection.getresponse().read()
            except ConnectionRefusedError:
                raise
            except (OSError, http.client.HTTPException) as error:
                raise ProbeError(f"{host}:{port}: {error!r}") from None
            finally:
                connection.close()
            try:
                (methods,), _ = xmlrpc.client.loads(reply)
            except (ExpatError, xmlrpc.client.Fault, ValueError) as error:
                raise ProbeError(f"{host}:{port}: not an XML-RPC answer: {error}") from None
            if not isinstance(methods, list):
                raise ProbeError(f"{host}:{port}: system.listMethods did not return an array")
            return f"XML-RPC, {len(methods)} methods"

        return retry_until(timeout, attempt)


def _fault_document(code: int, message: str) -> bytes:
    return xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True, encoding="utf-8").encode()

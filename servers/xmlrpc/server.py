"""XmlRpcServer: XML-RPC (the xmlrpc.com specification) over HTTP POST on Twisted web.

Owned here: the HTTP transport, reading a methodCall document and writing the
methodResponse, the options and the fault rules. The method table is methods.py's:
built-ins and fixed-result methods from config, the introspection methods
(``system.listMethods``, ``system.methodHelp``, ``system.methodSignature``, as in the
XML-RPC introspection convention) and ``system.multicall`` (the boxcarring convention:
an array of ``{methodName, params}`` structs in, an array of one-element result arrays
or fault structs out). Messages are parsed and built with the standard library's :mod:`xmlrpc.client`; the
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
import xmlrpc.client
from typing import Any
from xml.parsers.expat import ExpatError

from twisted.web import resource
from twisted.web import server as web_server

from ..core.config import PORT, STR_TABLE, Option
from ..core.faults import DELAY, INTEGER, STRING, FaultAction, Param
from ..core.lifecycle import ProbeError, retry_until
from ..core.loop import twisted_reactor
from ..core.twisted_listen import TwistedServer, peer_of
from .methods import BUILTIN_METHODS, INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, MethodTable, fixed_result_method

MAX_BODY = 4 * 1024 * 1024  # bytes; a bigger request gets 413 before any parsing
PATHS = (b"/", b"/RPC2")
FAULT_CODE, FAULT_MESSAGE = -32500, "injected fault"  # an "error" fault rule without params


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

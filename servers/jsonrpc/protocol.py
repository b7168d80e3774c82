"""RpcEndpoint: JSON-RPC 2.0 (https://www.jsonrpc.org/specification) on top of jsonrpcserver.

jsonrpcserver 5.0.9 calls the methods (argument binding, -32601/-32602/-32603). This
thin layer does what it gets wrong or leaves out, so the replies match section 7 of
the spec exactly:

- parsing and validation of each request object ourselves: jsonrpcserver answers the
  batch ``[1,2,3]`` with one error, where the spec wants an array of three;
- an empty array is one Invalid Request error, not an array;
- error messages are the spec's ("Invalid Request", not "Invalid request"), and
  "Method not found" carries no ``data`` (the spec's examples show none);
- notifications (no ``id`` member) never get a reply, even when they fail; a batch of
  only notifications gets nothing at all.

Transports (HTTP, TCP lines) call :meth:`RpcEndpoint.handle` with the raw message and
send what it returns; fault rules for a method name may turn a call into an error or
delay the whole reply.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.faults import FaultBook
from .methods import CallContext, Method

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # see methods.py
    from jsonrpcserver.dispatcher import create_request, dispatch_request, logger, to_response
    from jsonrpcserver.response import ServerErrorResponse, to_serializable_one
    from jsonrpcserver.sentinels import NODATA
    from oslash.either import Left

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SPEC_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
}
# Codes whose replies carry no data member, as in the spec's examples.
WITHOUT_DATA = {PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND}


@dataclass
class Reply:
    """What a transport sends back: ``body`` None means send nothing (notifications)."""

    body: bytes | None
    delay: float = 0.0


def _error(code: int, id_: Any, message: str | None = None, data: Any = NODATA) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": SPEC_MESSAGES.get(code, message or "Server error")}
    if message and code not in SPEC_MESSAGES:
        error["message"] = message
    if data is not NODATA and code not in WITHOUT_DATA:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": id_}


def _valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _is_valid_request(item: Any) -> bool:
    """Section 4: jsonrpc "2.0", a string method, params an array or object if present, a valid id."""
    return (
        isinstance(item, dict)
        and item.get("jsonrpc") == "2.0"
        and isinstance(item.get("method"), str)
        and isinstance(item.get("params", []), (list, dict))
        and _valid_id(item.get("id"))
    )


class RpcEndpoint:
    def __init__(
        self,
        server_name: str,
        methods: Callable[[], dict[str, Method]],
        faults: FaultBook,
        record: Callable[..., None],
        sleep_max: float = 0.0,
    ):
        self.server_name = server_name
        self._methods = methods
        self._faults = faults
        self._record = record
        self._sleep_max = sleep_max

    def handle(self, payload: bytes, peer: str, transport: str) -> Reply:
        try:
            message = json.loads(payload)
        except ValueError:  # also UnicodeDecodeError
            self._record("request", peer, transport=transport, method=None, error=PARSE_ERROR)
            return Reply(json.dumps(_error(PARSE_ERROR, None)).encode())
        context = CallContext(peer, transport, self._record, self._sleep_max)
        if isinstance(message, list):
            if not message:
                self._record("request", peer, transport=transport, method=None, error=INVALID_REQUEST)
                return Reply(json.dumps(_error(INVALID_REQUEST, None)).encode())
            answers = [self._one(item, context) for item in message]
            replies = [answer for answer, _ in answers if answer is not None]
            delay = max([seconds for _, seconds in answers] + context.delays)
            return Reply(json.dumps(replies).encode() if replies else None, delay)
        answer, delay = self._one(message, context)
        delay = max([delay] + context.delays)
        return Reply(json.dumps(answer).encode() if answer is not None else None, delay)

    def _one(self, item: Any, context: CallContext) -> tuple[dict[str, Any] | None, float]:
        """The response object for one request object (None for a notification), and a delay."""
        if not _is_valid_request(item):
            id_ = item.get("id") if isinstance(item, dict) and _valid_id(item.get("id")) else None
            self._record("request", context.peer, transport=context.transport, method=None, error=INVALID_REQUEST)
            return _error(INVALID_REQUEST, id_), 0.0
        method, notification = item["method"], "id" not in item
        id_ = item.get("id")
        details = {"transport": context.transport, "method": method, "id": id_, "notification": notification,
                   "params": item.get("params")}
        delay_rule = self._faults.check(self.server_name, method, context.peer, actions=("delay",))
        delay = float(delay_rule.params["seconds"]) if delay_rule else 0.0
        error_rule = self._faults.check(self.server_name, method, context.peer, actions=("error",))
        if error_rule is not None:
            params = error_rule.params
            response = _error(params["code"], id_, params["message"], params.get("data", NODATA))
        else:
            response = self._dispatch(item, context)
        error = response["error"]["code"] if response and "error" in response else None
        self._record("request", context.peer, error=error, **details)
        return (None if notification else response), delay

    def _dispatch(self, item: dict[str, Any], context: CallContext) -> dict[str, Any]:
        # The item is already validated; jsonrpcserver gets it as its "deserialized" input.
        # A notification is dispatched with a placeholder id so its result is still seen
        # (for the journal); the caller drops the reply.
        request = item if "id" in item else {**item, "id": None}
        # jsonrpcserver's own pipeline (dispatcher.py), from the stage after parsing and
        # validation, which are done above: dispatch_to_serializable would run the same
        # three steps behind a deserializer, a validator and a batch of one (py-spy: a
        # third of its time per call). A failure of the library itself is answered as
        # dispatch_to_response_pure answers it.
        methods = self._methods()
        try:
            outcome = to_serializable_one(to_response(*dispatch_request(methods, context, create_request(request))))
        except Exception as exc:  # noqa: BLE001 - as jsonrpcserver's dispatch_to_response_pure
            logger.exception(exc)
            outcome = to_serializable_one(Left(ServerErrorResponse(str(exc), None)))
        if not isinstance(outcome, dict):
            return _error(INTERNAL_ERROR, item.get("id"), data="no response from the dispatcher")
        if "result" in outcome:
            return {"jsonrpc": "2.0", "result": outcome["result"], "id": item.get("id")}
        error = outcome.get("error", {})
        return _error(error.get("code", INTERNAL_ERROR), item.get("id"), error.get("message", ""), error.get("data", NODATA))

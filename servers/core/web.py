"""Route tables over Twisted web: ``Route(method, pattern, handler)`` rows, one dispatcher.

Patterns use ``{name}`` for one path segment and ``{name*}`` for the rest of the path.
Handlers take an :class:`ApiRequest` and return a JSON-able value (200), a
:class:`Reply`, or a Deferred/coroutine of either; they raise :class:`ApiError` for
a clean error reply. A handler may also return a Twisted resource, which then takes
the request over (a WebSocket upgrade), so upgrades pass through the same table. Used by the admin API; any HTTP-speaking server may reuse it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import resource, server


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiRequest:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    peer: str

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError(400, f"query parameter {name!r}: expected an integer, got {value!r}") from None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as error:
            raise ApiError(400, f"request body is not valid JSON: {error}") from None


Handler = Callable[[ApiRequest], Any]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    summary: str = ""

    def compile(self) -> re.Pattern[str]:
        return compile_pattern(self.pattern)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/a/{name}/{rest*}`` -> a regex with one group per placeholder, anchored at both ends."""
    regex = ""
    for part in re.split(r"(\{\w+\*?\})", pattern):
        if part.startswith("{") and part.endswith("*}"):
            regex += f"(?P<{part[1:-2]}>.*)"
        elif part.startswith("{"):
            regex += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(regex + "$")


_patterns: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str, route: Route) -> re.Pattern[str]:
    if pattern not in _patterns:
        _patterns[pattern] = route.compile()
    return _patterns[pattern]


class RouteTable(resource.Resource):
    """A Twisted web resource dispatching every request through a list of Routes."""

    isLeaf = True

    def __init__(
        self,
        routes: Iterable[Route] | Callable[[], Iterable[Route]],
        on_request: Callable[[ApiRequest, int], None] | None = None,
    ):
        super().__init__()
        # A callable is re-read on every request, so servers started later still
        # get their routes mounted (the admin API uses this).
        self._source = routes if callable(routes) else list(routes)
        self._on_request = on_request

    @property
    def routes(self) -> list[tuple[Route, re.Pattern[str]]]:
        source = self._source() if callable(self._source) else self._source
        table, seen = [], set()
        for route in source:
            if (route.method, route.pattern) not in seen:
                seen.add((route.method, route.pattern))
                table.append((route, _compiled(route.pattern, route)))
        return table

    def render(self, request: Any) -> Any:
        path = request.path.decode("utf-8", "replace")
        method = request.method.decode("ascii", "replace")
        allowed = []
        for route, regex in self.routes:
            found = regex.match(path)
            if not found:
                continue
            if route.method != method and not (method == "HEAD" and route.method == "GET"):
                allowed.append(route.method)
                continue
            api_request = ApiRequest(
                method=method,
                path=path,
                params={k: unquote(v) for k, v in found.groupdict().items()},
                query=parse_qs(request.uri.decode("utf-8", "replace").partition("?")[2], keep_blank_values=True),
                headers={k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in request.requestHeaders.getAllRawHeaders()},
                body=request.content.read() if request.content else b"",
                peer=getattr(request.getClientAddress(), "host", ""),
            )
            return self._run(route.handler, api_request, request)
        if allowed:
            request.setHeader(b"Allow", ", ".join(sorted(set(allowed))).encode())
            return self._finish(request, None, Reply(405, {"error": f"method {method} not allowed"}))
        return self._finish(request, None, Reply(404, {"error": f"no such endpoint: {path}"}))

    def _run(self, handler: Handler, api_request: ApiRequest, request: Any) -> Any:
        try:
            result = handler(api_request)
        except ApiError as error:
            return self._finish(request, api_request, Reply(error.status, {"error": error.message}))
        if resource.IResource.providedBy(result):
            return result.render(request)  # a protocol upgrade: the resource owns the connection now
        if inspect.iscoroutine(result):
            result = Deferred.fromFuture(asyncio.ensure_future(result))
        if isinstance(result, Deferred):
            result.addCallbacks(
                lambda value: self._finish(request, api_request, value, deferred=True),
                lambda failure: self._fail(request, api_request, failure),
            )
            return server.NOT_DONE_YET
        return self._finish(request, api_request, result)

    def _fail(self, request: Any, api_request: ApiRequest, failure: Failure) -> None:
        if failure.check(ApiError):
            error = failure.value
            self._finish(request, api_request, Reply(error.status, {"error": error.message}), deferred=True)
        else:
            failure.printTraceback()
            self._finish(request, api_request, Reply(500, {"error": str(failure.value)}), deferred=True)

    def _finish(self, request: Any, api_request: ApiRequest | None, result: Any, deferred: bool = False) -> Any:
        reply = result if isinstance(result, Reply) else Reply(200, result)
        body = reply.body if isinstance(reply.body, bytes) else (json.dumps(reply.body, indent=2) + "\n").encode()
        request.setResponseCode(reply.status)
        request.setHeader(b"Content-Type", reply.content_type.encode())
        for name, value in reply.headers.items():
            request.setHeader(name.encode(), value.encode())
        if self._on_request is not None and api_request is not None:
            self._on_request(api_request, reply.status)
        if not deferred:
            return body
        if not request._disconnected:  # Twisted private, checked in tests/core/test_library_internals.py
            request.write(body)
            request.finish()
        return None

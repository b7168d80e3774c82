"""One router for every HTTP surface: the admin API and the HTTP server alike.

- :class:`Route` rows: ``Route(method or methods, pattern, handler, summary)``; patterns
  use ``{name}`` for one path segment and ``{name*}`` for the rest of the path.
- :class:`Router` matches a method and path against them: the route and its params,
  or an :class:`HttpError` 405 (with ``Allow``) or 404.
- :class:`HttpError` is the one error a handler raises for a clean error reply
  (``ApiError`` is the admin API's name for it), and :class:`Reply` the one reply type
  (the HTTP server calls it ``Response``).

:class:`RouteTable` is the admin API's Twisted resource over a Router: its handlers take
an :class:`ApiRequest` and return a JSON-able value (200), a :class:`Reply`, or a
Deferred/coroutine of either. A handler may also return a Twisted resource, which
then takes the request over (a WebSocket upgrade), so upgrades pass through the same
table. The HTTP server (servers/http/site.py) dispatches its httpbin routes through the
same Router, with its own request view (``Exchange``).

A route may also declare, as plain data, the query parameters it reads (:class:`Query`)
and the JSON Schema of its request and reply bodies; the OpenAPI document of the admin
API (servers/core/openapi.py) is generated from these rows, so it cannot drift from
what is served. Nothing here checks a request against them: handlers still do.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import resource, server


class HttpError(Exception):
    """Raised by handlers for a plain error reply: ``HttpError(400, "why")``."""

    def __init__(self, status: int, message: str, headers: Iterable[tuple[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


ApiError = HttpError  # the admin API's handlers' name for it


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # bytes are sent as they are; anything else as JSON
    content_type: str | None = "application/json"
    # Kept as a list, not a dict: Set-Cookie and friends may repeat (a dict is accepted).
    headers: list[tuple[str, str]] | dict[str, str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.headers, dict):
            self.headers = list(self.headers.items())

    @property
    def header_list(self) -> list[tuple[str, str]]:
        assert isinstance(self.headers, list)  # made one in __post_init__
        return self.headers

    def encoded_body(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return (json.dumps(self.body, indent=2) + "\n").encode()


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


Handler = Callable[[ApiRequest], Any]  # an admin route handler
# A JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1), as a plain dict.
Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Query:
    """A query parameter a route reads: its name, JSON Schema type and what it does."""

    name: str
    help: str = ""
    type: str = "string"  # string, integer, number or boolean
    required: bool = False


@dataclass(frozen=True)
class Route:
    method: str | tuple[str, ...]  # one method, or several
    pattern: str
    handler: Callable[[Any], Any]
    summary: str = ""
    # Optional declarations for the OpenAPI document (documentation, not enforcement).
    query: tuple[Query, ...] = ()
    body: Schema | None = field(default=None, compare=False)  # the JSON request body
    reply: Schema | None = field(default=None, compare=False)  # the body of a success reply
    status: int = 200  # the success status
    media_type: str = "application/json"  # of the success reply

    @property
    def methods(self) -> tuple[str, ...]:
        return (self.method,) if isinstance(self.method, str) else self.method

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


class Router:
    """Routes in order; the first whose pattern and method match a request wins.

    Rows with the same methods and pattern are kept once (the admin API mounts each
    store's routes once, whichever servers use it). HEAD is served by GET routes.
    """

    def __init__(self, routes: Iterable[Route]):
        self.routes: list[tuple[Route, re.Pattern[str]]] = []
        seen = set()
        for route in routes:
            if (route.methods, route.pattern) not in seen:
                seen.add((route.methods, route.pattern))
                self.routes.append((route, _compiled(route.pattern, route)))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for ``method path`` and its (still %-encoded) params.

        :raises HttpError: 405 with an ``Allow`` header when only the method is wrong,
            404 when no pattern matches.
        """
        allowed: set[str] = set()
        for route, regex in self.routes:
            found = regex.match(path)
            if not found:
                continue
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                return route, found.groupdict()
            allowed.update(route.methods)
        if allowed:
            raise HttpError(405, f"method {method} not allowed on {path}", [("Allow", ", ".join(sorted(allowed)))])
        raise HttpError(404, f"no such endpoint: {path}")


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
    def router(self) -> Router:
        return Router(self._source() if callable(self._source) else self._source)

    @property
    def routes(self) -> list[tuple[Route, re.Pattern[str]]]:
        return self.router.routes

    def render(self, request: Any) -> Any:
        path = request.path.decode("utf-8", "replace")
        method = request.method.decode("ascii", "replace")
        try:
            route, params = self.router.match(method, path)
        except HttpError as error:
            return self._finish(request, None, error_reply(error))
        api_request = ApiRequest(
            method=method,
            path=path,
            params={k: unquote(v) for k, v in params.items()},
            query=parse_qs(request.uri.decode("utf-8", "replace").partition("?")[2], keep_blank_values=True),
            headers={k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in request.requestHeaders.getAllRawHeaders()},
            body=request.content.read() if request.content else b"",
            peer=getattr(request.getClientAddress(), "host", ""),
        )
        return self._run(route.handler, api_request, request)

    def _run(self, handler: Handler, api_request: ApiRequest, request: Any) -> Any:
        try:
            result = handler(api_request)
        except HttpError as error:
            return self._finish(request, api_request, error_reply(error))
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
        if failure.check(HttpError):
            self._finish(request, api_request, error_reply(failure.value), deferred=True)
        else:
            failure.printTraceback()
            self._finish(request, api_request, Reply(500, {"error": str(failure.value)}), deferred=True)

    def _finish(self, request: Any, api_request: ApiRequest | None, result: Any, deferred: bool = False) -> Any:
        reply = result if isinstance(result, Reply) else Reply(200, result)
        body = reply.encoded_body()
        request.setResponseCode(reply.status)
        if reply.content_type:
            request.setHeader(b"Content-Type", reply.content_type.encode())
        for name, value in reply.header_list:
            request.responseHeaders.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        if self._on_request is not None and api_request is not None:
            self._on_request(api_request, reply.status)
        if not deferred:
            return body
        if not request._disconnected:  # Twisted private, checked in tests/core/test_library_internals.py
            request.write(body)
            request.finish()
        return None


def error_reply(error: HttpError) -> Reply:
    """The JSON error reply of both surfaces: ``{"error": "..."}`` with the error's headers."""
    return Reply(error.status, {"error": error.message}, headers=list(error.headers))

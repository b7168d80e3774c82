"""Toxiproxy's HTTP API (default port 8474) over the proxy server's TCP listeners.

Follows Toxiproxy 2.12's ``api.go``, ``proxy.go``, ``proxy_collection.go``,
``toxic_collection.go`` and ``toxics/*.go`` (https://github.com/Shopify/toxiproxy), so
its client libraries work unchanged. A Toxiproxy "proxy" is one of the proxy server's
TCP listeners (``servers/proxy``): the same objects ``/api/v1/proxies`` of the admin
API and the ``[proxy] tcp`` option create, so every one of them is listed here and
every proxy made here is listed there. Its toxics are the listener's named toxics
(``servers/proxy/live.py``), applied to open connections as Toxiproxy does.
This module owns the routes and what they do to the listeners; how Go reads the
requests and writes the replies (decoding, errors, shapes, addresses) is wire.py's.

What it keeps from Toxiproxy, exactly:

- routes, methods (POST and PATCH both update), status codes: proxy create and
  ``/populate`` 201, toxic create 200, deletes and ``/reset`` 204;
- JSON shapes and key order, compact, including the ``"Logger":{}`` Go leaks into
  every proxy; errors as ``http.Error`` writes them: ``{"error":"...","status":N}``
  and a newline, ``text/plain``; 409 for a taken name, 404 for an unknown proxy or
  toxic, 400 for a bad body, a missing field, an unknown toxic type or stream, 500
  for a listen failure (Go's ``listen tcp ...`` text);
- a toxic's fields: ``name`` (default ``<type>_<stream>``), ``type``, ``stream``
  (default downstream, any case), ``toxicity`` (default 1, not range-checked), and
  ``attributes`` decoded as Go decodes them into the toxic's struct: integers only,
  missing ones 0, unknown ones ignored;
- ``listen`` reports the bound address (``127.0.0.1:0`` becomes ``127.0.0.1:41234``);
  ``enabled: false`` closes the listener and its connections; ``/populate`` keeps a
  proxy whose resolved listen address and upstream are unchanged (with its toxics
  and enabled state) and replaces one that changed; ``/reset`` enables every proxy
  and removes every toxic; browsers (``User-Agent: Mozilla/...``) get 403.

Differences, because refservers is not Go (docs/toxiproxy.md lists them):
``upstream`` must be ``host:port`` when the proxy is made (Toxiproxy accepts any
text and fails on each connection); a listen address without a host (``:8080``)
binds the proxy server's host (127.0.0.1 by default), not every interface;
``/metrics`` is always on (Toxiproxy's needs ``-proxy-metrics``); a proxy cannot be
named ``main`` (the HTTP proxy's own listener); JSON decoding errors are Python's words.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock, ensureDeferred
from twisted.web import server as web_server

from ..core.config import PORT, STR, Option
from ..core.lifecycle import BindError, probe_http
from ..core.twisted_listen import TwistedServer
from ..core.web import ApiRequest, Reply, Route, RouteTable
from ..proxy.live import NamedToxic
from ..proxy.server import ProxyServer, TcpListener
from .wire import (
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    MISSING_FIELD,
    PROXY_EXISTS,
    PROXY_NOT_FOUND,
    STREAMS,
    TOXIC_ATTRIBUTES,
    TOXIC_EXISTS,
    TOXIC_NOT_FOUND,
    ToxiproxyError,
    bool_field,
    decode_attributes,
    decode_body,
    decode_object,
    differs,
    error_reply,
    float_field,
    go_field,
    json_reply,
    listen_error,
    make_route,
    proxy_json,
    request_id,
    string_field,
    type_mismatch,
)

# -- the server ---------------------------------------------------------------------------


class ToxiproxyServer(TwistedServer):
    name = "toxiproxy"
    description = "Toxiproxy's HTTP API (proxies, toxics, populate, reset) over the proxy server's TCP listeners"
    scheme = "http"
    options = (
        Option("port", PORT, 8474, "Toxiproxy API port"),
        Option("version", STR, "2.12.0", "the Toxiproxy version GET /version reports"),
    )
    companions = ("proxy",)  # its proxies are the proxy server's TCP listeners

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.proxy: ProxyServer | None = None
        self._own_proxy = False
        # Toxiproxy locks its collection; here one request at a time changes it, also
        # across the waits for a port to close.
        self._lock = DeferredLock()

    def _bind(self) -> None:
        self.proxy = self._find_or_start_proxy()
        site = web_server.Site(RouteTable(self.routes(), on_request=self._journal_request))
        site.noisy = False
        self.listen("http", site, self.settings.port)

    def _unbind(self) -> None:
        super()._unbind()
        if self._own_proxy and self.proxy is not None:
            self.proxy.stop()
        self.proxy, self._own_proxy = None, False

    def _find_or_start_proxy(self) -> ProxyServer:
        """The TCP listeners live in the proxy server of this core; started here (and
        stopped with us) when this process runs none (``refservers run toxiproxy``)."""
        for server in self.core.servers:
            if isinstance(server, ProxyServer):
                server.start()
                return server
        self._own_proxy = True
        proxy = ProxyServer(self.core.config["proxy"], self.core)
        proxy.start()
        return proxy

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        return probe_http(host, port, timeout, "/version")

    def _journal_request(self, request: ApiRequest, status: int) -> None:
        self.record("request", request.peer, method=request.method, path=request.path, status=status)

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, Callable[[ApiRequest], Awaitable[Reply]], str]] = [
            ("POST", "/reset", self.reset, "enable every proxy, remove every toxic"),
            ("GET", "/proxies", self.proxy_index, "every proxy with its toxics, by name"),
            ("POST", "/proxies", self.proxy_create, "create a proxy (name, listen, upstream, enabled)"),
            ("POST", "/populate", self.populate, "create or replace a list of proxies"),
            ("GET", "/proxies/{proxy}", self.proxy_show, "one proxy with its toxics"),
            ("POST", "/proxies/{proxy}", self.proxy_update, "update a proxy (deprecated method)"),
            ("PATCH", "/proxies/{proxy}", self.proxy_update, "update a proxy's listen, upstream, enabled"),
            ("DELETE", "/proxies/{proxy}", self.proxy_delete, "delete a proxy"),
            ("GET", "/proxies/{proxy}/toxics", self.toxic_index, "a proxy's toxics"),
            ("POST", "/proxies/{proxy}/toxics", self.toxic_create, "add a toxic"),
            ("GET", "/proxies/{proxy}/toxics/{toxic}", self.toxic_show, "one toxic"),
            ("POST", "/proxies/{proxy}/toxics/{toxic}", self.toxic_update, "update a toxic (deprecated method)"),
            ("PATCH", "/proxies/{proxy}/toxics/{toxic}", self.toxic_update, "update a toxic's attributes, toxicity"),
            ("DELETE", "/proxies/{proxy}/toxics/{toxic}", self.toxic_delete, "remove a toxic"),
            ("GET", "/version", self.version, "the Toxiproxy version served"),
            ("GET", "/metrics", self.metrics, "bytes through each proxy, Prometheus text"),
        ]
        return [Route(method, pattern, self._serialised(handler), summary) for method, pattern, handler, summary in table]

    def _serialised(self, handler: Callable[[ApiRequest], Awaitable[Reply]]) -> Callable[[ApiRequest], Any]:
        def run(request: ApiRequest) -> Deferred[Reply]:
            if request.headers.get("user-agent", "").startswith("Mozilla/"):
                return Deferred.fromCoroutine(_plain(403, "User agent not allowed\n"))

            async def guarded() -> Reply:
                try:
                    reply = await handler(request)
                except ToxiproxyError as error:
                    reply = error_reply(error)
                reply.header_list.append(("X-Toxiproxy-Request-Id", request_id()))
                return reply

            return self._lock.run(lambda: ensureDeferred(guarded()))

        return run

    # -- helpers ---------------------------------------------------------------------------
    @property
    def collection(self) -> dict[str, TcpListener]:
        assert self.proxy is not None
        return self.proxy.tcp_listeners

    def _get(self, name: str) -> TcpListener:
        listener = self.collection.get(name)
        if listener is None:
            raise PROXY_NOT_FOUND
        return listener

    async def _start(self, listener: TcpListener) -> None:
        assert self.proxy is not None
        if self.collection.get(listener.route.name) is not listener:
            raise PROXY_NOT_FOUND  # removed through the admin API while we waited
        try:
            self.proxy.enable_tcp_listener(listener.route.name)
        except BindError as error:
            raise listen_error(listener.address, error) from None

    async def _stop(self, listener: TcpListener) -> None:
        assert self.proxy is not None
        if listener.enabled:
            await self.proxy.disable_tcp_listener(listener.route.name)

    async def _add(self, name: str, listen: str, upstream: str, enabled: bool) -> TcpListener:
        """A new proxy (ProxyCollection.Add): 409 when the name is taken."""
        assert self.proxy is not None
        if name in self.collection or name == "main":
            raise PROXY_EXISTS
        route = make_route(name, listen, upstream)
        try:
            return self.proxy.open_tcp_listener(route, "toxiproxy", enabled=enabled)
        except BindError as error:
            raise listen_error(listen, error) from None
        except ValueError:
            raise PROXY_EXISTS from None

    # -- proxies ---------------------------------------------------------------------------
    async def proxy_index(self, request: ApiRequest) -> Reply:
        return json_reply(200, {name: proxy_json(listener) for name, listener in sorted(self.collection.items())})

    async def proxy_create(self, request: ApiRequest) -> Reply:
        body = decode_object(decode_body(request.body), "toxiproxy.Proxy")
        name = string_field(body, "name", "Proxy", "")
        listen = string_field(body, "listen", "Proxy", "")
        upstream = string_field(body, "upstream", "Proxy", "")
        enabled = bool_field(body, "enabled", "Proxy", True)
        if not name:
            raise ToxiproxyError(f"{MISSING_FIELD}: name", 400)
        if not upstream:
            raise ToxiproxyError(f"{MISSING_FIELD}: upstream", 400)
        listener = await self._add(name, listen, upstream, bool(enabled))
        return json_reply(201, proxy_json(listener))

    async def proxy_show(self, request: ApiRequest) -> Reply:
        return json_reply(200, proxy_json(self._get(request.params["proxy"])))

    async def proxy_update(self, request: ApiRequest) -> Reply:
        """Proxy.Update: a changed listen or upstream restarts it; ``enabled`` starts or stops it."""
        assert self.proxy is not None
        listener = self._get(request.params["proxy"])
        body = decode_object(decode_body(request.body), "toxiproxy.Proxy")
        listen = string_field(body, "listen", "Proxy", listener.address)
        upstream = string_field(body, "upstream", "Proxy", listener.route.upstream)
        enabled = bool_field(body, "enabled", "Proxy", listener.enabled)
        if differs(listener, listen, upstream):
            await self.proxy.retarget_tcp_listener(listener.route.name, make_route(listener.route.name, listen, upstream))
        if enabled and not listener.enabled:
            await self._start(listener)
        elif not enabled:
            await self._stop(listener)
        return json_reply(200, proxy_json(listener))

    async def proxy_delete(self, request: ApiRequest) -> Reply:
        assert self.proxy is not None
        listener = self._get(request.params["proxy"])
        await self._stop(listener)  # Proxy.Stop: the connections get a close, not a reset
        if self.collection.get(listener.route.name) is listener:
            await self.proxy.close_tcp_listener(listener.route.name)
        return Reply(204, b"", content_type="text/plain")

    async def populate(self, request: ApiRequest) -> Reply:
        """ProxyCollection.PopulateJson: check every entry, then add or replace in order;
        on an error, the proxies done so far and the error, with its status."""
        try:
            entries = decode_body(request.body)
            if not isinstance(entries, list):
                raise type_mismatch(entries, "Go value", "[]struct { toxiproxy.Proxy; Enabled *bool }")
            wanted = []
            for entry in entries:
                fields = decode_object(entry, "toxiproxy.Proxy")
                wanted.append(
                    (
                        string_field(fields, "name", "Proxy", ""),
                        string_field(fields, "listen", "Proxy", ""),
                        string_field(fields, "upstream", "Proxy", ""),
                        bool_field(fields, "enabled", "Proxy", None),
                    )
                )
            for index, (name, _, upstream, _) in enumerate(wanted, start=1):
                if not name:
                    raise ToxiproxyError(f"{MISSING_FIELD}: name at proxy {index}", 400)
                if not upstream:
                    raise ToxiproxyError(f"{MISSING_FIELD}: upstream at proxy {index}", 400)
        except ToxiproxyError as error:
            return json_reply(error.status, {"error": error.message, "status": error.status, "proxies": None})
        done: list[TcpListener] = []
        try:
            for name, listen, upstream, enabled in wanted:
                done.append(await self._add_or_replace(name, listen, upstream, enabled is not False))
        except ToxiproxyError as error:
            body = {"error": error.message, "status": error.status, "proxies": [proxy_json(p) for p in done] or None}
            return json_reply(error.status, body)
        return json_reply(201, {"proxies": [proxy_json(p) for p in done] or None})

    async def _add_or_replace(self, name: str, listen: str, upstream: str, enabled: bool) -> TcpListener:
        """ProxyCollection.AddOrReplace: an unchanged proxy stays as it is, toxics and
        all; a changed one stops and a new one (without toxics) takes its name."""
        assert self.proxy is not None
        existing = self.collection.get(name)
        if existing is None:
            return await self._add(name, listen, upstream, enabled)
        if not differs(existing, listen, upstream):
            return existing
        await self._stop(existing)
        try:
            return self.proxy.replace_tcp_listener(name, make_route(name, listen, upstream), enabled)
        except BindError as error:
            raise listen_error(listen, error) from None

    async def reset(self, request: ApiRequest) -> Reply:
        """ResetState: every proxy enabled, every toxic removed."""
        for listener in list(self.collection.values()):
            await self._start(listener)
            listener.toxics.clear()
        return Reply(204, b"", content_type="text/plain")

    # -- toxics ----------------------------------------------------------------------------
    async def toxic_index(self, request: ApiRequest) -> Reply:
        listener = self._get(request.params["proxy"])
        return json_reply(200, [toxic.as_json() for toxic in listener.toxics.listing()])

    async def toxic_create(self, request: ApiRequest) -> Reply:
        """ToxicCollection.AddToxicJson, its checks in its order."""
        listener = self._get(request.params["proxy"])
        body = decode_object(decode_body(request.body), "toxics.ToxicWrapper")
        toxic_type = string_field(body, "type", "ToxicWrapper", "")
        stream = string_field(body, "stream", "ToxicWrapper", "downstream")
        name = string_field(body, "name", "ToxicWrapper", "")
        toxicity = float_field(body, "toxicity", "ToxicWrapper", 1.0)
        if stream.lower() not in STREAMS:
            raise INVALID_STREAM
        name = name or f"{toxic_type}_{stream}"
        if toxic_type not in TOXIC_ATTRIBUTES:
            raise INVALID_TOXIC_TYPE
        if listener.toxics.get(name) is not None:
            raise TOXIC_EXISTS
        zero = dict.fromkeys(TOXIC_ATTRIBUTES[toxic_type], 0)
        attributes = decode_attributes(toxic_type, go_field(body, "attributes"), zero)
        toxic = NamedToxic(name, toxic_type, stream, toxicity, attributes)
        listener.toxics.add(toxic)
        return json_reply(200, toxic.as_json())

    def _toxic(self, request: ApiRequest) -> tuple[TcpListener, NamedToxic]:
        listener = self._get(request.params["proxy"])
        toxic = listener.toxics.get(request.params["toxic"])
        if toxic is None:
            raise TOXIC_NOT_FOUND
        return listener, toxic

    async def toxic_show(self, request: ApiRequest) -> Reply:
        return json_reply(200, self._toxic(request)[1].as_json())

    async def toxic_update(self, request: ApiRequest) -> Reply:
        """UpdateToxicJson: attributes and toxicity only; name, type and stream stay."""
        listener, toxic = self._toxic(request)
        body = decode_object(decode_body(request.body), "struct { Attributes interface {}; Toxicity float32 }")
        attributes = decode_attributes(toxic.type, go_field(body, "attributes"), toxic.attributes)
        toxic.toxicity = float_field(body, "toxicity", "Toxicity", toxic.toxicity)
        toxic.attributes = attributes
        listener.toxics.update(toxic)
        return json_reply(200, toxic.as_json())

    async def toxic_delete(self, request: ApiRequest) -> Reply:
        listener, toxic = self._toxic(request)
        listener.toxics.remove(toxic.name)
        return Reply(204, b"", content_type="text/plain")

    # -- the rest --------------------------------------------------------------------------
    async def version(self, request: ApiRequest) -> Reply:
        body = json.dumps({"version": self.settings.version}) + "\n"  # api.go writes '{"version": "..."}\n'
        return Reply(200, body.encode(), content_type="application/json;charset=utf-8")

    async def metrics(self, request: ApiRequest) -> Reply:
        """Toxiproxy's proxy metrics (METRICS.md), counted when a connection ends."""
        assert self.proxy is not None
        lines = []
        for kind in ("received", "sent"):
            metric = f"toxiproxy_proxy_{kind}_bytes_total"
            lines += [f"# HELP {metric} The total number of bytes {kind} on a proxy link.", f"# TYPE {metric} counter"]
            for (counted, direction, name, listen, upstream), count in sorted(self.proxy.tcp_bytes.items()):
                if counted == kind:
                    labels = {"direction": direction, "listener": listen, "proxy": name, "upstream": upstream}
                    text = ",".join(f'{key}="{_label(value)}"' for key, value in labels.items())
                    lines.append(f"{metric}{{{text}}} {count}")
        return Reply(200, ("\n".join(lines) + "\n").encode(), content_type="text/plain; version=0.0.4; charset=utf-8")


async def _plain(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), content_type="text/plain; charset=utf-8", headers={"X-Content-Type-Options": "nosniff"})


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

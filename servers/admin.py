"""The admin API (Twisted web, default 127.0.0.1:8025): health, events, faults, the
user table, the routes of every store a running server uses (mail messages, files)
and the routes servers contribute (TCP proxies).

Endpoints of its own:
- ``GET /health``: every server of this process, its ports and state; 200 only when all
  are ready, 503 otherwise.
- ``GET /api/v1/events?server=&kind=&since=&limit=``; ``DELETE /api/v1/events``.
- ``GET /api/v1/servers``: the same list as /health, always 200.
- ``GET/POST/DELETE /api/v1/faults``, ``DELETE /api/v1/faults/{id}``: fault rules
  (a rule is checked against its server's declared actions when it is added: 400 and
  the field or ``params.<name>`` at fault otherwise).
- ``GET /api/v1/faults/actions?server=``: every server's fault actions and their
  params (type, range, default, required, help), to build a rule form from.
- ``GET /api/v1/openapi.json`` (and Mailpit's ``/api/v1/swagger.json``): the OpenAPI
  3.1 document of every route served now (core/openapi.py).
- ``GET /metrics``: Prometheus counters per server (core/metrics.py).
- ``GET /api/v1/tls/ca.pem``: the local CA certificate every TLS listener chains to.
- ``GET /``: the web console (servers/console), which reads only the endpoints above
  and those the stores and servers contribute.

It also runs the webhooks (``webhooks`` option, core/webhooks.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .core.config import FLOAT, INT, PORT, STR, STR_LIST, Option, int_range
from .core.faults import RULE_FIELD_HELP, FaultError
from .core.guard import AdminGuard, guarded_site, is_loopback
from .core.lifecycle import probe_http
from .core.twisted_listen import TwistedServer
from .core.web import ApiError, ApiRequest, Query, Reply, Route, RouteTable
from .core.webhooks import WEBHOOKS, DeliveryPolicy, Webhooks
from .scenario import ScenarioError, ScenarioRunner
from .scenario import parse as parse_scenario


class AdminServer(TwistedServer):
    name = "admin"
    description = "admin API and web console: health, event journal, messages, files, faults"
    scheme = "http"
    options = (
        Option("port", PORT, 8025, "admin API port"),
        Option(
            "allowed_hosts",
            STR_LIST,
            (),
            "Host names the admin API answers to besides localhost, IP literals and the bind address; * turns the check off",
        ),
        Option("auth", STR, "", "require credentials: user:password (HTTP Basic) or a bearer token; empty: none"),
        Option("max_body", INT, 64 * 1024 * 1024, "largest request body in bytes (413 above)"),
        Option(
            "webhooks",
            WEBHOOKS,
            (),
            "POST journal events as JSON: URL (message events, as Mailpit's) or KIND+KIND=URL (* every kind); see docs/admin-api.md",
        ),
        Option("webhook_retries", int_range(0, 100), 3, "retries of a failed webhook POST"),
        Option("webhook_backoff", FLOAT, 0.5, "seconds before the first webhook retry, doubled for each next one"),
        Option("webhook_timeout", FLOAT, 5.0, "seconds one webhook POST may take"),
        Option("webhook_queue", int_range(1, 1_000_000), 1000, "events waiting per webhook URL before new ones are dropped"),
    )

    def routes(self) -> list[Route]:
        # Imported here, as the OpenAPI builder in _openapi: `run X` loads this module
        # for its options alone, and the console's package resources and the reply
        # schemas were a visible share of `run http`'s start-up (issue 16).
        from .console import console_routes
        from .core import schemas

        by_server = Query("server", "only this server's")
        own = [
            Route("GET", "/health", self._health, "servers and their state; 503 unless all ready", reply=schemas.HEALTH),
            Route("GET", "/api/v1/servers", self._servers, "servers and their state", reply=schemas.SERVERS),
            Route(
                "GET",
                "/api/v1/events",
                self._events,
                "event journal (server, kind, since, limit)",
                query=(
                    by_server,
                    Query("kind", "only events of this kind"),
                    Query("since", "only events after this id", "integer"),
                    Query("limit", "only the newest this many", "integer"),
                ),
                reply=schemas.EVENTS,
            ),
            Route("DELETE", "/api/v1/events", self._clear_events, "empty the event journal", reply=schemas.CLEARED),
            Route("GET", "/api/v1/faults", self._faults, "fault rules (?server=)", query=(by_server,), reply=schemas.FAULT_RULES),
            Route(
                "POST",
                "/api/v1/faults",
                self._add_faults,
                "add a fault rule (or a list of them)",
                body=schemas.FAULT_SPECS,
                status=201,
                reply=schemas.FAULT_RULES,
            ),
            Route("DELETE", "/api/v1/faults", self._clear_faults, "remove all fault rules (?server=)", query=(by_server,), reply=schemas.CLEARED),
            Route(
                "GET",
                "/api/v1/faults/actions",
                self._fault_actions,
                "fault actions and their params (?server=)",
                query=(by_server,),
                reply=schemas.FAULT_ACTIONS,
            ),
            Route("DELETE", "/api/v1/faults/{id}", self._remove_fault, "remove one fault rule", reply=schemas.REMOVED),
            Route(
                "GET",
                "/api/v1/scenario",
                self._export_scenario,
                "the current state as a scenario (users, messages, files, faults, proxies)",
                reply=schemas.SCENARIO,
            ),
            Route(
                "POST",
                "/api/v1/scenario",
                self._apply_scenario,
                "apply a scenario (idempotent; 400 names the bad entry, nothing applied)",
                body=schemas.SCENARIO,
                reply=schemas.APPLIED,
            ),
            Route(
                "POST",
                "/api/v1/reset",
                self._reset,
                "back to the start state: runtime data dropped, start scenario re-applied",
                reply=schemas.RESET,
            ),
            Route(
                "GET",
                "/api/v1/tls/ca.pem",
                self._ca_certificate,
                "the local CA certificate (PEM); 404 with a certificate of your own",
                media_type="application/x-pem-file",
                reply={"type": "string"},
            ),
            Route("GET", "/api/v1", self._index, "this list of endpoints"),
            Route("GET", "/api/v1/openapi.json", self._openapi, "this API as an OpenAPI 3.1 document", reply={"type": "object"}),
            Route("GET", "/api/v1/swagger.json", self._openapi, "the OpenAPI document at Mailpit's path", reply={"type": "object"}),
            Route(
                "GET",
                "/metrics",
                self._metrics,
                "Prometheus metrics per server: connections, commands, messages, bytes, faults",
                media_type="text/plain",
                reply={"type": "string"},
            ),
        ]
        stores = [route for name in self._stores_in_use() for route in self.core.store(name).admin_routes(self.core)]
        contributed = [route for server in self._others() for route in server.admin_routes()]
        return own + stores + contributed + console_routes()

    def _stores_in_use(self) -> list[str]:
        """Stores of the servers of this process, in first-use order (their routes are mounted)."""
        # The user table is the core's, in every process: a test's tenant is added
        # before (or without) the servers that log users in.
        names: dict[str, None] = {"users": None}
        for server in self._others():
            names.update(dict.fromkeys(server.stores))
        return list(names)

    def _bind(self) -> None:
        self._scenario_lock = asyncio.Lock()
        self._table = RouteTable(self.routes)
        guard = AdminGuard.build(self.host, self.settings.allowed_hosts, self.settings.auth, self.settings.max_body)
        self.listen("http", guarded_site(self._table, guard), self.settings.port)
        # Built now, so /metrics counts from the admin API's start (and what the journal still holds).
        # Imported here, not with this module: `run X` loads it for its options alone,
        # and prometheus_client was a visible share of `run http`'s start-up (issue 16).
        from .core.metrics import ServerMetrics

        metrics = self.core.shared(ServerMetrics)
        policy = DeliveryPolicy(
            self.settings.webhook_retries, self.settings.webhook_backoff, self.settings.webhook_timeout, self.settings.webhook_queue
        )
        self._webhooks = Webhooks(self.settings.webhooks, policy, self.core.journal, metrics, self.log)
        if not self.settings.auth and not is_loopback(self.host):
            self.log.warning(
                "admin API on %s without authentication: anyone who can reach it reads all mail and files; "
                "set admin.auth (REFSERVERS_ADMIN_AUTH)",
                self.host,
            )

    def _unbind(self) -> None:
        try:
            super()._unbind()
        finally:
            webhooks = getattr(self, "_webhooks", None)
            if webhooks is not None:
                webhooks.stop()

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        return probe_http(host, port, timeout, "/api/v1")

    def _others(self) -> list[Any]:
        return [server for server in self.core.servers if server is not self]

    def _servers(self, request: ApiRequest) -> Any:
        return {"servers": [server.describe() for server in self._others()]}

    def _health(self, request: ApiRequest) -> Reply:
        servers = [server.describe() for server in self._others()]
        ready = all(entry["state"] == "ready" for entry in servers)
        return Reply(200 if ready else 503, {"status": "ok" if ready else "unavailable", "servers": servers})

    def _events(self, request: ApiRequest) -> Any:
        events = self.core.journal.events(
            server=request.arg("server"),
            kind=request.arg("kind"),
            since=request.int_arg("since", 0) or 0,
            limit=request.int_arg("limit"),
        )
        return {"events": [event.as_json() for event in events], "last_id": self.core.journal.last_id}

    def _clear_events(self, request: ApiRequest) -> Any:
        self.core.journal.clear()
        return {"cleared": True}

    def _faults(self, request: ApiRequest) -> Any:
        return {"faults": [rule.as_json() for rule in self.core.faults.rules(request.arg("server"))]}

    def _add_faults(self, request: ApiRequest) -> Reply:
        body = request.json()
        specs = body if isinstance(body, list) else [body]
        try:
            added = self.core.faults.add_all(specs)  # all of them or none
        except FaultError as error:
            raise ApiError(400, str(error)) from None
        return Reply(201, {"faults": [rule.as_json() for rule in added]})

    def _fault_actions(self, request: ApiRequest) -> Any:
        server = request.arg("server")
        servers = self.core.faults.schema(server)
        if server is not None and not servers:
            raise ApiError(404, f"no server {server!r} takes fault rules")
        return {"rule_fields": RULE_FIELD_HELP, "servers": servers}

    def _clear_faults(self, request: ApiRequest) -> Any:
        self.core.faults.clear(request.arg("server"))
        return {"cleared": True}

    def _remove_fault(self, request: ApiRequest) -> Any:
        if not self.core.faults.remove(request.params["id"]):
            raise ApiError(404, f"no fault rule {request.params['id']!r}")
        return {"removed": request.params["id"]}

    # Scenarios touch files and take store locks: off the admin loop, one at a time.
    async def _scenario_call(self, function: Any, *args: Any) -> Any:
        runner = self.core.shared(ScenarioRunner)
        async with self._scenario_lock:
            return await asyncio.get_running_loop().run_in_executor(None, function, runner, *args)

    async def _export_scenario(self, request: ApiRequest) -> Any:
        return await self._scenario_call(ScenarioRunner.export)

    async def _apply_scenario(self, request: ApiRequest) -> Any:
        try:
            scenario = parse_scenario(request.json())
            applied = await self._scenario_call(ScenarioRunner.apply, scenario)
        except ScenarioError as error:
            raise ApiError(400, str(error)) from None
        return {"applied": applied}

    async def _reset(self, request: ApiRequest) -> Any:
        try:
            applied = await self._scenario_call(ScenarioRunner.reset)
        except ScenarioError as error:
            raise ApiError(500, f"start scenario: {error}") from None
        return {"reset": True, "applied": applied}

    def _ca_certificate(self, request: ApiRequest) -> Reply:
        self.core.tls.ensure()
        if self.core.tls.ca_file is None:
            raise ApiError(404, "no local CA: core.tls_cert names a certificate of your own")
        headers = {"Content-Disposition": 'attachment; filename="refservers-ca.pem"'}
        return Reply(200, self.core.tls.ca_file.read_bytes(), "application/x-pem-file", headers)

    def _openapi(self, request: ApiRequest) -> Any:
        # On first request: for one version string, importlib.metadata was a visible
        # share of `run http`'s start-up, which loads this module for its options alone.
        from importlib import metadata

        from .core.openapi import openapi_document

        return openapi_document(
            [route for route, _ in self._table.routes], "refservers admin API", metadata.version("refservers"), "Generated from the routes this admin API serves now."
        )

    def _metrics(self, request: ApiRequest) -> Reply:
        from .core.metrics import CONTENT_TYPE_LATEST, ServerMetrics  # imported by _bind already

        return Reply(200, self.core.shared(ServerMetrics).exposition(), CONTENT_TYPE_LATEST)

    def _index(self, request: ApiRequest) -> Any:
        return {
            "endpoints": [
                {"method": route.method, "path": route.pattern, "summary": route.summary}
                for route, _ in self._table.routes
            ]
        }


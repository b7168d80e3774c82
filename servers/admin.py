"""The admin API (Twisted web, default 127.0.0.1:8025): health, events, faults, the
routes of every store a running server uses (users, mail messages, files) and the
routes servers contribute (TCP proxies).

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
"""

from __future__ import annotations

import asyncio
from typing import Any

from .core.config import INT, PORT, STR, STR_LIST, Option
from .core.faults import RULE_FIELD_HELP, FaultError
from .core.guard import AdminGuard, guarded_site, is_loopback
from .core.lifecycle import probe_http
from .core.twisted_listen import TwistedServer
from .core.web import ApiError, ApiRequest, Reply, Route, RouteTable
from .scenario import ScenarioError, ScenarioRunner
from .scenario import parse as parse_scenario


class AdminServer(TwistedServer):
    name = "admin"
    description = "admin API: health, event journal, messages, files, faults"
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
    )

    def routes(self) -> list[Route]:
        own = [
            Route("GET", "/health", self._health, "servers and their state; 503 unless all ready"),
            Route("GET", "/api/v1/servers", self._servers, "servers and their state"),
            Route("GET", "/api/v1/events", self._events, "event journal (server, kind, since, limit)"),
            Route("DELETE", "/api/v1/events", self._clear_events, "empty the event journal"),
            Route("GET", "/api/v1/faults", self._faults, "fault rules (?server=)"),
            Route("POST", "/api/v1/faults", self._add_faults, "add a fault rule (or a list of them)"),
            Route("DELETE", "/api/v1/faults", self._clear_faults, "remove all fault rules (?server=)"),
            Route("GET", "/api/v1/faults/actions", self._fault_actions, "fault actions and their params (?server=)"),
            Route("DELETE", "/api/v1/faults/{id}", self._remove_fault, "remove one fault rule"),
            Route("GET", "/api/v1/scenario", self._export_scenario, "the current state as a scenario (users, messages, files, faults, proxies)"),
            Route("POST", "/api/v1/scenario", self._apply_scenario, "apply a scenario (idempotent; 400 names the bad entry, nothing applied)"),
            Route("POST", "/api/v1/reset", self._reset, "back to the start state: runtime data dropped, start scenario re-applied"),
            Route("GET", "/api/v1", self._index, "this list of endpoints"),
        ]
        stores = [route for name in self._stores_in_use() for route in self.core.store(name).admin_routes(self.core)]
        contributed = [route for server in self._others() for route in server.admin_routes()]
        return own + stores + contributed

    def _stores_in_use(self) -> list[str]:
        """Stores of the servers of this process, in first-use order (their routes are mounted)."""
        names: dict[str, None] = {}
        for server in self._others():
            names.update(dict.fromkeys(server.stores))
        return list(names)

    def _bind(self) -> None:
        self._scenario_lock = asyncio.Lock()
        self._table = RouteTable(self.routes)
        guard = AdminGuard.build(self.host, self.settings.allowed_hosts, self.settings.auth, self.settings.max_body)
        self.listen("http", guarded_site(self._table, guard), self.settings.port)
        if not self.settings.auth and not is_loopback(self.host):
            self.log.warning(
                "admin API on %s without authentication: anyone who can reach it reads all mail and files; "
                "set admin.auth (REFSERVERS_ADMIN_AUTH)",
                self.host,
            )

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

    def _index(self, request: ApiRequest) -> Any:
        return {
            "endpoints": [
                {"method": route.method, "path": route.pattern, "summary": route.summary}
                for route, _ in self._table.routes
            ]
        }


"""WireMock's admin API under ``/__admin`` on the HTTP ports, as one route table.

Follows WireMock 3's admin API (wiremock.org/docs/standalone/admin-api-reference) for
the endpoints listed in ADMIN_ROUTES; request and response bodies are WireMock's JSON,
so WireMock client libraries (wiremock-rest-client, wiremock-captain, the Java and
Python clients) work unchanged. A mapping that does not parse gets WireMock's 422
``{"errors": [{"code": 10, "source": {"pointer": ...}, "title": ...}]}``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...core.durable import write_atomic
from ...core.web import ApiError, ApiRequest, Reply, Route, RouteTable
from .engine import StubEngine, StubNotFound
from .mappings import StubMapping
from .matching import StubFormatError, parse_request_pattern
from .recording import Recorder, RecordingError
from .store import StubFileError

WIREMOCK_VERSION = "3.13.2"  # the WireMock release whose API this follows


def _invalid(error: StubFormatError) -> Reply:
    pointer = "/" + error.field.replace(".", "/").replace("[", "/").replace("]", "")
    return Reply(422, {"errors": [{"code": 10, "source": {"pointer": pointer}, "title": error.message}]})


def _mappings_reply(stubs: list[StubMapping], request: ApiRequest | None = None) -> dict[str, Any]:
    total = len(stubs)
    if request is not None:
        offset = request.int_arg("offset", 0) or 0
        limit = request.int_arg("limit")
        stubs = stubs[offset : None if limit is None else offset + limit]
    return {"mappings": [s.as_json() for s in stubs], "meta": {"total": total}}


class StubAdmin:
    """The handlers; each is a method taking an ApiRequest, as core/web.py's Route wants."""

    def __init__(self, engine: StubEngine, recorder: Recorder):
        self.engine = engine
        self.recorder = recorder
        self.started = time.time()

    def routes(self) -> list[Route]:
        p = "/__admin"
        rows: list[tuple[str, str, Callable[[ApiRequest], Any], str]] = [
            ("GET", "/health", self.health, "health and version"),
            ("POST", "/reset", self.reset, "mappings reloaded from files; journal and scenarios cleared"),
            ("GET", "/settings", self.get_settings, "global settings (fixedDelay, delayDistribution)"),
            ("POST", "/settings", self.update_settings, "set the delay added to every stub response"),
            ("PUT", "/settings", self.update_settings, "set the delay added to every stub response"),
            ("GET", "/mappings", self.list_mappings, "every stub mapping"),
            ("POST", "/mappings", self.create_mapping, "add a stub mapping"),
            ("DELETE", "/mappings", self.delete_all_mappings, "remove every stub mapping from memory"),
            ("POST", "/mappings/reset", self.reset_mappings, "reload the mappings from their files"),
            ("POST", "/mappings/save", self.save_mappings, "write every in-memory stub to the stubs directory"),
            ("POST", "/mappings/import", self.import_mappings, "add many mappings at once"),
            ("POST", "/mappings/find-by-metadata", self.find_by_metadata, "mappings whose metadata matches"),
            ("POST", "/mappings/remove-by-metadata", self.remove_by_metadata, "remove mappings whose metadata matches"),
            ("GET", "/mappings/unmatched", self.unmatched_mappings, "stubs no journalled request matched"),
            ("DELETE", "/mappings/unmatched", self.delete_unmatched_mappings, "remove the stubs no journalled request matched"),
            ("GET", "/mappings/{id}", self.get_mapping, "one mapping"),
            ("PUT", "/mappings/{id}", self.edit_mapping, "replace one mapping"),
            ("DELETE", "/mappings/{id}", self.delete_mapping, "remove one mapping (and its file)"),
            ("GET", "/requests", self.list_requests, "the request journal"),
            ("DELETE", "/requests", self.clear_requests, "clear the request journal"),
            ("POST", "/requests/reset", self.clear_requests, "clear the request journal"),
            ("POST", "/requests/count", self.count_requests, "how many journalled requests match a pattern"),
            ("POST", "/requests/find", self.find_requests, "journalled requests matching a pattern"),
            ("POST", "/requests/remove", self.remove_requests, "remove journalled requests matching a pattern"),
            ("GET", "/requests/unmatched", self.unmatched_requests, "requests no stub matched"),
            ("GET", "/requests/unmatched/near-misses", self.near_misses_unmatched, "closest stubs for each unmatched request"),
            ("GET", "/requests/{id}", self.get_request, "one serve event"),
            ("DELETE", "/requests/{id}", self.delete_request, "remove one serve event"),
            ("GET", "/near-misses/request-unmatched", self.near_misses_unmatched, "closest stubs for each unmatched request"),
            ("POST", "/near-misses/request", self.near_misses_request, "closest stubs for a logged request"),
            ("POST", "/near-misses/request-pattern", self.near_misses_pattern, "closest journalled requests for a pattern"),
            ("GET", "/files", self.list_files, "body files under the stubs directory's __files/"),
            ("GET", "/files/{name*}", self.get_file, "one body file"),
            ("PUT", "/files/{name*}", self.put_file, "write a body file"),
            ("DELETE", "/files/{name*}", self.delete_file, "remove a body file"),
            ("GET", "/scenarios", self.list_scenarios, "scenarios and their states"),
            ("POST", "/scenarios/reset", self.reset_scenarios, "every scenario back to Started"),
            ("PUT", "/scenarios/{name}/state", self.set_scenario_state, "set one scenario's state"),
            ("POST", "/recordings/start", self.start_recording, "proxy to targetBaseUrl and record"),
            ("POST", "/recordings/stop", self.stop_recording, "stop and turn the recording into mappings"),
            ("POST", "/recordings/snapshot", self.snapshot_recording, "mappings from every proxied request"),
            ("GET", "/recordings/status", self.recording_status, "NeverStarted, Recording or Stopped"),
        ]
        return [Route(method, p + path, handler, summary) for method, path, handler, summary in rows]

    def table(self) -> RouteTable:
        return RouteTable(self.routes())

    # -- misc ----------------------------------------------------------------------------------
    def health(self, request: ApiRequest) -> Any:
        return {
            "status": "healthy",
            "message": "Wiremock is ok",
            "version": WIREMOCK_VERSION,
            "uptimeInSeconds": int(time.time() - self.started),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def reset(self, request: ApiRequest) -> Any:
        self._reload(self.engine.reset)
        return Reply(200, b"", "application/json")

    def get_settings(self, request: ApiRequest) -> Any:
        return {"settings": {**self.engine.settings_json, "proxyPassThrough": False}}

    def update_settings(self, request: ApiRequest) -> Any:
        body = request.json()
        if isinstance(body, dict) and isinstance(body.get("settings"), dict):
            body = body["settings"]  # WireMock accepts both shapes
        try:
            self.engine.update_settings(body)
        except StubFormatError as error:
            return _invalid(error)
        return Reply(200, b"", "application/json")

    @staticmethod
    def _reload(action: Callable[[], None]) -> None:
        try:
            action()
        except (StubFileError, StubFormatError) as error:
            raise ApiError(500, f"mapping files: {error}") from None

    # -- mappings -------------------------------------------------------------------------------
    def list_mappings(self, request: ApiRequest) -> Any:
        return _mappings_reply(self.engine.stubs(), request)

    def create_mapping(self, request: ApiRequest) -> Any:
        try:
            stub = self.engine.add(request.json())
        except StubFormatError as error:
            return _invalid(error)
        return Reply(201, stub.as_json())

    def delete_all_mappings(self, request: ApiRequest) -> Any:
        self.engine.remove_all_in_memory()
        return Reply(200, b"", "application/json")

    def reset_mappings(self, request: ApiRequest) -> Any:
        self._reload(self.engine.load)
        return Reply(200, b"", "application/json")

    def save_mappings(self, request: ApiRequest) -> Any:
        self.engine.save_all()
        return Reply(200, b"", "application/json")

    def import_mappings(self, request: ApiRequest) -> Any:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("mappings"), list):
            raise ApiError(400, 'expected {"mappings": [...], "importOptions": {...}}')
        options = body.get("importOptions") or {}
        try:
            self.engine.import_mappings(
                body["mappings"],
                duplicate_policy=str(options.get("duplicatePolicy", "OVERWRITE")),
                delete_others=options.get("deleteAllNotInImport") is True,
            )
        except StubFormatError as error:
            return _invalid(error)
        return Reply(200, b"", "application/json")

    def find_by_metadata(self, request: ApiRequest) -> Any:
        try:
            return _mappings_reply(self.engine.find_by_metadata(request.json()))
        except StubFormatError as error:
            return _invalid(error)

    def remove_by_metadata(self, request: ApiRequest) -> Any:
        try:
            self.engine.remove_by_metadata(request.json())
        except StubFormatError as error:
            return _invalid(error)
        return Reply(200, b"", "application/json")

    def _stub(self, stub_id: str) -> StubMapping:
        try:
            return self.engine.get(stub_id)
        except StubNotFound:
            raise ApiError(404, f"no stub mapping with id {stub_id}") from None

    def get_mapping(self, request: ApiRequest) -> Any:
        return self._stub(request.params["id"]).as_json()

    def edit_mapping(self, request: ApiRequest) -> Any:
        self._stub(request.params["id"])
        try:
            return self.engine.replace(request.params["id"], request.json()).as_json()
        except StubFormatError as error:
            return _invalid(error)

    def delete_mapping(self, request: ApiRequest) -> Any:
        self._stub(request.params["id"])
        self.engine.remove(request.params["id"])
        return Reply(200, b"", "application/json")

    def _unmatched_stubs(self) -> list[StubMapping]:
        served = {event.stub.id for event in self.engine.journal.events() if event.stub is not None}
        return [stub for stub in self.engine.stubs() if stub.id not in served]

    def unmatched_mappings(self, request: ApiRequest) -> Any:
        return _mappings_reply(self._unmatched_stubs())

    def delete_unmatched_mappings(self, request: ApiRequest) -> Any:
        for stub in self._unmatched_stubs():
            self.engine.remove(stub.id)
        return Reply(200, b"", "application/json")

    # -- body files ----------------------------------------------------------------------------
    def _file(self, name: str) -> Path:
        base = self.engine.root.files_dir.resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base) or path == base:
            raise ApiError(400, f"{name!r} is not a file under __files/")
        return path

    def list_files(self, request: ApiRequest) -> Any:
        base = self.engine.root.files_dir
        if not base.is_dir():
            return []
        return sorted(path.relative_to(base).as_posix() for path in base.rglob("*") if path.is_file())

    def get_file(self, request: ApiRequest) -> Any:
        path = self._file(request.params["name"])
        if not path.is_file():
            raise ApiError(404, f"no file {request.params['name']!r} under __files/")
        return Reply(200, path.read_bytes(), "application/octet-stream")

    def put_file(self, request: ApiRequest) -> Any:
        path = self._file(request.params["name"])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, request.body)
        return Reply(200, b"", "application/json")

    def delete_file(self, request: ApiRequest) -> Any:
        path = self._file(request.params["name"])
        if not path.is_file():
            raise ApiError(404, f"no file {request.params['name']!r} under __files/")
        path.unlink()
        return Reply(200, b"", "application/json")

    # -- journal ----------------------------------------------------------------------------------
    def list_requests(self, request: ApiRequest) -> Any:
        events = list(reversed(self.engine.journal.events()))  # newest first, as WireMock
        limit = request.int_arg("limit")
        since = request.arg("since")
        if since:
            try:
                moment = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(400, f"since: expected an ISO 8601 date-time, got {since!r}") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            # At the journal's precision (loggedDate is in milliseconds).
            cut = int(moment.timestamp() * 1000)
            events = [e for e in events if int(e.logged_at.timestamp() * 1000) > cut]
        if request.arg("unmatched") == "true":
            events = [e for e in events if not e.was_matched]
        shown = events if limit is None else events[:limit]
        return {"requests": [e.as_json() for e in shown], "meta": {"total": len(events)}, "requestJournalDisabled": False}

    def clear_requests(self, request: ApiRequest) -> Any:
        self.engine.journal.clear()
        return Reply(200, b"", "application/json")

    def _pattern_body(self, request: ApiRequest) -> Any:
        body = request.json()
        try:
            parse_request_pattern("request", body or {})
        except StubFormatError as error:
            raise ApiError(422, str(error)) from None
        return body

    def count_requests(self, request: ApiRequest) -> Any:
        return {"count": len(self.engine.find(self._pattern_body(request))), "requestJournalDisabled": False}

    def find_requests(self, request: ApiRequest) -> Any:
        events = self.engine.find(self._pattern_body(request))
        return {"requests": [e.logged_request() for e in events], "requestJournalDisabled": False}

    def remove_requests(self, request: ApiRequest) -> Any:
        removed = self.engine.remove_requests(self._pattern_body(request))
        return {"requests": [e.as_json() for e in removed]}

    def unmatched_requests(self, request: ApiRequest) -> Any:
        return {"requests": [e.logged_request() for e in self.engine.unmatched()], "requestJournalDisabled": False}

    def get_request(self, request: ApiRequest) -> Any:
        for event in self.engine.journal.events():
            if event.id == request.params["id"]:
                return event.as_json()
        raise ApiError(404, f"no request with id {request.params['id']}")

    def delete_request(self, request: ApiRequest) -> Any:
        if not self.engine.journal.remove(lambda event: event.id == request.params["id"]):
            raise ApiError(404, f"no request with id {request.params['id']}")
        return Reply(200, b"", "application/json")

    # -- near misses -------------------------------------------------------------------------------
    def near_misses_unmatched(self, request: ApiRequest) -> Any:
        misses = []
        for event in self.engine.unmatched():
            for stub, distance in self.engine.near_misses(event.request):
                misses.append(
                    {
                        "request": event.logged_request(),
                        "stubMapping": stub.as_json(),
                        "matchResult": {"distance": round(distance, 4)},
                    }
                )
        return {"nearMisses": misses}

    def near_misses_request(self, request: ApiRequest) -> Any:
        from .matching import RequestView

        body = request.json() or {}
        headers = [(k, v if isinstance(v, str) else ",".join(v)) for k, v in (body.get("headers") or {}).items()]
        view = RequestView(str(body.get("method", "GET")), str(body.get("url", "/")), headers, str(body.get("body", "")).encode())
        return {
            "nearMisses": [
                {"request": body, "stubMapping": s.as_json(), "matchResult": {"distance": round(d, 4)}}
                for s, d in self.engine.near_misses(view)
            ]
        }

    def near_misses_pattern(self, request: ApiRequest) -> Any:
        body = self._pattern_body(request)
        pattern = parse_request_pattern("request", body or {})
        return {
            "nearMisses": [
                {"request": e.logged_request(), "requestPattern": body, "matchResult": {"distance": round(d, 4)}}
                for e, d in self.engine.near_misses_for_pattern(pattern)
            ]
        }

    # -- scenarios ---------------------------------------------------------------------------------
    def list_scenarios(self, request: ApiRequest) -> Any:
        return {"scenarios": self.engine.scenarios()}

    def reset_scenarios(self, request: ApiRequest) -> Any:
        self.engine.reset_scenarios()
        return Reply(200, b"", "application/json")

    def set_scenario_state(self, request: ApiRequest) -> Any:
        body = request.json() or {}
        try:
            self.engine.set_scenario(request.params["name"], body.get("state"))
        except StubNotFound:
            raise ApiError(404, f"no scenario named {request.params['name']}") from None
        return Reply(200, b"", "application/json")

    # -- recordings --------------------------------------------------------------------------------
    def start_recording(self, request: ApiRequest) -> Any:
        try:
            self.recorder.start(request.json())
        except (RecordingError, StubFormatError) as error:
            raise ApiError(422, str(error)) from None
        return Reply(200, b"", "application/json")

    def stop_recording(self, request: ApiRequest) -> Any:
        try:
            stubs = self.recorder.stop()
        except RecordingError as error:
            raise ApiError(400, str(error)) from None
        return {"mappings": [s.as_json() for s in stubs]}

    def snapshot_recording(self, request: ApiRequest) -> Any:
        return {"mappings": [s.as_json() for s in self.recorder.snapshot(request.json())]}

    def recording_status(self, request: ApiRequest) -> Any:
        return {"status": self.recorder.status}

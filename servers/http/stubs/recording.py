"""Record and playback: turn proxied traffic into stub mappings, as WireMock's recorder.

Follows wiremock.org/docs/record-playback: ``POST /__admin/recordings/start``
``{"targetBaseUrl": ...}`` adds a proxy stub to the target; requests then go through
to it and are journalled with the upstream's answers. ``.../stop`` removes the proxy
stub and turns what it served into mappings; ``.../snapshot`` does the same for every
proxied request in the journal. With ``persist`` (default true) the mappings are saved
to the stubs directory and bodies go to ``__files/``, as WireMock does; with
``repeatsAsScenarios`` (default true) a request answered several times becomes a
scenario that replays the answers in order.

Recorded request patterns are ``method`` and ``url`` (path and query), plus an
``equalToJson`` (or ``equalTo``) body pattern when the request had a body, as WireMock
records them by default.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from .engine import StubEngine
from .journal import ServeEvent
from .mappings import STARTED, StubMapping
from .store import safe_name

NEVER_STARTED, RECORDING, STOPPED = "NeverStarted", "Recording", "Stopped"
RECORDER_METADATA = "refservers-recorder"


class RecordingError(ValueError):
    pass


class Recorder:
    def __init__(self, engine: StubEngine):
        self.engine = engine
        self.status = NEVER_STARTED
        self._proxy_id: str | None = None
        self._spec: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, spec: Any) -> None:
        if not isinstance(spec, dict) or not isinstance(spec.get("targetBaseUrl"), str):
            raise RecordingError("targetBaseUrl: expected the URL of the service to record")
        with self._lock:
            if self.status == RECORDING:
                raise RecordingError("already recording; stop first")
            proxy = self.engine.add(
                {
                    "request": {"method": "ANY"},
                    "response": {"proxyBaseUrl": spec["targetBaseUrl"]},
                    "priority": 1,
                    "metadata": {RECORDER_METADATA: True},
                }
            )
            self._proxy_id, self._spec, self.status = proxy.id, spec, RECORDING

    def stop(self) -> list[StubMapping]:
        with self._lock:
            if self.status != RECORDING or self._proxy_id is None:
                raise RecordingError("not recording")
            proxy_id, spec = self._proxy_id, self._spec
            self.engine.remove(proxy_id)
            self._proxy_id, self.status = None, STOPPED
        events = [e for e in self.engine.journal.events() if e.stub is not None and e.stub.id == proxy_id]
        return self.make_mappings(events, spec)

    def snapshot(self, spec: Any) -> list[StubMapping]:
        spec = spec if isinstance(spec, dict) else {}
        events = [e for e in self.engine.journal.events() if e.proxied_to is not None and e.response is not None]
        return self.make_mappings(events, spec)

    def make_mappings(self, events: list[ServeEvent], spec: dict[str, Any]) -> list[StubMapping]:
        persist = spec.get("persist", True) is not False
        as_scenarios = spec.get("repeatsAsScenarios", True) is not False
        groups: dict[tuple[str, str, bytes], list[ServeEvent]] = {}
        for event in events:
            if event.response is None:
                continue
            key = (event.request.method, event.request.url, event.request.body)
            groups.setdefault(key, []).append(event)
        made: list[StubMapping] = []
        for number, group in enumerate(groups.values(), start=1):
            chosen = group if as_scenarios and len(group) > 1 else group[:1]
            scenario = f"scenario-{number}-{safe_name(group[0].request.path)}" if len(chosen) > 1 else None
            for index, event in enumerate(chosen, start=1):
                mapping = self._mapping(event, persist)
                if scenario is not None:
                    mapping["scenarioName"] = scenario
                    mapping["requiredScenarioState"] = STARTED if index == 1 else f"{scenario}-{index}"
                    if index < len(chosen):
                        mapping["newScenarioState"] = f"{scenario}-{index + 1}"
                made.append(self.engine.add(mapping))
        return made

    def _mapping(self, event: ServeEvent, persist: bool) -> dict[str, Any]:
        assert event.response is not None
        request = event.request
        stub_id = str(uuid.uuid4())
        pattern: dict[str, Any] = {"url": request.url, "method": request.method}
        if request.body:
            try:
                json.loads(request.body)
                pattern["bodyPatterns"] = [{"equalToJson": request.body_text, "ignoreArrayOrder": True, "ignoreExtraElements": True}]
            except ValueError:
                pattern["bodyPatterns"] = [{"equalTo": request.body_text}]
        headers: dict[str, Any] = {}
        for name, value in event.response.headers:
            if name.lower() in ("matched-stub-id", "matched-stub-name", "date", "server"):
                continue
            headers[name] = [*headers[name], value] if isinstance(headers.get(name), list) else ([headers[name], value] if name in headers else value)
        response: dict[str, Any] = {"status": event.response.status}
        if headers:
            response["headers"] = headers
        body = event.response.body
        name = f"{safe_name(request.path)}-{stub_id}"
        if body and persist:
            file_name = name + _extension(headers)
            self.engine.root.write_body_file(file_name, body)
            response["bodyFileName"] = file_name
        elif body:
            try:
                response["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                import base64

                response["base64Body"] = base64.b64encode(body).decode()
        mapping: dict[str, Any] = {"id": stub_id, "name": safe_name(request.path), "request": pattern, "response": response}
        if persist:
            mapping["persistent"] = True
        return mapping


def _extension(headers: dict[str, Any]) -> str:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if isinstance(content_type, list):
        content_type = content_type[0]
    mime = str(content_type).split(";")[0].strip().lower()
    if mime == "application/json" or mime.endswith("+json"):
        return ".json"
    import mimetypes  # here: only recording needs it, and `run http` loads this module (issue 16)

    return mimetypes.guess_extension(mime) or ".txt" if mime else ".txt"

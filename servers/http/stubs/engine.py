"""StubEngine: the stub mappings, scenarios and request journal of one HTTP server.

Transport-free: it takes a :class:`RequestView` and answers which stub matches and what
its response is (rendered, templated); serving.py puts that on the wire and the admin
API (admin.py) and the pytest fixture call the same methods.

Rules this module keeps (WireMock 3's semantics):

1. Stubs are tried by ``priority`` (1 first, default 5), then newest first.
2. A stub in a scenario matches only in its ``requiredScenarioState`` (if it names one);
   serving it moves the scenario to ``newScenarioState``. Every scenario starts in
   ``Started``; the state moves under the engine's lock, so concurrent requests see
   each transition once.
3. Every change to the mappings happens under one lock, and persistent stubs are
   written to (or removed from) their file at once, as WireMock does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .journal import RequestCapture, RequestJournal, ServeEvent
from .mappings import STARTED, Delay, StubMapping, parse_distribution, parse_mapping
from .matching import EXACT, RequestPattern, RequestView, StubFormatError, parse_pattern, parse_request_pattern
from .store import StubDirectory, StubFileError
from .templating import TemplateBook, request_model


class StubNotFound(KeyError):
    pass


@dataclass
class RenderedResponse:
    status: int
    message: str | None
    headers: list[tuple[str, str]]
    body: bytes
    extra: dict[str, Any] = field(default_factory=dict)


# Beyond this many (path, path-free stub) pairs the path index is not built.
INDEX_ENTRIES_MAX = 100_000


class StubEngine:
    def __init__(self, root: StubDirectory, packs: Iterable[StubDirectory] = (), journal_size: int = 10_000):
        self.root = root
        self.packs = list(packs)
        self.journal = RequestJournal(journal_size)
        self.templates = TemplateBook()
        self._stubs_in_order: list[StubMapping] = []
        self._by_path: dict[str | None, list[StubMapping]] | None = None  # built on demand (_candidates)
        self._scenarios: dict[str, str] = {}
        self._lock = threading.RLock()
        self._counter = 0
        # /__admin/settings: a delay added to every stub response (WireMock's global settings).
        self.global_delay = Delay()
        self.settings_json: dict[str, Any] = {}

    # -- loading and persistence --------------------------------------------------------
    def load(self) -> None:
        """(Re)load every mapping file; raises StubFileError (file and field) on a bad one."""
        loaded: list[StubMapping] = []
        for directory in [*self.packs, self.root]:
            loaded += directory.load()
        for stub in loaded:
            try:
                self._check_templates(stub)
            except StubFormatError as error:
                raise StubFileError(f"{stub.source}: {error}") from None
        with self._lock:
            self._stubs = []
            for stub in loaded:
                self._insert(stub)
            self._scenarios = {}

    def _check_templates(self, stub: StubMapping) -> None:
        if not stub.response.templated:
            return
        import pybars

        for field_name, source in self._template_sources(stub):
            try:
                self.templates.check(source)
            except pybars.PybarsError as error:
                raise StubFormatError(f"response.{field_name}", f"template does not parse: {error}") from None

    @staticmethod
    def _template_sources(stub: StubMapping) -> list[tuple[str, str]]:
        response = stub.response
        sources = [(f"headers.{name}", value) for name, value in response.headers]
        if isinstance(response.body, str):
            sources.append(("body", response.body))
        if response.body_file:
            sources.append(("bodyFileName", response.body_file))
        return sources

    def _insert(self, stub: StubMapping) -> None:
        self._counter += 1
        stub.insertion = self._counter
        # Priority first, newest first among equals: the order matching walks.
        others = [s for s in self._stubs if s.id != stub.id]
        self._stubs = sorted([*others, stub], key=lambda s: (s.priority, -s.insertion))

    @property
    def _stubs(self) -> list[StubMapping]:
        return self._stubs_in_order

    @_stubs.setter
    def _stubs(self, stubs: list[StubMapping]) -> None:
        # Every change assigns a new list (never in place), so the path index is rebuilt.
        self._stubs_in_order = stubs
        self._by_path = None

    def _candidates(self, path: str) -> list[StubMapping]:
        """The stubs that may match a request for ``path``, in matching order: those whose
        ``urlPath`` is this path and those without one. With a hundred ``urlPath`` stubs,
        walking them all was most of a matched request's time."""
        by_path = self._by_path
        if by_path is None:
            by_path = self._by_path = self._index_by_path()
        found = by_path.get(path)
        return found if found is not None else by_path.get(None, self._stubs)

    def _index_by_path(self) -> dict[str | None, list[StubMapping]]:
        pathless: list[StubMapping] = []
        by_path: dict[str | None, list[StubMapping]] = {}
        entries = 0
        for stub in self._stubs:
            exact = stub.request.exact_path
            if exact is None:
                pathless.append(stub)
                for candidates in by_path.values():
                    candidates.append(stub)
                entries += len(by_path)
            elif exact in by_path:
                by_path[exact].append(stub)
            else:
                by_path[exact] = [*pathless, stub]
                entries += len(pathless)
            if entries > INDEX_ENTRIES_MAX:
                return {}  # many paths and many path-free stubs: walk them all instead
        by_path[None] = pathless
        return by_path

    # -- mappings --------------------------------------------------------------------------
    def stubs(self) -> list[StubMapping]:
        with self._lock:
            return list(self._stubs)

    def get(self, stub_id: str) -> StubMapping:
        with self._lock:
            for stub in self._stubs:
                if stub.id == stub_id:
                    return stub
        raise StubNotFound(stub_id)

    def add(self, spec: Any) -> StubMapping:
        """Add (or replace, same id) a mapping from WireMock JSON; StubFormatError if bad."""
        stub = parse_mapping(spec)
        self._check_templates(stub)
        with self._lock:
            previous = next((s for s in self._stubs if s.id == stub.id), None)
            if previous is not None and previous.source is not None and not previous.read_only:
                stub.source, stub.persistent = previous.source, True
            stub.files_dir = previous.files_dir if previous is not None else None
            self._insert(stub)
            if stub.persistent:
                self.root.write(stub)
        return stub

    def replace(self, stub_id: str, spec: Any) -> StubMapping:
        self.get(stub_id)
        return self.add({**spec, "id": stub_id})

    def remove(self, stub_id: str) -> StubMapping:
        with self._lock:
            stub = self.get(stub_id)
            self._stubs = [s for s in self._stubs if s.id != stub_id]
            if stub.persistent:
                self.root.delete(stub, self._stubs)
        return stub

    def save_all(self) -> int:
        """``/__admin/mappings/save``: write every in-memory stub (packs stay as they are)."""
        with self._lock:
            written = 0
            for stub in self._stubs:
                if stub.read_only:
                    continue
                stub.persistent = True
                stub.json["persistent"] = True
                self.root.write(stub)
                written += 1
            return written

    def remove_all_in_memory(self) -> None:
        with self._lock:
            self._stubs = []

    def import_mappings(self, specs: list[Any], duplicate_policy: str = "OVERWRITE", delete_others: bool = False) -> list[StubMapping]:
        stubs = [parse_mapping(spec, f"mappings[{i}]") for i, spec in enumerate(specs)]
        with self._lock:
            if delete_others:
                keep = {s.id for s in stubs}
                for old in [s for s in self._stubs if s.id not in keep]:
                    self.remove(old.id)
            imported = []
            for stub, spec in zip(stubs, specs, strict=True):
                exists = any(s.id == stub.id for s in self._stubs)
                if exists and duplicate_policy == "IGNORE":
                    continue
                imported.append(self.add(spec))
            return imported

    def find_by_metadata(self, pattern_spec: Any) -> list[StubMapping]:
        pattern = parse_pattern("pattern", pattern_spec)
        return [s for s in self.stubs() if pattern.match(json.dumps(s.json.get("metadata", {}))) == EXACT]

    def remove_by_metadata(self, pattern_spec: Any) -> list[StubMapping]:
        found = self.find_by_metadata(pattern_spec)
        for stub in found:
            self.remove(stub.id)
        return found

    # -- global settings ----------------------------------------------------------------------
    def update_settings(self, spec: Any) -> None:
        """``fixedDelay`` and ``delayDistribution`` for every stub; StubFormatError if bad."""
        if not isinstance(spec, dict):
            raise StubFormatError("settings", "expected an object")
        fixed = spec.get("fixedDelay") or 0
        if isinstance(fixed, bool) or not isinstance(fixed, (int, float)) or fixed < 0:
            raise StubFormatError("fixedDelay", "expected milliseconds >= 0")
        distribution = spec.get("delayDistribution")
        delay = Delay(float(fixed), parse_distribution("delayDistribution", distribution) if distribution else None)
        with self._lock:
            self.global_delay, self.settings_json = delay, dict(spec)

    # -- scenarios ----------------------------------------------------------------------------
    def scenarios(self) -> list[dict[str, Any]]:
        with self._lock:
            names: dict[str, set[str]] = {}
            for stub in self._stubs:
                if stub.scenario:
                    states = names.setdefault(stub.scenario, {STARTED})
                    states.update(s for s in (stub.required_state, stub.new_state) if s)
            return [
                {"id": name, "name": name, "state": self._scenarios.get(name, STARTED), "possibleStates": sorted(states)}
                for name, states in sorted(names.items())
            ]

    def set_scenario(self, name: str, state: str | None) -> None:
        with self._lock:
            if not any(s.scenario == name for s in self._stubs):
                raise StubNotFound(name)
            self._scenarios[name] = state or STARTED

    def reset_scenarios(self) -> None:
        with self._lock:
            self._scenarios = {}

    # -- matching and serving -------------------------------------------------------------------
    def serve(self, captured: RequestCapture) -> tuple[ServeEvent, StubMapping | None, dict[str, str]]:
        """Match one request, move its scenario and journal it (matched or not).

        With no stub loaded the request's view is not made here (see ServeEvent).
        """
        event = ServeEvent(captured)
        with self._lock:
            if self._stubs:
                event.stub = self._first_match(event.request)
        self.journal.add(event)
        if event.stub is None:
            return event, None, {}
        return event, event.stub, event.stub.request.path_parameters(event.request)

    def _first_match(self, request: RequestView) -> StubMapping | None:
        """The first stub that matches ``request`` in its scenario's state, which moves on (under the lock)."""
        for stub in self._candidates(request.path):
            if stub.scenario and stub.required_state is not None:
                if self._scenarios.get(stub.scenario, STARTED) != stub.required_state:
                    continue
            if stub.request.matches(request):
                if stub.scenario and stub.new_state is not None:
                    self._scenarios[stub.scenario] = stub.new_state
                return stub
        return None

    def render(self, stub: StubMapping, request: RequestView, path_parameters: dict[str, str], event_id: str) -> RenderedResponse:
        """The stub's response for this request: templated (if asked), body file read."""
        response = stub.response
        model = request_model(request, path_parameters, event_id) if response.templated else None

        def text(source: str) -> str:
            return self.templates.render(source, model) if model is not None else source

        headers = [(name, text(value)) for name, value in response.headers]
        body: bytes
        if response.body_file is not None:
            body = self._body_file(stub, text(response.body_file))
            if model is not None:
                body = text(body.decode("utf-8", "replace")).encode()
        elif isinstance(response.body, str):
            body = text(response.body).encode()
        else:
            body = response.body or b""
        message = text(response.status_message) if response.status_message else None
        return RenderedResponse(response.status, message, headers, body)

    def _body_file(self, stub: StubMapping, name: str) -> bytes:
        base = (stub.files_dir or self.root.files_dir).resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base):
            raise StubFormatError("response.bodyFileName", f"{name!r} leaves __files/")
        try:
            return path.read_bytes()
        except OSError as error:
            raise FileNotFoundError(f"bodyFileName {name!r}: {error.strerror}") from None

    # -- verification -------------------------------------------------------------------------------
    def find(self, pattern_spec: Any) -> list[ServeEvent]:
        pattern = parse_request_pattern("request", pattern_spec or {})
        return [event for event in self.journal.events() if pattern.matches(event.request)]

    def unmatched(self) -> list[ServeEvent]:
        return [event for event in self.journal.events() if not event.was_matched]

    def remove_requests(self, pattern_spec: Any) -> list[ServeEvent]:
        pattern = parse_request_pattern("request", pattern_spec or {})
        removed = [event for event in self.journal.events() if pattern.matches(event.request)]
        ids = {event.id for event in removed}
        self.journal.remove(lambda event: event.id in ids)
        return removed

    def near_misses(self, request: RequestView, limit: int = 3) -> list[tuple[StubMapping, float]]:
        scored = [(stub, stub.request.distance(request)) for stub in self.stubs()]
        scored.sort(key=lambda pair: pair[1])
        return scored[:limit]

    def near_misses_for_pattern(self, pattern: RequestPattern, limit: int = 3) -> list[tuple[ServeEvent, float]]:
        scored = [(event, pattern.distance(event.request)) for event in self.journal.events()]
        scored.sort(key=lambda pair: pair[1])
        return scored[:limit]

    # -- whole-engine resets -----------------------------------------------------------------------
    def reset(self) -> None:
        """``/__admin/reset``: mappings reloaded from their files, journal and scenarios cleared."""
        self.load()
        self.journal.clear()


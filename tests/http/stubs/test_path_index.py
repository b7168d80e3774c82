"""The engine's ``urlPath`` index picks exactly the stub a walk of every stub would pick.

Random stub sets (exact paths, patterns, templates, no URL at all; random priorities and
scenarios), random requests: the index must give the same stub as the full walk in
WireMock's order (priority, then newest), before and after stubs are added and removed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from servers.http.stubs import engine as engine_module
from servers.http.stubs.engine import StubEngine
from servers.http.stubs.matching import RequestView
from servers.http.stubs.store import StubDirectory

PATHS = ["/a", "/a/1", "/a/2", "/b", "/b/1", "/c"]


def random_request_spec(rng: random.Random) -> dict[str, object]:
    kind = rng.choice(["urlPath", "urlPath", "urlPathPattern", "url", "urlPathTemplate", None])
    # Methods that may not match: a stub for the request's path can fail, and the walk
    # must go on to the stubs after it, path-free ones included.
    spec: dict[str, object] = {"method": rng.choice(["GET", "POST", "ANY"])}
    if kind == "urlPath":
        spec["urlPath"] = rng.choice(PATHS)
    elif kind == "urlPathPattern":
        spec["urlPathPattern"] = rng.choice(["/a/.*", "/b.*", "/.*"])
    elif kind == "url":
        spec["url"] = rng.choice(PATHS) + rng.choice(["", "?q=1"])
    elif kind == "urlPathTemplate":
        spec["urlPathTemplate"] = rng.choice(["/a/{id}", "/b/{id}"])
    return spec


def random_engine(rng: random.Random, tmp_path: Path, count: int) -> StubEngine:
    engine = StubEngine(StubDirectory(tmp_path, read_only=False))
    for number in range(count):
        engine.add(
            {
                "id": f"00000000-0000-0000-0000-{number:012d}",
                "priority": rng.choice([1, 5, 5, 5, 9]),
                "request": random_request_spec(rng),
                "response": {"status": 200, "body": str(number)},
            }
        )
    return engine


def picks(engine: StubEngine, requests: list[RequestView]) -> list[str | None]:
    return [stub.id if stub else None for _, stub, _ in (engine.serve(request) for request in requests)]


@pytest.mark.parametrize("seed", range(20))
def test_the_index_picks_what_walking_every_stub_picks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    engine = random_engine(rng, tmp_path, rng.randint(1, 40))
    requests = [
        RequestView(rng.choice(["GET", "POST"]), rng.choice(PATHS) + rng.choice(["", "?q=1"]), []) for _ in range(80)
    ]
    for change in range(3):
        indexed = picks(engine, requests)
        with monkeypatch.context() as walk_all:
            walk_all.setattr(engine_module, "INDEX_ENTRIES_MAX", -1)  # no index: the full walk
            engine._by_path = None
            walked = picks(engine, requests)
        engine._by_path = None
        assert indexed == walked, (seed, change)
        # Change the stub set: the index must follow.
        victims = engine.stubs()
        engine.remove(rng.choice(victims).id)
        engine.add({"priority": 1, "request": random_request_spec(rng), "response": {"status": 201}})


def test_an_exact_path_stub_loses_to_a_higher_priority_pattern_stub(tmp_path: Path) -> None:
    engine = StubEngine(StubDirectory(tmp_path, read_only=False))
    exact = engine.add({"request": {"urlPath": "/a/1"}, "response": {"status": 200}, "priority": 5})
    pattern = engine.add({"request": {"urlPathPattern": "/a/.*"}, "response": {"status": 200}, "priority": 1})
    assert picks(engine, [RequestView("GET", "/a/1", []), RequestView("GET", "/a/2", [])]) == [pattern.id, pattern.id]
    engine.remove(pattern.id)
    assert picks(engine, [RequestView("GET", "/a/1", []), RequestView("GET", "/a/2", [])]) == [exact.id, None]
